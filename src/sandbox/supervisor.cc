// The supervisor: creates the sandbox's namespaces, hands its init the spec,
// relays output, signals and the terminal, enforces the timeout and waits.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <linux/sched.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "base/unique_fd.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/sys_util.h"

namespace strata::sandbox {

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}


// Puts a terminal in raw mode and restores it on scope exit.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (!isatty(fd) || tcgetattr(fd, &saved_) != 0) return;
    struct termios raw = saved_;
    cfmakeraw(&raw);
    active_ = tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
};

sigset_t ForwardedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) {
    sigaddset(&set, sig);
  }
  return set;
}

Status MapUsers(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  const std::string map = "0 " + std::to_string(kUserNamespaceBase) + " 65536\n";
  RETURN_IF_ERROR(WriteFile(base + "/setgroups", "deny"));
  RETURN_IF_ERROR(WriteFile(base + "/uid_map", map));
  return WriteFile(base + "/gid_map", map);
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void CopyWindowSize(int from, int to) {
  struct winsize ws;
  if (ioctl(from, TIOCGWINSZ, &ws) == 0) ioctl(to, TIOCSWINSZ, &ws);
}

// What init reported on the control socket, one line each:
// "E <code> <message>" (setup or exec failed), "X <wait status>".
struct Reports {
  std::string buf;  // received, not yet parsed
  std::string setup_error;
  int error_code = 0;
  std::optional<int> command_status;

  // Consumes every complete line of `buf`.
  void Parse() {
    while (!buf.empty()) {
      size_t nl = buf.find('\n');
      if (nl == std::string::npos) return;
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line.rfind("X ", 0) == 0) {
        command_status = std::atoi(line.c_str() + 2);
      } else if (line.rfind("E ", 0) == 0) {
        error_code = std::atoi(line.c_str() + 2);
        size_t space = line.find(' ', 2);
        setup_error = space == std::string::npos ? line.substr(2) : line.substr(space + 1);
      }
    }
  }
};

pid_t g_init = 0;  // in the keeper: the sandbox's init

void ForwardToInit(int sig) {
  if (g_init > 0) kill(g_init, sig);
}

// The keeper, in the supervisor's fork: enters the new namespaces, waits for
// the supervisor's mappings and limits, forks the sandbox's init (the first
// process of the new pid namespace), passes signals on to it and exits when
// it does. Returns the keeper's exit code.
int Keeper(const SandboxSpec& spec, int stdin_fd, int stdout_fd, int stderr_fd, int control) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  dup2(stdin_fd, 0);
  dup2(stdout_fd, 1);
  dup2(stderr_fd, 2);
  dup2(control, 3);
  close_range(4, ~0u, 0);  // nothing of the caller's leaks into the sandbox
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (spec.network == Network::kNone) flags |= CLONE_NEWNET;
  if (spec.user_namespace) flags |= CLONE_NEWUSER;
  auto report = [](const std::string& line) {
    std::string out = line + "\n";
    (void)!write(3, out.data(), out.size());
  };
  if (unshare(flags) != 0) {
    report(std::string("E 125 cannot create the sandbox's namespaces: ") + std::strerror(errno));
    return 125;
  }
  char go = 0;
  if (write(3, "U", 1) != 1 || read(3, &go, 1) != 1 || go != 'G') return 125;
  // A new user namespace keeps our host ids, which it does not map: become
  // its root (host uid kUserNamespaceBase), before the fork so that init
  // starts with a full set of capabilities in the namespace.
  if (spec.user_namespace && (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)) {
    report(std::string("E 125 cannot become root in the user namespace: ") + std::strerror(errno));
    return 125;
  }
  g_init = fork();
  if (g_init < 0) {
    report(std::string("E 125 fork: ") + std::strerror(errno));
    return 125;
  }
  if (g_init == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    _exit(RunInit(spec));
  }
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) {
    struct sigaction sa {};
    sa.sa_handler = ForwardToInit;
    sigaction(sig, &sa, nullptr);
  }
  for (;;) {
    int status;
    pid_t done = waitpid(g_init, &status, 0);
    if (done == g_init) return 0;
    if (done < 0 && errno != EINTR) return 125;
  }
}

}  // namespace

