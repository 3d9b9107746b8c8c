// Model-based randomized test of the filesystem core.
//
// A random workload runs against the core (through Filesystem, by inode) and
// against a small in-memory model of a POSIX tree at the same time. Every
// operation must succeed or fail in both alike; the live tree is compared in
// full every few hundred steps, and at the end every frozen version taken
// during the run (snapshots, fork points, heads abandoned by Restore) is read
// back and compared with the model's copy of that moment.
//
// Seeds are fixed by default. For long runs:
//   STRATA_MODEL_SEED=random (or a number)  STRATA_MODEL_OPS=100000
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::TempDir;

// Levels a read visits before the store compacts them (catalog/layers.h).
constexpr int kMaxReadLevels = 4;
// The model stops adding names beyond this many paths.
constexpr size_t kMaxPaths = 150;

// ---------------------------------------------------------------------------
// The model.

enum class Kind { kDir, kFile, kSymlink };

struct Node {
  Kind kind = Kind::kFile;
  std::string data;  // file bytes, or a symlink's target
  std::map<std::string, std::string> xattrs;
  uint32_t links = 0;  // names pointing here
};

// A POSIX tree in memory. Paths are absolute, "/" is the root. Node ids are
// the core's inode numbers, so hard links are paths that share an id.
class Model {
 public:
  Model() {
    paths_["/"] = kRootIno;
    nodes_[kRootIno] = Node{Kind::kDir, "", {}, 1};
  }

  static std::string Parent(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == 0 ? "/" : path.substr(0, slash);
  }
  static std::string Name(const std::string& path) { return path.substr(path.rfind('/') + 1); }
  static std::string Join(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
  }
  // True when `path` lies strictly below directory `dir`.
  static bool Inside(const std::string& path, const std::string& dir) {
    if (dir == "/") return path != "/";
    return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
           path[dir.size()] == '/';
  }

  const std::map<std::string, InodeId>& paths() const { return paths_; }
  bool Has(const std::string& path) const { return paths_.count(path) != 0; }
  InodeId Id(const std::string& path) const { return paths_.at(path); }
  const Node& At(const std::string& path) const { return nodes_.at(Id(path)); }
  Node& MutableAt(const std::string& path) { return nodes_.at(Id(path)); }
  bool IsDir(const std::string& path) const { return Has(path) && At(path).kind == Kind::kDir; }

  std::vector<std::string> Children(const std::string& dir) const {
    std::vector<std::string> out;
    for (const auto& [path, id] : paths_) {
      if (Inside(path, dir) && Parent(path) == dir) out.push_back(path);
    }
    return out;
  }
  bool IsEmptyDir(const std::string& path) const { return Children(path).empty(); }
  uint32_t SubdirCount(const std::string& dir) const {
    uint32_t n = 0;
    for (const auto& child : Children(dir)) n += IsDir(child) ? 1 : 0;
    return n;
  }

  // Paths of the given kinds, the root excluded unless asked for.
  std::vector<std::string> PathsOf(std::set<Kind> kinds, bool with_root = false) const {
    std::vector<std::string> out;
    for (const auto& [path, id] : paths_) {
      if (path == "/" && !with_root) continue;
      if (kinds.count(nodes_.at(id).kind)) out.push_back(path);
    }
    return out;
  }

  // --- Mutations. The caller has checked that each is valid.
  void Add(const std::string& path, InodeId id, Kind kind, std::string data) {
    paths_[path] = id;
    nodes_[id] = Node{kind, std::move(data), {}, 1};
  }
  void AddLink(const std::string& path, InodeId id) {
    paths_[path] = id;
    nodes_.at(id).links++;
  }
  // Removes one name: a link of a non-directory, or an empty directory. A
  // file open when its last name goes lives on as an orphan.
  void Remove(const std::string& path) {
    InodeId id = Id(path);
    paths_.erase(path);
    if (--nodes_.at(id).links == 0 && !open_.count(id)) nodes_.erase(id);
  }

  // --- Open handles (of the filesystem this model is checked against).
  const Node& ById(InodeId id) const { return nodes_.at(id); }
  Node& MutableById(InodeId id) { return nodes_.at(id); }
  const std::map<InodeId, int>& open() const { return open_; }
  void Open(InodeId id) { open_[id]++; }
  // Returns true when the last handle of an orphan went, and the file with it.
  bool Release(InodeId id) {
    if (--open_[id] > 0) return false;
    open_.erase(id);
    if (nodes_.at(id).links > 0) return false;
    nodes_.erase(id);
    return true;
  }
  // Open files with no name left.
  std::vector<InodeId> Orphans() const {
    std::vector<InodeId> out;
    for (const auto& [id, count] : open_) {
      if (nodes_.at(id).links == 0) out.push_back(id);
    }
    return out;
  }
  // The handles are gone (the filesystem was closed or is a new one).
  void DropHandles() {
    for (InodeId id : Orphans()) nodes_.erase(id);
    open_.clear();
  }
  // rename(2) without flags, after the checks of CheckRename.
  void Rename(const std::string& from, const std::string& to) {
    if (Has(to)) {
      if (Id(to) == Id(from)) return;
      Remove(to);
    }
    auto moved = TakeSubtree(from);
    for (auto& [suffix, id] : moved) paths_[to + suffix] = id;
  }
  // rename(2) with RENAME_EXCHANGE.
  void Exchange(const std::string& a, const std::string& b) {
    if (Id(a) == Id(b)) return;
    auto under_a = TakeSubtree(a);
    auto under_b = TakeSubtree(b);
    for (auto& [suffix, id] : under_a) paths_[b + suffix] = id;
    for (auto& [suffix, id] : under_b) paths_[a + suffix] = id;
  }

