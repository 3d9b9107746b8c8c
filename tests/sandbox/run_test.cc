// End-to-end tests of `strata run`: real namespaces, a real FUSE mount of a
// session on the host base, the real seccomp filter and cgroups.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "control/control.h"
#include "testing/cli_runner.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::CliRun;
using testing::Slurp;

// A store of this test process's own, holding a session "base" on the host
// base (taken in milliseconds, and as the host is now: a store kept from an
// earlier run would stand for the host as it was then).
const std::string& SharedStore() {
  static testing::TempDir dir;
  static const std::string path = [] {
    std::string store = dir.File("run_test.db");
    std::string cmd = std::string(STRATA_CLI) + " --store '" + store + "' init base >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) std::abort();
    return store;
  }();
  return path;
}

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    session_ = std::string(info->name()) + "-" + std::to_string(getpid());
    ASSERT_EQ(Strata("fork base " + session_).exit_code, 0);
  }
  void TearDown() override { Strata("rm " + session_); }

  CliRun Strata(const std::string& args, const std::string& input = "") {
    return testing::RunStrata(dir_, SharedStore(), args, input);
  }

  // `strata run [options] SESSION -- sh -c SCRIPT`.
  CliRun Run(const std::string& script, const std::string& options = "") {
    return Strata("run " + options + " " + session_ + " -- sh -c '" + script + "'");
  }

  // The probe binary, visible inside the sandbox as /probe.
  CliRun Probe(const std::string& what, const std::string& options = "") {
    return Strata("run --bind " + std::string(STRATA_PROBE) + ":/probe:ro " + options + " " +
                  session_ + " -- /probe " + what);
  }

  nlohmann::json LastCall() {
    CliRun log = Strata("--json log " + session_ + " --limit 1");
    auto calls = nlohmann::json::parse(log.out, nullptr, false);
    if (!calls.is_array() || calls.empty()) return nullptr;
    CliRun show = Strata("--json show " + session_ + " " + std::to_string(calls[0]["id"].get<int64_t>()));
    return nlohmann::json::parse(show.out, nullptr, false);
  }

  testing::TempDir dir_;
  std::string session_;
};

TEST_F(RunTest, IsolationBatteryFailsSafely) {
  // A service on the host's loopback, which --net none must not reach.
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::string port = std::to_string(ntohs(addr.sin_port));
  const std::string host_pid = std::to_string(getpid());
  const std::string host_file = dir_.File("host-secret");
  std::ofstream(host_file) << "secret";
  char hostname_before[256] = {};
  gethostname(hostname_before, sizeof(hostname_before) - 1);

  const std::vector<std::string> cases = {
      "mount", "umount", "unshare", "unshare-user", "clone-newns", "setns", "pivot_root",
      "chroot", "open_by_handle_at", "ptrace " + host_pid, "kill " + host_pid, "keyctl", "bpf",
      "init_module", "reboot", "clock_settime", "io_uring", "userfaultfd", "mknod-block",
      "write /proc/sys/kernel/hostname", "write /proc/sysrq-trigger",
      "create /sys/probe", "raw-socket", "af-alg", "af-vsock", "connect " + port,
      "read " + host_file, "read /etc/shadow", "read /root/.bash_history", "sethostname"};
  for (const std::string& c : cases) {
    SCOPED_TRACE(c);
    CliRun r = Probe(c);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("denied"), std::string::npos) << r.out << r.err;
  }
  close(listener);
  char hostname_after[256] = {};
  gethostname(hostname_after, sizeof(hostname_after) - 1);
  EXPECT_STREQ(hostname_before, hostname_after);
}

TEST_F(RunTest, TheSameAttemptsSucceedOrFailDifferentlyOutsideTheFilter) {
  // The battery is only meaningful if the probe can tell: on the host, as
  // root, the unfiltered calls fail with their own errors, not EPERM.
  for (const char* c : {"setns", "chroot", "bpf", "keyctl", "reboot"}) {
    SCOPED_TRACE(c);
    std::string out = dir_.File("probe.out");
    int status = std::system((std::string(STRATA_PROBE) + " " + c + " >" + out).c_str());
    EXPECT_NE(WEXITSTATUS(status), 0) << Slurp(out);
  }
}

