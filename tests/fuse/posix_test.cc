// POSIX behaviour of the mount, through real system calls on the mounted
// tree: open flags, I/O, holes, renames, links, times, xattrs, locks, mmap,
// fallocate, open-unlinked files and (in forked children that drop to uid
// 65534) the kernel's permission checks against the owners and modes Strata
// reports.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <grp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "testing/mounted_fs.h"

namespace strata {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// Fails the test (and returns from it) when a call returns -1.
#define SYS(expr)                                                        \
  do {                                                                   \
    if ((expr) == -1) FAIL() << #expr << ": " << std::strerror(errno);   \
  } while (0)

// errno of a call expected to fail, or 0 if it succeeded.
#define ERRNO_OF(expr) (((expr) == -1) ? errno : 0)

class PosixTest : public testing::MountedTest {
 protected:
  // Children that drop to uid 65534 must reach the mount at all.
  std::vector<std::string> ExtraMountOptions() override { return {"allow_other"}; }

  void SetUp() override {
    MountedTest::SetUp();
    if (HasFatalFailure()) return;
    // mkdtemp made the directory above the mount 0700: let others through.
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0) << std::strerror(errno);
  }

  // Opens (creating) `rel` and writes `content` through the mount.
  void Put(const std::string& rel, const std::string& content) {
    int fd = open(P(rel).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << rel << ": " << std::strerror(errno);
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ASSERT_EQ(close(fd), 0);
  }

  std::string Get(const std::string& rel) { return ReadHostFile(P(rel)); }

  static struct stat Stat(const std::string& path) {
    struct stat st;
    std::memset(&st, 0, sizeof(st));
    if (lstat(path.c_str(), &st) != 0) st.st_ino = 0;
    return st;
  }

  // Runs `fn` in a forked child and returns its exit code (fn's result), or
  // 200+ when the child could not change identity or died. As nobody, the
  // child has real, effective and saved uid and gid 65534; the test process
  // itself never changes uid: the FUSE server threads live in it. The child
  // should only make system calls on prepared buffers.
  static int InChild(const std::function<int()>& fn, bool as_nobody = false) {
    pid_t pid = fork();
    if (pid == 0) {
      if (as_nobody) {
        if (setgroups(0, nullptr) != 0) _exit(201);
        if (setresgid(kNogroup, kNogroup, kNogroup) != 0) _exit(202);
        if (setresuid(kNobody, kNobody, kNobody) != 0) _exit(203);
      }
      _exit(fn());
    }
    if (pid < 0) return 204;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return 205;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 206;
  }
  static int AsNobody(const std::function<int()>& fn) { return InChild(fn, true); }
};

// --- open flags, read and write

TEST_F(PosixTest, CreateExclusiveOnExistingFailsWithEexist) {
  Put("a", "x");
  EXPECT_EQ(ERRNO_OF(open(P("a").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644)), EEXIST);
  int fd = open(P("b").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  close(fd);
  EXPECT_EQ(Stat(P("b")).st_mode & 07777, 0600u);
  // O_CREAT without O_EXCL opens the existing file untouched.
  fd = open(P("a").c_str(), O_CREAT | O_RDONLY, 0644);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(Get("a"), "x");
}

TEST_F(PosixTest, OpenTruncTruncates) {
  Put("t", "some content here");
  int fd = open(P("t").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  struct stat st;
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_size, 0);
  SYS(write(fd, "ab", 2));
  close(fd);
  EXPECT_EQ(Get("t"), "ab");
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/t"));
  EXPECT_EQ(attr.size, 2u);
}

TEST_F(PosixTest, AppendWritesAtEndEvenAfterSeek) {
  Put("log", "0123456789");
  int fd = open(P("log").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  SYS(lseek(fd, 0, SEEK_SET));
  SYS(write(fd, "AB", 2));
  EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 12);
  // Another writer extends the file meanwhile: the next append follows it.
  int other = open(P("log").c_str(), O_WRONLY);
  ASSERT_GE(other, 0);
  SYS(pwrite(other, "xyz", 3, 12));
  SYS(write(fd, "C", 1));
  close(other);
  close(fd);
  EXPECT_EQ(Get("log"), "0123456789ABxyzC");
}

TEST_F(PosixTest, ConcurrentAppendersNeverOverwriteEachOther) {
  Put("shared", "");
  constexpr int kThreads = 4;
  constexpr int kRecords = 500;
  constexpr size_t kRecordSize = 64;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int fd = open(P("shared").c_str(), O_WRONLY | O_APPEND);
      if (fd < 0) {
        errors++;
        return;
      }
      char rec[kRecordSize];
      for (int i = 0; i < kRecords; ++i) {
        std::memset(rec, 'a' + t, sizeof(rec));
        snprintf(rec, sizeof(rec), "%d:%05d", t, i);
        rec[kRecordSize - 1] = '\n';
        if (write(fd, rec, sizeof(rec)) != static_cast<ssize_t>(sizeof(rec))) errors++;
      }
      close(fd);
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);
  std::string all = Get("shared");
  ASSERT_EQ(all.size(), kThreads * kRecords * kRecordSize);
  std::vector<int> next(kThreads, 0);
  for (size_t off = 0; off < all.size(); off += kRecordSize) {
    std::string rec = all.substr(off, kRecordSize);
    int t = rec[0] - '0';
    ASSERT_TRUE(t >= 0 && t < kThreads) << "torn record at " << off << ": " << rec;
    char expect[kRecordSize];
    std::memset(expect, 'a' + t, sizeof(expect));
    snprintf(expect, sizeof(expect), "%d:%05d", t, next[t]++);
    expect[kRecordSize - 1] = '\n';
    ASSERT_EQ(rec, std::string(expect, kRecordSize)) << "at offset " << off;
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kRecords);
  // The core holds the same bytes once the files are closed.
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/shared"));
  EXPECT_EQ(attr.size, all.size());
}

TEST_F(PosixTest, ReadWritePreadPwrite) {
  int fd = open(P("rw").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(write(fd, "hello world", 11), 11);
  EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 11);
  EXPECT_EQ(pwrite(fd, "WORLD", 5, 6), 5);
  EXPECT_EQ(lseek(fd, 0, SEEK_CUR), 11);  // pwrite leaves the offset alone
  char buf[64] = {};
  EXPECT_EQ(pread(fd, buf, sizeof(buf), 0), 11);
  EXPECT_EQ(std::string(buf, 11), "hello WORLD");
  EXPECT_EQ(pread(fd, buf, 4, 2), 4);
  EXPECT_EQ(std::string(buf, 4), "llo ");
  EXPECT_EQ(pread(fd, buf, 4, 11), 0);  // at EOF
  EXPECT_EQ(pread(fd, buf, 4, 1000), 0);  // past EOF
  SYS(lseek(fd, 0, SEEK_SET));
  EXPECT_EQ(read(fd, buf, 5), 5);
  EXPECT_EQ(read(fd, buf + 5, 50), 6);
  EXPECT_EQ(read(fd, buf, 50), 0);
  // A large write spanning many blocks, read back unaligned.
  std::string big(3 * 1024 * 1024 + 123, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('A' + (i * 7) % 26);
  EXPECT_EQ(pwrite(fd, big.data(), big.size(), 5), static_cast<ssize_t>(big.size()));
  std::string back(big.size() - 1000, '\0');
  EXPECT_EQ(pread(fd, back.data(), back.size(), 505), static_cast<ssize_t>(back.size()));
  EXPECT_EQ(back, big.substr(500, back.size()));
  SYS(fsync(fd));
  close(fd);
  std::string expect = "hello" + big;
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/rw"));
  ASSERT_EQ(attr.size, expect.size());
  std::string core(expect.size(), '\0');
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Read(attr.ino, 0, {reinterpret_cast<uint8_t*>(core.data()),
                                                         core.size()}));
  EXPECT_EQ(n, expect.size());
  EXPECT_TRUE(core == expect);
}

TEST_F(PosixTest, TruncateAndFtruncate) {
  std::string content(10000, 'q');
  Put("tr", content);
  SYS(truncate(P("tr").c_str(), 5000));
  EXPECT_EQ(Stat(P("tr")).st_size, 5000);
  // Growing again exposes zeros, not the old bytes.
  SYS(truncate(P("tr").c_str(), 20000));
  std::string back = Get("tr");
  ASSERT_EQ(back.size(), 20000u);
  EXPECT_EQ(back.substr(0, 5000), std::string(5000, 'q'));
  EXPECT_EQ(back.substr(5000), std::string(15000, '\0'));

  int fd = open(P("tr").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  SYS(ftruncate(fd, 3));
  struct stat st;
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_size, 3);
  SYS(ftruncate(fd, 70000));
  char buf[16];
  EXPECT_EQ(pread(fd, buf, 16, 65530), 16);
  EXPECT_EQ(std::string(buf, 16), std::string(16, '\0'));
  EXPECT_EQ(pread(fd, buf, 4, 0), 4);
  EXPECT_EQ(std::string(buf, 4), std::string("qqq") + '\0');
  EXPECT_EQ(ERRNO_OF(ftruncate(fd, -1)), EINVAL);
  close(fd);
  // Truncating a directory fails.
  SYS(mkdir(P("d").c_str(), 0755));
  EXPECT_EQ(ERRNO_OF(truncate(P("d").c_str(), 0)), EISDIR);
}

TEST_F(PosixTest, HolesReadAsZerosAndTakeNoSpace) {
  int fd = open(P("sparse").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  SYS(pwrite(fd, "head", 4, 0));
  const off_t far = 100ll * 1024 * 1024;
  SYS(pwrite(fd, "tail", 4, far));
  SYS(fsync(fd));
  struct stat st;
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_size, far + 4);
  // Two small blocks of data, not 100 MiB.
  EXPECT_LT(st.st_blocks, 2048) << "st_blocks " << st.st_blocks;
  std::vector<char> buf(8192, 'x');
  EXPECT_EQ(pread(fd, buf.data(), buf.size(), far / 2), 8192);
  EXPECT_TRUE(std::all_of(buf.begin(), buf.end(), [](char c) { return c == 0; }));
  EXPECT_EQ(pread(fd, buf.data(), 8, far - 4), 8);
  EXPECT_EQ(std::string(buf.data(), 8), std::string(4, '\0') + "tail");
  close(fd);
  // A fresh look from the core agrees (and reports few blocks too).
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/sparse"));
  EXPECT_EQ(attr.size, static_cast<uint64_t>(far + 4));
  EXPECT_LT(attr.blocks, 2048u);
}

TEST_F(PosixTest, SeekDataAndSeekHole) {
  int fd = open(P("sd").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  std::string data(100000, 'd');
  SYS(pwrite(fd, data.data(), data.size(), 0));
  const off_t far = 8ll * 1024 * 1024;
  SYS(pwrite(fd, data.data(), data.size(), far));
  const off_t size = far + static_cast<off_t>(data.size());
  EXPECT_EQ(lseek(fd, 0, SEEK_DATA), 0);
  off_t hole = lseek(fd, 0, SEEK_HOLE);
  EXPECT_GE(hole, static_cast<off_t>(data.size()));  // never inside data
  EXPECT_LE(hole, size);
  // SEEK_DATA from inside the hole never skips the data at `far`.
  off_t next = lseek(fd, far / 2, SEEK_DATA);
  EXPECT_GE(next, far / 2);
  EXPECT_LE(next, far);
  EXPECT_EQ(lseek(fd, far + 10, SEEK_DATA), far + 10);
  EXPECT_EQ(lseek(fd, far + 10, SEEK_HOLE), size);
  // Past EOF: ENXIO for both.
  EXPECT_EQ(ERRNO_OF(lseek(fd, size, SEEK_DATA)), ENXIO);
  EXPECT_EQ(ERRNO_OF(lseek(fd, size + 1, SEEK_HOLE)), ENXIO);
  // Data written into a hole (perhaps still only in the kernel's cache) is
  // found: reporting it as a hole would make sparse-aware copies lose it.
  SYS(pwrite(fd, "x", 1, far / 4));
  next = lseek(fd, 200000, SEEK_DATA);
  EXPECT_GE(next, 200000);
  EXPECT_LE(next, far / 4);
  SYS(fsync(fd));
  next = lseek(fd, 200000, SEEK_DATA);
  EXPECT_GE(next, 200000);
  EXPECT_LE(next, far / 4);
  close(fd);
  // An empty file has no data at all.
  Put("empty", "");
  fd = open(P("empty").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(ERRNO_OF(lseek(fd, 0, SEEK_DATA)), ENXIO);
  close(fd);
}

// --- renames

TEST_F(PosixTest, RenameOverExistingFileReplacesIt) {
  Put("src", "new");
  Put("dst", "old");
  ino_t src_ino = Stat(P("src")).st_ino;
  // The replaced file stays readable through a descriptor opened before.
  int fd = open(P("dst").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  SYS(rename(P("src").c_str(), P("dst").c_str()));
  EXPECT_EQ(Get("dst"), "new");
  EXPECT_EQ(Stat(P("dst")).st_ino, src_ino);
  EXPECT_EQ(ERRNO_OF(access(P("src").c_str(), F_OK)), ENOENT);
  char buf[8] = {};
  EXPECT_EQ(pread(fd, buf, sizeof(buf), 0), 3);
  EXPECT_EQ(std::string(buf, 3), "old");
  close(fd);
  // Renaming onto itself (or another link to the same inode) changes nothing.
  SYS(link(P("dst").c_str(), P("dst2").c_str()));
  SYS(rename(P("dst").c_str(), P("dst2").c_str()));
  EXPECT_EQ(Get("dst"), "new");
  EXPECT_EQ(Get("dst2"), "new");
  SYS(rename(P("dst").c_str(), P("dst").c_str()));
  EXPECT_EQ(Get("dst"), "new");
}

TEST_F(PosixTest, RenameDirectoryRules) {
  SYS(mkdir(P("a").c_str(), 0755));
  SYS(mkdir(P("a/sub").c_str(), 0755));
  SYS(mkdir(P("empty").c_str(), 0755));
  SYS(mkdir(P("full").c_str(), 0755));
  Put("full/f", "x");
  Put("file", "f");
  EXPECT_EQ(ERRNO_OF(rename(P("a").c_str(), P("full").c_str())), ENOTEMPTY);
  EXPECT_EQ(ERRNO_OF(rename(P("file").c_str(), P("empty").c_str())), EISDIR);
  EXPECT_EQ(ERRNO_OF(rename(P("a").c_str(), P("file").c_str())), ENOTDIR);
  EXPECT_EQ(ERRNO_OF(rename(P("a").c_str(), P("a/sub/x").c_str())), EINVAL);
  EXPECT_EQ(ERRNO_OF(rename(P("a").c_str(), P("a/x").c_str())), EINVAL);
  EXPECT_EQ(ERRNO_OF(rename(P("missing").c_str(), P("x").c_str())), ENOENT);
  // A directory over an empty directory replaces it.
  ino_t a_ino = Stat(P("a")).st_ino;
  SYS(rename(P("a").c_str(), P("empty").c_str()));
  EXPECT_EQ(Stat(P("empty")).st_ino, a_ino);
  EXPECT_EQ(ERRNO_OF(access(P("a").c_str(), F_OK)), ENOENT);
  EXPECT_TRUE(S_ISDIR(Stat(P("empty/sub")).st_mode));
  // Link counts: root has ., .., and empty, full as subdirectories.
  EXPECT_EQ(Stat(mnt_).st_nlink, 4u);
  EXPECT_EQ(Stat(P("empty")).st_nlink, 3u);
  SYS(rename(P("empty/sub").c_str(), P("full/sub").c_str()));
  EXPECT_EQ(Stat(P("empty")).st_nlink, 2u);
  EXPECT_EQ(Stat(P("full")).st_nlink, 3u);
  // ".." of the moved directory follows it.
  EXPECT_EQ(Stat(P("full/sub/..")).st_ino, Stat(P("full")).st_ino);
}

int Renameat2(const std::string& from, const std::string& to, unsigned flags) {
  return static_cast<int>(
      syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags));
}

TEST_F(PosixTest, RenameNoReplaceAndExchange) {
  Put("one", "1");
  Put("two", "2");
  EXPECT_EQ(ERRNO_OF(Renameat2(P("one"), P("two"), RENAME_NOREPLACE)), EEXIST);
  EXPECT_EQ(Get("one"), "1");
  EXPECT_EQ(Get("two"), "2");
  SYS(Renameat2(P("one"), P("three"), RENAME_NOREPLACE));
  EXPECT_EQ(Get("three"), "1");

  SYS(Renameat2(P("three"), P("two"), RENAME_EXCHANGE));
  EXPECT_EQ(Get("three"), "2");
  EXPECT_EQ(Get("two"), "1");
  EXPECT_EQ(ERRNO_OF(Renameat2(P("two"), P("nothing"), RENAME_EXCHANGE)), ENOENT);
  EXPECT_EQ(ERRNO_OF(Renameat2(P("two"), P("three"), RENAME_EXCHANGE | RENAME_NOREPLACE)),
            EINVAL);

  // A file and a directory in different parents swap places.
  SYS(mkdir(P("d").c_str(), 0755));
  SYS(mkdir(P("e").c_str(), 0755));
  SYS(mkdir(P("e/inner").c_str(), 0755));
  Put("d/f", "file");
  SYS(Renameat2(P("d/f"), P("e/inner"), RENAME_EXCHANGE));
  EXPECT_TRUE(S_ISDIR(Stat(P("d/f")).st_mode));
  EXPECT_EQ(Get("e/inner"), "file");
  EXPECT_EQ(Stat(P("d")).st_nlink, 3u);
  EXPECT_EQ(Stat(P("e")).st_nlink, 2u);
  EXPECT_EQ(Stat(P("d/f/..")).st_ino, Stat(P("d")).st_ino);
}

// --- links, symlinks, special files

TEST_F(PosixTest, HardLinksShareTheInodeAndCountLinks) {
  Put("orig", "data");
  EXPECT_EQ(Stat(P("orig")).st_nlink, 1u);
  SYS(link(P("orig").c_str(), P("alias").c_str()));
  struct stat a = Stat(P("orig"));
  struct stat b = Stat(P("alias"));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(b.st_nlink, 2u);
  Put("alias", "changed");  // O_TRUNC through the other name
  EXPECT_EQ(Get("orig"), "changed");
  SYS(unlink(P("orig").c_str()));
  EXPECT_EQ(Stat(P("alias")).st_nlink, 1u);
  EXPECT_EQ(Get("alias"), "changed");
  EXPECT_EQ(ERRNO_OF(link(P("alias").c_str(), P("alias").c_str())), EEXIST);
  SYS(mkdir(P("dir").c_str(), 0755));
  EXPECT_EQ(ERRNO_OF(link(P("dir").c_str(), P("dirlink").c_str())), EPERM);
}

TEST_F(PosixTest, SymlinksAndReadlink) {
  Put("target", "pointed at");
  SYS(symlink("target", P("ln").c_str()));
  SYS(symlink("/nonexistent/abs", P("dangling").c_str()));
  char buf[256];
  ssize_t n = readlink(P("ln").c_str(), buf, sizeof(buf));
  ASSERT_EQ(n, 6);
  EXPECT_EQ(std::string(buf, n), "target");
  n = readlink(P("dangling").c_str(), buf, sizeof(buf));
  EXPECT_EQ(std::string(buf, std::max<ssize_t>(n, 0)), "/nonexistent/abs");
  struct stat st = Stat(P("ln"));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_size, 6);
  EXPECT_EQ(Get("ln"), "pointed at");  // followed on open
  EXPECT_EQ(ERRNO_OF(open(P("dangling").c_str(), O_RDONLY)), ENOENT);
  EXPECT_EQ(ERRNO_OF(readlink(P("target").c_str(), buf, sizeof(buf))), EINVAL);
  EXPECT_EQ(ERRNO_OF(symlink("x", P("ln").c_str())), EEXIST);
  // A short buffer truncates silently.
  EXPECT_EQ(readlink(P("ln").c_str(), buf, 3), 3);
  EXPECT_EQ(std::string(buf, 3), "tar");
}

TEST_F(PosixTest, MknodFifoAndDevices) {
  SYS(mkfifo(P("fifo").c_str(), 0640));
  struct stat st = Stat(P("fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // The kernel runs the pipe itself.
  int fd = open(P("fifo").c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(write(fd, "ping", 4), 4);
  char buf[8];
  EXPECT_EQ(read(fd, buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  close(fd);
  SYS(mknod(P("null").c_str(), S_IFCHR | 0600, makedev(1, 3)));
  st = Stat(P("null"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  SYS(mknod(P("plain").c_str(), S_IFREG | 0600, 0));
  EXPECT_TRUE(S_ISREG(Stat(P("plain")).st_mode));
  EXPECT_EQ(ERRNO_OF(mkfifo(P("fifo").c_str(), 0640)), EEXIST);
}

// --- attributes

TEST_F(PosixTest, UtimensatNanosecondsNowAndOmit) {
  Put("tm", "x");
  struct timespec ts[2] = {{1000, 123456789}, {2000, 987654321}};
  SYS(utimensat(AT_FDCWD, P("tm").c_str(), ts, 0));
  struct stat st = Stat(P("tm"));
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  // OMIT leaves atime; NOW sets mtime to about now.
  struct timespec before;
  clock_gettime(CLOCK_REALTIME, &before);
  struct timespec ts2[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  SYS(utimensat(AT_FDCWD, P("tm").c_str(), ts2, 0));
  st = Stat(P("tm"));
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_GE(st.st_mtim.tv_sec, before.tv_sec - 1);
  EXPECT_LE(st.st_mtim.tv_sec, before.tv_sec + 5);
  // And the other way round, through a descriptor.
  int fd = open(P("tm").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  struct timespec ts3[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  SYS(futimens(fd, ts3));
  struct stat st2;
  SYS(fstat(fd, &st2));
  close(fd);
  EXPECT_GE(st2.st_atim.tv_sec, before.tv_sec - 1);
  EXPECT_EQ(st2.st_mtim.tv_sec, st.st_mtim.tv_sec);
  EXPECT_EQ(st2.st_mtim.tv_nsec, st.st_mtim.tv_nsec);
  // Negative times (before 1970) survive too.
  struct timespec old[2] = {{-5, 500}, {-1, 999999999}};
  SYS(utimensat(AT_FDCWD, P("tm").c_str(), old, 0));
  st = Stat(P("tm"));
  EXPECT_EQ(st.st_atim.tv_sec, -5);
  EXPECT_EQ(st.st_atim.tv_nsec, 500);
  EXPECT_EQ(st.st_mtim.tv_sec, -1);
  EXPECT_EQ(st.st_mtim.tv_nsec, 999999999);
  // Symlinks get their own times with AT_SYMLINK_NOFOLLOW.
  SYS(symlink("tm", P("tl").c_str()));
  SYS(utimensat(AT_FDCWD, P("tl").c_str(), ts, AT_SYMLINK_NOFOLLOW));
  EXPECT_EQ(Stat(P("tl")).st_mtim.tv_nsec, 987654321);
  EXPECT_EQ(Stat(P("tm")).st_mtim.tv_nsec, 999999999);
}

TEST_F(PosixTest, WriteUpdatesMtimeAndCtime) {
  Put("w", "x");
  struct timespec ts[2] = {{1000, 0}, {1000, 0}};
  SYS(utimensat(AT_FDCWD, P("w").c_str(), ts, 0));
  int fd = open(P("w").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  SYS(write(fd, "y", 1));
  struct stat st;
  SYS(fstat(fd, &st));
  EXPECT_GT(st.st_mtim.tv_sec, 1000);
  SYS(fsync(fd));
  close(fd);
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/w"));
  EXPECT_GT(attr.mtime_ns, 1000ll * 1'000'000'000);
}

TEST_F(PosixTest, ChmodAndChown) {
  Put("perm", "x");
  SYS(chmod(P("perm").c_str(), 0600));
  EXPECT_EQ(Stat(P("perm")).st_mode, S_IFREG | 0600u);
  SYS(chmod(P("perm").c_str(), 04755));
  EXPECT_EQ(Stat(P("perm")).st_mode & 07777, 04755u);
  SYS(chown(P("perm").c_str(), 1234, 5678));
  struct stat st = Stat(P("perm"));
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  // chown clears set-user-ID on a regular file (the kernel asks for it).
  EXPECT_EQ(st.st_mode & S_ISUID, 0u);
  SYS(chown(P("perm").c_str(), static_cast<uid_t>(-1), 42));  // gid only
  st = Stat(P("perm"));
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 42u);
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/perm"));
  EXPECT_EQ(attr.uid, 1234u);
  EXPECT_EQ(attr.gid, 42u);
  // fchmod through a descriptor.
  int fd = open(P("perm").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  SYS(fchmod(fd, 0640));
  close(fd);
  EXPECT_EQ(Stat(P("perm")).st_mode & 07777, 0640u);
}

TEST_F(PosixTest, NewFilesBelongToTheCaller) {
  Put("mine", "x");
  SYS(mkdir(P("mydir").c_str(), 0755));
  SYS(symlink("mine", P("mylink").c_str()));
  for (const char* name : {"mine", "mydir", "mylink"}) {
    struct stat st = Stat(P(name));
    EXPECT_EQ(st.st_uid, getuid()) << name;
    EXPECT_EQ(st.st_gid, getgid()) << name;
  }
  // A set-group-ID directory hands its group down (and the bit to subdirs).
  SYS(chown(P("mydir").c_str(), 0, 777));
  SYS(chmod(P("mydir").c_str(), 02775));
  Put("mydir/f", "x");
  SYS(mkdir(P("mydir/sub").c_str(), 0755));
  EXPECT_EQ(Stat(P("mydir/f")).st_gid, 777u);
  EXPECT_EQ(Stat(P("mydir/sub")).st_gid, 777u);
  EXPECT_NE(Stat(P("mydir/sub")).st_mode & S_ISGID, 0u);
}

TEST_F(PosixTest, ReaddirListsEntries) {
  SYS(mkdir(P("ls").c_str(), 0755));
  std::set<std::string> expect = {".", ".."};
  for (int i = 0; i < 300; ++i) {
    std::string name = "entry-with-a-longish-name-" + std::to_string(i);
    Put("ls/" + name, "");
    expect.insert(name);
  }
  DIR* d = opendir(P("ls").c_str());
  ASSERT_NE(d, nullptr);
  std::set<std::string> seen;
  while (struct dirent* e = readdir(d)) {
    EXPECT_TRUE(seen.insert(e->d_name).second) << "duplicate " << e->d_name;
  }
  closedir(d);
  EXPECT_EQ(seen, expect);
}

TEST_F(PosixTest, DirectoryErrors) {
  SYS(mkdir(P("d").c_str(), 0755));
  Put("d/f", "x");
  EXPECT_EQ(ERRNO_OF(mkdir(P("d").c_str(), 0755)), EEXIST);
  EXPECT_EQ(ERRNO_OF(rmdir(P("d").c_str())), ENOTEMPTY);
  EXPECT_EQ(ERRNO_OF(rmdir(P("d/f").c_str())), ENOTDIR);
  EXPECT_EQ(ERRNO_OF(unlink(P("d").c_str())), EISDIR);
  EXPECT_EQ(ERRNO_OF(open(P("d/f/x").c_str(), O_CREAT | O_WRONLY, 0644)), ENOTDIR);
  EXPECT_EQ(ERRNO_OF(open(P("d").c_str(), O_WRONLY)), EISDIR);
  EXPECT_EQ(ERRNO_OF(rmdir(P("nothing").c_str())), ENOENT);
  SYS(unlink(P("d/f").c_str()));
  SYS(rmdir(P("d").c_str()));
  EXPECT_EQ(ERRNO_OF(access(P("d").c_str(), F_OK)), ENOENT);
  EXPECT_EQ(Stat(mnt_).st_nlink, 2u);
  // fsync works on a directory.
  SYS(mkdir(P("e").c_str(), 0755));
  int fd = open(P("e").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  SYS(fsync(fd));
  close(fd);
}

TEST_F(PosixTest, NameLengthLimit) {
  const std::string longest(255, 'n');
  Put(longest, "ok");
  EXPECT_EQ(Get(longest), "ok");
  const std::string too_long(256, 'n');
  EXPECT_EQ(ERRNO_OF(open(P(too_long).c_str(), O_CREAT | O_WRONLY, 0644)), ENAMETOOLONG);
  EXPECT_EQ(ERRNO_OF(mkdir(P(too_long).c_str(), 0755)), ENAMETOOLONG);
  EXPECT_EQ(ERRNO_OF(rename(P(longest).c_str(), P(too_long).c_str())), ENAMETOOLONG);
  EXPECT_EQ(ERRNO_OF(access(P(too_long).c_str(), F_OK)), ENAMETOOLONG);
}

TEST_F(PosixTest, CopyFileRangeCopiesData) {
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 + 1);
  Put("from", data);
  // Copies `length` bytes of "from" into `to` (created if missing), in as
  // many calls as it takes.
  auto copy = [&](const std::string& to, loff_t in_off, loff_t out_off, size_t length) {
    int in = open(P("from").c_str(), O_RDONLY);
    int out = open(P(to).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    while (length > 0) {
      ssize_t n = copy_file_range(in, &in_off, out, &out_off, length, 0);
      ASSERT_GT(n, 0) << std::strerror(errno);
      length -= static_cast<size_t>(n);
    }
    close(in);
    close(out);
  };
  // Unaligned: copied through a buffer.
  copy("to", 1000, 5, 200000);
  EXPECT_TRUE(Get("to") == std::string(5, '\0') + data.substr(1000, 200000));
  // Block-aligned: whole blocks are shared by the store; the kernel's cached
  // pages of the target must not hide the result.
  Put("aligned", std::string(400000, 'x'));
  std::string want = Get("aligned");
  copy("aligned", 65536, 131072, 200000);
  want.replace(131072, 200000, data.substr(65536, 200000));
  EXPECT_TRUE(Get("aligned") == want);
}

TEST_F(PosixTest, UnixSocketBoundInTheMount) {
  int server = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(server, 0);
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  const std::string path = P("sock");
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  SYS(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
  SYS(listen(server, 1));
  EXPECT_TRUE(S_ISSOCK(Stat(path).st_mode));
  int client = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  SYS(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
  int conn = accept(server, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  EXPECT_EQ(write(client, "hi", 2), 2);
  char buf[2];
  EXPECT_EQ(read(conn, buf, 2), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");
  close(conn);
  close(client);
  close(server);
  SYS(unlink(path.c_str()));
}

TEST_F(PosixTest, TmpfileIsSupportedOrRefusedCleanly) {
  int fd = open(mnt_.c_str(), O_TMPFILE | O_RDWR, 0600);
  if (fd < 0) {
    EXPECT_EQ(errno, EOPNOTSUPP) << std::strerror(errno);
    return;
  }
  EXPECT_EQ(write(fd, "tmp", 3), 3);
  char buf[3];
  EXPECT_EQ(pread(fd, buf, 3, 0), 3);
  close(fd);
}

TEST_F(PosixTest, CtimeFollowsMetadataChanges) {
  Put("c", "x");
  struct timespec old[2] = {{1000, 0}, {1000, 0}};
  SYS(utimensat(AT_FDCWD, P("c").c_str(), old, 0));
  struct timespec before;
  clock_gettime(CLOCK_REALTIME, &before);
  auto recent = [&](const struct stat& st) { return st.st_ctim.tv_sec >= before.tv_sec - 1; };
  EXPECT_TRUE(recent(Stat(P("c"))));  // utimensat itself changes ctime
  SYS(chmod(P("c").c_str(), 0600));
  EXPECT_TRUE(recent(Stat(P("c"))));
  SYS(link(P("c").c_str(), P("c2").c_str()));
  EXPECT_TRUE(recent(Stat(P("c"))));
  SYS(rename(P("c2").c_str(), P("c3").c_str()));
  EXPECT_TRUE(recent(Stat(P("c3"))));
  EXPECT_EQ(Stat(P("c3")).st_mtim.tv_sec, 1000);  // the data did not change
  // A directory's mtime changes when an entry is added or removed.
  SYS(mkdir(P("dir").c_str(), 0755));
  SYS(utimensat(AT_FDCWD, P("dir").c_str(), old, 0));
  Put("dir/new", "");
  EXPECT_GE(Stat(P("dir")).st_mtim.tv_sec, before.tv_sec - 1);
  SYS(utimensat(AT_FDCWD, P("dir").c_str(), old, 0));
  SYS(unlink(P("dir/new").c_str()));
  EXPECT_GE(Stat(P("dir")).st_mtim.tv_sec, before.tv_sec - 1);
}

TEST_F(PosixTest, ReaddirWhileRemovingSeesEachEntryOnce) {
  SYS(mkdir(P("rm").c_str(), 0755));
  std::set<std::string> expect = {".", ".."};
  for (int i = 0; i < 500; ++i) {
    std::string name = "file-" + std::to_string(i);
    Put("rm/" + name, "");
    expect.insert(name);
  }
  DIR* d = opendir(P("rm").c_str());
  ASSERT_NE(d, nullptr);
  std::set<std::string> seen;
  long restart = -1;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    EXPECT_TRUE(seen.insert(name).second) << "duplicate " << name;
    if (name != "." && name != "..") unlink(P("rm/" + name).c_str());
    if (seen.size() == 100) restart = telldir(d);
  }
  EXPECT_EQ(seen, expect);
  // Seeking back to a remembered position resumes after it.
  ASSERT_GE(restart, 0);
  seekdir(d, restart);
  size_t after = 0;
  while (readdir(d) != nullptr) ++after;
  EXPECT_EQ(after, expect.size() - 100);
  closedir(d);
  // All gone now.
  d = opendir(P("rm").c_str());
  ASSERT_NE(d, nullptr);
  size_t left = 0;
  while (readdir(d) != nullptr) ++left;
  closedir(d);
  EXPECT_EQ(left, 2u);
}

TEST_F(PosixTest, LongestSymlinkTarget) {
  const std::string target(4095, 't');
  SYS(symlink(target.c_str(), P("long").c_str()));
  std::string buf(8192, '\0');
  ssize_t n = readlink(P("long").c_str(), buf.data(), buf.size());
  ASSERT_EQ(n, 4095);
  EXPECT_EQ(buf.substr(0, 4095), target);
  EXPECT_EQ(Stat(P("long")).st_size, 4095);
  const std::string too_long(4096, 't');
  EXPECT_EQ(ERRNO_OF(symlink(too_long.c_str(), P("long2").c_str())), ENAMETOOLONG);
}

TEST_F(PosixTest, XattrsOnSymlinks) {
  Put("target", "");
  SYS(symlink("target", P("ln").c_str()));
  // user.* is refused on symlinks by the kernel; trusted.* is root's.
  EXPECT_EQ(ERRNO_OF(lsetxattr(P("ln").c_str(), "user.a", "1", 1, 0)), EPERM);
  SYS(lsetxattr(P("ln").c_str(), "trusted.link", "L", 1, 0));
  char buf[8];
  EXPECT_EQ(lgetxattr(P("ln").c_str(), "trusted.link", buf, sizeof(buf)), 1);
  // Without the l, the call follows the link to the target, which has none.
  EXPECT_EQ(ERRNO_OF(getxattr(P("ln").c_str(), "trusted.link", buf, sizeof(buf))), ENODATA);
  SYS(setxattr(P("ln").c_str(), "user.t", "T", 1, 0));
  EXPECT_EQ(getxattr(P("target").c_str(), "user.t", buf, sizeof(buf)), 1);
}

// --- extended attributes

TEST_F(PosixTest, XattrsUserAndSecurity) {
  Put("x", "");
  const std::string path = P("x");
  for (std::string ns : {"user.", "security."}) {
    SCOPED_TRACE(ns);
    std::string name = ns + "color";
    SYS(setxattr(path.c_str(), name.c_str(), "blue!", 5, 0));
    EXPECT_EQ(getxattr(path.c_str(), name.c_str(), nullptr, 0), 5);  // size query
    char buf[64];
    EXPECT_EQ(getxattr(path.c_str(), name.c_str(), buf, sizeof(buf)), 5);
    EXPECT_EQ(std::string(buf, 5), "blue!");
    EXPECT_EQ(ERRNO_OF(getxattr(path.c_str(), name.c_str(), buf, 2)), ERANGE);
    EXPECT_EQ(ERRNO_OF(setxattr(path.c_str(), name.c_str(), "x", 1, XATTR_CREATE)), EEXIST);
    SYS(setxattr(path.c_str(), name.c_str(), "red", 3, XATTR_REPLACE));
    EXPECT_EQ(getxattr(path.c_str(), name.c_str(), buf, sizeof(buf)), 3);
    EXPECT_EQ(ERRNO_OF(setxattr(path.c_str(), (ns + "none").c_str(), "x", 1, XATTR_REPLACE)),
              ENODATA);
    // An empty value is a value.
    SYS(setxattr(path.c_str(), (ns + "empty").c_str(), "", 0, 0));
    EXPECT_EQ(getxattr(path.c_str(), (ns + "empty").c_str(), buf, sizeof(buf)), 0);
    EXPECT_EQ(getxattr(path.c_str(), (ns + "empty").c_str(), nullptr, 0), 0);
    EXPECT_EQ(ERRNO_OF(getxattr(path.c_str(), (ns + "none").c_str(), buf, sizeof(buf))),
              ENODATA);
  }
  // Binary values with NULs round-trip.
  std::string bin("a\0b\0\xff", 5);
  SYS(setxattr(path.c_str(), "user.bin", bin.data(), bin.size(), 0));
  char buf[64];
  EXPECT_EQ(getxattr(path.c_str(), "user.bin", buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), bin);

  ssize_t len = listxattr(path.c_str(), nullptr, 0);
  ASSERT_GT(len, 0);
  std::string names(static_cast<size_t>(len), '\0');
  EXPECT_EQ(listxattr(path.c_str(), names.data(), names.size()), len);
  EXPECT_EQ(ERRNO_OF(listxattr(path.c_str(), names.data(), 3)), ERANGE);
  std::set<std::string> listed;
  for (size_t pos = 0; pos < names.size();) {
    std::string n(names.c_str() + pos);
    listed.insert(n);
    pos += n.size() + 1;
  }
  EXPECT_EQ(listed, (std::set<std::string>{"user.color", "user.empty", "user.bin",
                                           "security.color", "security.empty"}));

  SYS(removexattr(path.c_str(), "user.color"));
  SYS(removexattr(path.c_str(), "security.color"));
  EXPECT_EQ(ERRNO_OF(removexattr(path.c_str(), "user.color")), ENODATA);
  EXPECT_EQ(ERRNO_OF(getxattr(path.c_str(), "security.color", buf, sizeof(buf))), ENODATA);
  // Large values round-trip (the kernel caps them at 64 KiB).
  std::string large(60000, 'L');
  SYS(setxattr(path.c_str(), "user.large", large.data(), large.size(), 0));
  std::string large_back(65536, '\0');
  EXPECT_EQ(getxattr(path.c_str(), "user.large", large_back.data(), large_back.size()),
            static_cast<ssize_t>(large.size()));
  EXPECT_EQ(large_back.substr(0, large.size()), large);
  SYS(removexattr(path.c_str(), "user.large"));
  // Directories carry xattrs too.
  SYS(mkdir(P("xd").c_str(), 0755));
  SYS(setxattr(P("xd").c_str(), "user.d", "1", 1, 0));
  EXPECT_EQ(getxattr(P("xd").c_str(), "user.d", buf, sizeof(buf)), 1);
  // The core sees the same attributes.
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/x"));
  ASSERT_OK_AND_ASSIGN(std::string value, fs_->GetXattr(attr.ino, "user.bin"));
  EXPECT_EQ(value, bin);
}

// --- locks

TEST_F(PosixTest, FlockConflictsBetweenOpenFileDescriptions) {
  Put("lock", "x");
  int a = open(P("lock").c_str(), O_RDWR);
  int b = open(P("lock").c_str(), O_RDWR);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  SYS(flock(a, LOCK_EX | LOCK_NB));
  EXPECT_EQ(ERRNO_OF(flock(b, LOCK_EX | LOCK_NB)), EWOULDBLOCK);
  EXPECT_EQ(ERRNO_OF(flock(b, LOCK_SH | LOCK_NB)), EWOULDBLOCK);
  SYS(flock(a, LOCK_UN));
  SYS(flock(b, LOCK_SH | LOCK_NB));
  SYS(flock(a, LOCK_SH | LOCK_NB));  // shared locks coexist
  EXPECT_EQ(ERRNO_OF(flock(a, LOCK_EX | LOCK_NB)), EWOULDBLOCK);
  close(b);  // closing releases b's lock
  SYS(flock(a, LOCK_EX | LOCK_NB));
  close(a);
}

TEST_F(PosixTest, FcntlLockConflictSeenFromChildProcess) {
  Put("plock", std::string(1000, 'x'));
  const std::string path = P("plock");
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 100;
  SYS(fcntl(fd, F_SETLK, &fl));
  const pid_t parent = getpid();
  // Child: a conflicting lock fails, F_GETLK names the parent, a disjoint
  // range locks fine. Exit code 0 or the failing step.
  pid_t pid = fork();
  if (pid == 0) {
    int cfd = open(path.c_str(), O_RDWR);
    if (cfd < 0) _exit(10);
    struct flock c;
    std::memset(&c, 0, sizeof(c));
    c.l_type = F_WRLCK;
    c.l_whence = SEEK_SET;
    c.l_start = 50;
    c.l_len = 10;
    if (fcntl(cfd, F_SETLK, &c) != -1) _exit(11);
    if (errno != EAGAIN && errno != EACCES) _exit(12);
    if (fcntl(cfd, F_GETLK, &c) != 0) _exit(13);
    if (c.l_type != F_WRLCK || c.l_pid != parent) _exit(14);
    c.l_type = F_WRLCK;
    c.l_start = 200;
    c.l_len = 10;
    if (fcntl(cfd, F_SETLK, &c) != 0) _exit(15);
    c.l_type = F_RDLCK;
    c.l_start = 0;
    c.l_len = 1;
    if (fcntl(cfd, F_SETLK, &c) != -1) _exit(16);  // read vs write lock
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // After unlocking, the child succeeds.
  fl.l_type = F_UNLCK;
  SYS(fcntl(fd, F_SETLK, &fl));
  pid = fork();
  if (pid == 0) {
    int cfd = open(path.c_str(), O_RDWR);
    struct flock c;
    std::memset(&c, 0, sizeof(c));
    c.l_type = F_WRLCK;
    c.l_whence = SEEK_SET;
    c.l_len = 100;
    _exit(cfd >= 0 && fcntl(cfd, F_SETLK, &c) == 0 ? 0 : 1);
  }
  ASSERT_GT(pid, 0);
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(fd);
}

// --- mmap
//
// Mappings are made in forked children: munmap of a dirty shared mapping
// holds the process's mmap lock while it waits for writeback, which the FUSE
// server threads of this process must serve (and they may need that lock to
// allocate), so mapping in the server's own process can deadlock.

TEST_F(PosixTest, MmapWriteIsSeenByRead) {
  const size_t size = 3 * 4096 + 100;
  int fd = open(P("map").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  SYS(ftruncate(fd, static_cast<off_t>(size)));
  EXPECT_EQ(InChild([&] {
              void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
              if (p == MAP_FAILED) return 1;
              char* m = static_cast<char*>(p);
              for (size_t i = 0; i < size; ++i) m[i] = static_cast<char>('a' + i % 26);
              if (msync(p, size, MS_SYNC) != 0) return 2;
              return munmap(p, size) == 0 ? 0 : 3;
            }),
            0);
  std::string back(size, '\0');
  EXPECT_EQ(pread(fd, back.data(), size, 0), static_cast<ssize_t>(size));
  for (size_t i = 0; i < size; ++i) {
    ASSERT_EQ(back[i], static_cast<char>('a' + i % 26)) << "offset " << i;
  }
  close(fd);
  // Reached the core as well.
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/map"));
  ASSERT_EQ(attr.size, size);
  std::string core(size, '\0');
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Read(attr.ino, 0, {reinterpret_cast<uint8_t*>(core.data()),
                                                         core.size()}));
  EXPECT_EQ(n, size);
  EXPECT_EQ(core, back);
}

TEST_F(PosixTest, MmapWriteWithoutMsyncReachesTheFile) {
  const size_t size = 8192;
  int fd = open(P("map2").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  SYS(ftruncate(fd, static_cast<off_t>(size)));
  EXPECT_EQ(InChild([&] {
              void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
              if (p == MAP_FAILED) return 1;
              std::memcpy(static_cast<char*>(p) + 5000, "mapped", 6);
              return munmap(p, size) == 0 ? 0 : 3;
            }),
            0);
  SYS(fsync(fd));
  close(fd);
  std::string content = Get("map2");
  ASSERT_EQ(content.size(), size);
  EXPECT_EQ(content.substr(5000, 6), "mapped");
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/map2"));
  char buf[6];
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Read(attr.ino, 5000, {reinterpret_cast<uint8_t*>(buf), 6}));
  EXPECT_EQ(n, 6u);
  EXPECT_EQ(std::string(buf, 6), "mapped");
}

TEST_F(PosixTest, MmapReadSeesWrites) {
  int fd = open(P("mapr").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  const std::string data(10000, 'z');
  SYS(write(fd, data.data(), data.size()));
  // The child maps, checks, asks for a write through the pipe and checks the
  // mapping again.
  int go[2], done[2];
  SYS(pipe(go));
  SYS(pipe(done));
  pid_t pid = fork();
  if (pid == 0) {
    void* p = mmap(nullptr, data.size(), PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) _exit(1);
    const char* m = static_cast<const char*>(p);
    if (std::memcmp(m, data.data(), data.size()) != 0) _exit(2);
    char c = 'w';
    if (write(go[1], &c, 1) != 1 || read(done[0], &c, 1) != 1) _exit(3);
    if (std::memcmp(m + 4090, "WRITTEN", 7) != 0) _exit(4);
    _exit(munmap(p, data.size()) == 0 ? 0 : 5);
  }
  ASSERT_GT(pid, 0);
  char c;
  if (read(go[0], &c, 1) == 1) {
    // A write after the mapping was made shows through it.
    EXPECT_EQ(pwrite(fd, "WRITTEN", 7, 4090), 7);
    EXPECT_EQ(write(done[1], &c, 1), 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  for (int p : {go[0], go[1], done[0], done[1]}) close(p);
  close(fd);
  // A file written and closed earlier maps with its content (fresh open).
  const std::string path = P("mapr");
  EXPECT_EQ(InChild([&] {
              int rfd = open(path.c_str(), O_RDONLY);
              if (rfd < 0) return 1;
              void* p = mmap(nullptr, data.size(), PROT_READ, MAP_SHARED, rfd, 0);
              if (p == MAP_FAILED) return 2;
              int rc = std::memcmp(static_cast<const char*>(p) + 4088, "zzWRITTENz", 10) == 0 ? 0
                                                                                             : 3;
              munmap(p, data.size());
              close(rfd);
              return rc;
            }),
            0);
}

// --- fallocate

TEST_F(PosixTest, FallocateModes) {
  int fd = open(P("fa").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  // Mode 0 extends the file with zeros.
  SYS(fallocate(fd, 0, 0, 200000));
  struct stat st;
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_size, 200000);
  // KEEP_SIZE past EOF leaves the size.
  SYS(fallocate(fd, FALLOC_FL_KEEP_SIZE, 200000, 100000));
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_size, 200000);
  std::string data(200000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(1 + i % 250);
  SYS(pwrite(fd, data.data(), data.size(), 0));
  // Punch a hole across block boundaries: zeros there, data around, size kept.
  SYS(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 140000));
  std::fill(data.begin() + 1000, data.begin() + 141000, '\0');
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_size, 200000);
  // Zero a range inside, and one that extends the file.
  SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 150000, 7));
  std::fill(data.begin() + 150000, data.begin() + 150007, '\0');
  SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE, 199990, 20));
  data.resize(200010, '\0');
  std::fill(data.begin() + 199990, data.end(), '\0');
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_size, 200010);
  SYS(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 199000, 5000));
  std::fill(data.begin() + 199000, data.end(), '\0');
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_size, 200010);
  std::string back(data.size(), 'x');
  EXPECT_EQ(pread(fd, back.data(), back.size(), 0), static_cast<ssize_t>(data.size()));
  EXPECT_TRUE(back == data);
  // Unsupported modes are refused cleanly.
  EXPECT_EQ(ERRNO_OF(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 65536)), EOPNOTSUPP);
  EXPECT_EQ(ERRNO_OF(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10)), EOPNOTSUPP);
  SYS(fsync(fd));
  close(fd);
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/fa"));
  ASSERT_EQ(attr.size, data.size());
  std::string core(data.size(), 'x');
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Read(attr.ino, 0, {reinterpret_cast<uint8_t*>(core.data()),
                                                         core.size()}));
  EXPECT_EQ(n, data.size());
  EXPECT_TRUE(core == data);
}

TEST_F(PosixTest, StatfsWorks) {
  struct statvfs sv;
  SYS(statvfs(mnt_.c_str(), &sv));
  EXPECT_GT(sv.f_bsize, 0u);
  EXPECT_GT(sv.f_blocks, 0u);
  EXPECT_LE(sv.f_bavail, sv.f_blocks);
  EXPECT_EQ(sv.f_namemax, 255u);
  EXPECT_GT(sv.f_ffree, 0u);
  Put("f", "x");
  int fd = open(P("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  SYS(fstatvfs(fd, &sv));
  close(fd);
}

// --- open-unlinked files

TEST_F(PosixTest, UnlinkedOpenFileStaysUsableUntilClose) {
  Put("ghost", "before");
  int fd = open(P("ghost").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  SYS(unlink(P("ghost").c_str()));
  EXPECT_EQ(ERRNO_OF(access(P("ghost").c_str(), F_OK)), ENOENT);
  struct stat st;
  SYS(fstat(fd, &st));
  EXPECT_EQ(st.st_nlink, 0u);
  char buf[64] = {};
  EXPECT_EQ(pread(fd, buf, sizeof(buf), 0), 6);
  EXPECT_EQ(std::string(buf, 6), "before");
  std::string more(200000, 'm');
  EXPECT_EQ(pwrite(fd, more.data(), more.size(), 6), static_cast<ssize_t>(more.size()));
  SYS(fsync(fd));  // reaches the core while nameless
  SYS(ftruncate(fd, 100000));
  std::string back(100000, '\0');
  EXPECT_EQ(pread(fd, back.data(), back.size(), 0), 100000);
  EXPECT_EQ(back, "before" + more.substr(0, 100000 - 6));
  // A new file of the same name is a different file.
  Put("ghost", "after");
  EXPECT_EQ(pread(fd, buf, 6, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "before");
  ino_t ino = st.st_ino;
  close(fd);
  EXPECT_EQ(Get("ghost"), "after");
  // Gone once closed (the kernel sends the release after close returns).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    gone = !fs_->GetAttr(ino).ok();
    if (!gone) usleep(10000);
  }
  EXPECT_TRUE(gone);
}

TEST_F(PosixTest, SyncfsSucceedsAfterFilesWentAway) {
  // Files written and removed (or replaced) at once: whatever the kernel
  // still writes back for them must not turn into a mount-wide error.
  for (int i = 0; i < 20; ++i) {
    std::string name = "gone-" + std::to_string(i);
    Put(name, std::string(10000, 'g'));
    if (i % 2 == 0) {
      SYS(unlink(P(name).c_str()));
    } else {
      Put("other", "o");
      SYS(rename(P("other").c_str(), P(name).c_str()));
    }
  }
  int fd = open(mnt_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(syncfs(fd), 0) << std::strerror(errno);
  close(fd);
}

// --- permissions, as uid 65534

TEST_F(PosixTest, NobodyCannotWriteRootFiles) {
  Put("rootfile", "x");  // 0644 root:root
  SYS(mkdir(P("closed").c_str(), 0755));
  SYS(mkdir(P("open").c_str(), 0777));
  SYS(chmod(P("open").c_str(), 0777));  // past the umask
  const std::string rootfile = P("rootfile");
  const std::string closed_new = P("closed/new");
  const std::string open_new = P("open/new");
  const std::string open_dir = P("open/dir");
  const std::string closed_dir = P("closed/newdir");
  EXPECT_EQ(AsNobody([&] {
              int fd = open(rootfile.c_str(), O_RDONLY);
              if (fd < 0) return errno;
              close(fd);
              return 0;
            }),
            0);
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(open(rootfile.c_str(), O_WRONLY)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(truncate(rootfile.c_str(), 0)); }), EACCES);
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(chmod(rootfile.c_str(), 0777)); }), EPERM);
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(setxattr(rootfile.c_str(), "user.a", "1", 1, 0)); }),
            EACCES);
  EXPECT_EQ(AsNobody([&] {
              return ERRNO_OF(open(closed_new.c_str(), O_CREAT | O_WRONLY, 0644));
            }),
            EACCES);
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(mkdir(closed_dir.c_str(), 0755)); }),
            EACCES);
  EXPECT_EQ(AsNobody([&] {
              int fd = open(open_new.c_str(), O_CREAT | O_WRONLY, 0644);
              if (fd < 0) return errno;
              int rc = write(fd, "nobody", 6) == 6 ? 0 : 100;
              close(fd);
              if (mkdir(open_dir.c_str(), 0700) != 0) return 101;
              return rc;
            }),
            0);
  struct stat st = Stat(open_new);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNogroup);
  EXPECT_EQ(Get("open/new"), "nobody");
  st = Stat(open_dir);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNogroup);
  // Its own 0600 file stays open to it; root passes its 0700 directory.
  SYS(chmod(open_new.c_str(), 0600));
  EXPECT_EQ(AsNobody([&] {
              int fd = open(open_new.c_str(), O_RDWR);
              if (fd < 0) return errno;
              close(fd);
              return 0;
            }),
            0);
  Put("open/dir/rootmade", "r");
  EXPECT_EQ(Stat(P("open/dir/rootmade")).st_uid, 0u);
}

TEST_F(PosixTest, WriteByAnotherUserClearsSetuid) {
  Put("suid", "original");
  SYS(chmod(P("suid").c_str(), 06777));
  const std::string path = P("suid");
  EXPECT_EQ(AsNobody([&] {
              int fd = open(path.c_str(), O_WRONLY);
              if (fd < 0) return errno;
              int rc = write(fd, "X", 1) == 1 ? 0 : 100;
              close(fd);
              return rc;
            }),
            0);
  struct stat st = Stat(path);
  EXPECT_EQ(st.st_mode & 07777, 0777u) << std::oct << st.st_mode;
  EXPECT_EQ(Get("suid"), "Xriginal");
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/suid"));
  EXPECT_EQ(attr.mode & 07777, 0777u) << std::oct << attr.mode;
}

TEST_F(PosixTest, NobodyManagesItsOwnFiles) {
  SYS(mkdir(P("home").c_str(), 0755));
  SYS(chown(P("home").c_str(), kNobody, kNogroup));
  const std::string file = P("home/f");
  const std::string root_file = P("rootfile");
  Put("rootfile", "x");
  EXPECT_EQ(AsNobody([&] {
              int fd = open(file.c_str(), O_CREAT | O_WRONLY, 0644);
              if (fd < 0) return 1;
              close(fd);
              if (chmod(file.c_str(), 0600) != 0) return 2;
              if (setxattr(file.c_str(), "user.mine", "1", 1, 0) != 0) return 3;
              struct timespec ts[2] = {{5, 0}, {6, 0}};
              if (utimensat(AT_FDCWD, file.c_str(), ts, 0) != 0) return 4;
              // Others' files: no chown, no times other than now.
              if (chown(file.c_str(), 0, 0) != -1 || errno != EPERM) return 5;
              if (utimensat(AT_FDCWD, root_file.c_str(), ts, 0) != -1 || errno != EPERM) return 6;
              if (utimensat(AT_FDCWD, root_file.c_str(), nullptr, 0) != -1 || errno != EACCES) {
                return 7;
              }
              return 0;
            }),
            0);
  struct stat st = Stat(file);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtim.tv_sec, 6);
}

