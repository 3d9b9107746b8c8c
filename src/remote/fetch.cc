#include "remote/fetch.h"

#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "catalog/remotes.h"
#include "chunks/chunk_store.h"
#include "remote/layout.h"
#include "remote/pack.h"
#include "remote/remote.h"

namespace strata::remote {

namespace {

// Both statements match the references by key, size and the SHA-256 that
// leads their text, so only a reference to these very bytes is filled.
constexpr const char* kRecordSha =
    "INSERT OR REPLACE INTO chunk_sha(chunk, sha) SELECT id, ?1 FROM chunks"
    " WHERE hash = ?2 AND size = ?3 AND codec = 3 AND CAST(substr(data, 1, 64) AS TEXT) = ?1";
constexpr const char* kFill =
    "UPDATE chunks SET codec = ?4, data = ?5"
    " WHERE hash = ?2 AND size = ?3 AND codec = 3 AND CAST(substr(data, 1, 64) AS TEXT) = ?1";
constexpr const char* kStillRemote = "SELECT id, size, data FROM chunks WHERE codec = 3";

constexpr uint64_t kMaxReadAhead = 8u << 20;
constexpr size_t kRecentBytes = 64u << 20;

// A connection that writes fetched chunks. Their commits need not be
// durable (a fill that is lost is fetched again), so they are not synced
// (WAL mode stays consistent); a cache big enough for a whole range keeps
// pages from spilling into the WAL before the commit.
Result<std::unique_ptr<sql::Connection>> OpenFillConnection(const std::string& store_path) {
  ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(store_path, sql::OpenMode::kReadWriteCreate));
  RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536"));
  return conn;
}

// A range of one pack that holds entries wanted, for FetchMissing.
struct Range {
  std::string pack;
  uint64_t offset = 0;
  uint64_t end = 0;
  uint64_t chunks = 0;
};

// The process's source of remote chunks (installed once, never destroyed:
// FUSE threads may be reading through it until the process ends).
class LazyFetcher final : public chunks::RemoteChunkSource {
 public:
  void SetEnv(Getenv env) {
    std::scoped_lock lock(mu_);
    env_ = std::move(env);
  }
  Result<chunks::Bytes> Fetch(sql::Connection& conn, const chunks::RemoteRef& ref,
                              uint64_t size) override;
  bool Sha256Matches(std::span<const uint8_t> bytes, std::string_view sha) override;
  void Flush() override;
  void Prepare() override;

 private:
  struct PackState {
    uint64_t next = 0;    // where the last read of the pack ended
    uint64_t window = 0;  // bytes read past a request, grown while reads go forward
  };
  struct Pending {
    std::string store;
    std::vector<FetchedChunk> chunks;
  };

  // The entries within `length` bytes from the one `ref` names (of `size`
  // plain bytes), which comes first.
  Result<std::vector<FetchedChunk>> Read(sql::Connection& conn, const chunks::RemoteRef& ref,
                                         const std::string& store, uint64_t length,
                                         uint64_t size);
  std::shared_ptr<const std::vector<uint8_t>> Recent(const std::string& sha);
  void Remember(const std::vector<FetchedChunk>& chunks);
  void Enqueue(Pending pending);
  void FillLoop();

  std::mutex mu_;
  Getenv env_;                              // guarded by mu_
  std::map<std::string, PackState> packs_;  // by store and pack; guarded by mu_
  std::list<std::pair<std::string, std::shared_ptr<const std::vector<uint8_t>>>> recent_;
  std::unordered_map<std::string, decltype(recent_)::iterator> recent_index_;
  size_t recent_bytes_ = 0;

  std::mutex fill_mu_;
  std::condition_variable fill_cv_;
  std::deque<Pending> queue_;  // guarded by fill_mu_
  bool filling_ = false;       // a batch is being written; guarded by fill_mu_
  bool started_ = false;       // guarded by fill_mu_
};

Result<std::vector<FetchedChunk>> LazyFetcher::Read(sql::Connection& conn,
                                                    const chunks::RemoteRef& ref,
                                                    const std::string& store, uint64_t length,
                                                    uint64_t size) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  auto remote = catalog::GetRemote(conn, ref.remote);
  if (!remote.ok()) {
    return IoError("chunk " + ref.sha + " is on remote '" + ref.remote +
                   "', which this store no longer has: add it again (strata remote add)");
  }
  // One client per thread and remote: a client runs one request at a time.
  thread_local std::map<std::string, std::unique_ptr<S3Client>> clients;
  const std::string id = store + "\n" + ref.remote;
  auto it = clients.find(id);
  if (it == clients.end()) {
    Getenv env;
    {
      std::scoped_lock lock(mu_);
      env = env_;
    }
    auto client = Connect(*remote, env);
    if (!client.ok()) return client.status();
    it = clients.emplace(id, std::move(client).value()).first;
  }
  ASSIGN_OR_RETURN(std::vector<FetchedChunk> fetched,
                   FetchEntries(*it->second, *api, *remote, ref.pack, ref.offset, length));
  if (fetched.empty() || fetched.front().sha != ref.sha || fetched.front().plain->size() != size) {
    return Corruption("remote object " + PackKey(*remote, ref.pack) + " has no chunk " + ref.sha +
                      " of " + std::to_string(size) + " bytes at offset " +
                      std::to_string(ref.offset));
  }
  return fetched;
}

