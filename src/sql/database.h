// RAII wrappers over sqlite3: a connection that caches its prepared
// statements, a statement handle that resets itself on scope exit, and a
// transaction that rolls back unless committed. SQLite result codes become
// Status in exactly one place (SqliteStatus).
#ifndef STRATA_SQL_DATABASE_H_
#define STRATA_SQL_DATABASE_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "strata/status.h"

namespace strata::sql {

// Translates a SQLite result code (and the connection's message) to a Status.
Status SqliteStatus(int rc, sqlite3* db, std::string_view context);

class Connection;

// A prepared statement owned by a Connection's cache. Borrowed through
// Statement, which resets it and clears its bindings when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&& other) noexcept : stmt_(other.stmt_), db_(other.db_) {
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

  // Advances to the next row: true if a row is available, false when done.
  Result<bool> Step();
  // Runs the statement to completion, ignoring rows, then resets it so that
  // it can be bound and run again.
  Status Run();

  bool IsNull(int column) const;
  int64_t Int(int column) const;
  std::string Text(int column) const;
  // Valid until the next Step() or until the statement is reset.
  std::span<const uint8_t> Blob(int column) const;
  // A copy of a BLOB column's bytes.
  std::string BlobString(int column) const {
    auto b = Blob(column);
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
  }

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
};

// kQueryOnly connections refuse every statement that writes (PRAGMA query_only).
enum class OpenMode { kReadWriteCreate, kQueryOnly };

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
  // Prepares without caching (for one-off statements such as user SQL).
  Result<std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)>> PrepareUncached(
      std::string_view sql);

  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string_view, sqlite3_stmt*> cache_;
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
