// Sessions, snapshots, forks, restores, diffs and concurrent use of a store.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "testing/temp_store.h"

namespace strata {
namespace {

using ::strata::testing::StoreTest;

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class BranchesTest : public StoreTest {
 protected:
  std::unique_ptr<Filesystem> OpenFs(View view) {
    auto fs = store_->OpenFilesystem(view);
    EXPECT_TRUE(fs.ok()) << fs.status().ToString();
    return fs.ok() ? std::move(fs).value() : nullptr;
  }
  std::unique_ptr<Filesystem> OpenHead(BranchId branch) { return OpenFs(View{branch, kHead}); }

  // Creates or replaces the content of the file at `path` (its directory must
  // exist). Leaves nothing buffered unless `keep_open`.
  void Put(Filesystem& fs, const std::string& path, const std::string& content,
           bool keep_open = false) {
    size_t slash = path.rfind('/');
    std::string dir = path.substr(0, slash);
    std::string name = path.substr(slash + 1);
    auto parent = fs.Resolve(dir.empty() ? "/" : dir);
    ASSERT_TRUE(parent.ok()) << path << ": " << parent.status().ToString();
    testing::ReplaceFile(fs, parent->ino, name, content, keep_open);
  }

  // The content of the file at `path`, or "<Code>" when it cannot be read.
  std::string Get(Filesystem& fs, const std::string& path) {
    auto attr = fs.Resolve(path);
    if (!attr.ok()) return "<" + std::string(CodeName(attr.status().code())) + ">";
    std::string out(attr->size, '\0');
    auto n = fs.Read(attr->ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    if (!n.ok()) return "<" + std::string(CodeName(n.status().code())) + ">";
    out.resize(*n);
    return out;
  }

  void MkDirs(Filesystem& fs, const std::string& path) {
    InodeId dir = kRootIno;
    size_t pos = 1;
    while (pos <= path.size()) {
      size_t end = path.find('/', pos);
      if (end == std::string::npos) end = path.size();
      std::string name = path.substr(pos, end - pos);
      auto found = fs.Lookup(dir, name);
      if (found.ok()) {
        dir = found->ino;
      } else {
        ASSERT_OK_AND_ASSIGN(Attr a, fs.MkDir(dir, name, 0755, Cred{}));
        dir = a.ino;
      }
      pos = end + 1;
    }
  }

  void ExpectSound() {
    ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
    for (auto& p : problems) ADD_FAILURE() << p.kind << ": " << p.detail;
  }
};

// "+/a" added, "-/a" removed, "*/a" modified: a compact, exact rendering.
std::vector<std::string> Render(const std::vector<Change>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) {
    char k = c.kind == ChangeKind::kAdded ? '+' : c.kind == ChangeKind::kRemoved ? '-' : '*';
    out.push_back(k + c.path);
  }
  return out;
}

using Strings = std::vector<std::string>;

// --- Sessions.

TEST_F(BranchesTest, CreateGetAndListSessions) {
  ASSERT_OK_AND_ASSIGN(SessionInfo main, store_->GetSession("main"));
  EXPECT_EQ(main.name, "main");
  EXPECT_EQ(main.branch, branch_);
  ASSERT_OK_AND_ASSIGN(SessionInfo beta, store_->CreateSession("beta", Cred{1000, 100}));
  ASSERT_OK_AND_ASSIGN(SessionInfo alpha, store_->CreateSession("alpha"));
  EXPECT_EQ(beta.name, "beta");
  EXPECT_NE(beta.branch, main.branch);
  EXPECT_NE(alpha.branch, beta.branch);
  EXPECT_GT(beta.created_ns, 0);
  ASSERT_OK_AND_ASSIGN(SessionInfo got, store_->GetSession("beta"));
  EXPECT_EQ(got.name, "beta");
  EXPECT_EQ(got.branch, beta.branch);
  EXPECT_EQ(got.created_ns, beta.created_ns);
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListSessions());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].name, "alpha");
  EXPECT_EQ(all[1].name, "beta");
  EXPECT_EQ(all[2].name, "main");
  EXPECT_EQ(all[1].branch, beta.branch);
  EXPECT_CODE(store_->GetSession("gamma"), Code::kNotFound);

  // A new session is a root branch holding an empty root owned by `owner`.
  ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(beta.branch));
  EXPECT_FALSE(info.parent.has_value());
  EXPECT_EQ(info.depth, 0);
  auto fs = OpenHead(beta.branch);
  ASSERT_OK_AND_ASSIGN(Attr root, fs->GetAttr(kRootIno));
  EXPECT_TRUE(S_ISDIR(root.mode));
  EXPECT_EQ(root.uid, 1000u);
  EXPECT_EQ(root.gid, 100u);
  ASSERT_OK_AND_ASSIGN(auto entries, fs->ReadDir(kRootIno));
  EXPECT_EQ(entries.size(), 2u);  // "." and ".."
  // Sessions do not share files.
  Put(*fs_, "/only-in-main", "m");
  EXPECT_EQ(Get(*fs, "/only-in-main"), "<NotFound>");
}

TEST_F(BranchesTest, InvalidSessionNamesAreRefused) {
  for (const char* name : {"", "../x", ".hidden", "a b", "a/b", "-dash", "tab\tname", "x\n",
                           "caf\xc3\xa9", ".", ".."}) {
    SCOPED_TRACE(name);
    EXPECT_CODE(store_->CreateSession(name), Code::kInvalid);
    // For Fork an empty name means "no session".
    if (*name != '\0') EXPECT_CODE(store_->Fork(View{branch_, kHead}, name), Code::kInvalid);
  }
  EXPECT_CODE(store_->CreateSession(std::string(129, 'a')), Code::kInvalid);
  ASSERT_OK(store_->CreateSession(std::string(128, 'a')).status());
  ASSERT_OK(store_->CreateSession("a.b_c-9").status());
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListSessions());
  EXPECT_EQ(all.size(), 3u);
}

