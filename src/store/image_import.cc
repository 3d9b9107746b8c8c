// Unpacking a tarball into a filesystem (for images).
#include <sys/stat.h>

#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/archive_api.h"
#include "strata/archive.h"
#include "strata/import.h"

namespace strata {

namespace {

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

// "./a/b", "/a/b/" and "a//b" all become "a/b"; "" and "." the root (empty).
// A ".." component is refused: nothing may land outside the root.
Result<std::string> CleanPath(const char* raw) {
  if (raw == nullptr) return InvalidArgument("an entry has no name");
  std::string in = raw, out;
  size_t pos = 0;
  while (pos <= in.size()) {
    size_t end = in.find('/', pos);
    if (end == std::string::npos) end = in.size();
    std::string part = in.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return InvalidArgument("entry '" + in + "' leaves the image root");
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

// An entry's modification time in nanoseconds since the epoch, clamped to
// the int64 range: a tarball may carry any time (pax "mtime" is unbounded).
int64_t MtimeNs(int64_t seconds, int64_t nanoseconds) {
  int64_t ns = 0;
  if (__builtin_mul_overflow(seconds, int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, nanoseconds, &ns)) {
    return seconds < 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  return ns;
}

class TarReader {
 public:
  TarReader(const ArchiveApi& api, Filesystem& fs, archive* in, UnpackStats* stats)
      : api(api), fs_(fs), in_(in), stats_(stats) {}

  Status Run() {
    for (;;) {
      archive_entry* entry = nullptr;
      int r = api.archive_read_next_header(in_, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return Damaged("");
      RETURN_IF_ERROR(Entry(entry));
    }
    // Directory times last: adding entries changes them.
    for (const auto& [ino, changes] : dir_times_) RETURN_IF_ERROR(fs_.SetAttr(ino, changes).status());
    return fs_.FlushAll();
  }

 private:
  Status Damaged(const std::string& name) {
    const char* why = api.archive_error_string(in_);
    return InvalidArgument("the archive is damaged or truncated" +
                           (name.empty() ? std::string() : " at '" + name + "'") + ": " +
                           (why != nullptr ? why : "unknown error"));
  }

  Status Entry(archive_entry* entry) {
    ASSIGN_OR_RETURN(std::string path, CleanPath(api.archive_entry_pathname(entry)));
    const mode_t type = api.archive_entry_filetype(entry);
    AttrChanges attrs;
    attrs.mode = api.archive_entry_perm(entry) & 07777;
    attrs.uid = static_cast<uint32_t>(api.archive_entry_uid(entry));
    attrs.gid = static_cast<uint32_t>(api.archive_entry_gid(entry));
    attrs.mtime_ns = MtimeNs(api.archive_entry_mtime(entry), api.archive_entry_mtime_nsec(entry));
    attrs.atime_ns = attrs.mtime_ns;
    const Cred owner{*attrs.uid, *attrs.gid};
    if (path.empty()) {  // the root itself
      if (type == AE_IFDIR) dir_times_.emplace_back(kRootIno, attrs);
      return Status::Ok();
    }
    const size_t slash = path.rfind('/');
    const std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1);
    InodeId parent = kRootIno;
    if (slash != std::string::npos) {
      ASSIGN_OR_RETURN(Attr p, MakeDirs(fs_, path.substr(0, slash)));
      parent = p.ino;
    }
    if (const char* link = api.archive_entry_hardlink(entry)) {
      ASSIGN_OR_RETURN(std::string target_path, CleanPath(link));
      ASSIGN_OR_RETURN(Attr target, fs_.Resolve(target_path, /*follow_last=*/false));
      if (S_ISDIR(target.mode)) return InvalidArgument("entry '" + path + "' hard-links a directory");
      RETURN_IF_ERROR(RemoveExisting(parent, name, false));
      RETURN_IF_ERROR(fs_.Link(target.ino, parent, name).status());
      stats_->hardlinks++;
      return Status::Ok();
    }
    InodeId ino = 0;
    switch (type) {
      case AE_IFDIR: {
        auto existing = fs_.Lookup(parent, name);
        if (existing.ok() && S_ISDIR(existing->mode)) {
          ino = existing->ino;
        } else {
          RETURN_IF_ERROR(RemoveExisting(parent, name, false));
          ASSIGN_OR_RETURN(Attr d, fs_.MkDir(parent, name, 0700, owner));
          ino = d.ino;
          stats_->directories++;
        }
        dir_times_.emplace_back(ino, attrs);
        return Status::Ok();
      }
      case AE_IFREG: {
        RETURN_IF_ERROR(RemoveExisting(parent, name, true));
        ASSIGN_OR_RETURN(Attr f, CreateOrTruncate(fs_, parent, name, 0600, owner));
        Status copied = CopyData(f.ino, path);
        Status released = fs_.Release(f.ino);
        RETURN_IF_ERROR(copied);
        RETURN_IF_ERROR(released);
        ino = f.ino;
        stats_->files++;
        break;
      }
      case AE_IFLNK: {
        const char* target = api.archive_entry_symlink(entry);
        if (target == nullptr || *target == '\0') {
          return InvalidArgument("entry '" + path + "' is a symlink without a target");
        }
        RETURN_IF_ERROR(RemoveExisting(parent, name, false));
        ASSIGN_OR_RETURN(Attr l, fs_.Symlink(parent, name, target, owner));
        stats_->symlinks++;
        attrs.mode.reset();  // a symlink's mode means nothing
        ino = l.ino;
        break;
      }
      case AE_IFIFO: {
        RETURN_IF_ERROR(RemoveExisting(parent, name, false));
        ASSIGN_OR_RETURN(Attr n, fs_.MkNod(parent, name, S_IFIFO | 0600, 0, owner));
        ino = n.ino;
        break;
      }
      default:  // character and block devices, sockets
        stats_->skipped++;
        return Status::Ok();
    }
    const char* xname = nullptr;
    const void* xvalue = nullptr;
    size_t xsize = 0;
    api.archive_entry_xattr_reset(entry);
    while (api.archive_entry_xattr_next(entry, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
      Status s = fs_.SetXattr(ino, xname, {static_cast<const char*>(xvalue), xsize}, 0);
      if (!s.ok()) return s.WithContext("entry '" + path + "': xattr " + xname);
    }
    return fs_.SetAttr(ino, attrs).status();
  }

  // Makes room for a new entry: an existing non-directory goes; an existing
  // directory stays (the archive must not replace a tree with a file).
  Status RemoveExisting(InodeId parent, const std::string& name, bool keep_regular) {
    auto existing = fs_.Lookup(parent, name);
    if (!existing.ok()) return Status::Ok();
    if (S_ISDIR(existing->mode)) {
      return Exists("entry '" + name + "' replaces a directory of the same name");
    }
    if (keep_regular && S_ISREG(existing->mode)) return Status::Ok();  // truncated instead
    return fs_.Unlink(parent, name);
  }

  Status CopyData(InodeId ino, const std::string& path) {
    for (;;) {
      const void* buf = nullptr;
      size_t size = 0;
      la_int64_t offset = 0;
      int r = api.archive_read_data_block(in_, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) return Status::Ok();
      if (r < ARCHIVE_WARN) return Damaged(path);
      if (size == 0) continue;
      ASSIGN_OR_RETURN(size_t n, fs_.Write(ino, static_cast<uint64_t>(offset),
                                           {static_cast<const uint8_t*>(buf), size}));
      stats_->bytes += n;
    }
  }

  const ArchiveApi& api;
  Filesystem& fs_;
  archive* in_;
  UnpackStats* stats_;
  std::vector<std::pair<InodeId, AttrChanges>> dir_times_;
};

}  // namespace

Status UnpackTar(Filesystem& fs, const std::string& path, UnpackStats* stats) {
  ASSIGN_OR_RETURN(const ArchiveApi* loaded, LoadArchiveApi());
  const ArchiveApi& api = *loaded;
  ArchivePtr in(api.archive_read_new(), api.archive_read_free);
  // Tar in its variants (ustar, pax, GNU: what docker export and tar(1)
  // write), plain or compressed. Only these are linked in (see CMakeLists).
  api.archive_read_support_format_tar(in.get());
  api.archive_read_support_filter_gzip(in.get());
  api.archive_read_support_filter_bzip2(in.get());
  api.archive_read_support_filter_xz(in.get());
  api.archive_read_support_filter_zstd(in.get());
  if (api.archive_read_open_filename(in.get(), path.c_str(), 1 << 20) != ARCHIVE_OK) {
    const char* why = api.archive_error_string(in.get());
    return InvalidArgument("cannot read archive " + path + ": " + (why != nullptr ? why : "unknown error"));
  }
  Status s = TarReader(api, fs, in.get(), stats).Run();
  return s.ok() ? s : s.WithContext(path);
}

}  // namespace strata
