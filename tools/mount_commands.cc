// mount, umount: serve a session through FUSE (the daemon is src/daemon).
#include <iostream>

#include "cli.h"
#include "daemon/daemon.h"

namespace strata::cli {

namespace {

struct MountArgs {
  daemon::DaemonOptions daemon;
  bool foreground = false;
};

Status Mount(Globals& g, MountArgs& a) {
  a.daemon.store_path = StorePath(g);
  const daemon::DaemonOptions& d = a.daemon;
  if (a.foreground) {
    return daemon::Serve(d, [&](const Status& s) {
      if (s.ok()) std::cerr << "strata: serving session " << d.session << " at " << d.mountpoint
                            << " (Ctrl-C or 'strata umount " << d.mountpoint << "' to stop)\n";
    });
  }
  ASSIGN_OR_RETURN(pid_t pid, daemon::Spawn(d));
  std::cout << "mounted session " << d.session << " at " << d.mountpoint << " (pid " << pid
            << ")\n";
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<control::Lease>> LeaseMount(Globals& g, const std::string& session) {
  return daemon::LeaseMount(StorePath(g), session);
}

void AddMountCommands(CLI::App& app, Globals& g) {
  static MountArgs args;
  static std::string umount_point;
  auto* mount = g.Add(app, "mount", "Serve a session as a directory through FUSE",
                      [&g] { return Mount(g, args); });
  mount->add_option("session", args.daemon.session, "Session")->required();
  mount->add_option("mountpoint", args.daemon.mountpoint, "Existing empty directory")->required();
  mount->add_flag("-f,--foreground", args.foreground, "Stay in the foreground until unmounted");
  mount->add_option("-o", args.daemon.mount_options, "Mount options, e.g. allow_other (repeatable)")
      ->delimiter(',');

  auto* umount = g.Add(app, "umount", "Unmount a mounted session (its daemon then exits)",
                       [] { return daemon::Unmount(umount_point); });
  umount->add_option("mountpoint", umount_point, "Mount point")->required();
}

}  // namespace strata::cli
