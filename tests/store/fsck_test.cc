// fsck: Store::CheckIntegrity and RepairIntegrity on real stores damaged
// the way crashes and bugs damage them (rows changed behind Strata's back
// with a plain SQLite connection), and the `strata fsck` command.
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "testing/cli_runner.h"
#include "testing/raw_db.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::RawDb;
using testing::RunStrata;

class FsckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("store.db");
    Reopen();
    ASSERT_OK_AND_ASSIGN(SessionInfo s, store_->CreateSession("s"));
    branch_ = s.branch;
    ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{branch_, kHead}));
    ASSERT_OK_AND_ASSIGN(Attr d, fs->MkDir(kRootIno, "dir", 0755, Cred{}));
    dir_ino_ = d.ino;
    ASSERT_OK_AND_ASSIGN(Attr f, fs->Create(d.ino, "file", 0644, Cred{}));
    file_ino_ = f.ino;
    std::string text(100000, 'x');
    ASSERT_OK(fs->Write(f.ino, 0, {reinterpret_cast<const uint8_t*>(text.data()), text.size()})
                  .status());
    ASSERT_OK(fs->Release(f.ino));
    ASSERT_OK(fs->Link(f.ino, kRootIno, "hardlink").status());
    ASSERT_OK(fs->MkDir(d.ino, "sub", 0755, Cred{}).status());
    ASSERT_OK(fs->FlushAll());
  }

  void Reopen() {
    store_.reset();
    StoreOptions options;
    options.path = path_;
    ASSERT_OK_AND_ASSIGN(store_, Store::Open(options));
  }

  // Problems of `kind` (all of them when kind is empty).
  std::vector<IntegrityProblem> Problems(const std::string& kind = "") {
    auto problems = store_->CheckIntegrity();
    EXPECT_TRUE(problems.ok()) << problems.status().ToString();
    std::vector<IntegrityProblem> out;
    for (auto& p : *problems) {
      if (kind.empty() || p.kind == kind) out.push_back(p);
    }
    return out;
  }

  static std::string Describe(const std::vector<IntegrityProblem>& problems) {
    std::string s;
    for (const auto& p : problems) s += p.kind + ": " + p.detail + "\n";
    return s;
  }

  // Changes the store's rows with a plain connection (the store closed).
  void Tamper(const std::string& sql) {
    store_.reset();
    {
      RawDb raw(path_);
      raw.Exec(sql);
    }
    Reopen();
  }

  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
  BranchId branch_ = 0;
  InodeId dir_ino_ = 0;
  InodeId file_ino_ = 0;
};

TEST_F(FsckTest, SoundStoreWithSnapshotsForksAndRestoreHasNoProblems) {
  ASSERT_OK(store_->Snapshot(branch_, "one").status());
  ASSERT_OK_AND_ASSIGN(BranchId fork, store_->Fork(View{branch_, kHead}, "f"));
  {
    ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{fork, kHead}));
    ASSERT_OK(fs->Unlink(kRootIno, "hardlink"));
    ASSERT_OK(fs->Rename(dir_ino_, "sub", kRootIno, "moved", 0));
    ASSERT_OK(fs->FlushAll());
  }
  ASSERT_OK_AND_ASSIGN(SnapshotInfo one, store_->FindSnapshot(branch_, "one"));
  ASSERT_OK(store_->Restore("s", View{one.branch, one.version}).status());
  auto problems = Problems();
  EXPECT_TRUE(problems.empty()) << Describe(problems);
}

TEST_F(FsckTest, EntryNamingNoInodeIsReportedWithSessionAndPathAndRepaired) {
  Tamper("DELETE FROM inodes WHERE ino = " + std::to_string(file_ino_));
  auto dangling = Problems("dangling-entry");
  ASSERT_EQ(dangling.size(), 2u) << Describe(Problems());
  std::vector<std::string> paths{dangling[0].path, dangling[1].path};
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(paths, (std::vector<std::string>{"/dir/file", "/hardlink"}));
  EXPECT_EQ(dangling[0].where, "session s");
  EXPECT_TRUE(dangling[0].repairable);
  EXPECT_NE(dangling[0].detail.find("session s: /"), std::string::npos) << dangling[0].detail;

  ASSERT_OK_AND_ASSIGN(auto fixed, store_->RepairIntegrity());
  EXPECT_EQ(fixed.size(), 2u) << Describe(fixed);
  auto after = Problems();
  EXPECT_TRUE(after.empty()) << Describe(after);
  // What was sound is untouched.
  ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{branch_, kHead}));
  EXPECT_OK(fs->Lookup(dir_ino_, "sub").status());
  EXPECT_EQ(fs->Lookup(dir_ino_, "file").status().code(), Code::kNotFound);
}

