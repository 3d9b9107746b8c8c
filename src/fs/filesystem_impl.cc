#include "fs/filesystem_impl.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>

#include "catalog/branches.h"
#include "fs/host_entries.h"
#include "fs/names.h"

namespace strata::fs {

Result<std::unique_ptr<FilesystemImpl>> FilesystemImpl::Open(std::shared_ptr<StoreCore> core,
                                                             View view) {
  BranchId host_base = 0;
  {
    ASSIGN_OR_RETURN(catalog::ReaderLease reader, core->db().Reader());
    ASSIGN_OR_RETURN(Version head, catalog::HeadVersion(reader.conn(), view.branch));
    if (!view.is_head() && (view.version < 1 || view.version >= head)) {
      return NotFound("branch " + std::to_string(view.branch) + " has no frozen version " +
                      std::to_string(view.version));
    }
    ASSIGN_OR_RETURN(host_base, HostBaseOf(reader.conn(), view.branch));
  }
  if (view.is_head() && core->db().read_only()) {
    return ReadOnly("store " + core->db().path() + " is open read-only");
  }
  auto fs = std::unique_ptr<FilesystemImpl>(new FilesystemImpl(std::move(core), view));
  // A host base's own filesystem (while it is made) expands nothing.
  if (host_base != view.branch) fs->host_base_ = host_base;
  // Inodes orphaned by a process that died with them open are gone for good.
  // Only the first filesystem of a branch in this process cleans them: a later
  // one would delete files the first still has open.
  if (view.is_head() && fs->core_->Register(fs.get())) {
    RETURN_IF_ERROR(fs->Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
      ASSIGN_OR_RETURN(sql::Statement s,
                       conn.Prepare("SELECT ino FROM orphans WHERE branch = ?1"));
      s.Bind(1, head.branch);
      std::vector<InodeId> orphans;
      for (;;) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        orphans.push_back(static_cast<InodeId>(s.Int(0)));
      }
      for (InodeId ino : orphans) {
        RETURN_IF_ERROR(tree::DeleteInode(conn, head, ino));
        RETURN_IF_ERROR(tree::RemoveOrphan(conn, head.branch, ino));
      }
      return Status::Ok();
    }));
  }
  return fs;
}

FilesystemImpl::FilesystemImpl(std::shared_ptr<StoreCore> core, View view)
    : core_(std::move(core)),
      view_(view),
      block_size_(core_->block_size()),
      buffer_(block_size_),
      flush_queue_([this](InodeId ino) {
        if (ino == kFlushEverything) {
          (void)FlushPending(std::nullopt, catalog::Commit::kNow);
        } else {
          (void)FlushPending(ino, catalog::Commit::kBatched);
        }
      }) {}

Status FilesystemImpl::Materialize(InodeId ino) {
  if (host_base_ == 0 || core_->HostEntrySettled(host_base_, ino)) return Status::Ok();
  std::optional<HostEntry> entry;
  {
    ASSIGN_OR_RETURN(catalog::ReaderLease reader, core_->db().Reader());
    ASSIGN_OR_RETURN(entry, GetHostEntry(reader.conn(), host_base_, ino));
  }
  if (entry.has_value() && !entry->expanded) {
    if (core_->db().read_only()) {
      return ReadOnly("host path " + entry->HostPath() +
                      " is not indexed yet and store " + core_->db().path() +
                      " is open read-only");
    }
    ASSIGN_OR_RETURN(catalog::WriterLease lease, core_->db().Writer());
    sql::Connection& conn = lease.conn();
    // Committed now: readers of other connections must see the rows before
    // this operation reads them.
    RETURN_IF_ERROR(core_->db().WriteTransaction(lease, catalog::Commit::kNow, core_->Now(),
                                                 [&]() -> Status {
      ASSIGN_OR_RETURN(auto current, GetHostEntry(conn, host_base_, ino));
      if (!current.has_value() || current->expanded) return Status::Ok();  // by another
      ASSIGN_OR_RETURN(Version head, catalog::HeadVersion(conn, host_base_));
      return ExpandHostEntry(conn, *core_, head - 1, *current);
    }));
  }
  core_->SettleHostEntry(host_base_, ino);
  return Status::Ok();
}

FilesystemImpl::~FilesystemImpl() {
  if (read_only()) return;
  // Unregister first: after this no snapshot can take our buffers, and one
  // that already did holds the writer lock, which FlushPending waits for.
  core_->Unregister(this);
  flush_queue_.Stop();
  (void)FlushPending(std::nullopt, catalog::Commit::kNow);
}

Status FilesystemImpl::Mutate(const WriteFn& fn) {
  if (read_only()) return ReadOnly("snapshot views are read-only");
  ASSIGN_OR_RETURN(catalog::WriterLease lease, core_->db().Writer());
  sql::Connection& conn = lease.conn();
  return core_->db().WriteTransaction(lease, catalog::Commit::kBatched, 0, [&]() -> Status {
    ASSIGN_OR_RETURN(Version head, catalog::HeadVersion(conn, view_.branch));
    return fn(conn, tree::Head{view_.branch, head});
  });
}

Status FilesystemImpl::Query(const ReadFn& fn) {
  ASSIGN_OR_RETURN(catalog::ReaderLease lease, core_->db().Reader());
  return fn(lease.conn(), scope());
}

