// RAII wrappers over sqlite3: a connection that caches its prepared
// statements, a statement handle that resets (or, uncached, finalizes) itself
// on scope exit, and a transaction that rolls back unless committed. SQLite
// result codes become Status in exactly one place (SqliteStatus). The rest of
// Strata reaches SQLite only through this module.
#ifndef STRATA_SQL_DATABASE_H_
#define STRATA_SQL_DATABASE_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "strata/status.h"

namespace strata::sql {

// Translates a SQLite result code (and the connection's message) to a Status
// whose message is "<context>: <SQLite's message>", or SQLite's message alone
// when `context` is empty.
Status SqliteStatus(int rc, sqlite3* db, std::string_view context);

// The type of a column's value in the current row. The values are SQLite's
// own codes (SQLITE_INTEGER...), which are stable: bundle checksums hash them.
enum class ColumnType {
  kInteger = SQLITE_INTEGER,
  kFloat = SQLITE_FLOAT,
  kText = SQLITE_TEXT,
  kBlob = SQLITE_BLOB,
  kNull = SQLITE_NULL,
};

class Connection;

// A prepared statement of a Connection. From Connection::Prepare it is
// borrowed from the connection's cache: reset, with its bindings cleared,
// when the Statement goes out of scope. From PrepareUncached it is owned:
// finalized when the Statement goes out of scope. Either way it must not
// outlive its Connection.
class Statement {
 public:
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept : stmt_(other.stmt_), db_(other.db_), owned_(other.owned_) {
    other.stmt_ = nullptr;
  }

  // Parameters are 1-based, as in SQLite.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, uint64_t value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& Bind(int index, unsigned value) { return Bind(index, static_cast<int64_t>(value)); }
  Statement& BindText(int index, std::string_view value);
  Statement& BindBlob(int index, std::span<const uint8_t> value);
  // The bytes of `value` as a BLOB (names, xattr values, captured output).
  Statement& BindBytes(int index, std::string_view value) {
    return BindBlob(index, {reinterpret_cast<const uint8_t*>(value.data()), value.size()});
  }
  // Without a copy: `value` must outlive every step until the statement is
  // reset (Run resets it; a Statement going out of scope does too).
  Statement& BindBlobNoCopy(int index, std::span<const uint8_t> value);
  Statement& BindNull(int index);
  // A double or a bool would be a silent conversion: refuse them.
  Statement& Bind(int, double) = delete;
  Statement& Bind(int, bool) = delete;

  // The number of the highest parameter in the SQL (0 when it has none).
  int ParameterCount() const;

  // Advances to the next row: true if a row is available, false when done.
  // A failure is SqliteStatus(rc, db, context), where an empty `context`
  // stands for the statement's SQL.
  Result<bool> Step(std::string_view context = {});
  // Steps through the remaining rows, calling `on_row` with each, until the
  // rows end, a step fails (reported as by Step(context)) or `on_row` returns
  // an error (returned as it is). Then resets the statement, keeping its
  // bindings, so that it can be run again.
  Status ForEachRow(const std::function<Status(Statement& row)>& on_row,
                    std::string_view context = {});
  // Runs the statement to completion, ignoring rows, then resets it so that
  // it can be bound and run again.
  Status Run();

  // Whether the statement leaves the database as it is (SELECT; not INSERT,
  // CREATE, ...).
  bool IsReadOnly() const;
  int ColumnCount() const;
  // The name of a result column: its AS alias, or as SQLite names it.
  std::string ColumnName(int column) const;

  // Columns of the current row, 0-based. Ask Type() before reading a column
  // as another type: after SQLite converts a value, its type is undefined.
  ColumnType Type(int column) const;
  bool IsNull(int column) const;
  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  // Valid until the next Step() or until the statement is reset.
  std::span<const uint8_t> Blob(int column) const;
  // A copy of a BLOB column's bytes.
  std::string BlobString(int column) const {
    auto b = Blob(column);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }

 private:
  friend class Connection;
  // `owned`: finalized, not reset, on destruction.
  Statement(sqlite3_stmt* stmt, sqlite3* db, bool owned) : stmt_(stmt), db_(db), owned_(owned) {}
  // Ends the current run (a failed step's error was already reported).
  void Reset();

  sqlite3_stmt* stmt_;
  sqlite3* db_;
  bool owned_;
};

// kQueryOnly connections refuse every statement that writes (PRAGMA query_only).
enum class OpenMode { kReadWriteCreate, kQueryOnly };

// A checkpoint (copying the WAL back into the database file) that does as
// much as it can without waiting for anyone (kPassive), or that waits for the
// writer and readers of the WAL so that the next commit starts the WAL anew
// (kRestart), and also cuts the WAL file to zero bytes (kTruncate).
enum class CheckpointMode {
  kPassive = SQLITE_CHECKPOINT_PASSIVE,
  kRestart = SQLITE_CHECKPOINT_RESTART,
  kTruncate = SQLITE_CHECKPOINT_TRUNCATE
};

// One sqlite3 connection. Not thread-safe: each thread borrows its own.
class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, OpenMode mode);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }

  // Runs one or more statements with no parameters.
  Status Exec(std::string_view sql);
  // Borrows the cached statement for `sql`, preparing it on first use. The
  // cache is keyed by the text, so call sites pass named constants.
  Result<Statement> Prepare(const char* sql);
  // Prepares the first statement in `sql` without caching it, for one-off
  // statements (SQL built at run time, or a user's). The Statement owns it.
  // If `rest` is not null it receives the text after that statement, so that
  // a caller can refuse a second one. Errors are SqliteStatus(rc, db,
  // context); text with no statement at all (empty, or only comments) is
  // InvalidArgument("no SQL statement given").
  Result<Statement> PrepareUncached(std::string_view sql, std::string_view* rest = nullptr,
                                    std::string_view context = "preparing statement");

  // From now on, preparing any statement that does more than read (SELECT,
  // reading columns, calling functions, recursive queries) fails with
  // Code::kAccess: PRAGMA, ATTACH and every write, to any schema, included.
  // For running SQL from outside.
  Status AllowOnlyReads();

  // A SQL function of integer arguments (SQLite converts each, as
  // sqlite3_value_int64 does) that returns the bytes of a BLOB, nullopt for
  // NULL, or an error, which fails the statement calling it with the error's
  // message. Runs on the thread stepping that statement, and may use this
  // connection.
  using BlobFunction =
      std::function<Result<std::optional<std::string>>(std::span<const int64_t> args)>;
  // Defines (or redefines) the deterministic SQL function `name` of `arity`
  // arguments on this connection, which keeps `fn` until it closes.
  Status DefineFunction(const std::string& name, int arity, BlobFunction fn);

  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  // Whether a transaction is open: begun and not yet committed or rolled back
  // (a failed COMMIT may leave it open).
  bool InTransaction() const { return !sqlite3_get_autocommit(db_); }

  // In WAL mode, calls `on_commit` after each commit, on the committing
  // thread, with the number of frames the WAL then holds; an empty function
  // stops the calls. Replaces SQLite's own checkpoint after commits: the
  // caller takes charge of checkpoints. Set it while no commit runs.
  void OnWalCommit(std::function<void(int wal_frames)> on_commit);
  // Checkpoints the main database's WAL (see CheckpointMode). Waits as the
  // busy timeout says for kRestart; fails with kBusy inside a transaction.
  Status Checkpoint(CheckpointMode mode);

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string_view, sqlite3_stmt*> cache_;
  std::function<void(int wal_frames)> on_wal_commit_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit()
// succeeded. Immediate, so that the write lock is taken up front and a read
// never has to be upgraded (which SQLite cannot wait for).
class Transaction {
 public:
  static Result<Transaction> Begin(Connection& conn);
  ~Transaction();
  Transaction(Transaction&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Commit();

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  Connection* conn_;
};

}  // namespace strata::sql

#endif  // STRATA_SQL_DATABASE_H_
