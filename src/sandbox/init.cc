// The sandbox's init: pid 1 of the new pid namespace. It runs the setup
// steps below in order, starts the command as its child and reports how it
// ended on fd 3 (a socket to the supervisor), one line each:
//   "R"                   when set up; it then waits for "C" to start the
//                         command,
//   "E <code> <message>"  when a step or the command's exec fails,
//   "X <wait status>"     when the command ends.
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/sys_util.h"

extern char** environ;

namespace strata::sandbox {

namespace {

constexpr int kControlFd = 3;

// The capabilities the command keeps as root (a subset of Docker's default:
// without NET_RAW, MKNOD and SYS_CHROOT).
constexpr int kKeptCapabilities[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE,     CAP_FOWNER,
                                     CAP_FSETID, CAP_KILL,             CAP_SETGID,
                                     CAP_SETUID, CAP_SETPCAP,          CAP_NET_BIND_SERVICE,
                                     CAP_SETFCAP, CAP_AUDIT_WRITE};

void Report(const std::string& line) {
  std::string out = line + "\n";
  (void)!write(kControlFd, out.data(), out.size());
}

Status Mount(const std::string& source, const std::string& target, const char* type,
             unsigned long flags, const char* data = nullptr) {
  if (mount(source.empty() ? nullptr : source.c_str(), target.c_str(), type, flags, data) != 0) {
    return Errno("mount " + (source.empty() ? std::string(type ? type : "") : source) + " on " +
                 target);
  }
  return Status::Ok();
}

// Makes an existing mount read-only, keeping the flags it has (a user
// namespace may not clear nosuid/nodev/noexec it inherited).
Status RemountReadOnly(const std::string& target) {
  struct statvfs sv;
  if (statvfs(target.c_str(), &sv) != 0) return Errno("statvfs " + target);
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  return Mount("", target, nullptr, flags);
}

Status BindReadOnly(const std::string& path) {
  RETURN_IF_ERROR(Mount(path, path, nullptr, MS_BIND | MS_REC));
  return RemountReadOnly(path);
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

// --- The steps, in order.

Status CgroupNamespace(const SandboxSpec&) {
  // Now that the supervisor moved us into the sandbox's cgroups, they become
  // the root of the cgroup tree the command sees.
  if (unshare(CLONE_NEWCGROUP) != 0) return Errno("unshare(CLONE_NEWCGROUP)");
  return Status::Ok();
}

Status PrivatePropagation(const SandboxSpec&) {
  return Mount("", "/", nullptr, MS_REC | MS_PRIVATE);
}

Status BindRoot(const SandboxSpec& s) { return Mount(s.root, s.root, nullptr, MS_BIND); }

Status Proc(const SandboxSpec& s) {
  const std::string proc = s.root + "/proc";
  RETURN_IF_ERROR(Mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC));
  // Kernel knobs stay read-only; files that leak host information are hidden.
  for (const char* p : {"sys", "sysrq-trigger", "irq", "bus", "fs"}) {
    if (Exists(proc + "/" + p)) RETURN_IF_ERROR(BindReadOnly(proc + "/" + p));
  }
  for (const char* p : {"kcore", "keys", "timer_list", "sched_debug", "latency_stats"}) {
    if (Exists(proc + "/" + p)) RETURN_IF_ERROR(Mount("/dev/null", proc + "/" + p, nullptr, MS_BIND));
  }
  return Status::Ok();
}

Status Sys(const SandboxSpec& s) {
  const std::string sys = s.root + "/sys";
  const unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (mount("sysfs", sys.c_str(), "sysfs", flags, nullptr) == 0) return Status::Ok();
  // A user namespace that shares the host's network may not mount sysfs:
  // give it the host's, read-only.
  RETURN_IF_ERROR(Mount("/sys", sys, nullptr, MS_BIND | MS_REC));
  return RemountReadOnly(sys);
}

Status Dev(const SandboxSpec& s) {
  const std::string dev = s.root + "/dev";
  RETURN_IF_ERROR(Mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m"));
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    const std::string target = dev + "/" + node;
    int fd = open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) return Errno("create " + target);
    close(fd);
    RETURN_IF_ERROR(Mount(std::string("/dev/") + node, target, nullptr, MS_BIND));
  }
  for (const char* d : {"pts", "shm"}) {
    if (mkdir((dev + "/" + d).c_str(), 0755) != 0) return Errno("mkdir " + dev + "/" + d);
  }
  RETURN_IF_ERROR(Mount("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                        "newinstance,ptmxmode=0666,mode=0620"));
  RETURN_IF_ERROR(Mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
  const std::pair<const char*, const char*> links[] = {
      {"ptmx", "pts/ptmx"},           {"fd", "/proc/self/fd"},
      {"stdin", "/proc/self/fd/0"},   {"stdout", "/proc/self/fd/1"},
      {"stderr", "/proc/self/fd/2"},  {"core", "/proc/kcore"}};
  for (const auto& [name, target] : links) {
    if (symlink(target, (dev + "/" + name).c_str()) != 0) return Errno("symlink " + dev + "/" + name);
  }
  return Status::Ok();
}

Status Binds(const SandboxSpec& s) {
  for (const BindMount& b : s.binds) {
    const std::string target = s.root + b.target;
    RETURN_IF_ERROR(Mount(b.host, target, nullptr, MS_BIND | MS_REC));
    if (b.read_only) RETURN_IF_ERROR(RemountReadOnly(target));
  }
  return Status::Ok();
}

Status PivotRoot(const SandboxSpec& s) {
  // pivot_root(".", ".") stacks the old root under the new one; detaching it
  // leaves only the new root (runc's technique: no directory needed for it).
  if (chdir(s.root.c_str()) != 0) return Errno("chdir " + s.root);
  if (syscall(SYS_pivot_root, ".", ".") != 0) return Errno("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) return Errno("detach the old root");
  if (chdir("/") != 0) return Errno("chdir /");
  return Status::Ok();
}

Status Hostname(const SandboxSpec& s) {
  if (sethostname(s.hostname.data(), s.hostname.size()) != 0) return Errno("sethostname");
  return Status::Ok();
}

Status Loopback(const SandboxSpec& s) {
  if (s.network != Network::kNone) return Status::Ok();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  Status st;
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
    st = Errno("read the loopback's flags");
  } else {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) st = Errno("bring the loopback up");
  }
  close(fd);
  return st;
}

struct Step {
  const char* name;
  Status (*run)(const SandboxSpec&);
};

constexpr Step kSetupSteps[] = {
    {"cgroup namespace", CgroupNamespace},
    {"private mount propagation", PrivatePropagation},
    {"bind the root", BindRoot},
    {"/proc", Proc},
    {"/sys", Sys},
    {"/dev", Dev},
    {"bind mounts", Binds},
    {"pivot_root", PivotRoot},
    {"hostname", Hostname},
    {"loopback", Loopback},
};

// --- The command's own steps, in its process, after fork.

Status DropBoundingSet() {
  for (int cap = 0; cap <= 63; ++cap) {
    bool keep = false;
    for (int k : kKeptCapabilities) keep |= k == cap;
    if (keep) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      if (errno == EINVAL) break;  // past the last capability of this kernel
      return Errno("drop capability " + std::to_string(cap));
    }
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return Errno("clear ambient capabilities");
  }
  return Status::Ok();
}

Status SetCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int k : kKeptCapabilities) {
    data[k / 32].effective |= 1u << (k % 32);
    data[k / 32].permitted |= 1u << (k % 32);
  }
  if (syscall(SYS_capset, &header, data) != 0) return Errno("capset");
  return Status::Ok();
}

