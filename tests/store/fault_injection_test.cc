// Fault injection: a deterministic workload through the public API (files,
// appends, renames, unlinks, truncation, fsync, Store::Sync, snapshots, a
// fork, key-value updates, tool calls, and one file large enough for the
// WAL shim's O_DIRECT path) is run once to count its I/O, then again with a
// fault at points swept across that range, in each mode: a write failing
// with EIO, the disk full (ENOSPC) from a write on, a sync failing with EIO,
// a power cut (just before a sync, or at a write with a random part of the
// unsynced writes surviving), and the death of the process (kill -9: what
// was written stays, nothing more is). Each time the operations must fail
// with a Status (no crash, no hang), the store must close, reopen with the
// plain VFS and pass its integrity check, and what the durability contract
// promises must be there:
//  - what a successful Fsync (that file's bytes, and every name, key and
//    call committed before it) or Store::Sync (everything) made durable,
//    unless the workload changed it afterwards;
//  - every snapshot, fork and session that the workload saw succeed (they
//    commit without a sync: across a power cut only when a durable commit
//    followed), and every snapshot found at all must hold exactly the state
//    the workload logged when it was taken;
//  - batched changes (names, keys, calls) only once a durable commit
//    followed: a kill may take the open batch;
//  - after an I/O error or a full disk, the same process goes on: once
//    the fault is cleared, Sync succeeds (the first one may report a batch
//    of changes lost to the fault, once), and then every session's head is
//    exactly what the workload acknowledged (but for what the failed step
//    touched) unless a loss was reported; new writes are durable.
// The I/O goes through testing::FaultVfs, under the store's WAL shim.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sql/database.h"
#include "store/fault_workload.h"
#include "testing/fault_vfs.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using fault_test::Bytes;
using fault_test::Span;
using fault_test::Workload;
using testing::Fault;
using testing::FaultVfs;
using testing::FileKind;
using testing::IoError;
using testing::IoOp;
using testing::TempDir;

StoreOptions Options(const std::string& path) {
  StoreOptions options;
  options.path = path;
  return options;
}

// kProcessKill: the process dies (kill -9) at an I/O; the page cache keeps
// what it wrote, nothing more reaches the files.
enum class Mode { kNone, kWriteEio, kWriteFull, kSyncEio, kPowerLoss, kProcessKill };

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kWriteEio: return "write-EIO";
    case Mode::kWriteFull: return "write-ENOSPC";
    case Mode::kSyncEio: return "sync-EIO";
    case Mode::kPowerLoss: return "power-loss";
    case Mode::kProcessKill: return "process-kill";
    case Mode::kNone: return "no fault";
  }
  return "?";
}

std::string Describe(const Fault& f) {
  std::string out = f.op == IoOp::kWrite ? "write " : "sync ";
  out += std::to_string(f.nth);
  out += f.kind ? std::string(" of ") + testing::FileKindName(*f.kind) : " of any file";
  if (f.crash) out += f.torn ? " (power cut, torn)" : " (power cut)";
  if (f.sticky) out += " (and every later one)";
  return out;
}


class FaultInjectionTest : public ::testing::Test {
 protected:
  FaultInjectionTest() : vfs_(FaultVfs::Install()) {}

  struct Outcome {
    bool fired = false;
    std::string failed_step;  // empty if the workload completed
    bool batch_lost = false;  // a background batch commit failed
    int gaps = 0;             // snapshots that missed a lost batch's changes
    testing::IoCounters counters;
  };

