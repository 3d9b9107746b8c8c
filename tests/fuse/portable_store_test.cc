// A store moves to another machine as one file: after `strata umount` the
// store file alone (no -wal, no -shm, no socket, nothing under /run) holds
// everything, and a copy of it mounts elsewhere with every file, link,
// xattr and snapshot intact. "Elsewhere" is a child in new mount and UTS
// namespaces, with its own empty /run and another hostname, using the copy
// at another path.
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "testing/temp_store.h"

namespace strata {
namespace {

class PortableStoreTest : public ::testing::Test {
 protected:
  // Runs a shell script with `strata` as $STRATA; returns its exit status.
  static int Sh(const std::string& script) {
    std::string cmd = "STRATA='" + std::string(STRATA_CLI) + "'; set -e; " + script;
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
  }

  // Runs `script` in a child with new mount and UTS namespaces, a fresh
  // tmpfs on /run and the hostname "elsewhere".
  static int ShElsewhere(const std::string& script) {
    pid_t pid = fork();
    if (pid == 0) {
      if (unshare(CLONE_NEWNS | CLONE_NEWUTS) != 0) _exit(90);
      if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(91);
      if (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) _exit(92);
      if (sethostname("elsewhere", 9) != 0) _exit(93);
      _exit(Sh(script));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }

  testing::TempDir dir_;
};

TEST_F(PortableStoreTest, CopiedStoreFileMountsElsewhereWithEverything) {
  const std::string store = dir_.File("store.db");
  const std::string here = dir_.File("here");
  const std::string tree = "/usr/include/linux";
  ASSERT_TRUE(std::filesystem::is_directory(tree));
  const std::string S = "\"$STRATA\" --store '" + store + "' ";
  ASSERT_EQ(Sh("mkdir -p '" + here + "'; " + S + "init --base empty main >/dev/null; " + S + "mount main '" +
               here + "' >/dev/null"),
            0);
  int rc = Sh("cp -a '" + tree + "' '" + here + "/tree'; ln -s tree/stddef.h '" + here +
              "/link'; head -c 3000000 /dev/urandom > '" + here + "/big'; cp '" + here +
              "/big' '" + dir_.File("big.expected") + "'; " + S + "snapshot main moved >/dev/null");
  bool xattr_set =
      setxattr((here + "/big").c_str(), "user.origin", "here", 4, 0) == 0;
  // A change after the snapshot: the copy must hold the head, not only the snapshot.
  rc |= Sh("echo after > '" + here + "/after'");
  ASSERT_EQ(Sh("\"$STRATA\" umount '" + here + "'"), 0);
  ASSERT_EQ(rc, 0);
  ASSERT_TRUE(xattr_set);

  // Nothing but the store file is left beside it.
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "store.db" || name == "here" || name == "big.expected") << name;
  }

  const std::string away = dir_.File("away");
  const std::string moved = dir_.File("away/copy.db");
  const std::string there = dir_.File("away/there");
  std::filesystem::create_directories(there);
  std::filesystem::copy_file(store, moved);
  const std::string M = "\"$STRATA\" --store '" + moved + "' ";
  std::string check =
      M + "mount main '" + there + "' >/dev/null; "
      "ok=0; "
      "diff -r --no-dereference '" + tree + "' '" + there + "/tree' || ok=1; "
      "[ \"$(readlink '" + there + "/link')\" = tree/stddef.h ] || ok=2; "
      "cmp '" + dir_.File("big.expected") + "' '" + there + "/big' || ok=3; "
      "[ \"$(cat '" + there + "/after')\" = after ] || ok=4; "
      "[ \"$(hostname)\" = elsewhere ] || ok=5; "
      "[ ! -e /run/strata ] || [ -z \"$(ls /run/strata | grep -v -e '[.]sock$' -e '[.]lock$')\" ] || ok=6; "
      "\"$STRATA\" umount '" + there + "' || ok=7; " +
      M + "cat main@moved:/big | cmp - '" + dir_.File("big.expected") + "' || ok=8; " +
      M + "ls main@moved:/ | grep -q after && ok=9; "
      "exit $ok";
  EXPECT_EQ(ShElsewhere(check), 0);

  // The xattr travelled too (read through a mount here, from the copy).
  ASSERT_EQ(Sh(M + "mount main '" + there + "' >/dev/null"), 0);
  char value[16] = {};
  ssize_t n = getxattr((there + "/big").c_str(), "user.origin", value, sizeof(value));
  EXPECT_EQ(std::string(value, n > 0 ? static_cast<size_t>(n) : 0), "here");
  EXPECT_EQ(Sh("\"$STRATA\" umount '" + there + "'"), 0);
}

}  // namespace
}  // namespace strata