Status SwitchUser(const SandboxSpec& s) {
  if (s.uid == 0 && s.gid == 0) return Status::Ok();
  // setgroups is refused in a user namespace (setgroups "deny"); there the
  // supplementary groups are empty anyway.
  if (setgroups(0, nullptr) != 0 && !s.user_namespace) return Errno("setgroups");
  if (setresgid(s.gid, s.gid, s.gid) != 0) return Errno("setgid " + std::to_string(s.gid));
  if (setresuid(s.uid, s.uid, s.uid) != 0) return Errno("setuid " + std::to_string(s.uid));
  return Status::Ok();
}

[[noreturn]] void RunCommand(const SandboxSpec& s) {
  auto fail = [](const Status& st, int code) {
    Report("E " + std::to_string(code) + " " + st.message());
    _exit(code);
  };
  setsid();
  if (s.tty && ioctl(STDIN_FILENO, TIOCSCTTY, 0) != 0) fail(Errno("set the controlling terminal"), 125);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (const ResourceLimit& r : s.rlimits) {
    struct rlimit lim{r.soft, r.hard};
    if (setrlimit(r.resource, &lim) != 0) fail(Errno("setrlimit"), 125);
  }
  Status st = DropBoundingSet();
  if (st.ok()) st = SwitchUser(s);
  if (st.ok() && s.uid == 0) st = SetCapabilities();
  if (!st.ok()) fail(st, 125);
  if (chdir(s.cwd.c_str()) != 0) fail(Errno("cannot enter working directory " + s.cwd), 125);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(Errno("no_new_privs"), 125);
  auto filter = s.seccomp_profile.empty() ? SeccompFilter::Default()
                                          : SeccompFilter::FromProfile(s.seccomp_profile);
  if (!filter.ok()) fail(filter.status(), 125);
  // Everything the command must not inherit is closed or close-on-exec.
  fcntl(kControlFd, F_SETFD, FD_CLOEXEC);
  std::vector<char*> argv;
  for (const std::string& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> env;
  for (const std::string& e : s.env) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  environ = env.data();  // execvp searches the command's PATH, not ours
  st = (*filter)->Load();
  if (!st.ok()) fail(st, 125);
  execvp(argv[0], argv.data());
  const int err = errno;
  fail(IoError("cannot run '" + s.argv[0] + "': " + std::strerror(err)),
       err == ENOENT ? 127 : 126);
  _exit(127);
}

pid_t g_command = 0;

void Forward(int sig) {
  if (g_command > 0) kill(-g_command, sig);
}

}  // namespace