Result<chunks::Bytes> LazyFetcher::Fetch(sql::Connection& conn, const chunks::RemoteRef& ref,
                                         uint64_t size) {
  if (auto plain = Recent(ref.sha); plain != nullptr && plain->size() == size) return *plain;
  const char* file = sqlite3_db_filename(conn.handle(), "main");
  const std::string store = file != nullptr ? file : "";
  const std::string pack_id = store + "\n" + ref.pack;
  uint64_t length = ref.length;
  {
    std::scoped_lock lock(mu_);
    PackState& state = packs_[pack_id];
    const bool forward = state.next != 0 && ref.offset == state.next;
    state.window = forward ? std::min(std::max<uint64_t>(state.window * 2, 256u << 10), kMaxReadAhead)
                           : 0;
    length = std::max<uint64_t>(length, state.window);
  }
  auto fetched = Read(conn, ref, store, length, size);
  if (!fetched.ok()) {
    // A read that fails says why in the log: the caller sees only EIO.
    const std::string why = "cannot fetch chunk " + ref.sha + " from remote '" + ref.remote +
                            "': " + fetched.status().message();
    LogLine(why);
    return IoError(why);
  }
  chunks::Bytes out = *fetched->front().plain;
  {
    std::scoped_lock lock(mu_);
    packs_[pack_id].next = fetched->back().end;
  }
  Remember(*fetched);
  if (!store.empty()) Enqueue(Pending{store, std::move(fetched).value()});
  return out;
}

std::shared_ptr<const std::vector<uint8_t>> LazyFetcher::Recent(const std::string& sha) {
  std::scoped_lock lock(mu_);
  auto it = recent_index_.find(sha);
  if (it == recent_index_.end()) return nullptr;
  recent_.splice(recent_.begin(), recent_, it->second);
  return it->second->second;
}

void LazyFetcher::Remember(const std::vector<FetchedChunk>& chunks) {
  std::scoped_lock lock(mu_);
  for (const FetchedChunk& c : chunks) {
    if (recent_index_.count(c.sha) != 0) continue;
    recent_.emplace_front(c.sha, c.plain);
    recent_index_[c.sha] = recent_.begin();
    recent_bytes_ += c.plain->size();
  }
  while (recent_bytes_ > kRecentBytes && !recent_.empty()) {
    recent_bytes_ -= recent_.back().second->size();
    recent_index_.erase(recent_.back().first);
    recent_.pop_back();
  }
}

void LazyFetcher::Enqueue(Pending pending) {
  std::scoped_lock lock(fill_mu_);
  queue_.push_back(std::move(pending));
  if (!started_) {
    started_ = true;
    std::thread([this] { FillLoop(); }).detach();
  }
  fill_cv_.notify_all();
}

// Writes fetched chunks into their stores, one transaction per batch, on a
// connection of its own: a read may come from a thread that is inside the
// store's write transaction, which it would wait for.
void LazyFetcher::FillLoop() {
  std::map<std::string, std::unique_ptr<sql::Connection>> writers;
  std::unique_lock lock(fill_mu_);
  for (;;) {
    fill_cv_.wait(lock, [&] { return !queue_.empty(); });
    Pending batch = std::move(queue_.front());
    queue_.pop_front();
    filling_ = true;
    lock.unlock();
    Status s = [&]() -> Status {
      auto& writer = writers[batch.store];
      if (writer == nullptr) {
        ASSIGN_OR_RETURN(writer, OpenFillConnection(batch.store));
      }
      ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(*writer));
      RETURN_IF_ERROR(FillChunks(*writer, batch.chunks).status());
      return txn.Commit();
    }();
    // Not kept is not lost: the chunk is fetched again on its next read.
    if (!s.ok()) writers.erase(batch.store);
    lock.lock();
    filling_ = false;
    fill_cv_.notify_all();
  }
}

bool LazyFetcher::Sha256Matches(std::span<const uint8_t> bytes, std::string_view sha) {
  auto api = LoadNetApi();
  return api.ok() &&
         ShaHex(**api, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())) ==
             sha;
}

void LazyFetcher::Prepare() {
  // libcurl and libcrypto take milliseconds to load (net_api.h): the time of
  // a mounted session's first read from the remote, unless loaded now.
  static std::once_flag once;
  std::call_once(once, [] { std::thread([] { (void)LoadNetApi(); }).detach(); });
}

void LazyFetcher::Flush() {
  std::unique_lock lock(fill_mu_);
  fill_cv_.wait(lock, [&] { return queue_.empty() && !filling_; });
}

}  // namespace

