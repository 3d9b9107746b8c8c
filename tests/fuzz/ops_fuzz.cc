// Fuzz target: sequences of core operations checked against a model.
//
// The input is a program: each step reads an operation and its arguments
// from the bytes (FuzzedDataProvider), applies it to a real store in a
// scratch directory, through the Filesystem API (create, write, truncate,
// fallocate, copy_file_range, rename with flags, link, unlink, mkdir, rmdir,
// symlink, chmod, xattrs, open and release, so that unlinked files stay
// open and nameless, flushes) and the Store API (snapshot, fork,
// restore, key-value updates, reopening the store), and to TreeModel. The
// core must answer each operation as the model says (the same error code),
// and:
//   - on request, after a reopen and at the end: every session's tree
//     (names, types, permissions, nlink, sizes, contents, symlink targets,
//     xattrs, inode numbers) and key-value state equal the model's;
//   - at the end: every frozen version (snapshots, fork points, heads
//     abandoned by Restore) still reads exactly as the model did when it
//     was frozen, and CheckIntegrity finds nothing.
// Failures print the last operations, so a crash file replays with its
// story (run the target on the file; STRATA_FUZZ_VERBOSE=1 prints every
// operation as it runs).
#include <fuzzer/FuzzedDataProvider.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "ops_model.h"

namespace strata::fuzz {
namespace {

constexpr uint32_t kBlock = 4096;
constexpr size_t kMaxPaths = 40;           // the model stops adding names beyond this
constexpr uint64_t kMaxSize = 6 * kBlock;  // largest offset a step writes at
constexpr int kMaxSteps = 400;
constexpr size_t kMaxFrozen = 24;    // versions remembered for the final check

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Session {
  std::string name;
  BranchId branch = 0;
  TreeModel tree;
  KvModel kv;
  std::unique_ptr<Filesystem> fs;
};

// A frozen version and what the model held when it was frozen.
struct Frozen {
  View view;
  TreeModel tree;
  KvModel kv;
  std::string label;
};

enum class Op {
  kCreate,
  kMkDir,
  kSymlink,
  kWrite,
  kTruncate,
  kFallocate,
  kCopyRange,
  kRead,
  kRename,
  kLink,
  kUnlink,
  kRmDir,
  kChmod,
  kSetXattr,
  kRemoveXattr,
  kSnapshot,
  kFork,
  kSwitch,
  kRestore,
  kKv,
  kFlush,
  kCheck,
  kReopen,
  kOpen,
  kRelease,
};

class OpsRun {
 public:
  OpsRun(const uint8_t* data, size_t size) : in_(data, size) {}

  void Run() {
    OpenStore();
    SessionInfo info = MustOk(store_->CreateSession("main"), "create session");
    auto s = std::make_unique<Session>();
    s->name = "main";
    s->branch = info.branch;
    OpenFs(*s);
    Attr root = MustOk(s->fs->GetAttr(kRootIno), "root attr");
    s->tree = TreeModel(root.mode & 07777);
    sessions_.push_back(std::move(s));
    for (step_ = 1; step_ <= kMaxSteps && in_.remaining_bytes() > 0; ++step_) Step();
    Log("final checks");
    for (auto& session : sessions_) CompareLive(*session);
    Reopen();
    for (auto& session : sessions_) CompareLive(*session);
    for (const Frozen& f : frozen_) CompareFrozen(f);
    RequireSound(*store_, "at the end");
  }

