// ChunkStore: content-addressed, compressed, deduplicated blocks of bytes in
// the `chunks` table.
//
// A chunk is keyed by a 128-bit hash of its plain bytes, but the hash only
// narrows the search: Put compares the bytes of every candidate with the same
// key before reusing it, so two different blocks are never merged even when
// their hashes collide (a sandboxed program can craft XXH3 collisions).
// Chunk ids are never reused (AUTOINCREMENT), so a cached id stays valid.
#ifndef STRATA_CHUNKS_CHUNK_STORE_H_
#define STRATA_CHUNKS_CHUNK_STORE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/store.h"
#include "strata/types.h"

namespace strata::chunks {

// kHost: the chunk holds no bytes but a reference to a range of a host file
// (a host base, see fs/host_base.h), read when needed and checked against the
// host file's size and mtime recorded with it.
// kRemote: the chunk holds no bytes but a reference to an entry of a pack
// object on a remote (a lazily pulled session, see remote/transfer.h),
// fetched through the process's RemoteChunkSource when first read and checked
// against the SHA-256 recorded with it.
enum class Codec : int { kRaw = 0, kZstd = 1, kHost = 2, kRemote = 3 };

// A range of a host file, as indexed: the file's size and mtime then, so that
// a later read can tell whether the host changed it. A range pushed by
// reference (`strata push --host-by-reference`) also names the SHA-256 of its
// bytes, which a read on another machine checks (RemoteChunkSource).
struct HostRange {
  std::string path;
  uint64_t file_size = 0;
  int64_t mtime_ns = 0;
  uint64_t offset = 0;
  uint32_t length = 0;  // 1..block size
  std::string sha;      // 64 hex digits, or empty
};
// The stored form of a kHost chunk: "SIZE MTIME_NS OFFSET PATH", or
// "SHA SIZE MTIME_NS OFFSET PATH" when the range names its SHA-256.
std::string EncodeHostRange(const HostRange& range);
// False if `data` is not a well-formed host reference; `length` is the
// chunk's size.
bool DecodeHostRange(std::string_view data, uint32_t length, HostRange* out);

using ChunkId = int64_t;
using Bytes = std::vector<uint8_t>;

// Where a kRemote chunk's bytes are: `length` bytes at `offset` of pack
// object `pack` (its SHA-256, hex) of the store's remote `remote`, holding
// one pack entry whose plain bytes hash to `sha` (SHA-256, hex). Stored as
// the text "SHA PACK OFFSET LENGTH REMOTE" (remote/pack.h has the entry).
struct RemoteRef {
  std::string sha;
  std::string pack;
  uint64_t offset = 0;
  uint32_t length = 0;
  std::string remote;
};
std::string EncodeRemoteRef(const RemoteRef& ref);
// Whether `s` is a SHA-256 as remote objects name them: 64 lowercase hex digits.
bool IsShaHex(std::string_view s);
// False if `data` is not a well-formed reference (remote may be empty).
bool DecodeRemoteRef(std::string_view data, RemoteRef* out);

// Fetches the bytes of kRemote chunks. One per process, installed by whoever
// can reach remotes (remote::InstallLazyFetcher); without one, reading such a
// chunk is an IoError that says so.
class RemoteChunkSource {
 public:
  virtual ~RemoteChunkSource() = default;
  // The plain bytes (`size` of them) of the chunk `ref` names, checked
  // against ref.sha; IoError naming the object if it cannot be had. `conn`
  // is the store's connection the read came through (to look up the remote).
  // May keep the bytes in the store for the next read.
  virtual Result<Bytes> Fetch(sql::Connection& conn, const RemoteRef& ref, uint64_t size) = 0;
  // Whether `bytes` hash to `sha` (SHA-256, hex): how a host range pushed by
  // reference is checked on the machine that pulled it.
  virtual bool Sha256Matches(std::span<const uint8_t> bytes, std::string_view sha) = 0;
  // Writes into their stores what Fetch kept for later (before exit).
  virtual void Flush() = 0;
  // Readies, in the background, what a first Fetch would otherwise load
  // (a mount of a store that may hold remote chunks calls it as it starts).
  virtual void Prepare() {}
};
// Installs `source` for the whole process (never destroyed while in use;
// null removes it). Returns the previous one.
RemoteChunkSource* SetRemoteChunkSource(RemoteChunkSource* source);
RemoteChunkSource* GetRemoteChunkSource();

// A chunk's key and stored form, computed without the database (Encode), so
// that the costly part of Put can run before taking the writer lock.
struct Encoded {
  ChunkHash key;
  size_t size = 0;      // of the plain bytes
  Codec codec = Codec::kRaw;
  Bytes compressed;     // the stored bytes when codec is kZstd
};

class ChunkStore {
 public:
  // `hash` null means XXH3-128. Thread-safe.
  ChunkStore(HashFunction hash, int compression_level, size_t cache_bytes = 32u << 20);

