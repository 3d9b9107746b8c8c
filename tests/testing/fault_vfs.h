// FaultVfs: a test-only SQLite VFS over the default (unix) VFS that injects
// I/O failures and simulates power loss, for the store's fault-injection
// tests.
//
// Where it sits. Every store connection opens through the WAL-gathering
// shim (sql/wal_buffer_vfs.cc), which wraps whatever VFS is the default
// when it registers, on the first Connection::Open of the process. So
// FaultVfs::Install() registers this VFS as the default, and must run
// before any store is opened in the process: from then on the layering is
// SQLite -> shim -> FaultVfs -> unix, and the shim's writes (including its
// O_DIRECT writes, which reach us through sql::SetWalDirectWriteHook) are
// seen here. Install checks that order and fails loudly otherwise.
//
// What it does, for "tracked" files only (names starting with the prefix
// given to Reset, e.g. "/tmp/x/store.db" covers the store, its -wal and
// -journal; every other file passes straight through):
//  - counts writes and syncs, by file kind;
//  - fails the Nth write or sync (of one kind of file, or of any) with an
//    I/O error or "disk full", once or from then on;
//  - in power-loss mode keeps every write (and truncation) in memory until
//    the file is synced: reads, sizes and other handles of the same file see
//    the pending bytes (as the page cache would), xSync applies them to the
//    real file and syncs it. Crash() then drops what was not synced (or, if
//    torn, keeps a random subset of it, as a disk may) and makes every later
//    I/O on tracked files fail, so the process can close its handles; after
//    Reset a fresh open sees only what reached the real files.
//
// Thread-safe: one mutex guards all state; it is held across the real I/O
// of tracked files (tests are small), never across locking calls.
#ifndef STRATA_TESTS_TESTING_FAULT_VFS_H_
#define STRATA_TESTS_TESTING_FAULT_VFS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace strata::testing {

enum class FileKind { kMainDb, kWal, kJournal, kOther };
inline constexpr int kFileKinds = 4;

enum class IoOp { kWrite, kSync };

// How a failed operation fails: EIO (SQLITE_IOERR_WRITE / SQLITE_IOERR_FSYNC)
// or ENOSPC (SQLITE_FULL).
enum class IoError { kEio, kNoSpace };

struct Fault {
  IoOp op = IoOp::kWrite;
  // 1-based index among the operations of type `op` on tracked files of
  // kind `kind` (nullopt: of every kind), counted since Reset.
  uint64_t nth = 1;
  std::optional<FileKind> kind;
  IoError error = IoError::kEio;
  // false: only the Nth fails. true: the Nth and every later matching
  // operation fail until ClearFault (a disk that stays full).
  bool sticky = false;
  // Instead of failing, Crash() happens just before the Nth matching
  // operation: a power cut in power-loss mode; otherwise the death of the
  // process (kill -9): what was written stays (the page cache survives),
  // nothing more reaches the files.
  bool crash = false;
  // With crash: keep a random subset (seeded) of the unsynced writes.
  bool torn = false;
  uint64_t torn_seed = 0;
};

struct IoCounters {
  uint64_t writes[kFileKinds] = {};
  uint64_t syncs[kFileKinds] = {};
  uint64_t direct_writes = 0;  // of writes[kWal]: the shim's O_DIRECT writes
  uint64_t failed = 0;  // operations failed by a fault or after a crash
  uint64_t Writes() const { return writes[0] + writes[1] + writes[2] + writes[3]; }
  uint64_t Syncs() const { return syncs[0] + syncs[1] + syncs[2] + syncs[3]; }
};

class FaultVfs {
 public:
  // Registers the VFS as SQLite's default (once) and returns it. Must be
  // called before the first store connection of the process; aborts if the
  // WAL shim is already registered over another VFS.
  static FaultVfs& Install();

  // Forgets every fault, counter, pending write and crash, and tracks the
  // files whose names start with `prefix` from now on. In power-loss mode
  // tracked writes are held until synced. Unless `real_syncs`, a sync of a
  // tracked file does not reach the disk (the machine never really loses
  // power in a test, and real fsyncs would dominate its run time). Call
  // with no tracked file open.
  void Reset(std::string prefix, bool power_loss_mode, bool real_syncs = false);
  void SetFault(const Fault& fault);
  // No more injected failures (a crash stays until Reset).
  void ClearFault();
  // The power goes out now (see the header comment); outside power-loss
  // mode, the process dies now: later I/O fails, nothing is dropped.
  void Crash(bool torn = false, uint64_t seed = 0);

  IoCounters counters() const;
  bool fault_fired() const;
  bool crashed() const;

  struct State;

 private:
  FaultVfs() = default;
};

const char* FileKindName(FileKind kind);

}  // namespace strata::testing

#endif  // STRATA_TESTS_TESTING_FAULT_VFS_H_