  // --- What POSIX answers.
  Code CheckNew(const std::string& path) const { return Has(path) ? Code::kExists : Code::kOk; }

  Code CheckRename(const std::string& from, const std::string& to, unsigned flags) const {
    if (!Has(from)) return Code::kNotFound;
    const bool exchange = (flags & RENAME_EXCHANGE) != 0;
    if ((flags & RENAME_NOREPLACE) && Has(to)) return Code::kExists;
    if (exchange && !Has(to)) return Code::kNotFound;
    if (IsDir(from) && Inside(to, from)) return Code::kInvalid;
    if (exchange && IsDir(to) && Inside(from, to)) return Code::kInvalid;
    if (!Has(to) || Id(to) == Id(from) || exchange) return Code::kOk;
    if (IsDir(from) && !IsDir(to)) return Code::kNotDir;
    if (!IsDir(from) && IsDir(to)) return Code::kIsDir;
    if (IsDir(to) && !IsEmptyDir(to)) return Code::kNotEmpty;
    return Code::kOk;
  }

  Code CheckRmDir(const std::string& path) const {
    if (!Has(path)) return Code::kNotFound;
    if (!IsDir(path)) return Code::kNotDir;
    return IsEmptyDir(path) ? Code::kOk : Code::kNotEmpty;
  }

  Code CheckUnlink(const std::string& path) const {
    if (!Has(path)) return Code::kNotFound;
    return IsDir(path) ? Code::kIsDir : Code::kOk;
  }

