// Db: group commit of batched changes, the WAL write-gathering VFS shim and
// the background checkpointer, on real store files.
#include "catalog/db.h"

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "testing/raw_db.h"
#include "testing/temp_store.h"

namespace strata::catalog {
namespace {

using ::strata::testing::RawDb;
using ::strata::testing::TempDir;

// Count of rows matching `where` in `table`, read by a plain connection of
// its own (another process would see the same).
int64_t CountFromOutside(const std::string& path, const std::string& table,
                         const std::string& where = "1") {
  return RawDb(path).Int("SELECT count(*) FROM " + table + " WHERE " + where);
}

// write(2)-family system calls made by this process so far.
int64_t WriteSyscalls() {
  std::ifstream io("/proc/self/io");
  std::string key;
  int64_t value = 0;
  while (io >> key >> value) {
    if (key == "syscw:") return value;
  }
  return -1;
}

class DbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("store.db");
    auto db = Db::Open(path_, false, 65536, 1);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    ASSERT_OK(Write(Commit::kNow, "CREATE TABLE scratch (id INTEGER PRIMARY KEY, b BLOB)"));
  }

  Status Write(Commit commit, const std::string& sql) {
    ASSIGN_OR_RETURN(WriterLease lease, db_->Writer());
    return db_->WriteTransaction(lease, commit, 0, [&] { return lease.conn().Exec(sql); });
  }

  // Inserts `rows` rows of `bytes` random bytes each, in one transaction.
  Status InsertBlobs(Commit commit, int rows, int bytes) {
    return Write(commit, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                         "WHERE i < " + std::to_string(rows) +
                         ") INSERT INTO scratch(b) SELECT randomblob(" + std::to_string(bytes) +
                         ") FROM n");
  }

