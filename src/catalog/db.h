// Db: the connections of one open store. One writer connection behind a
// mutex, and a pool of reader connections so that reads never wait for the
// writer's commit (WAL mode).
#ifndef STRATA_CATALOG_DB_H_
#define STRATA_CATALOG_DB_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/checkpointer.h"
#include "sql/database.h"
#include "strata/status.h"

namespace strata::catalog {

class Db;

// Exclusive use of the writer connection while alive.
class WriterLease {
 public:
  WriterLease(Db* db, std::unique_lock<std::mutex> lock, sql::Connection* conn);
  ~WriterLease();
  WriterLease(WriterLease&& other) noexcept;
  WriterLease(const WriterLease&) = delete;
  WriterLease& operator=(const WriterLease&) = delete;
  sql::Connection& conn() { return *conn_; }

 private:
  Db* db_;
  std::unique_lock<std::mutex> lock_;
  sql::Connection* conn_;
};

// A connection to read with, in a read transaction so that all its
// statements see one state; released on destruction. Usually a pooled
// reader connection that sees the last commit. While a batch of
// uncommitted changes is open (see Db::WriteTransaction) it is the writer
// connection instead, so that every read sees every change already made.
class ReaderLease {
 public:
  // A pooled connection, in its own read transaction.
  ReaderLease(Db* db, std::unique_ptr<sql::Connection> conn) : db_(db), pooled_(std::move(conn)) {}
  // The writer connection, inside the open batch; `lock` (when it owns the
  // writer mutex) is held until destruction.
  ReaderLease(std::unique_lock<std::mutex> lock, sql::Connection* writer)
      : writer_lock_(std::move(lock)), writer_(writer) {}
  ~ReaderLease();
  ReaderLease(ReaderLease&& other) noexcept = default;
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  sql::Connection& conn() { return pooled_ != nullptr ? *pooled_ : *writer_; }

 private:
  Db* db_ = nullptr;
  std::unique_ptr<sql::Connection> pooled_;
  std::unique_lock<std::mutex> writer_lock_;
  sql::Connection* writer_ = nullptr;
};

// How a write transaction ends.
enum class Commit {
  // Joins the open batch: committed with the changes made in the next few
  // milliseconds (Db::kBatchWindow), in one commit. Safe from a crash once
  // committed; readers of this Db see it at once.
  kBatched,
  // Committed before returning (with the open batch, if any).
  kNow,
  // Committed before returning and synced to disk with every earlier commit.
  kDurable,
};

class Db {
 public:
  // Opens (creating if needed) the store file and its schema.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool read_only,
                                          uint32_t block_size_for_new_store, int64_t now_ns);
  ~Db();

  const std::string& path() const { return path_; }
  uint32_t block_size() const { return block_size_; }
  bool read_only() const { return read_only_; }

  // Blocks until the writer connection is free. ReadOnly error on a read-only store.
  Result<WriterLease> Writer();
  // A reader connection; opens a new one when the pool is empty.
  Result<ReaderLease> Reader();

  // Runs `body` in one write transaction on the writer connection of
  // `lease` and commits it as `commit` says. A durable commit is synced to
  // disk together with every earlier commit (synchronous=FULL for this
  // commit only); it always writes meta.last_sync_ns, because a commit that
  // writes nothing syncs nothing. On failure nothing of `body` remains.
  //
  // Batching: a commit costs far more than a small change (WAL frames,
  // file locks), and a file system makes one small change per request.
  // Batched bodies run in a savepoint of one long transaction, committed by
  // a background thread kBatchWindow after it opened, or after
  // kMaxBatchChanges changes, or by the next kNow or kDurable transaction.
  // Readers of this Db then read through the writer connection (see
  // ReaderLease); other processes see the batch once it commits.
  Status WriteTransaction(WriterLease& lease, Commit commit, int64_t now_ns,
                          const std::function<Status()>& body);

  // Whether the background checkpointer has copied every commit so far back
  // into the store file (true for a read-only store). For tests.
  bool CheckpointsCaughtUp() { return checkpointer_ == nullptr || checkpointer_->CaughtUp(); }

  // Commits the open batch, if any, now.
  Status CommitOpenBatch();
  // Copies every commit into the store file and truncates the WAL (see
  // Checkpointer::CheckpointNow). Call it holding no lease.
  Status CheckpointNow();

  static constexpr std::chrono::milliseconds kBatchWindow{10};
  static constexpr int kMaxBatchChanges = 4096;

 private:
  friend class ReaderLease;
  friend class WriterLease;
  Db(std::string path, bool read_only) : path_(std::move(path)), read_only_(read_only) {}
  Result<std::unique_ptr<sql::Connection>> OpenConnection(bool writer);
  void ReturnReader(std::unique_ptr<sql::Connection> conn);
  // With writer_mu_ held: commits the open batch, if any.
  Status CommitBatch();
  // The background thread that commits batches when their window is over.
  void RunBatchCommitter();

  const std::string path_;
  const bool read_only_;
  uint32_t block_size_ = 0;
  std::mutex writer_mu_;
  std::unique_ptr<sql::Connection> writer_;  // guarded by writer_mu_
  std::unique_ptr<Checkpointer> checkpointer_;  // fed by the writer's OnWalCommit
  // The open batch. batch_open_ is written under writer_mu_ and may be read
  // without it (a hint, checked again under the lock).
  std::atomic<bool> batch_open_{false};
  std::chrono::steady_clock::time_point batch_opened_;  // guarded by writer_mu_
  int batch_changes_ = 0;                                // guarded by writer_mu_
  std::condition_variable batch_cv_;                     // with writer_mu_
  bool stopping_ = false;                                // guarded by writer_mu_
  // A batch that failed to commit (in the committer thread or in any
  // caller's commit), for the next durable commit to report.
  Status lost_batch_;                                     // guarded by writer_mu_
  std::thread batch_committer_;
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<sql::Connection>> readers_;  // guarded by pool_mu_
};

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_DB_H_
