// Removing sessions and reclaiming their data with gc, on a real store:
// nothing another session can still see is lost.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "testing/random_bytes.h"
#include "testing/raw_db.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using ::strata::testing::RawDb;
using ::strata::testing::StoreTest;

class RemoveTest : public StoreTest {
 protected:
  // A new session holding one file `name` with `content`.
  BranchId SessionWithFile(const std::string& session, const std::string& name,
                           const std::string& content) {
    auto info = store_->CreateSession(session);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    WriteInto(info->branch, name, content);
    return info->branch;
  }
  void WriteInto(BranchId branch, const std::string& name, const std::string& content) {
    auto fs = store_->OpenFilesystem(View{branch, kHead});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    ASSERT_OK_AND_ASSIGN(Attr a, (*fs)->Create(kRootIno, name, 0644, Cred{}));
    ASSERT_OK((*fs)->Write(a.ino, 0, {reinterpret_cast<const uint8_t*>(content.data()),
                                      content.size()}).status());
    ASSERT_OK((*fs)->Release(a.ino));
    ASSERT_OK((*fs)->FlushAll());
  }
  std::string Cat(View view, const std::string& name) {
    auto fs = store_->OpenFilesystem(view);
    if (!fs.ok()) return "<" + std::string(CodeName(fs.status().code())) + ">";
    auto a = (*fs)->Lookup(kRootIno, name);
    if (!a.ok()) return "<" + std::string(CodeName(a.status().code())) + ">";
    return ReadAll(**fs, a->ino);
  }
  int64_t Rows(const std::string& sql) { return RawDb(dir_.File("store.db")).Int(sql); }


  uint64_t FileSize() {
    struct stat st {};
    EXPECT_EQ(stat(dir_.File("store.db").c_str(), &st), 0);
    return static_cast<uint64_t>(st.st_size);
  }
  // Writes kFiles files of kFileBytes into "main", then removes the even ones.
  std::vector<std::string> WriteThenDeleteHalf() {
    std::vector<std::string> contents;
    for (int i = 0; i < kFiles; ++i) {
      contents.push_back(testing::IncompressibleBytes(kFileBytes, static_cast<uint64_t>(i)));
      WriteFile(kRootIno, "f" + std::to_string(i), contents.back());
    }
    EXPECT_OK(fs_->FlushAll());
    for (int i = 0; i < kFiles; i += 2) EXPECT_OK(fs_->Unlink(kRootIno, "f" + std::to_string(i)));
    EXPECT_OK(fs_->FlushAll());
    return contents;
  }
  void ExpectOddFilesIntact(const std::vector<std::string>& contents) {
    for (int i = 1; i < kFiles; i += 2) {
      auto a = fs_->Lookup(kRootIno, "f" + std::to_string(i));
      ASSERT_TRUE(a.ok()) << i;
      EXPECT_TRUE(ReadAll(*fs_, a->ino) == contents[static_cast<size_t>(i)]) << i;
    }
  }
  static constexpr int kFiles = 40;
  static constexpr size_t kFileBytes = 256 << 10;
  static constexpr uint64_t kDeletedBytes = (kFiles / 2) * kFileBytes;  // 5 MiB
};

