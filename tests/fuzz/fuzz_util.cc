#include "fuzz_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

namespace strata::fuzz {

void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void MustOk(const Status& s, std::string_view context) {
  if (!s.ok()) Die(std::string(context) + ": " + s.ToString());
}

namespace {

std::string ScratchRoot() {
  if (const char* env = std::getenv("STRATA_FUZZ_TMPDIR"); env != nullptr && *env != '\0') {
    return env;
  }
  struct stat st;
  if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) {
    return "/dev/shm";
  }
  return std::filesystem::temp_directory_path().string();
}

}  // namespace

ScratchDir::ScratchDir() {
  std::string tmpl = ScratchRoot() + "/strata-fuzz-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp " + tmpl + " failed");
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void WriteFileOrDie(const std::string& path, const uint8_t* data, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("cannot create " + path);
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) {
      close(fd);
      Die("cannot write " + path);
    }
    done += static_cast<size_t>(n);
  }
  close(fd);
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::unique_ptr<Store> OpenStoreOrDie(const std::string& path, uint32_t block_size) {
  StoreOptions options;
  options.path = path;
  options.block_size = block_size;
  options.compression_level = 1;
  return MustOk(Store::Open(std::move(options)), "opening store " + path);
}

void RequireSound(Store& store, std::string_view context) {
  auto problems = MustOk(store.CheckIntegrity(), std::string(context) + ": CheckIntegrity");
  if (problems.empty()) return;
  std::ostringstream out;
  out << context << ": CheckIntegrity found " << problems.size() << " problems:";
  for (size_t i = 0; i < problems.size() && i < 5; ++i) {
    out << "\n  " << problems[i].kind << ": " << problems[i].detail;
  }
  Die(out.str());
}

namespace {

std::string Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

Status ReadNode(Filesystem& fs, InodeId ino, NodeState* node) {
  ASSIGN_OR_RETURN(Attr attr, fs.GetAttr(ino));
  node->ino = ino;
  node->mode = attr.mode;
  node->uid = attr.uid;
  node->gid = attr.gid;
  node->nlink = attr.nlink;
  node->size = attr.size;
  if (S_ISREG(attr.mode)) {
    const uint64_t want = std::min<uint64_t>(attr.size, kMaxCompared);
    node->data.assign(want, '\0');
    uint64_t done = 0;
    while (done < want) {
      ASSIGN_OR_RETURN(size_t n, fs.Read(ino, done,
                                         {reinterpret_cast<uint8_t*>(node->data.data()) + done,
                                          static_cast<size_t>(want - done)}));
      if (n == 0)
        return Internal("short read at " + std::to_string(done) + " of " +
                        std::to_string(attr.size) + " bytes");
      done += n;
    }
  } else if (S_ISLNK(attr.mode)) {
    ASSIGN_OR_RETURN(node->data, fs.ReadLink(ino));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListXattr(ino));
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(node->xattrs[name], fs.GetXattr(ino, name));
  }
  return Status::Ok();
}

}  // namespace

Result<std::map<std::string, NodeState>> ReadTree(Filesystem& fs) {
  std::map<std::string, NodeState> out;
  // (path, inode, parent inode); a directory reached twice is a cycle.
  std::vector<std::tuple<std::string, InodeId, InodeId>> queue{{"/", kRootIno, kRootIno}};
  std::set<InodeId> seen_dirs;
  while (!queue.empty()) {
    auto [dir, ino, parent] = queue.back();
    queue.pop_back();
    if (!seen_dirs.insert(ino).second) return Internal("directory " + dir + " reached twice");
    RETURN_IF_ERROR(ReadNode(fs, ino, &out[dir]).WithContext(dir));
    ASSIGN_OR_RETURN(std::vector<DirEntry> entries, fs.ReadDir(ino));
    if (entries.size() < 2 || entries[0].name != "." || entries[0].ino != ino ||
        entries[1].name != ".." || entries[1].ino != parent) {
      return Internal("bad '.' or '..' in " + dir);
    }
    for (size_t i = 2; i < entries.size(); ++i) {
      const DirEntry& e = entries[i];
      std::string path = Join(dir, e.name);
      if (e.name.empty() || e.name == "." || e.name == ".." ||
          e.name.find('/') != std::string::npos) {
        return Internal("bad name in " + dir + ": '" + e.name + "'");
      }
      if (out.count(path)) return Internal("name listed twice: " + path);
      if (S_ISDIR(e.mode)) {
        queue.emplace_back(path, e.ino, ino);
        continue;
      }
      RETURN_IF_ERROR(ReadNode(fs, e.ino, &out[path]).WithContext(path));
      if ((out[path].mode & S_IFMT) != (e.mode & S_IFMT)) {
        return Internal(path + ": ReadDir and GetAttr disagree on the type");
      }
    }
  }
  return out;
}

namespace {

std::string Describe(const NodeState& n) {
  std::ostringstream out;
  out << "mode " << std::oct << n.mode << std::dec << " uid " << n.uid << " gid " << n.gid
      << " nlink " << n.nlink << " size " << n.size << " ino " << n.ino << " xattrs "
      << n.xattrs.size();
  return out.str();
}

// Names grouped by inode: which names are hard links of each other.
std::set<std::set<std::string>> LinkGroups(const std::map<std::string, NodeState>& tree) {
  std::map<InodeId, std::set<std::string>> by_ino;
  for (const auto& [path, node] : tree) {
    if (!S_ISDIR(node.mode)) by_ino[node.ino].insert(path);
  }
  std::set<std::set<std::string>> out;
  for (auto& [ino, names] : by_ino) out.insert(std::move(names));
  return out;
}

}  // namespace

std::string CompareTrees(const std::map<std::string, NodeState>& want,
                         const std::map<std::string, NodeState>& got, CompareOptions options) {
  for (const auto& [path, node] : want) {
    if (!got.count(path)) return "missing: " + path;
  }
  for (const auto& [path, g] : got) {
    auto it = want.find(path);
    if (it == want.end()) return "unexpected: " + path;
    const NodeState& w = it->second;
    const std::string where = path + ": want " + Describe(w) + ", got " + Describe(g) + ": ";
    // A symlink's permission bits mean nothing.
    const uint32_t mask = S_ISLNK(w.mode) ? S_IFMT : 0xffffffff;
    if ((w.mode & mask) != (g.mode & mask)) return where + "mode differs";
    if (options.same_owners && (w.uid != g.uid || w.gid != g.gid)) return where + "owner differs";
    if (options.same_links && w.nlink != g.nlink) return where + "nlink differs";
    if (options.same_inodes && w.ino != g.ino) return where + "inode differs";
    if (!S_ISDIR(w.mode) && w.size != g.size) return where + "size differs";
    if (w.data != g.data) return where + "contents differ";
    if (w.xattrs != g.xattrs) return where + "xattrs differ";
  }
  if (options.same_links && LinkGroups(want) != LinkGroups(got)) return "hard links differ";
  return "";
}

}  // namespace strata::fuzz
