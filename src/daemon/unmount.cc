// Unmount: ends a mount and waits for its daemon to close the store.
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "daemon/daemon.h"

namespace strata::daemon {

namespace {

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
    std::string id, parent, dev, root, mounted_at, word;
    fields >> id >> parent >> dev >> root >> mounted_at;
    while (fields >> word && word != "-") {
    }
    std::string type, source;
    fields >> type >> source;
    if (type != "fuse.strata" || Unescape(mounted_at) != target) continue;
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
// of its threads waits on its own mount (only a user's daemon does, when a
// cut invalidates a file it cannot open by handle), it waits forever: nobody
// is left to answer, and the connection ends only when the process closes
// /dev/fuse, which it cannot do before that thread returns.
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

// `fusermount3 -u -- MOUNTPOINT`, without a shell: the path goes to the
// program as one argument, whatever bytes it holds. True if it unmounted.
bool FusermountUnmount(const std::string& mountpoint) {
  std::string program = "fusermount3", flag = "-u", end = "--", point = mountpoint;
  char* argv[] = {program.data(), flag.data(), end.data(), point.data(), nullptr};
  pid_t pid;
  if (posix_spawnp(&pid, "fusermount3", nullptr, nullptr, argv, environ) != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

Status Unmount(const std::string& mountpoint) {
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
    if (FusermountUnmount(mountpoint)) return unmounted();
  }
  if (err == EBUSY) {
    return Status(Code::kBusy, mountpoint + " is busy (a process uses it; see 'fuser -m " +
                                   mountpoint + "')");
  }
  if (err == EINVAL) return InvalidArgument(mountpoint + " is not a mount point");
  return IoError("cannot unmount " + mountpoint + ": " + std::strerror(err));
}


}  // namespace strata::daemon
