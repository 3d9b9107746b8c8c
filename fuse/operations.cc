// The FUSE low-level callbacks. Each decodes its request, calls the core and
// sends exactly one reply; errors are the core's errno. Nothing throws out of
// here: the core returns Status, and an allocation failure ends the process
// (as it would anywhere in C).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuse/server_state.h"

namespace strata::fuse {

namespace {

ServerState& State(fuse_req_t req) { return *static_cast<ServerState*>(fuse_req_userdata(req)); }
Filesystem& Fs(fuse_req_t req) { return *State(req).fs; }

struct timespec ToTimespec(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1'000'000'000;
    ts.tv_sec -= 1;
  }
  return ts;
}

int64_t ToNs(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct stat ToStat(const Attr& a) {
  struct stat st;
  std::memset(&st, 0, sizeof(st));
  st.st_ino = a.ino;
  st.st_mode = a.mode;
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_rdev = a.rdev;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>(a.blocks);
  st.st_blksize = 65536;
  st.st_atim = ToTimespec(a.atime_ns);
  st.st_mtim = ToTimespec(a.mtime_ns);
  st.st_ctim = ToTimespec(a.ctime_ns);
  return st;
}

fuse_entry_param ToEntry(fuse_req_t req, const Attr& a) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.ino = a.ino;
  e.generation = kGeneration;
  e.attr = ToStat(a);
  e.attr_timeout = State(req).timeout;
  e.entry_timeout = State(req).timeout;
  return e;
}

// Owner of a new inode: the caller (the core applies set-group-ID directories).
Cred CallerCred(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Cred{ctx->uid, ctx->gid};
}

void ReplyError(fuse_req_t req, const Status& s) { fuse_reply_err(req, s.ok() ? 0 : s.ToErrno()); }

template <typename T>
void ReplyEntry(fuse_req_t req, const Result<T>& r) {
  if (!r.ok()) return ReplyError(req, r.status());
  fuse_entry_param e = ToEntry(req, *r);
  fuse_reply_entry(req, &e);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  auto r = Fs(req).Lookup(parent, name);
  if (!r.ok() && r.status().code() == Code::kNotFound) {
    // A negative entry the kernel may cache, like a positive one.
    fuse_entry_param e;
    std::memset(&e, 0, sizeof(e));
    e.entry_timeout = State(req).timeout;
    fuse_reply_entry(req, &e);
    return;
  }
  ReplyEntry(req, r);
}

void Forget(fuse_req_t req, fuse_ino_t, uint64_t) noexcept { fuse_reply_none(req); }

void ForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) noexcept { fuse_reply_none(req); }

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) noexcept {
  auto r = Fs(req).GetAttr(ino);
  if (!r.ok()) return ReplyError(req, r.status());
  struct stat st = ToStat(*r);
  fuse_reply_attr(req, &st, State(req).timeout);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
             fuse_file_info*) noexcept {
  AttrChanges ch;
  if (to_set & FUSE_SET_ATTR_MODE) ch.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) ch.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) ch.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) ch.size = static_cast<uint64_t>(attr->st_size);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    ch.atime_ns = ToNs(now);
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    ch.atime_ns = ToNs(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    ch.mtime_ns = ToNs(now);
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    ch.mtime_ns = ToNs(attr->st_mtim);
  }
  if (to_set & FUSE_SET_ATTR_CTIME) ch.ctime_ns = ToNs(attr->st_ctim);
  auto r = Fs(req).SetAttr(ino, ch);
  if (!r.ok() && r.status().code() == Code::kNotFound &&
      to_set == (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME)) {
    // With the writeback cache the kernel keeps a regular file's mtime and
    // ctime itself and writes them back with exactly these two bits, also
    // right after an unlink or a rename over the file took its last name:
    // the inode is gone by then (it was not open), so nobody can see those
    // times any more. An error here would be recorded against the whole
    // mount and returned by the next syncfs(2), so the write is a no-op.
    struct stat st;
    std::memset(&st, 0, sizeof(st));
    st.st_ino = ino;
    st.st_mode = S_IFREG;
    st.st_mtim = attr->st_mtim;
    st.st_ctim = attr->st_ctim;
    fuse_reply_attr(req, &st, 0);
    return;
  }
  if (!r.ok()) return ReplyError(req, r.status());
  struct stat st = ToStat(*r);
  fuse_reply_attr(req, &st, State(req).timeout);
}

void ReadLink(fuse_req_t req, fuse_ino_t ino) noexcept {
  auto r = Fs(req).ReadLink(ino);
  if (!r.ok()) return ReplyError(req, r.status());
  fuse_reply_readlink(req, r->c_str());
}

void MkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) noexcept {
  ReplyEntry(req, Fs(req).MkNod(parent, name, mode, rdev, CallerCred(req)));
}

void MkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept {
  ReplyEntry(req, Fs(req).MkDir(parent, name, mode, CallerCred(req)));
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  ReplyError(req, Fs(req).Unlink(parent, name));
}

void RmDir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  ReplyError(req, Fs(req).RmDir(parent, name));
}

void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) noexcept {
  ReplyEntry(req, Fs(req).Symlink(parent, name, target, CallerCred(req)));
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
            const char* new_name, unsigned int flags) noexcept {
  ReplyError(req, Fs(req).Rename(parent, name, new_parent, new_name, flags));
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) noexcept {
  ReplyEntry(req, Fs(req).Link(ino, new_parent, new_name));
}

void DoOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  Status s = Fs(req).Open(ino);
  if (!s.ok()) return ReplyError(req, s);
  if ((fi->flags & O_TRUNC) != 0) {
    // Only reached when the kernel did not already truncate through setattr.
    AttrChanges ch;
    ch.size = 0;
    auto r = Fs(req).SetAttr(ino, ch);
    if (!r.ok()) {
      (void)Fs(req).Release(ino);
      return ReplyError(req, r.status());
    }
  }
  fi->keep_cache = 1;  // the page cache stays valid: only we change the file
  fuse_reply_open(req, fi);
}

void DoCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) noexcept {
  auto r = Fs(req).Create(parent, name, mode, CallerCred(req));
  if (!r.ok()) return ReplyError(req, r.status());
  fuse_entry_param e = ToEntry(req, *r);
  fi->keep_cache = 1;
  if (fuse_reply_create(req, &e, fi) != 0) (void)Fs(req).Release(r->ino);
}

// OPEN and CREATE wait while a cut is taken (see cut_gate.h): the request,
// copied (only then), runs when the cut ends.
void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  CutGate& gate = State(req).cut;
  auto later = [&] {
    return [req, ino, copy = *fi]() mutable { DoOpen(req, ino, &copy); };
  };
  if (!gate.Enter(req, later)) return;
  DoOpen(req, ino, fi);
  gate.Exit();
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
            fuse_file_info* fi) noexcept {
  CutGate& gate = State(req).cut;
  auto later = [&] {
    return [req, parent, n = std::string(name), mode, copy = *fi]() mutable {
      DoCreate(req, parent, n.c_str(), mode, &copy);
    };
  };
  if (!gate.Enter(req, later)) return;
  DoCreate(req, parent, name, mode, fi);
  gate.Exit();
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) noexcept {
  std::vector<uint8_t> buf(size);
  auto r = Fs(req).Read(ino, static_cast<uint64_t>(off), buf);
  if (!r.ok()) return ReplyError(req, r.status());
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), *r);
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info*) noexcept {
  State(req).cut.NoteWrite();
  auto r = Fs(req).Write(ino, static_cast<uint64_t>(off),
                         {reinterpret_cast<const uint8_t*>(buf), size});
  if (!r.ok()) return ReplyError(req, r.status());
  fuse_reply_write(req, *r);
}

void CopyFileRange(fuse_req_t req, fuse_ino_t in, off_t in_offset, fuse_file_info*,
                   fuse_ino_t out, off_t out_offset, fuse_file_info*, size_t length,
                   int flags) noexcept {
  if (flags != 0 || in_offset < 0 || out_offset < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  auto r = Fs(req).CopyRange(in, static_cast<uint64_t>(in_offset), out,
                             static_cast<uint64_t>(out_offset), length);
  if (!r.ok()) return ReplyError(req, r.status());
  fuse_reply_write(req, *r);
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) noexcept {
  // close(2) does not wait for the store; fsync(2) does.
  Fs(req).FlushLater(ino);
  fuse_reply_err(req, 0);
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) noexcept {
  ReplyError(req, Fs(req).Release(ino));
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) noexcept {
  // The drainer's fsyncs belong to cuts: held until the cut ends, or
  // answered at once when late for one (see CutGate).
  if (State(req).cut.HoldFsync(req, ino)) return;
  ReplyError(req, Fs(req).Fsync(ino));
}

// Directory handles (see DirHandle) live in the server state's table.
DirHandles& Dirs(fuse_req_t req) { return State(req).dirs; }

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  auto r = Fs(req).ReadDir(ino);
  if (!r.ok()) return ReplyError(req, r.status());
  fi->fh = Dirs(req).Add(std::move(r).value());
  fi->cache_readdir = 1;
  if (fuse_reply_open(req, fi) != 0) Dirs(req).Release(fi->fh);
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi,
                   bool plus) noexcept {
  DirHandle* handle = Dirs(req).Get(fi->fh);
  if (handle == nullptr) return (void)fuse_reply_err(req, EBADF);
  std::vector<char> buf(size);
  size_t used = 0;
  for (const DirEntry& e : handle->entries) {
    if (e.offset <= static_cast<uint64_t>(off)) continue;
    size_t n;
    if (plus) {
      fuse_entry_param entry;
      std::memset(&entry, 0, sizeof(entry));
      bool dot = e.name == "." || e.name == "..";
      if (!dot) {
        auto attr = Fs(req).GetAttr(e.ino);
        if (!attr.ok()) continue;  // removed since opendir
        entry = ToEntry(req, *attr);
      } else {
        entry.attr.st_ino = e.ino;
        entry.attr.st_mode = e.mode;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(), &entry,
                                 static_cast<off_t>(e.offset));
      if (n > size - used) break;
      // The kernel takes a lookup reference for each entry it accepts; we keep
      // none, so there is nothing to undo when the buffer is full.
    } else {
      struct stat st;
      std::memset(&st, 0, sizeof(st));
      st.st_ino = e.ino;
      st.st_mode = e.mode;
      n = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st,
                            static_cast<off_t>(e.offset));
      if (n > size - used) break;
    }
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) noexcept {
  ReadDirCommon(req, ino, size, off, fi, false);
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 fuse_file_info* fi) noexcept {
  ReadDirCommon(req, ino, size, off, fi, true);
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) noexcept {
  Dirs(req).Release(fi->fh);
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) noexcept {
  ReplyError(req, Fs(req).Fsync(ino));
}