  // One run: a fresh store, the workload with `fault` (if any), the
  // recovery checks. `crash_at_end`: cut the power once the workload is
  // over (if the fault did not).
  Outcome RunOnce(const std::optional<Fault>& fault, Mode mode, bool crash_at_end,
                  const std::string& label) {
    SCOPED_TRACE(label);
    Outcome out;
    TempDir dir;
    const std::string path = dir.File("store.db");
    const bool power_loss = mode == Mode::kPowerLoss;
    const bool dies = power_loss || mode == Mode::kProcessKill;
    vfs_.Reset(path, power_loss);
    if (fault.has_value()) vfs_.SetFault(*fault);
    auto store = Store::Open(Options(path));
    if (!store.ok()) {
      // The fault hit the store's creation: nothing was promised.
      out.fired = vfs_.fault_fired();
      EXPECT_TRUE(out.fired) << store.status().ToString();
      out.failed_step = "open";
      vfs_.Reset(path, false);
      auto again = Store::Open(Options(path));
      EXPECT_TRUE(again.ok()) << "reopen after a failed create: " << again.status().ToString();
      if (again.ok()) {
        auto problems = (*again)->CheckIntegrity();
        EXPECT_TRUE(problems.ok() && problems->empty());
      }
      return out;
    }
    auto workload = std::make_unique<Workload>(**store);
    Status s = workload->Run();
    out.failed_step = s.ok() ? "" : workload->failed_step;
    auto mentions_lost_batch = [](const Status& st) {
      return st.message().find("batch of changes") != std::string::npos;
    };
    // Only a durable commit (fsync, Sync) reports lost changes, once: when
    // the workload's own failed Fsync or Sync did, the loss was reported
    // there; otherwise the first Sync after the fault must report it.
    bool batch_lost = !s.ok() && workload->failed_durable && mentions_lost_batch(s);
    bool committed_survives = !power_loss;
    std::optional<std::string> after_content;
    bool synced_all = false;  // a Sync succeeded after the workload
    if (!dies && fault.has_value()) {
      // The fault is over (the disk has room again): the same process goes on.
      vfs_.ClearFault();
      Status sync = (*store)->Sync();
      if (!sync.ok()) {
        // The first reports a batch lost since the last durable commit.
        EXPECT_TRUE(mentions_lost_batch(sync)) << sync.ToString();
        batch_lost = true;
        sync = (*store)->Sync();
      }
      synced_all = sync.ok();
      EXPECT_TRUE(sync.ok()) << "Sync after the fault was cleared: " << sync.ToString();
      if (sync.ok()) {
        Status more = [&]() -> Status {
          ASSIGN_OR_RETURN(SessionInfo info, (*store)->CreateSession("after-fault"));
          ASSIGN_OR_RETURN(auto fs, (*store)->OpenFilesystem(View{info.branch, kHead}));
          ASSIGN_OR_RETURN(Attr a, fs->Create(kRootIno, "after", 0644, {}));
          std::string data = Bytes(99, 30000);
          RETURN_IF_ERROR(fs->Write(a.ino, 0, Span(data)).status());
          RETURN_IF_ERROR(fs->Fsync(a.ino));
          RETURN_IF_ERROR(fs->Release(a.ino));
          after_content = data;
          return Status::Ok();
        }();
        EXPECT_TRUE(more.ok()) << "writing after the fault was cleared: " << more.ToString();
      }
    }
    if (!s.ok()) {
      // Errors must be I/O errors or a full disk; after a lost batch, also
      // NotFound for what vanished with it (a file, a tool call).
      const bool expected = s.code() == Code::kIoError || s.code() == Code::kNoSpace ||
                            (batch_lost && s.code() == Code::kNotFound);
      EXPECT_TRUE(expected) << "step " << workload->failed_step << ": " << s.ToString();
      EXPECT_TRUE(vfs_.fault_fired() || vfs_.crashed()) << "failed without a fault: "
                                                        << s.ToString();
    }
    out.batch_lost = batch_lost;
    if (dies && crash_at_end) vfs_.Crash();
    // Close everything (with the power out, every I/O fails meanwhile).
    workload->CloseFilesystems();
    store->reset();
    out.fired = vfs_.fault_fired() || vfs_.crashed();
    out.counters = vfs_.counters();
    // Power back on; the plain VFS from here.
    vfs_.Reset(dir.File("none/"), false);
    auto reopened = Store::Open(Options(path));
    EXPECT_TRUE(reopened.ok()) << "reopen: " << reopened.status().ToString();
    if (!reopened.ok()) return out;
    fault_test::Verify(**reopened, *workload, committed_survives, batch_lost, synced_all && !batch_lost,
           &out.gaps, label);
    if (after_content.has_value()) {
      Status after = [&]() -> Status {
        ASSIGN_OR_RETURN(SessionInfo info, (*reopened)->GetSession("after-fault"));
        ASSIGN_OR_RETURN(auto fs, (*reopened)->OpenFilesystem(View{info.branch, kHead}));
        ASSIGN_OR_RETURN(Attr attr, fs->Resolve("/after"));
        std::string got(attr.size, '\0');
        ASSIGN_OR_RETURN(size_t n, fs->Read(attr.ino, 0, {reinterpret_cast<uint8_t*>(got.data()),
                                                          got.size()}));
        got.resize(n);
        if (got != *after_content) return Corruption("different bytes");
        return Status::Ok();
      }();
      EXPECT_TRUE(after.ok()) << "the write after the fault was cleared is not durable: "
                              << after.ToString();
    }
    return out;
  }

