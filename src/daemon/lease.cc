// LeaseMount: a mount of a session for as long as the caller needs it.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <thread>

#include "daemon/daemon.h"

namespace strata::daemon {

Result<std::unique_ptr<control::Lease>> LeaseMount(const std::string& store,
                                                   const std::string& session) {
  Status last;
  for (int attempt = 0; attempt < 500; ++attempt) {
    auto lease = control::TakeLease(store, session);
    if (lease.ok()) return lease;
    last = lease.status();
    if (last.code() == Code::kNotFound) {
      DaemonOptions a;
      a.store_path = store;
      a.session = session;
      a.mountpoint = control::RunMountPath(store, session);
      a.mount_options = {"allow_other"};  // a sandbox with --userns is another user
      a.ephemeral = true;
      std::error_code ec;
      std::filesystem::create_directories(a.mountpoint, ec);
      // Our own mount point: a mount left by a daemon that was killed is
      // dead (ENOTCONN) and can only be detached.
      struct stat st;
      if (stat(a.mountpoint.c_str(), &st) != 0 && errno == ENOTCONN) {
        umount2(a.mountpoint.c_str(), MNT_DETACH);
      }
      auto spawned = Spawn(a);
      if (spawned.ok()) continue;
      // The daemon of an earlier run, unmounting, removes this directory; if
      // it did so between our mkdir and our mount, try again.
      const bool vanished = !std::filesystem::exists(a.mountpoint, ec);
      rmdir(a.mountpoint.c_str());  // fails harmlessly if another run mounted it
      last = spawned.status();
      // Busy: another run mounted it first, or the last daemon is leaving.
      if (!vanished && last.code() != Code::kBusy && last.code() != Code::kExists) return last;
    } else if (last.code() != Code::kBusy) {
      return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return last.WithContext("cannot mount session '" + session + "'");
}

}  // namespace strata::daemon
