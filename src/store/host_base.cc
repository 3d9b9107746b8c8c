// The host base: which host files a session sees, and their index.
#include "strata/host_base.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

#include "strata/import.h"

namespace strata {

namespace {

// Trees of the host that a host base exposes, relative to the host root.
// Each is taken as it is on the host: a symlink (merged /usr) or a directory.
// Files under the trees with `copy` set are copied instead of referred to,
// so that the host editing them in place (as it does /etc, and dpkg and apt
// their state) does not disturb existing sessions.
struct ExposedTree {
  const char* path;
  bool copy;
};
constexpr ExposedTree kExposedTrees[] = {
    {"bin", false},  {"sbin", false},  {"lib", false},          {"lib32", false},
    {"lib64", false}, {"libx32", false}, {"usr", false},        {"opt", false},
    {"etc", true},   {"var/lib/dpkg", true}, {"var/lib/apt", true},
};

// Directories every host-base session starts with, empty, and their modes.
struct EmptyDir {
  const char* path;
  uint32_t mode;
};
constexpr EmptyDir kEmptyDirs[] = {
    {"tmp", 01777},      {"root", 0700},        {"home", 0755},      {"run", 0755},
    {"run/lock", 01777}, {"mnt", 0755},         {"media", 0755},     {"srv", 0755},
    {"proc", 0555},      {"sys", 0555},         {"dev", 0755},       {"var", 0755},
    {"var/tmp", 01777},  {"var/cache", 0755},   {"var/log", 0755},   {"var/spool", 0755},
    {"var/mail", 02775}, {"var/local", 0755},   {"var/opt", 0755},   {"var/backups", 0755},
    {"var/lib", 0755},   {"var/cache/apt", 0755}, {"var/cache/apt/archives", 0755},
    {"var/cache/apt/archives/partial", 0700},
};
constexpr std::pair<const char*, const char*> kSymlinks[] = {
    {"var/run", "/run"}, {"var/lock", "/run/lock"},
};

// Never exposed, even when world-readable.
bool IsSecret(const std::string& rel) {
  static const char* const kSecrets[] = {"etc/shadow", "etc/gshadow", "etc/shadow-",
                                         "etc/gshadow-", "etc/security/opasswd"};
  for (const char* s : kSecrets) {
    if (rel == s) return true;
  }
  return rel.rfind("etc/ssh/ssh_host_", 0) == 0 && rel.find(".pub") == std::string::npos;
}

// Only what any user of the host may read: files readable by others,
// directories others may list and enter, and symlinks.
bool WorldReadable(const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return true;
  if (S_ISDIR(st.st_mode)) return (st.st_mode & (S_IROTH | S_IXOTH)) == (S_IROTH | S_IXOTH);
  return (st.st_mode & S_IROTH) != 0;
}

struct Entry {
  std::string host;  // absolute host path
  std::string rel;   // path inside the base
  std::string name;
  struct stat st;
  bool copy = false;
};

// Visits every exposed entry of the host tree in pre-order; directories get a
// second call (leave = true) after their children. Entries are visited in
// name order, so the walk (and the fingerprint) does not depend on the
// order readdir returns.
class HostWalk {
 public:
  using Visit = std::function<Status(const Entry&, bool leave)>;
  // With `directories_only`, regular files, symlinks and the like outside
  // copied trees are not visited (nor examined: the fingerprint's walk).
  HostWalk(std::string root, Visit visit, uint64_t* skipped, bool directories_only = false)
      : root_(std::move(root)),
        visit_(std::move(visit)),
        skipped_(skipped),
        directories_only_(directories_only) {
    while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  }

  Status Run() {
    for (const ExposedTree& tree : kExposedTrees) {
      Entry e;
      e.rel = tree.path;
      e.host = Host(e.rel);
      e.name = e.rel.substr(e.rel.rfind('/') + 1);
      e.copy = tree.copy;
      if (lstat(e.host.c_str(), &e.st) != 0) continue;  // not on this host
      RETURN_IF_ERROR(Any(e, 0));
    }
    return Status::Ok();
  }

