#include "chunks/chunk_store.h"

#include <xxhash.h>
#include <zstd.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <string>

#include "base/time_ns.h"

namespace strata {

ChunkHash Xxh3Hash(std::span<const uint8_t> bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, h);
  ChunkHash out;
  std::memcpy(out.data(), canonical.digest, out.size());
  return out;
}

}  // namespace strata

namespace strata::chunks {

namespace {

// Remote references are left out: comparing with one would fetch it (and
// inside the writer's transaction); a second copy is the lesser cost.
constexpr const char* kFindByHash = "SELECT id FROM chunks WHERE hash = ?1 AND codec != 3";
constexpr const char* kInsertChunk =
    "INSERT INTO chunks(hash, size, codec, data) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kLoadChunk = "SELECT hash, size, codec, data FROM chunks WHERE id = ?1";
// Up to ?2 unreferenced chunks with ids above ?1.
constexpr const char* kCollect =
    "DELETE FROM chunks WHERE id IN (SELECT id FROM chunks WHERE id > ?1 "
    "AND id NOT IN (SELECT chunk FROM blocks WHERE chunk IS NOT NULL) "
    "AND id NOT IN (SELECT chunk FROM call_output) ORDER BY id LIMIT ?2) "
    "RETURNING id, length(data)";

struct CctxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DctxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One compression context per thread: creating one per call is costly.
ZSTD_CCtx* ThreadCctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CctxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* ThreadDctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DctxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

std::string IdText(ChunkId id) { return "chunk " + std::to_string(id); }

// Host references share one key that no 16-byte content hash can equal, so
// Put never considers them for deduplication.
constexpr uint8_t kHostKey[] = {'h', 'o', 's', 't'};

// Reads a host range (or, with `check_only`, just checks the file), refusing
// a file that no longer matches its index.
Result<Bytes> ReadHostRange(const HostRange& r, bool check_only = false) {
  auto fail = [&](const std::string& why) {
    return IoError("host file " + r.path + " " + why +
                   " (a host-base session reads unchanged system files from the host)");
  };
  int fd = open(r.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail(std::string("cannot be opened: ") + std::strerror(errno));
  struct stat st;
  Bytes out(r.length);
  size_t done = 0;
  std::string problem;
  if (fstat(fd, &st) != 0) {
    problem = std::string("cannot be examined: ") + std::strerror(errno);
  } else if (static_cast<uint64_t>(st.st_size) != r.file_size ||
             TimespecNs(st.st_mtim) != r.mtime_ns) {
    problem = "changed since it was indexed";
  } else if (check_only) {
    out.clear();
  } else {
    while (done < out.size()) {
      ssize_t n = pread(fd, out.data() + done, out.size() - done,
                        static_cast<off_t>(r.offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        problem = n < 0 ? std::string("cannot be read: ") + std::strerror(errno) : "is shorter";
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  close(fd);
  if (problem.empty() && !check_only && !r.sha.empty()) {
    // Pushed by reference from another machine: the bytes must be the ones
    // it had, not merely a file of the same size and time.
    RemoteChunkSource* checker = GetRemoteChunkSource();
    if (checker == nullptr) {
      problem = "cannot be checked against its SHA-256 by this program";
    } else if (!checker->Sha256Matches(out, r.sha)) {
      problem = "differs from the file it was pushed with (SHA-256 " + r.sha + ")";
    }
  }
  if (!problem.empty()) return fail(problem);
  return out;
}

std::atomic<RemoteChunkSource*> g_remote_source{nullptr};

}  // namespace

std::string EncodeHostRange(const HostRange& r) {
  return (r.sha.empty() ? "" : r.sha + " ") + std::to_string(r.file_size) + " " +
         std::to_string(r.mtime_ns) + " " + std::to_string(r.offset) + " " + r.path;
}

bool DecodeHostRange(std::string_view data, uint32_t length, HostRange* out) {
  // A SHA-256 is 64 characters; a size never is.
  out->sha.clear();
  if (data.size() > 65 && data[64] == ' ' && IsShaHex(data.substr(0, 64))) {
    out->sha = std::string(data.substr(0, 64));
    data.remove_prefix(65);
  }
  std::istringstream in{std::string(data)};
  if (!(in >> out->file_size >> out->mtime_ns >> out->offset) || in.get() != ' ') return false;
  std::getline(in, out->path, '\0');
  out->length = length;
  return !out->path.empty() && out->path[0] == '/';
}

bool IsShaHex(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

std::string EncodeRemoteRef(const RemoteRef& r) {
  return r.sha + " " + r.pack + " " + std::to_string(r.offset) + " " + std::to_string(r.length) +
         (r.remote.empty() ? "" : " " + r.remote);
}

bool DecodeRemoteRef(std::string_view data, RemoteRef* out) {
  std::istringstream in{std::string(data)};
  if (!(in >> out->sha >> out->pack >> out->offset >> out->length)) return false;
  out->remote.clear();
  if (in.get() == ' ') std::getline(in, out->remote, '\0');
  return IsShaHex(out->sha) && IsShaHex(out->pack) && out->length > 0 &&
         out->length <= (65u << 20);
}

RemoteChunkSource* SetRemoteChunkSource(RemoteChunkSource* source) {
  return g_remote_source.exchange(source);
}
RemoteChunkSource* GetRemoteChunkSource() { return g_remote_source.load(); }

ChunkStore::ChunkStore(HashFunction hash, int compression_level, size_t cache_bytes)
    : hash_(hash ? std::move(hash) : HashFunction(Xxh3Hash)),
      level_(compression_level),
      cache_capacity_(cache_bytes) {}

ChunkHash ChunkStore::Hash(std::span<const uint8_t> bytes) const { return hash_(bytes); }

Encoded ChunkStore::Encode(std::span<const uint8_t> bytes) const {
  Encoded e;
  e.key = Hash(bytes);
  Compress(bytes, &e);
  return e;
}

void ChunkStore::Compress(std::span<const uint8_t> bytes, Encoded* out) const {
  Encoded& e = *out;
  e.size = bytes.size();
  // Compress into a per-thread scratch buffer, kept between calls, and copy
  // out only a result that is smaller: no zero-filled allocation per chunk,
  // nothing copied for data that does not compress.
  thread_local Bytes scratch;
  const size_t bound = ZSTD_compressBound(bytes.size());
  if (scratch.size() < bound) scratch.resize(bound);
  size_t n = ZSTD_compressCCtx(ThreadCctx(), scratch.data(), scratch.size(), bytes.data(),
                               bytes.size(), level_);
  if (!ZSTD_isError(n) && n < bytes.size()) {
    e.codec = Codec::kZstd;
    e.compressed.assign(scratch.begin(), scratch.begin() + static_cast<ptrdiff_t>(n));
  } else {
    e.codec = Codec::kRaw;
    e.compressed.clear();
  }
}

Result<ChunkId> ChunkStore::Put(sql::Connection& writer, std::span<const uint8_t> bytes,
                                const Encoded* encoded) {
  if (bytes.empty()) return InvalidArgument("empty chunk");
  const ChunkHash key = encoded != nullptr ? encoded->key : Hash(bytes);
  std::vector<ChunkId> candidates;
  {
    ASSIGN_OR_RETURN(sql::Statement find, writer.Prepare(kFindByHash));
    find.BindBlob(1, key);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, find.Step());
      if (!row) break;
      candidates.push_back(find.Int(0));
    }
  }
  // Same key is not proof of same bytes: compare before sharing.
  for (ChunkId id : candidates) {
    ASSIGN_OR_RETURN(auto existing, Get(writer, id));
    if (existing->size() == bytes.size() &&
        std::memcmp(existing->data(), bytes.data(), bytes.size()) == 0) {
      return id;
    }
  }

  Encoded local;
  if (encoded == nullptr) {
    Compress(bytes, &local);  // only now: a dedup hit needs no compression
    encoded = &local;
  }
  const bool use_zstd = encoded->codec == Codec::kZstd;
  ASSIGN_OR_RETURN(sql::Statement insert, writer.Prepare(kInsertChunk));
  insert.BindBlob(1, key)
      .Bind(2, static_cast<int64_t>(bytes.size()))
      .Bind(3, static_cast<int>(encoded->codec))
      .BindBlobNoCopy(4, use_zstd ? std::span<const uint8_t>(encoded->compressed) : bytes);
  RETURN_IF_ERROR(insert.Run());
  return writer.LastInsertRowId();
}

Result<ChunkId> ChunkStore::PutHostRange(sql::Connection& writer, const HostRange& range) {
  if (range.length == 0 || range.path.empty() || range.path[0] != '/') {
    return InvalidArgument("invalid host range of " + range.path);
  }
  const std::string data = EncodeHostRange(range);
  ASSIGN_OR_RETURN(sql::Statement insert, writer.Prepare(kInsertChunk));
  insert.BindBlob(1, std::span<const uint8_t>(kHostKey))
      .Bind(2, static_cast<int64_t>(range.length))
      .Bind(3, static_cast<int>(Codec::kHost))
      .BindBlobNoCopy(4, std::span<const uint8_t>(
                             reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  RETURN_IF_ERROR(insert.Run());
  return writer.LastInsertRowId();
}

Result<Bytes> ChunkStore::Load(sql::Connection& conn, ChunkId id, ChunkHash* key_out,
                               bool* is_reference, bool check_only) {
  ASSIGN_OR_RETURN(sql::Statement load, conn.Prepare(kLoadChunk));
  load.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, load.Step());
  if (!row) return Corruption(IdText(id) + " is missing");
  auto key = load.Blob(0);
  int64_t size = load.Int(1);
  int64_t codec = load.Int(2);
  auto data = load.Blob(3);
  if (codec == static_cast<int>(Codec::kHost)) {
    HostRange range;
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    if (size <= 0 || size > (64 << 20) ||
        !DecodeHostRange(text, static_cast<uint32_t>(size), &range)) {
      return Corruption(IdText(id) + " has a malformed host reference");
    }
    if (is_reference != nullptr) *is_reference = true;
    return ReadHostRange(range, check_only);
  }
  if (codec == static_cast<int>(Codec::kRemote)) {
    RemoteRef ref;
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    if (size <= 0 || size > (64 << 20) || !DecodeRemoteRef(text, &ref) || ref.remote.empty()) {
      return Corruption(IdText(id) + " has a malformed remote reference");
    }
    if (is_reference != nullptr) *is_reference = true;
    if (check_only) return Bytes{};  // fsck does not fetch
    RemoteChunkSource* source = GetRemoteChunkSource();
    if (source == nullptr) {
      return IoError(IdText(id) + " is still on remote " + ref.remote +
                     " and this program cannot fetch it");
    }
    return source->Fetch(conn, ref, static_cast<uint64_t>(size));
  }
  if (key_out != nullptr) {
    if (key.size() != key_out->size()) return Corruption(IdText(id) + " has a malformed key");
    std::memcpy(key_out->data(), key.data(), key.size());
  }
  if (size <= 0 || size > (64 << 20)) return Corruption(IdText(id) + " has an invalid size");
  Bytes plain(static_cast<size_t>(size));
  if (codec == static_cast<int>(Codec::kRaw)) {
    if (data.size() != plain.size()) return Corruption(IdText(id) + " has the wrong length");
    std::memcpy(plain.data(), data.data(), data.size());
  } else if (codec == static_cast<int>(Codec::kZstd)) {
    size_t n = ZSTD_decompressDCtx(ThreadDctx(), plain.data(), plain.size(), data.data(),
                                   data.size());
    if (ZSTD_isError(n) || n != plain.size()) {
      return Corruption(IdText(id) + " does not decompress to its recorded size");
    }
  } else {
    return Corruption(IdText(id) + " has unknown codec " + std::to_string(codec));
  }
  return plain;
}

Result<std::shared_ptr<const Bytes>> ChunkStore::Get(sql::Connection& conn, ChunkId id) {
  {
    std::scoped_lock lock(cache_mu_);
    auto it = index_.find(id);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  ASSIGN_OR_RETURN(Bytes plain, Load(conn, id, nullptr));
  auto shared = std::make_shared<const Bytes>(std::move(plain));
  CacheInsert(id, shared);
  return shared;
}

void ChunkStore::CacheInsert(ChunkId id, std::shared_ptr<const Bytes> bytes) {
  if (cache_capacity_ == 0) return;
  std::scoped_lock lock(cache_mu_);
  if (index_.count(id) != 0) return;
  cache_bytes_ += bytes->size();
  lru_.emplace_front(id, std::move(bytes));
  index_[id] = lru_.begin();
  while (cache_bytes_ > cache_capacity_ && !lru_.empty()) {
    cache_bytes_ -= lru_.back().second->size();
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

Result<GcStats> ChunkStore::CollectUnreferenced(sql::Connection& writer, ChunkId* after,
                                                uint64_t limit) {
  GcStats stats;
  ASSIGN_OR_RETURN(sql::Statement collect, writer.Prepare(kCollect));
  collect.Bind(1, *after).Bind(2, limit);
  for (;;) {
    ASSIGN_OR_RETURN(bool row, collect.Step());
    if (!row) break;
    *after = std::max<ChunkId>(*after, collect.Int(0));
    stats.chunks_freed++;
    stats.bytes_freed += static_cast<uint64_t>(collect.Int(1));
  }
  return stats;
}

Status ChunkStore::Verify(sql::Connection& conn, ChunkId id,
                          std::vector<IntegrityProblem>* problems) {
  auto report = [problems](const char* kind, std::string detail) {
    IntegrityProblem p;
    p.kind = kind;
    p.detail = std::move(detail);
    problems->push_back(std::move(p));
  };
  ChunkHash key{};
  bool reference = false;
  // Host references are checked against the file's size and mtime, not
  // read: fsck would otherwise read the whole host userland.
  Result<Bytes> plain = Load(conn, id, &key, &reference, /*check_only=*/true);
  if (!plain.ok()) {
    if (plain.status().code() == Code::kIoError) {
      report("host-changed", IdText(id) + ": " + plain.status().message());
      return Status::Ok();
    }
    if (plain.status().code() != Code::kCorruption) return plain.status();
    report("bad-chunk", plain.status().message());
    return Status::Ok();
  }
  // No content here to hash: a host reference was checked against its file,
  // a remote one is checked against its SHA-256 when fetched.
  if (reference) return Status::Ok();
  if (Hash(*plain) != key) {
    report("bad-hash", IdText(id) + " does not hash to its key");
  }
  return Status::Ok();
}

}  // namespace strata::chunks