TEST_F(PosixTest, WritableFileMayBeTouchedByOthers) {
  Put("shared", "x");
  SYS(chmod(P("shared").c_str(), 0666));
  struct timespec old[2] = {{1000, 0}, {1000, 0}};
  SYS(utimensat(AT_FDCWD, P("shared").c_str(), old, 0));
  const std::string path = P("shared");
  // Write permission allows setting both times to now, nothing else.
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(utimensat(AT_FDCWD, path.c_str(), nullptr, 0)); }), 0);
  EXPECT_GT(Stat(path).st_mtim.tv_sec, 1000);
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(utimensat(AT_FDCWD, path.c_str(), old, 0)); }), EPERM);
}

TEST_F(PosixTest, StickyDirectoryProtectsOthersFiles) {
  SYS(mkdir(P("tmp").c_str(), 0777));
  SYS(chmod(P("tmp").c_str(), 01777));
  EXPECT_EQ(Stat(P("tmp")).st_mode & 07777, 01777u);
  Put("tmp/rootfile", "r");
  const std::string rootfile = P("tmp/rootfile");
  const std::string moved = P("tmp/moved");
  const std::string own = P("tmp/own");
  const std::string own2 = P("tmp/own2");
  // Linux refuses with EPERM (may_delete: sticky and not the owner).
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(unlink(rootfile.c_str())); }), EPERM);
  EXPECT_EQ(AsNobody([&] { return ERRNO_OF(rename(rootfile.c_str(), moved.c_str())); }), EPERM);
  EXPECT_EQ(Get("tmp/rootfile"), "r");
  EXPECT_EQ(AsNobody([&] {
              int fd = open(own.c_str(), O_CREAT | O_WRONLY, 0644);
              if (fd < 0) return errno;
              close(fd);
              if (rename(own.c_str(), own2.c_str()) != 0) return 100 + errno % 50;
              // Its own file may not replace root's in a sticky directory.
              if (rename(own2.c_str(), rootfile.c_str()) != -1 || errno != EPERM) return 99;
              return ERRNO_OF(unlink(own2.c_str()));
            }),
            0);
  EXPECT_EQ(ERRNO_OF(access(own2.c_str(), F_OK)), ENOENT);
  // Root may remove anything.
  SYS(unlink(rootfile.c_str()));
}

}  // namespace
}  // namespace strata