 private:
  // --- Reporting.
  void Log(std::string what) {
    static const bool verbose = std::getenv("STRATA_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "step %d: %s\n", step_, what.c_str());
    history_.push_back("step " + std::to_string(step_) + ": " + std::move(what));
    if (history_.size() > 40) history_.pop_front();
  }
  [[noreturn]] void Fail(const std::string& what) {
    std::string story = "operations (newest last):";
    for (const std::string& line : history_) story += "\n  " + line;
    Die(story + "\n" + what);
  }
  void Expect(Code want, const Status& got) {
    if (got.code() != want) {
      Fail("model expects " + std::string(CodeName(want)) + ", core returned " + got.ToString());
    }
  }
  template <typename T>
  void Expect(Code want, const Result<T>& got) {
    Expect(want, got.ok() ? Status::Ok() : got.status());
  }
  template <typename T>
  T Must(Result<T> r, const std::string& what) {
    if (!r.ok()) Fail(what + ": " + r.status().ToString());
    return std::move(r).value();
  }
  void Must(const Status& s, const std::string& what) {
    if (!s.ok()) Fail(what + ": " + s.ToString());
  }

  // --- Choices from the input.
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[in_.ConsumeIntegralInRange<size_t>(0, v.size() - 1)];
  }
  std::string NewPath() {
    const std::string dir = Pick(Current().tree.PathsOf({Kind::kDir}, true));
    return TreeModel::Join(
        dir, std::string(1, static_cast<char>('a' + in_.ConsumeIntegral<uint8_t>() % 4)));
  }
  // An existing path (of `kinds`) or now and then a new one.
  std::string AnyPath(std::vector<Kind> kinds) {
    auto paths = Current().tree.PathsOf(std::move(kinds));
    if (paths.empty() || in_.ConsumeIntegral<uint8_t>() < 24) return NewPath();
    return Pick(paths);
  }
  uint64_t Offset(uint64_t size) {
    switch (in_.ConsumeIntegralInRange(0, 4)) {
      case 0:
        return size;
      case 1:
        return in_.ConsumeIntegralInRange<uint64_t>(0, size);
      case 2: {  // at or near a block boundary
        const uint64_t at = in_.ConsumeIntegralInRange<uint64_t>(0, kMaxSize / kBlock) * kBlock;
        const uint64_t delta = in_.ConsumeIntegralInRange<uint64_t>(0, 6);
        return at + delta < 3 ? 0 : at + delta - 3;
      }
      case 3:
        return std::min(kMaxSize, size + in_.ConsumeIntegralInRange<uint64_t>(0, 2 * kBlock));
      default:
        return in_.ConsumeIntegralInRange<uint64_t>(0, kMaxSize);
    }
  }
  uint64_t Length() {
    return in_.ConsumeBool() ? in_.ConsumeIntegralInRange<uint64_t>(1, 16)
                             : in_.ConsumeIntegralInRange<uint64_t>(1, 2 * kBlock + 64);
  }
  // Bytes that are zeros (holes), one byte repeated (dedups) or varied.
  std::string Data(size_t n) {
    std::string out(n, '\0');
    const uint8_t kind = in_.ConsumeIntegral<uint8_t>();
    if (kind % 3 == 1) {
      std::fill(out.begin(), out.end(), static_cast<char>(kind));
    } else if (kind % 3 == 2) {
      uint32_t x = 0x9E3779B9u * (kind + 1);
      for (char& c : out) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        c = static_cast<char>(x);
      }
    }
    return out;
  }

  // --- Sessions and the store.
  Session& Current() { return *sessions_[current_]; }
  void OpenStore() { store_ = OpenStoreOrDie(dir_.File("store.db"), kBlock); }
  void OpenFs(Session& s) {
    s.branch = Must(store_->GetSession(s.name), "GetSession " + s.name).branch;
    s.fs = Must(store_->OpenFilesystem(View{s.branch, kHead}), "OpenFilesystem " + s.name);
  }
  void Freeze(View view, const Session& s, std::string label) {
    if (frozen_.size() >= kMaxFrozen) return;
    frozen_.push_back(Frozen{view, s.tree, s.kv, std::move(label)});
  }

  // --- One step.
  // An operation, weighted: mostly namespace and data changes, now and then
  // a store operation, rarely a reopen.
  Op NextOp() {
    static const std::pair<Op, int> kWeights[] = {
        {Op::kCreate, 10},  {Op::kMkDir, 6},     {Op::kSymlink, 3},     {Op::kWrite, 20},
        {Op::kTruncate, 6}, {Op::kFallocate, 5}, {Op::kCopyRange, 5},   {Op::kRead, 6},
        {Op::kRename, 10},  {Op::kLink, 5},      {Op::kUnlink, 8},      {Op::kRmDir, 4},
        {Op::kChmod, 3},    {Op::kSetXattr, 5},  {Op::kRemoveXattr, 3}, {Op::kSnapshot, 5},
        {Op::kFork, 3},     {Op::kSwitch, 3},    {Op::kRestore, 3},     {Op::kKv, 5},
        {Op::kFlush, 4},    {Op::kCheck, 3},     {Op::kReopen, 1},      {Op::kOpen, 3},
        {Op::kRelease, 3},
    };
    int total = 0;
    for (const auto& [op, w] : kWeights) total += w;
    int pick = in_.ConsumeIntegralInRange(0, total - 1);
    for (const auto& [op, w] : kWeights) {
      if (pick < w) return op;
      pick -= w;
    }
    return Op::kCheck;
  }

