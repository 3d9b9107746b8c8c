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
#include <unordered_map>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/store.h"
#include "strata/types.h"

namespace strata::chunks {

enum class Codec : int { kRaw = 0, kZstd = 1 };

using ChunkId = int64_t;
using Bytes = std::vector<uint8_t>;

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
  // Hashes and compresses `bytes` (non-empty). Thread-safe, no database.
  Encoded Encode(std::span<const uint8_t> bytes) const;

  // The plain bytes of chunk `id`. Corruption if it is missing or damaged.
  Result<std::shared_ptr<const Bytes>> Get(sql::Connection& conn, ChunkId id);

  // Deletes every chunk that no block references. Must run inside a write
  // transaction on `writer`.
  Result<GcStats> CollectUnreferenced(sql::Connection& writer);

  // Re-reads chunk `id` and checks it decompresses to its recorded size and
  // hashes to its key. Problems are appended to `problems`.
  Status Verify(sql::Connection& conn, ChunkId id, std::vector<IntegrityProblem>* problems);

  ChunkHash Hash(std::span<const uint8_t> bytes) const;

 private:
  Result<Bytes> Load(sql::Connection& conn, ChunkId id, ChunkHash* key_out);
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
