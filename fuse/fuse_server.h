// FuseServer: serves one Filesystem at a mount point through libfuse3's
// low-level API with a multi-threaded loop. A thin adapter: each callback
// decodes its request, calls the core, and sends exactly one reply.
#ifndef STRATA_FUSE_FUSE_SERVER_H_
#define STRATA_FUSE_FUSE_SERVER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fuse/kernel_drainer.h"
#include "strata/filesystem.h"
#include "strata/status.h"

struct fuse_session;

namespace strata::fuse {

struct MountOptions {
  std::string mountpoint;
  // Extra "-o" options for the kernel and libfuse (allow_other, ...).
  std::vector<std::string> options;
  // Kernel attribute and entry cache lifetime, in seconds. Only this daemon
  // changes the tree, so long timeouts are safe.
  double timeout_seconds = 60.0;
  unsigned max_threads = 16;
  // Name shown in /proc/mounts.
  std::string fsname = "strata";
};

class FuseServer {
 public:
  // Mounts `fs` (which must outlive the server) at options.mountpoint. Fails
  // with a clear message when the mount point is missing, not a directory,
  // or already a mount. `drainer` serves Cut; if null, one is started here
  // (better: start it while the process has no other threads, see
  // KernelDrainer::Start).
  static Result<std::unique_ptr<FuseServer>> Mount(Filesystem& fs, const MountOptions& options,
                                                   std::unique_ptr<KernelDrainer> drainer = nullptr);
  ~FuseServer();  // unmounts
  FuseServer(const FuseServer&) = delete;
  FuseServer& operator=(const FuseServer&) = delete;

  // Serves requests until unmounted (fusermount -u, umount) or a signal set
  // by InstallSignalHandlers (SIGINT, SIGTERM, SIGHUP) arrives.
  Status Run();
  // Makes Run return (from any thread).
  void Exit();
  // SIGINT/SIGTERM/SIGHUP end Run; call before Run from the serving process.
  Status InstallSignalHandlers();
  // Runs `commit` at one instant of the mount, so that what it commits (a
  // snapshot, a fork) is a state all the mount's files really had at once:
  //  - every write(2) that returned before Cut was called has reached the
  //    filesystem (the kernel's write-back cache is drained), and so has
  //    every change that any of them caused to follow;
  //  - no write to an open file, and no open or create, can start until
  //    `commit` has returned; other requests keep being served.
  // (Writes through a shared writable mmap are not ordered by this.)
  // Call while Run serves requests on other threads; cuts run one at a time.
  // Fails with Busy, without calling `commit`, when the kernel's cache could
  // not be drained within `timeout`. Returns what `commit` returned.
  Status Cut(const std::function<Status()>& commit,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  FuseServer() = default;
  struct fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool signals_ = false;
  unsigned max_threads_ = 16;
  std::string mountpoint_;
  std::unique_ptr<struct ServerState> state_;
  // How a round of a cut ended: every open file held (or gone), or to be
  // tried again because nothing happened for a while, or because a file
  // was created too recently for the kernel to open it by handle.
  enum class Round { kHeld, kStalled, kRaced };
  // Starts the drainer's fsync of every open file and waits until each is
  // held by the gate or has returned. Busy at `deadline`.
  Result<Round> HoldOpenFiles(std::chrono::steady_clock::time_point deadline,
                              std::chrono::milliseconds stall);
  bool IsOpen(InodeId ino);
  // Waits for the end of the last cut's fsyncs (answered when it ended).
  Status FinishFsyncBatch(std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<KernelDrainer> drainer_;
  std::mutex cut_mu_;         // one Cut at a time
  bool fsync_batch_ = false;  // the drainer has not ended the last batch; guarded by cut_mu_
};

}  // namespace strata::fuse

#endif  // STRATA_FUSE_FUSE_SERVER_H_