  void Step() {
    Session& s = Current();
    const bool full = s.tree.size() >= kMaxPaths;
    const bool no_files = s.tree.PathsOf({Kind::kFile}).empty();
    const Op op = NextOp();
    switch (op) {
      case Op::kCreate:
        if (!full) MakeNode(Kind::kFile);
        return;
      case Op::kMkDir:
        if (!full) MakeNode(Kind::kDir);
        return;
      case Op::kSymlink:
        if (!full) MakeNode(Kind::kSymlink);
        return;
      case Op::kWrite:
        if (!no_files) Write();
        return;
      case Op::kTruncate:
        if (!no_files) Truncate();
        return;
      case Op::kFallocate:
        if (!no_files) Fallocate();
        return;
      case Op::kCopyRange:
        if (!no_files) CopyRange();
        return;
      case Op::kRead:
        if (!no_files) Read();
        return;
      case Op::kRename:
        if (s.tree.size() > 1) Rename();
        return;
      case Op::kLink:
        if (!full && s.tree.size() > 1) Link();
        return;
      case Op::kUnlink:
        if (s.tree.size() > 1) Unlink();
        return;
      case Op::kRmDir:
        if (s.tree.size() > 1) RmDir();
        return;
      case Op::kChmod:
        Chmod();
        return;
      case Op::kSetXattr:
        SetXattr();
        return;
      case Op::kRemoveXattr:
        RemoveXattr();
        return;
      case Op::kSnapshot:
        Snapshot();
        return;
      case Op::kFork:
        Fork();
        return;
      case Op::kSwitch:
        current_ = in_.ConsumeIntegralInRange<size_t>(0, sessions_.size() - 1);
        Log("switch to " + Current().name);
        return;
      case Op::kRestore:
        Restore();
        return;
      case Op::kKv:
        Kv();
        return;
      case Op::kFlush:
        Flush();
        return;
      case Op::kCheck:
        Log("compare " + s.name);
        CompareLive(s);
        return;
      case Op::kReopen:
        Reopen();
        for (auto& session : sessions_) CompareLive(*session);
        return;
      case Op::kOpen:
        if (!no_files) OpenFile();
        return;
      case Op::kRelease:
        if (!s.tree.open().empty()) Release();
        return;
    }
  }

  void MakeNode(Kind kind) {
    Session& s = Current();
    const std::string path = NewPath();
    const InodeId parent = s.tree.Id(TreeModel::Parent(path));
    const std::string name = TreeModel::Name(path);
    const uint32_t parent_perm = s.tree.At(TreeModel::Parent(path)).perm;
    Result<Attr> attr = Status(Code::kInternal, "unset");
    std::string target;
    uint32_t perm = 0;
    if (kind == Kind::kFile) {
      Log("create " + path);
      perm = 0644;
      attr = s.fs->Create(parent, name, perm, Cred{});
    } else if (kind == Kind::kDir) {
      Log("mkdir " + path);
      perm = 0755;
      attr = s.fs->MkDir(parent, name, perm, Cred{});
      if (parent_perm & S_ISGID) perm |= S_ISGID;  // inherited from the parent
    } else {
      target = in_.ConsumeBool() ? "../t" + std::to_string(in_.ConsumeIntegral<uint8_t>()) : path;
      Log("symlink " + path + " -> " + target);
      perm = 0777;
      attr = s.fs->Symlink(parent, name, target, Cred{});
    }
    const Code want = s.tree.CheckNew(path);
    Expect(want, attr);
    if (want != Code::kOk) return;
    s.tree.Add(path, attr->ino, kind, perm, target);
    if (kind != Kind::kFile) return;
    s.tree.Open(attr->ino);  // Create opens the file
    if (in_.ConsumeIntegral<uint8_t>() >= 48) ReleaseIno(attr->ino);
  }

  std::string PickFile() { return Pick(Current().tree.PathsOf({Kind::kFile})); }