TEST_F(BranchesTest, DuplicateSessionNameExists) {
  ASSERT_OK_AND_ASSIGN(BranchInfo before, store_->GetBranch(branch_));
  EXPECT_CODE(store_->CreateSession("main"), Code::kExists);
  EXPECT_CODE(store_->Fork(View{branch_, kHead}, "main"), Code::kExists);
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListSessions());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].branch, branch_);
  // The failed head fork changed nothing: its freeze was rolled back.
  ASSERT_OK_AND_ASSIGN(BranchInfo after, store_->GetBranch(branch_));
  EXPECT_EQ(after.head_version, before.head_version);
}

// --- Snapshots.

TEST_F(BranchesTest, SnapshotsHaveIncreasingVersionsAndAreFoundByName) {
  Put(*fs_, "/f", "one");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_, "first"));
  Put(*fs_, "/f", "two");
  ASSERT_OK_AND_ASSIGN(Version v2, store_->Snapshot(branch_));
  Put(*fs_, "/f", "three");
  ASSERT_OK_AND_ASSIGN(Version v3, store_->Snapshot(branch_, "third"));
  EXPECT_LT(v1, v2);
  EXPECT_LT(v2, v3);

  ASSERT_OK_AND_ASSIGN(SnapshotInfo first, store_->FindSnapshot(branch_, "first"));
  EXPECT_EQ(first.version, v1);
  EXPECT_EQ(first.branch, branch_);
  EXPECT_EQ(first.name, "first");
  ASSERT_OK_AND_ASSIGN(SnapshotInfo third, store_->FindSnapshot(branch_, "third"));
  EXPECT_EQ(third.version, v3);
  EXPECT_CODE(store_->FindSnapshot(branch_, "second"), Code::kNotFound);
  EXPECT_CODE(store_->FindSnapshot(branch_, ""), Code::kNotFound);
  EXPECT_CODE(store_->Snapshot(999), Code::kNotFound);
  EXPECT_CODE(store_->ListSnapshots(999), Code::kOk);  // no branch, no snapshots

  ASSERT_OK_AND_ASSIGN(auto list, store_->ListSnapshots(branch_));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].version, v1);
  EXPECT_EQ(list[1].version, v2);
  EXPECT_EQ(list[1].name, "");
  EXPECT_EQ(list[2].version, v3);

  // Each version is frozen with the content it had.
  EXPECT_EQ(Get(*OpenFs(View{branch_, v1}), "/f"), "one");
  EXPECT_EQ(Get(*OpenFs(View{branch_, v2}), "/f"), "two");
  EXPECT_EQ(Get(*OpenFs(View{branch_, v3}), "/f"), "three");
  Put(*fs_, "/f", "four");
  EXPECT_EQ(Get(*OpenFs(View{branch_, v3}), "/f"), "three");
  EXPECT_EQ(Get(*fs_, "/f"), "four");
}

TEST_F(BranchesTest, DuplicateSnapshotNameExistsAndChangesNothing) {
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_, "tag"));
  EXPECT_CODE(store_->Snapshot(branch_, "tag"), Code::kExists);
  ASSERT_OK_AND_ASSIGN(auto list, store_->ListSnapshots(branch_));
  EXPECT_EQ(list.size(), 1u);
  ASSERT_OK_AND_ASSIGN(Version v2, store_->Snapshot(branch_));
  EXPECT_EQ(v2, v1 + 1);  // the failed snapshot did not use up a version
  // The same name on another branch is fine.
  ASSERT_OK_AND_ASSIGN(SessionInfo other, store_->CreateSession("other"));
  ASSERT_OK(store_->Snapshot(other.branch, "tag").status());
}

TEST_F(BranchesTest, SnapshotIncludesBufferedWrites) {
  ASSERT_OK_AND_ASSIGN(Attr f, fs_->Create(kRootIno, "f", 0644, Cred{}));
  ASSERT_OK(fs_->Write(f.ino, 0, AsBytes("buffered")).status());
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_));
  ASSERT_OK(fs_->Write(f.ino, 0, AsBytes("BUFFERED after")).status());
  EXPECT_EQ(Get(*OpenFs(View{branch_, v}), "/f"), "buffered");
  ASSERT_OK(fs_->Release(f.ino));
  EXPECT_EQ(Get(*fs_, "/f"), "BUFFERED after");
  EXPECT_EQ(Get(*OpenFs(View{branch_, v}), "/f"), "buffered");
}

TEST_F(BranchesTest, SnapshotViewsAreReadOnly) {
  Put(*fs_, "/f", "x");
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_));
  auto snap = OpenFs(View{branch_, v});
  EXPECT_TRUE(snap->read_only());
  ASSERT_OK_AND_ASSIGN(Attr f, snap->Resolve("/f"));
  EXPECT_CODE(snap->Write(f.ino, 0, AsBytes("y")), Code::kReadOnly);
  EXPECT_CODE(snap->Create(kRootIno, "g", 0644, Cred{}), Code::kReadOnly);
  EXPECT_CODE(snap->Unlink(kRootIno, "f"), Code::kReadOnly);
  EXPECT_CODE(store_->OpenFilesystem(View{branch_, v + 1}), Code::kNotFound);
  EXPECT_CODE(store_->OpenFilesystem(View{branch_, 0}), Code::kNotFound);
  EXPECT_CODE(store_->OpenFilesystem(View{12345, kHead}), Code::kNotFound);
}

