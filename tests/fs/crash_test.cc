// Crash test: a child process writes and fsyncs in a loop and is killed with
// SIGKILL at a random moment, again and again on the same store. After each
// kill the store must pass its integrity check and every byte whose Fsync
// returned must read back exactly.
//
// The child reports through a pipe: an "intent" message before each
// operation and an "ack" once it is durable. The parent replays acknowledged
// operations on its own copy of the files (contents are generated from a
// seed, so the messages stay small). At most one operation is in flight when
// the child dies: its effect must be all there or not at all.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::TempDir;

constexpr int kFiles = 3;
constexpr int kKills = 50;
// Operations every other child acknowledges before its kill is timed (the
// others may be killed while they open the store), so that the workload is
// a count, however slow the machine.
constexpr size_t kAcksBeforeTheClock = 10;
constexpr uint32_t kBlockSize = 16 * 1024;
constexpr uint64_t kFileCap = 512 * 1024;  // files are cut back when they grow past this

enum class MsgType : uint32_t { kIntent = 1, kAck = 2 };
enum class OpKind : uint32_t { kWrite = 1, kTruncate = 2, kSnapshot = 3, kCollectGarbage = 4 };

// One report from the child. Small enough for an atomic pipe write.
struct Message {
  MsgType type;
  OpKind op;
  uint32_t file = 0;
  uint32_t snapshot = 0;  // snapshots are named "crash-<snapshot>"
  uint64_t offset = 0;    // write offset, or the new size of a truncate
  uint64_t length = 0;
  uint64_t seed = 0;  // generates the written bytes
};
static_assert(sizeof(Message) <= PIPE_BUF);

bool SameOperation(const Message& a, const Message& b) {
  return a.op == b.op && a.file == b.file && a.snapshot == b.snapshot && a.offset == b.offset &&
         a.length == b.length && a.seed == b.seed;
}

std::string FileName(int i) { return "file" + std::to_string(i); }
std::string SnapshotName(uint32_t serial) { return "crash-" + std::to_string(serial); }

