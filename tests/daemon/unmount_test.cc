// Mount points with hostile names: quotes, spaces, $(...), newlines and bytes
// that are not UTF-8, mounted and unmounted through the real CLI, as root and
// as an unprivileged user (whose unmount goes through fusermount3). No shell
// may ever see the name: a `$(touch ...)` in it must create nothing.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testing/temp_store.h"

namespace strata {
namespace {

constexpr uid_t kNobody = 65534;

// Runs the CLI with `args` as separate arguments (no shell), as `uid`, in
// `cwd`, with its output discarded; its exit status.
int RunCli(uid_t uid, const std::string& cwd, std::vector<std::string> args) {
  args.insert(args.begin(), STRATA_CLI);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    if (chdir(cwd.c_str()) != 0) _exit(126);
    if (uid != 0 && (setgid(kNobody) != 0 || setuid(uid) != 0)) _exit(126);
    if (uid != 0) unsetenv("XDG_RUNTIME_DIR");
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Whether /proc/self/mountinfo lists a mount at `path` (a stat would not
// do: another user's FUSE mount refuses even root).
bool IsMountPoint(const std::string& path) {
  std::ifstream info("/proc/self/mountinfo");
  std::string line;
  while (std::getline(info, line)) {
    std::istringstream fields(line);
    std::string skip, point;
    fields >> skip >> skip >> skip >> skip >> point;
    std::string decoded;  // the kernel writes space, tab, newline, \ as \ooo
    for (size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        decoded.push_back(static_cast<char>(std::stoi(point.substr(i + 1, 3), nullptr, 8)));
        i += 3;
      } else {
        decoded.push_back(point[i]);
      }
    }
    if (decoded == path) return true;
  }
  return false;
}

const std::vector<std::string>& HostileNames() {
  static const std::vector<std::string> names = {
      "q'uote",   "two words", "a'$(touch pwned1)'b", "$(touch pwned2)", "`touch pwned3`",
      "new\nline", "bad\xff\xfe-bytes", "-dash",          "tab\tand\\back"};
  return names;
}

class HostileMountpointTest : public ::testing::TestWithParam<uid_t> {
 protected:
  void SetUp() override {
    uid_ = GetParam();
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mounts, and a switch to another user)";
    if (access("/dev/fuse", F_OK) != 0) GTEST_SKIP() << "no /dev/fuse";
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::all);
    if (uid_ != 0) {
      // An unprivileged user mounts through /dev/fuse, which Debian makes
      // 0666 (some machines make it root-only: opened here for the test).
      struct stat st;
      ASSERT_EQ(stat("/dev/fuse", &st), 0);
      fuse_mode_ = st.st_mode & 07777;
      if ((fuse_mode_ & 0006) != 0006) {
        ASSERT_EQ(chmod("/dev/fuse", 0666), 0);
      }
      ASSERT_EQ(chown(dir_.path().c_str(), uid_, kNobody), 0);
    }
    store_ = dir_.File("store.db");
    ASSERT_EQ(RunCli(uid_, dir_.path(), {"--store", store_, "init", "s", "--base", "empty"}), 0);
  }

  void TearDown() override {
    if (fuse_mode_ != 0 && (fuse_mode_ & 0006) != 0006) chmod("/dev/fuse", fuse_mode_);
  }

  uid_t uid_ = 0;
  mode_t fuse_mode_ = 0;
  testing::TempDir dir_;
  std::string store_;
};

TEST_P(HostileMountpointTest, MountAndUnmountWithoutAShell) {
  for (const std::string& name : HostileNames()) {
    SCOPED_TRACE("mount point name: " + name);
    const std::string mnt = dir_.File(name);
    ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
    if (uid_ != 0) {
      ASSERT_EQ(chown(mnt.c_str(), uid_, kNobody), 0);
    }
    ASSERT_EQ(RunCli(uid_, dir_.path(), {"--store", store_, "mount", "s", mnt}), 0);
    EXPECT_TRUE(IsMountPoint(mnt));
    EXPECT_EQ(RunCli(uid_, dir_.path(), {"--store", store_, "umount", mnt}), 0);
    EXPECT_FALSE(IsMountPoint(mnt));
    if (IsMountPoint(mnt)) umount2(mnt.c_str(), MNT_DETACH);
  }
  for (const char* canary : {"pwned1", "pwned2", "pwned3"}) {
    EXPECT_FALSE(std::filesystem::exists(dir_.File(canary))) << "a shell ran part of a name";
  }
}

INSTANTIATE_TEST_SUITE_P(AsRootAndAsAUser, HostileMountpointTest,
                         ::testing::Values(uid_t{0}, kNobody),
                         [](const auto& param) { return param.param == 0 ? "Root" : "Nobody"; });

}  // namespace
}  // namespace strata