// --- Forks.

TEST_F(BranchesTest, ForkFromSnapshotSeesSnapshotNotLaterWrites) {
  Put(*fs_, "/f", "at snapshot");
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_));
  Put(*fs_, "/f", "after snapshot");
  Put(*fs_, "/g", "new after snapshot");
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{branch_, v}, "child"));
  ASSERT_OK_AND_ASSIGN(SessionInfo session, store_->GetSession("child"));
  EXPECT_EQ(session.branch, child);
  auto cfs = OpenHead(child);
  EXPECT_EQ(Get(*cfs, "/f"), "at snapshot");
  EXPECT_EQ(Get(*cfs, "/g"), "<NotFound>");
  ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(child));
  ASSERT_TRUE(info.parent.has_value());
  EXPECT_EQ(*info.parent, branch_);
  EXPECT_EQ(info.parent_version, v);
  EXPECT_EQ(info.depth, 1);
  // A fork of a version that is not frozen is refused.
  ASSERT_OK_AND_ASSIGN(BranchInfo parent, store_->GetBranch(branch_));
  EXPECT_CODE(store_->Fork(View{branch_, parent.head_version}), Code::kInvalid);
  EXPECT_CODE(store_->Fork(View{branch_, 0}), Code::kInvalid);
  EXPECT_CODE(store_->Fork(View{999, kHead}), Code::kNotFound);
}

TEST_F(BranchesTest, ForkFromHeadIncludesBufferedWrites) {
  Put(*fs_, "/flushed", "committed");
  ASSERT_OK_AND_ASSIGN(Attr f, fs_->Create(kRootIno, "buffered", 0644, Cred{}));
  ASSERT_OK(fs_->Write(f.ino, 0, AsBytes("not yet flushed")).status());
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{branch_, kHead}));
  // Later parent writes stay in the parent.
  ASSERT_OK(fs_->Write(f.ino, 0, AsBytes("NOT")).status());
  auto cfs = OpenHead(child);
  EXPECT_EQ(Get(*cfs, "/flushed"), "committed");
  EXPECT_EQ(Get(*cfs, "/buffered"), "not yet flushed");
  ASSERT_OK(fs_->Release(f.ino));
  EXPECT_EQ(Get(*fs_, "/buffered"), "NOT yet flushed");
  EXPECT_EQ(Get(*cfs, "/buffered"), "not yet flushed");
  ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(child));
  EXPECT_EQ(info.parent, branch_);
  ExpectSound();
}

TEST_F(BranchesTest, WritesInForkAndParentAreIsolated) {
  MkDirs(*fs_, "/d");
  Put(*fs_, "/d/shared", "base");
  Put(*fs_, "/doomed-in-child", "x");
  Put(*fs_, "/doomed-in-parent", "y");
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{branch_, kHead}, "child"));
  auto cfs = OpenHead(child);

  Put(*cfs, "/d/shared", "child version");
  Put(*cfs, "/child-only", "c");
  ASSERT_OK(cfs->Unlink(kRootIno, "doomed-in-child"));
  MkDirs(*cfs, "/cdir");

  Put(*fs_, "/d/shared", "parent version!");
  Put(*fs_, "/parent-only", "p");
  ASSERT_OK(fs_->Unlink(kRootIno, "doomed-in-parent"));

  EXPECT_EQ(Get(*fs_, "/d/shared"), "parent version!");
  EXPECT_EQ(Get(*fs_, "/child-only"), "<NotFound>");
  EXPECT_EQ(Get(*fs_, "/doomed-in-child"), "x");
  EXPECT_EQ(Get(*fs_, "/doomed-in-parent"), "<NotFound>");
  EXPECT_EQ(Get(*fs_, "/parent-only"), "p");
  EXPECT_CODE(fs_->Resolve("/cdir"), Code::kNotFound);

  EXPECT_EQ(Get(*cfs, "/d/shared"), "child version");
  EXPECT_EQ(Get(*cfs, "/child-only"), "c");
  EXPECT_EQ(Get(*cfs, "/doomed-in-child"), "<NotFound>");
  EXPECT_EQ(Get(*cfs, "/doomed-in-parent"), "y");
  EXPECT_EQ(Get(*cfs, "/parent-only"), "<NotFound>");
  ASSERT_OK(cfs->Resolve("/cdir").status());

  // Same after reopening everything.
  cfs.reset();
  OpenStore(StoreOptions{});
  cfs = OpenHead(child);
  EXPECT_EQ(Get(*fs_, "/d/shared"), "parent version!");
  EXPECT_EQ(Get(*cfs, "/d/shared"), "child version");
  EXPECT_EQ(Get(*cfs, "/doomed-in-parent"), "y");
  EXPECT_EQ(Get(*fs_, "/doomed-in-child"), "x");
  ExpectSound();
}

