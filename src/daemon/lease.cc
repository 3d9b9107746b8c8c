// LeaseMount: a mount of a session for as long as the caller needs it.
#include <chrono>
#include <thread>

#include "daemon/daemon.h"

namespace strata::daemon {

Result<std::unique_ptr<control::Lease>> LeaseMount(const std::string& store,
                                                   const std::string& session) {
  // Long enough for a daemon on a busy machine to commit what its last run
  // wrote and exit (a new daemon must wait for that), short enough that a
  // wedged one is reported.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
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
      auto spawned = Spawn(a);
      if (spawned.ok()) continue;
      last = spawned.status();
      // Busy: another run's daemon got there first, or the last one is still
      // leaving. Either way, take a lease from it or start after it.
      if (last.code() != Code::kBusy) break;
    } else if (last.code() != Code::kBusy) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return last.WithContext("cannot mount session '" + session + "'");
}

}  // namespace strata::daemon
