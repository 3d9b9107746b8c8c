#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "store/archive_api.h"
#include "strata/archive.h"

namespace strata {

namespace {

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;
using EntryPtr = std::unique_ptr<archive_entry, void (*)(archive_entry*)>;

class TarWriter {
 public:
  TarWriter(const ArchiveApi& api, Filesystem& fs, archive* out, TarStats* stats)
      : api(api), fs_(fs), out_(out), stats_(stats) {}

  // Writes `ino` as `path`, then (directories) everything below it.
  Status Write(InodeId ino, const std::string& path) {
    ASSIGN_OR_RETURN(Attr a, fs_.GetAttr(ino));
    EntryPtr entry(api.archive_entry_new(), api.archive_entry_free);
    api.archive_entry_set_pathname(entry.get(), path.c_str());
    api.archive_entry_set_mode(entry.get(), a.mode);
    api.archive_entry_set_uid(entry.get(), a.uid);
    api.archive_entry_set_gid(entry.get(), a.gid);
    api.archive_entry_set_mtime(entry.get(), a.mtime_ns / 1'000'000'000, a.mtime_ns % 1'000'000'000);
    if (!S_ISDIR(a.mode) && a.nlink > 1) {
      auto [it, first] = links_.emplace(ino, path);
      if (!first) {  // a hard link to an entry already written
        api.archive_entry_set_hardlink(entry.get(), it->second.c_str());
        api.archive_entry_set_size(entry.get(), 0);
        return Header(entry.get(), path);
      }
    }
    ASSIGN_OR_RETURN(auto names, fs_.ListXattr(ino));
    for (const auto& name : names) {
      ASSIGN_OR_RETURN(std::string value, fs_.GetXattr(ino, name));
      api.archive_entry_xattr_add_entry(entry.get(), name.c_str(), value.data(), value.size());
    }
    if (S_ISLNK(a.mode)) {
      ASSIGN_OR_RETURN(std::string target, fs_.ReadLink(ino));
      api.archive_entry_set_symlink(entry.get(), target.c_str());
    } else if (S_ISCHR(a.mode) || S_ISBLK(a.mode)) {
      api.archive_entry_set_rdev(entry.get(), static_cast<dev_t>(a.rdev));
    }
    if (S_ISREG(a.mode)) api.archive_entry_set_size(entry.get(), static_cast<la_int64_t>(a.size));
    RETURN_IF_ERROR(Header(entry.get(), path));
    if (S_ISREG(a.mode)) RETURN_IF_ERROR(Data(ino, a.size, path));
    if (!S_ISDIR(a.mode)) return Status::Ok();
    ASSIGN_OR_RETURN(auto children, fs_.ReadDir(ino));
    for (const DirEntry& e : children) {
      if (e.name == "." || e.name == "..") continue;
      RETURN_IF_ERROR(Write(e.ino, path + "/" + e.name));
    }
    return Status::Ok();
  }

 private:
  Status Header(archive_entry* entry, const std::string& path) {
    if (api.archive_write_header(out_, entry) < ARCHIVE_WARN) {
      return IoError("tar: " + path + ": " + api.archive_error_string(out_));
    }
    stats_->entries++;
    return Status::Ok();
  }

  Status Data(InodeId ino, uint64_t size, const std::string& path) {
    std::vector<uint8_t> buf(1 << 20);
    for (uint64_t off = 0; off < size;) {
      ASSIGN_OR_RETURN(size_t n, fs_.Read(ino, off, buf));
      if (n == 0) return Corruption(path + " is shorter than its size");
      if (api.archive_write_data(out_, buf.data(), n) < 0) {
        return IoError("tar: " + path + ": " + api.archive_error_string(out_));
      }
      off += n;
      stats_->bytes += n;
    }
    return Status::Ok();
  }

  const ArchiveApi& api;
  Filesystem& fs_;
  archive* out_;
  TarStats* stats_;
  std::map<InodeId, std::string> links_;  // inode -> the first path it was written as
};

}  // namespace

Status WriteTar(Filesystem& fs, const std::string& path, TarStats* stats) {
  ASSIGN_OR_RETURN(const ArchiveApi* loaded, LoadArchiveApi());
  const ArchiveApi& api = *loaded;
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    return Status(Code::kExists, path + " exists; export will not overwrite a file");
  }
  const std::string partial = path + ".partial";
  Status s = [&]() -> Status {
    ArchivePtr out(api.archive_write_new(), api.archive_write_free);
    if (out == nullptr) return Internal("libarchive: out of memory");
    if (api.archive_write_set_format_pax_restricted(out.get()) != ARCHIVE_OK ||
        api.archive_write_open_filename(out.get(), partial.c_str()) != ARCHIVE_OK) {
      return IoError("cannot write " + partial + ": " + api.archive_error_string(out.get()));
    }
    TarWriter writer(api, fs, out.get(), stats);
    RETURN_IF_ERROR(writer.Write(kRootIno, "."));
    if (api.archive_write_close(out.get()) != ARCHIVE_OK) {
      return IoError("cannot finish " + partial + ": " + api.archive_error_string(out.get()));
    }
    return Status::Ok();
  }();
  if (!s.ok()) {
    std::remove(partial.c_str());
    return s;
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    return IoError("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace strata
