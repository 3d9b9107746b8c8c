// Namespace operations: names, links, directories, attributes.
#include <linux/fs.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "fs/filesystem_impl.h"
#include "fs/host_entries.h"
#include "fs/names.h"

namespace strata::fs {

namespace {

constexpr uint32_t kMaxLinks = 65000;

uint32_t TypeOf(uint32_t mode) { return mode & S_IFMT; }

}  // namespace

Result<Attr> FilesystemImpl::Lookup(InodeId parent, std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  // The target is known only inside the read, so its buffer view comes after
  // the read began (not "buffer first"): if a flush of the target completed
  // meanwhile, the data it took may be in a commit this read does not see,
  // and neither in the view. Then read again.
  for (;;) {
    const uint64_t flushes = buffer_.CompletedFlushes();
    ASSIGN_OR_RETURN(Attr out, LookupOnce(parent, name));
    if (buffer_.LastFlushOf(out.ino) <= flushes) return out;
  }
}

Result<Attr> FilesystemImpl::LookupOnce(InodeId parent, std::string_view name) {
  if (name != "." && name != "..") RETURN_IF_ERROR(Materialize(parent));
  Attr out;
  PendingView pending;
  RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
    InodeId target;
    if (name == "." || name == "..") {
      ASSIGN_OR_RETURN(tree::InodeRow dir, LoadDir(conn, scope, parent));
      target = name == "." ? parent : dir.parent;
    } else {
      // Live entries exist only under live directories, so the parent is
      // loaded only when the name is missing (to answer ENOTDIR or ENOENT):
      // one ancestry walk less per hit (see docs/BENCHMARKS.md, depth).
      ASSIGN_OR_RETURN(auto entry, tree::GetDentry(conn, scope, parent, name));
      if (!entry.has_value()) {
        RETURN_IF_ERROR(LoadDir(conn, scope, parent).status());
        return NotFound("no entry " + Quote(name));
      }
      target = entry->ino;
    }
    pending = buffer_.View(target, 1, 0);
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, scope, target));
    out = MakeAttr(row, pending);
    return Status::Ok();
  }));
  return out;
}

Result<Attr> FilesystemImpl::GetAttr(InodeId ino) {
  Attr out;
  // Buffer first, database second: see WriteBuffer.
  PendingView pending = buffer_.View(ino, 1, 0);
  RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, scope, ino));
    out = MakeAttr(row, pending);
    return Status::Ok();
  }));
  return out;
}

Result<Attr> FilesystemImpl::SetAttr(InodeId ino, const AttrChanges& changes) {
  if (read_only()) return ReadOnly("snapshot views are read-only");
  // The kernel's writeback cache sends the times of written data with each
  // fsync and close. While that data is still buffered, the time goes with
  // it (its flush sets ctime to at least mtime): no row to write, and no
  // wait for the writer connection.
  const bool times_of_a_write = !changes.mode && !changes.uid && !changes.gid && !changes.size &&
                                !changes.atime_ns && changes.mtime_ns.has_value() &&
                                changes.ctime_ns == changes.mtime_ns;
  if (times_of_a_write && buffer_.SetMtimeOfUntakenWrites(ino, *changes.mtime_ns)) {
    return GetAttr(ino);
  }
  // A size change must see every buffered write. Other changes need no flush
  // (one commit, not two: the kernel's writeback cache sends a time update
  // with each close); an explicit mtime is handed to the buffered data below.
  if (changes.size) {
    RETURN_IF_ERROR(Materialize(ino));
    RETURN_IF_ERROR(FlushPending(ino, catalog::Commit::kBatched));
  }
  RETURN_IF_ERROR(Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), ino));
    int64_t now = core_->Now();
    if (changes.mode) row.mode = (row.mode & S_IFMT) | (*changes.mode & 07777);
    if (changes.uid) row.uid = *changes.uid;
    if (changes.gid) row.gid = *changes.gid;
    if (changes.size) {
      if (S_ISDIR(row.mode)) return IsDir("cannot truncate a directory");
      if (!S_ISREG(row.mode)) return InvalidArgument("cannot truncate a special file");
      if (*changes.size > kMaxFileSize) return Status(Code::kFileTooBig, "size too large");
      if (*changes.size != row.size) {
        RETURN_IF_ERROR(CountResize(ino, row.size, *changes.size));
        RETURN_IF_ERROR(Truncate(conn, head, row, *changes.size));
        row.mtime_ns = now;
      }
    }
    if (changes.atime_ns) row.atime_ns = *changes.atime_ns;
    if (changes.mtime_ns) row.mtime_ns = *changes.mtime_ns;
    row.ctime_ns = changes.ctime_ns.value_or(now);
    RETURN_IF_ERROR(tree::PutInode(conn, head, row));
    // Under the writer lock: no flush can be half-way through this inode.
    if (changes.mtime_ns) buffer_.OverrideMtime(ino, *changes.mtime_ns);
    return Status::Ok();
  }));
  return GetAttr(ino);
}

