#include "fs/core.h"

#include <chrono>

#include "fs/filesystem_impl.h"

namespace strata::fs {

struct PendingFlush::Part {
  FilesystemImpl* fs;
  std::vector<FlushItem> items;
};

PendingFlush::PendingFlush(PendingFlush&&) noexcept = default;
PendingFlush::~PendingFlush() { Finish(false); }

Status PendingFlush::Write(sql::Connection& conn, tree::Head head) {
  for (auto& part : parts_) RETURN_IF_ERROR(part->fs->WriteItems(conn, head, part->items));
  return Status::Ok();
}

void PendingFlush::Finish(bool committed) {
  for (auto& part : parts_) {
    if (committed) {
      part->fs->buffer().Complete(part->items);
    } else {
      part->fs->buffer().Abort(part->items);
    }
  }
  parts_.clear();
}

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

bool StoreCore::Register(FilesystemImpl* fs) {
  std::scoped_lock lock(registry_mu_);
  bool first = true;
  for (FilesystemImpl* other : open_) first &= other->view().branch != fs->view().branch;
  open_.insert(fs);
  return first;
}

void StoreCore::Unregister(FilesystemImpl* fs) {
  std::scoped_lock lock(registry_mu_);
  open_.erase(fs);
}

std::set<BranchId> StoreCore::OpenBranches() {
  std::scoped_lock lock(registry_mu_);
  std::set<BranchId> branches;
  for (FilesystemImpl* fs : open_) branches.insert(fs->view().branch);
  return branches;
}

PendingFlush StoreCore::TakeBranch(BranchId branch) {
  PendingFlush flush;
  std::scoped_lock lock(registry_mu_);
  for (FilesystemImpl* fs : open_) {
    if (fs->view().branch != branch) continue;
    auto items = fs->TakePending(std::nullopt);
    if (!items.empty()) {
      flush.parts_.push_back(std::make_unique<PendingFlush::Part>(
          PendingFlush::Part{fs, std::move(items)}));
    }
  }
  return flush;
}

std::vector<std::pair<BranchId, PendingFlush>> StoreCore::TakeAll() {
  std::set<BranchId> branches;
  {
    std::scoped_lock lock(registry_mu_);
    for (FilesystemImpl* fs : open_) branches.insert(fs->view().branch);
  }
  std::vector<std::pair<BranchId, PendingFlush>> out;
  for (BranchId b : branches) out.emplace_back(b, TakeBranch(b));
  return out;
}

}  // namespace strata::fs
