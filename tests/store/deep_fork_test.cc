// Forks of any depth: a chain of 1,000 forks, each writing, deleting and
// overwriting files and keys, read back at every level through the layers
// that compaction makes (catalog/layers.h), and diff, history, fsck, export
// and import, restore and gc across it.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "testing/raw_db.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using ::strata::testing::RawDb;
using ::strata::testing::StoreTest;

constexpr int kMaxReadLevels = 4;  // catalog::kMaxReadLevels

std::string FileName(int level) { return "f" + std::to_string(level); }

class DeepForkTest : public StoreTest {
 protected:
  // One level of the chain: what its fork point holds.
  struct Level {
    View view;                                // the frozen state the next level forked from
    std::map<std::string, std::string> files;  // every file of /, with its content
    std::string kv;                           // the value of key "level"
  };

  void Put(Filesystem& fs, const std::string& name, const std::string& content) {
    testing::ReplaceFile(fs, kRootIno, name, content);
  }

  std::string Get(Filesystem& fs, const std::string& name) {
    auto attr = fs.Lookup(kRootIno, name);
    if (!attr.ok()) return "<" + std::string(CodeName(attr.status().code())) + ">";
    return ReadAll(fs, attr->ino);
  }

  // Level i (1-based) writes f<i>, overwrites "shared" every 10th level,
  // deletes f<i-3> every 7th, sets key "level", records a call every 100th,
  // then forks session s<i> from its head and continues there.
  void BuildChain(int depth) {
    std::map<std::string, std::string> files;
    BranchId branch = branch_;
    for (int i = 1; i <= depth; ++i) {
      {
        ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{branch, kHead}));
        Put(*fs, FileName(i), "level " + std::to_string(i));
        files[FileName(i)] = "level " + std::to_string(i);
        if (i % 10 == 0) {
          Put(*fs, "shared", "shared at " + std::to_string(i));
          files["shared"] = "shared at " + std::to_string(i);
        }
        if (i % 7 == 0 && i > 3) {
          ASSERT_OK(fs->Unlink(kRootIno, FileName(i - 3)));
          files.erase(FileName(i - 3));
        }
      }
      ASSERT_OK(store_->KvUpdate(branch, {KvChange{"level", std::to_string(i)}}));
      if (i % 100 == 0) {
        CallStart start;
        start.name = "step-" + std::to_string(i);
        ASSERT_OK(store_->RecordCall(branch, start, CallOutcome{}).status());
      }
      ASSERT_OK_AND_ASSIGN(BranchId child,
                           store_->Fork(View{branch, kHead}, "s" + std::to_string(i)));
      ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(child));
      levels_.push_back(Level{View{branch, info.parent_version}, files, std::to_string(i)});
      branch = child;
    }
    deepest_ = branch;
  }

  // Reads a sample of level i's files (its own, one from half way up, a
  // deleted one, "shared") and its key, through a filesystem on its view.
  void CheckLevel(Store& store, View view, const Level& level, int i) {
    ASSERT_OK_AND_ASSIGN(auto fs, store.OpenFilesystem(view));
    std::set<std::string> sample = {FileName(i), FileName(i / 2 + 1), FileName(i - 3), "shared",
                                    FileName(i + 1)};
    for (const std::string& name : sample) {
      auto want = level.files.find(name);
      EXPECT_EQ(Get(*fs, name), want == level.files.end() ? "<NotFound>" : want->second)
          << name << " at level " << i;
    }
    EXPECT_EQ(*store.KvGet(view, "level"), level.kv) << "level " << i;
  }

  std::vector<Level> levels_;
  BranchId deepest_ = 0;
};