TEST_F(FsckTest, WrongLinkCountIsRepairedAtTheHeadButOnlyReportedInASnapshot) {
  ASSERT_OK(store_->Snapshot(branch_, "frozen").status());
  // The rows written before the snapshot belong to it (and to the head).
  Tamper("UPDATE inodes SET nlink = 7 WHERE ino = " + std::to_string(file_ino_));
  auto wrong = Problems("nlink");
  ASSERT_EQ(wrong.size(), 1u) << Describe(Problems());
  EXPECT_EQ(wrong[0].where, "s@frozen");
  EXPECT_FALSE(wrong[0].repairable);
  EXPECT_NE(wrong[0].detail.find("nlink 7 but 2 links"), std::string::npos) << wrong[0].detail;

  // In the head alone (copied on first touch), it is repairable.
  Tamper("UPDATE inodes SET nlink = 2 WHERE ino = " + std::to_string(file_ino_));
  {
    ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{branch_, kHead}));
    AttrChanges changes;
    changes.mode = 0600;
    ASSERT_OK(fs->SetAttr(file_ino_, changes).status());
    ASSERT_OK(fs->FlushAll());
  }
  Tamper("UPDATE inodes SET nlink = 5 WHERE ino = " + std::to_string(file_ino_) +
         " AND branch = " + std::to_string(branch_) +
         " AND vfrom = (SELECT head_version FROM branches WHERE id = " + std::to_string(branch_) +
         ")");
  wrong = Problems("nlink");
  ASSERT_EQ(wrong.size(), 1u) << Describe(Problems());
  EXPECT_EQ(wrong[0].where, "session s");
  EXPECT_EQ(wrong[0].path == "/hardlink" || wrong[0].path == "/dir/file", true) << wrong[0].path;
  EXPECT_TRUE(wrong[0].repairable);
  ASSERT_OK(store_->RepairIntegrity().status());
  EXPECT_TRUE(Problems().empty()) << Describe(Problems());
}

TEST_F(FsckTest, OrphanLeftByAProcessThatDiedWithTheFileOpenIsFoundAndRepaired) {
  store_.reset();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The crashing process: unlinks a file it has open, commits, dies.
    StoreOptions options;
    options.path = path_;
    auto store = Store::Open(options);
    if (!store.ok()) _exit(2);
    auto fs = (*store)->OpenFilesystem(View{branch_, kHead});
    if (!fs.ok()) _exit(3);
    auto f = (*fs)->Create(kRootIno, "scratch", 0644, Cred{});
    if (!f.ok()) _exit(4);
    std::string data(300000, 'o');
    if (!(*fs)->Write(f->ino, 0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}).ok())
      _exit(5);
    if (!(*fs)->Unlink(kRootIno, "scratch").ok()) _exit(6);
    if (!(*fs)->FlushAll().ok() || !(*store)->Sync().ok()) _exit(7);
    _exit(0);  // no Release, no close: as kill -9 would leave it
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  Reopen();
  auto orphans = Problems("orphan");
  ASSERT_EQ(orphans.size(), 1u) << Describe(Problems());
  EXPECT_EQ(orphans[0].where, "session s");
  EXPECT_NE(orphans[0].detail.find("300000 bytes"), std::string::npos) << orphans[0].detail;
  EXPECT_TRUE(orphans[0].repairable);
  ASSERT_OK(store_->RepairIntegrity().status());
  EXPECT_TRUE(Problems().empty()) << Describe(Problems());
  store_.reset();
  RawDb raw(path_);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM orphans"), 0);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM inodes WHERE ino = " + std::to_string(orphans[0].ino)),
            0);
}

TEST_F(FsckTest, FileWithLinksButNoNameIsReportedAndKept) {
  Tamper("DELETE FROM dentries WHERE name IN (CAST('file' AS BLOB), CAST('hardlink' AS BLOB))");
  auto lost = Problems("unreachable");
  ASSERT_EQ(lost.size(), 1u) << Describe(Problems());
  EXPECT_FALSE(lost[0].repairable);  // its data cannot be put back where it was
  ASSERT_OK(store_->RepairIntegrity().status());
  store_.reset();
  RawDb raw(path_);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM inodes WHERE ino = " + std::to_string(file_ino_)), 1);
}

TEST_F(FsckTest, DirectoryMadeItsOwnAncestorIsReported) {
  InodeId sub = 0;
  {
    ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{branch_, kHead}));
    ASSERT_OK_AND_ASSIGN(Attr a, fs->Lookup(dir_ino_, "sub"));
    sub = a.ino;
  }
  // dir/sub/loop -> dir, and dir's parent pointer at sub: a cycle cut off
  // from the root.
  Tamper("INSERT INTO dentries(parent, name, branch, vfrom, ino, type) SELECT " +
         std::to_string(sub) + ", CAST('loop' AS BLOB), branch, vfrom, " +
         std::to_string(dir_ino_) + ", " + std::to_string(S_IFDIR) +
         " FROM dentries WHERE ino = " + std::to_string(dir_ino_) +
         "; DELETE FROM dentries WHERE name = CAST('dir' AS BLOB);"
         " UPDATE inodes SET parent = " + std::to_string(sub) + " WHERE ino = " +
         std::to_string(dir_ino_));
  auto problems = Problems();
  bool cycle = false;
  for (const auto& p : problems) cycle |= p.kind == "directory-cycle";
  EXPECT_TRUE(cycle) << Describe(problems);
}

