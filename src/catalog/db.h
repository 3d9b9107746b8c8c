// Db: the connections of one open store. One writer connection behind a
// mutex, and a pool of reader connections so that reads never wait for the
// writer's commit (WAL mode).
#ifndef STRATA_CATALOG_DB_H_
#define STRATA_CATALOG_DB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"

namespace strata::catalog {

class Db;

// Exclusive use of the writer connection while alive.
class WriterLease {
 public:
  WriterLease(std::unique_lock<std::mutex> lock, sql::Connection* conn)
      : lock_(std::move(lock)), conn_(conn) {}
  sql::Connection& conn() { return *conn_; }

 private:
  std::unique_lock<std::mutex> lock_;
  sql::Connection* conn_;
};

// A reader connection borrowed from the pool, inside a read transaction so
// that all its statements see one committed state; returned on destruction.
class ReaderLease {
 public:
  ReaderLease(Db* db, std::unique_ptr<sql::Connection> conn) : db_(db), conn_(std::move(conn)) {}
  ~ReaderLease();
  ReaderLease(ReaderLease&& other) noexcept = default;
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  sql::Connection& conn() { return *conn_; }

 private:
  Db* db_;
  std::unique_ptr<sql::Connection> conn_;
};

class Db {
 public:
  // Opens (creating if needed) the store file and its schema.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, bool read_only,
                                          uint32_t block_size_for_new_store, int64_t now_ns);

  const std::string& path() const { return path_; }
  uint32_t block_size() const { return block_size_; }
  bool read_only() const { return read_only_; }

  // Blocks until the writer connection is free. ReadOnly error on a read-only store.
  Result<WriterLease> Writer();
  // A reader connection; opens a new one when the pool is empty.
  Result<ReaderLease> Reader();

  // Runs `body` in one write transaction on the writer connection `conn`
  // (lease held, no transaction open) and commits it. A durable commit is
  // synced to disk together with every earlier commit (synchronous=FULL for
  // this commit only); it always writes meta.last_sync_ns, because a commit
  // that writes nothing syncs nothing. On failure nothing of `body` remains.
  static Status WriteTransaction(sql::Connection& conn, bool durable, int64_t now_ns,
                                 const std::function<Status()>& body);

 private:
  friend class ReaderLease;
  Db(std::string path, bool read_only) : path_(std::move(path)), read_only_(read_only) {}
  Result<std::unique_ptr<sql::Connection>> OpenConnection(bool writer);
  void ReturnReader(std::unique_ptr<sql::Connection> conn);

  const std::string path_;
  const bool read_only_;
  uint32_t block_size_ = 0;
  std::mutex writer_mu_;
  std::unique_ptr<sql::Connection> writer_;  // guarded by writer_mu_
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<sql::Connection>> readers_;  // guarded by pool_mu_
};

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_DB_H_