TEST_F(DeepForkTest, AChainOfAThousandForksReadsLikeTheModelAtEveryLevel) {
  constexpr int kDepth = 1000;
  BuildChain(kDepth);
  ASSERT_FALSE(HasFailure());
  ASSERT_OK(store_->CompactLevels().status());
  ASSERT_OK_AND_ASSIGN(BranchInfo deepest, store_->GetBranch(deepest_));
  EXPECT_EQ(deepest.depth, kDepth);
  EXPECT_LE(deepest.read_levels, kMaxReadLevels);
  // Each level's rows were copied into a layer a bounded number of times, so
  // the layers hold O(depth) rows, not O(depth^2).
  {
    RawDb raw(dir_.File("store.db"));
    EXPECT_LE(raw.Int("SELECT count(*) FROM ancestry"), int64_t{kMaxReadLevels} * (kDepth + 1));
    EXPECT_GT(raw.Int("SELECT count(*) FROM layers"), 0);
    EXPECT_LE(raw.Int("SELECT count(*) FROM inodes WHERE branch IN (SELECT branch FROM layers)"),
              int64_t{6} * kDepth);
  }
  for (int i = 1; i <= kDepth; ++i) CheckLevel(*store_, levels_[i - 1].view, levels_[i - 1], i);

  // The deepest head: every file the model has.
  ASSERT_OK_AND_ASSIGN(auto head, store_->OpenFilesystem(View{deepest_, kHead}));
  ASSERT_OK_AND_ASSIGN(auto entries, head->ReadDir(kRootIno));
  std::set<std::string> names;
  for (const auto& e : entries) names.insert(e.name);
  std::set<std::string> want = {".", ".."};
  for (const auto& [name, content] : levels_.back().files) want.insert(name);
  EXPECT_EQ(names, want);

  // History follows the lineage, not the read levels.
  ASSERT_OK_AND_ASSIGN(auto calls, store_->ListCalls(View{deepest_, kHead}, CallFilter{}));
  ASSERT_EQ(calls.size(), size_t{kDepth / 100});
  EXPECT_EQ(calls.front().name, "step-1000");
  EXPECT_EQ(calls.back().name, "step-100");

  // Diff between two levels far apart: exactly the files whose content differs.
  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(levels_[499].view, levels_[999].view));
  std::set<std::string> changed;
  for (const Change& c : changes) changed.insert(c.path);
  std::set<std::string> expected;
  const auto& a = levels_[499].files;
  const auto& b = levels_[999].files;
  for (const auto& [name, content] : b) {
    auto old = a.find(name);
    if (old == a.end() || old->second != content) expected.insert("/" + name);
  }
  for (const auto& [name, content] : a) {
    if (b.count(name) == 0) expected.insert("/" + name);
  }
  EXPECT_EQ(changed, expected);

  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  EXPECT_TRUE(problems.empty()) << problems.front().kind << ": " << problems.front().detail;
}

TEST_F(DeepForkTest, ExportImportRestoreAndGcWorkAcrossCompactedChains) {
  constexpr int kDepth = 60;
  BuildChain(kDepth);
  ASSERT_FALSE(HasFailure());
  ASSERT_OK(store_->CompactLevels().status());
  const std::string deepest_session = "s" + std::to_string(kDepth);

  // Export and import: the copy reads every level's sample the same.
  const std::string bundle = dir_.File("deep.bundle");
  ASSERT_OK(store_->Export(deepest_session, bundle).status());
  ASSERT_OK(store_->Import(bundle, "copy").status());
  ASSERT_OK_AND_ASSIGN(SessionInfo copy, store_->GetSession("copy"));
  ASSERT_OK_AND_ASSIGN(BranchInfo copied, store_->GetBranch(copy.branch));
  EXPECT_EQ(copied.depth, kDepth);
  EXPECT_LE(copied.read_levels, kMaxReadLevels);
  ASSERT_OK_AND_ASSIGN(auto copy_fs, store_->OpenFilesystem(View{copy.branch, kHead}));
  for (const auto& [name, content] : levels_.back().files) EXPECT_EQ(Get(*copy_fs, name), content);
  EXPECT_EQ(Get(*copy_fs, FileName(53)), "<NotFound>");  // deleted at level 56
  ASSERT_OK_AND_ASSIGN(auto copy_calls, store_->ListCalls(View{copy.branch, kHead}, CallFilter{}));
  EXPECT_TRUE(copy_calls.empty());  // no call below level 100
  copy_fs.reset();

  // Restore the deepest session to level 5: a new branch forked from a view
  // whose own levels are compacted differently.
  ASSERT_OK(store_->Restore(deepest_session, levels_[4].view).status());
  ASSERT_OK(store_->CompactLevels().status());
  ASSERT_OK_AND_ASSIGN(SessionInfo restored, store_->GetSession(deepest_session));
  CheckLevel(*store_, View{restored.branch, kHead}, levels_[4], 5);

  // Forks of one deep branch, each followed for a few levels: they grow
  // layers of their own from a shared one.
  for (int sibling = 0; sibling < 3; ++sibling) {
    BranchId at = levels_[39].view.branch;
    View from = levels_[39].view;
    for (int step = 0; step < 2 * kMaxReadLevels; ++step) {
      ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(from));
      {
        ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{child, kHead}));
        Put(*fs, "sibling", std::to_string(sibling) + "/" + std::to_string(step));
      }
      ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(child));
      at = child;
      from = View{child, v};
    }
    ASSERT_OK(store_->CompactLevels().status());
    ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{at, kHead}));
    EXPECT_EQ(Get(*fs, "sibling"), std::to_string(sibling) + "/" + std::to_string(2 * kMaxReadLevels - 1));
    EXPECT_EQ(Get(*fs, FileName(40)), "level 40");
    EXPECT_EQ(Get(*fs, FileName(41)), "<NotFound>");
    ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(at));
    EXPECT_EQ(info.depth, 39 + 2 * kMaxReadLevels);
    EXPECT_LE(info.read_levels, kMaxReadLevels);
  }

  // Remove every session but the copy and the restored one; gc keeps what
  // they read through, lineage included, and the store stays sound.
  for (int i = 1; i <= kDepth - 1; ++i) ASSERT_OK(store_->RemoveSession("s" + std::to_string(i)));
  fs_.reset();
  ASSERT_OK(store_->RemoveSession("main"));
  ASSERT_OK_AND_ASSIGN(GcStats stats, store_->CollectGarbage());
  ASSERT_OK_AND_ASSIGN(auto after_gc, store_->OpenFilesystem(View{copy.branch, kHead}));
  for (const auto& [name, content] : levels_.back().files) EXPECT_EQ(Get(*after_gc, name), content);
  CheckLevel(*store_, View{restored.branch, kHead}, levels_[4], 5);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  EXPECT_TRUE(problems.empty()) << problems.front().kind << ": " << problems.front().detail;
  (void)stats;
}