void StatFs(fuse_req_t req, fuse_ino_t) noexcept {
  auto r = Fs(req).StatFs();
  if (!r.ok()) return ReplyError(req, r.status());
  struct statvfs st;
  std::memset(&st, 0, sizeof(st));
  st.f_bsize = r->block_size;
  st.f_frsize = r->block_size;
  st.f_blocks = r->total_blocks;
  st.f_bfree = r->free_blocks;
  st.f_bavail = r->available_blocks;
  st.f_files = r->files;
  st.f_ffree = r->free_files;
  st.f_favail = r->free_files;
  st.f_namemax = r->name_max;
  fuse_reply_statfs(req, &st);
}

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) noexcept {
  ReplyError(req, Fs(req).SetXattr(ino, name, std::string_view(value, size), flags));
}

// size 0 asks for the length; a buffer too small is ERANGE.
void ReplySized(fuse_req_t req, const std::string& data, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, data.size());
  } else if (data.size() > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, data.data(), data.size());
  }
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
  auto r = Fs(req).GetXattr(ino, name);
  if (!r.ok()) return ReplyError(req, r.status());
  ReplySized(req, *r, size);
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
  auto r = Fs(req).ListXattr(ino);
  if (!r.ok()) return ReplyError(req, r.status());
  std::string names;
  for (const auto& n : *r) {
    names += n;
    names.push_back('\0');
  }
  ReplySized(req, names, size);
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept {
  ReplyError(req, Fs(req).RemoveXattr(ino, name));
}

void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
               fuse_file_info*) noexcept {
  if (offset < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  ReplyError(req, Fs(req).Fallocate(ino, mode, static_cast<uint64_t>(offset),
                                    static_cast<uint64_t>(length)));
}

void Init(void* userdata, fuse_conn_info* conn) noexcept {
  (void)userdata;
  // Let the kernel cache writes and merge them into large requests.
  if (conn->capable & FUSE_CAP_WRITEBACK_CACHE) conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO) conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  // Locks are handled by the kernel on this host (no remote lock callbacks).
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  conn->max_write = 1u << 20;
  conn->max_readahead = 1u << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  ops.init = Init;
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.forget_multi = ForgetMulti;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.readlink = ReadLink;
  ops.mknod = MkNod;
  ops.mkdir = MkDir;
  ops.unlink = Unlink;
  ops.rmdir = RmDir;
  ops.symlink = Symlink;
  ops.rename = Rename;
  ops.link = Link;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  ops.flush = Flush;
  ops.release = Release;
  ops.fsync = Fsync;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.readdirplus = ReadDirPlus;
  ops.releasedir = ReleaseDir;
  ops.fsyncdir = FsyncDir;
  ops.statfs = StatFs;
  ops.setxattr = SetXattr;
  ops.getxattr = GetXattr;
  ops.listxattr = ListXattr;
  ops.removexattr = RemoveXattr;
  ops.fallocate = Fallocate;
  ops.copy_file_range = CopyFileRange;
  // No lseek: the kernel then answers SEEK_DATA/SEEK_HOLE itself (all data,
  // one hole at EOF), which is always correct. A hole-aware answer from here
  // would not be: with the writeback cache the kernel does not write dirty
  // pages back before FUSE_LSEEK, so data still in its cache would look like
  // a hole and sparse-aware copies (cp, tar) would drop it.
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& Operations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

}  // namespace strata::fuse
