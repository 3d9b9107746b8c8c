// The host base: which host files a session sees, and their index.
#include "strata/host_base.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "base/time_ns.h"
#include "fs/host_entries.h"
#include "strata/import.h"

namespace strata {

namespace {

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

int64_t RealTimeNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return TimespecNs(ts);
}

// `host_root` without trailing slashes ("/" stays "/").
std::string RootOf(std::string host_root) {
  while (host_root.size() > 1 && host_root.back() == '/') host_root.pop_back();
  return host_root;
}

// Whether anything a base taken at `taken_ns` exposes may have changed
// since: an exposed directory (an entry added, removed or renamed in it, or
// its attributes) or, in a copied tree, a file has a newer ctime. Regular
// files elsewhere are not examined: one changed in place fails its reads,
// as it always has. Stops at the first change.
class ChangeFinder {
 public:
  ChangeFinder(const std::string& root, int64_t taken_ns) : root_(root), taken_ns_(taken_ns) {}

  bool Changed() {
    for (const fs::ExposedTree& tree : fs::ExposedTrees()) {
      struct stat st;
      if (lstat(fs::HostPathOf(root_, tree.path).c_str(), &st) != 0) continue;  // not on this host
      if (Visit(tree.path, st, tree.copy, 0)) return true;
    }
    return false;
  }

 private:
  bool Visit(const std::string& rel, const struct stat& st, bool copy, int depth) {
    if (!fs::HostPathExposed(rel, st)) return false;
    if (TimespecNs(st.st_ctim) > taken_ns_) return true;
    if (!S_ISDIR(st.st_mode) || depth > 256) return false;
    auto names = ListHostDir(fs::HostPathOf(root_, rel));
    if (!names.ok()) return false;
    for (const HostDirEntry& d : *names) {
      if (!copy && d.type != DT_DIR && d.type != DT_UNKNOWN) continue;
      std::string child = rel + "/" + d.name;
      struct stat cst;
      if (lstat(fs::HostPathOf(root_, child).c_str(), &cst) != 0) return true;  // gone meanwhile
      if (Visit(child, cst, copy, depth + 1)) return true;
    }
    return false;
  }

  const std::string& root_;
  const int64_t taken_ns_;
};

// images.fingerprint of a lazy host base: the instant it stands for.
constexpr const char* kTakenPrefix = "taken ";

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

Status IndexHostBase(Filesystem& fs, const std::string& host_root, int64_t taken_ns) {
  const std::string root = RootOf(host_root);
  for (const fs::ExposedTree& tree : fs::ExposedTrees()) {
    std::string rel = tree.path;
    struct stat st;
    if (lstat(fs::HostPathOf(root, rel).c_str(), &st) != 0) continue;  // not on this host
    InodeId parent = kRootIno;
    size_t slash = rel.rfind('/');
    if (slash != std::string::npos) {
      ASSIGN_OR_RETURN(Attr p, MakeDirs(fs, rel.substr(0, slash)));
      parent = p.ino;
    }
    std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
    auto added = fs.AddHostEntry(parent, name, root, rel, tree.copy, taken_ns);
    if (!added.ok() && added.status().code() != Code::kNotFound) return added.status();
  }
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

bool HostChangedSince(const std::string& host_root, int64_t taken_ns) {
  const std::string root = RootOf(host_root);
  return ChangeFinder(root, taken_ns).Changed();
}

Result<ImageInfo> EnsureHostImage(Store& store, const std::string& host_root, bool* indexed) {
  if (indexed != nullptr) *indexed = false;
  auto existing = store.GetImage(kHostImage);
  if (!existing.ok() && existing.status().code() != Code::kNotFound) return existing.status();
  if (existing.ok() && existing->kind != "host") {
    return Exists("image 'host' was imported by a user; remove it ('strata image rm host') to "
                  "use the host base");
  }
  if (existing.ok() && existing->source == host_root &&
      existing->fingerprint.rfind(kTakenPrefix, 0) == 0) {
    int64_t taken = std::strtoll(existing->fingerprint.c_str() + std::strlen(kTakenPrefix),
                                 nullptr, 10);
    if (!HostChangedSince(host_root, taken)) return *existing;
  }
  // Taken before anything is examined: a change made while the base is
  // being made counts as a change after it.
  const int64_t taken_ns = RealTimeNs();
  ImageInfo spec;
  spec.name = kHostImage;
  spec.kind = "host";
  spec.source = host_root;
  spec.fingerprint = kTakenPrefix + std::to_string(taken_ns);
  ASSIGN_OR_RETURN(ImageInfo image,
                   store.CreateImage(
                       spec, [&](Filesystem& fs) { return IndexHostBase(fs, host_root, taken_ns); },
                       /*replace=*/true));
  if (indexed != nullptr) *indexed = true;
  return image;
}

}  // namespace strata
