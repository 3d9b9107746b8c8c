// The mount daemon: serves one session of a store through FUSE, with its
// control socket (src/control), until the session is unmounted. The CLI, and
// any other caller of the library, start, lease and stop mounts through the
// functions here.
#ifndef STRATA_DAEMON_DAEMON_H_
#define STRATA_DAEMON_DAEMON_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/control.h"
#include "strata/status.h"

namespace strata::daemon {

struct DaemonOptions {
  std::string store_path;  // an existing store
  std::string session;
  std::string mountpoint;  // an existing empty directory, unless ephemeral
  // Extra "-o" options for the kernel and libfuse (allow_other, ...).
  std::vector<std::string> mount_options;
  // Started for `strata run`: create the mount point, unmount and exit when
  // the last lease ends (or when no lease came soon after the start), and
  // remove the mount point.
  bool ephemeral = false;
  // How often buffered writes of files that stay open are committed.
  std::chrono::milliseconds flush_period{2000};
};

// Mounts options.session at options.mountpoint and serves it until it is
// unmounted (`strata umount`, umount(8)) or SIGINT, SIGTERM or SIGHUP
// arrives; then commits every buffered write durably and returns. `ready` is
// called once: with OK when the mount is up, or with the error that
// prevented it. Call from the thread that should serve; blocks.
Status Serve(const DaemonOptions& options, const std::function<void(const Status&)>& ready);

// Forks a daemon that serves in the background (in its own session; once
// mounted, its standard streams on /dev/null and its LogLine()s appended to
// DaemonLogPath, made at the first) and returns its pid once the session is
// mounted, or the error the daemon met while mounting. Best called while the
// caller has no other threads.
Result<pid_t> Spawn(const DaemonOptions& options);

// "STORE-daemon.log": where background daemons of the store at `store_path`
// write what they have to say (base/log.h).
std::string DaemonLogPath(const std::string& store_path);

// Unmounts the Strata mount at `mountpoint` and waits until its daemon has
// closed the store (so that the caller can open it again at once). A daemon
// that was killed leaves a dead mount: it is detached. Not root: through
// fusermount3, as the mount's owner. Busy while a process uses the mount.
Status Unmount(const std::string& mountpoint);

// A lease on a mount of `session`: the daemon that serves it if there is one,
// else an ephemeral one started now at control::RunMountPath, which unmounts
// when its last lease ends.
Result<std::unique_ptr<control::Lease>> LeaseMount(const std::string& store_path,
                                                   const std::string& session);

}  // namespace strata::daemon

#endif  // STRATA_DAEMON_DAEMON_H_