  // Evenly spread points in [1, n], at most `max` of them.
  static std::vector<uint64_t> Points(uint64_t n, uint64_t max) {
    std::vector<uint64_t> out;
    if (n <= max) {
      for (uint64_t i = 1; i <= n; ++i) out.push_back(i);
      return out;
    }
    for (uint64_t i = 0; i < max; ++i) out.push_back(1 + i * (n - 1) / (max - 1));
    return out;
  }

  // Counts the workload's I/O, then runs it with a fault at each point of
  // the sweep for `mode`, checking every recovery.
  void Sweep(Mode mode) {
    const auto start = std::chrono::steady_clock::now();
    Outcome base = RunOnce(std::nullopt, mode, false, "counting run");
    ASSERT_EQ(base.failed_step, "");
    const testing::IoCounters& c = base.counters;
    std::vector<Fault> faults;
    auto add = [&](IoOp op, std::optional<FileKind> kind, uint64_t count, uint64_t max) {
      for (uint64_t nth : Points(count, max)) {
        Fault f;
        f.op = op;
        f.nth = nth;
        f.kind = kind;
        f.error = mode == Mode::kWriteFull ? IoError::kNoSpace : IoError::kEio;
        f.sticky = mode == Mode::kWriteFull;
        faults.push_back(f);
      }
    };
    const auto kind = [](FileKind k) { return static_cast<int>(k); };
    switch (mode) {
      case Mode::kWriteEio:
      case Mode::kWriteFull:
        add(IoOp::kWrite, FileKind::kWal, c.writes[kind(FileKind::kWal)], kWalWritePoints);
        add(IoOp::kWrite, FileKind::kMainDb, c.writes[kind(FileKind::kMainDb)], kDbWritePoints);
        add(IoOp::kWrite, FileKind::kJournal, c.writes[kind(FileKind::kJournal)], kDbWritePoints);
        break;
      case Mode::kSyncEio:
        add(IoOp::kSync, std::nullopt, c.Syncs(), kSyncPoints);
        break;
      case Mode::kNone:
        break;
      case Mode::kProcessKill:
        // Dead at a write (before it) or at a sync: every commit before
        // survives (the page cache holds it), batched changes may not.
        add(IoOp::kWrite, FileKind::kWal, c.writes[kind(FileKind::kWal)], kWalWritePoints);
        add(IoOp::kWrite, FileKind::kMainDb, c.writes[kind(FileKind::kMainDb)], kDbWritePoints);
        add(IoOp::kSync, std::nullopt, c.Syncs(), kSyncPoints);
        for (Fault& f : faults) f.crash = true;
        break;
      case Mode::kPowerLoss:
        // At each sync: the power goes just before it, so exactly the syncs
        // before it took effect. Between two syncs every write point is
        // the same cut, except for which unsynced writes a disk lets
        // through: the torn cuts at writes try random subsets of them.
        add(IoOp::kSync, std::nullopt, c.Syncs(), kSyncPoints);
        for (Fault& f : faults) f.crash = true;
        add(IoOp::kWrite, FileKind::kWal, c.writes[kind(FileKind::kWal)], kWalWritePoints);
        add(IoOp::kWrite, FileKind::kMainDb, c.writes[kind(FileKind::kMainDb)], kDbWritePoints);
        for (Fault& f : faults) {
          if (f.op == IoOp::kWrite) {
            f.crash = true;
            f.torn = true;
            f.torn_seed = f.nth;
          }
        }
        break;
    }
    int fired = 0, lost = 0, gaps = 0;
    std::map<std::string, int> failed_steps;
    for (const Fault& f : faults) {
      const std::string label = std::string(ModeName(mode)) + " at " + Describe(f);
      Outcome out = RunOnce(f, mode, false, label);
      fired += out.fired;
      lost += out.batch_lost;
      gaps += out.gaps;
      failed_steps[out.failed_step.empty() ? "none" : out.failed_step]++;
      if (HasFatalFailure()) return;
    }
    if (mode == Mode::kPowerLoss || mode == Mode::kProcessKill) {
      RunOnce(std::nullopt, mode, true, "dead after the workload");
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string steps;
    for (const auto& [step, n] : failed_steps) steps += " [" + step + "]x" + std::to_string(n);
    printf("%s: workload made %llu writes (wal %llu, of them %llu O_DIRECT; db %llu; journal "
           "%llu) and %llu syncs; %zu fault points, %d fired, %d lost a batch, %d snapshots missed "
           "lost changes, %.1f s. Failed steps:%s\n",
           ModeName(mode), static_cast<unsigned long long>(c.Writes()),
           static_cast<unsigned long long>(c.writes[kind(FileKind::kWal)]),
           static_cast<unsigned long long>(c.direct_writes),
           static_cast<unsigned long long>(c.writes[kind(FileKind::kMainDb)]),
           static_cast<unsigned long long>(c.writes[kind(FileKind::kJournal)]),
           static_cast<unsigned long long>(c.Syncs()), faults.size(), fired, lost, gaps, seconds,
           steps.c_str());
    EXPECT_GT(fired, static_cast<int>(faults.size()) / 2) << "most fault points were not reached";
  }

  static constexpr uint64_t kWalWritePoints = 60;
  static constexpr uint64_t kDbWritePoints = 12;
  static constexpr uint64_t kSyncPoints = 60;

  FaultVfs& vfs_;
};

// The seam itself, on a plain SQLite database: a power cut keeps exactly
// the synced commits, and injected errors reach the caller as Status.
TEST_F(FaultInjectionTest, FaultVfsLosesUnsyncedCommitsOnPowerLoss) {
  TempDir dir;
  const std::string path = dir.File("plain.db");
  vfs_.Reset(path, /*power_loss_mode=*/true);
  {
    ASSERT_OK_AND_ASSIGN(auto conn, sql::Connection::Open(path, sql::OpenMode::kReadWriteCreate));
    ASSERT_OK(conn->Exec("PRAGMA journal_mode = WAL"));
    ASSERT_OK(conn->Exec("PRAGMA synchronous = FULL"));
    ASSERT_OK(conn->Exec("CREATE TABLE t(x); INSERT INTO t VALUES (1)"));
    ASSERT_OK(conn->Exec("PRAGMA synchronous = NORMAL"));
    ASSERT_OK(conn->Exec("INSERT INTO t VALUES (2)"));  // committed, not synced
    // Another connection sees the unsynced commit (the "page cache").
    ASSERT_OK_AND_ASSIGN(auto other, sql::Connection::Open(path, sql::OpenMode::kQueryOnly));
    ASSERT_OK_AND_ASSIGN(auto count, other->Prepare("SELECT count(*) FROM t"));
    ASSERT_OK_AND_ASSIGN(bool row, count.Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(count.Int(0), 2);
    vfs_.Crash();
    EXPECT_FALSE(conn->Exec("INSERT INTO t VALUES (3)").ok());
  }
  vfs_.Reset(dir.File("none/"), false);
  ASSERT_OK_AND_ASSIGN(auto conn, sql::Connection::Open(path, sql::OpenMode::kReadWriteCreate));
  ASSERT_OK_AND_ASSIGN(auto sum, conn->Prepare("SELECT group_concat(x) FROM t"));
  ASSERT_OK_AND_ASSIGN(bool row, sum.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(sum.Text(0), "1");
}

TEST_F(FaultInjectionTest, FaultVfsErrorsBecomeStatus) {
  TempDir dir;
  const std::string path = dir.File("plain.db");
  vfs_.Reset(path, false);
  ASSERT_OK_AND_ASSIGN(auto conn, sql::Connection::Open(path, sql::OpenMode::kReadWriteCreate));
  ASSERT_OK(conn->Exec("PRAGMA journal_mode = WAL; CREATE TABLE t(x)"));
  Fault full;
  full.kind = FileKind::kWal;
  full.error = IoError::kNoSpace;
  vfs_.SetFault(full);
  EXPECT_CODE(conn->Exec("INSERT INTO t VALUES (1)"), Code::kNoSpace);
  Fault eio;
  eio.op = IoOp::kSync;
  vfs_.SetFault(eio);
  ASSERT_OK(conn->Exec("PRAGMA synchronous = FULL"));
  EXPECT_CODE(conn->Exec("INSERT INTO t VALUES (2)"), Code::kIoError);
  vfs_.ClearFault();
  EXPECT_OK(conn->Exec("INSERT INTO t VALUES (3)"));
  EXPECT_GE(vfs_.counters().failed, 2u);
}

// A batch of acknowledged changes lost to a failed commit, whichever
// operation's commit it was (here most likely the snapshot's, else the
// background committer's), is reported by the next durable commit, once:
// the snapshot itself (durable) or else the Sync after it.
TEST_F(FaultInjectionTest, LostBatchIsReportedByTheNextDurableCommitOnce) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  vfs_.Reset(path, false);
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(Options(path)));
  ASSERT_OK_AND_ASSIGN(SessionInfo info, store->CreateSession("main"));
  ASSERT_OK(store->KvUpdate(info.branch, {{"k", "1"}}));  // batched, acknowledged
  Fault eio;
  eio.kind = FileKind::kWal;
  vfs_.SetFault(eio);
  Status snap = store->Snapshot(info.branch, "s").status();
  vfs_.ClearFault();
  ASSERT_TRUE(vfs_.fault_fired());
  Status sync = store->Sync();
  const Status& report = snap.ok() ? sync : snap;
  EXPECT_FALSE(report.ok()) << "the lost key-value update was not reported";
  EXPECT_NE(report.message().find("batch of changes"), std::string::npos) << report.ToString();
  if (!snap.ok()) EXPECT_OK(sync);  // reported once
  EXPECT_OK(store->Sync());
  EXPECT_CODE(store->KvGet(View{info.branch, kHead}, "k"), Code::kNotFound);
}

// A snapshot holds every change acknowledged before it started: when the
// background committer lost a batch, the next snapshot (a durable commit)
// fails once, reporting the loss, rather than freeze a state without it.
TEST_F(FaultInjectionTest, SnapshotAfterALostBatchReportsItOnce) {
  TempDir dir;
  const std::string path = dir.File("store.db");
  vfs_.Reset(path, false);
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(Options(path)));
  ASSERT_OK_AND_ASSIGN(SessionInfo info, store->CreateSession("main"));
  Fault eio;
  eio.kind = FileKind::kWal;
  vfs_.SetFault(eio);
  ASSERT_OK(store->KvUpdate(info.branch, {{"k", "1"}}));
  // The committer thread commits the batch within 10 ms, and fails.
  for (int i = 0; i < 500 && !vfs_.fault_fired(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(vfs_.fault_fired());
  vfs_.ClearFault();
  // A snapshot is a durable commit: it reports the loss, once, rather than
  // freeze a state without the acknowledged change.
  auto version = store->Snapshot(info.branch, "s");
  EXPECT_FALSE(version.ok()) << "the snapshot succeeded without an acknowledged change";
  ASSERT_OK_AND_ASSIGN(Version again, store->Snapshot(info.branch, "s"));
  EXPECT_CODE(store->KvGet(View{info.branch, again}, "k"), Code::kNotFound);
}

TEST_F(FaultInjectionTest, WorkloadWithoutFaultsKeepsEverything) {
  Outcome out = RunOnce(std::nullopt, Mode::kNone, false, "no fault");
  EXPECT_EQ(out.failed_step, "");
  EXPECT_GT(out.counters.writes[static_cast<int>(FileKind::kWal)], 0u)
      << "the fault VFS does not see the store's writes";
  EXPECT_GT(out.counters.direct_writes, 0u) << "the workload misses the WAL's O_DIRECT path";
}

TEST_F(FaultInjectionTest, WriteEioAtEveryPoint) { Sweep(Mode::kWriteEio); }
TEST_F(FaultInjectionTest, DiskFullAtEveryPoint) { Sweep(Mode::kWriteFull); }
TEST_F(FaultInjectionTest, SyncEioAtEveryPoint) { Sweep(Mode::kSyncEio); }
TEST_F(FaultInjectionTest, PowerLossAtEveryPoint) { Sweep(Mode::kPowerLoss); }
TEST_F(FaultInjectionTest, ProcessKillAtEveryPoint) { Sweep(Mode::kProcessKill); }


}  // namespace
}  // namespace strata