TEST_F(BranchesTest, ForkOfForkOfForkSeesRightDataAtEachLevel) {
  Put(*fs_, "/base", "from root");
  Put(*fs_, "/f", "r");
  ASSERT_OK_AND_ASSIGN(Version rv, store_->Snapshot(branch_));
  Put(*fs_, "/f", "r-later");  // after the fork point: invisible below

  ASSERT_OK_AND_ASSIGN(BranchId c1, store_->Fork(View{branch_, rv}));
  auto fs1 = OpenHead(c1);
  Put(*fs1, "/f", "c1");
  Put(*fs1, "/g1", "from c1");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(c1));
  Put(*fs1, "/f", "c1-later");

  ASSERT_OK_AND_ASSIGN(BranchId c2, store_->Fork(View{c1, v1}));
  auto fs2 = OpenHead(c2);
  Put(*fs2, "/f", "c2");
  ASSERT_OK(fs2->Unlink(kRootIno, "g1"));
  Put(*fs2, "/g2", "from c2");

  ASSERT_OK_AND_ASSIGN(BranchId c3, store_->Fork(View{c2, kHead}));
  auto fs3 = OpenHead(c3);
  Put(*fs3, "/f", "c3");
  Put(*fs2, "/g2", "c2 after fork");

  struct Expect {
    Filesystem* fs;
    const char* f;
    const char* g1;
    const char* g2;
  };
  for (const Expect& e : {Expect{fs_.get(), "r-later", "<NotFound>", "<NotFound>"},
                          Expect{fs1.get(), "c1-later", "from c1", "<NotFound>"},
                          Expect{fs2.get(), "c2", "<NotFound>", "c2 after fork"},
                          Expect{fs3.get(), "c3", "<NotFound>", "from c2"}}) {
    EXPECT_EQ(Get(*e.fs, "/base"), "from root");
    EXPECT_EQ(Get(*e.fs, "/f"), e.f);
    EXPECT_EQ(Get(*e.fs, "/g1"), e.g1);
    EXPECT_EQ(Get(*e.fs, "/g2"), e.g2);
  }
  ASSERT_OK_AND_ASSIGN(auto root_listing, fs3->ReadDir(kRootIno));
  Strings names;
  for (const auto& e : root_listing) names.push_back(e.name);
  EXPECT_EQ(names, (Strings{".", "..", "base", "f", "g2"}));

  ASSERT_OK_AND_ASSIGN(BranchInfo b0, store_->GetBranch(branch_));
  ASSERT_OK_AND_ASSIGN(BranchInfo b1, store_->GetBranch(c1));
  ASSERT_OK_AND_ASSIGN(BranchInfo b2, store_->GetBranch(c2));
  ASSERT_OK_AND_ASSIGN(BranchInfo b3, store_->GetBranch(c3));
  EXPECT_EQ(b0.depth, 0);
  EXPECT_FALSE(b0.parent.has_value());
  EXPECT_EQ(b1.depth, 1);
  EXPECT_EQ(b1.parent, branch_);
  EXPECT_EQ(b1.parent_version, rv);
  EXPECT_EQ(b2.depth, 2);
  EXPECT_EQ(b2.parent, c1);
  EXPECT_EQ(b2.parent_version, v1);
  EXPECT_EQ(b3.depth, 3);
  EXPECT_EQ(b3.parent, c2);
  EXPECT_EQ(b3.id, c3);
  EXPECT_CODE(store_->GetBranch(4242), Code::kNotFound);
  ExpectSound();
}

// --- Restore.

TEST_F(BranchesTest, RestoreRewindsAndCanBeUndone) {
  Put(*fs_, "/f", "v1");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_, "good"));
  Put(*fs_, "/f", "v2");
  Put(*fs_, "/g", "created after v1");
  ASSERT_OK_AND_ASSIGN(Attr f, fs_->Resolve("/f"));
  ASSERT_OK(fs_->Open(f.ino));
  ASSERT_OK(fs_->Write(f.ino, 0, AsBytes("V3")).status());  // buffered, then abandoned

  ASSERT_OK_AND_ASSIGN(View undo, store_->Restore("main", View{branch_, v1}));
  EXPECT_EQ(undo.branch, branch_);
  EXPECT_GT(undo.version, v1);
  ASSERT_OK_AND_ASSIGN(SnapshotInfo named, store_->FindSnapshot(branch_, "before-restore-1"));
  EXPECT_EQ(named.version, undo.version);
  EXPECT_EQ(named.branch, undo.branch);

  ASSERT_OK_AND_ASSIGN(SessionInfo session, store_->GetSession("main"));
  EXPECT_NE(session.branch, branch_);
  ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(session.branch));
  EXPECT_EQ(info.parent, branch_);
  EXPECT_EQ(info.parent_version, v1);
  auto restored = OpenHead(session.branch);
  EXPECT_EQ(Get(*restored, "/f"), "v1");
  EXPECT_EQ(Get(*restored, "/g"), "<NotFound>");
  // The abandoned state, buffered write included, is kept in the undo view.
  auto abandoned = OpenFs(undo);
  EXPECT_EQ(Get(*abandoned, "/f"), "V3");
  EXPECT_EQ(Get(*abandoned, "/g"), "created after v1");
  ASSERT_OK(fs_->Release(f.ino));

  Put(*restored, "/h", "written after restore");
  restored.reset();
  ASSERT_OK_AND_ASSIGN(View undo2, store_->Restore("main", undo));
  EXPECT_EQ(undo2.branch, session.branch);
  // Undo names are unique in the store: the second restore's is -2.
  ASSERT_OK_AND_ASSIGN(SnapshotInfo named2,
                       store_->FindSnapshot(session.branch, "before-restore-2"));
  EXPECT_EQ(named2.version, undo2.version);
  ASSERT_OK_AND_ASSIGN(SessionInfo back, store_->GetSession("main"));
  auto undone = OpenHead(back.branch);
  EXPECT_EQ(Get(*undone, "/f"), "V3");
  EXPECT_EQ(Get(*undone, "/g"), "created after v1");
  EXPECT_EQ(Get(*undone, "/h"), "<NotFound>");
  // And the undo of the undo still holds the restored state.
  EXPECT_EQ(Get(*OpenFs(undo2), "/h"), "written after restore");
  EXPECT_EQ(Get(*OpenFs(undo2), "/f"), "v1");
  ExpectSound();
}