  // A regular file to work on: mostly by one of its names, now and then an
  // open file that has no name left.
  std::pair<std::string, InodeId> PickTarget() {
    TreeModel& t = Current().tree;
    const auto orphans = t.Orphans();
    if (!orphans.empty() && in_.ConsumeIntegral<uint8_t>() < 80) {
      const InodeId ino = Pick(orphans);
      return {"orphan " + std::to_string(ino), ino};
    }
    const std::string path = PickFile();
    return {path, t.Id(path)};
  }

  void OpenFile() {
    Session& s = Current();
    const std::string path = PickFile();
    Log("open " + path);
    Must(s.fs->Open(s.tree.Id(path)), "open");
    s.tree.Open(s.tree.Id(path));
  }

  void Release() {
    std::vector<InodeId> open;
    for (const auto& [ino, count] : Current().tree.open()) open.push_back(ino);
    ReleaseIno(Pick(open));
  }

  // Releases one handle; the last one of a nameless file takes it along.
  void ReleaseIno(InodeId ino) {
    Session& s = Current();
    Log("release inode " + std::to_string(ino));
    Must(s.fs->Release(ino), "release");
    if (s.tree.Release(ino)) Expect(Code::kNotFound, s.fs->GetAttr(ino));
  }

  void Write() {
    Session& s = Current();
    const auto [path, ino] = PickTarget();
    ModelNode& node = s.tree.Node(ino);
    const uint64_t offset = std::min(Offset(node.data.size()), kMaxSize);
    const std::string data = Data(Length());
    Log("write " + path + " [" + std::to_string(offset) + ", +" + std::to_string(data.size()) +
        ")");
    const size_t n = Must(s.fs->Write(ino, offset, Bytes(data)), "write");
    if (n != data.size()) Fail("short write: " + std::to_string(n));
    if (node.data.size() < offset + n) node.data.resize(offset + n, '\0');
    node.data.replace(offset, n, data);
  }

  void Truncate() {
    Session& s = Current();
    const auto [path, ino] = PickTarget();
    ModelNode& node = s.tree.Node(ino);
    const uint64_t size = std::min(Offset(node.data.size()), kMaxSize);
    Log("truncate " + path + " to " + std::to_string(size));
    AttrChanges changes;
    changes.size = size;
    const Attr attr = Must(s.fs->SetAttr(ino, changes), "truncate");
    if (attr.size != size) Fail("SetAttr returned size " + std::to_string(attr.size));
    node.data.resize(size, '\0');
  }

  void Fallocate() {
    static const int kModes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                 FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
    Session& s = Current();
    const std::string path = PickFile();
    ModelNode& node = s.tree.MutableAt(path);
    const int mode = kModes[in_.ConsumeIntegralInRange(0, 4)];
    const uint64_t offset = std::min(Offset(node.data.size()), kMaxSize);
    const uint64_t length = Length();
    Log("fallocate mode " + std::to_string(mode) + " " + path + " [" + std::to_string(offset) +
        ", +" + std::to_string(length) + ")");
    Must(s.fs->Fallocate(s.tree.Id(path), mode, offset, length), "fallocate");
    const uint64_t size = node.data.size();
    if ((mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) && offset < size) {
      std::fill(node.data.begin() + offset, node.data.begin() + std::min(size, offset + length),
                '\0');
    }
    if (!(mode & FALLOC_FL_KEEP_SIZE) && offset + length > size) {
      node.data.resize(offset + length, '\0');
    }
  }

  // Between two different inodes (overlap within one file is refused).
  void CopyRange() {
    Session& s = Current();
    const std::string from = PickFile();
    const std::string to = PickFile();
    if (s.tree.Id(from) == s.tree.Id(to)) return;
    const std::string source = s.tree.At(from).data;
    ModelNode& dest = s.tree.MutableAt(to);
    const uint64_t in_off = Offset(source.size());
    const uint64_t out_off = std::min(Offset(dest.data.size()), kMaxSize);
    const uint64_t length = Length();
    Log("copy_range " + from + " [" + std::to_string(in_off) + ", +" + std::to_string(length) +
        ") to " + to + " at " + std::to_string(out_off));
    const size_t n = Must(s.fs->CopyRange(s.tree.Id(from), in_off, s.tree.Id(to), out_off, length),
                          "copy_range");
    const uint64_t most = in_off < source.size() ? std::min(length, source.size() - in_off) : 0;
    if (n > most || (most > 0 && n == 0)) {
      Fail("copy_range copied " + std::to_string(n) + " bytes of " + std::to_string(most));
    }
    if (n == 0) return;
    if (dest.data.size() < out_off + n) dest.data.resize(out_off + n, '\0');
    dest.data.replace(out_off, n, source.substr(in_off, n));
  }

