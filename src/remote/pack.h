// Pack objects: the chunks of a remote, many to an object, so that a push or
// pull of a big session makes tens of requests, not one per 64 KiB chunk.
//
// A pack is a run of entries, each
//   32 bytes  SHA-256 of the chunk's plain bytes
//    1 byte   how the bytes are stored: 0 raw, 1 zstd (one whole frame)
//    4 bytes  the plain size, little-endian
//    4 bytes  the stored size N, little-endian
//    N bytes  the stored bytes
// and is named by the SHA-256 of all its bytes. Entries delimit themselves,
// so a ranged read that starts at an entry parses entry by entry (that is
// how a lazy read reads ahead). Each pack has an index object: one line
// "SHA OFFSET LENGTH" per entry, which is how pushes from other stores learn
// what the bucket holds without reading the packs.
#ifndef STRATA_REMOTE_PACK_H_
#define STRATA_REMOTE_PACK_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/remotes.h"
#include "remote/net_api.h"
#include "strata/status.h"

namespace strata::remote {

inline constexpr size_t kPackEntryHeader = 41;
// A pack is closed once it holds this many bytes.
inline constexpr size_t kPackTarget = 16u << 20;
inline constexpr int kStoredRaw = 0;
inline constexpr int kStoredZstd = 1;

// Builds one pack in memory.
class PackBuilder {
 public:
  // Appends an entry; `stored` is the chunk as `codec` stores it.
  void Add(const std::string& sha_hex, int codec, uint32_t plain_size,
           std::span<const uint8_t> stored);
  size_t size() const { return body_.size(); }
  bool empty() const { return body_.empty(); }
  const std::string& body() const { return body_; }
  // Each entry's SHA-256 and place (pack left empty: it is named by the
  // finished body's hash).
  const std::vector<std::pair<std::string, catalog::PackedChunk>>& entries() const {
    return entries_;
  }
  std::string IndexBody() const;

 private:
  std::string body_;
  std::vector<std::pair<std::string, catalog::PackedChunk>> entries_;
};

struct PackEntry {
  std::string sha;      // hex
  uint64_t offset = 0;  // within the pack
  uint32_t length = 0;  // header included
  int codec = 0;
  uint32_t plain_size = 0;
  std::string_view stored;
};

// The entries of `bytes`, a range of a pack that starts with an entry at
// `offset`. An entry the range cuts short is left out. Corruption naming
// `what` for a malformed header.
Result<std::vector<PackEntry>> ParsePackEntries(std::string_view bytes, uint64_t offset,
                                                const std::string& what);

// The plain bytes of `entry`; Corruption naming `what` if they cannot be
// decoded or do not hash to the entry's SHA-256.
Result<std::vector<uint8_t>> DecodePackEntry(const NetApi& api, const PackEntry& entry,
                                             const std::string& what);

// An index object's entries (pack left empty); Corruption naming `what` if
// it is not one.
Result<std::vector<std::pair<std::string, catalog::PackedChunk>>> ParsePackIndex(
    std::string_view body, const std::string& what);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_PACK_H_
