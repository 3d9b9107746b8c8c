// CutGate: what the FUSE callbacks do differently while FuseServer::Cut
// takes a consistent cut of the mount (see fuse_server.h).
//
// During a cut:
//  - OPEN and CREATE from any process but the drainer are held: the request
//    is queued (no thread waits) and runs when the cut ends. So the set of
//    open files, which are the only ones that can hold unsent writes, cannot
//    grow while their writes are being collected.
//  - The drainer's FSYNCs are held unanswered: the kernel holds each file's
//    inode lock until the answer, so no write(2) to that file can start
//    until the cut ends. They are answered when the cut ends, after the
//    commit that made their data durable.
// Every other request runs as usual (holding one that a process sends while
// holding an inode lock could deadlock the cut).
#ifndef STRATA_FUSE_CUT_GATE_H_
#define STRATA_FUSE_CUT_GATE_H_

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "fuse/fuse_api.h"
#include "strata/types.h"

namespace strata::fuse {

class CutGate {
 public:
  CutGate();
  ~CutGate();
  CutGate(const CutGate&) = delete;
  CutGate& operator=(const CutGate&) = delete;

  // --- Callbacks (any worker thread).
  // OPEN and CREATE: true if the request may run now, and then Exit() must
  // follow it; false if it was queued: `make_later()` (called only then)
  // gives what runs when the cut ends.
  template <typename MakeLater>
  bool Enter(fuse_req_t req, MakeLater&& make_later) {
    std::scoped_lock lock(mu_);
    if (active_ && !IsDrainer(fuse_req_ctx(req)->pid)) {
      queued_.emplace_back(make_later());
      return false;
    }
    ++running_;
    return true;
  }
  void Exit();
  // FSYNC: true if the request was the drainer's, and then it was held
  // (during a cut) or answered.
  bool HoldFsync(fuse_req_t req, InodeId ino);
  // WRITE: counted, so that a cut can tell a slow drain (the kernel still
  // sending a file's pages) from a stuck one.
  void NoteWrite() { writes_.fetch_add(1, std::memory_order_relaxed); }

  // --- FuseServer::Cut (one thread at a time).
  // Starts holding: OPEN and CREATE from now on wait for End.
  void Begin(pid_t drainer);
  // Waits until no OPEN or CREATE that came before Begin is still running.
  void WaitForRunning();
  // Readable after each held FSYNC (for poll); Held() then says which.
  int wake_fd() const { return wake_fd_; }
  // Consumes wake_fd's count and returns the inodes whose FSYNC is held.
  std::set<InodeId> Held();
  // WRITE requests served so far.
  uint64_t writes() const { return writes_.load(std::memory_order_relaxed); }
  // Stops holding. A resumer thread then answers every held FSYNC with
  // `error` (0 for success) and runs the queued requests, so that the cut's
  // caller is answered without waiting for them. Until they have run, the
  // queued requests count as running: the next WaitForRunning waits for them.
  void End(int error);
  // Waits until the work handed over by End is done. Call before the FUSE
  // session it answers goes away.
  void JoinResumer();

 private:
  // Whether `pid` (a thread id, as FUSE reports the caller) is a thread of
  // the drainer.
  bool IsDrainer(pid_t pid) const;

  std::mutex mu_;
  std::condition_variable idle_;
  bool active_ = false;                      // guarded by mu_
  pid_t drainer_ = 0;                        // guarded by mu_
  int running_ = 0;                          // OPEN/CREATE in progress; guarded by mu_
  std::vector<std::function<void()>> queued_;  // guarded by mu_
  std::vector<std::pair<InodeId, fuse_req_t>> held_;  // guarded by mu_
  const int wake_fd_;  // an eventfd
  std::atomic<uint64_t> writes_{0};
  // One End's held FSYNCs and queued requests, and the thread that answers
  // and runs them; only End and JoinResumer touch these.
  std::vector<std::pair<InodeId, fuse_req_t>> resuming_held_;
  std::vector<std::function<void()>> resuming_;
  std::thread resumer_;
};

}  // namespace strata::fuse

#endif  // STRATA_FUSE_CUT_GATE_H_