Result<Attr> FilesystemImpl::MakeNode(InodeId parent, std::string_view name, uint32_t mode,
                                      uint64_t rdev, std::string_view target, Cred cred,
                                      bool open) {
  RETURN_IF_ERROR(ValidateName(name));
  if (IsDotOrDotDot(name)) return Exists(Quote(name) + " exists");
  RETURN_IF_ERROR(Materialize(parent));
  InodeId ino = 0;
  RETURN_IF_ERROR(Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow dir, LoadDir(conn, head.scope(), parent));
    ASSIGN_OR_RETURN(auto existing, tree::GetDentry(conn, head.scope(), parent, name));
    if (existing.has_value()) return Exists(Quote(name) + " exists");
    ASSIGN_OR_RETURN(ino, tree::AllocateIno(conn, core_->InoFloor()));
    core_->NoteIno(ino);
    int64_t now = core_->Now();
    tree::InodeRow row;
    row.ino = ino;
    row.mode = mode;
    if (dir.mode & S_ISGID) {
      // A set-group-ID directory hands down its group, and the bit to subdirectories.
      cred.gid = dir.gid;
      if (S_ISDIR(mode)) row.mode |= S_ISGID;
    }
    row.nlink = S_ISDIR(mode) ? 2 : 1;
    row.uid = cred.uid;
    row.gid = cred.gid;
    row.rdev = rdev;
    row.atime_ns = row.mtime_ns = row.ctime_ns = now;
    row.parent = S_ISDIR(mode) ? parent : 0;
    row.target = std::string(target);
    row.size = S_ISLNK(mode) ? target.size() : 0;
    RETURN_IF_ERROR(tree::PutInode(conn, head, row));
    RETURN_IF_ERROR(tree::PutDentry(conn, head, parent,
                                    tree::DentryRow{std::string(name), ino, TypeOf(mode)}));
    return TouchDir(conn, head, parent, S_ISDIR(mode) ? 1 : 0, now);
  }));
  if (open) {
    std::scoped_lock lock(open_mu_);
    open_files_[ino].count++;
  }
  return GetAttr(ino);
}

Result<Attr> FilesystemImpl::MkNod(InodeId parent, std::string_view name, uint32_t mode,
                                   uint64_t rdev, Cred cred) {
  switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
      rdev = 0;
      break;
    case S_IFCHR:
    case S_IFBLK:
      break;
    default:
      return InvalidArgument("mknod supports regular files, fifos, sockets and devices");
  }
  return MakeNode(parent, name, (mode & S_IFMT) | (mode & 07777), rdev, "", cred, false);
}

Result<Attr> FilesystemImpl::MkDir(InodeId parent, std::string_view name, uint32_t mode,
                                   Cred cred) {
  return MakeNode(parent, name, S_IFDIR | (mode & 07777), 0, "", cred, false);
}

Result<Attr> FilesystemImpl::Symlink(InodeId parent, std::string_view name,
                                     std::string_view target, Cred cred) {
  if (target.empty()) return NotFound("empty symlink target");
  if (target.size() >= 4096) return Status(Code::kNameTooLong, "symlink target too long");
  return MakeNode(parent, name, S_IFLNK | 0777, 0, target, cred, false);
}

Result<Attr> FilesystemImpl::Create(InodeId parent, std::string_view name, uint32_t mode,
                                    Cred cred) {
  return MakeNode(parent, name, S_IFREG | (mode & 07777), 0, "", cred, true);
}