int RunInit(const SandboxSpec& spec) {
  for (const Step& step : kSetupSteps) {
    Status st = step.run(spec);
    if (!st.ok()) {
      Report("E 125 sandbox setup, " + std::string(step.name) + ": " + st.message());
      return 1;
    }
  }
  // Ready; the command starts when the supervisor says so ("C"), after its
  // own preparations (recording the state before the command) ran alongside
  // the steps above.
  Report("R");
  char start = 0;
  while (read(kControlFd, &start, 1) < 0 && errno == EINTR) {
  }
  if (start != 'C') return 1;
  pid_t pid = fork();
  if (pid < 0) {
    Report(std::string("E 125 fork: ") + std::strerror(errno));
    return 1;
  }
  if (pid == 0) RunCommand(spec);
  g_command = pid;
  // Signals the supervisor forwards go to the command's process group. Init
  // holds no terminal or output of its own.
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT}) {
    struct sigaction sa {};
    sa.sa_handler = Forward;
    sigaction(sig, &sa, nullptr);
  }
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    for (int fd = 0; fd <= 2; ++fd) dup2(null, fd);
  }
  for (;;) {
    int status = 0;
    pid_t done = waitpid(-1, &status, 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    if (done == pid) {
      Report("X " + std::to_string(status));
      return 0;  // the kernel now kills whatever the command left behind
    }
  }
}

}  // namespace strata::sandbox
