#include "catalog/db.h"

#include <sys/statvfs.h>

#include <filesystem>

#include "catalog/schema.h"

#include <cstdio>
#include <utility>

namespace strata::catalog {

namespace {
// Readers kept for reuse; more may exist while borrowed.
constexpr size_t kMaxIdleReaders = 16;

// The Db whose writer lease this thread holds, if any: its reads must use
// the writer connection it already has rather than wait for it.
thread_local const Db* t_writer_of = nullptr;

// Read transactions this thread holds on pooled reader connections. A
// thread holding one must not wait for a checkpoint (Checkpointer::CatchUp),
// which waits for every reader to leave the WAL: its own read would stall it.
thread_local int t_pooled_reads = 0;

}  // namespace

WriterLease::WriterLease(Db* db, std::unique_lock<std::mutex> lock, sql::Connection* conn)
    : db_(db), lock_(std::move(lock)), conn_(conn) {
  t_writer_of = db_;
  if (db_->checkpointer_ != nullptr) db_->checkpointer_->WriterBusy(true);
}

WriterLease::WriterLease(WriterLease&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), lock_(std::move(other.lock_)), conn_(other.conn_) {}

WriterLease::~WriterLease() {
  if (db_ == nullptr) return;
  if (t_writer_of == db_) t_writer_of = nullptr;
  if (db_->checkpointer_ != nullptr) db_->checkpointer_->WriterBusy(false);
}

ReaderLease::~ReaderLease() {
  if (pooled_ == nullptr) return;  // the writer's: its transaction is the batch's
  --t_pooled_reads;
  // End the lease's read transaction; a connection stuck in one would serve
  // a stale state forever, so it is dropped rather than pooled.
  if (pooled_->InTransaction()) (void)pooled_->Exec("ROLLBACK");
  if (!pooled_->InTransaction()) db_->ReturnReader(std::move(pooled_));
}

namespace {

// Whether the file system holding `path` has (next to) no space left.
bool DiskIsFull(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  struct statvfs st {};
  if (statvfs(dir.empty() ? "." : dir.c_str(), &st) != 0) return false;
  return uint64_t{st.f_bavail} * st.f_frsize < (1u << 20);
}

}  // namespace

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool read_only,
                                     uint32_t block_size_for_new_store, int64_t now_ns) {
  RETURN_IF_ERROR(PrecheckStoreFile(path));
  // Every error names the file, once (a damaged file can fail anywhere below).
  // Opening needs a little space even to read (SQLite's -shm file beside
  // the store): on a full disk, say so rather than "disk I/O error".
  auto named = [&](const Status& s) {
    Status out = s.message().find(path) != std::string::npos ? s : s.WithContext("store " + path);
    if ((s.code() == Code::kIoError || s.code() == Code::kNoSpace) && DiskIsFull(path)) {
      return Status(Code::kNoSpace, out.message() +
                                        " (the disk holding it is full: free some space, even a"
                                        " little, to open it)");
    }
    return out;
  };
  auto db = std::unique_ptr<Db>(new Db(path, read_only));
  if (read_only) {
    auto conn = db->OpenConnection(false);
    if (!conn.ok()) return named(conn.status());
    auto block_size = CheckSchema(**conn, path);
    if (!block_size.ok()) return named(block_size.status());
    db->block_size_ = *block_size;
    db->readers_.push_back(std::move(conn).value());
    return db;
  }
  auto writer = db->OpenConnection(true);
  if (!writer.ok()) return named(writer.status());
  db->writer_ = std::move(writer).value();
  auto block_size = EnsureSchema(*db->writer_, path, block_size_for_new_store, now_ns);
  if (!block_size.ok()) return named(block_size.status());
  db->block_size_ = *block_size;
  // WAL only once the file is known to be ours: switching a foreign database
  // to WAL would rewrite its header. WAL: readers keep working while the
  // writer commits.
  Status wal = db->writer_->Exec("PRAGMA journal_mode = WAL");
  if (!wal.ok()) return named(wal);
  // Checkpoints run on their own thread instead of inside commits; the WAL
  // file is cut back to 64 MiB whenever a checkpoint lets it restart.
  auto checkpointer = Checkpointer::Start(path);
  if (!checkpointer.ok()) return named(checkpointer.status());
  db->checkpointer_ = std::move(checkpointer).value();
  db->writer_->OnWalCommit(
      [c = db->checkpointer_.get()](int wal_frames) { c->Committed(wal_frames); });
  Status limit = db->writer_->Exec("PRAGMA journal_size_limit = 67108864");
  if (!limit.ok()) return named(limit);
  db->batch_committer_ = std::thread([d = db.get()] { d->RunBatchCommitter(); });
  return db;
}