TEST_F(BranchesTest, RestoreUndoNameSkipsNamesAlreadyTaken) {
  Put(*fs_, "/f", "a");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_, "before-restore-1"));
  Put(*fs_, "/f", "b");
  ASSERT_OK_AND_ASSIGN(View undo, store_->Restore("main", View{branch_, v1}));
  ASSERT_OK_AND_ASSIGN(SnapshotInfo taken, store_->FindSnapshot(branch_, "before-restore-1"));
  EXPECT_EQ(taken.version, v1);
  ASSERT_OK_AND_ASSIGN(SnapshotInfo named, store_->FindSnapshot(branch_, "before-restore-2"));
  EXPECT_EQ(named.version, undo.version);
  EXPECT_EQ(Get(*OpenFs(undo), "/f"), "b");
}

TEST_F(BranchesTest, RestoreToAnotherSessionsState) {
  Put(*fs_, "/f", "main's");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(SessionInfo other, store_->CreateSession("other"));
  ASSERT_OK_AND_ASSIGN(View undo, store_->Restore("other", View{branch_, v1}));
  EXPECT_EQ(undo.branch, other.branch);
  ASSERT_OK_AND_ASSIGN(SessionInfo moved, store_->GetSession("other"));
  ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(moved.branch));
  EXPECT_EQ(info.parent, branch_);
  EXPECT_EQ(Get(*OpenHead(moved.branch), "/f"), "main's");
  EXPECT_EQ(Get(*OpenFs(undo), "/f"), "<NotFound>");
  // Restoring to a live head freezes that head first.
  Put(*fs_, "/f", "main's head");
  ASSERT_OK(store_->Restore("other", View{branch_, kHead}).status());
  ASSERT_OK_AND_ASSIGN(moved, store_->GetSession("other"));
  EXPECT_EQ(Get(*OpenHead(moved.branch), "/f"), "main's head");
  ASSERT_OK_AND_ASSIGN(SessionInfo main, store_->GetSession("main"));
  EXPECT_EQ(main.branch, branch_);
}

TEST_F(BranchesTest, RestoreOfUnknownSessionChangesNothing) {
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(BranchInfo before, store_->GetBranch(branch_));
  EXPECT_CODE(store_->Restore("nobody", View{branch_, v1}), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(BranchInfo after, store_->GetBranch(branch_));
  EXPECT_EQ(after.head_version, before.head_version);
  ASSERT_OK_AND_ASSIGN(auto snaps, store_->ListSnapshots(branch_));
  EXPECT_EQ(snaps.size(), 1u);
}

// --- Diff.

TEST_F(BranchesTest, DiffListsCreatedDirectorySubtree) {
  Put(*fs_, "/untouched", "u");
  ASSERT_OK_AND_ASSIGN(Version v0, store_->Snapshot(branch_));
  MkDirs(*fs_, "/d/e");
  Put(*fs_, "/d/e/f", "12345");
  Put(*fs_, "/d/g", "");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, v0}, View{branch_, v1}));
  EXPECT_EQ(Render(changes), (Strings{"+/d", "+/d/e", "+/d/e/f", "+/d/g"}));
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_TRUE(S_ISDIR(changes[0].new_mode));
  EXPECT_EQ(changes[0].old_mode, 0u);
  EXPECT_TRUE(S_ISREG(changes[2].new_mode));
  EXPECT_EQ(changes[2].new_size, 5u);
  // The other way round, everything is removed.
  ASSERT_OK_AND_ASSIGN(auto back, store_->Diff(View{branch_, v1}, View{branch_, v0}));
  EXPECT_EQ(Render(back), (Strings{"-/d", "-/d/e", "-/d/e/f", "-/d/g"}));
  ASSERT_OK_AND_ASSIGN(auto none, store_->Diff(View{branch_, v1}, View{branch_, v1}));
  EXPECT_TRUE(none.empty());
}

TEST_F(BranchesTest, DiffListsRemovedDirectorySubtree) {
  MkDirs(*fs_, "/d/e");
  Put(*fs_, "/d/e/f", "12345");
  Put(*fs_, "/d/g", "x");
  Put(*fs_, "/keep", "k");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(Attr d, fs_->Resolve("/d"));
  ASSERT_OK_AND_ASSIGN(Attr e, fs_->Resolve("/d/e"));
  ASSERT_OK(fs_->Unlink(e.ino, "f"));
  ASSERT_OK(fs_->RmDir(d.ino, "e"));
  ASSERT_OK(fs_->Unlink(d.ino, "g"));
  ASSERT_OK(fs_->RmDir(kRootIno, "d"));
  ASSERT_OK_AND_ASSIGN(Version v2, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, v1}, View{branch_, v2}));
  EXPECT_EQ(Render(changes), (Strings{"-/d", "-/d/e", "-/d/e/f", "-/d/g"}));
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_TRUE(S_ISDIR(changes[1].old_mode));
  EXPECT_EQ(changes[1].new_mode, 0u);
  EXPECT_EQ(changes[2].old_size, 5u);
}

TEST_F(BranchesTest, DiffShowsRenameAsRemovedPlusAdded) {
  Put(*fs_, "/a", "content");
  MkDirs(*fs_, "/dir/sub");
  Put(*fs_, "/dir/sub/x", "x");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  ASSERT_OK(fs_->Rename(kRootIno, "a", kRootIno, "b", 0));
  ASSERT_OK_AND_ASSIGN(Version v2, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, v1}, View{branch_, v2}));
  EXPECT_EQ(Render(changes), (Strings{"-/a", "+/b"}));
  // A renamed directory moves its whole subtree.
  ASSERT_OK(fs_->Rename(kRootIno, "dir", kRootIno, "moved", 0));
  ASSERT_OK_AND_ASSIGN(Version v3, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(changes, store_->Diff(View{branch_, v2}, View{branch_, v3}));
  EXPECT_EQ(Render(changes), (Strings{"-/dir", "-/dir/sub", "-/dir/sub/x", "+/moved",
                                      "+/moved/sub", "+/moved/sub/x"}));
}