TEST_F(FsckTest, DamagedCatalogIsReportedWithoutCrashing) {
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_, "one"));
  ASSERT_OK(store_->Fork(View{branch_, v}, "f").status());
  Tamper("UPDATE snapshots SET version = 999");
  EXPECT_EQ(Problems("missing-version").size(), 1u) << Describe(Problems());

  Tamper("UPDATE snapshots SET version = " + std::to_string(v) +
         "; UPDATE branches SET parent = (SELECT branch FROM sessions WHERE name = 'f'),"
         " parent_version = 1 WHERE id = " + std::to_string(branch_));
  auto problems = Problems();
  bool cycle = false;
  for (const auto& p : problems) cycle |= p.kind == "branch-cycle" || p.kind == "fork-version";
  EXPECT_TRUE(cycle) << Describe(problems);

  Tamper("UPDATE branches SET parent = NULL, parent_version = 0 WHERE id = " +
         std::to_string(branch_) + "; UPDATE ancestry SET vlimit = vlimit + 5 WHERE depth = 1");
  EXPECT_EQ(Problems("ancestry").size(), 1u) << Describe(Problems());
}

TEST_F(FsckTest, TamperedChunkNamesTheFilesThatUseIt) {
  Tamper("UPDATE chunks SET data = zeroblob(length(data)), codec = 0 WHERE id ="
         " (SELECT chunk FROM blocks WHERE ino = " + std::to_string(file_ino_) + " LIMIT 1)");
  auto problems = Problems();
  ASSERT_FALSE(problems.empty());
  const auto& p = problems[0];
  EXPECT_TRUE(p.kind == "bad-hash" || p.kind == "bad-chunk") << p.kind;
  EXPECT_EQ(p.where, "session s");
  EXPECT_TRUE(p.path == "/dir/file" || p.path == "/hardlink") << p.path;
  EXPECT_FALSE(p.repairable);
}

// --- the command

TEST_F(FsckTest, CommandExitsNonZeroListsProblemsAndRepairs) {
  Tamper("DELETE FROM inodes WHERE ino = " + std::to_string(file_ino_));
  store_.reset();
  auto check = RunStrata(dir_, path_, "fsck");
  EXPECT_NE(check.exit_code, 0);
  EXPECT_NE(check.out.find("dangling-entry: session s: /dir/file"), std::string::npos) << check.out;
  EXPECT_NE(check.err.find("'strata fsck --repair' fixes 2"), std::string::npos) << check.err;

  auto json = RunStrata(dir_, path_, "--json fsck");
  EXPECT_NE(json.exit_code, 0);
  EXPECT_NE(json.out.find("\"repairable\": true"), std::string::npos) << json.out;

  auto repair = RunStrata(dir_, path_, "fsck --repair");
  EXPECT_EQ(repair.exit_code, 0) << repair.out << repair.err;
  EXPECT_NE(repair.out.find("repaired dangling-entry"), std::string::npos) << repair.out;
  auto again = RunStrata(dir_, path_, "fsck");
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("no problems found"), std::string::npos);
}

TEST_F(FsckTest, CommandChecksAMountedStoreButRefusesToRepairIt) {
  store_.reset();
  std::string mnt = dir_.File("mnt");
  mkdir(mnt.c_str(), 0755);
  auto mount = RunStrata(dir_, path_, "mount s " + mnt);
  ASSERT_EQ(mount.exit_code, 0) << mount.err;
  // A file unlinked while open on the mount is an orphan, not a problem.
  std::string file = mnt + "/open-then-unlinked";
  int fd = ::open(file.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "data", 4), 4);
  ASSERT_EQ(::unlink(file.c_str()), 0);
  ASSERT_EQ(::fsync(fd), 0);
  auto check = RunStrata(dir_, path_, "fsck");
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  auto repair = RunStrata(dir_, path_, "fsck --repair");
  EXPECT_NE(repair.exit_code, 0);
  EXPECT_NE(repair.err.find("is mounted"), std::string::npos) << repair.err;
  ::close(fd);
  EXPECT_EQ(RunStrata(dir_, path_, "umount " + mnt).exit_code, 0);
  auto after = RunStrata(dir_, path_, "fsck");
  EXPECT_EQ(after.exit_code, 0) << after.out << after.err;
}

}  // namespace
}  // namespace strata