  // Stores `bytes` (non-empty) and returns the id of a chunk holding exactly
  // those bytes, reusing an existing one when its bytes are equal. Must run
  // inside a write transaction on `writer`.
  // `encoded`, if given, must be Encode(bytes).
  Result<ChunkId> Put(sql::Connection& writer, std::span<const uint8_t> bytes,
                      const Encoded* encoded = nullptr);
  // Stores a reference to a host file range (never shared with other chunks;
  // its key is not a content hash). Same transaction rule as Put.
  Result<ChunkId> PutHostRange(sql::Connection& writer, const HostRange& range);
  // Hashes and compresses `bytes` (non-empty). Thread-safe, no database.
  Encoded Encode(std::span<const uint8_t> bytes) const;

  // The plain bytes of chunk `id`. Corruption if it is missing or damaged;
  // IoError if it refers to a host file that changed or cannot be read.
  Result<std::shared_ptr<const Bytes>> Get(sql::Connection& conn, ChunkId id);

  // Deletes up to `limit` chunks with ids above `*after` that no block and
  // no tool call's output references, and moves `*after` past them (so that
  // repeated calls, one per transaction, go through the table once; none
  // deleted means none is left above `*after`). Must run inside a write
  // transaction on `writer`.
  Result<GcStats> CollectUnreferenced(sql::Connection& writer, ChunkId* after, uint64_t limit);

  // Re-reads chunk `id` and checks it decompresses to its recorded size and
  // hashes to its key. Problems are appended to `problems`.
  Status Verify(sql::Connection& conn, ChunkId id, std::vector<IntegrityProblem>* problems);

  ChunkHash Hash(std::span<const uint8_t> bytes) const;

 private:
  // `is_reference`, if given, is set when the chunk is a host or remote
  // reference; with `check_only`, a host reference's file is checked but not
  // read, a remote one only parsed (and no bytes are returned).
  Result<Bytes> Load(sql::Connection& conn, ChunkId id, ChunkHash* key_out,
                     bool* is_reference = nullptr, bool check_only = false);
  // Sets out's size, codec and compressed bytes (zstd only where smaller).
  void Compress(std::span<const uint8_t> bytes, Encoded* out) const;
  void CacheInsert(ChunkId id, std::shared_ptr<const Bytes> bytes);

  const HashFunction hash_;
  const int level_;
  const size_t cache_capacity_;

  // LRU cache of decompressed chunks.
  std::mutex cache_mu_;
  std::list<std::pair<ChunkId, std::shared_ptr<const Bytes>>> lru_;  // guarded by cache_mu_
  std::unordered_map<ChunkId, decltype(lru_)::iterator> index_;       // guarded by cache_mu_
  size_t cache_bytes_ = 0;                                            // guarded by cache_mu_
};

}  // namespace strata::chunks

#endif  // STRATA_CHUNKS_CHUNK_STORE_H_
