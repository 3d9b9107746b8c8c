// Serve and Spawn: the life of a mount daemon.
#include "daemon/daemon.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "base/log.h"
#include "chunks/chunk_store.h"
#include "daemon/flusher.h"
#include "fuse/fuse_server.h"
#include "strata/store.h"

namespace strata::daemon {

namespace {

Result<std::unique_ptr<Store>> OpenExistingStore(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFound("no store at " + path + " (create one with 'strata init')");
  }
  StoreOptions options;
  options.path = path;
  return Store::Open(std::move(options));
}

// An ephemeral daemon's mount point (RunMountPath) is its own: it creates it,
// and detaches the dead mount a killed predecessor left there (ENOTCONN).
Status PrepareRunMountPoint(const std::string& mountpoint) {
  std::error_code ec;
  std::filesystem::create_directories(mountpoint, ec);
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0 && errno == ENOTCONN) {
    umount2(mountpoint.c_str(), MNT_DETACH);
  }
  if (stat(mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return IoError("cannot create the mount point " + mountpoint + ": " +
                   (ec ? ec.message() : std::strerror(errno)));
  }
  return Status::Ok();
}

Status ServeSession(const DaemonOptions& a, const std::function<void(const Status&)>& ready) {
  // First of all, while this process has no threads (the store starts some)
  // and no /dev/fuse descriptor: the helper process that drains the
  // kernel's cache for snapshots (see fuse/kernel_drainer.h).
  const std::string mountpoint = std::filesystem::absolute(a.mountpoint).lexically_normal();
  ASSIGN_OR_RETURN(auto drainer, fuse::KernelDrainer::Start(mountpoint));
  ASSIGN_OR_RETURN(auto store, OpenExistingStore(a.store_path));
  ASSIGN_OR_RETURN(SessionInfo session, store->GetSession(a.session));
  ASSIGN_OR_RETURN(auto fs, store->OpenFilesystem(View{session.branch, kHead}));
  // A store that knows a remote may hold chunks still there (a lazy pull):
  // the fetcher gets ready while the mount comes up, not at the first read.
  if (chunks::RemoteChunkSource* source = chunks::GetRemoteChunkSource()) {
    auto remotes = store->ListRemotes();
    if (remotes.ok() && !remotes->empty()) source->Prepare();
  }
  // The control socket before the mount, so that a second daemon for the
  // same session is refused before it touches the mount point. Snapshots
  // and forks commit at one instant of the mount (FuseServer::Cut); the
  // server exists by the time one can come, as leases wait for `mounted`.
  // `serving` is set while the server runs; a cut holds serving_mu so that
  // the server outlives it.
  std::mutex serving_mu;
  std::atomic<fuse::FuseServer*> serving{nullptr};
  control::ControlOptions control_options;
  control_options.cut = [&](const std::function<Status()>& commit) -> Status {
    std::scoped_lock lock(serving_mu);
    fuse::FuseServer* server = serving.load();
    return server != nullptr ? server->Cut(commit) : commit();
  };
  control_options.mountpoint = mountpoint;
  control_options.mounted = [&] { return serving.load() != nullptr; };
  if (a.ephemeral) {
    // A lazy unmount: the kernel ends the FUSE connection (and Run
    // returns) once nothing uses the mount, which is at once here.
    control_options.on_idle = [mountpoint = control_options.mountpoint] {
      umount2(mountpoint.c_str(), MNT_DETACH);
    };
  }
  // The control server also makes this the session's only daemon until it
  // is destroyed, which is after the mount point is gone and every write
  // committed: the next daemon sees them all.
  ASSIGN_OR_RETURN(auto control,
                   control::ControlServer::Start(*store, *fs, a.session, control_options));
  if (a.ephemeral) RETURN_IF_ERROR(PrepareRunMountPoint(a.mountpoint));
  fuse::MountOptions options;
  options.mountpoint = a.mountpoint;
  options.options = a.mount_options;
  // The daemon's pid in the source column of /proc/mounts lets Unmount wait
  // until the store is closed.
  options.fsname = "strata:" + a.session + ":" + std::to_string(getpid());
  Status served;
  {
    ASSIGN_OR_RETURN(auto server, fuse::FuseServer::Mount(*fs, options, std::move(drainer)));
    RETURN_IF_ERROR(server->InstallSignalHandlers());
    serving = server.get();
    ready(Status::Ok());
    PeriodicFlusher flusher(*fs, a.flush_period);
    served = server->Run();
    std::scoped_lock lock(serving_mu);
    serving = nullptr;
  }  // unmounted here
  // A run's mount point is ours (RunMountPath): leave nothing behind.
  if (a.ephemeral) rmdir(a.mountpoint.c_str());
  // Chunks fetched from a remote while serving are kept for the next mount.
  if (chunks::RemoteChunkSource* source = chunks::GetRemoteChunkSource()) source->Flush();
  RETURN_IF_ERROR(fs->FlushAll());
  RETURN_IF_ERROR(store->Sync());
  return served;
}

}  // namespace

Status Serve(const DaemonOptions& options, const std::function<void(const Status&)>& ready) {
  // The daemon frees and allocates buffers at the rate data arrives. By
  // default glibc gives a heap's free top back to the kernel past 128 KiB,
  // and the next allocations fault in and zero the same pages again (about
  // 10% of the daemon's CPU in a sequential write). Keep up to 64 MiB.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  Status s = ServeSession(options, ready);
  if (!s.ok()) ready(s);
  return s;
}

std::string DaemonLogPath(const std::string& store_path) { return store_path + "-daemon.log"; }

Result<pid_t> Spawn(const DaemonOptions& options) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return IoError("pipe failed");
  pid_t pid = fork();
  if (pid < 0) return IoError("fork failed");
  if (pid == 0) {
    close(fds[0]);
    setsid();
    sigset_t none;  // `strata run` blocks signals it forwards; a daemon must not
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    bool reported = false;
    Status s = Serve(options, [&](const Status& st) {
      if (reported) return;
      reported = true;
      std::string msg =
          st.ok() ? "OK" : std::to_string(static_cast<int>(st.code())) + " " + st.message();
      (void)!write(fds[1], msg.data(), msg.size());
      close(fds[1]);
      if (st.ok()) {
        // Detached from the terminal; what the daemon has to say (a chunk
        // it could not fetch from a remote, say) goes to a log beside the
        // store, made when there is a first line for it.
        SetLogFile(DaemonLogPath(options.store_path));
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
          dup2(null, STDIN_FILENO);
          dup2(null, STDOUT_FILENO);
          dup2(null, STDERR_FILENO);
          if (null > STDERR_FILENO) close(null);
        }
      }
    });
    _exit(s.ok() ? 0 : 1);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  if (msg == "OK") return pid;
  int status = 0;
  waitpid(pid, &status, 0);
  if (msg.empty()) return IoError("the mount daemon exited without mounting");
  size_t space = msg.find(' ');
  return Status(static_cast<Code>(std::atoi(msg.c_str())), msg.substr(space + 1));
}

}  // namespace strata::daemon
