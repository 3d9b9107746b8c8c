#include "catalog/db.h"

#include "catalog/schema.h"

namespace strata::catalog {

namespace {
// Readers kept for reuse; more may exist while borrowed.
constexpr size_t kMaxIdleReaders = 16;
}  // namespace

ReaderLease::~ReaderLease() {
  if (conn_ != nullptr) db_->ReturnReader(std::move(conn_));
}

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, bool read_only,
                                     uint32_t block_size_for_new_store, int64_t now_ns) {
  RETURN_IF_ERROR(PrecheckStoreFile(path));
  auto db = std::unique_ptr<Db>(new Db(path, read_only));
  if (read_only) {
    ASSIGN_OR_RETURN(auto conn, db->OpenConnection(false));
    ASSIGN_OR_RETURN(db->block_size_, CheckSchema(*conn, path));
    db->readers_.push_back(std::move(conn));
    return db;
  }
  ASSIGN_OR_RETURN(db->writer_, db->OpenConnection(true));
  ASSIGN_OR_RETURN(db->block_size_,
                   EnsureSchema(*db->writer_, path, block_size_for_new_store, now_ns));
  return db;
}

Result<std::unique_ptr<sql::Connection>> Db::OpenConnection(bool writer) {
  ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(path_, writer ? sql::OpenMode::kReadWriteCreate
                                                                                                                                    : sql::OpenMode::kQueryOnly));
  if (writer) {
    // WAL: readers keep working while the writer commits. NORMAL: a commit is
    // safe from process crashes; SetDurable(FULL) makes fsync's commits survive
    // power loss too.
    Status s = conn->Exec("PRAGMA journal_mode = WAL");
    if (!s.ok()) return s.WithContext("store " + path_);
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
  {
    std::scoped_lock lock(pool_mu_);
    if (!readers_.empty()) {
      auto conn = std::move(readers_.back());
      readers_.pop_back();
      return ReaderLease(this, std::move(conn));
    }
  }
  ASSIGN_OR_RETURN(auto conn, OpenConnection(false));
  return ReaderLease(this, std::move(conn));
}

void Db::ReturnReader(std::unique_ptr<sql::Connection> conn) {
  std::scoped_lock lock(pool_mu_);
  if (readers_.size() < kMaxIdleReaders) readers_.push_back(std::move(conn));
}

Status Db::SetDurable(sql::Connection& conn, bool durable) {
  return conn.Exec(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

}  // namespace strata::catalog