 private:
  // Removes `root` and everything below it; returns them keyed by the part
  // of the path after `root` ("" for root itself).
  std::map<std::string, InodeId> TakeSubtree(const std::string& root) {
    std::map<std::string, InodeId> out;
    for (auto it = paths_.begin(); it != paths_.end();) {
      if (it->first == root || Inside(it->first, root)) {
        out[it->first.substr(root.size())] = it->second;
        it = paths_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  std::map<std::string, InodeId> paths_;
  std::map<InodeId, Node> nodes_;
  std::map<InodeId, int> open_;  // open handles per inode
};

// ---------------------------------------------------------------------------
// Comparing the core's tree with the model.

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Kind KindOfMode(uint32_t mode) {
  if (S_ISDIR(mode)) return Kind::kDir;
  if (S_ISLNK(mode)) return Kind::kSymlink;
  return Kind::kFile;
}

// Reads [offset, offset+length) of a file through the core.
Result<std::string> ReadRange(Filesystem& fs, InodeId ino, uint64_t offset, uint64_t length) {
  std::string out(length, '\0');
  ASSIGN_OR_RETURN(size_t n, fs.Read(ino, offset, {reinterpret_cast<uint8_t*>(out.data()),
                                                   out.size()}));
  out.resize(n);
  return out;
}

// Lists every path of the core's tree with its inode, walking from the root;
// also checks that each directory's "." and ".." are right.
Status WalkTree(Filesystem& fs, std::map<std::string, DirEntry>* out) {
  std::vector<std::pair<std::string, InodeId>> queue{{"/", kRootIno}};
  (*out)["/"] = DirEntry{"/", kRootIno, S_IFDIR, 0};
  while (!queue.empty()) {
    auto [dir, ino] = queue.back();
    queue.pop_back();
    ASSIGN_OR_RETURN(std::vector<DirEntry> entries, fs.ReadDir(ino));
    InodeId parent = dir == "/" ? kRootIno : (*out)[Model::Parent(dir)].ino;
    if (entries.size() < 2 || entries[0].name != "." || entries[0].ino != ino ||
        entries[1].name != ".." || entries[1].ino != parent) {
      return Internal("bad '.' or '..' in " + dir);
    }
    for (size_t i = 2; i < entries.size(); ++i) {
      std::string path = Model::Join(dir, entries[i].name);
      (*out)[path] = entries[i];
      if (S_ISDIR(entries[i].mode)) queue.emplace_back(path, entries[i].ino);
    }
  }
  return Status::Ok();
}

// Compares one inode of the core with the model's node; "" when equal.
std::string CompareNode(Filesystem& fs, const Model& model, const std::string& path,
                        const DirEntry& entry) {
  const Node& node = model.At(path);
  std::string where = path + " (ino " + std::to_string(entry.ino) + "): ";
  if (entry.ino != model.Id(path)) {
    return where + "inode differs from the model's " + std::to_string(model.Id(path));
  }
  if (path != "/") {
    auto found = fs.Lookup(model.Id(Model::Parent(path)), Model::Name(path));
    if (!found.ok() || found->ino != entry.ino) return where + "Lookup disagrees with ReadDir";
  }
  auto attr = fs.GetAttr(entry.ino);
  if (!attr.ok()) return where + "GetAttr: " + attr.status().ToString();
  if (KindOfMode(attr->mode) != node.kind || KindOfMode(entry.mode) != node.kind) {
    return where + "type differs";
  }
  uint32_t links = node.kind == Kind::kDir ? 2 + model.SubdirCount(path) : node.links;
  if (attr->nlink != links) {
    return where + "nlink " + std::to_string(attr->nlink) + ", model " + std::to_string(links);
  }
  if (node.kind == Kind::kFile) {
    if (attr->size != node.data.size()) {
      return where + "size " + std::to_string(attr->size) + ", model " +
             std::to_string(node.data.size());
    }
    auto content = ReadRange(fs, entry.ino, 0, node.data.size() + 1);
    if (!content.ok()) return where + "Read: " + content.status().ToString();
    if (*content != node.data) {
      size_t at = 0;
      while (at < content->size() && at < node.data.size() && (*content)[at] == node.data[at]) {
        ++at;
      }
      return where + "content differs first at byte " + std::to_string(at) + " (read " +
             std::to_string(content->size()) + " bytes)";
    }
  }
  if (node.kind == Kind::kSymlink) {
    auto target = fs.ReadLink(entry.ino);
    if (!target.ok() || *target != node.data) return where + "symlink target differs";
  }
  auto names = fs.ListXattr(entry.ino);
  if (!names.ok()) return where + "ListXattr: " + names.status().ToString();
  std::map<std::string, std::string> xattrs;
  for (const auto& name : *names) {
    auto value = fs.GetXattr(entry.ino, name);
    if (!value.ok()) return where + "GetXattr " + name + ": " + value.status().ToString();
    xattrs[name] = *value;
  }
  if (xattrs != node.xattrs) return where + "xattrs differ";
  return "";
}

// Compares the whole tree of `fs` with `model`; "" when they are equal.
std::string CompareTree(Filesystem& fs, const Model& model) {
  std::map<std::string, DirEntry> core;
  Status walked = WalkTree(fs, &core);
  if (!walked.ok()) return "walking the tree: " + walked.ToString();
  for (const auto& [path, id] : model.paths()) {
    if (!core.count(path)) return "missing in the core: " + path;
  }
  for (const auto& [path, entry] : core) {
    if (!model.Has(path)) return "unexpected in the core: " + path;
    std::string diff = CompareNode(fs, model, path, entry);
    if (!diff.empty()) return diff;
  }
  return "";
}

// Compares an open file with no name left with the model's bytes.
std::string CompareOrphan(Filesystem& fs, InodeId ino, const std::string& data) {
  std::string where = "orphan inode " + std::to_string(ino) + ": ";
  auto attr = fs.GetAttr(ino);
  if (!attr.ok()) return where + "GetAttr: " + attr.status().ToString();
  if (attr->nlink != 0) return where + "nlink " + std::to_string(attr->nlink);
  if (attr->size != data.size()) return where + "size " + std::to_string(attr->size);
  auto content = ReadRange(fs, ino, 0, data.size() + 1);
  if (!content.ok()) return where + "Read: " + content.status().ToString();
  return *content == data ? "" : where + "content differs";
}

// ---------------------------------------------------------------------------
// The randomized run.

struct RunConfig {
  uint64_t seed = 1;
  int ops = 10000;
  uint32_t block_size = 64 * 1024;
  std::string path;
  // Forks often and follows every fork, and compacts at random points too:
  // chains far deeper than kMaxReadLevels, read through layers.
  bool deep = false;
};

class ModelRun {
 public:
  explicit ModelRun(RunConfig config) : config_(std::move(config)), rng_(config_.seed) {}

  // Runs the workload and the final checks; reports failures to gtest.
  void Run() {
    if (!OpenStore() || !StartMainSession()) return Report();
    for (step_ = 1; step_ <= config_.ops; ++step_) {
      if (!Step()) return Report();
      if (step_ % 500 == 0 && !CompareLive(Current())) return Report();
    }
    step_ = config_.ops;
    op_ = "final checks";
    if (!CheckAll()) return Report();
  }

 private:
  struct Session {
    std::string name;
    BranchId branch = 0;
    Model model;
    std::unique_ptr<Filesystem> fs;
  };
  // A frozen version and what the model held at that moment.
  struct Frozen {
    View view;
    Model model;
    std::string label;
    bool listed = false;  // appears in ListSnapshots (with this name)
    std::string name;
  };
  enum class Op {
    kCreate, kMkDir, kSymlink, kWrite, kTruncate, kPunchHole, kZeroRange, kAllocate, kRead,
    kRename, kLink, kUnlink, kRmDir, kSetXattr, kRemoveXattr, kSnapshot, kFork, kSwitch,
    kRestore, kFlush, kReopen, kOpen, kRelease, kCompact,
  };

  // --- Failure reporting.
  bool Fail(const std::string& message) {
    failure_ = message;
    return false;
  }
  void Report() {
    ADD_FAILURE() << "seed " << config_.seed << " (block size " << config_.block_size
                  << "), step " << step_ << ", " << op_ << ": " << failure_
                  << "\nrerun with STRATA_MODEL_SEED=" << config_.seed;
  }
  // The core's answer must be the model's.
  bool Expect(Code want, const Status& got) {
    if (got.code() == want) return true;
    return Fail("model expects " + std::string(CodeName(want)) + ", core returned " +
                got.ToString());
  }
  template <typename T>
  bool Expect(Code want, const Result<T>& got) {
    return Expect(want, got.ok() ? Status::Ok() : got.status());
  }

  // --- Randomness.
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  T Pick(const std::vector<T>& v) {
    assert(!v.empty());
    return v[Uniform(v.size())];
  }

  std::string RandomName() {
    static const std::vector<std::string> kNames = {"a", "b", "c", "d", "e", "f", "g", "h"};
    if (Chance(0.02)) return std::string(1 + Uniform(kMaxNameLength), 'n');
    return Pick(kNames);
  }
  std::string RandomBytes(size_t n) {
    std::string out(n, '\0');
    switch (Uniform(4)) {
      case 0:  // zeros: stored as holes
        break;
      case 1:  // compressible
        for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (i / 7) % 5);
        break;
      case 2:  // one byte repeated: dedups across blocks
        std::memset(out.data(), static_cast<int>(1 + Uniform(255)), n);
        break;
      default:
        for (size_t i = 0; i < n; i += 8) {
          uint64_t r = rng_();
          std::memcpy(out.data() + i, &r, std::min<size_t>(8, n - i));
        }
    }
    return out;
  }
  uint64_t MaxFileSize() const {
    return uint64_t{config_.block_size} * (config_.block_size >= 65536 ? 5 : 20);
  }
  // An offset that is often at, near or past a block boundary or the end.
  uint64_t RandomOffset(uint64_t size) {
    const uint64_t bs = config_.block_size;
    switch (Uniform(5)) {
      case 0:
        return size;
      case 1:
        return Uniform(size + 1);
      case 2: {
        uint64_t near = Uniform(MaxFileSize() / bs + 1) * bs + Uniform(65);
        return near >= 32 ? near - 32 : 0;
      }
      case 3:
        return size + Uniform(2 * bs);
      default:
        return Uniform(MaxFileSize());
    }
  }
  uint64_t RandomLength() {
    const uint64_t bs = config_.block_size;
    switch (Uniform(4)) {
      case 0:
        return 1 + Uniform(16);
      case 1:
        return 1 + Uniform(bs + 64);
      case 2:
        return 1 + Uniform(3 * bs);
      default:
        return 1 + Uniform(4096);
    }
  }

  // --- Sessions.
  Session& Current() { return *sessions_[current_]; }
  bool OpenStore() {
    StoreOptions options;
    options.path = config_.path;
    options.block_size = config_.block_size;
    auto store = Store::Open(std::move(options));
    if (!store.ok()) return Fail("Store::Open: " + store.status().ToString());
    store_ = std::move(store).value();
    return true;
  }
  bool OpenSessionFs(Session& s) {
    auto info = store_->GetSession(s.name);
    if (!info.ok()) return Fail("GetSession " + s.name + ": " + info.status().ToString());
    s.branch = info->branch;
    auto fs = store_->OpenFilesystem(View{s.branch, kHead});
    if (!fs.ok()) return Fail("OpenFilesystem: " + fs.status().ToString());
    s.fs = std::move(fs).value();
    return true;
  }
  bool StartMainSession() {
    auto info = store_->CreateSession("main");
    if (!info.ok()) return Fail("CreateSession: " + info.status().ToString());
    sessions_.push_back(std::make_unique<Session>());
    sessions_.back()->name = "main";
    return OpenSessionFs(*sessions_.back());
  }

  // --- One step.
  Op RandomOp() {
    static const std::vector<std::pair<Op, double>> kWeights = {
        {Op::kCreate, 8},     {Op::kMkDir, 4},       {Op::kSymlink, 2},   {Op::kWrite, 25},
        {Op::kTruncate, 5},   {Op::kPunchHole, 5},   {Op::kZeroRange, 1}, {Op::kAllocate, 1},
        {Op::kRead, 6},       {Op::kRename, 8},      {Op::kLink, 4},      {Op::kUnlink, 6},
        {Op::kRmDir, 3},      {Op::kSetXattr, 5},    {Op::kRemoveXattr, 3},
        {Op::kOpen, 2},       {Op::kRelease, 2},     {Op::kFlush, 2},     {Op::kSnapshot, 0.5},
        {Op::kFork, 0.2},     {Op::kSwitch, 0.3},    {Op::kRestore, 0.3}, {Op::kReopen, 0.05},
        {Op::kCompact, 0},
    };
    std::vector<double> weights;
    for (const auto& [op, w] : kWeights) {
      const bool deep_op = op == Op::kFork || op == Op::kCompact;
      weights.push_back(config_.deep && deep_op ? 4.0 : w);
    }
    return kWeights[std::discrete_distribution<size_t>(weights.begin(), weights.end())(rng_)]
        .first;
  }

  bool Step() {
    Model& m = Current().model;
    const bool full = m.paths().size() >= kMaxPaths;
    const bool no_files = m.PathsOf({Kind::kFile}).empty();
    switch (RandomOp()) {
      case Op::kCreate:
        return full || MakeNode(Kind::kFile);
      case Op::kMkDir:
        return full || MakeNode(Kind::kDir);
      case Op::kSymlink:
        return full || MakeNode(Kind::kSymlink);
      case Op::kWrite:
        return no_files ? MakeNode(Kind::kFile) : WriteFile();
      case Op::kTruncate:
        return no_files || Truncate();
      case Op::kPunchHole:
        return no_files || Fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
      case Op::kZeroRange:
        return no_files || Fallocate(FALLOC_FL_ZERO_RANGE);
      case Op::kAllocate:
        return no_files || Fallocate(0);
      case Op::kRead:
        return no_files || ReadFile();
      case Op::kRename:
        return m.paths().size() < 2 || Rename();
      case Op::kLink:
        return full || m.paths().size() < 2 || Link();
      case Op::kUnlink:
        return m.paths().size() < 2 || Unlink();
      case Op::kRmDir:
        return m.paths().size() < 2 || RmDir();
      case Op::kSetXattr:
        return SetXattr();
      case Op::kRemoveXattr:
        return RemoveXattr();
      case Op::kSnapshot:
        return Snapshot();
      case Op::kFork:
        return Fork();
      case Op::kSwitch:
        current_ = Uniform(sessions_.size());
        op_ = "switch to session " + Current().name;
        return true;
      case Op::kRestore:
        return Restore();
      case Op::kCompact:
        op_ = "CompactLevels";
        return Expect(Code::kOk, store_->CompactLevels());
      case Op::kFlush:
        return Flush();
      case Op::kReopen:
        return Reopen();
      case Op::kOpen:
        return no_files || OpenFile();
      case Op::kRelease:
        return m.open().empty() || Release(RandomOpenIno());
    }
    return true;
  }

  // A path for a new name: a random existing directory and a random name.
  std::string RandomNewPath() {
    std::string dir = Pick(Current().model.PathsOf({Kind::kDir}, true));
    return Model::Join(dir, RandomName());
  }
  std::string RandomFile() { return Pick(Current().model.PathsOf({Kind::kFile})); }
  // A regular file to work on: mostly by one of its names, sometimes an open
  // file that has no name left.
  struct Target {
    std::string label;
    InodeId ino;
  };
  Target RandomTarget() {
    auto orphans = Current().model.Orphans();
    if (!orphans.empty() && Chance(0.3)) {
      InodeId ino = Pick(orphans);
      return {"orphan " + std::to_string(ino), ino};
    }
    std::string path = RandomFile();
    return {path, Current().model.Id(path)};
  }

  bool MakeNode(Kind kind) {
    Session& s = Current();
    std::string path = RandomNewPath();
    std::string target = Chance(0.5) ? "../t" + std::to_string(Uniform(1000)) : path;
    InodeId parent = s.model.Id(Model::Parent(path));
    std::string name = Model::Name(path);
    Result<Attr> attr = Status(Code::kInternal, "unset");
    if (kind == Kind::kFile) {
      op_ = "create " + path;
      attr = s.fs->Create(parent, name, 0644, Cred{});
    } else if (kind == Kind::kDir) {
      op_ = "mkdir " + path;
      attr = s.fs->MkDir(parent, name, 0755, Cred{});
    } else {
      op_ = "symlink " + path + " -> " + target;
      attr = s.fs->Symlink(parent, name, target, Cred{});
    }
    Code want = s.model.CheckNew(path);
    if (!Expect(want, attr)) return false;
    if (want != Code::kOk) return true;
    if (KindOfMode(attr->mode) != kind) return Fail("new inode has the wrong type");
    s.model.Add(path, attr->ino, kind, kind == Kind::kSymlink ? target : "");
    if (kind != Kind::kFile) return true;
    s.model.Open(attr->ino);  // Create opens the file
    return Chance(0.8) ? Release(attr->ino) : true;
  }

  bool OpenFile() {
    Session& s = Current();
    std::string path = RandomFile();
    op_ = "open " + path;
    if (!Expect(Code::kOk, s.fs->Open(s.model.Id(path)))) return false;
    s.model.Open(s.model.Id(path));
    return true;
  }

  InodeId RandomOpenIno() {
    std::vector<InodeId> open;
    for (const auto& [ino, count] : Current().model.open()) open.push_back(ino);
    return Pick(open);
  }

  // Releases one handle; the last one of an orphan takes the file with it.
  bool Release(InodeId ino) {
    Session& s = Current();
    op_ = "release inode " + std::to_string(ino);
    if (!Expect(Code::kOk, s.fs->Release(ino))) return false;
    if (!s.model.Release(ino)) return true;
    return Expect(Code::kNotFound, s.fs->GetAttr(ino));
  }

  bool WriteFile() {
    Session& s = Current();
    auto [path, ino] = RandomTarget();
    Node& node = s.model.MutableById(ino);
    uint64_t offset = std::min(RandomOffset(node.data.size()), MaxFileSize());
    std::string data = RandomBytes(std::min(RandomLength(), MaxFileSize() + 4096 - offset));
    op_ = "write " + path + " [" + std::to_string(offset) + ", +" + std::to_string(data.size()) +
          ")";
    auto n = s.fs->Write(ino, offset, Bytes(data));
    if (!Expect(Code::kOk, n)) return false;
    if (*n != data.size()) return Fail("short write: " + std::to_string(*n));
    if (node.data.size() < offset + data.size()) node.data.resize(offset + data.size(), '\0');
    node.data.replace(offset, data.size(), data);
    return true;
  }

  bool Truncate() {
    Session& s = Current();
    auto [path, ino] = RandomTarget();
    Node& node = s.model.MutableById(ino);
    uint64_t size = Chance(0.5) ? Uniform(node.data.size() + 1)
                                : std::min(RandomOffset(node.data.size()), MaxFileSize());
    op_ = "truncate " + path + " from " + std::to_string(node.data.size()) + " to " +
          std::to_string(size);
    AttrChanges changes;
    changes.size = size;
    auto attr = s.fs->SetAttr(ino, changes);
    if (!Expect(Code::kOk, attr)) return false;
    if (attr->size != size) return Fail("SetAttr returned size " + std::to_string(attr->size));
    node.data.resize(size, '\0');
    return true;
  }

  bool Fallocate(int mode) {
    Session& s = Current();
    auto [path, ino] = RandomTarget();
    Node& node = s.model.MutableById(ino);
    uint64_t offset = std::min(RandomOffset(node.data.size()), MaxFileSize());
    uint64_t length = RandomLength();
    op_ = "fallocate mode " + std::to_string(mode) + " " + path + " [" + std::to_string(offset) +
          ", +" + std::to_string(length) + ") size " + std::to_string(node.data.size());
    Status st = s.fs->Fallocate(ino, mode, offset, length);
    if (!Expect(Code::kOk, st)) return false;
    uint64_t size = node.data.size();
    if (mode != 0 && offset < size) {
      uint64_t end = std::min(size, offset + length);
      std::fill(node.data.begin() + offset, node.data.begin() + end, '\0');
    }
    if (!(mode & FALLOC_FL_KEEP_SIZE) && offset + length > size) {
      node.data.resize(offset + length, '\0');
    }
    return true;
  }

  bool ReadFile() {
    Session& s = Current();
    auto [path, ino] = RandomTarget();
    const std::string& data = s.model.ById(ino).data;
    uint64_t offset = RandomOffset(data.size());
    uint64_t length = RandomLength();
    op_ = "read " + path + " [" + std::to_string(offset) + ", +" + std::to_string(length) + ")";
    auto got = ReadRange(*s.fs, ino, offset, length);
    if (!Expect(Code::kOk, got)) return false;
    std::string want = offset < data.size() ? data.substr(offset, length) : "";
    if (*got != want) {
      return Fail("read " + std::to_string(got->size()) + " bytes differing from the model's " +
                  std::to_string(want.size()));
    }
    return true;
  }

  bool Rename() {
    Session& s = Current();
    Model& m = s.model;
    std::string from = Pick(m.PathsOf({Kind::kDir, Kind::kFile, Kind::kSymlink}));
    std::string to = Chance(0.3) ? Pick(m.PathsOf({Kind::kDir, Kind::kFile, Kind::kSymlink}))
                                 : RandomNewPath();
    unsigned flags = 0;
    if (Chance(0.1)) flags = RENAME_NOREPLACE;
    if (Chance(0.1)) flags = RENAME_EXCHANGE;
    // A target above the source makes Linux answer ENOTEMPTY even for a
    // file; POSIX leaves that case open, so the model does not go there.
    if (Model::Inside(from, to) && !(flags & RENAME_EXCHANGE)) return true;
    op_ = "rename " + from + " -> " + to + " flags " + std::to_string(flags);
    Status st = s.fs->Rename(m.Id(Model::Parent(from)), Model::Name(from),
                             m.Id(Model::Parent(to)), Model::Name(to), flags);
    Code want = m.CheckRename(from, to, flags);
    if (!Expect(want, st)) return false;
    if (want != Code::kOk) return true;
    if (flags & RENAME_EXCHANGE) {
      m.Exchange(from, to);
    } else {
      m.Rename(from, to);
    }
    return true;
  }

  bool Link() {
    Session& s = Current();
    Model& m = s.model;
    // Mostly files and symlinks; now and then a directory, which must fail.
    std::string from = Chance(0.05) ? Pick(m.PathsOf({Kind::kDir}, true))
                                    : Pick(m.PathsOf({Kind::kDir, Kind::kFile, Kind::kSymlink}));
    std::string to = RandomNewPath();
    // Linux checks the new name before the type; POSIX does not order them.
    if (m.IsDir(from) && m.Has(to)) return true;
    op_ = "link " + from + " -> " + to;
    auto attr = s.fs->Link(m.Id(from), m.Id(Model::Parent(to)), Model::Name(to));
    Code want = m.IsDir(from) ? Code::kNotPermitted : m.CheckNew(to);
    if (!Expect(want, attr)) return false;
    if (want != Code::kOk) return true;
    m.AddLink(to, m.Id(from));
    if (attr->nlink != m.At(to).links) {
      return Fail("Link returned nlink " + std::to_string(attr->nlink));
    }
    return true;
  }

  bool Unlink() {
    Session& s = Current();
    Model& m = s.model;
    // Mostly a file or symlink; now and then a directory or a missing name.
    auto names = m.PathsOf({Kind::kFile, Kind::kSymlink});
    if (names.empty() || Chance(0.05)) {
      names = m.PathsOf({Kind::kDir, Kind::kFile, Kind::kSymlink});
    }
    std::string path = Chance(0.1) ? RandomNewPath() : Pick(names);
    op_ = "unlink " + path;
    Status st = s.fs->Unlink(m.Id(Model::Parent(path)), Model::Name(path));
    Code want = m.CheckUnlink(path);
    if (!Expect(want, st)) return false;
    if (want == Code::kOk) m.Remove(path);
    return true;
  }

  bool RmDir() {
    Session& s = Current();
    Model& m = s.model;
    std::string path = Chance(0.1) ? Pick(m.PathsOf({Kind::kDir, Kind::kFile, Kind::kSymlink}))
                                   : Pick(m.PathsOf({Kind::kDir}, true));
    if (path == "/") return true;
    op_ = "rmdir " + path;
    Status st = s.fs->RmDir(m.Id(Model::Parent(path)), Model::Name(path));
    Code want = m.CheckRmDir(path);
    if (!Expect(want, st)) return false;
    if (want == Code::kOk) m.Remove(path);
    return true;
  }

  std::string RandomXattrName() {
    static const std::vector<std::string> kNames = {"user.a", "user.b", "user.c", "trusted.x"};
    return Pick(kNames);
  }

  bool SetXattr() {
    Session& s = Current();
    std::string path = Pick(s.model.PathsOf({Kind::kDir, Kind::kFile}, true));
    Node& node = s.model.MutableAt(path);
    std::string name = RandomXattrName();
    std::string value = RandomBytes(Chance(0.1) ? Uniform(3000) : Uniform(64));
    int flags = Chance(0.2) ? XATTR_CREATE : Chance(0.25) ? XATTR_REPLACE : 0;
    op_ = "setxattr " + path + " " + name + " flags " + std::to_string(flags);
    Status st = s.fs->SetXattr(s.model.Id(path), name, value, flags);
    bool exists = node.xattrs.count(name) != 0;
    Code want = Code::kOk;
    if ((flags & XATTR_CREATE) && exists) want = Code::kExists;
    if ((flags & XATTR_REPLACE) && !exists) want = Code::kNoData;
    if (!Expect(want, st)) return false;
    if (want == Code::kOk) node.xattrs[name] = value;
    return true;
  }

  bool RemoveXattr() {
    Session& s = Current();
    std::string path = Pick(s.model.PathsOf({Kind::kDir, Kind::kFile}, true));
    Node& node = s.model.MutableAt(path);
    std::string name = RandomXattrName();
    op_ = "removexattr " + path + " " + name;
    Status st = s.fs->RemoveXattr(s.model.Id(path), name);
    Code want = node.xattrs.count(name) ? Code::kOk : Code::kNoData;
    if (!Expect(want, st)) return false;
    node.xattrs.erase(name);
    return true;
  }

  bool Snapshot() {
    Session& s = Current();
    std::string name = Chance(0.5) ? "" : "snap-" + std::to_string(frozen_.size());
    op_ = "snapshot of " + s.name + " '" + name + "'";
    auto version = store_->Snapshot(s.branch, name);
    if (!Expect(Code::kOk, version)) return false;
    frozen_.push_back(Frozen{View{s.branch, *version}, s.model, op_, true, name});
    return true;
  }

  bool Fork() {
    Session& s = Current();
    std::string name = "fork-" + std::to_string(sessions_.size());
    op_ = "fork " + s.name + " as " + name;
    auto child = store_->Fork(View{s.branch, kHead}, name);
    if (!Expect(Code::kOk, child)) return false;
    auto info = store_->GetBranch(*child);
    if (!info.ok()) return Fail("GetBranch: " + info.status().ToString());
    if (info->parent != s.branch) return Fail("fork has the wrong parent");
    frozen_.push_back(Frozen{View{s.branch, info->parent_version}, s.model, op_, false, ""});
    auto fork = std::make_unique<Session>();
    fork->name = name;
    fork->model = s.model;
    fork->model.DropHandles();
    if (!OpenSessionFs(*fork)) return false;
    if (fork->branch != *child) return Fail("the fork's session names another branch");
    sessions_.push_back(std::move(fork));
    if (config_.deep || Chance(0.5)) current_ = sessions_.size() - 1;
    return true;
  }

  bool Restore() {
    if (frozen_.empty()) return true;
    Session& s = Chance(0.8) ? Current() : *sessions_[Uniform(sessions_.size())];
    const Frozen& target = Pick(frozen_);
    op_ = "restore " + s.name + " to branch " + std::to_string(target.view.branch) +
          " version " + std::to_string(target.view.version) + " (" + target.label + ")";
    auto undo = store_->Restore(s.name, target.view);
    if (!Expect(Code::kOk, undo)) return false;
    if (undo->branch != s.branch) return Fail("Restore froze another branch");
    // Undo names are numbered across the whole store.
    frozen_.push_back(Frozen{*undo, s.model, "head abandoned by " + op_, true,
                             "before-restore-" + std::to_string(++restores_)});
    s.model = target.model;
    s.model.DropHandles();
    s.fs.reset();
    BranchId old_branch = s.branch;
    if (!OpenSessionFs(s)) return false;
    if (s.branch == old_branch) return Fail("the session still names its old branch");
    return true;
  }

  bool Flush() {
    Session& s = Current();
    switch (Uniform(4)) {
      case 0:
        op_ = "FlushAll";
        return Expect(Code::kOk, s.fs->FlushAll());
      case 1:
        op_ = "Sync";
        return Expect(Code::kOk, store_->Sync());
      default: {
        auto files = s.model.PathsOf({Kind::kFile});
        if (files.empty()) return true;
        std::string path = Pick(files);
        bool durable = Chance(0.5);
        op_ = (durable ? "fsync " : "flush ") + path;
        InodeId ino = s.model.Id(path);
        return Expect(Code::kOk, durable ? s.fs->Fsync(ino) : s.fs->Flush(ino));
      }
    }
  }

  // Closes everything and opens the store file again.
  bool Reopen() {
    op_ = "reopen the store";
    for (auto& s : sessions_) {
      s->fs.reset();
      s->model.DropHandles();
    }
    store_.reset();
    if (!OpenStore()) return false;
    for (auto& s : sessions_) {
      BranchId before = s->branch;
      if (!OpenSessionFs(*s)) return false;
      if (s->branch != before) return Fail("session " + s->name + " changed branch");
    }
    return true;
  }

  // --- Checks.
  bool CompareLive(Session& s) {
    op_ = "comparing the live tree of " + s.name;
    std::string diff = CompareTree(*s.fs, s.model);
    for (InodeId ino : s.model.Orphans()) {
      if (diff.empty()) diff = CompareOrphan(*s.fs, ino, s.model.ById(ino).data);
    }
    return diff.empty() || Fail(diff);
  }

  bool CompareFrozen(const Frozen& f) {
    op_ = "comparing branch " + std::to_string(f.view.branch) + " version " +
          std::to_string(f.view.version) + " (" + f.label + ")";
    auto fs = store_->OpenFilesystem(f.view);
    if (!fs.ok()) return Fail("OpenFilesystem: " + fs.status().ToString());
    if (!(*fs)->read_only()) return Fail("a frozen version opened writable");
    std::string diff = CompareTree(**fs, f.model);
    return diff.empty() || Fail(diff);
  }

  // ListSnapshots of every branch names exactly the snapshots taken on it.
  bool CheckSnapshotLists() {
    op_ = "checking ListSnapshots";
    std::map<BranchId, std::vector<std::pair<Version, std::string>>> want;
    for (const auto& s : sessions_) want[s->branch];
    for (const auto& f : frozen_) {
      auto& list = want[f.view.branch];
      if (f.listed) list.emplace_back(f.view.version, f.name);
    }
    for (const auto& [branch, expected] : want) {
      auto got = store_->ListSnapshots(branch);
      if (!got.ok()) return Fail("ListSnapshots: " + got.status().ToString());
      std::vector<std::pair<Version, std::string>> listed;
      for (const auto& info : *got) listed.emplace_back(info.version, info.name);
      if (listed != expected) {
        return Fail("branch " + std::to_string(branch) + " lists " +
                    std::to_string(listed.size()) + " snapshots, expected " +
                    std::to_string(expected.size()));
      }
    }
    return true;
  }

  bool CheckAll() {
    for (auto& s : sessions_) {
      if (!CompareLive(*s)) return false;
    }
    if (!Reopen()) return false;
    for (auto& s : sessions_) {
      if (!CompareLive(*s)) return false;
    }
    for (const auto& f : frozen_) {
      if (!CompareFrozen(f)) return false;
    }
    if (!CheckSnapshotLists()) return false;
    op_ = "CheckIntegrity";
    auto problems = store_->CheckIntegrity();
    if (!problems.ok()) return Fail(problems.status().ToString());
    if (!problems->empty()) {
      return Fail(std::to_string(problems->size()) + " problems, first " +
                  (*problems)[0].kind + ": " + (*problems)[0].detail);
    }
    int deepest = 0;
    bool compacted = false;
    for (const auto& session : sessions_) {
      auto info = store_->GetBranch(session->branch);
      if (!info.ok()) return Fail("GetBranch: " + info.status().ToString());
      deepest = std::max(deepest, info->depth);
      compacted |= info->read_levels < info->depth + 1;
      // Reopen closed the store, which finishes the compactions forks queued.
      if (info->read_levels > kMaxReadLevels) {
        return Fail(session->name + " reads through " + std::to_string(info->read_levels) +
                    " levels after the store was closed and opened again");
      }
    }
    if (config_.deep && (deepest <= 2 * kMaxReadLevels || !compacted)) {
      return Fail("the run made no chain deeper than " + std::to_string(2 * kMaxReadLevels) +
                  " read through a layer (deepest " + std::to_string(deepest) + ")");
    }
    std::cout << "seed " << config_.seed << ": " << config_.ops << " ops, " << frozen_.size()
              << " frozen versions and " << sessions_.size() << " sessions checked, deepest "
              << deepest << (compacted ? ", read through layers" : "") << "\n";
    return true;
  }

  const RunConfig config_;
  std::mt19937_64 rng_;
  std::unique_ptr<Store> store_;
  std::vector<std::unique_ptr<Session>> sessions_;
  size_t current_ = 0;
  std::vector<Frozen> frozen_;
  int restores_ = 0;  // Restore calls that succeeded (they name undo snapshots)
  int step_ = 0;
  std::string op_ = "opening the store";
  std::string failure_;
};

// ---------------------------------------------------------------------------
// Configuration from the environment.

std::vector<uint64_t> SeedsToRun(std::vector<uint64_t> defaults) {
  const char* env = std::getenv("STRATA_MODEL_SEED");
  if (env == nullptr || *env == '\0') return defaults;
  if (std::string(env) == "random") {
    std::random_device device;
    return {(uint64_t{device()} << 32) | device()};
  }
  return {std::strtoull(env, nullptr, 10)};
}

int OpsPerSeed() {
  const char* env = std::getenv("STRATA_MODEL_OPS");
  if (env == nullptr || *env == '\0') return 10000;
  return std::max(1, std::atoi(env));
}

void RunSeeds(uint32_t block_size, std::vector<uint64_t> default_seeds, bool deep = false) {
  for (uint64_t seed : SeedsToRun(std::move(default_seeds))) {
    TempDir dir;
    // Deep runs fork about every 16th op, each a durable commit: fewer ops.
    RunConfig config{seed, deep ? OpsPerSeed() * 2 / 5 : OpsPerSeed(), block_size,
                     dir.File("store.db"), deep};
    std::cout << "model run: seed " << seed << ", " << config.ops << " ops, block size "
              << block_size << std::endl;
    ModelRun(config).Run();
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(ModelTest, RandomOperationsMatchModelAndEverySnapshotReadsBackExactly) {
  RunSeeds(64 * 1024, {1, 2, 3});
}

TEST(ModelTest, RandomOperationsWithSmallBlocksMatchModelAcrossBlockBoundaries) {
  RunSeeds(4096, {101, 102, 103});
}

TEST(ModelTest, ForksFarDeeperThanTheReadLevelsMatchModelThroughLayers) {
  RunSeeds(4096, {201, 202}, /*deep=*/true);
}

}  // namespace
}  // namespace strata