Result<std::string> FilesystemImpl::ReadLink(InodeId ino) {
  std::string out;
  RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, scope, ino));
    if (!S_ISLNK(row.mode)) return InvalidArgument("not a symbolic link");
    out = std::move(row.target);
    return Status::Ok();
  }));
  return out;
}

Status FilesystemImpl::TouchDir(sql::Connection& conn, tree::Head head, InodeId dir,
                                int nlink_delta, int64_t now) {
  ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), dir));
  row.mtime_ns = row.ctime_ns = now;
  row.nlink = static_cast<uint32_t>(static_cast<int64_t>(row.nlink) + nlink_delta);
  return tree::PutInode(conn, head, row);
}

Result<Attr> FilesystemImpl::Link(InodeId ino, InodeId new_parent, std::string_view new_name) {
  RETURN_IF_ERROR(ValidateName(new_name));
  if (IsDotOrDotDot(new_name)) return Exists(Quote(new_name) + " exists");
  RETURN_IF_ERROR(Materialize(new_parent));
  RETURN_IF_ERROR(Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), ino));
    if (S_ISDIR(row.mode)) return Status(Code::kNotPermitted, "cannot hard-link a directory");
    RETURN_IF_ERROR(LoadDir(conn, head.scope(), new_parent).status());
    ASSIGN_OR_RETURN(auto existing, tree::GetDentry(conn, head.scope(), new_parent, new_name));
    if (existing.has_value()) return Exists(Quote(new_name) + " exists");
    if (row.nlink >= kMaxLinks) return Status(Code::kTooManyLinks, "too many links");
    int64_t now = core_->Now();
    if (row.nlink == 0) RETURN_IF_ERROR(tree::RemoveOrphan(conn, head.branch, ino));
    row.nlink++;
    row.ctime_ns = now;
    RETURN_IF_ERROR(tree::PutInode(conn, head, row));
    RETURN_IF_ERROR(tree::PutDentry(
        conn, head, new_parent, tree::DentryRow{std::string(new_name), ino, TypeOf(row.mode)}));
    return TouchDir(conn, head, new_parent, 0, now);
  }));
  return GetAttr(ino);
}

Status FilesystemImpl::DropLink(sql::Connection& conn, tree::Head head, const tree::InodeRow& row,
                                int64_t now) {
  if (S_ISDIR(row.mode)) return tree::DeleteInode(conn, head, row.ino);
  tree::InodeRow updated = row;
  updated.nlink = row.nlink > 0 ? row.nlink - 1 : 0;
  updated.ctime_ns = now;
  if (updated.nlink > 0) return tree::PutInode(conn, head, updated);
  if (MarkOrphanIfOpen(row.ino)) {
    // Still open: keep it, readable and writable, until the last Release.
    RETURN_IF_ERROR(tree::PutInode(conn, head, updated));
    return tree::AddOrphan(conn, head.branch, row.ino);
  }
  buffer_.Discard(row.ino);
  if (S_ISREG(row.mode)) CountRemoved(row.size);
  return tree::DeleteInode(conn, head, row.ino);
}

Status FilesystemImpl::Unlink(InodeId parent, std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  if (IsDotOrDotDot(name)) return IsDir(Quote(name) + " is a directory");
  RETURN_IF_ERROR(Materialize(parent));
  return Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    RETURN_IF_ERROR(LoadDir(conn, head.scope(), parent).status());
    ASSIGN_OR_RETURN(auto entry, tree::GetDentry(conn, head.scope(), parent, name));
    if (!entry.has_value()) return NotFound("no entry " + Quote(name));
    if (S_ISDIR(entry->type)) return IsDir(Quote(name) + " is a directory");
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), entry->ino));
    int64_t now = core_->Now();
    RETURN_IF_ERROR(tree::DeleteDentry(conn, head, parent, name));
    RETURN_IF_ERROR(DropLink(conn, head, row, now));
    return TouchDir(conn, head, parent, 0, now);
  });
}