TEST_F(RunTest, TheSandboxSeesOnlyItsOwnProcesses) {
  CliRun r = Run("ls /proc | grep -c \"^[0-9]\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LE(std::stoi(r.out), 4) << r.out;  // init, sh, ls, grep
}

TEST_F(RunTest, AForkBombStopsAtThePidsLimit) {
  CliRun r = Probe("fork-bomb", "--pids 32");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("refused after"), std::string::npos) << r.out;
}

TEST_F(RunTest, AMemoryHogIsKilledAtTheMemoryLimit) {
  CliRun r = Run("exec python3 -c \"b = bytearray(512 << 20); print(len(b))\"", "--memory 64m");
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  nlohmann::json call = LastCall();
  ASSERT_TRUE(call.is_object());
  const nlohmann::json& result = call["result"];
  EXPECT_EQ(result.value("signal", ""), "SIGKILL");
  EXPECT_TRUE(result.value("oom_killed", false)) << result.dump();
}

TEST_F(RunTest, ADiskFillerStopsAtTheDiskQuota) {
  // With the kernel's write-back cache, the error comes at close (as on NFS).
  CliRun r = Run("dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; truncate -s 1G /tmp/big 2>&1; exit 0",
                 "--disk-quota 8m");
  EXPECT_NE(r.out.find("dd: closing output file"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("truncate: failed"), std::string::npos) << r.out;
  CliRun size = Run("stat -c %s /tmp/fill");
  ASSERT_EQ(size.exit_code, 0) << size.err;
  EXPECT_LE(std::stoll(size.out), 8ll << 20);
  // Removing files gives room back.
  EXPECT_EQ(Run("rm /tmp/fill && head -c 6000000 /dev/urandom > /tmp/again", "--disk-quota 8m").exit_code, 0);
  CliRun again = Run("stat -c %s /tmp/again");
  EXPECT_EQ(again.out, "6000000\n") << again.err;
}

TEST_F(RunTest, AFileWrittenByOneRunIsThereInTheNext) {
  ASSERT_EQ(Run("echo remembered > /root/note").exit_code, 0);
  CliRun r = Run("cat /root/note");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "remembered\n");
  // The daemon the runs started unmounts and leaves no mount point behind.
  const std::string mountpoint = control::RunMountPath(SharedStore(), session_);
  for (int i = 0; i < 200 && std::filesystem::exists(mountpoint); ++i) usleep(10'000);
  EXPECT_FALSE(std::filesystem::exists(mountpoint)) << mountpoint;
}

TEST_F(RunTest, WritingSystemFilesLeavesTheHostUnchanged) {
  const std::string file = "/usr/share/common-licenses/GPL-3";
  const std::string before = Slurp(file);
  ASSERT_FALSE(before.empty());
  CliRun r = Run("echo appended >> " + file + " && rm /usr/bin/env && tail -n 1 " + file +
                 " && test ! -e /usr/bin/env");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "appended\n");
  EXPECT_EQ(Slurp(file), before);
  EXPECT_TRUE(std::filesystem::exists("/usr/bin/env"));
  nlohmann::json call = LastCall();
  ASSERT_TRUE(call.is_object());
  std::vector<std::string> changes;
  for (const auto& c : call["paths"]) {
    changes.push_back(c["kind"].get<std::string>() + " " + c["path"].get<std::string>());
  }
  EXPECT_EQ(changes, (std::vector<std::string>{"removed /usr/bin/env", "modified " + file}));
}

TEST_F(RunTest, TheSandboxHasItsOwnEmptyTmpRootAndHome) {
  CliRun r = Run("find /tmp /root /home -mindepth 1 | wc -l; test -e /etc/shadow && echo shadow; exit 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0\n");
}

TEST_F(RunTest, ExitCodesAndSignalsPropagate) {
  EXPECT_EQ(Run("exit 7").exit_code, 7);
  EXPECT_EQ(Run("kill -TERM $$").exit_code, 143);
  CliRun missing = Strata("run " + session_ + " -- /no/such/program");
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_NE(missing.err.find("cannot run '/no/such/program'"), std::string::npos) << missing.err;
}