TEST_F(RemoveTest, GcReclaimsARemovedSessionButNotWhatOthersShare) {
  const std::string own(200'000, 'o');     // only in "gone"
  const std::string shared(200'000, 's');  // also in "kept"
  BranchId gone = SessionWithFile("gone", "own", own);
  WriteInto(gone, "shared", shared);
  ASSERT_OK(store_->KvUpdate(gone, {KvChange{"k", "1"}}));
  ASSERT_OK(store_->RecordCall(gone, CallStart{"tool", "{}", {}, {}}, CallOutcome{}).status());
  ASSERT_OK(store_->Snapshot(gone, "v1").status());
  BranchId kept = SessionWithFile("kept", "shared", shared);

  ASSERT_OK(store_->RemoveSession("gone"));
  EXPECT_CODE(store_->GetSession("gone"), Code::kNotFound);
  EXPECT_CODE(store_->RemoveSession("gone"), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(GcStats stats, store_->CollectGarbage());
  EXPECT_EQ(stats.branches_freed, 1u);
  EXPECT_GE(stats.chunks_freed, 1u);  // "own"; "shared" is still used by "kept"
  EXPECT_EQ(Cat(View{kept, kHead}, "shared"), shared);
  for (const char* table : {"inodes", "dentries", "blocks", "kv", "tool_calls", "snapshots",
                            "ancestry"}) {
    EXPECT_EQ(Rows(std::string("SELECT count(*) FROM ") + table + " WHERE branch = " +
                   std::to_string(gone)),
              0)
        << table;
  }
  EXPECT_EQ(Rows("SELECT count(*) FROM branches WHERE id = " + std::to_string(gone)), 0);
  ASSERT_OK_AND_ASSIGN(GcStats again, store_->CollectGarbage());
  EXPECT_EQ(again.branches_freed, 0u);
  EXPECT_EQ(again.chunks_freed, 0u);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  EXPECT_TRUE(problems.empty());
}

TEST_F(RemoveTest, AForkOutlivesItsRemovedParentUntilItGoesToo) {
  BranchId parent = SessionWithFile("parent", "f", "from the parent");
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{parent, kHead}, "child"));
  ASSERT_OK(store_->RemoveSession("parent"));
  ASSERT_OK_AND_ASSIGN(GcStats stats, store_->CollectGarbage());
  EXPECT_EQ(stats.branches_freed, 0u);  // the child still sees through it
  EXPECT_EQ(Cat(View{child, kHead}, "f"), "from the parent");
  ASSERT_OK(store_->RemoveSession("child"));
  ASSERT_OK_AND_ASSIGN(stats, store_->CollectGarbage());
  EXPECT_EQ(stats.branches_freed, 2u);
  EXPECT_GE(stats.chunks_freed, 1u);
  EXPECT_EQ(Rows("SELECT count(*) FROM blocks"), 0);  // "main" has no files
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  EXPECT_TRUE(problems.empty());
}

TEST_F(RemoveTest, ARestoredSessionsEarlierBranchesGoWithIt) {
  BranchId first = SessionWithFile("s", "f", "v1");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(first, "one"));
  ASSERT_OK(store_->Restore("s", View{first, v1}).status());  // s now on a second branch
  ASSERT_OK(store_->RemoveSession("s"));
  ASSERT_OK_AND_ASSIGN(GcStats stats, store_->CollectGarbage());
  EXPECT_EQ(stats.branches_freed, 2u);
}

TEST_F(RemoveTest, GcGivesTheSpaceOfDeletedFilesBackToTheFileSystem) {
  std::vector<std::string> contents = WriteThenDeleteHalf();
  ASSERT_OK_AND_ASSIGN(GcStats stats, store_->CollectGarbage());
  EXPECT_TRUE(stats.can_shrink);
  EXPECT_GE(stats.bytes_freed, kDeletedBytes);
  EXPECT_GE(stats.file_bytes_before, 2 * kDeletedBytes);
  // The deleted data's pages are cut off the file (what remains of them is
  // a few pages of b-tree and freelist bookkeeping).
  EXPECT_LE(stats.file_bytes_after, stats.file_bytes_before - kDeletedBytes * 9 / 10)
      << stats.file_bytes_before << " -> " << stats.file_bytes_after;
  EXPECT_EQ(FileSize(), stats.file_bytes_after);  // the WAL was copied back
  EXPECT_EQ(Rows("PRAGMA freelist_count"), 0);
  ExpectOddFilesIntact(contents);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  EXPECT_TRUE(problems.empty());

  ASSERT_OK_AND_ASSIGN(GcStats again, store_->CollectGarbage());
  EXPECT_EQ(again.chunks_freed, 0u);
  EXPECT_EQ(again.file_bytes_after, stats.file_bytes_after);
}

TEST_F(RemoveTest, AStoreMadeWithoutIncrementalVacuumShrinksOnceRewritten) {
  // As a store made by an older build: auto_vacuum off.
  fs_.reset();
  store_.reset();
  RawDb(dir_.File("store.db")).Exec("PRAGMA auto_vacuum = NONE; VACUUM;");
  OpenStore(StoreOptions{});
  ASSERT_EQ(Rows("PRAGMA auto_vacuum"), 0);
  std::vector<std::string> contents = WriteThenDeleteHalf();
  ASSERT_OK_AND_ASSIGN(GcStats kept, store_->CollectGarbage());
  EXPECT_FALSE(kept.can_shrink);
  EXPECT_GE(kept.bytes_freed, kDeletedBytes);
  EXPECT_EQ(kept.file_bytes_after, kept.file_bytes_before);  // reused later, not given back

  ASSERT_OK_AND_ASSIGN(GcStats rewritten, store_->CollectGarbage(GcOptions{.rewrite = true}));
  EXPECT_TRUE(rewritten.can_shrink);
  EXPECT_LE(rewritten.file_bytes_after, kept.file_bytes_after - kDeletedBytes * 9 / 10);
  EXPECT_EQ(Rows("PRAGMA auto_vacuum"), 2);
  ExpectOddFilesIntact(contents);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  EXPECT_TRUE(problems.empty());
}

TEST_F(RemoveTest, ANewStoreCanShrink) { EXPECT_EQ(Rows("PRAGMA auto_vacuum"), 2); }

}  // namespace
}  // namespace strata