  void Read() {
    Session& s = Current();
    const auto [path, ino] = PickTarget();
    const std::string& data = s.tree.Node(ino).data;
    const uint64_t offset = Offset(data.size());
    const uint64_t length = Length();
    Log("read " + path + " [" + std::to_string(offset) + ", +" + std::to_string(length) + ")");
    std::string got(length, '\0');
    const size_t n =
        Must(s.fs->Read(ino, offset, {reinterpret_cast<uint8_t*>(got.data()), got.size()}), "read");
    got.resize(n);
    const std::string want = offset < data.size() ? data.substr(offset, length) : "";
    if (got != want) Fail("read differs from the model");
  }

  void Rename() {
    Session& s = Current();
    const std::vector<Kind> all = {Kind::kDir, Kind::kFile, Kind::kSymlink};
    const std::string from = Pick(s.tree.PathsOf(all));
    const std::string to = AnyPath(all);
    static const unsigned kFlags[] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
    const unsigned flags = kFlags[in_.ConsumeIntegralInRange(0, 3)];
    // Onto an ancestor of the source: Linux says ENOTEMPTY even for a file,
    // POSIX leaves it open; the model does not go there.
    if (TreeModel::Inside(from, to) && !(flags & RENAME_EXCHANGE)) return;
    Log("rename " + from + " -> " + to + " flags " + std::to_string(flags));
    const Status st = s.fs->Rename(s.tree.Id(TreeModel::Parent(from)), TreeModel::Name(from),
                                   s.tree.Id(TreeModel::Parent(to)), TreeModel::Name(to), flags);
    const Code want = s.tree.CheckRename(from, to, flags);
    Expect(want, st);
    if (want == Code::kOk) s.tree.Rename(from, to, flags);
  }

  void Link() {
    Session& s = Current();
    const bool dir = in_.ConsumeIntegral<uint8_t>() < 12;  // must fail
    const std::string from =
        dir ? Pick(s.tree.PathsOf({Kind::kDir}, true)) : AnyPath({Kind::kFile, Kind::kSymlink});
    if (!s.tree.Has(from)) return;
    const std::string to = NewPath();
    if (s.tree.IsDir(from) && s.tree.Has(to)) return;  // Linux checks the name first
    Log("link " + from + " -> " + to);
    auto attr = s.fs->Link(s.tree.Id(from), s.tree.Id(TreeModel::Parent(to)), TreeModel::Name(to));
    const Code want = s.tree.IsDir(from) ? Code::kNotPermitted : s.tree.CheckNew(to);
    Expect(want, attr);
    if (want != Code::kOk) return;
    s.tree.AddLink(to, s.tree.Id(from));
    if (attr->nlink != s.tree.At(to).links)
      Fail("Link returned nlink " + std::to_string(attr->nlink));
  }

  void Unlink() {
    Session& s = Current();
    const std::string path = AnyPath({Kind::kFile, Kind::kSymlink, Kind::kDir});
    Log("unlink " + path);
    const Status st = s.fs->Unlink(s.tree.Id(TreeModel::Parent(path)), TreeModel::Name(path));
    const Code want = s.tree.CheckUnlink(path);
    Expect(want, st);
    if (want == Code::kOk) s.tree.Remove(path);
  }

  void RmDir() {
    Session& s = Current();
    const std::string path = AnyPath({Kind::kDir, Kind::kFile});
    Log("rmdir " + path);
    const Status st = s.fs->RmDir(s.tree.Id(TreeModel::Parent(path)), TreeModel::Name(path));
    const Code want = s.tree.CheckRmDir(path);
    Expect(want, st);
    if (want == Code::kOk) s.tree.Remove(path);
  }

  void Chmod() {
    Session& s = Current();
    const std::string path = Pick(s.tree.PathsOf({Kind::kDir, Kind::kFile}, true));
    const uint32_t perm = in_.ConsumeIntegral<uint16_t>() & 07777;
    Log("chmod " + path + " " + std::to_string(perm));
    AttrChanges changes;
    changes.mode = perm;
    const Attr attr = Must(s.fs->SetAttr(s.tree.Id(path), changes), "chmod");
    if ((attr.mode & 07777) != perm) Fail("SetAttr returned mode " + std::to_string(attr.mode));
    s.tree.MutableAt(path).perm = perm;
  }