Db::~Db() {
  if (batch_committer_.joinable()) {
    {
      std::scoped_lock lock(writer_mu_);
      stopping_ = true;
    }
    batch_cv_.notify_one();
    batch_committer_.join();
  }
  if (writer_ != nullptr) {
    std::scoped_lock lock(writer_mu_);
    (void)CommitBatch();
    writer_->OnWalCommit(nullptr);
  }
  checkpointer_.reset();
}

Result<std::unique_ptr<sql::Connection>> Db::OpenConnection(bool writer) {
  ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(path_, writer ? sql::OpenMode::kReadWriteCreate
                                                                                                                                    : sql::OpenMode::kQueryOnly));
  if (writer) {
    // (WAL mode is set by Open, after the schema check.) NORMAL: a commit is
    // safe from process crashes; SetDurable(FULL) makes fsync's commits survive
    // power loss too.
    RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = NORMAL"));
    RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = OFF"));
    // Savepoints of a batch keep their undo records in memory.
    RETURN_IF_ERROR(conn->Exec("PRAGMA temp_store = MEMORY"));
    // A flush of a full write buffer is one transaction of up to ~140 MiB of
    // pages. Pages spilled to the WAL mid-transaction and then changed again
    // are rewritten in place, which makes the commit read back and re-sum
    // every frame after the first such page (half the WAL, measured). So the
    // writer's cache holds a whole flush before it spills.
    RETURN_IF_ERROR(conn->Exec("PRAGMA cache_spill = 65536"));  // 256 MiB of pages
    // Debian builds SQLite with secure_delete on: every freed page (a
    // deleted chunk's 16 overflow pages) is overwritten with zeros, which
    // doubles the I/O of a delete and makes gc need as much WAL as it frees
    // (it failed on a full disk). FAST zeroes deleted cells only on pages
    // that are written anyway; freed pages go to the freelist, and gc cuts
    // them off the file.
    RETURN_IF_ERROR(conn->Exec("PRAGMA secure_delete = FAST"));
  }
  // 16 MiB per reader. The writer keeps 64 MiB: after a large flush the
  // cache holds mostly that flush's chunk pages, and the b-tree pages the
  // next flush needs must still fit beside them (large flushes bypass the
  // page cache, so a miss is a disk read).
  RETURN_IF_ERROR(conn->Exec(writer ? "PRAGMA cache_size = -65536" : "PRAGMA cache_size = -16384"));
  return conn;
}

Result<WriterLease> Db::Writer() {
  if (read_only_) return ReadOnly("store " + path_ + " is open read-only");
  // Low on space, the last commit is copied back before the next write
  // starts (see Checkpointer), without the writer mutex: the checkpoint
  // waits for an open batch to commit, and the batch committer needs it.
  if (checkpointer_ != nullptr && t_pooled_reads == 0) checkpointer_->CatchUp();
  std::unique_lock lock(writer_mu_);
  return WriterLease(this, std::move(lock), writer_.get());
}

Result<ReaderLease> Db::Reader() {
  if (batch_open_.load(std::memory_order_acquire)) {
    if (t_writer_of == this) return ReaderLease(std::unique_lock<std::mutex>(), writer_.get());
    std::unique_lock lock(writer_mu_);
    if (batch_open_.load(std::memory_order_relaxed)) {
      return ReaderLease(std::move(lock), writer_.get());
    }
  }
  std::unique_ptr<sql::Connection> conn;
  {
    std::scoped_lock lock(pool_mu_);
    if (!readers_.empty()) {
      conn = std::move(readers_.back());
      readers_.pop_back();
    }
  }
  if (conn == nullptr) {
    ASSIGN_OR_RETURN(conn, OpenConnection(false));
  }
  // One read transaction per lease: every statement of it sees the same
  // commit, so a read made of several statements never mixes two states (an
  // inode from one, its blocks from the next) nor looks up a chunk that a
  // later commit overwrote and garbage-collected.
  RETURN_IF_ERROR(conn->Exec("BEGIN"));
  ++t_pooled_reads;
  return ReaderLease(this, std::move(conn));
}

void Db::ReturnReader(std::unique_ptr<sql::Connection> conn) {
  std::scoped_lock lock(pool_mu_);
  if (readers_.size() < kMaxIdleReaders) readers_.push_back(std::move(conn));
}

