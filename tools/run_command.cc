// run: a command in a sandbox whose root is a session, recorded as a tool call.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli.h"
#include "sandbox/sandbox.h"

namespace strata::cli {

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// The exit status when the sandbox could not be set up (as docker run).
constexpr int kSetupFailed = 125;

struct RunArgs {
  std::string session;
  std::vector<std::string> command;
  bool tty = false;
  std::vector<std::string> env;
  bool record_env = false;
  std::string cwd = "/";
  std::string user;
  std::vector<std::string> binds;
  std::string net = "none";
  std::string memory, disk_quota;
  int64_t pids = 0;
  double cpus = 0;
  double timeout = 0;
  std::vector<std::string> rlimits;
  std::string seccomp;
  bool userns = false;
  std::string name = "run";
};

// "512m", "2G", "1048576" -> bytes.
Result<uint64_t> ParseSize(const std::string& text, const char* option) {
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  uint64_t unit = 1;
  std::string suffix = end != nullptr ? std::string(end) : "";
  if (!suffix.empty() && (suffix.back() == 'b' || suffix.back() == 'B')) suffix.pop_back();
  if (suffix == "k" || suffix == "K") unit = 1ull << 10;
  else if (suffix == "m" || suffix == "M") unit = 1ull << 20;
  else if (suffix == "g" || suffix == "G") unit = 1ull << 30;
  else if (suffix == "t" || suffix == "T") unit = 1ull << 40;
  else if (!suffix.empty()) errno = EINVAL;
  if (errno != 0 || end == text.c_str() || !(value > 0) || value * unit > 9e18) {
    return InvalidArgument(std::string(option) + " '" + text +
                           "' is not a size (a number, optionally with k, m, g or t)");
  }
  return static_cast<uint64_t>(value * static_cast<double>(unit));
}

Result<sandbox::ResourceLimit> ParseRlimit(const std::string& text) {
  static const std::pair<const char*, int> kNames[] = {
      {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},   {"as", RLIMIT_AS},
      {"fsize", RLIMIT_FSIZE},   {"core", RLIMIT_CORE},     {"stack", RLIMIT_STACK},
      {"cpu", RLIMIT_CPU},       {"data", RLIMIT_DATA},     {"memlock", RLIMIT_MEMLOCK},
      {"nice", RLIMIT_NICE},     {"rtprio", RLIMIT_RTPRIO}, {"sigpending", RLIMIT_SIGPENDING},
      {"msgqueue", RLIMIT_MSGQUEUE}};
  size_t eq = text.find('=');
  if (eq == std::string::npos) return InvalidArgument("--rlimit wants NAME=SOFT[:HARD], got '" + text + "'");
  std::string name = text.substr(0, eq);
  int resource = -1;
  for (const auto& [n, r] : kNames) {
    if (name == n) resource = r;
  }
  if (resource < 0) return InvalidArgument("unknown resource limit '" + name + "'");
  auto value = [&](const std::string& v) -> Result<rlim_t> {
    if (v == "unlimited") return RLIM_INFINITY;
    char* end = nullptr;
    unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0') return InvalidArgument("--rlimit " + name + ": '" + v + "' is not a number");
    return static_cast<rlim_t>(n);
  };
  std::string rest = text.substr(eq + 1);
  size_t colon = rest.find(':');
  ASSIGN_OR_RETURN(rlim_t soft, value(rest.substr(0, colon)));
  rlim_t hard = soft;
  if (colon != std::string::npos) {
    ASSIGN_OR_RETURN(hard, value(rest.substr(colon + 1)));
  }
  if (soft > hard) return InvalidArgument("--rlimit " + name + ": soft limit above hard limit");
  return sandbox::ResourceLimit{resource, soft, hard};
}

// HOST:SANDBOX[:ro]
Result<sandbox::BindMount> ParseBind(const std::string& text) {
  sandbox::BindMount b;
  std::string rest = text;
  if (rest.size() > 3 && rest.compare(rest.size() - 3, 3, ":ro") == 0) {
    b.read_only = true;
    rest.resize(rest.size() - 3);
  } else if (rest.size() > 3 && rest.compare(rest.size() - 3, 3, ":rw") == 0) {
    rest.resize(rest.size() - 3);
  }
  size_t colon = rest.find(':');
  b.host = rest.substr(0, colon);
  b.target = colon == std::string::npos ? b.host : rest.substr(colon + 1);
  if (b.host.empty() || b.host[0] != '/' || b.target.empty() || b.target[0] != '/') {
    return InvalidArgument("--bind wants HOST:SANDBOX[:ro] with absolute paths, got '" + text + "'");
  }
  std::error_code ec;
  b.host = std::filesystem::canonical(b.host, ec).string();
  if (ec) return NotFound("--bind: " + text.substr(0, colon) + ": " + ec.message());
  b.target = std::filesystem::path(b.target).lexically_normal().string();
  if (b.target.find("/../") != std::string::npos || b.target == "/" ||
      b.target.rfind("/..", 0) == 0) {
    return InvalidArgument("--bind: '" + b.target + "' is not a directory inside the sandbox");
  }
  return b;
}

// Creates what the sandbox mounts over, if the session lacks it: /proc,
// /dev, /sys and the targets of --bind (done through the mount, before the
// call starts, so it is not counted as the command's change).
Status PrepareRoot(const std::string& root, const std::vector<sandbox::BindMount>& binds) {
  std::error_code ec;
  for (const char* d : {"proc", "dev", "sys", "tmp"}) {
    std::filesystem::path p = std::filesystem::path(root) / d;
    if (!std::filesystem::exists(p, ec)) std::filesystem::create_directories(p, ec);
    if (ec) return IoError("cannot create " + p.string() + " in the session: " + ec.message());
  }
  for (const auto& b : binds) {
    std::filesystem::path target = std::filesystem::path(root) / b.target.substr(1);
    // Refuse a target that leaves the root through a symlink in the session.
    std::filesystem::path parent = std::filesystem::weakly_canonical(target.parent_path(), ec);
    if (parent.string().rfind(root, 0) != 0) {
      return InvalidArgument("--bind target " + b.target + " leaves the sandbox's root");
    }
    if (std::filesystem::is_directory(b.host)) {
      if (!std::filesystem::exists(target, ec)) std::filesystem::create_directories(target, ec);
    } else if (!std::filesystem::exists(target, ec)) {
      std::filesystem::create_directories(target.parent_path(), ec);
      std::ofstream(target.string()).flush();
    }
    if (ec) return IoError("cannot create " + b.target + " in the session: " + ec.message());
  }
  return Status::Ok();
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// What a run will do, from its options.
struct Plan {
  sandbox::SandboxSpec spec;  // without root and name: those come with the mount
  std::vector<std::pair<std::string, std::string>> env;
  std::optional<uint64_t> disk_quota;
};

Result<Plan> MakePlan(const RunArgs& a) {
  if (a.command.empty()) return InvalidArgument("no command given (strata run SESSION -- CMD ...)");
  Plan plan;
  sandbox::SandboxSpec& spec = plan.spec;
  spec.argv = a.command;
  spec.tty = a.tty;
  spec.cwd = a.cwd;
  if (a.cwd.empty() || a.cwd[0] != '/') return InvalidArgument("--cwd must be an absolute path");
  if (a.net == "host") {
    spec.network = sandbox::Network::kHost;
  } else if (a.net != "none") {
    return InvalidArgument("--net must be 'none' or 'host'");
  }
  spec.user_namespace = a.userns;
  if (!a.user.empty()) {
    char* end = nullptr;
    unsigned long uid = std::strtoul(a.user.c_str(), &end, 10);
    unsigned long gid = uid;
    if (end != a.user.c_str() && *end == ':') gid = std::strtoul(end + 1, &end, 10);
    if (end == a.user.c_str() || *end != '\0' || uid > 65535 * 65536ul) {
      return InvalidArgument("--user wants UID[:GID] (numbers), got '" + a.user + "'");
    }
    spec.uid = static_cast<uid_t>(uid);
    spec.gid = static_cast<gid_t>(gid);
  }
  if (!a.memory.empty()) {
    ASSIGN_OR_RETURN(spec.limits.memory_bytes, ParseSize(a.memory, "--memory"));
  }
  if (a.pids < 0) return InvalidArgument("--pids must be positive");
  if (a.pids > 0) spec.limits.pids = static_cast<uint64_t>(a.pids);
  if (a.cpus < 0) return InvalidArgument("--cpus must be positive");
  if (a.cpus > 0) spec.limits.cpus = a.cpus;
  if (a.timeout < 0) return InvalidArgument("--timeout must be positive");
  if (a.timeout > 0) spec.timeout_seconds = a.timeout;
  if (!a.disk_quota.empty()) {
    ASSIGN_OR_RETURN(plan.disk_quota, ParseSize(a.disk_quota, "--disk-quota"));
  }
  for (const std::string& r : a.rlimits) {
    ASSIGN_OR_RETURN(sandbox::ResourceLimit limit, ParseRlimit(r));
    spec.rlimits.push_back(limit);
  }
  for (const std::string& b : a.binds) {
    ASSIGN_OR_RETURN(sandbox::BindMount bind, ParseBind(b));
    spec.binds.push_back(bind);
  }
  if (!a.seccomp.empty()) {
    std::ifstream in(a.seccomp);
    if (!in) return NotFound("cannot read seccomp profile " + a.seccomp);
    std::stringstream text;
    text << in.rdbuf();
    spec.seccomp_profile = text.str();
  }
  // The environment: a clean one, plus --env (K=V, or K to pass the host's).
  plan.env = {{"PATH", kDefaultPath}, {"HOME", spec.uid == 0 ? "/root" : "/"}, {"HOSTNAME", "strata"}};
  if (a.tty) plan.env.emplace_back("TERM", getenv("TERM") != nullptr ? getenv("TERM") : "xterm");
  for (const std::string& e : a.env) {
    size_t eq = e.find('=');
    std::string key = e.substr(0, eq);
    if (key.empty()) return InvalidArgument("--env wants K=V or K, got '" + e + "'");
    std::string value;
    if (eq != std::string::npos) {
      value = e.substr(eq + 1);
    } else if (const char* host = getenv(key.c_str())) {
      value = host;
    } else {
      continue;
    }
    std::erase_if(plan.env, [&](const auto& kv) { return kv.first == key; });
    plan.env.emplace_back(key, value);
  }
  for (const auto& [k, v] : plan.env) spec.env.push_back(k + "=" + v);
  return plan;
}

// The tool call's arguments (see README.md, Recording).
std::string CallArgs(const RunArgs& a, const Plan& plan) {
  nlohmann::json env = nlohmann::json::object();
  for (const auto& [k, v] : plan.env) env[k] = a.record_env ? nlohmann::json(v) : nlohmann::json(nullptr);
  nlohmann::json args = {{"argv", a.command}, {"cwd", a.cwd},   {"env", env},
                         {"net", a.net},      {"tty", a.tty},   {"userns", a.userns}};
  const sandbox::SandboxSpec& spec = plan.spec;
  if (!a.user.empty()) args["user"] = a.user;
  if (spec.limits.memory_bytes) args["memory"] = *spec.limits.memory_bytes;
  if (spec.limits.pids) args["pids"] = *spec.limits.pids;
  if (spec.limits.cpus) args["cpus"] = *spec.limits.cpus;
  if (spec.timeout_seconds) args["timeout"] = *spec.timeout_seconds;
  if (!a.binds.empty()) args["binds"] = a.binds;
  if (plan.disk_quota) args["disk_quota"] = *plan.disk_quota;
  return args.dump();
}

// The command's output, streamed to ours and stored in the call as it comes,
// a block at a time (the rest goes with EndCall): nothing is lost and
// memory stays bounded however much the command prints.
class OutputCapture {
 public:
  OutputCapture(Store& store, int64_t call) : store_(store), call_(call) {}

  void operator()(int stream, std::string_view bytes) {
    const int i = stream == 2 ? 1 : 0;
    for (std::string_view rest = bytes; !rest.empty();) {
      ssize_t n = write(i == 1 ? STDERR_FILENO : STDOUT_FILENO, rest.data(), rest.size());
      if (n <= 0) break;  // our output is gone; the capture goes on
      rest.remove_prefix(static_cast<size_t>(n));
    }
    pending_[i].append(bytes);
    const size_t block = store_.block_size();
    if (pending_[i].size() < block || !status_.ok()) return;
    const size_t whole = pending_[i].size() / block * block;
    status_ = store_.AppendCallOutput(call_, i + 1, std::string_view(pending_[i]).substr(0, whole));
    pending_[i].erase(0, whole);
  }

  std::string pending_[2];  // not yet stored: less than a block, or after a failure
  Status status_;           // the first failure to store output
 private:
  Store& store_;
  const int64_t call_;
};

// How the run ended, as the tool call records it.
CallOutcome Outcome(const Result<sandbox::SandboxResult>& ran, OutputCapture& output,
                    const sandbox::SandboxSpec& spec) {
  CallOutcome outcome;
  outcome.stdout_data = std::move(output.pending_[0]);
  outcome.stderr_data = std::move(output.pending_[1]);
  if (!ran.ok()) {
    outcome.error = ran.status().message();
    outcome.exit_status = kSetupFailed;
    return outcome;
  }
  const sandbox::SandboxResult& r = *ran;
  auto tv_ns = [](const timeval& tv) {
    return static_cast<int64_t>(tv.tv_sec) * 1'000'000'000 + tv.tv_usec * 1000;
  };
  nlohmann::json result = {{"exit_code", r.exit_code},
                           {"duration_ns", r.end_ns - r.start_ns},
                           {"user_cpu_ns", tv_ns(r.usage.ru_utime)},
                           {"system_cpu_ns", tv_ns(r.usage.ru_stime)},
                           {"max_rss_bytes", static_cast<int64_t>(r.usage.ru_maxrss) * 1024}};
  if (r.signal) result["signal"] = SignalName(*r.signal);
  if (r.timed_out) result["timed_out"] = true;
  if (r.cgroup.memory_peak_bytes > 0) result["memory_peak_bytes"] = r.cgroup.memory_peak_bytes;
  if (r.cgroup.oom_killed) result["oom_killed"] = true;
  outcome.result = result.dump();
  outcome.exit_status = r.exit_code;
  outcome.end_ns = r.end_ns;
  if (!r.error.empty()) {
    outcome.error = r.error;
  } else if (r.timed_out) {
    outcome.error = "timed out after " + FormatDuration(static_cast<int64_t>(*spec.timeout_seconds * 1e9));
  } else if (r.signal) {
    outcome.error = "killed by " + SignalName(*r.signal) + (r.cgroup.oom_killed ? " (out of memory)" : "");
  } else if (r.exit_code != 0) {
    outcome.error = "exited with status " + std::to_string(r.exit_code);
  }
  return outcome;
}

Status Run(Globals& g, const RunArgs& a, int* exit_code) {
  ASSIGN_OR_RETURN(Plan plan, MakePlan(a));
  sandbox::SandboxSpec& spec = plan.spec;
  RETURN_IF_ERROR(CheckSessionName(a.session));
  // Before any thread exists (the store starts some): signals for the
  // command must reach the thread that forwards them.
  sandbox::BlockForwardedSignals();
  // The mount first, while this process has no threads (a daemon may be
  // forked from it), then the store.
  ASSIGN_OR_RETURN(auto lease, LeaseMount(g, a.session));
  spec.root = lease->mountpoint();
  spec.name = a.session + "-" + std::to_string(getpid());
  RETURN_IF_ERROR(PrepareRoot(spec.root, spec.binds));
  const std::string store_path = StorePath(g);
  auto set_quota = [&](std::optional<uint64_t> bytes) {
    return control::Call(store_path, a.session,
                         {{"op", "quota"}, {"bytes", bytes ? nlohmann::json(*bytes) : nlohmann::json(nullptr)}})
        .status();
  };

  // While the sandbox sets itself up: open the store and start the call,
  // freezing the state before it (every write that returned before now).
  std::unique_ptr<Store> store;
  std::optional<int64_t> call_id;
  auto before_command = [&]() -> Status {
    ASSIGN_OR_RETURN(store, OpenStore(g, false));
    ASSIGN_OR_RETURN(SessionInfo session, store->GetSession(a.session));
    if (plan.disk_quota) RETURN_IF_ERROR(set_quota(plan.disk_quota));
    RETURN_IF_ERROR(FlushIfMounted(g, a.session));
    CallStart start;
    start.name = a.name;
    start.args = CallArgs(a, plan);
    ASSIGN_OR_RETURN(call_id, store->StartCall(session.branch, start));
    return Status::Ok();
  };
  signal(SIGPIPE, SIG_IGN);  // a closed stdout must not stop the capture
  std::unique_ptr<OutputCapture> output;  // once the call has started
  auto ran = sandbox::RunSandbox(
      spec, [&](int stream, std::string_view bytes) { (*output)(stream, bytes); },
      [&]() -> Status {
        RETURN_IF_ERROR(before_command());
        output = std::make_unique<OutputCapture>(*store, *call_id);
        return Status::Ok();
      });
  *exit_code = ran.ok() ? ran->exit_code : kSetupFailed;
  if (!call_id) return ran.status();  // nothing started, nothing to record

  // The state after: the daemon flushes what the command wrote.
  if (plan.disk_quota) (void)set_quota(std::nullopt);
  Status flushed = FlushIfMounted(g, a.session);
  Status ended = store->EndCall(*call_id, Outcome(ran, *output, spec)).status();
  RETURN_IF_ERROR(ran.status());
  if (!ran->error.empty()) std::cerr << "strata run: " << ran->error << "\n";
  if (ran->timed_out) std::cerr << "strata run: timed out; the sandbox was killed\n";
  // The command already saw a failed write-back (at close or fsync, as with
  // ENOSPC past --disk-quota); it is not a failure of the run.
  if (!flushed.ok()) std::cerr << "strata run: warning: " << flushed.message() << "\n";
  RETURN_IF_ERROR(output->status_.WithContext("storing the command's output"));
  return ended;
}

}  // namespace

void AddRunCommand(CLI::App& app, Globals& g, int* exit_code) {
  static RunArgs a;
  auto* run = g.Add(app, "run", "Run a command in a sandbox whose root is the session",
                    [&g, exit_code] { return Run(g, a, exit_code); });
  run->add_option("session", a.session, "Session (its files are the sandbox's /)")->required();
  run->add_option("command", a.command, "Command and arguments (after --)");
  run->add_flag("-t,--tty", a.tty, "Give the command a terminal (interactive, like docker -it)");
  run->add_option("-e,--env", a.env, "K=V, or K to pass the host's value (repeatable)")
      ->allow_extra_args(false);
  run->add_flag("--record-env", a.record_env, "Record environment values in the history (default: names only)");
  run->add_option("-w,--cwd", a.cwd, "Working directory inside the sandbox (default /)");
  run->add_option("-u,--user", a.user, "UID[:GID] to run as (default 0:0)");
  run->add_option("--bind", a.binds, "HOST:SANDBOX[:ro] bind mount (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--net", a.net, "none (default: loopback only) or host");
  run->add_option("--memory", a.memory, "Memory limit, e.g. 512m (cgroup)");
  run->add_option("--pids", a.pids, "Process/thread limit (cgroup)");
  run->add_option("--cpus", a.cpus, "CPU limit in CPUs, e.g. 0.5 (cgroup)");
  run->add_option("--timeout", a.timeout, "Kill the sandbox after SECONDS (exit 124)");
  run->add_option("--rlimit", a.rlimits, "NAME=SOFT[:HARD], e.g. nofile=1024 (repeatable)")
      ->allow_extra_args(false);
  run->add_option("--disk-quota", a.disk_quota,
                  "How much the command may grow the session, e.g. 100m (ENOSPC past it)");
  run->add_option("--seccomp", a.seccomp, "Docker-format seccomp profile replacing the default");
  run->add_flag("--userns", a.userns, "Map root inside to uid 100000 outside (user namespace)");
  run->add_option("--name", a.name, "Tool-call name recorded in the history (default run)");
}

}  // namespace strata::cli