Result<std::vector<FetchedChunk>> FetchEntries(S3Client& client, const NetApi& api,
                                               const RemoteInfo& remote, const std::string& pack,
                                               uint64_t offset, uint64_t length) {
  const std::string key = PackKey(remote, pack);
  ASSIGN_OR_RETURN(std::string bytes, client.GetRange(key, offset, length));
  ASSIGN_OR_RETURN(std::vector<PackEntry> entries, ParsePackEntries(bytes, offset, key));
  std::vector<FetchedChunk> out;
  out.reserve(entries.size());
  for (const PackEntry& e : entries) {
    ASSIGN_OR_RETURN(std::vector<uint8_t> plain, DecodePackEntry(api, e, key));
    out.push_back(FetchedChunk{e.sha, e.offset + e.length, e.codec, std::string(e.stored),
                               std::make_shared<const std::vector<uint8_t>>(std::move(plain))});
  }
  return out;
}

Result<uint64_t> FillChunks(sql::Connection& writer, std::span<const FetchedChunk> chunks) {
  uint64_t filled = 0;
  ASSIGN_OR_RETURN(sql::Statement record, writer.Prepare(kRecordSha));
  ASSIGN_OR_RETURN(sql::Statement fill, writer.Prepare(kFill));
  for (const FetchedChunk& c : chunks) {
    const ChunkHash key = Xxh3Hash(*c.plain);
    const auto size = static_cast<int64_t>(c.plain->size());
    RETURN_IF_ERROR(record.BindText(1, c.sha).BindBlob(2, key).Bind(3, size).Run());
    RETURN_IF_ERROR(fill.BindText(1, c.sha)
                        .BindBlob(2, key)
                        .Bind(3, size)
                        .Bind(4, c.codec)
                        .BindBytes(5, c.stored)
                        .Run());
    filled += static_cast<uint64_t>(writer.Changes());
  }
  return filled;
}

Result<TransferStats> FetchMissing(const std::string& store_path, const RemoteInfo& remote,
                                   int parallel, const Progress& progress, const Getenv& env) {
  TransferStats stats;
  // The entries wanted, by pack and offset, made into ranges of at most a
  // pack's target size with gaps of at most 1 MiB.
  std::map<std::string, std::map<uint64_t, uint32_t>> wanted;
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(store_path, sql::OpenMode::kQueryOnly));
    ASSIGN_OR_RETURN(sql::Statement s, conn->PrepareUncached(kStillRemote));
    RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) {
      chunks::RemoteRef ref;
      if (chunks::DecodeRemoteRef(row.BlobString(2), &ref) && ref.remote == remote.name) {
        wanted[ref.pack][ref.offset] = ref.length;
      }
      return Status::Ok();
    }));
  }
  std::vector<Range> ranges;
  for (const auto& [pack, entries] : wanted) {
    for (const auto& [offset, length] : entries) {
      if (ranges.empty() || ranges.back().pack != pack || offset > ranges.back().end + (1u << 20) ||
          offset + length - ranges.back().offset > kPackTarget) {
        ranges.push_back(Range{pack, offset, offset, 0});
      }
      ranges.back().end = std::max<uint64_t>(ranges.back().end, offset + length);
      ranges.back().chunks++;
      stats.chunks++;
    }
  }
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  ASSIGN_OR_RETURN(auto writer, OpenFillConnection(store_path));
  // One checkpoint at the end (when the last connection closes), not one
  // per range: the writer is what limits an eager pull.
  RETURN_IF_ERROR(writer->Exec("PRAGMA wal_autocheckpoint = 0"));
  std::mutex writer_mu;
  std::atomic<uint64_t> chunks_done{0};
  S3Counters counters;
  RETURN_IF_ERROR(ForEachParallel(
      ranges.size(), parallel, remote, env, "",
      [&](S3Client& client, sql::Connection*, size_t i) -> Status {
        const Range& r = ranges[i];
        ASSIGN_OR_RETURN(std::vector<FetchedChunk> fetched,
                         FetchEntries(client, *api, remote, r.pack, r.offset, r.end - r.offset));
        std::scoped_lock lock(writer_mu);
        ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(*writer));
        RETURN_IF_ERROR(FillChunks(*writer, fetched).status());
        RETURN_IF_ERROR(txn.Commit());
        const uint64_t done = chunks_done += r.chunks;
        if (progress) progress(done, stats.chunks);
        return Status::Ok();
      },
      nullptr, &counters));
  stats.sent = chunks_done.load();
  stats.requests = counters.requests;
  stats.bytes = counters.bytes_received;
  return stats;
}

void InstallLazyFetcher(Getenv env) {
  static LazyFetcher* fetcher = new LazyFetcher();  // never destroyed, see above
  fetcher->SetEnv(std::move(env));
  chunks::SetRemoteChunkSource(fetcher);
}

}  // namespace strata::remote
