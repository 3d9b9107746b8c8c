// FuseServer: serves one Filesystem at a mount point through libfuse3's
// low-level API with a multi-threaded loop. A thin adapter: each callback
// decodes its request, calls the core, and sends exactly one reply.
#ifndef STRATA_FUSE_FUSE_SERVER_H_
#define STRATA_FUSE_FUSE_SERVER_H_

#include <memory>
#include <string>
#include <vector>

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
  // or already a mount.
  static Result<std::unique_ptr<FuseServer>> Mount(Filesystem& fs, const MountOptions& options);
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
  // Makes the kernel send every write still in its page cache for this mount,
  // and returns once the daemon has received them all. Call while Run serves
  // requests on other threads.
  Status DrainKernelCache();

 private:
  FuseServer() = default;
  struct fuse_session* session_ = nullptr;
  bool mounted_ = false;
  bool signals_ = false;
  unsigned max_threads_ = 16;
  std::string mountpoint_;
  std::unique_ptr<struct ServerState> state_;
};

}  // namespace strata::fuse

#endif  // STRATA_FUSE_FUSE_SERVER_H_