 private:
  std::string Host(const std::string& rel) const {
    return root_ == "/" ? "/" + rel : root_ + "/" + rel;
  }

  Status Any(const Entry& e, int depth) {
    if (!WorldReadable(e.st) || IsSecret(e.rel) ||
        !(S_ISDIR(e.st.st_mode) || S_ISREG(e.st.st_mode) || S_ISLNK(e.st.st_mode) ||
          S_ISFIFO(e.st.st_mode))) {
      ++*skipped_;
      return Status::Ok();
    }
    RETURN_IF_ERROR(visit_(e, false));
    if (!S_ISDIR(e.st.st_mode)) return Status::Ok();
    if (depth > 256) return InvalidArgument(e.host + ": directories nested too deeply");
    auto names = ListHostDir(e.host);
    if (!names.ok()) {
      ++*skipped_;
    } else {
      for (const HostDirEntry& d : *names) {
        if (directories_only_ && !e.copy && d.type != DT_DIR && d.type != DT_UNKNOWN) continue;
        Entry child;
        child.rel = e.rel + "/" + d.name;
        child.host = e.host + "/" + d.name;
        child.name = d.name;
        child.copy = e.copy;
        if (lstat(child.host.c_str(), &child.st) != 0) continue;  // gone meanwhile
        RETURN_IF_ERROR(Any(child, depth + 1));
      }
    }
    return visit_(e, true);
  }