Status Db::WriteTransaction(WriterLease& lease, Commit commit, int64_t now_ns,
                            const std::function<Status()>& body) {
  sql::Connection& conn = lease.conn();
  if (commit == Commit::kBatched) {
    if (!batch_open_.load(std::memory_order_relaxed)) {
      RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
      batch_opened_ = std::chrono::steady_clock::now();
      batch_changes_ = 0;
      batch_open_.store(true, std::memory_order_release);
      batch_cv_.notify_one();
    }
    RETURN_IF_ERROR(conn.Exec("SAVEPOINT change"));
    Status s = body();
    if (!s.ok()) {
      // Undo this body only; the batch stays. If even that fails, the batch goes.
      Status undo = conn.Exec("ROLLBACK TO change");
      if (undo.ok()) undo = conn.Exec("RELEASE change");
      if (!undo.ok()) {
        // SQLite rolled the whole transaction back (disk full, I/O error):
        // the changes acknowledged before are gone too. Tell the next fsync.
        (void)conn.Exec("ROLLBACK");
        batch_open_.store(false, std::memory_order_release);
        if (lost_batch_.ok()) lost_batch_ = s.WithContext("a batch of changes was lost");
      }
      return s;
    }
    RETURN_IF_ERROR(conn.Exec("RELEASE change"));
    if (++batch_changes_ >= kMaxBatchChanges) return CommitBatch();
    return Status::Ok();
  }
  // A commit now: the batch goes first, in its own commit, so that a long
  // transaction (a flush of many megabytes) never holds readers waiting for
  // the writer connection; and because synchronous cannot change inside a
  // transaction.
  const bool durable = commit == Commit::kDurable;
  Status batch = CommitBatch();
  if (!batch.ok()) {
    // A durable commit tells its caller of the lost batch now, once.
    if (durable) lost_batch_ = Status::Ok();
    return batch;
  }
  if (durable && !lost_batch_.ok()) return std::exchange(lost_batch_, Status::Ok());
  if (durable) RETURN_IF_ERROR(conn.Exec("PRAGMA synchronous = FULL"));
  Status s = [&]() -> Status {
    ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(conn));
    RETURN_IF_ERROR(body());
    if (durable) {
      ASSIGN_OR_RETURN(sql::Statement mark,
                       conn.Prepare("INSERT OR REPLACE INTO meta(key, value) "
                                    "VALUES ('last_sync_ns', ?1)"));
      RETURN_IF_ERROR(mark.Bind(1, now_ns).Run());
    }
    return txn.Commit();
  }();
  if (durable) {
    Status restore = conn.Exec("PRAGMA synchronous = NORMAL");
    if (s.ok()) s = restore;
  }
  return s;
}

Status Db::CommitOpenBatch() {
  if (!batch_open_.load(std::memory_order_acquire)) return Status::Ok();
  ASSIGN_OR_RETURN(WriterLease lease, Writer());
  return CommitBatch();
}

Status Db::CheckpointNow() {
  if (checkpointer_ == nullptr) return Status::Ok();  // read-only: nothing of ours in the WAL
  RETURN_IF_ERROR(CommitOpenBatch());
  return checkpointer_->CheckpointNow().WithContext("checkpointing " + path_);
}

Status Db::CommitBatch() {
  if (!batch_open_.load(std::memory_order_relaxed)) return Status::Ok();
  Status s = writer_->Exec("COMMIT");
  // A failed COMMIT (disk full, I/O error) has rolled the batch back.
  if (!s.ok() && writer_->InTransaction()) (void)writer_->Exec("ROLLBACK");
  batch_open_.store(false, std::memory_order_release);
  s = s.WithContext("committing a batch of changes");
  // The batch held changes already acknowledged to other callers: whoever
  // committed it (the committer thread, a flush, a snapshot), the next
  // durable commit must report the loss. (Fault injection found this: a
  // snapshot whose batch commit failed left the next fsync returning OK
  // although acknowledged changes were gone.)
  if (!s.ok() && lost_batch_.ok()) lost_batch_ = s;
  return s;
}

void Db::RunBatchCommitter() {
  std::unique_lock lock(writer_mu_);
  while (!stopping_) {
    if (!batch_open_.load(std::memory_order_relaxed)) {
      batch_cv_.wait(lock, [&] { return stopping_ || batch_open_.load(std::memory_order_relaxed); });
      continue;
    }
    auto due = batch_opened_ + kBatchWindow;
    if (std::chrono::steady_clock::now() < due) {
      batch_cv_.wait_until(lock, due);
      continue;
    }
    Status s = CommitBatch();
    if (!s.ok()) {
      // Nobody waits for this commit: report it now (CommitBatch keeps it
      // for the next fsync).
      fprintf(stderr, "strata: %s: %s\n", path_.c_str(), s.ToString().c_str());
    }
  }
}

}  // namespace strata::catalog
