#include "sql/database.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

// Allows reading only; see Connection::AllowOnlyReads.
int ReadOnlyAuthorizer(void*, int action, const char*, const char*, const char*, const char*) {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    default:
      return SQLITE_DENY;
  }
}

// Calls the Connection::BlobFunction that is the SQL function's user data.
void CallBlobFunction(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  const auto& fn = *static_cast<const Connection::BlobFunction*>(sqlite3_user_data(ctx));
  std::vector<int64_t> args(static_cast<size_t>(argc));
  for (int i = 0; i < argc; ++i) args[static_cast<size_t>(i)] = sqlite3_value_int64(argv[i]);
  Result<std::optional<std::string>> out = fn(args);
  if (!out.ok()) return sqlite3_result_error(ctx, out.status().message().c_str(), -1);
  if (!out->has_value()) return sqlite3_result_null(ctx);
  const std::string& bytes = **out;
  sqlite3_result_blob64(ctx, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
}

}  // namespace

Status SqliteStatus(int rc, sqlite3* db, std::string_view context) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  std::string msg(context);
  if (!msg.empty()) msg += ": ";
  msg += (db != nullptr && sqlite3_errcode(db) == rc) ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Status(CodeForSqlite(rc), std::move(msg));
}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  if (owned_) {
    sqlite3_finalize(stmt_);
  } else {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

void Statement::Reset() { sqlite3_reset(stmt_); }

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

int Statement::ParameterCount() const { return sqlite3_bind_parameter_count(stmt_); }

Result<bool> Statement::Step(std::string_view context) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(rc, db_, context.empty() ? sqlite3_sql(stmt_) : context);
}

Status Statement::ForEachRow(const std::function<Status(Statement& row)>& on_row,
                             std::string_view context) {
  Status s = [&]() -> Status {
    for (;;) {
      ASSIGN_OR_RETURN(bool row, Step(context));
      if (!row) return Status::Ok();
      RETURN_IF_ERROR(on_row(*this));
    }
  }();
  Reset();
  return s;
}

Status Statement::Run() {
  return ForEachRow([](Statement&) { return Status::Ok(); });
}

bool Statement::IsReadOnly() const { return sqlite3_stmt_readonly(stmt_) != 0; }

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_); }

std::string Statement::ColumnName(int column) const {
  const char* name = sqlite3_column_name(stmt_, column);
  return name == nullptr ? std::string() : std::string(name);
}

ColumnType Statement::Type(int column) const {
  return static_cast<ColumnType>(sqlite3_column_type(stmt_, column));
}

bool Statement::IsNull(int column) const { return Type(column) == ColumnType::kNull; }

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

double Statement::Double(int column) const { return sqlite3_column_double(stmt_, column); }

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
  if (it != cache_.end()) return Statement(it->second, db_, /*owned=*/false);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(rc, db_, std::string("preparing ") + sql);
  cache_.emplace(sql, stmt);
  return Statement(stmt, db_, /*owned=*/false);
}

Result<Statement> Connection::PrepareUncached(std::string_view sql, std::string_view* rest,
                                              std::string_view context) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  // Owned before anything else can return.
  Statement owner(stmt, db_, /*owned=*/true);
  if (rc != SQLITE_OK) return SqliteStatus(rc, db_, context);
  if (stmt == nullptr) return InvalidArgument("no SQL statement given");
  if (rest != nullptr) *rest = std::string_view(tail, sql.data() + sql.size() - tail);
  return owner;
}

Status Connection::AllowOnlyReads() {
  return SqliteStatus(sqlite3_set_authorizer(db_, ReadOnlyAuthorizer, nullptr), db_,
                      "restricting to reads");
}

Status Connection::DefineFunction(const std::string& name, int arity, BlobFunction fn) {
  // SQLite owns the copy from here: it deletes it when the function is
  // redefined or the connection closes, and also if the definition fails.
  auto* owned = new BlobFunction(std::move(fn));
  int rc = sqlite3_create_function_v2(db_, name.c_str(), arity, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                      owned, CallBlobFunction, nullptr, nullptr,
                                      [](void* p) { delete static_cast<BlobFunction*>(p); });
  return SqliteStatus(rc, db_, "defining SQL function " + name);
}

void Connection::OnWalCommit(std::function<void(int wal_frames)> on_commit) {
  on_wal_commit_ = std::move(on_commit);
  if (!on_wal_commit_) {
    sqlite3_wal_hook(db_, nullptr, nullptr);
    return;
  }
  sqlite3_wal_hook(
      db_,
      [](void* self, sqlite3*, const char*, int wal_frames) {
        static_cast<Connection*>(self)->on_wal_commit_(wal_frames);
        return SQLITE_OK;
      },
      this);
}

Status Connection::Checkpoint(CheckpointMode mode) {
  int rc = sqlite3_wal_checkpoint_v2(db_, "main", static_cast<int>(mode), nullptr, nullptr);
  return SqliteStatus(rc, db_, "checkpoint");
}

Result<Transaction> Transaction::Begin(Connection& conn) {
  RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
  return Transaction(&conn);
}

Transaction::~Transaction() {
  if (conn_ != nullptr && conn_->InTransaction()) (void)conn_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  Connection* conn = conn_;
  Status s = conn->Exec("COMMIT");
  if (s.ok()) conn_ = nullptr;
  return s;
}

}  // namespace strata::sql
