#include <sys/stat.h>

#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::StoreTest;

class SmokeTest : public StoreTest {};

TEST_F(SmokeTest, WriteSnapshotForkDiffer) {
  Attr dir = *fs_->MkDir(kRootIno, "src", 0755, Cred{});
  Attr file = WriteFile(dir.ino, "a.txt", "hello");
  EXPECT_EQ(ReadAll(*fs_, file.ino), "hello");
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_, "one"));
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{branch_, v1}, "child"));
  ASSERT_OK_AND_ASSIGN(auto child_fs, store_->OpenFilesystem(View{child, kHead}));
  ASSERT_OK(child_fs->Open(file.ino));
  std::string more = "HELLO world";
  ASSERT_OK(child_fs->Write(file.ino, 0, {reinterpret_cast<const uint8_t*>(more.data()),
                                          more.size()}).status());
  ASSERT_OK(child_fs->Release(file.ino));
  EXPECT_EQ(ReadAll(*child_fs, file.ino), "HELLO world");
  EXPECT_EQ(ReadAll(*fs_, file.ino), "hello");
  ASSERT_OK_AND_ASSIGN(auto changes, store_->Diff(View{branch_, v1}, View{child, kHead}));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].path, "/src/a.txt");
  EXPECT_EQ(changes[0].kind, ChangeKind::kModified);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  for (auto& p : problems) ADD_FAILURE() << p.kind << ": " << p.detail;
}

}  // namespace
}  // namespace strata