TEST_F(RunTest, TimeoutKillsTheWholeProcessTree) {
  const std::string marker = "31.4159";
  CliRun r = Run("sleep " + marker + " & sleep " + marker, "--timeout 0.5");
  EXPECT_EQ(r.exit_code, 124) << r.err;
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  // (The pattern does not match the shell that runs pgrep.)
  EXPECT_NE(std::system("pgrep -f '^sleep 31[.]4159' >/dev/null"), 0)
      << "a process of the sandbox outlived it";
}

TEST_F(RunTest, SignalsAreForwardedToTheCommand) {
  // `strata run` gets SIGTERM while the command waits; the command's trap runs.
  std::string out = dir_.File("out");
  std::string cmd = std::string(STRATA_CLI) + " --store '" + SharedStore() + "' run " + session_ +
                    " -- sh -c 'trap \"echo caught; exit 5\" TERM; while :; do sleep 0.05; done' >" +
                    out + " 2>&1 & pid=$!; sleep 1; kill -TERM $pid; wait $pid";
  int status = std::system(("bash -c '" + std::string() + "' 2>/dev/null; " + cmd).c_str());
  EXPECT_EQ(WEXITSTATUS(status), 5) << Slurp(out);
  EXPECT_NE(Slurp(out).find("caught"), std::string::npos) << Slurp(out);
}

TEST_F(RunTest, InteractiveTerminalUnderAPseudoTerminal) {
  // script(1) gives `strata run -t` a terminal of 33x91; the command sees a
  // terminal of the same size and reads what is typed.
  std::string out = dir_.File("tty.out");
  std::string inner = std::string(STRATA_CLI) + " --store " + SharedStore() + " run -t " + session_ +
                      " -- sh -c \"test -t 0 && echo TTY; stty size; read x; echo got \\$x\"";
  std::string cmd = "printf 'typed\\n' | script -qec 'stty cols 91 rows 33; " + inner +
                    "' /dev/null >" + out;
  int status = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 0) << Slurp(out);
  std::string text = Slurp(out);
  EXPECT_NE(text.find("TTY"), std::string::npos) << text;
  EXPECT_NE(text.find("33 91"), std::string::npos) << text;
  EXPECT_NE(text.find("got typed"), std::string::npos) << text;
}

TEST_F(RunTest, WindowSizeChangesReachTheSandboxTerminal) {
  std::string out = dir_.File("resize.out");
  std::string cmd = std::string("python3 ") + STRATA_SOURCE_DIR + "/tests/sandbox/resize_terminal.py " +
                    STRATA_CLI + " --store '" + SharedStore() + "' run -t " + session_ +
                    " -- sh -c 'stty size; trap \"stty size; exit 0\" WINCH; echo ready; sleep 10 & wait' >" + out;
  int status = std::system(cmd.c_str());
  std::string text = Slurp(out);
  EXPECT_EQ(WEXITSTATUS(status), 0) << text;
  EXPECT_NE(text.find("24 80"), std::string::npos) << text;
  EXPECT_NE(text.find("40 120"), std::string::npos) << text;
}

TEST_F(RunTest, CtrlCAtTheTerminalInterruptsTheCommand) {
  // Ctrl-C typed into `strata run -t` reaches the command as SIGINT (the
  // terminal is raw outside, so the byte travels to the sandbox's terminal).
  std::string out = dir_.File("ctrl-c.out");
  std::string inner = std::string(STRATA_CLI) + " --store " + SharedStore() + " run -t " +
                      session_ + " -- sleep 30";
  std::string cmd = "(sleep 1; printf '\\003') | script -qec '" + inner + "' /dev/null >" + out;
  int status = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 130) << Slurp(out);
}

TEST_F(RunTest, KillingStrataRunKillsTheSandbox) {
  std::string cmd = std::string(STRATA_CLI) + " --store '" + SharedStore() + "' run " + session_ +
                    " -- sh -c 'sleep 31.2718 & sleep 31.2718' & pid=$!; sleep 1; kill -9 $pid; "
                    "wait $pid; sleep 0.5; pgrep -f '^sleep 31[.]2718'";
  EXPECT_NE(WEXITSTATUS(std::system(cmd.c_str())), 0) << "a sandbox process outlived strata run";
}