TEST_F(BranchesTest, DiffShowsChmodAndContentChangeAsModified) {
  Put(*fs_, "/mode", "m");
  Put(*fs_, "/data", "old data");
  MkDirs(*fs_, "/dir");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(Attr m, fs_->Resolve("/mode"));
  AttrChanges chmod;
  chmod.mode = 0600;
  ASSERT_OK(fs_->SetAttr(m.ino, chmod).status());
  Put(*fs_, "/data", "new data, longer");
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->Resolve("/dir"));
  chmod.mode = 0700;
  ASSERT_OK(fs_->SetAttr(dir.ino, chmod).status());
  ASSERT_OK_AND_ASSIGN(Version v2, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, v1}, View{branch_, v2}));
  EXPECT_EQ(Render(changes), (Strings{"*/data", "*/dir", "*/mode"}));
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].old_size, 8u);
  EXPECT_EQ(changes[0].new_size, 16u);
  EXPECT_EQ(changes[2].old_mode, S_IFREG | 0644u);
  EXPECT_EQ(changes[2].new_mode, S_IFREG | 0600u);
}

TEST_F(BranchesTest, DiffIgnoresAtimeOnlyChange) {
  Put(*fs_, "/f", "x");
  MkDirs(*fs_, "/d");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  for (const char* path : {"/f", "/d"}) {
    ASSERT_OK_AND_ASSIGN(Attr a, fs_->Resolve(path));
    AttrChanges touch;
    touch.atime_ns = a.atime_ns + 1'000'000'000;
    ASSERT_OK(fs_->SetAttr(a.ino, touch).status());
  }
  ASSERT_OK_AND_ASSIGN(Version v2, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, v1}, View{branch_, v2}));
  EXPECT_EQ(Render(changes), Strings{});
}

TEST_F(BranchesTest, DiffOfCreateThenDeleteIsEmpty) {
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  Put(*fs_, "/tmp", "short-lived");
  ASSERT_OK_AND_ASSIGN(Version v2, store_->Snapshot(branch_));
  ASSERT_OK(fs_->Unlink(kRootIno, "tmp"));
  ASSERT_OK_AND_ASSIGN(Version v3, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, v1}, View{branch_, v3}));
  EXPECT_EQ(Render(changes), Strings{});
  ASSERT_OK_AND_ASSIGN(changes, store_->Diff(View{branch_, v2}, View{branch_, v3}));
  EXPECT_EQ(Render(changes), Strings{"-/tmp"});
}

TEST_F(BranchesTest, DiffBetweenParentSnapshotAndForkHead) {
  Put(*fs_, "/same", "s");
  Put(*fs_, "/changed", "before");
  Put(*fs_, "/removed", "r");
  MkDirs(*fs_, "/dir");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{branch_, v1}));
  auto cfs = OpenHead(child);
  Put(*cfs, "/changed", "after!");
  ASSERT_OK(cfs->Unlink(kRootIno, "removed"));
  Put(*cfs, "/dir/added", "a");
  // Buffered, not flushed: still part of the head.
  ASSERT_OK_AND_ASSIGN(Attr b, cfs->Create(kRootIno, "buffered", 0644, Cred{}));
  ASSERT_OK(cfs->Write(b.ino, 0, AsBytes("pending")).status());
  // Parent changes after the fork point are not the child's.
  Put(*fs_, "/same", "parent moved on");

  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, v1}, View{child, kHead}));
  EXPECT_EQ(Render(changes), (Strings{"+/buffered", "*/changed", "+/dir/added", "-/removed"}));
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].new_size, 7u);
  ASSERT_OK_AND_ASSIGN(auto back, store_->Diff(View{child, kHead}, View{branch_, v1}));
  EXPECT_EQ(Render(back), (Strings{"-/buffered", "*/changed", "-/dir/added", "+/removed"}));
  // Parent head against child head: both sides' changes.
  ASSERT_OK_AND_ASSIGN(auto heads, store_->Diff(View{branch_, kHead}, View{child, kHead}));
  EXPECT_EQ(Render(heads),
            (Strings{"+/buffered", "*/changed", "+/dir/added", "-/removed", "*/same"}));
  ASSERT_OK(cfs->Release(b.ino));
}

