// PendingFlush: buffered file data taken out of write buffers for one commit.
//
// The one way buffered writes reach the store: take them (they leave the
// buffer's dirty set but stay readable as "flushing"), write them into an
// open write transaction, then finish with the transaction's outcome:
// committed, they are dropped from their buffers; not committed, they go
// back to be retried by the next flush. The destructor gives back whatever
// was not finished, so an early return never loses buffered data.
//
// Not thread-safe; take, write and finish under the store's writer lock.
#ifndef STRATA_FS_PENDING_FLUSH_H_
#define STRATA_FS_PENDING_FLUSH_H_

#include <functional>
#include <optional>
#include <vector>

#include "catalog/db.h"
#include "fs/write_buffer.h"
#include "strata/status.h"
#include "tree/rows.h"

namespace strata::fs {

// What holds buffered writes: a writable filesystem of one branch.
class FlushSource {
 public:
  virtual BranchId branch() const = 0;
  virtual WriteBuffer& buffer() = 0;
  // Writes taken items into the open transaction at `head`.
  virtual Status WriteItems(sql::Connection& conn, tree::Head head,
                            const std::vector<FlushItem>& items) = 0;

 protected:
  ~FlushSource() = default;
};

class PendingFlush {
 public:
  PendingFlush() = default;
  PendingFlush(PendingFlush&& other) noexcept;
  PendingFlush& operator=(PendingFlush&& other) noexcept;
  ~PendingFlush();  // gives back what was not finished
  PendingFlush(const PendingFlush&) = delete;
  PendingFlush& operator=(const PendingFlush&) = delete;

  // Takes the buffered writes of `ino` (all files if nullopt) from `source`.
  void Take(FlushSource& source, std::optional<InodeId> ino);
  // Adds what `other` took (which is left empty).
  void Absorb(PendingFlush&& other);
  bool empty() const { return parts_.empty(); }

  // Writes everything taken into the open transaction, each source's items
  // at its branch's current head version.
  Status Write(sql::Connection& conn);
  // The transaction committed (true), or failed or was rolled back (false).
  void Finish(bool committed);

 private:
  struct Part {
    FlushSource* source;
    std::vector<FlushItem> items;
  };
  std::vector<Part> parts_;
};

// Runs `body` in one write transaction (catalog::Db::WriteTransaction) and
// finishes `flush` with its outcome; `body` writes the taken data (or not).
Status CommitWith(catalog::Db& db, catalog::WriterLease& lease, catalog::Commit commit,
                  int64_t now_ns, PendingFlush& flush, const std::function<Status()>& body);

}  // namespace strata::fs

#endif  // STRATA_FS_PENDING_FLUSH_H_
