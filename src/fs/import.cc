#include "strata/import.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/time_ns.h"

namespace strata {

namespace {

// Closes a host file descriptor on scope exit.
class HostFd {
 public:
  explicit HostFd(int fd) : fd_(fd) {}
  ~HostFd() {
    if (fd_ >= 0) close(fd_);
  }
  HostFd(const HostFd&) = delete;
  HostFd& operator=(const HostFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Status HostError(const std::string& what, const std::string& path) {
  return IoError(what + " " + path + ": " + std::strerror(errno));
}


Status ImportFile(Filesystem& fs, const std::string& host, const struct stat& st, InodeId parent,
                  std::string_view name, ImportStats* stats) {
  HostFd fd(open(host.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == EACCES || errno == EPERM) {
      stats->skipped++;
      return Status::Ok();
    }
    return HostError("cannot open", host);
  }
  ASSIGN_OR_RETURN(Attr attr, CreateOrTruncate(fs, parent, name, st.st_mode & 07777,
                                                Cred{st.st_uid, st.st_gid}));
  std::vector<uint8_t> buf(1 << 20);
  uint64_t offset = 0;
  Status s;
  for (;;) {
    ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      s = HostError("cannot read", host);
      break;
    }
    if (n == 0) break;
    auto written = fs.Write(attr.ino, offset, {buf.data(), static_cast<size_t>(n)});
    if (!written.ok()) {
      s = written.status();
      break;
    }
    offset += static_cast<uint64_t>(n);
  }
  Status released = fs.Release(attr.ino);
  RETURN_IF_ERROR(s);
  RETURN_IF_ERROR(released);
  stats->files++;
  stats->bytes += offset;
  return CopyHostAttrs(fs, attr.ino, st);
}

Status ImportAny(Filesystem& fs, const std::string& host, InodeId parent, std::string_view name,
                 ImportStats* stats, int depth);

Status ImportDir(Filesystem& fs, const std::string& host, const struct stat& st, InodeId parent,
                 std::string_view name, ImportStats* stats, int depth) {
  if (depth > 256) return InvalidArgument(host + ": directories nested too deeply");
  InodeId dir = 0;
  auto existing = fs.Lookup(parent, name);
  if (existing.ok()) {
    if (!S_ISDIR(existing->mode)) return Exists(host + ": destination exists and is not a directory");
    dir = existing->ino;
  } else {
    ASSIGN_OR_RETURN(Attr attr, fs.MkDir(parent, name, 0700, Cred{st.st_uid, st.st_gid}));
    dir = attr.ino;
  }
  auto names = ListHostDir(host);
  if (!names.ok()) {
    if (names.status().code() != Code::kAccess) return names.status();
    stats->skipped++;
    return Status::Ok();
  }
  for (const HostDirEntry& e : *names) {
    RETURN_IF_ERROR(ImportAny(fs, host + "/" + e.name, dir, e.name, stats, depth + 1));
  }
  stats->directories++;
  // Last, so that adding entries does not disturb the copied times.
  return CopyHostAttrs(fs, dir, st);
}

Status ImportAny(Filesystem& fs, const std::string& host, InodeId parent, std::string_view name,
                 ImportStats* stats, int depth) {
  struct stat st;
  if (lstat(host.c_str(), &st) != 0) return HostError("cannot stat", host);
  if (S_ISREG(st.st_mode)) return ImportFile(fs, host, st, parent, name, stats);
  if (S_ISDIR(st.st_mode)) return ImportDir(fs, host, st, parent, name, stats, depth);
  if (S_ISLNK(st.st_mode)) {
    std::vector<char> target(static_cast<size_t>(st.st_size) + 1 + 4096);
    ssize_t n = readlink(host.c_str(), target.data(), target.size());
    if (n < 0) return HostError("cannot read link", host);
    if (fs.Lookup(parent, name).ok()) RETURN_IF_ERROR(fs.Unlink(parent, name));
    ASSIGN_OR_RETURN(Attr attr, fs.Symlink(parent, name, std::string_view(target.data(), n),
                                           Cred{st.st_uid, st.st_gid}));
    (void)attr;
    stats->symlinks++;
    return Status::Ok();
  }
  if (S_ISFIFO(st.st_mode)) {
    if (fs.Lookup(parent, name).ok()) RETURN_IF_ERROR(fs.Unlink(parent, name));
    return fs.MkNod(parent, name, st.st_mode, 0, Cred{st.st_uid, st.st_gid}).status();
  }
  stats->skipped++;
  return Status::Ok();
}

}  // namespace

Status CopyHostAttrs(Filesystem& fs, InodeId ino, const struct stat& st) {
  AttrChanges ch;
  ch.mode = st.st_mode & 07777;
  ch.uid = st.st_uid;
  ch.gid = st.st_gid;
  ch.atime_ns = TimespecNs(st.st_atim);
  ch.mtime_ns = TimespecNs(st.st_mtim);
  return fs.SetAttr(ino, ch).status();
}

Result<std::vector<HostDirEntry>> ListHostDir(const std::string& host_dir) {
  DIR* d = opendir(host_dir.c_str());
  if (d == nullptr) {
    if (errno == EACCES || errno == EPERM) {
      return Status(Code::kAccess, "cannot open directory " + host_dir);
    }
    return HostError("cannot open directory", host_dir);
  }
  std::vector<HostDirEntry> entries;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") entries.push_back({std::move(n), e->d_type});
  }
  closedir(d);
  std::sort(entries.begin(), entries.end(),
            [](const HostDirEntry& a, const HostDirEntry& b) { return a.name < b.name; });
  return entries;
}

Status ImportPath(Filesystem& fs, const std::string& host_path, InodeId parent,
                  std::string_view name, ImportStats* stats) {
  RETURN_IF_ERROR(ImportAny(fs, host_path, parent, name, stats, 0));
  return fs.FlushAll();
}

Status ImportTree(Filesystem& fs, const std::string& host_dir, ImportStats* stats) {
  struct stat st;
  if (stat(host_dir.c_str(), &st) != 0) return HostError("cannot stat", host_dir);
  if (!S_ISDIR(st.st_mode)) return NotDir(host_dir + " is not a directory");
  ASSIGN_OR_RETURN(auto entries, ListHostDir(host_dir));
  for (const HostDirEntry& e : entries) {
    RETURN_IF_ERROR(ImportAny(fs, host_dir + "/" + e.name, kRootIno, e.name, stats, 1));
  }
  RETURN_IF_ERROR(CopyHostAttrs(fs, kRootIno, st));
  return fs.FlushAll();
}

Result<Attr> CreateOrTruncate(Filesystem& fs, InodeId parent, std::string_view name,
                              uint32_t mode, Cred cred) {
  auto existing = fs.Lookup(parent, name);
  if (!existing.ok()) {
    if (existing.status().code() != Code::kNotFound) return existing.status();
    return fs.Create(parent, name, mode, cred);
  }
  if (S_ISDIR(existing->mode)) return IsDir("'" + std::string(name) + "' is a directory");
  if (!S_ISREG(existing->mode)) {
    return Exists("'" + std::string(name) + "' exists and is not a regular file");
  }
  RETURN_IF_ERROR(fs.Open(existing->ino));
  AttrChanges truncate;
  truncate.size = 0;
  auto attr = fs.SetAttr(existing->ino, truncate);
  if (!attr.ok()) (void)fs.Release(existing->ino);
  return attr;
}

Result<Attr> MakeDirs(Filesystem& fs, std::string_view path, Cred cred) {
  ASSIGN_OR_RETURN(Attr current, fs.GetAttr(kRootIno));
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    auto next = fs.Lookup(current.ino, part);
    if (next.ok()) {
      if (!S_ISDIR(next->mode)) return NotDir("'" + std::string(part) + "' is not a directory");
      current = *next;
      continue;
    }
    if (next.status().code() != Code::kNotFound) return next.status();
    ASSIGN_OR_RETURN(current, fs.MkDir(current.ino, part, 0755, cred));
  }
  return current;
}

}  // namespace strata
