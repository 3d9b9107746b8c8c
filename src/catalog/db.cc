#include "catalog/db.h"

#include "catalog/schema.h"

namespace strata::catalog {

namespace {
// Readers kept for reuse; more may exist while borrowed.
constexpr size_t kMaxIdleReaders = 16;
}  // namespace

ReaderLease::~ReaderLease() {
  if (conn_ == nullptr) return;
  // End the lease's read transaction; a connection stuck in one would serve
  // a stale state forever, so it is dropped rather than pooled.
  if (!sqlite3_get_autocommit(conn_->handle())) (void)conn_->Exec("ROLLBACK");
  if (sqlite3_get_autocommit(conn_->handle())) db_->ReturnReader(std::move(conn_));
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool read_only,
                                     uint32_t block_size_for_new_store, int64_t now_ns) {
  RETURN_IF_ERROR(PrecheckStoreFile(path));
  // Every error names the file, once (a damaged file can fail anywhere below).
  auto named = [&](const Status& s) {
    return s.message().find(path) != std::string::npos ? s : s.WithContext("store " + path);
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
  return db;
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
  }
  RETURN_IF_ERROR(conn->Exec("PRAGMA cache_size = -16384"));  // 16 MiB per connection
  return conn;
}

Result<WriterLease> Db::Writer() {
  if (read_only_) return ReadOnly("store " + path_ + " is open read-only");
  std::unique_lock lock(writer_mu_);
  return WriterLease(std::move(lock), writer_.get());
}

Result<ReaderLease> Db::Reader() {
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
  return ReaderLease(this, std::move(conn));
}

void Db::ReturnReader(std::unique_ptr<sql::Connection> conn) {
  std::scoped_lock lock(pool_mu_);
  if (readers_.size() < kMaxIdleReaders) readers_.push_back(std::move(conn));
}

Status Db::WriteTransaction(sql::Connection& conn, bool durable, int64_t now_ns,
                            const std::function<Status()>& body) {
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

}  // namespace strata::catalog
