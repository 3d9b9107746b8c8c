#include "fs/core.h"

#include <chrono>


namespace strata::fs {

namespace {
int64_t RealClock() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Result<bool> StoreCore::HasNoCapabilityXattrs() {
  int known = capability_xattrs_.load();
  if (known != kUnknown) return known == kNone;
  ASSIGN_OR_RETURN(catalog::ReaderLease lease, db_->Reader());
  ASSIGN_OR_RETURN(sql::Statement s, lease.conn().Prepare(
      "SELECT 1 FROM xattrs WHERE name = CAST('security.capability' AS BLOB) LIMIT 1"));
  ASSIGN_OR_RETURN(bool some, s.Step());
  int expected = kUnknown;
  capability_xattrs_.compare_exchange_strong(expected, some ? kSome : kNone);
  return capability_xattrs_.load() == kNone;
}

StoreCore::StoreCore(std::unique_ptr<catalog::Db> db, StoreOptions options)
    : db_(std::move(db)),
      chunks_(std::move(options.hash), options.compression_level),
      clock_(options.clock ? std::move(options.clock) : std::function<int64_t()>(RealClock)),
      write_buffer_bytes_(options.write_buffer_bytes) {}

bool StoreCore::Register(FlushSource* fs) {
  std::scoped_lock lock(registry_mu_);
  bool first = true;
  for (FlushSource* other : open_) first &= other->branch() != fs->branch();
  open_.insert(fs);
  return first;
}

void StoreCore::Unregister(FlushSource* fs) {
  std::scoped_lock lock(registry_mu_);
  open_.erase(fs);
}

std::set<BranchId> StoreCore::OpenBranches() {
  std::scoped_lock lock(registry_mu_);
  std::set<BranchId> branches;
  for (FlushSource* fs : open_) branches.insert(fs->branch());
  return branches;
}

PendingFlush StoreCore::TakeBranch(BranchId branch) {
  PendingFlush flush;
  std::scoped_lock lock(registry_mu_);
  for (FlushSource* fs : open_) {
    if (fs->branch() == branch) flush.Take(*fs, std::nullopt);
  }
  return flush;
}

PendingFlush StoreCore::TakeAll() {
  PendingFlush flush;
  std::scoped_lock lock(registry_mu_);
  for (FlushSource* fs : open_) flush.Take(*fs, std::nullopt);
  return flush;
}

bool StoreCore::HostEntrySettled(BranchId base, InodeId ino) {
  std::scoped_lock lock(settled_mu_);
  return settled_.count({base, ino}) != 0;
}

void StoreCore::SettleHostEntry(BranchId base, InodeId ino) {
  std::scoped_lock lock(settled_mu_);
  settled_.insert({base, ino});
}

}  // namespace strata::fs
