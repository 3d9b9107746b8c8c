// Sandboxes: a command run in new namespaces whose root filesystem is a
// directory of the host (a session's mount), with seccomp, capabilities and
// resource limits.
//
// Three processes do the work. The supervisor (RunSandbox, in the caller)
// sets limits and user mappings from outside, streams the command's output
// and waits. Its child, the keeper, enters new namespaces with unshare(2)
// and forks the sandbox's init (pid 1 of the new pid namespace), which runs
// the steps in init.cc in order and starts the command as its child. Both
// are made with fork(), which leaves a multi-threaded caller's malloc usable
// in the child, so no exec is needed before the command's. When init exits,
// the kernel kills everything left in the sandbox; when the supervisor or
// the keeper dies, its child gets SIGKILL (PR_SET_PDEATHSIG).
#ifndef STRATA_SANDBOX_SANDBOX_H_
#define STRATA_SANDBOX_SANDBOX_H_

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/cgroups.h"
#include "strata/status.h"

namespace strata::sandbox {

struct BindMount {
  std::string host;    // absolute host path
  std::string target;  // absolute path inside the sandbox; must exist in the root
  bool read_only = false;
};

struct ResourceLimit {
  int resource = 0;  // RLIMIT_*
  rlim_t soft = 0;
  rlim_t hard = 0;
};

enum class Network { kNone, kHost };

struct SandboxSpec {
  std::string root;  // host directory that becomes "/"; must hold proc, dev, sys
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V": the command's whole environment
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::string hostname = "strata";
  Network network = Network::kNone;
  // Map root inside to an unprivileged range outside (kUserNamespaceBase..).
  bool user_namespace = false;
  std::vector<BindMount> binds;
  Limits limits;
  std::vector<ResourceLimit> rlimits;
  std::optional<double> timeout_seconds;
  std::string seccomp_profile;  // Docker-format JSON; empty: the default policy
  bool tty = false;             // a pseudo-terminal for stdin/stdout/stderr
  std::string name;             // names the sandbox's cgroups
};

// --userns maps uids and gids 0..65535 inside to these plus 0..65535 outside.
inline constexpr uid_t kUserNamespaceBase = 100000;

struct SandboxResult {
  int exit_code = 0;                // what the caller should exit with
  std::optional<int> exit_status;   // the command's, if it exited
  std::optional<int> signal;        // the signal that killed it
  bool timed_out = false;           // killed by the timeout (exit_code 124)
  std::string error;                // why the command did not start (126/127)
  int64_t start_ns = 0, end_ns = 0;
  struct rusage usage {};           // of every process of the sandbox
  CgroupUsage cgroup;
};

// Receives the command's output as it comes: stream 1 (stdout) or 2
// (stderr; with a terminal, everything is stream 1).
using OutputSink = std::function<void(int stream, std::string_view bytes)>;

// Runs the sandbox to completion. Setup failures (a namespace, a mount, a
// limit) are errors; the command's own failure is a result. The calling
// process's stdin is the command's (with a terminal: relayed, raw).
//
// `before_command`, if given, runs in the caller while the sandbox is being
// set up, and the command starts only after it returned Ok (an error stops
// the sandbox and is returned). Threads it starts must not take the
// forwarded signals (see BlockForwardedSignals).
Result<SandboxResult> RunSandbox(const SandboxSpec& spec, const OutputSink& sink,
                                 const std::function<Status()>& before_command = nullptr);

// Blocks, in the calling thread, the signals RunSandbox forwards to the
// command (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH).
// Call it before creating threads: a process-directed signal goes to any
// thread that does not block it, and would then not reach the sandbox.
// RunSandbox blocks them in its thread too, and leaves them blocked.
void BlockForwardedSignals();

// The sandbox's init (init.cc), in the forked pid 1: sets the sandbox up,
// runs the command and returns init's exit code. Reports on fd 3.
int RunInit(const SandboxSpec& spec);

}  // namespace strata::sandbox

#endif  // STRATA_SANDBOX_SANDBOX_H_
