#include "fs/pending_flush.h"

#include "catalog/branches.h"

namespace strata::fs {

PendingFlush::PendingFlush(PendingFlush&& other) noexcept : parts_(std::move(other.parts_)) {
  other.parts_.clear();
}

PendingFlush& PendingFlush::operator=(PendingFlush&& other) noexcept {
  if (this != &other) {
    Finish(false);
    parts_ = std::move(other.parts_);
    other.parts_.clear();
  }
  return *this;
}

PendingFlush::~PendingFlush() { Finish(false); }

void PendingFlush::Take(FlushSource& source, std::optional<InodeId> ino) {
  std::vector<FlushItem> items = source.buffer().TakeForFlush(ino);
  if (!items.empty()) parts_.push_back(Part{&source, std::move(items)});
}

void PendingFlush::Absorb(PendingFlush&& other) {
  for (Part& part : other.parts_) parts_.push_back(std::move(part));
  other.parts_.clear();
}

Status PendingFlush::Write(sql::Connection& conn) {
  for (Part& part : parts_) {
    const BranchId branch = part.source->branch();
    ASSIGN_OR_RETURN(Version head, catalog::HeadVersion(conn, branch));
    RETURN_IF_ERROR(part.source->WriteItems(conn, tree::Head{branch, head}, part.items));
  }
  return Status::Ok();
}

void PendingFlush::Finish(bool committed) {
  for (Part& part : parts_) {
    if (committed) {
      part.source->buffer().Complete(part.items);
    } else {
      part.source->buffer().Abort(part.items);
    }
  }
  parts_.clear();
}

Status CommitWith(catalog::Db& db, catalog::WriterLease& lease, catalog::Commit commit,
                  int64_t now_ns, PendingFlush& flush, const std::function<Status()>& body) {
  Status s = db.WriteTransaction(lease, commit, now_ns, body);
  flush.Finish(s.ok());
  return s;
}

}  // namespace strata::fs
