// StoreCore: what the store and every filesystem opened from it share — the
// database connections, the chunk store, the clock — and the registry of open
// writable filesystems (as FlushSources), so that a snapshot can commit their
// buffered writes in the same transaction that freezes the version.
#ifndef STRATA_FS_CORE_H_
#define STRATA_FS_CORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include "catalog/db.h"
#include "chunks/chunk_store.h"
#include "fs/pending_flush.h"
#include "strata/store.h"
#include "tree/rows.h"

namespace strata::fs {

class StoreCore {
 public:
  StoreCore(std::unique_ptr<catalog::Db> db, StoreOptions options);

  catalog::Db& db() { return *db_; }
  chunks::ChunkStore& chunks() { return chunks_; }
  uint32_t block_size() const { return db_->block_size(); }
  int64_t Now() const { return clock_(); }
  uint64_t write_buffer_limit() const { return write_buffer_bytes_; }

  // Returns true if `fs` is the only open writable filesystem of its branch.
  bool Register(FlushSource* fs);
  void Unregister(FlushSource* fs);
  // The lowest inode number this process may hand out: above every number
  // it handed out, even in transactions that were rolled back since.
  InodeId InoFloor() const { return ino_floor_.load(); }
  void NoteIno(InodeId ino) {
    InodeId floor = ino_floor_.load();
    while (floor <= ino && !ino_floor_.compare_exchange_weak(floor, ino + 1)) {
    }
  }
  // Branches with an open writable filesystem in this process.
  std::set<BranchId> OpenBranches();
  // Takes the buffered writes of every open writable filesystem of `branch`
  // (call with the writer lock held).
  PendingFlush TakeBranch(BranchId branch);
  // Takes the buffered writes of every open writable filesystem.
  PendingFlush TakeAll();

  // The kernel asks for security.capability before every write(2) to a
  // file (to drop file capabilities), and almost no store has any: while
  // no file of this store has one, that question is answered here without
  // a database read. Checked against the store once; a SetXattr of that
  // name in this process turns it off for good. (Like every cache of the
  // daemon, it assumes no other process writes the sessions it serves.)
  Result<bool> HasNoCapabilityXattrs();
  void NoteCapabilityXattr() { capability_xattrs_.store(kSome); }

  // Inodes of host base `base` known to need no expansion (fs/host_entries.h):
  // expanded already, or not host entries at all. An expansion is never
  // undone, so a settled inode stays settled.
  bool HostEntrySettled(BranchId base, InodeId ino);
  void SettleHostEntry(BranchId base, InodeId ino);

 private:
  enum : int { kUnknown, kNone, kSome };
  std::atomic<int> capability_xattrs_{kUnknown};
  std::atomic<InodeId> ino_floor_{0};
  std::mutex settled_mu_;
  std::set<std::pair<BranchId, InodeId>> settled_;  // guarded by settled_mu_
  std::unique_ptr<catalog::Db> db_;
  chunks::ChunkStore chunks_;
  std::function<int64_t()> clock_;
  uint64_t write_buffer_bytes_;
  std::mutex registry_mu_;
  std::set<FlushSource*> open_;  // guarded by registry_mu_
};

}  // namespace strata::fs

#endif  // STRATA_FS_CORE_H_