Status FilesystemImpl::FlushPending(std::optional<InodeId> ino, catalog::Commit commit) {
  const bool durable = commit == catalog::Commit::kDurable;
  if (read_only()) return Status::Ok();
  // Nothing buffered: no need to queue behind another flush for the lock.
  // (Data written after this check is not this call's to commit.)
  if (!durable && !(ino ? buffer_.HasPending(*ino) : buffer_.buffered_bytes() > 0)) {
    return commit == catalog::Commit::kNow ? core_->db().CommitOpenBatch() : Status::Ok();
  }
  // The costly part of one file's flush (hashing, compression) runs before
  // taking the writer lock, which requests reading through the writer
  // connection wait for. (Writes have encoded the blocks they completed;
  // this catches the rest. A whole-buffer flush encodes the rest under the
  // lock.)
  if (ino.has_value()) EncodeWholeBlocks(*ino, 0, std::numeric_limits<uint64_t>::max());
  ASSIGN_OR_RETURN(catalog::WriterLease lease, core_->db().Writer());
  PendingFlush taken;
  taken.Take(*this, ino);
  if (taken.empty() && commit == catalog::Commit::kBatched) return Status::Ok();
  sql::Connection& conn = lease.conn();
  return CommitWith(core_->db(), lease, commit, core_->Now(), taken,
                    [&] { return taken.Write(conn); });
}

Attr FilesystemImpl::MakeAttr(const tree::InodeRow& row, const PendingView& pending) const {
  Attr a;
  a.ino = row.ino;
  a.mode = row.mode;
  a.nlink = row.nlink;
  a.uid = row.uid;
  a.gid = row.gid;
  a.rdev = row.rdev;
  a.size = std::max<uint64_t>(row.size, pending.size.value_or(0));
  a.atime_ns = row.atime_ns;
  a.mtime_ns = pending.mtime_ns.value_or(row.mtime_ns);
  a.ctime_ns = std::max(row.ctime_ns, pending.mtime_ns.value_or(row.ctime_ns));
  // Buffered blocks may also be stored already; the total is capped by size.
  uint64_t stored = (row.nblocks + pending.block_count) * block_size_;
  if (S_ISLNK(row.mode)) stored = row.target.size();
  a.blocks = (std::min(stored, a.size) + 511) / 512;
  return a;
}

Result<tree::InodeRow> FilesystemImpl::LoadInode(sql::Connection& conn, tree::Scope scope,
                                                 InodeId ino) {
  ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, scope, ino));
  if (!row.has_value()) return NotFound("no inode " + std::to_string(ino));
  return std::move(*row);
}

Result<tree::InodeRow> FilesystemImpl::LoadDir(sql::Connection& conn, tree::Scope scope,
                                               InodeId ino) {
  ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, scope, ino));
  if (!S_ISDIR(row.mode)) return NotDir("inode " + std::to_string(ino) + " is not a directory");
  return row;
}

bool FilesystemImpl::IsOpen(InodeId ino) {
  std::scoped_lock lock(open_mu_);
  return open_files_.count(ino) != 0;
}

bool FilesystemImpl::MarkOrphanIfOpen(InodeId ino) {
  std::scoped_lock lock(open_mu_);
  auto it = open_files_.find(ino);
  if (it == open_files_.end()) return false;
  it->second.maybe_orphan = true;
  return true;
}

Result<FsStats> FilesystemImpl::StatFs() {
  struct statvfs vfs;
  std::string dir = std::filesystem::path(core_->db().path()).parent_path().string();
  if (dir.empty()) dir = ".";
  if (statvfs(dir.c_str(), &vfs) != 0) return IoError("statvfs " + dir + " failed");
  FsStats st;
  st.block_size = 4096;
  auto scale = [&](uint64_t n) { return n * vfs.f_frsize / st.block_size; };
  st.total_blocks = scale(vfs.f_blocks);
  st.free_blocks = scale(vfs.f_bfree);
  st.available_blocks = scale(vfs.f_bavail);
  // Inode numbers are never a limit here; report plenty free.
  st.files = 1ull << 32;
  st.free_files = 1ull << 31;
  return st;
}

Result<Attr> FilesystemImpl::Resolve(std::string_view path, bool follow_last) {
  constexpr int kMaxSymlinks = 40;
  int followed = 0;
  InodeId dir = kRootIno;
  std::string pending(path);
  ASSIGN_OR_RETURN(Attr current, GetAttr(kRootIno));
  size_t pos = 0;
  while (pos < pending.size()) {
    if (pending[pos] == '/') {
      ++pos;
      continue;
    }
    size_t end = pending.find('/', pos);
    if (end == std::string::npos) end = pending.size();
    std::string name = pending.substr(pos, end - pos);
    bool last = pending.find_first_not_of('/', end) == std::string::npos;
    // As in POSIX path resolution, "name/" must name a directory, so a
    // symlink there is followed even when it is the last component.
    bool must_be_dir = !last || end < pending.size();
    ASSIGN_OR_RETURN(current, Lookup(dir, name));
    if (S_ISLNK(current.mode) && (must_be_dir || follow_last)) {
      if (++followed > kMaxSymlinks) return Status(Code::kLoop, "too many symbolic links");
      ASSIGN_OR_RETURN(std::string target, ReadLink(current.ino));
      std::string rest = end < pending.size() ? pending.substr(end) : "";
      if (!target.empty() && target[0] == '/') dir = kRootIno;
      pending = target + rest;
      pos = 0;
      ASSIGN_OR_RETURN(current, GetAttr(dir));
      continue;
    }
    if (must_be_dir && !S_ISDIR(current.mode)) {
      return NotDir(Quote(name) + " is not a directory");
    }
    dir = current.ino;
    pos = end;
  }
  return current;
}

}  // namespace strata::fs