TEST_F(BranchesTest, DiffAcrossForkLevelsAndBetweenSiblings) {
  Put(*fs_, "/base", "b");
  Put(*fs_, "/f", "root");
  ASSERT_OK_AND_ASSIGN(Version rv, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(BranchId c1, store_->Fork(View{branch_, rv}));
  auto fs1 = OpenHead(c1);
  Put(*fs1, "/f", "c1 version");
  Put(*fs1, "/from-c1", "1");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(c1));
  ASSERT_OK_AND_ASSIGN(BranchId c2, store_->Fork(View{c1, v1}));
  auto fs2 = OpenHead(c2);
  ASSERT_OK(fs2->Unlink(kRootIno, "base"));
  Put(*fs2, "/from-c2", "2");
  ASSERT_OK_AND_ASSIGN(BranchId sibling, store_->Fork(View{c1, v1}));
  auto fss = OpenHead(sibling);
  Put(*fss, "/from-sibling", "s");

  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, rv}, View{c2, kHead}));
  EXPECT_EQ(Render(changes), (Strings{"-/base", "*/f", "+/from-c1", "+/from-c2"}));
  ASSERT_OK_AND_ASSIGN(changes, store_->Diff(View{c1, v1}, View{c2, kHead}));
  EXPECT_EQ(Render(changes), (Strings{"-/base", "+/from-c2"}));
  ASSERT_OK_AND_ASSIGN(changes, store_->Diff(View{sibling, kHead}, View{c2, kHead}));
  EXPECT_EQ(Render(changes), (Strings{"-/base", "+/from-c2", "-/from-sibling"}));
  // Two sessions with unrelated roots: a file of the same name is another
  // file (another inode), so it is removed and added, not modified.
  ASSERT_OK_AND_ASSIGN(SessionInfo other, store_->CreateSession("other"));
  auto ofs = OpenHead(other.branch);
  Put(*ofs, "/f", "other");
  ASSERT_OK_AND_ASSIGN(changes, store_->Diff(View{branch_, rv}, View{other.branch, kHead}));
  EXPECT_EQ(Render(changes), (Strings{"-/base", "-/f", "+/f"}));
}

// --- Concurrency.

constexpr int kWriters = 4;
constexpr size_t kFileSize = 3 * 4096 + 1000;

// The whole content of writer w's file at iteration i: recognisable anywhere.
std::string Pattern(int w, int i) {
  std::string unit = "<w" + std::to_string(w) + ":i" + std::to_string(i) + ">";
  std::string out;
  out.reserve(kFileSize + unit.size());
  while (out.size() < kFileSize) out += unit;
  out.resize(kFileSize);
  return out;
}

// The iteration whose complete pattern `content` is, or -1.
int IterationOf(int w, const std::string& content) {
  std::string prefix = "<w" + std::to_string(w) + ":i";
  if (content.compare(0, prefix.size(), prefix) != 0) return -1;
  int i = std::atoi(content.c_str() + prefix.size());
  return content == Pattern(w, i) ? i : -1;
}

std::string FileName(int w) { return "file" + std::to_string(w); }