uint64_t SplitMix(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The bytes a write with this seed stores: zeros, a compressible pattern or
// noise, depending on the seed.
std::string Content(uint64_t seed, uint64_t length) {
  std::string out(length, '\0');
  switch (seed % 4) {
    case 0:
      break;
    case 1:
      for (uint64_t i = 0; i < length; ++i) out[i] = static_cast<char>('A' + (i + seed) % 23);
      break;
    default: {
      uint64_t state = seed;
      for (uint64_t i = 0; i < length; i += 8) {
        uint64_t r = SplitMix(&state);
        std::memcpy(out.data() + i, &r, std::min<uint64_t>(8, length - i));
      }
    }
  }
  return out;
}

// What the parent knows the store holds.
struct Expected {
  std::vector<std::string> files = std::vector<std::string>(kFiles);
  std::map<std::string, std::vector<std::string>> snapshots;  // name -> file contents
};

void Apply(const Message& m, Expected* e) {
  switch (m.op) {
    case OpKind::kWrite: {
      std::string& f = e->files[m.file];
      if (f.size() < m.offset + m.length) f.resize(m.offset + m.length, '\0');
      f.replace(m.offset, m.length, Content(m.seed, m.length));
      break;
    }
    case OpKind::kTruncate:
      e->files[m.file].resize(m.offset, '\0');
      break;
    case OpKind::kSnapshot:
      e->snapshots[SnapshotName(m.snapshot)] = e->files;
      break;
    case OpKind::kCollectGarbage:
      break;
  }
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Result<std::unique_ptr<Store>> OpenStoreAt(const std::string& path) {
  StoreOptions options;
  options.path = path;
  options.block_size = kBlockSize;
  return Store::Open(std::move(options));
}

// ---------------------------------------------------------------------------
// The child. Runs until killed; returns (to _exit) only on an error.

class Child {
 public:
  Child(std::string path, int fd, uint64_t seed, uint32_t first_snapshot)
      : path_(std::move(path)), fd_(fd), rng_(seed), next_snapshot_(first_snapshot) {}

  int Main() {
    auto store = OpenStoreAt(path_);
    if (!store.ok()) return Die("open", store.status());
    store_ = std::move(store).value();
    auto session = store_->GetSession("main");
    if (!session.ok()) return Die("GetSession", session.status());
    branch_ = session->branch;
    auto fs = store_->OpenFilesystem(View{branch_, kHead});
    if (!fs.ok()) return Die("OpenFilesystem", fs.status());
    fs_ = std::move(fs).value();
    for (int i = 0; i < kFiles; ++i) {
      auto attr = fs_->Lookup(kRootIno, FileName(i));
      if (!attr.ok()) return Die("Lookup", attr.status());
      ino_[i] = attr->ino;
      size_[i] = attr->size;
    }
    for (;;) {
      Message m = NextOp();
      if (!Send(MsgType::kIntent, m)) return 3;
      Status s = Perform(m);
      if (!s.ok()) return Die("operation", s);
      if (!Send(MsgType::kAck, m)) return 3;
    }
  }

 private:
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  Message NextOp() {
    Message m{MsgType::kIntent, OpKind::kWrite};
    m.file = static_cast<uint32_t>(Uniform(kFiles));
    uint64_t size = size_[m.file];
    uint64_t dice = Uniform(100);
    if (dice < 2) {
      m.op = OpKind::kSnapshot;
      m.snapshot = next_snapshot_++;
    } else if (dice < 3) {
      m.op = OpKind::kCollectGarbage;
    } else if (dice < 9 && size <= kFileCap) {
      // A large append: its fsync commits one transaction of several MiB,
      // which the WAL writes with O_DIRECT from a background thread; kills
      // land there too.
      m.offset = size;
      m.length = (5u << 20) + Uniform(4u << 20);
      m.seed = rng_();
    } else if (dice < 6 || size > kFileCap) {
      m.op = OpKind::kTruncate;
      m.offset = Uniform(size + kBlockSize);
    } else {
      // Appends and overwrites, often crossing blocks.
      m.offset = Uniform(2) == 0 ? size : Uniform(size + 1);
      m.length = 1 + (Uniform(2) == 0 ? Uniform(512) : Uniform(3 * kBlockSize));
      m.seed = rng_();
    }
    return m;
  }

  Status Perform(const Message& m) {
    InodeId ino = ino_[m.file];
    switch (m.op) {
      case OpKind::kWrite: {
        std::string data = Content(m.seed, m.length);
        ASSIGN_OR_RETURN(size_t n, fs_->Write(ino, m.offset, Bytes(data)));
        if (n != data.size()) return Internal("short write");
        RETURN_IF_ERROR(fs_->Fsync(ino));
        size_[m.file] = std::max(size_[m.file], m.offset + m.length);
        return Status::Ok();
      }
      case OpKind::kTruncate: {
        AttrChanges changes;
        changes.size = m.offset;
        RETURN_IF_ERROR(fs_->SetAttr(ino, changes).status());
        RETURN_IF_ERROR(fs_->Fsync(ino));
        size_[m.file] = m.offset;
        return Status::Ok();
      }
      case OpKind::kSnapshot:
        RETURN_IF_ERROR(store_->Snapshot(branch_, SnapshotName(m.snapshot)).status());
        return store_->Sync();
      case OpKind::kCollectGarbage:
        RETURN_IF_ERROR(store_->CollectGarbage().status());
        return store_->Sync();
    }
    return Internal("unknown operation");
  }

  bool Send(MsgType type, Message m) {
    m.type = type;
    return write(fd_, &m, sizeof(m)) == static_cast<ssize_t>(sizeof(m));
  }

  int Die(const char* what, const Status& s) {
    fprintf(stderr, "crash test child: %s: %s\n", what, s.ToString().c_str());
    return 2;
  }

  const std::string path_;
  const int fd_;
  std::mt19937_64 rng_;
  uint32_t next_snapshot_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Filesystem> fs_;
  BranchId branch_ = 0;
  InodeId ino_[kFiles] = {};
  uint64_t size_[kFiles] = {};
};

// ---------------------------------------------------------------------------
// The parent.

// What one child run reported before it died.
struct ChildRun {
  std::vector<Message> messages;
  bool killed = false;  // died of our SIGKILL (not of its own accord)
};

// Starts a child and kills it after `delay`. No store may be open here.
// Kills the child `delay` after it has acknowledged `acks_first` operations
// (each is an intent and an acknowledgement message).
ChildRun RunChild(const std::string& path, uint64_t seed, uint32_t first_snapshot,
                  size_t acks_first, std::chrono::milliseconds delay) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    close(fds[0]);
    _exit(Child(path, fds[1], seed, first_snapshot).Main());
  }
  close(fds[1]);
  ChildRun run;
  std::string buffer;
  auto drain = [&](int timeout_ms) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char chunk[4096];
    ssize_t n = read(fds[0], chunk, sizeof(chunk));
    if (n <= 0) return false;  // EOF: the child is gone
    buffer.append(chunk, static_cast<size_t>(n));
    return true;
  };
  bool alive = true;
  while (alive && buffer.size() < acks_first * 2 * sizeof(Message)) alive = drain(-1);
  auto deadline = std::chrono::steady_clock::now() + delay;
  for (; alive;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (!drain(static_cast<int>(left.count())) && std::chrono::steady_clock::now() < deadline) {
      // EOF before the deadline: the child exited on its own.
      break;
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  run.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  while (drain(-1)) {
  }
  close(fds[0]);
  for (size_t at = 0; at + sizeof(Message) <= buffer.size(); at += sizeof(Message)) {
    Message m;
    std::memcpy(&m, buffer.data() + at, sizeof(m));
    run.messages.push_back(m);
  }
  return run;
}

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("store.db");
    auto store = OpenStoreAt(path_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_OK((*store)->CreateSession("main").status());
    ASSERT_OK_AND_ASSIGN(auto fs, (*store)->OpenFilesystem(View{Branch(**store), kHead}));
    for (int i = 0; i < kFiles; ++i) {
      ASSERT_OK_AND_ASSIGN(Attr attr, fs->Create(kRootIno, FileName(i), 0644, Cred{}));
      ASSERT_OK(fs->Release(attr.ino));
    }
    ASSERT_OK((*store)->Sync());
  }

  static BranchId Branch(Store& store) {
    auto session = store.GetSession("main");
    return session.ok() ? session->branch : 0;
  }

  static std::string ReadFile(Filesystem& fs, const std::string& name) {
    auto attr = fs.Lookup(kRootIno, name);
    EXPECT_TRUE(attr.ok()) << name << ": " << attr.status().ToString();
    if (!attr.ok()) return "<missing>";
    std::string out(attr->size + 1, '\0');
    auto n = fs.Read(attr->ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    EXPECT_TRUE(n.ok()) << name << ": " << n.status().ToString();
    if (!n.ok()) return "<unreadable>";
    EXPECT_EQ(*n, attr->size) << name << ": read length differs from the size";
    out.resize(*n);
    return out;
  }

  static std::vector<std::string> ReadFiles(Filesystem& fs) {
    std::vector<std::string> out;
    for (int i = 0; i < kFiles; ++i) out.push_back(ReadFile(fs, FileName(i)));
    return out;
  }

  static void ExpectNoProblems(Store& store, const std::string& when) {
    auto problems = store.CheckIntegrity();
    ASSERT_TRUE(problems.ok()) << when << ": " << problems.status().ToString();
    for (const auto& p : *problems) ADD_FAILURE() << when << ": " << p.kind << ": " << p.detail;
  }

  // Checks the store after a kill. `in_flight` is the operation the child
  // announced but did not acknowledge: its effect may be there or not, never
  // in part. Updates `expected` to what the store holds.
  void VerifyAfterCrash(const std::optional<Message>& in_flight, Expected* expected,
                        const std::string& when) {
    ASSERT_OK_AND_ASSIGN(auto store, OpenStoreAt(path_));
    ExpectNoProblems(*store, when);
    BranchId branch = Branch(*store);
    ASSERT_OK_AND_ASSIGN(auto fs, store->OpenFilesystem(View{branch, kHead}));
    std::vector<std::string> actual = ReadFiles(*fs);
    Expected applied = *expected;
    if (in_flight.has_value()) Apply(*in_flight, &applied);
    if (in_flight.has_value() && in_flight->op == OpKind::kSnapshot) {
      if (store->FindSnapshot(branch, SnapshotName(in_flight->snapshot)).ok()) *expected = applied;
    } else if (actual != expected->files) {
      *expected = applied;
    }
    for (int i = 0; i < kFiles; ++i) {
      if (actual[i] == expected->files[i]) continue;
      size_t at = 0;
      while (at < actual[i].size() && at < expected->files[i].size() &&
             actual[i][at] == expected->files[i][at]) {
        ++at;
      }
      ADD_FAILURE() << when << ": " << FileName(i) << " has " << actual[i].size()
                    << " bytes, expected " << expected->files[i].size()
                    << "; first difference at byte " << at
                    << (in_flight ? " (with or without the unacknowledged operation)" : "");
    }
    ASSERT_OK_AND_ASSIGN(auto listed, store->ListSnapshots(branch));
    EXPECT_EQ(listed.size(), expected->snapshots.size()) << when;
    // Keep the store small: chunks of overwritten blocks go.
    ASSERT_OK(store->CollectGarbage().status());
  }

  TempDir dir_;
  std::string path_;
};

TEST_F(CrashTest, FsyncedBytesSurviveRepeatedSigkill) {
  std::mt19937_64 rng(20240601);
  Expected expected;
  int acknowledged = 0;
  int uncertain = 0;
  int large_in_flight = 0;
  for (int kill_no = 0; kill_no < kKills; ++kill_no) {
    auto delay = std::chrono::milliseconds(5 + rng() % 146);
    ChildRun run = RunChild(path_, rng(), static_cast<uint32_t>(kill_no) * 100000,
                            kill_no % 2 == 0 ? 0 : kAcksBeforeTheClock, delay);
    ASSERT_TRUE(run.killed) << "the child died on its own before kill " << kill_no
                            << " (see its stderr)";
    // Replay what the child acknowledged; at most one operation is open.
    std::optional<Message> in_flight;
    for (const Message& m : run.messages) {
      if (m.type == MsgType::kIntent) {
        ASSERT_FALSE(in_flight.has_value()) << "two operations in flight";
        in_flight = m;
      } else {
        ASSERT_TRUE(in_flight.has_value()) << "acknowledgement without intent";
        ASSERT_TRUE(SameOperation(*in_flight, m)) << "acknowledgement of another operation";
        Apply(*in_flight, &expected);
        in_flight.reset();
        ++acknowledged;
      }
    }
    uncertain += in_flight.has_value() ? 1 : 0;
    large_in_flight += in_flight.has_value() && in_flight->length >= (4u << 20) ? 1 : 0;
    std::string when = "after kill " + std::to_string(kill_no) + " (" +
                       std::to_string(delay.count()) + " ms, " +
                       std::to_string(run.messages.size()) + " messages)";
    VerifyAfterCrash(in_flight, &expected, when);
    if (HasFailure()) return;
  }
  // A real workload ran: many acknowledged operations across the kills.
  EXPECT_GT(acknowledged, 200);
  std::cout << acknowledged << " acknowledged operations, " << uncertain
            << " in flight at a kill (" << large_in_flight << " of them large appends), "
            << expected.snapshots.size() << " snapshots\n";
  // Some kills must land in a large commit (the O_DIRECT path of the WAL).
  EXPECT_GT(large_in_flight, 2);

  // Every snapshot listed opens and holds exactly what it held when taken.
  ASSERT_OK_AND_ASSIGN(auto store, OpenStoreAt(path_));
  ExpectNoProblems(*store, "at the end");
  ASSERT_OK_AND_ASSIGN(auto listed, store->ListSnapshots(Branch(*store)));
  ASSERT_EQ(listed.size(), expected.snapshots.size());
  for (const SnapshotInfo& info : listed) {
    auto want = expected.snapshots.find(info.name);
    ASSERT_NE(want, expected.snapshots.end()) << "unknown snapshot " << info.name;
    ASSERT_OK_AND_ASSIGN(auto fs, store->OpenFilesystem(View{info.branch, info.version}));
    EXPECT_TRUE(fs->read_only());
    EXPECT_TRUE(ReadFiles(*fs) == want->second) << "snapshot " << info.name << " differs";
  }
}

}  // namespace
}  // namespace strata
