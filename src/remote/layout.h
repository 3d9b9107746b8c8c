// The objects of a remote (docs/FORMAT.md, "Remote objects"): their keys,
// the head, chunk objects and the chunk hashes a bundle names. Shared by
// push and pull (transfer.cc) and by remote gc and fsck (maintenance.cc).
#ifndef STRATA_REMOTE_LAYOUT_H_
#define STRATA_REMOTE_LAYOUT_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "chunks/chunk_store.h"
#include "remote/net_api.h"
#include "remote/s3_client.h"
#include "strata/types.h"

namespace strata::remote {

// A chunk row of a remote bundle: codec 3, data = the plain bytes' SHA-256
// as lowercase hex.
inline constexpr int kRemoteCodec = 3;
// The first byte of a chunk object.
inline constexpr char kRawObject = 0;
inline constexpr char kZstdObject = 1;

// "PREFIX/" or "".
std::string Prefix(const RemoteInfo& remote);
std::string ChunkKey(const RemoteInfo& remote, const std::string& sha_hex);
// "PREFIX/sessions/NAME/".
std::string SessionKey(const RemoteInfo& remote, std::string_view session);
// The SHA-256 that names an object ("…/<sha256>"), or "" if the key has none.
std::string ShaOfKey(std::string_view key);

std::string ShaHex(const NetApi& api, std::string_view bytes);

struct RemoteHead {
  bool exists = false;
  std::string etag;
  std::string bundle;    // key of the current bundle
  std::string previous;  // key of the one before, or ""
};
// NotFound is not an error: `exists` is false then.
Result<RemoteHead> ReadHead(S3Client& client, const std::string& key);

// The body of a chunk object for `plain`, as `encoded` (ChunkStore::Encode
// of it) stores it: zstd when that shrank it, else raw.
std::string EncodeChunkObject(std::span<const uint8_t> plain, const chunks::Encoded& encoded);

// The plain bytes of a chunk object; Corruption naming `key` if they cannot
// be decoded or do not hash to `sha_hex`.
Result<std::vector<uint8_t>> DecodeChunkObject(const NetApi& api, const std::string& key,
                                               std::string_view body, const std::string& sha_hex);

// A directory of our own for bundles in flight, removed with its contents.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  bool ok() const { return !path_.empty(); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

Result<std::string> ReadFile(const std::string& path);
Status WriteFile(const std::string& path, std::string_view bytes);

// The bundle object `key`; Corruption if it does not hash to its name.
Result<std::string> FetchBundle(S3Client& client, const NetApi& api, const std::string& key);

// The chunk hashes the bundle object `key` names (fetched into `scratch`).
// Corruption if it does not hash to its name or is not a bundle.
Result<std::unordered_set<std::string>> ChunksOfBundle(S3Client& client, const NetApi& api,
                                                       const std::string& key,
                                                       const ScratchDir& scratch);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_LAYOUT_H_
