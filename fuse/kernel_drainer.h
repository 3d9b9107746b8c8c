// KernelDrainer: a helper process that makes the kernel send the writes it
// still caches for a FUSE mount (by fsync of each open file), so that no thread of the
// daemon ever waits on its own mount.
//
// Why a process: a thread blocked in fsync (or syncfs) on the daemon's own
// mount waits for replies only the daemon can send. If the daemon is killed
// meanwhile, that thread can never return, the process never finishes
// exiting, and its /dev/fuse descriptor (whose release is what aborts the
// connection) stays open: the daemon and every process on the mount wait in
// D state until someone aborts the connection through fusectl. The helper
// holds no /dev/fuse descriptor (it is forked before the mount exists and
// closes everything it inherited but its socket), so killing the daemon
// always aborts the connection, which ends the helper's waits too.
#ifndef STRATA_FUSE_KERNEL_DRAINER_H_
#define STRATA_FUSE_KERNEL_DRAINER_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "strata/status.h"
#include "strata/types.h"

namespace strata::fuse {

class KernelDrainer {
 public:
  // Forks the helper for the mount at `mountpoint` (which need not be
  // mounted yet). Call before the mount is made, ideally while the process
  // has no other threads. The helper exits when this object is destroyed or
  // when its parent dies.
  static Result<std::unique_ptr<KernelDrainer>> Start(const std::string& mountpoint);
  ~KernelDrainer();
  KernelDrainer(const KernelDrainer&) = delete;
  KernelDrainer& operator=(const KernelDrainer&) = delete;

  pid_t pid() const { return pid_; }
  // Readable when the helper has sent something (for poll).
  int fd() const { return fd_; }

  // Starts, on the helper, one thread per inode that opens the inode by
  // handle and fsyncs it; returns at once. For each inode the helper later
  // sends one "finished" event. A batch is one or more StartFsyncs and then
  // EndBatch, after which the helper sends one "done" event once every
  // fsync of the batch has returned.
  Status StartFsyncs(const std::vector<InodeId>& inodes);
  Status EndBatch();

  struct Event {
    enum Kind { kFinished, kDone } kind;
    InodeId ino = 0;  // kFinished
    int error = 0;  // kFinished: errno of the open or fsync, 0 for none
  };
  // The next event, waiting at most `timeout`: Busy when none came, IoError
  // when the helper is gone.
  Result<Event> Next(std::chrono::milliseconds timeout);

 private:
  KernelDrainer(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  const pid_t pid_;
  const int fd_;
};

}  // namespace strata::fuse

#endif  // STRATA_FUSE_KERNEL_DRAINER_H_