  int64_t CountFromHere(const std::string& where) {
    auto lease = db_->Reader();
    EXPECT_TRUE(lease.ok());
    if (!lease.ok()) return -1;
    auto s = lease->conn().PrepareUncached("SELECT count(*) FROM scratch WHERE " + where);
    EXPECT_TRUE(s.ok());
    if (!s.ok()) return -1;
    auto row = s->Step();
    EXPECT_TRUE(row.ok() && *row);
    return s->Int(0);
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Db> db_;
};

TEST_F(DbTest, BatchedChangeIsSeenHereAtOnceAndEverywhereOnceCommitted) {
  ASSERT_OK(Write(Commit::kBatched, "INSERT INTO scratch(id, b) VALUES (1, 'one')"));
  EXPECT_EQ(CountFromHere("id = 1"), 1);  // this Db reads through the open batch
  ASSERT_OK(db_->CommitOpenBatch());
  EXPECT_EQ(CountFromOutside(path_, "scratch", "id = 1"), 1);
}

TEST_F(DbTest, BackgroundThreadCommitsTheBatch) {
  ASSERT_OK(Write(Commit::kBatched, "INSERT INTO scratch(id, b) VALUES (2, 'two')"));
  // Nobody commits it here: the committer thread must, within its window.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (CountFromOutside(path_, "scratch", "id = 2") != 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "batch never committed";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST_F(DbTest, FailedChangeRollsBackAloneAndTheBatchGoesOn) {
  ASSERT_OK(Write(Commit::kBatched, "INSERT INTO scratch(id, b) VALUES (3, 'kept')"));
  // Inserts a row, then fails (duplicate key): the row must go, not the batch.
  EXPECT_FALSE(Write(Commit::kBatched, "INSERT INTO scratch(id, b) VALUES (4, 'undone'); "
                                       "INSERT INTO scratch(id, b) VALUES (3, 'dup')")
                   .ok());
  ASSERT_OK(Write(Commit::kBatched, "INSERT INTO scratch(id, b) VALUES (5, 'kept too')"));
  ASSERT_OK(db_->CommitOpenBatch());
  EXPECT_EQ(CountFromOutside(path_, "scratch", "id IN (3, 5)"), 2);
  EXPECT_EQ(CountFromOutside(path_, "scratch", "id = 4"), 0);
}

TEST_F(DbTest, CommitNowCarriesTheOpenBatch) {
  ASSERT_OK(Write(Commit::kBatched, "INSERT INTO scratch(id, b) VALUES (6, 'batched')"));
  ASSERT_OK(Write(Commit::kNow, "INSERT INTO scratch(id, b) VALUES (7, 'now')"));
  EXPECT_EQ(CountFromOutside(path_, "scratch", "id IN (6, 7)"), 2);
  ASSERT_OK(Write(Commit::kBatched, "INSERT INTO scratch(id, b) VALUES (8, 'batched')"));
  ASSERT_OK(Write(Commit::kDurable, "INSERT INTO scratch(id, b) VALUES (9, 'durable')"));
  EXPECT_EQ(CountFromOutside(path_, "scratch", "id IN (8, 9)"), 2);
}

TEST_F(DbTest, WalWritesAreGatheredIntoFewSystemCalls) {
  // 2,000 pages of 4 KiB: SQLite alone makes two pwrite(2)s per page.
  int64_t before = WriteSyscalls();
  ASSERT_GE(before, 0);
  ASSERT_OK(InsertBlobs(Commit::kNow, 2000, 4000));
  int64_t calls = WriteSyscalls() - before;
  EXPECT_LT(calls, 400) << "write system calls for ~8 MiB of WAL";
  // ... and every page reached the file: another connection reads them all.
  EXPECT_EQ(CountFromOutside(path_, "scratch", "length(b) = 4000"), 2000);
}

TEST_F(DbTest, CheckpointerCopiesTheWalBackAndKeepsItBounded) {
  // 96 MiB in 4 MiB commits: past the 64 MiB mark the checkpointer must move
  // the WAL into the store file (which stops growing when it is done).
  for (int i = 0; i < 24; ++i) ASSERT_OK(InsertBlobs(Commit::kNow, 64, 64 << 10));
  // Done when a checkpoint round (passive, then restart) covers every
  // commit, however slowly a busy machine runs the checkpointer's
  // low-priority thread (the deadline only keeps a broken checkpointer from
  // hanging the suite).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(4);
  while (!db_->CheckpointsCaughtUp()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no checkpoint";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(std::filesystem::file_size(path_), 96u << 20);
  // The next commits start the WAL over instead of appending to it: another
  // 64 MiB must not make the WAL file grow past its size so far (or 64 MiB,
  // the journal_size_limit it may have been cut back to) plus one commit.
  const uintmax_t wal_before = std::filesystem::file_size(path_ + "-wal");
  for (int i = 0; i < 16; ++i) ASSERT_OK(InsertBlobs(Commit::kNow, 64, 64 << 10));
  EXPECT_LE(std::filesystem::file_size(path_ + "-wal"),
            std::max<uintmax_t>(wal_before, 64u << 20) + (6u << 20));
  EXPECT_EQ(CountFromOutside(path_, "scratch", "length(b) = 65536"), 40 * 64);
  // Closing the store leaves one self-contained file.
  db_.reset();
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
  EXPECT_EQ(CountFromOutside(path_, "scratch", "length(b) = 65536"), 40 * 64);
}

// Low on space (here: a 40 MiB tmpfs, far below the checkpointer's 1 GiB
// mark), every commit is in the store file and the WAL file is empty by the
// time the next writer has the connection: the writer does not depend on
// the checkpoint thread keeping up (it runs at a lower priority, and a busy
// machine once let 30 MiB of commits pile up in the WAL of a store whose
// disk then filled). So when the disk fills, the WAL holds at most the
// failing transaction, and freeing space lets writes through at once.
TEST(DbLowSpaceTest, EachCommitIsCopiedBackBeforeTheNextWriterAndFreedSpaceIsUsed) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  TempDir dir;
  const std::string disk = dir.File("disk");
  std::filesystem::create_directories(disk);
  ASSERT_EQ(::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=40m"), 0) << strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{disk};
  const std::string path = disk + "/store.db";
  const std::string wal = path + "-wal";
  int committed = 0;
  {
    auto opened = Db::Open(path, false, 65536, 1);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::unique_ptr<Db> db = std::move(opened).value();
    auto write = [&](Commit commit, const std::string& sql) -> Status {
      ASSIGN_OR_RETURN(WriterLease lease, db->Writer());
      return db->WriteTransaction(lease, commit, 0, [&] { return lease.conn().Exec(sql); });
    };
    ASSERT_OK(write(Commit::kNow, "CREATE TABLE scratch (id INTEGER PRIMARY KEY, b BLOB)"));
    // 4 MiB commits until the disk is full. Each time the writer is taken
    // again, the commits before are in the store file and the WAL is empty
    // (but for the last commit, which the disk may have no room left to
    // copy back: the store file must grow by what it moves).
    const std::string insert4m =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) "
        "INSERT INTO scratch(b) SELECT randomblob(65536) FROM n";
    Status s;
    std::vector<uintmax_t> wal_sizes;  // when the writer is next taken
    for (; committed < 20; ++committed) {
      s = write(Commit::kDurable, insert4m);
      if (!s.ok()) break;
      ASSERT_OK(db->Writer().status());
      wal_sizes.push_back(std::filesystem::file_size(wal));
    }
    ASSERT_EQ(s.code(), Code::kNoSpace) << "after " << committed << " commits: " << s.ToString();
    ASSERT_GE(committed, 5);
    for (int i = 0; i + 1 < committed; ++i) {
      EXPECT_EQ(wal_sizes[i], 0u) << "WAL bytes when the writer was taken after commit " << i;
    }
    // What fills the disk is the store file: the WAL holds no more than the
    // last commit and the transaction that failed, 4 MiB each.
    EXPECT_LE(std::filesystem::file_size(wal), 9u << 20);
    // 16 MiB freed (the disk grows): the next 4 MiB commit goes through,
    // and everything is copied back before the next writer.
    ASSERT_EQ(::mount("tmpfs", disk.c_str(), "tmpfs", MS_REMOUNT, "size=56m"), 0) << strerror(errno);
    ASSERT_OK(write(Commit::kDurable, insert4m));
    ASSERT_OK(db->Writer().status());
    EXPECT_EQ(std::filesystem::file_size(wal), 0u);
    EXPECT_EQ(CountFromOutside(path, "scratch", "length(b) = 65536"), (committed + 1) * 64);
  }
  // Closed, the store is one file again, with every commit.
  EXPECT_FALSE(std::filesystem::exists(wal));
  EXPECT_EQ(CountFromOutside(path, "scratch", "length(b) = 65536"), (committed + 1) * 64);
}

}  // namespace
}  // namespace strata::catalog