TEST_F(RunTest, SeveralSandboxesRunInOneSessionAtOnce) {
  // Four at once on a session nobody mounted: they share one daemon.
  std::string cmd;
  for (int i = 0; i < 4; ++i) {
    cmd += std::string(STRATA_CLI) + " --store '" + SharedStore() + "' run " + session_ +
           " -- sh -c 'sleep 0.3; echo " + std::to_string(i) + " > /tmp/par" + std::to_string(i) +
           "' 2>" + dir_.File("err" + std::to_string(i)) + " & pids+=(\\$!); ";
  }
  // Each by its pid: `wait -n` loses a status when two end at once.
  cmd += "fail=0; for p in \\${pids[@]}; do wait \\$p || fail=1; done; exit \\$fail";
  EXPECT_EQ(std::system(("bash -c \"" + cmd + "\"").c_str()), 0)
      << Slurp(dir_.File("err0")) << Slurp(dir_.File("err1")) << Slurp(dir_.File("err2"))
      << Slurp(dir_.File("err3"));
  CliRun r = Run("cat /tmp/par0 /tmp/par1 /tmp/par2 /tmp/par3");
  EXPECT_EQ(r.out, "0\n1\n2\n3\n") << r.err;
  CliRun log = Strata("--json log " + session_);
  EXPECT_EQ(nlohmann::json::parse(log.out).size(), 5u) << log.out;
}

TEST_F(RunTest, UserCwdAndEnvApply) {
  CliRun r = Run("id -u; id -g; pwd; echo $GREETING; echo ${SECRET:-unset}",
                 "--user 1000:1001 --cwd /tmp --env GREETING=hello");
  EXPECT_EQ(r.out, "1000\n1001\n/tmp\nhello\nunset\n") << r.err;
  nlohmann::json call = LastCall();
  EXPECT_TRUE(call["args"]["env"].contains("GREETING"));
  EXPECT_TRUE(call["args"]["env"]["GREETING"].is_null());  // names only, by default
}

TEST_F(RunTest, UserNamespaceMapsRootToAnUnprivilegedUid) {
  CliRun r = Run("id -u; cat /proc/self/uid_map; touch /tmp/made", "--userns");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0     100000      65536"), std::string::npos) << r.out;
  CliRun ls = Strata("ls " + session_ + ":/tmp/made");
  EXPECT_NE(ls.out.find("100000:100000"), std::string::npos) << ls.out;
  EXPECT_NE(Run("echo x > /root/denied", "--userns").exit_code, 0);
}

TEST_F(RunTest, OutputInTheHistoryEqualsWhatWasPrinted) {
  CliRun r = Run("printf \"out %s\\n\" 1 2 3; printf \"err\\n\" >&2; head -c 1000000 /dev/zero | tr \"\\0\" x");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json call = LastCall();
  ASSERT_TRUE(call.is_object());
  EXPECT_EQ(call["stdout"].get<std::string>(), r.out);
  EXPECT_EQ(call["stderr"].get<std::string>(), r.err);
  EXPECT_EQ(call["status"], "ok");
  EXPECT_EQ(call["exit_status"], 0);
}

TEST_F(RunTest, TheDiffOfARunListsExactlyWhatItChanged) {
  ASSERT_EQ(Run("mkdir -p /work && echo a > /work/edit && echo b > /work/gone").exit_code, 0);
  ASSERT_EQ(Run("echo new > /work/new; echo more >> /work/edit; rm /work/gone").exit_code, 0);
  nlohmann::json call = LastCall();
  ASSERT_TRUE(call.is_object());
  std::vector<std::string> changes;
  for (const auto& c : call["paths"]) {
    changes.push_back(c["kind"].get<std::string>() + " " + c["path"].get<std::string>());
  }
  EXPECT_EQ(changes, (std::vector<std::string>{"modified /work/edit", "removed /work/gone",
                                               "added /work/new"}));
}