void BlockForwardedSignals() {
  sigset_t set = ForwardedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

Result<SandboxResult> RunSandbox(const SandboxSpec& spec, const OutputSink& sink,
                                 const std::function<Status()>& before_command) {
  if (spec.argv.empty()) return InvalidArgument("no command to run");
  // Errors in a profile are reported before anything starts.
  if (!spec.seccomp_profile.empty()) {
    RETURN_IF_ERROR(SeccompFilter::FromProfile(spec.seccomp_profile).status().WithContext(
        "seccomp profile"));
  }
  std::unique_ptr<SandboxCgroup> cgroup;
  if (spec.limits.any()) {
    ASSIGN_OR_RETURN(cgroup, SandboxCgroup::Create(spec.name, spec.limits));
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return Errno("socketpair");
  UniqueFd control(pair[0]), child_control(pair[1]);

  // The command's stdio: a pseudo-terminal, or pipes for output and our stdin.
  UniqueFd out_read, out_write, err_read, err_write, pty_master, pty_slave;
  if (spec.tty) {
    int master, slave;
    if (openpty(&master, &slave, nullptr, nullptr, nullptr) != 0) return Errno("openpty");
    pty_master.reset(master);
    pty_slave.reset(slave);
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
    CopyWindowSize(STDIN_FILENO, master);
  } else {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return Errno("pipe");
    out_read.reset(p[0]);
    out_write.reset(p[1]);
    if (pipe2(p, O_CLOEXEC) != 0) return Errno("pipe");
    err_read.reset(p[0]);
    err_write.reset(p[1]);
  }

  // Signals arrive through a signalfd; this thread blocks them (others
  // should, see BlockForwardedSignals). The child's exit is seen through a
  // pidfd: a SIGCHLD may be taken by any thread of a multi-threaded caller.
  BlockForwardedSignals();
  const sigset_t forwarded = ForwardedSignals();
  UniqueFd signals(signalfd(-1, &forwarded, SFD_CLOEXEC));
  if (signals.get() < 0) return Errno("signalfd");

  const int stdin_fd = spec.tty ? pty_slave.get() : STDIN_FILENO;
  const int stdout_fd = spec.tty ? pty_slave.get() : out_write.get();
  const int stderr_fd = spec.tty ? pty_slave.get() : err_write.get();
  SandboxResult result;
  result.start_ns = NowNs();
  const pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) _exit(Keeper(spec, stdin_fd, stdout_fd, stderr_fd, child_control.get()));
  UniqueFd child_exit(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  child_control.reset();
  out_write.reset();
  err_write.reset();
  pty_slave.reset();

  auto abort_child = [&](const Status& st) -> Status {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return st;
  };
  if (child_exit.get() < 0) return abort_child(Errno("pidfd_open"));
  // The keeper says "U" once it is in its new namespaces (or reports an
  // error); then the user mappings and cgroups are set from out here, and
  // "G" lets it go on.
  Reports reports;
  char unshared = 0;
  const ssize_t got_unshared = read(control.get(), &unshared, 1);
  if (got_unshared != 1 || unshared != 'U') {
    if (got_unshared == 1) reports.buf.assign(1, unshared);  // the start of an "E" line
    char c;
    while (read(control.get(), &c, 1) == 1) reports.buf += c;
    reports.Parse();
    waitpid(pid, nullptr, 0);
    return IoError(reports.setup_error.empty() ? "the sandbox did not start" : reports.setup_error);
  }
  if (spec.user_namespace) {
    Status st = MapUsers(pid);
    if (!st.ok()) return abort_child(st.WithContext("user namespace"));
  }
  if (cgroup) {
    Status st = cgroup->Add(pid);
    if (!st.ok()) return abort_child(st);
  }
  if (!WriteAll(control.get(), "G")) return abort_child(Errno("start the sandbox"));
  // While the sandbox sets itself up: the caller's preparations. Then wait
  // for init to be ready ("R", or an error line) and let the command start.
  if (before_command) {
    Status prepared = before_command();
    if (!prepared.ok()) return abort_child(prepared);
  }
  std::string& control_buf = reports.buf;
  char buf[65536];
  for (;;) {
    size_t nl = control_buf.find('\n');
    if (nl != std::string::npos) {
      if (control_buf.compare(0, nl, "R") == 0) {
        control_buf.erase(0, nl + 1);
        if (!WriteAll(control.get(), "C")) return abort_child(Errno("start the command"));
      }
      break;  // "R" handled, or an error line for the loop below
    }
    ssize_t got = read(control.get(), buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // init died: the loop below finds out why
    control_buf.append(buf, static_cast<size_t>(got));
  }

  UniqueFd timer;
  if (spec.timeout_seconds) {
    timer.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    struct itimerspec its {};
    double secs = std::max(0.001, *spec.timeout_seconds);
    its.it_value.tv_sec = static_cast<time_t>(secs);
    its.it_value.tv_nsec = static_cast<long>((secs - std::floor(secs)) * 1e9);
    timerfd_settime(timer.get(), 0, &its, nullptr);
  }

  std::unique_ptr<RawTerminal> raw;
  if (spec.tty) raw = std::make_unique<RawTerminal>(STDIN_FILENO);
  bool stdin_open = spec.tty;
  bool reaped = false;
  int wait_status = 0;
  reports.Parse();
  for (;;) {
    const bool output_open = out_read.get() >= 0 || err_read.get() >= 0 || pty_master.get() >= 0;
    if (reaped && !output_open) break;
    pollfd fds[8];
    int n = 0;
    auto add = [&](int fd) {
      if (fd >= 0) fds[n++] = {fd, POLLIN, 0};
    };
    add(signals.get());
    if (!reaped) add(child_exit.get());
    add(control.get());
    add(out_read.get());
    add(err_read.get());
    add(pty_master.get());
    add(timer.get());
    if (stdin_open) add(STDIN_FILENO);
    if (poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      return abort_child(Errno("poll"));
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      if (fd == signals.get()) {
        signalfd_siginfo si;
        if (read(fd, &si, sizeof(si)) != sizeof(si)) continue;
        const int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGWINCH) {
          if (pty_master.get() >= 0) CopyWindowSize(STDIN_FILENO, pty_master.get());
        } else if (!reaped) {
          kill(pid, sig);  // the keeper passes it to init, init to the command
        }
      } else if (fd == child_exit.get()) {
        if (wait4(pid, &wait_status, 0, &result.usage) == pid) reaped = true;
      } else if (fd == control.get()) {
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got <= 0) {
          control.reset();
          continue;
        }
        control_buf.append(buf, static_cast<size_t>(got));
        reports.Parse();
      } else if (fd == out_read.get() || fd == err_read.get() || fd == pty_master.get()) {
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {  // EOF (pipes) or EIO (terminal with no process left)
          if (fd == out_read.get()) out_read.reset();
          else if (fd == err_read.get()) err_read.reset();
          else pty_master.reset();
          continue;
        }
        sink(fd == err_read.get() ? 2 : 1, std::string_view(buf, static_cast<size_t>(got)));
      } else if (fd == timer.get()) {
        uint64_t expirations;
        (void)!read(fd, &expirations, sizeof(expirations));
        timer.reset();
        if (!reaped) {
          result.timed_out = true;
          kill(pid, SIGKILL);  // then init (death signal), then the pid namespace
        }
      } else if (fd == STDIN_FILENO) {
        ssize_t got = read(fd, buf, sizeof(buf));
        if (got <= 0) {
          stdin_open = false;
          if (pty_master.get() >= 0) (void)!write(pty_master.get(), "\x04", 1);  // EOF
          continue;
        }
        if (pty_master.get() >= 0) WriteAll(pty_master.get(), {buf, static_cast<size_t>(got)});
      }
    }
  }
  // Read what init reported last (it wrote before exiting).
  while (control.get() >= 0) {
    ssize_t got = read(control.get(), buf, sizeof(buf));
    if (got <= 0) break;
    control_buf.append(buf, static_cast<size_t>(got));
  }
  reports.Parse();
  result.end_ns = NowNs();
  if (cgroup) result.cgroup = cgroup->Usage();
  if (result.timed_out) {
    result.exit_code = 124;
    result.signal = SIGKILL;
    return result;
  }
  if (reports.command_status) {
    const int st = *reports.command_status;
    if (WIFEXITED(st)) {
      result.exit_status = WEXITSTATUS(st);
      result.exit_code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
      result.signal = WTERMSIG(st);
      result.exit_code = 128 + WTERMSIG(st);
    }
    // The command's exec failed after setup: a result, like a shell's 126/127.
    if (!reports.setup_error.empty()) result.error = reports.setup_error;
    return result;
  }
  if (!reports.setup_error.empty()) {
    if (reports.error_code == 126 || reports.error_code == 127) {
      result.exit_code = reports.error_code;
      result.error = reports.setup_error;
      return result;
    }
    return Status(Code::kIoError, reports.setup_error);
  }
  if (result.cgroup.oom_killed) {
    return Status(Code::kNoSpace, "the sandbox ran out of memory while starting (--memory too small)");
  }
  if (WIFSIGNALED(wait_status)) {
    return IoError("the sandbox's init was killed by signal " +
                   std::to_string(WTERMSIG(wait_status)));
  }
  return IoError("the sandbox's init exited without running the command");
}

}  // namespace strata::sandbox