Status FilesystemImpl::RmDir(InodeId parent, std::string_view name) {
  RETURN_IF_ERROR(ValidateName(name));
  if (name == ".") return InvalidArgument("cannot remove '.'");
  if (name == "..") return NotEmpty("cannot remove '..'");
  RETURN_IF_ERROR(MaterializeEntry(parent, name));
  return Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    RETURN_IF_ERROR(LoadDir(conn, head.scope(), parent).status());
    ASSIGN_OR_RETURN(auto entry, tree::GetDentry(conn, head.scope(), parent, name));
    if (!entry.has_value()) return NotFound("no entry " + Quote(name));
    if (!S_ISDIR(entry->type)) return NotDir(Quote(name) + " is not a directory");
    ASSIGN_OR_RETURN(bool has_entries, tree::HasDentries(conn, head.scope(), entry->ino));
    if (has_entries) return NotEmpty(Quote(name) + " is not empty");
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), entry->ino));
    int64_t now = core_->Now();
    RETURN_IF_ERROR(tree::DeleteDentry(conn, head, parent, name));
    RETURN_IF_ERROR(DropLink(conn, head, row, now));
    return TouchDir(conn, head, parent, -1, now);
  });
}

Status FilesystemImpl::MaterializeEntry(InodeId parent, std::string_view name) {
  RETURN_IF_ERROR(Materialize(parent));
  if (host_base_ == 0) return Status::Ok();
  auto entry = LookupOnce(parent, name);
  if (!entry.ok() || !S_ISDIR(entry->mode)) return Status::Ok();  // the operation answers
  return Materialize(entry->ino);
}

Status FilesystemImpl::IsAncestor(sql::Connection& conn, tree::Scope scope,
                                  InodeId maybe_ancestor, InodeId dir, bool* result) {
  *result = false;
  for (int steps = 0; steps < 100000; ++steps) {
    if (dir == maybe_ancestor) {
      *result = true;
      return Status::Ok();
    }
    if (dir == kRootIno) return Status::Ok();
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadDir(conn, scope, dir));
    dir = row.parent;
  }
  return Corruption("directory parent chain does not reach the root");
}

Status FilesystemImpl::Rename(InodeId parent, std::string_view name, InodeId new_parent,
                              std::string_view new_name, unsigned flags) {
  RETURN_IF_ERROR(ValidateName(name));
  RETURN_IF_ERROR(ValidateName(new_name));
  if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0 ||
      flags == (RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    return InvalidArgument("unsupported rename flags");
  }
  if (IsDotOrDotDot(name) || IsDotOrDotDot(new_name)) {
    return Status(Code::kBusy, "cannot rename '.' or '..'");
  }
  const bool exchange = (flags & RENAME_EXCHANGE) != 0;
  RETURN_IF_ERROR(Materialize(parent));
  RETURN_IF_ERROR(MaterializeEntry(new_parent, new_name));
  return Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    tree::Scope scope = head.scope();
    RETURN_IF_ERROR(LoadDir(conn, scope, parent).status());
    RETURN_IF_ERROR(LoadDir(conn, scope, new_parent).status());
    ASSIGN_OR_RETURN(auto src, tree::GetDentry(conn, scope, parent, name));
    if (!src.has_value()) return NotFound("no entry " + Quote(name));
    ASSIGN_OR_RETURN(auto dst, tree::GetDentry(conn, scope, new_parent, new_name));
    if (exchange && !dst.has_value()) return NotFound("no entry " + Quote(new_name));
    if ((flags & RENAME_NOREPLACE) && dst.has_value()) {
      return Exists(Quote(new_name) + " exists");
    }
    const bool src_dir = S_ISDIR(src->type);
    const bool dst_dir = dst.has_value() && S_ISDIR(dst->type);
    // A directory may not move into itself or below itself.
    bool inside = false;
    if (src_dir) {
      RETURN_IF_ERROR(IsAncestor(conn, scope, src->ino, new_parent, &inside));
      if (inside) return InvalidArgument("cannot move a directory into itself");
    }
    if (exchange && dst_dir) {
      RETURN_IF_ERROR(IsAncestor(conn, scope, dst->ino, parent, &inside));
      if (inside) return InvalidArgument("cannot move a directory into itself");
    }
    if (dst.has_value() && dst->ino == src->ino) return Status::Ok();  // same inode: no-op
    if (dst.has_value() && !exchange) {
      if (src_dir && !dst_dir) return NotDir(Quote(new_name) + " is not a directory");
      if (!src_dir && dst_dir) return IsDir(Quote(new_name) + " is a directory");
      if (dst_dir) {
        ASSIGN_OR_RETURN(bool has_entries, tree::HasDentries(conn, scope, dst->ino));
        if (has_entries) return NotEmpty(Quote(new_name) + " is not empty");
      }
    }
    int64_t now = core_->Now();
    const bool moves_dirs = parent != new_parent;
    // New names first, then the old name (or its exchanged occupant).
    RETURN_IF_ERROR(tree::PutDentry(conn, head, new_parent,
                                    tree::DentryRow{std::string(new_name), src->ino, src->type}));
    if (exchange) {
      RETURN_IF_ERROR(tree::PutDentry(conn, head, parent,
                                      tree::DentryRow{std::string(name), dst->ino, dst->type}));
    } else {
      RETURN_IF_ERROR(tree::DeleteDentry(conn, head, parent, name));
      if (dst.has_value()) {
        ASSIGN_OR_RETURN(tree::InodeRow victim, LoadInode(conn, scope, dst->ino));
        RETURN_IF_ERROR(DropLink(conn, head, victim, now));
        if (dst_dir) RETURN_IF_ERROR(TouchDir(conn, head, new_parent, -1, now));
      }
    }
    // Moved inodes: ctime, and a directory's parent pointer.
    auto moved = [&](InodeId ino, InodeId to) -> Status {
      ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, scope, ino));
      row.ctime_ns = now;
      if (S_ISDIR(row.mode)) row.parent = to;
      return tree::PutInode(conn, head, row);
    };
    RETURN_IF_ERROR(moved(src->ino, new_parent));
    if (exchange) RETURN_IF_ERROR(moved(dst->ino, parent));
    // Link counts of the parents change when directories cross between them.
    int into_new = 0;
    if (moves_dirs) into_new = (src_dir ? 1 : 0) - (exchange && dst_dir ? 1 : 0);
    RETURN_IF_ERROR(TouchDir(conn, head, parent, -into_new, now));
    if (moves_dirs) RETURN_IF_ERROR(TouchDir(conn, head, new_parent, into_new, now));
    return Status::Ok();
  });
}

