// The objects of a remote (docs/FORMAT.md, "Remote objects"): their keys,
// the head, chunk objects and the chunk hashes a bundle names. Shared by
// push and pull (transfer.cc) and by remote gc and fsck (maintenance.cc).
#ifndef STRATA_REMOTE_LAYOUT_H_
#define STRATA_REMOTE_LAYOUT_H_

#include <cstdint>
#include <functional>
#include <span>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "chunks/chunk_store.h"
#include "remote/net_api.h"
#include "remote/s3_client.h"
#include "remote/transfer.h"
#include "sql/database.h"
#include "strata/types.h"

namespace strata::remote {

// A chunk row of a remote bundle: codec 3 (chunks::Codec::kRemote), data =
// "SHA PACK OFFSET LENGTH" (chunks::EncodeRemoteRef without a remote; a
// pull adds the remote's name); or, pushed with --host-by-reference, codec 2
// (chunks::Codec::kHost), a host range that names its SHA-256.
inline constexpr int kRemoteCodec = static_cast<int>(chunks::Codec::kRemote);
inline constexpr int kHostCodec = static_cast<int>(chunks::Codec::kHost);
// The head's format: 3 since the bundle is a manifest of pieces (2: chunks
// packed, one bundle object; 1: one object per chunk).
inline constexpr int kHeadFormat = 3;

// "PREFIX/" or "".
std::string Prefix(const RemoteInfo& remote);
// "PREFIX/packs/<sha256>" and "PREFIX/index/<sha256>".
std::string PackKey(const RemoteInfo& remote, const std::string& pack);
std::string IndexKey(const RemoteInfo& remote, const std::string& pack);
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

// The packs a remote gc found that no head references, each with when one
// first did (seconds since the epoch): the object "PREFIX/gc/doomed", JSON
// {"format": 1, "packs": {"<sha256>": SINCE, ...}}. A push never relies on a
// doomed pack (it sends those chunks again), and a gc deletes a doomed pack
// only when it is still unreferenced a grace period after SINCE: a push that
// relied on it began before the gc that doomed it, and has moved its head by
// then if it took less than the grace period.
using DoomedPacks = std::map<std::string, int64_t>;
std::string DoomedKey(const RemoteInfo& remote);
// Empty when there is no such object.
Result<DoomedPacks> ReadDoomedPacks(S3Client& client, const RemoteInfo& remote);
Status WriteDoomedPacks(S3Client& client, const RemoteInfo& remote, const DoomedPacks& packs);

// Runs `work(client, conn, i)` for i in [0, n) on up to `parallel` threads,
// each with its own S3 client and (unless `db_path` is empty, then null) its
// own query-only connection to `db_path`, telling `progress` (if set) as
// items are done. The first error wins; the others stop at their next item.
// Adds the clients' requests and bytes to `counters`.
Status ForEachParallel(size_t n, int parallel, const RemoteInfo& remote, const Getenv& env,
                       const std::string& db_path,
                       const std::function<Status(S3Client&, sql::Connection*, size_t)>& work,
                       const Progress& progress, S3Counters* counters);

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

// The bundle of the manifest object `key` (remote/manifest.h), written to
// the new file `path`: the manifest (which must hash to its name), then its
// pieces, each checked against its SHA-256. Corruption naming the object
// for damage; `pieces`, if given, receives the manifest's pieces.
Status FetchBundle(S3Client& client, const NetApi& api, const RemoteInfo& remote,
                   const std::string& key, const std::string& path,
                   std::vector<chunks::RemoteRef>* pieces = nullptr);

// Every pack entry the manifest `key` relies on: its pieces and the chunks
// its bundle names (fetched into `scratch`), with no remote set. Corruption
// if anything is damaged or malformed.
Result<std::vector<chunks::RemoteRef>> ChunksOfBundle(S3Client& client, const NetApi& api,
                                                      const RemoteInfo& remote,
                                                      const std::string& key,
                                                      const ScratchDir& scratch);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_LAYOUT_H_