  std::string XattrName() {
    static const std::vector<std::string> kNames = {"user.a", "user.b", "trusted.c"};
    return Pick(kNames);
  }

  void SetXattr() {
    Session& s = Current();
    const std::string path = Pick(s.tree.PathsOf({Kind::kDir, Kind::kFile}, true));
    ModelNode& node = s.tree.MutableAt(path);
    const std::string name = XattrName();
    const std::string value = in_.ConsumeRandomLengthString(64);
    static const int kFlags[] = {0, 0, XATTR_CREATE, XATTR_REPLACE};
    const int flags = kFlags[in_.ConsumeIntegralInRange(0, 3)];
    Log("setxattr " + path + " " + name + " flags " + std::to_string(flags));
    const Status st = s.fs->SetXattr(s.tree.Id(path), name, value, flags);
    const bool exists = node.xattrs.count(name) != 0;
    Code want = Code::kOk;
    if ((flags & XATTR_CREATE) && exists) want = Code::kExists;
    if ((flags & XATTR_REPLACE) && !exists) want = Code::kNoData;
    Expect(want, st);
    if (want == Code::kOk) node.xattrs[name] = value;
  }

  void RemoveXattr() {
    Session& s = Current();
    const std::string path = Pick(s.tree.PathsOf({Kind::kDir, Kind::kFile}, true));
    ModelNode& node = s.tree.MutableAt(path);
    const std::string name = XattrName();
    Log("removexattr " + path + " " + name);
    Expect(node.xattrs.count(name) ? Code::kOk : Code::kNoData,
           s.fs->RemoveXattr(s.tree.Id(path), name));
    node.xattrs.erase(name);
  }

  void Snapshot() {
    Session& s = Current();
    const std::string name = in_.ConsumeBool() ? "" : "snap-" + std::to_string(++snapshots_);
    Log("snapshot " + s.name + " '" + name + "'");
    const Version v = Must(store_->Snapshot(s.branch, name), "snapshot");
    Freeze(View{s.branch, v}, s, "snapshot '" + name + "' of " + s.name);
  }

  void Fork() {
    Session& s = Current();
    const std::string name = "fork-" + std::to_string(sessions_.size());
    Log("fork " + s.name + " as " + name);
    auto child = store_->Fork(View{s.branch, kHead}, name);
    Expect(Code::kOk, child);
    const BranchInfo info = Must(store_->GetBranch(*child), "GetBranch");
    if (info.parent != s.branch) Fail("the fork has the wrong parent");
    Freeze(View{s.branch, info.parent_version}, s, "fork point of " + name);
    auto fork = std::make_unique<Session>();
    fork->name = name;
    fork->tree = s.tree;
    fork->tree.DropHandles();
    fork->kv = s.kv;
    OpenFs(*fork);
    if (fork->branch != *child) Fail("the fork's session names another branch");
    sessions_.push_back(std::move(fork));
    if (in_.ConsumeBool()) current_ = sessions_.size() - 1;
  }

  void Restore() {
    if (frozen_.empty()) return;
    Session& s = Current();
    const Frozen target = Pick(frozen_);
    Log("restore " + s.name + " to " + target.label);
    auto undo = store_->Restore(s.name, target.view);
    Expect(Code::kOk, undo);
    if (undo->branch != s.branch) Fail("Restore froze another branch");
    Freeze(*undo, s, "head of " + s.name + " abandoned by a restore");
    s.tree = target.tree;
    s.tree.DropHandles();
    s.kv = target.kv;
    s.fs.reset();
    const BranchId old = s.branch;
    OpenFs(s);
    if (s.branch == old) Fail("the session still names its old branch");
  }