  std::string root_;
  Visit visit_;
  uint64_t* skipped_;
  bool directories_only_;
};

int64_t Ns(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Creates the directories of `rel` that are missing, with `mode` for the last.
Result<InodeId> EnsureDir(Filesystem& fs, const std::string& rel, uint32_t mode) {
  size_t slash = rel.rfind('/');
  InodeId parent = kRootIno;
  if (slash != std::string::npos) {
    ASSIGN_OR_RETURN(Attr p, MakeDirs(fs, rel.substr(0, slash)));
    parent = p.ino;
  }
  std::string name = rel.substr(slash == std::string::npos ? 0 : slash + 1);
  auto existing = fs.Lookup(parent, name);
  if (existing.ok()) return existing->ino;
  ASSIGN_OR_RETURN(Attr made, fs.MkDir(parent, name, mode, Cred{}));
  AttrChanges exact;  // MkDir's mode may be narrowed; set the bits exactly
  exact.mode = mode;
  RETURN_IF_ERROR(fs.SetAttr(made.ino, exact).status());
  return made.ino;
}


}  // namespace

Status IndexHostBase(Filesystem& fs, const std::string& host_root, HostBaseStats* stats) {
  // The parent of each tree: its directory in the base, made on demand.
  std::vector<InodeId> dirs;
  auto visit = [&](const Entry& e, bool leave) -> Status {
    if (leave) {
      RETURN_IF_ERROR(CopyHostAttrs(fs, dirs.back(), e.st));
      dirs.pop_back();
      stats->directories++;
      return Status::Ok();
    }
    // Inside a tree the parent is the directory being visited; the top of a
    // tree may need its parents made (var/lib for var/lib/dpkg).
    InodeId parent = kRootIno;
    if (!dirs.empty()) {
      parent = dirs.back();
    } else if (size_t slash = e.rel.rfind('/'); slash != std::string::npos) {
      ASSIGN_OR_RETURN(Attr p, MakeDirs(fs, e.rel.substr(0, slash)));
      parent = p.ino;
    }
    const Cred owner{e.st.st_uid, e.st.st_gid};
    if (S_ISDIR(e.st.st_mode)) {
      ASSIGN_OR_RETURN(Attr d, fs.MkDir(parent, e.name, 0700, owner));
      dirs.push_back(d.ino);
      return Status::Ok();
    }
    if (S_ISLNK(e.st.st_mode)) {
      std::vector<char> target(static_cast<size_t>(e.st.st_size) + 4097);
      ssize_t n = readlink(e.host.c_str(), target.data(), target.size());
      if (n <= 0) {
        stats->skipped++;
        return Status::Ok();
      }
      stats->symlinks++;
      return fs.Symlink(parent, e.name, std::string_view(target.data(), static_cast<size_t>(n)),
                        owner)
          .status();
    }
    if (S_ISFIFO(e.st.st_mode)) {
      return fs.MkNod(parent, e.name, e.st.st_mode, 0, owner).status();
    }
    if (e.copy) {
      ImportStats copied;
      RETURN_IF_ERROR(ImportPath(fs, e.host, parent, e.name, &copied));
      stats->copied += copied.files;
      stats->skipped += copied.skipped;
      stats->bytes += copied.bytes;
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(Attr f, fs.MkNod(parent, e.name, S_IFREG | 0600, 0, owner));
    RETURN_IF_ERROR(fs.AttachHostFile(f.ino, e.host, static_cast<uint64_t>(e.st.st_size),
                                      Ns(e.st.st_mtim)));
    stats->files++;
    stats->bytes += static_cast<uint64_t>(e.st.st_size);
    return CopyHostAttrs(fs, f.ino, e.st);
  };
  HostWalk walk(host_root, visit, &stats->skipped);
  RETURN_IF_ERROR(walk.Run());
  for (const EmptyDir& d : kEmptyDirs) RETURN_IF_ERROR(EnsureDir(fs, d.path, d.mode).status());
  for (const auto& [link, target] : kSymlinks) {
    std::string rel = link;
    size_t slash = rel.rfind('/');
    ASSIGN_OR_RETURN(Attr parent, MakeDirs(fs, rel.substr(0, slash)));
    if (!fs.Lookup(parent.ino, rel.substr(slash + 1)).ok()) {
      RETURN_IF_ERROR(fs.Symlink(parent.ino, rel.substr(slash + 1), target, Cred{}).status());
    }
  }
  return fs.FlushAll();
}

Result<std::string> HostBaseFingerprint(const std::string& host_root) {
  std::string digest_input;
  uint64_t skipped = 0;
  auto visit = [&](const Entry& e, bool leave) -> Status {
    if (leave || !(S_ISDIR(e.st.st_mode) || e.copy)) return Status::Ok();
    digest_input += e.rel;
    for (int64_t v : {static_cast<int64_t>(e.st.st_ino), static_cast<int64_t>(e.st.st_mode),
                      static_cast<int64_t>(e.st.st_size), Ns(e.st.st_mtim), Ns(e.st.st_ctim)}) {
      digest_input += ' ';
      digest_input += std::to_string(v);
    }
    digest_input += '\n';
    return Status::Ok();
  };
  HostWalk walk(host_root, visit, &skipped, /*directories_only=*/true);
  RETURN_IF_ERROR(walk.Run());
  ChunkHash h = Xxh3Hash({reinterpret_cast<const uint8_t*>(digest_input.data()),
                          digest_input.size()});
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : h) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Result<ImageInfo> EnsureHostImage(Store& store, const std::string& host_root, bool* indexed) {
  if (indexed != nullptr) *indexed = false;
  ASSIGN_OR_RETURN(std::string fingerprint, HostBaseFingerprint(host_root));
  auto existing = store.GetImage(kHostImage);
  if (existing.ok() && existing->kind == "host" && existing->fingerprint == fingerprint &&
      existing->source == host_root) {
    return *existing;
  }
  if (!existing.ok() && existing.status().code() != Code::kNotFound) return existing.status();
  if (existing.ok() && existing->kind != "host") {
    return Exists("image 'host' was imported by a user; remove it ('strata image rm host') to "
                  "use the host base");
  }
  ImageInfo spec;
  spec.name = kHostImage;
  spec.kind = "host";
  spec.source = host_root;
  spec.fingerprint = fingerprint;
  HostBaseStats stats;
  ASSIGN_OR_RETURN(ImageInfo image,
                   store.CreateImage(
                       spec, [&](Filesystem& fs) { return IndexHostBase(fs, host_root, &stats); },
                       /*replace=*/true));
  if (indexed != nullptr) *indexed = true;
  return image;
}

}  // namespace strata
