#include "sql/database.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "sql/wal_buffer_vfs.h"

namespace strata::sql {

namespace {

// Long enough that a waiting writer outlives any other writer's transaction
// (a flush of the whole write buffer), so callers never see SQLITE_BUSY.
constexpr int kBusyTimeoutMs = 120'000;

Code CodeForSqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return Code::kNoSpace;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Code::kCorruption;
    case SQLITE_READONLY: return Code::kReadOnly;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return Code::kBusy;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN: return Code::kIoError;
    case SQLITE_PERM:
    case SQLITE_AUTH: return Code::kAccess;
    case SQLITE_TOOBIG: return Code::kTooBig;
    case SQLITE_CONSTRAINT: return Code::kExists;
    default: return Code::kInternal;
  }
}

}  // namespace

Status SqliteStatus(int rc, sqlite3* db, std::string_view context) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  std::string msg(context);
  msg += ": ";
  msg += (db != nullptr && sqlite3_errcode(db) == rc) ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Status(CodeForSqlite(rc), std::move(msg));
}

Statement::~Statement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::BindText(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::BindBlob(int index, std::span<const uint8_t> value) {
  // An empty span has no storage; zeroblob keeps it a zero-length BLOB, not NULL.
  if (value.empty()) {
    sqlite3_bind_zeroblob(stmt_, index, 0);
  } else {
    sqlite3_bind_blob(stmt_, index, value.data(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
  }
  return *this;
}

Statement& Statement::BindBlobNoCopy(int index, std::span<const uint8_t> value) {
  if (value.empty()) return BindBlob(index, value);
  sqlite3_bind_blob(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
  return *this;
}

Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(rc, db_, sqlite3_sql(stmt_));
}

Status Statement::Run() {
  for (;;) {
    Result<bool> row = Step();
    if (!row.ok()) {
      sqlite3_reset(stmt_);
      return row.status();
    }
    if (!*row) break;
  }
  // Ready to be bound and run again; bindings are kept.
  sqlite3_reset(stmt_);
  return Status::Ok();
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

std::span<const uint8_t> Statement::Blob(int column) const {
  const void* p = sqlite3_column_blob(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  if (p == nullptr) return {};
  return {static_cast<const uint8_t*>(p), static_cast<size_t>(n)};
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, OpenMode mode) {
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  // A query-only connection still opens read-write: in WAL mode a reader must
  // be able to create the -shm index when it is the first to open the file.
  flags |= mode == OpenMode::kQueryOnly ? SQLITE_OPEN_READWRITE
                                        : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, WalBufferVfsName());
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(rc, db, "cannot open " + path);
    sqlite3_close_v2(db);
    return s;
  }
  auto conn = std::unique_ptr<Connection>(new Connection(db));
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  sqlite3_extended_result_codes(db, 1);
  if (mode == OpenMode::kQueryOnly) RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1"));
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

Status Connection::Exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Status(SqliteStatus(rc, nullptr, "").code(), msg);
}

Result<Statement> Connection::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return Statement(it->second, db_);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(rc, db_, std::string("preparing ") + sql);
  cache_.emplace(sql, stmt);
  return Statement(stmt, db_);
}

Result<std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)>> Connection::PrepareUncached(
    std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(rc, db_, "preparing statement");
  return std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)>(stmt, sqlite3_finalize);
}

Result<Transaction> Transaction::Begin(Connection& conn) {
  RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
  return Transaction(&conn);
}

Transaction::~Transaction() {
  if (conn_ != nullptr && !sqlite3_get_autocommit(conn_->handle())) {
    (void)conn_->Exec("ROLLBACK");
  }
}

Status Transaction::Commit() {
  Connection* conn = conn_;
  Status s = conn->Exec("COMMIT");
  if (s.ok()) conn_ = nullptr;
  return s;
}

}  // namespace strata::sql