  void Kv() {
    Session& s = Current();
    static const std::vector<std::string> kKeys = {"a", "b", "plan/x", "plan/y"};
    static const std::vector<std::string> kValues = {"1", "\"x\"", "[1,2]", "{\"a\":null}", "true"};
    std::vector<KvChange> changes;
    KvModel after = s.kv;
    bool fails = false;
    std::string what = "kv";
    for (int n = in_.ConsumeIntegralInRange(1, 3); n > 0; --n) {
      const std::string key = Pick(kKeys);
      if (in_.ConsumeIntegral<uint8_t>() < 64) {
        changes.push_back({key, std::nullopt});
        what += " rm " + key;
        fails = fails || after.erase(key) == 0;  // removing a missing key fails it all
      } else {
        const std::string value = Pick(kValues);
        changes.push_back({key, value});
        what += " " + key + "=" + value;
        after[key] = value;
      }
    }
    Log(what + " on " + s.name);
    const Status st = store_->KvUpdate(s.branch, changes);
    if (fails) {
      if (st.ok()) Fail("KvUpdate removing a missing key succeeded");
      return;
    }
    Must(st, "KvUpdate");
    s.kv = std::move(after);
  }

  void Flush() {
    Session& s = Current();
    const auto files = s.tree.PathsOf({Kind::kFile});
    switch (in_.ConsumeIntegralInRange(0, 3)) {
      case 0:
        Log("FlushAll " + s.name);
        return Must(s.fs->FlushAll(), "FlushAll");
      case 1:
        Log("Sync");
        return Must(store_->Sync(), "Sync");
      case 2:
        if (files.empty()) return;
        Log("fsync a file");
        return Must(s.fs->Fsync(s.tree.Id(Pick(files))), "Fsync");
      default:
        if (files.empty()) return;
        Log("flush-later a file");
        s.fs->FlushLater(s.tree.Id(Pick(files)));
    }
  }

  void Reopen() {
    Log("reopen the store");
    for (auto& s : sessions_) {
      s->fs.reset();
      s->tree.DropHandles();
    }
    store_.reset();
    OpenStore();
    for (auto& s : sessions_) {
      const BranchId before = s->branch;
      OpenFs(*s);
      if (s->branch != before) Fail("session " + s->name + " changed branch on reopen");
    }
  }

  // --- Checks.
  void CompareKv(View view, const KvModel& want, const std::string& what) {
    KvModel got;
    for (KvEntry& e : Must(store_->KvList(view), "KvList of " + what)) {
      got[e.key] = std::move(e.value);
    }
    if (got != want) Fail("key-value state of " + what + " differs from the model");
  }

  void CompareLive(Session& s) {
    auto tree = Must(ReadTree(*s.fs), "reading the tree of " + s.name);
    const std::string diff =
        CompareTrees(s.tree.Expected(), tree, CompareOptions{.same_inodes = true});
    if (!diff.empty()) Fail("session " + s.name + ": " + diff);
    for (InodeId ino : s.tree.Orphans()) {
      const std::string what = "open nameless inode " + std::to_string(ino);
      const Attr attr = Must(s.fs->GetAttr(ino), "GetAttr of " + what);
      const std::string& data = s.tree.Node(ino).data;
      if (attr.nlink != 0 || attr.size != data.size()) {
        Fail(what + ": nlink " + std::to_string(attr.nlink) + ", size " +
             std::to_string(attr.size) + ", model size " + std::to_string(data.size()));
      }
      std::string got(data.size() + 1, '\0');
      got.resize(Must(s.fs->Read(ino, 0, {reinterpret_cast<uint8_t*>(got.data()), got.size()}),
                      "read " + what));
      if (got != data) Fail(what + ": contents differ");
    }
    CompareKv(View{s.branch, kHead}, s.kv, "session " + s.name);
  }

  void CompareFrozen(const Frozen& f) {
    auto fs = Must(store_->OpenFilesystem(f.view), "opening " + f.label);
    if (!fs->read_only()) Fail(f.label + " opened writable");
    auto tree = Must(ReadTree(*fs), "reading " + f.label);
    const std::string diff =
        CompareTrees(f.tree.Expected(), tree, CompareOptions{.same_inodes = true});
    if (!diff.empty()) Fail(f.label + ": " + diff);
    CompareKv(f.view, f.kv, f.label);
  }

  FuzzedDataProvider in_;
  ScratchDir dir_;
  std::unique_ptr<Store> store_;
  std::vector<std::unique_ptr<Session>> sessions_;
  size_t current_ = 0;
  std::vector<Frozen> frozen_;
  int snapshots_ = 0;
  int step_ = 0;
  std::deque<std::string> history_;
};

}  // namespace
}  // namespace strata::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  strata::fuzz::OpsRun(data, size).Run();
  return 0;
}
