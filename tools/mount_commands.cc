// mount, umount: serve a session through FUSE.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "cli.h"
#include "control/control.h"
#include "fuse/fuse_server.h"

namespace strata::cli {

namespace {

struct MountArgs {
  std::string session;
  std::string mountpoint;
  bool foreground = false;
  std::vector<std::string> options;
  // Started by `strata run`: unmount and exit when the last lease ends.
  bool ephemeral = false;
};

// Commits buffered writes every `period` until stopped, so that data sitting
// in a file that stays open reaches the store.
class PeriodicFlusher {
 public:
  PeriodicFlusher(Filesystem& fs, std::chrono::milliseconds period)
      : thread_([this, &fs, period] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
            lock.unlock();
            (void)fs.FlushAll();
            lock.lock();
          }
        }) {}
  ~PeriodicFlusher() {
    {
      std::scoped_lock lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

// Mounts and serves until unmounted. `ready` is called once the mount is up
// (or with the error that prevented it).
Status Serve(Globals& g, const MountArgs& a, const std::function<void(const Status&)>& ready) {
  // The daemon frees and allocates buffers at the rate data arrives. By
  // default glibc gives a heap's free top back to the kernel past 128 KiB,
  // and the next allocations fault in and zero the same pages again (about
  // 10% of the daemon's CPU in a sequential write). Keep up to 64 MiB.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  auto run = [&]() -> Status {
    ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
    ASSIGN_OR_RETURN(SessionInfo session, store->GetSession(a.session));
    ASSIGN_OR_RETURN(auto fs, store->OpenFilesystem(View{session.branch, kHead}));
    // First, so that a second daemon for the same session is refused before
    // it touches the mount point. Snapshots drain the kernel's page cache
    // into our buffers first (the server exists by the time one can come).
    std::atomic<fuse::FuseServer*> serving{nullptr};
    control::ControlOptions control_options;
    control_options.drain = [&]() -> Status {
      fuse::FuseServer* server = serving.load();
      return server != nullptr ? server->DrainKernelCache() : Status::Ok();
    };
    control_options.mountpoint = std::filesystem::absolute(a.mountpoint).lexically_normal();
    control_options.mounted = [&] { return serving.load() != nullptr; };
    if (a.ephemeral) {
      // A lazy unmount: the kernel ends the FUSE connection (and Run
      // returns) once nothing uses the mount, which is at once here.
      control_options.on_idle = [mountpoint = control_options.mountpoint] {
        umount2(mountpoint.c_str(), MNT_DETACH);
      };
    }
    ASSIGN_OR_RETURN(auto control,
                     control::ControlServer::Start(*store, *fs, a.session, control_options));
    fuse::MountOptions options;
    options.mountpoint = a.mountpoint;
    options.options = a.options;
    // The daemon's pid in the source column of /proc/mounts lets `strata
    // umount` wait until the store is closed (see DaemonServing).
    options.fsname = "strata:" + a.session + ":" + std::to_string(getpid());
    Status served;
    {
      ASSIGN_OR_RETURN(auto server, fuse::FuseServer::Mount(*fs, options));
      RETURN_IF_ERROR(server->InstallSignalHandlers());
      serving = server.get();
      ready(Status::Ok());
      PeriodicFlusher flusher(*fs, std::chrono::seconds(2));
      served = server->Run();
      serving = nullptr;
    }  // unmounted here
    control.reset();
    // A run's mount point is ours (RunMountPath): leave nothing behind.
    if (a.ephemeral) rmdir(a.mountpoint.c_str());
    RETURN_IF_ERROR(fs->FlushAll());
    RETURN_IF_ERROR(store->Sync());
    return served;
  };
  Status s = run();
  if (!s.ok()) ready(s);
  return s;
}

// Starts a daemon serving a.session at a.mountpoint in the background and
// returns its pid once the session is mounted (or the error that prevented
// it: the child reports it through a pipe, so errors are honest).
Result<pid_t> SpawnDaemon(Globals& g, const MountArgs& a) {
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
    Status s = Serve(g, a, [&](const Status& st) {
      if (reported) return;
      reported = true;
      std::string msg = st.ok() ? "OK" : std::to_string(static_cast<int>(st.code())) + " " + st.message();
      (void)!write(fds[1], msg.data(), msg.size());
      close(fds[1]);
      if (st.ok()) {
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

Status Mount(Globals& g, const MountArgs& a) {
  if (a.foreground) {
    return Serve(g, a, [&](const Status& s) {
      if (s.ok()) std::cerr << "strata: serving session " << a.session << " at " << a.mountpoint
                            << " (Ctrl-C or 'strata umount " << a.mountpoint << "' to stop)\n";
    });
  }
  ASSIGN_OR_RETURN(pid_t pid, SpawnDaemon(g, a));
  std::cout << "mounted session " << a.session << " at " << a.mountpoint << " (pid " << pid
            << ")\n";
  return Status::Ok();
}

// Undoes the octal escapes (\040 for a space, ...) of /proc/self/mountinfo.
std::string Unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    auto octal = [&](size_t k) { return k < field.size() && field[k] >= '0' && field[k] <= '7'; };
    if (field[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

struct ServedMount {
  pid_t daemon = 0;      // 0: no strata mount there
  unsigned minor = 0;    // the FUSE connection's number (its device minor)
};

// The strata daemon serving `mountpoint` (its pid from the source column
// "strata:SESSION:PID" of the /proc/self/mountinfo line) and the mount's
// FUSE connection.
ServedMount DaemonServing(const std::string& mountpoint) {
  // Resolve the parent only: a stat of the mount point itself waits for the
  // daemon, forever if the daemon is stuck (see DaemonDying).
  std::error_code ec;
  std::filesystem::path point = std::filesystem::absolute(mountpoint, ec).lexically_normal();
  if (!point.has_filename()) point = point.parent_path();
  const std::string target =
      (std::filesystem::weakly_canonical(point.parent_path(), ec) / point.filename()).string();
  std::ifstream info("/proc/self/mountinfo");
  std::string line;
  ServedMount found;
  while (std::getline(info, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point, word;
    fields >> id >> parent >> dev >> root >> point;
    while (fields >> word && word != "-") {
    }
    std::string type, source;
    fields >> type >> source;
    if (type != "fuse.strata" || Unescape(point) != target) continue;
    source = Unescape(source);
    size_t colon = source.rfind(':');
    if (colon == std::string::npos) continue;
    // The last one wins.
    found.daemon = static_cast<pid_t>(std::atoi(source.c_str() + colon + 1));
    size_t dev_colon = dev.find(':');
    found.minor = dev_colon == std::string::npos
                      ? 0
                      : static_cast<unsigned>(std::strtoul(dev.c_str() + dev_colon + 1, nullptr, 10));
  }
  return found;
}

// The state letter of /proc/PID[/task/TID]/stat ('R', 'S', 'D', 'Z', ...), or
// 0 if it is gone.
char ProcState(const std::filesystem::path& stat_file) {
  std::ifstream stat(stat_file);
  std::string line;
  if (!std::getline(stat, line)) return 0;
  size_t paren = line.rfind(')');  // the command name may hold spaces and ')'
  return paren == std::string::npos || paren + 2 >= line.size() ? 0 : line[paren + 2];
}

// The daemon was killed (or is exiting): its main thread is gone. If another
// of its threads waits on its own mount (a snapshot's syncfs or fsync), it
// waits forever: nobody is left to answer, and the connection ends only when
// the process closes /dev/fuse, which it cannot do before that thread returns.
bool DaemonDying(pid_t pid) {
  char state = ProcState("/proc/" + std::to_string(pid) + "/stat");
  return state == 0 || state == 'Z';
}

// Ends a FUSE connection: every request waiting on it fails with ENOTCONN.
void AbortConnection(unsigned minor) {
  if (minor == 0) return;
  std::ofstream abort("/sys/fs/fuse/connections/" + std::to_string(minor) + "/abort");
  abort << "1";
}

// True while some thread of `pid` has not exited. A process whose threads are
// all zombies has closed its files (each thread drops the file table before it
// becomes a zombie), the store among them. The daemon's parent is gone, so its
// zombie waits for init, and some inits reap only every second or so.
bool Running(pid_t pid) {
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    char state = ProcState(task.path() / "stat");
    if (state != 0 && state != 'Z') return true;
  }
  return !ec ? false : kill(pid, 0) == 0;
}

// Waits for the daemon to exit: it closes its store only after the unmount.
// A daemon whose main thread is gone for a second while another thread
// lives is stuck on its own connection (see DaemonDying): abort it.
Status AwaitExit(const ServedMount& served, const std::string& mountpoint) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::minutes(5);
  std::optional<std::chrono::steady_clock::time_point> dying_since;
  bool aborted = false;
  while (Running(served.daemon)) {
    const auto now = std::chrono::steady_clock::now();
    if (now > deadline) {
      return Status(Code::kBusy, "unmounted " + mountpoint + ", but its daemon (pid " +
                                     std::to_string(served.daemon) + ") is still writing the store");
    }
    if (!aborted && DaemonDying(served.daemon)) {
      if (!dying_since) dying_since = now;
      if (now - *dying_since > std::chrono::seconds(1)) {
        AbortConnection(served.minor);
        aborted = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Status::Ok();
}

Status Umount(const std::string& mountpoint) {
  const ServedMount served = DaemonServing(mountpoint);
  auto unmounted = [&]() {
    return served.daemon > 0 ? AwaitExit(served, mountpoint) : Status::Ok();
  };
  if (served.daemon > 0 && DaemonDying(served.daemon)) {
    // Killed: nothing is left to flush, and a process using the mount (or a
    // thread of the daemon itself) may wait on the dead connection forever.
    AbortConnection(served.minor);
    if (umount2(mountpoint.c_str(), MNT_DETACH) == 0) return unmounted();
  }
  if (umount2(mountpoint.c_str(), 0) == 0) return unmounted();
  int err = errno;
  if (err == EPERM) {
    // Not root: fusermount3 is set-uid and unmounts our own FUSE mounts.
    std::string cmd = "fusermount3 -u '" + mountpoint + "'";
    if (std::system(cmd.c_str()) == 0) return unmounted();
  }
  if (err == EBUSY) {
    return Status(Code::kBusy, mountpoint + " is busy (a process uses it; see 'fuser -m " +
                                   mountpoint + "')");
  }
  if (err == EINVAL) return InvalidArgument(mountpoint + " is not a mount point");
  return IoError("cannot unmount " + mountpoint + ": " + std::strerror(err));
}

}  // namespace

Result<std::unique_ptr<control::Lease>> LeaseMount(Globals& g, const std::string& session) {
  const std::string store = StorePath(g);
  Status last;
  for (int attempt = 0; attempt < 500; ++attempt) {
    auto lease = control::TakeLease(store, session);
    if (lease.ok()) return lease;
    last = lease.status();
    if (last.code() == Code::kNotFound) {
      MountArgs a;
      a.session = session;
      a.mountpoint = control::RunMountPath(store, session);
      a.options = {"allow_other"};  // a sandbox with --userns is another user
      a.ephemeral = true;
      std::error_code ec;
      std::filesystem::create_directories(a.mountpoint, ec);
      // Our own mount point: a mount left by a daemon that was killed is
      // dead (ENOTCONN) and can only be detached.
      struct stat st;
      if (stat(a.mountpoint.c_str(), &st) != 0 && errno == ENOTCONN) {
        umount2(a.mountpoint.c_str(), MNT_DETACH);
      }
      auto spawned = SpawnDaemon(g, a);
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

void AddMountCommands(CLI::App& app, Globals& g) {
  static MountArgs args;
  static std::string umount_point;
  auto* mount = g.Add(app, "mount", "Serve a session as a directory through FUSE",
                      [&g] { return Mount(g, args); });
  mount->add_option("session", args.session, "Session")->required();
  mount->add_option("mountpoint", args.mountpoint, "Existing empty directory")->required();
  mount->add_flag("-f,--foreground", args.foreground, "Stay in the foreground until unmounted");
  mount->add_option("-o", args.options, "Mount options, e.g. allow_other (repeatable)")
      ->delimiter(',');

  auto* umount = g.Add(app, "umount", "Unmount a mounted session (its daemon then exits)",
                       [] { return Umount(umount_point); });
  umount->add_option("mountpoint", umount_point, "Mount point")->required();
}

}  // namespace strata::cli
