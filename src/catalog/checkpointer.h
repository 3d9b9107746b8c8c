// Checkpointer: copies the WAL back into the store file on a background
// thread, so that no commit pays for a checkpoint.
//
// SQLite's default runs a checkpoint inside whichever commit leaves more
// than 1,000 pages in the WAL: that commit then reads every page back,
// writes it into the database and syncs both files before returning. Here
// the writer connection reports each commit's WAL size (Committed), and a
// thread with its own connection copies the WAL back when the writer pauses:
// once the WAL holds kIdleFrames and the writer has been idle for kIdleDelay
// (nobody held it: a flush of many megabytes between two commits is not a
// pause), or at once when it reaches kMaxFrames. Each round is a PASSIVE checkpoint, which
// moves the bulk while writers and readers carry on, then a RESTART one,
// which waits for the writer lock between two commits, copies the few frames
// committed meanwhile and makes the next commit start the WAL from the
// beginning. (A passive checkpoint alone never lets a busy writer restart the
// WAL, which would then grow without bound.) So a burst of writes is written
// once while it lasts and copied into the store when it is over; a writer
// that never pauses is slowed to the checkpoint's pace past kMaxFrames.
// journal_size_limit cuts the WAL file back after a restart. The thread
// runs at a lower CPU priority than the request threads.
//
// Low on disk space (less free than kMaxFrames of WAL would take), every
// commit is copied back before the next write transaction starts
// (CatchUp, called by Db::Writer), and the WAL file is truncated to zero
// bytes. Committed pages sit in the WAL until a checkpoint copies them into
// the store file, which needs as much space again; a WAL holding a long
// burst when the disk fills could then never be copied back, and no write
// would succeed again until that much space was freed. Waking the thread
// after each commit is not enough: it runs at a lower priority, and a
// writer that does not wait for it commits one flush after another into a
// WAL that no checkpoint has reset (measured on a 48 MiB tmpfs: up to 30
// MiB of WAL and nothing copied back when the disk filled). So when the
// disk fills, the WAL holds no more than the last commit (if there was no
// room left to copy it back) and the transaction that failed; the next
// checkpoint after space is freed gives the WAL file's space back.
#ifndef STRATA_CATALOG_CHECKPOINTER_H_
#define STRATA_CATALOG_CHECKPOINTER_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "sql/database.h"
#include "strata/status.h"

namespace strata::catalog {

class Checkpointer {
 public:
  static constexpr int kIdleFrames = 1024;       // 4 MiB of 4 KiB pages
  static constexpr int kMaxFrames = 262144;      // 1 GiB
  static constexpr std::chrono::milliseconds kIdleDelay{200};
  static constexpr uint64_t kLowSpaceBytes = uint64_t{kMaxFrames} * 4096;
  static constexpr std::chrono::milliseconds kSpaceCheckInterval{100};

  // Opens its own connection to `path` and starts the thread.
  static Result<std::unique_ptr<Checkpointer>> Start(const std::string& path);
  // Stops the thread (a checkpoint in progress completes first).
  ~Checkpointer();

  // Called after every commit with the number of frames in the WAL.
  void Committed(int wal_frames);
  // Whether a finished checkpoint round covers every commit reported so far
  // (for tests, which wait for it instead of for a quiet moment).
  bool CaughtUp();
  // Called when the writer connection is taken (true) and given back (false).
  void WriterBusy(bool busy);
  // Low on space, with commits that no checkpoint has covered yet: copies
  // the WAL into the store file and truncates it, on the calling thread,
  // before returning (a checkpoint in progress on the thread is waited for
  // first). Otherwise returns at once. Errors (a reader still on the WAL, a
  // full disk) are not reported: the WAL keeps the data, and the next
  // commit makes the next call try again. Call it before taking the writer
  // connection, holding no transaction: the checkpoint waits for the writer
  // lock and for readers to leave the WAL. Thread-safe.
  void CatchUp();
  // Copies every commit into the store file and truncates the WAL to zero
  // bytes, on the calling thread, now (after gc: the file then shrinks to
  // the size of its last commit). Busy if a reader kept the WAL in use. Call
  // it holding no transaction. Thread-safe.
  Status CheckpointNow();

 private:
  Checkpointer(std::unique_ptr<sql::Connection> conn, std::string dir)
      : conn_(std::move(conn)), dir_(std::move(dir)) {}
  void Run();
  // One checkpoint on conn_, with conn_mu_ held: PASSIVE then RESTART, or
  // TRUNCATE when `truncate` (low on space: the WAL file gives its space back).
  void Checkpoint(bool truncate);
  // Whether the store's file system has less than kLowSpaceBytes free
  // (statvfs, at most once per kSpaceCheckInterval). Called with mu_ held.
  bool LowOnSpace(std::chrono::steady_clock::time_point now);

  // Lock order: conn_mu_ before mu_; mu_ is never held during a checkpoint.
  std::mutex conn_mu_;
  std::unique_ptr<sql::Connection> conn_;  // guarded by conn_mu_
  const std::string dir_;                  // the directory of the store file
  std::mutex mu_;
  uint64_t commits_ = 0;       // guarded by mu_; commits reported so far
  uint64_t checkpointed_ = 0;  // guarded by mu_; commits covered by a finished checkpoint
  std::condition_variable wake_;
  int wal_frames_ = 0;  // guarded by mu_; latest reported size
  std::chrono::steady_clock::time_point last_write_;  // guarded by mu_; last commit or release
  bool writer_busy_ = false;  // guarded by mu_
  bool stop_ = false;   // guarded by mu_
  bool low_space_ = false;  // guarded by mu_
  std::chrono::steady_clock::time_point space_checked_;  // guarded by mu_
  std::thread thread_;
};

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_CHECKPOINTER_H_