Result<std::vector<DirEntry>> FilesystemImpl::ReadDir(InodeId ino) {
  RETURN_IF_ERROR(Materialize(ino));
  std::vector<DirEntry> out;
  RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow dir, LoadDir(conn, scope, ino));
    ASSIGN_OR_RETURN(std::vector<tree::DentryRow> rows, tree::ListDentries(conn, scope, ino));
    out.reserve(rows.size() + 2);
    out.push_back(DirEntry{".", ino, S_IFDIR, 1});
    out.push_back(DirEntry{"..", dir.parent, S_IFDIR, 2});
    for (auto& r : rows) {
      out.push_back(DirEntry{std::move(r.name), r.ino, r.type, out.size() + 1});
    }
    return Status::Ok();
  }));
  return out;
}

Result<Attr> FilesystemImpl::AddHostEntry(InodeId parent, std::string_view name,
                                          const std::string& root, const std::string& rel,
                                          bool copy, int64_t taken_ns) {
  RETURN_IF_ERROR(ValidateName(name));
  HostEntry proto;
  proto.root = root;
  proto.rel = rel;
  proto.taken_ns = taken_ns;
  proto.copy = copy;
  const std::string host = proto.HostPath();
  struct stat st;
  if (lstat(host.c_str(), &st) != 0) {
    return IoError("cannot stat host path " + host + ": " + std::strerror(errno));
  }
  tree::InodeRow row;
  RETURN_IF_ERROR(Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    RETURN_IF_ERROR(LoadDir(conn, head.scope(), parent).status());
    ASSIGN_OR_RETURN(auto existing, tree::GetDentry(conn, head.scope(), parent, name));
    if (existing.has_value()) return Exists(Quote(name) + " exists");
    proto.base = head.branch;
    ASSIGN_OR_RETURN(row, AddHostChild(conn, *core_, head, parent, std::string(name), proto, st));
    // `parent` is an ordinary directory, which counts its subdirectories.
    return TouchDir(conn, head, parent, S_ISDIR(row.mode) ? 1 : 0, core_->Now());
  }));
  return MakeAttr(row, PendingView{});
}

}  // namespace strata::fs
