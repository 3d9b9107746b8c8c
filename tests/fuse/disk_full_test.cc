// A full disk under the store: the store lives on a 48 MiB tmpfs, a real
// `strata mount` daemon serves it, and a writer fills it. Writers must get
// ENOSPC (not EIO, no crash), what was fsync'd before must stay intact, and
// once space is freed the same mount takes writes again.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/random_bytes.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::RunStrata;


// Writes `data` to `path` and fsyncs; returns 0 or the errno of the first
// failing call (open, write, fsync or close).
int WriteFile(const std::string& path, const std::string& data, size_t piece = 1 << 20) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) return errno;
  int err = 0;
  for (size_t off = 0; off < data.size() && err == 0; off += piece) {
    size_t n = std::min(piece, data.size() - off);
    if (::write(fd, data.data() + off, n) != static_cast<ssize_t>(n)) err = errno ? errno : EIO;
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

// The file's bytes, or "error: ..." when a read fails.
std::string ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return std::string("error: open: ") + strerror(errno);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      out = std::string("error: read: ") + strerror(errno);
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Compares without printing megabytes of bytes.
::testing::AssertionResult SameBytes(const std::string& got, const std::string& want) {
  if (got == want) return ::testing::AssertionSuccess();
  if (got.rfind("error: ", 0) == 0) return ::testing::AssertionFailure() << got;
  size_t at = 0;
  while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
  return ::testing::AssertionFailure() << got.size() << " bytes instead of " << want.size()
                                       << ", first difference at " << at;
}

class DiskFullTest : public ::testing::Test {
 protected:
  // The store's files and the free space, for failure messages.
  std::string DiskUsage() const {
    std::string out;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::error_code ec;
      auto size = std::filesystem::file_size(store_ + suffix, ec);
      out += "store.db" + std::string(suffix) + ": " + (ec ? "-" : std::to_string(size)) + " ";
    }
    struct statvfs st {};
    if (statvfs(disk_.c_str(), &st) == 0) {
      out += "free: " + std::to_string(uint64_t{st.f_bavail} * st.f_frsize);
    }
    return out;
  }

  void SetUp() override {
    disk_ = dir_.File("disk");
    mnt_ = dir_.File("mnt");
    std::filesystem::create_directories(disk_);
    std::filesystem::create_directories(mnt_);
    ASSERT_EQ(::mount("tmpfs", disk_.c_str(), "tmpfs", 0, "size=48m"), 0) << strerror(errno);
    tmpfs_mounted_ = true;
    store_ = disk_ + "/store.db";
    auto init = RunStrata(dir_, store_, "init s --base empty");
    ASSERT_EQ(init.exit_code, 0) << init.err;
    auto mount = RunStrata(dir_, store_, "mount s " + mnt_);
    ASSERT_EQ(mount.exit_code, 0) << mount.err;
    mounted_ = true;
  }

  void TearDown() override {
    if (mounted_) {
      if (RunStrata(dir_, store_, "umount " + mnt_).exit_code != 0) ::umount2(mnt_.c_str(), MNT_DETACH);
    }
    if (tmpfs_mounted_) ::umount2(disk_.c_str(), MNT_DETACH);
  }

  testing::TempDir dir_;
  std::string disk_, mnt_, store_;
  bool tmpfs_mounted_ = false;
  bool mounted_ = false;
};

TEST_F(DiskFullTest, WritersGetEnospcNothingSyncedIsLostAndSpaceFreedIsUsedWithoutRemount) {
  const std::string precious = testing::IncompressibleBytes(2 << 20, 1);
  ASSERT_EQ(WriteFile(mnt_ + "/precious", precious), 0);
  // Ballast on the same disk, removed later to free space. (Enough for the
  // failed file's data too: the daemon keeps what it could not write and
  // tries again with the next flush.)
  ASSERT_EQ(WriteFile(disk_ + "/ballast", testing::IncompressibleBytes(16 << 20, 2)), 0);

  // Fill: 4 MiB files, each fsync'd, until one fails.
  int err = 0;
  int written = 0;
  for (; written < 40 && err == 0; ++written) {
    err = WriteFile(mnt_ + "/fill" + std::to_string(written), testing::IncompressibleBytes(4 << 20, 100 + written));
  }
  ASSERT_EQ(err, ENOSPC) << "after " << written << " files: " << strerror(err);
  // What filled the disk is the store file: low on space, every commit is
  // copied back from the WAL before the next write begins, so the WAL holds
  // no more than the last commit (if the disk had no room to copy it back)
  // and the failed one, 4 MiB each. (A WAL holding many commits needs as
  // much space again to be copied back once space is freed; here it held
  // up to 30 MiB when the checkpoint thread fell behind the writer, and the
  // space freed went to copying it back instead of to new writes.)
  EXPECT_LE(std::filesystem::file_size(store_ + "-wal"), 9u << 20) << DiskUsage();

  // The mount still answers, and what was synced reads back.
  EXPECT_TRUE(SameBytes(ReadFile(mnt_ + "/precious"), precious));
  for (int i = 0; i + 1 < written; ++i) {
    EXPECT_TRUE(SameBytes(ReadFile(mnt_ + "/fill" + std::to_string(i)), testing::IncompressibleBytes(4 << 20, 100 + i)))
        << "fill" << i << " was fsync'd before the disk filled";
  }

  // Free space beside the store: the same mount takes writes again.
  ASSERT_EQ(::unlink((disk_ + "/ballast").c_str()), 0);
  const std::string after = testing::IncompressibleBytes(2 << 20, 3);
  // The first fsync after the failure may report it once more (changes
  // batched with the failed ones were lost, and an fsync reports that to
  // its caller); written again, the file must then go through.
  if (WriteFile(mnt_ + "/after", after) != 0) {
    EXPECT_EQ(WriteFile(mnt_ + "/after", after), 0) << DiskUsage();
  }
  EXPECT_TRUE(SameBytes(ReadFile(mnt_ + "/after"), after));
  // Unmounting writes what the daemon still holds (the failed file's
  // data, kept and retried), which fills this small disk again: give it
  // room, as an operator would, before reading the store back.
  ASSERT_EQ(::mount("tmpfs", disk_.c_str(), "tmpfs", MS_REMOUNT, "size=96m"), 0) << strerror(errno);
  auto umount = RunStrata(dir_, store_, "umount " + mnt_);
  ASSERT_EQ(umount.exit_code, 0) << umount.err;
  mounted_ = false;
  auto fsck = RunStrata(dir_, store_, "fsck");
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
  auto cat = RunStrata(dir_, store_, "cat s:/precious");
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_TRUE(SameBytes(cat.out, precious)) << "precious changed after the disk filled";
  auto cat_after = RunStrata(dir_, store_, "cat s:/after");
  EXPECT_TRUE(SameBytes(cat_after.out, after));
}

}  // namespace
}  // namespace strata