TEST_F(BranchesTest, ConcurrentWritersReadersAndSnapshotsNeverFailAndStayConsistent) {
  StoreOptions options;
  options.block_size = 4096;
  options.write_buffer_bytes = 64 * 1024;  // also exercise flushes triggered by writes
  fs_.reset();
  store_.reset();
  std::filesystem::remove(dir_.File("store.db"));
  OpenStore(options);
  ASSERT_EQ(store_->block_size(), 4096u);

  std::vector<InodeId> inos;
  for (int w = 0; w < kWriters; ++w) {
    Put(*fs_, "/" + FileName(w), Pattern(w, 0));
    ASSERT_OK_AND_ASSIGN(Attr a, fs_->Resolve("/" + FileName(w)));
    inos.push_back(a.ino);
  }

  std::mutex errors_mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what, const Status& s) {
    std::scoped_lock lock(errors_mu);
    if (errors.size() < 20) errors.push_back(what + ": " + s.ToString());
  };
  std::atomic<bool> stop{false};
  std::vector<int> last_written(kWriters, 0);
  std::vector<Version> versions;
  std::atomic<int> reads{0};

  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      InodeId ino = inos[w];
      if (Status s = fs_->Open(ino); !s.ok()) return fail("open", s);
      int i = 0;
      while (!stop.load()) {
        ++i;
        std::string content = Pattern(w, i);
        auto n = fs_->Write(ino, 0, AsBytes(content));
        if (!n.ok()) return fail("write", n.status());
        if (*n != content.size()) return fail("short write", Internal(std::to_string(*n)));
        Status s;
        switch (i % 4) {
          case 0: s = fs_->Flush(ino); break;
          case 1: s = w == 0 ? fs_->Fsync(ino) : Status(); break;
          case 2:
            s = fs_->Release(ino);
            if (s.ok()) s = fs_->Open(ino);
            break;
          default: break;
        }
        if (!s.ok()) return fail("flush/release", s);
        last_written[w] = i;
      }
      if (Status s = fs_->Release(ino); !s.ok()) fail("release", s);
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      int k = r;
      while (!stop.load()) {
        int w = k++ % kWriters;
        auto attr = fs_->GetAttr(inos[w]);
        if (!attr.ok()) return fail("getattr", attr.status());
        if (attr->size != kFileSize) {
          return fail("getattr", Internal("size " + std::to_string(attr->size)));
        }
        auto looked = fs_->Lookup(kRootIno, FileName(w));
        if (!looked.ok()) return fail("lookup", looked.status());
        std::string content(kFileSize, '\0');
        auto n = fs_->Read(inos[w], 0, {reinterpret_cast<uint8_t*>(content.data()),
                                        content.size()});
        if (!n.ok()) return fail("read", n.status());
        if (*n != kFileSize || IterationOf(w, content) < 0) {
          return fail("read", Internal("torn content in " + FileName(w) + ": " +
                                       content.substr(0, 40)));
        }
        auto listing = fs_->ReadDir(kRootIno);
        if (!listing.ok()) return fail("readdir", listing.status());
        if (listing->size() != kWriters + 2u) return fail("readdir", Internal("entries"));
        reads++;
      }
    });
  }
  threads.emplace_back([&] {
    int k = 0;
    while (!stop.load()) {
      std::string name = ++k % 10 == 0 ? "snap" + std::to_string(k) : "";
      auto v = store_->Snapshot(branch_, name);
      if (!v.ok()) return fail("snapshot", v.status());
      versions.push_back(*v);
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop = true;
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  ASSERT_TRUE(errors.empty());
  EXPECT_GT(reads.load(), 10);
  ASSERT_GT(versions.size(), 10u);
  for (int w = 0; w < kWriters; ++w) EXPECT_GT(last_written[w], 10) << w;

  std::cerr << "snapshots " << versions.size() << ", reads " << reads.load() << ", writes";
  for (int w = 0; w < kWriters; ++w) std::cerr << " " << last_written[w];
  std::cerr << "\n";
  // Every snapshot holds complete versions, never older than the previous one.
  std::vector<int> seen(kWriters, 0);
  for (size_t k = 1; k < versions.size(); ++k) EXPECT_LT(versions[k - 1], versions[k]);
  for (Version v : versions) {
    auto snap = OpenFs(View{branch_, v});
    ASSERT_NE(snap, nullptr);
    for (int w = 0; w < kWriters; ++w) {
      std::string content = Get(*snap, "/" + FileName(w));
      int i = IterationOf(w, content);
      ASSERT_GE(i, 0) << "snapshot " << v << " has torn " << FileName(w) << ": "
                      << content.substr(0, 40) << " (size " << content.size() << ")";
      EXPECT_GE(i, seen[w]) << "snapshot " << v << " went back in time";
      seen[w] = i;
    }
  }
  // A snapshot taken now has every write that returned.
  ASSERT_OK_AND_ASSIGN(Version final_version, store_->Snapshot(branch_));
  auto last = OpenFs(View{branch_, final_version});
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_EQ(IterationOf(w, Get(*last, "/" + FileName(w))), last_written[w]) << w;
    EXPECT_EQ(IterationOf(w, Get(*fs_, "/" + FileName(w))), last_written[w]) << w;
  }
  ExpectSound();
}

TEST_F(BranchesTest, TwoStoresOnOneFileTakeTurnsWithoutBusy) {
  StoreOptions options;
  options.path = dir_.File("store.db");
  ASSERT_OK_AND_ASSIGN(auto other, Store::Open(options));
  ASSERT_OK_AND_ASSIGN(auto other_fs, other->OpenFilesystem(View{branch_, kHead}));

  // In turn: each sees what the other committed (FlushAll commits).
  for (int i = 0; i < 20; ++i) {
    std::string a = "/a" + std::to_string(i);
    std::string b = "/b" + std::to_string(i);
    Put(*fs_, a, "from store one " + std::to_string(i));
    ASSERT_OK(fs_->FlushAll());
    EXPECT_EQ(Get(*other_fs, a), "from store one " + std::to_string(i));
    Put(*other_fs, b, "from store two " + std::to_string(i));
    ASSERT_OK(other_fs->FlushAll());
    EXPECT_EQ(Get(*fs_, b), "from store two " + std::to_string(i));
    if (i % 5 == 0) {
      ASSERT_OK(store_->Snapshot(branch_).status());
      ASSERT_OK(other->Snapshot(branch_).status());
    }
  }
  // A snapshot by one store is honoured by the other's writes.
  ASSERT_OK_AND_ASSIGN(Version v, other->Snapshot(branch_, "by-other"));
  Put(*fs_, "/a0", "changed after the other's snapshot");
  ASSERT_OK_AND_ASSIGN(auto frozen, store_->OpenFilesystem(View{branch_, v}));
  EXPECT_EQ(Get(*frozen, "/a0"), "from store one 0");
  ASSERT_OK_AND_ASSIGN(SnapshotInfo found, store_->FindSnapshot(branch_, "by-other"));
  EXPECT_EQ(found.version, v);

  // At the same time, from several threads each.
  std::mutex errors_mu;
  std::vector<std::string> errors;
  auto run = [&](Store& store, Filesystem& fs, const std::string& prefix, BranchId snap_branch) {
    for (int i = 0; i < 60; ++i) {
      std::string name = prefix + std::to_string(i);
      auto a = fs.Create(kRootIno, name, 0644, Cred{});
      Status s = a.status();
      if (s.ok()) s = fs.Write(a->ino, 0, AsBytes(name)).status();
      if (s.ok()) s = fs.Release(a->ino);
      if (s.ok() && i % 10 == 0) s = store.Snapshot(snap_branch).status();
      if (s.ok() && i % 15 == 0) s = store.CreateSession(prefix + "session" + std::to_string(i))
                                         .status();
      if (!s.ok()) {
        std::scoped_lock lock(errors_mu);
        errors.push_back(name + ": " + s.ToString());
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  threads.emplace_back([&] { run(*store_, *fs_, "one-x", branch_); });
  threads.emplace_back([&] { run(*store_, *fs_, "one-y", branch_); });
  threads.emplace_back([&] { run(*other, *other_fs, "two-x", branch_); });
  threads.emplace_back([&] { run(*other, *other_fs, "two-y", branch_); });
  for (auto& t : threads) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  ASSERT_TRUE(errors.empty());
  ASSERT_OK(fs_->FlushAll());
  ASSERT_OK(other_fs->FlushAll());

  for (const char* prefix : {"one-x", "one-y", "two-x", "two-y"}) {
    for (int i = 0; i < 60; i += 7) {
      std::string name = std::string(prefix) + std::to_string(i);
      EXPECT_EQ(Get(*fs_, "/" + name), name);
      EXPECT_EQ(Get(*other_fs, "/" + name), name);
    }
  }
  ASSERT_OK_AND_ASSIGN(auto sessions, store_->ListSessions());
  EXPECT_EQ(sessions.size(), 1u + 4 * 4);
  ExpectSound();
}

}  // namespace
}  // namespace strata