TEST_F(DeepForkTest, ForksOfOneDeepBranchShareOneLayer) {
  BuildChain(40);
  ASSERT_FALSE(HasFailure());
  ASSERT_OK(store_->CompactLevels().status());
  // Grow the chain's layer past what the deepest branch reads, as a chain
  // that went on would: its forks then cannot extend the layer they see.
  BranchId at = deepest_;
  for (int i = 0; i < 2 * kMaxReadLevels; ++i) {
    ASSERT_OK_AND_ASSIGN(at, store_->Fork({at, kHead}));
  }
  ASSERT_OK(store_->CompactLevels().status());
  RawDb raw(dir_.File("store.db"));
  const char* kLayerRows = "SELECT count(*) FROM inodes WHERE branch IN (SELECT branch FROM layers)";
  const int64_t layers_before = raw.Int("SELECT count(*) FROM layers");
  const int64_t rows_before = raw.Int(kLayerRows);
  const int64_t tree_rows = 40 + 2;  // every inode the chain made: a copy keeps tombstones
  // Siblings: each fork of the head freezes a new version of it, so each
  // sees it at another version; what they share below it is copied once.
  std::vector<BranchId> siblings;
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork({deepest_, kHead}));
    ASSERT_OK_AND_ASSIGN(BranchId grandchild, store_->Fork({child, kHead}));
    siblings.push_back(grandchild);
  }
  ASSERT_OK(store_->CompactLevels().status());
  // The levels below the head's own get one layer, the head's versions
  // another that grows in place: two copies of the tree at most, never one
  // per sibling.
  EXPECT_LE(raw.Int("SELECT count(*) FROM layers"), layers_before + 2);
  EXPECT_LE(raw.Int(kLayerRows) - rows_before, 2 * tree_rows);
  for (BranchId b : siblings) {
    ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(b));
    EXPECT_LE(info.read_levels, kMaxReadLevels);
    ASSERT_OK_AND_ASSIGN(auto fs, store_->OpenFilesystem(View{b, kHead}));
    EXPECT_EQ(Get(*fs, FileName(40)), "level 40");
    EXPECT_EQ(Get(*fs, "shared"), "shared at 40");
  }
}

TEST_F(DeepForkTest, AStoreClosedRightAfterADeepForkOpensCompacted) {
  BuildChain(kMaxReadLevels + 2);
  ASSERT_FALSE(HasFailure());
  // Closing the store finishes the compactions its forks queued.
  OpenStore(StoreOptions{});
  // Every branch of the chain reads through at most kMaxReadLevels levels,
  // whether its compaction ran before the next fork or after it.
  for (int i = 1; i <= kMaxReadLevels + 2; ++i) {
    ASSERT_OK_AND_ASSIGN(SessionInfo s, store_->GetSession("s" + std::to_string(i)));
    ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(s.branch));
    EXPECT_EQ(info.depth, i);
    EXPECT_LE(info.read_levels, kMaxReadLevels) << "s" << i;
  }
  EXPECT_EQ(RawDb(dir_.File("store.db")).Int("SELECT count(*) FROM layers"), 1);
  ASSERT_OK_AND_ASSIGN(uint64_t compacted, store_->CompactLevels());
  EXPECT_EQ(compacted, 0u);
}

}  // namespace
}  // namespace strata