TEST_F(RunTest, AnImageImportedFromATarballBootsAShell) {
  // A minimal root: dash and the libraries it links, as a tarball.
  const std::string root = dir_.File("rootfs");
  std::string make = "mkdir -p '" + root + "/bin' && cp /bin/dash '" + root + "/bin/sh' && " +
                     "for lib in $(ldd /bin/dash | grep -o '/[^ ]*'); do mkdir -p '" + root +
                     "'$(dirname $lib) && cp -L $lib '" + root + "'$lib; done && tar -C '" +
                     root + "' -cf '" + dir_.File("mini.tar") + "' .";
  ASSERT_EQ(std::system(make.c_str()), 0);
  const std::string image = "mini-" + std::to_string(getpid());
  const std::string session = image + "-s";
  ASSERT_EQ(Strata("image import " + image + " " + dir_.File("mini.tar")).exit_code, 0);
  CliRun init = Strata("init --image " + image + " " + session);
  ASSERT_EQ(init.exit_code, 0) << init.err;
  CliRun r = Strata("run " + session + " -- /bin/sh -c 'echo booted; echo /*'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 7), "booted\n");
  EXPECT_NE(r.out.find("/bin"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("/usr/bin"), std::string::npos) << r.out;  // nothing of the host
  Strata("rm " + session);
  Strata("image rm " + image);
}

TEST_F(RunTest, TheQuickStartAgentDemoRuns) {
  std::string out = dir_.File("demo.out");
  std::string cmd = "STRATA_STORE='" + SharedStore() + "' DEMO_SESSION=" + session_ +
                    "-demo " + STRATA_SOURCE_DIR + "/tools/agent-demo.sh " + STRATA_CLI + " >" +
                    out + " 2>&1";
  int status = std::system(cmd.c_str());
  std::string text = Slurp(out);
  EXPECT_EQ(WEXITSTATUS(status), 0) << text;
  EXPECT_NE(text.find("4 words"), std::string::npos) << text;
  EXPECT_NE(text.find("  - /work/count.py"), std::string::npos) << text;
  EXPECT_NE(text.find("  + /work/next.py"), std::string::npos) << text;
  EXPECT_NE(text.find("+jumps over the lazy dog"), std::string::npos) << text;
  Strata("rm " + session_ + "-demo");
}

TEST_F(RunTest, BadOptionsAreRefusedClearly) {
  EXPECT_NE(Strata("run " + session_).exit_code, 0);
  CliRun r = Strata("run --memory lots " + session_ + " -- true");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is not a size"), std::string::npos) << r.err;
  r = Strata("run --net bridge " + session_ + " -- true");
  EXPECT_NE(r.err.find("--net must be"), std::string::npos) << r.err;
  r = Strata("run --rlimit bogus=1 " + session_ + " -- true");
  EXPECT_NE(r.err.find("unknown resource limit"), std::string::npos) << r.err;
  r = Strata("run --seccomp /no/such.json " + session_ + " -- true");
  EXPECT_NE(r.err.find("cannot read seccomp profile"), std::string::npos) << r.err;
  r = Strata("run no-such-session -- true");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(std::filesystem::exists(control::RunMountPath(SharedStore(), "no-such-session")));
}

TEST_F(RunTest, ASeccompProfileReplacesTheDefault) {
  // A profile that allows everything but denies mkdir with errno 38.
  const std::string profile = dir_.File("profile.json");
  std::ofstream(profile) << R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]})";
  CliRun r = Run("mkdir /tmp/d 2>&1; exit 0", "--seccomp " + profile);
  EXPECT_NE(r.out.find("Function not implemented"), std::string::npos) << r.out << r.err;
  std::ofstream(profile) << "{not json";
  r = Run("true", "--seccomp " + profile);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("seccomp profile"), std::string::npos) << r.err;
}

TEST_F(RunTest, RlimitsApply) {
  CliRun r = Run("ulimit -n", "--rlimit nofile=123");
  EXPECT_EQ(r.out, "123\n") << r.err;
}

TEST_F(RunTest, HostNetworkReachesTheHostLoopback) {
  CliRun r = Run("cat /proc/net/dev | grep -c :", "--net host");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  CliRun none = Run("cat /proc/net/dev | grep -c :");
  EXPECT_EQ(none.out, "1\n");  // only lo
  EXPECT_NE(r.out, none.out);
}

}  // namespace
}  // namespace strata
