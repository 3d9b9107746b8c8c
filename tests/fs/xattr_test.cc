// POSIX behaviour of extended attributes in Filesystem, and their versioning
// across snapshots and forks.
#include <sys/stat.h>
#include <sys/xattr.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::StoreTest;
using Names = std::vector<std::string>;

constexpr size_t kMaxValue = 64 * 1024;

class XattrTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    file_ = WriteFile(kRootIno, "f", "content").ino;
  }

  InodeId file_ = 0;
};

// --- Basic operations

TEST_F(XattrTest, SetGetListRemove) {
  ASSERT_OK(fs_->SetXattr(file_, "user.b", "two", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.a", "one", 0));
  ASSERT_OK(fs_->SetXattr(file_, "trusted.c", "three", 0));
  ASSERT_OK_AND_ASSIGN(std::string a, fs_->GetXattr(file_, "user.a"));
  EXPECT_EQ(a, "one");
  ASSERT_OK_AND_ASSIGN(std::string b, fs_->GetXattr(file_, "user.b"));
  EXPECT_EQ(b, "two");
  ASSERT_OK_AND_ASSIGN(Names names, fs_->ListXattr(file_));
  EXPECT_EQ(names, (Names{"trusted.c", "user.a", "user.b"}));

  ASSERT_OK(fs_->RemoveXattr(file_, "user.a"));
  EXPECT_CODE(fs_->GetXattr(file_, "user.a"), Code::kNoData);
  ASSERT_OK_AND_ASSIGN(Names after, fs_->ListXattr(file_));
  EXPECT_EQ(after, (Names{"trusted.c", "user.b"}));
  // The file's data is untouched.
  EXPECT_EQ(ReadAll(*fs_, file_), "content");
}

TEST_F(XattrTest, ListOfFileWithoutXattrsIsEmpty) {
  ASSERT_OK_AND_ASSIGN(Names names, fs_->ListXattr(file_));
  EXPECT_TRUE(names.empty());
}

TEST_F(XattrTest, SetWithoutFlagsReplacesTheValue) {
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "first", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "second, longer", 0));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, "user.k"));
  EXPECT_EQ(v, "second, longer");
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "3", 0));
  ASSERT_OK_AND_ASSIGN(std::string shorter, fs_->GetXattr(file_, "user.k"));
  EXPECT_EQ(shorter, "3");
  ASSERT_OK_AND_ASSIGN(Names names, fs_->ListXattr(file_));
  EXPECT_EQ(names, Names{"user.k"});
}

TEST_F(XattrTest, CreateFlagOnExistingIsExists) {
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "v", XATTR_CREATE));
  EXPECT_CODE(fs_->SetXattr(file_, "user.k", "w", XATTR_CREATE), Code::kExists);
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, "user.k"));
  EXPECT_EQ(v, "v");
}

TEST_F(XattrTest, ReplaceFlagOnMissingIsNoData) {
  EXPECT_CODE(fs_->SetXattr(file_, "user.k", "v", XATTR_REPLACE), Code::kNoData);
  EXPECT_CODE(fs_->GetXattr(file_, "user.k"), Code::kNoData);
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "v", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "replaced", XATTR_REPLACE));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, "user.k"));
  EXPECT_EQ(v, "replaced");
}

TEST_F(XattrTest, UnknownFlagsAreInvalid) {
  EXPECT_CODE(fs_->SetXattr(file_, "user.k", "v", 0x100), Code::kInvalid);
  EXPECT_CODE(fs_->GetXattr(file_, "user.k"), Code::kNoData);
}

TEST_F(XattrTest, GetMissingIsNoData) {
  EXPECT_CODE(fs_->GetXattr(file_, "user.missing"), Code::kNoData);
  ASSERT_OK(fs_->SetXattr(file_, "user.other", "x", 0));
  EXPECT_CODE(fs_->GetXattr(file_, "user.missing"), Code::kNoData);
}

TEST_F(XattrTest, RemoveMissingIsNoData) {
  EXPECT_CODE(fs_->RemoveXattr(file_, "user.missing"), Code::kNoData);
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "v", 0));
  ASSERT_OK(fs_->RemoveXattr(file_, "user.k"));
  EXPECT_CODE(fs_->RemoveXattr(file_, "user.k"), Code::kNoData);
}

TEST_F(XattrTest, XattrsOfUnknownInodeAreNotFound) {
  EXPECT_CODE(fs_->SetXattr(9999999, "user.k", "v", 0), Code::kNotFound);
  EXPECT_CODE(fs_->GetXattr(9999999, "user.k"), Code::kNotFound);
  EXPECT_CODE(fs_->ListXattr(9999999), Code::kNotFound);
  EXPECT_CODE(fs_->RemoveXattr(9999999, "user.k"), Code::kNotFound);
}

// The kernel asks for security.capability before every write; while the
// store has none it is answered from memory. The answer must stay right
// when one appears: in this process, and in a store reopened later.
TEST_F(XattrTest, CapabilityXattrIsFoundOnceSetAndAfterReopening) {
  const std::string cap("\x01\x00\x00\x02\x00\x04\x00\x00", 8);
  EXPECT_CODE(fs_->GetXattr(file_, "security.capability"), Code::kNoData);
  InodeId other = WriteFile(kRootIno, "other", "x").ino;
  ASSERT_OK(fs_->SetXattr(other, "security.capability", cap, 0));
  EXPECT_CODE(fs_->GetXattr(file_, "security.capability"), Code::kNoData);
  ASSERT_OK_AND_ASSIGN(std::string got, fs_->GetXattr(other, "security.capability"));
  EXPECT_EQ(got, cap);
  ASSERT_OK(fs_->FlushAll());
  OpenStore(StoreOptions{});
  ASSERT_OK_AND_ASSIGN(got, fs_->GetXattr(other, "security.capability"));
  EXPECT_EQ(got, cap);
  ASSERT_OK(fs_->RemoveXattr(other, "security.capability"));
  EXPECT_CODE(fs_->GetXattr(other, "security.capability"), Code::kNoData);
}

// --- Values and names

TEST_F(XattrTest, EmptyValueIsAllowed) {
  ASSERT_OK(fs_->SetXattr(file_, "user.empty", "", 0));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, "user.empty"));
  EXPECT_EQ(v, "");
  // A value with no storage behind it at all is empty too, not missing.
  ASSERT_OK(fs_->SetXattr(file_, "user.null", std::string_view(), 0));
  ASSERT_OK_AND_ASSIGN(std::string n, fs_->GetXattr(file_, "user.null"));
  EXPECT_EQ(n, "");
  ASSERT_OK_AND_ASSIGN(Names names, fs_->ListXattr(file_));
  EXPECT_EQ(names, (Names{"user.empty", "user.null"}));
  // It exists: XATTR_CREATE refuses, XATTR_REPLACE accepts.
  EXPECT_CODE(fs_->SetXattr(file_, "user.empty", "x", XATTR_CREATE), Code::kExists);
  ASSERT_OK(fs_->SetXattr(file_, "user.null", "now set", XATTR_REPLACE));
  ASSERT_OK(fs_->RemoveXattr(file_, "user.empty"));
  EXPECT_CODE(fs_->GetXattr(file_, "user.empty"), Code::kNoData);
}

TEST_F(XattrTest, EmptyValueSurvivesReopeningTheStore) {
  ASSERT_OK(fs_->SetXattr(file_, "user.empty", "", 0));
  OpenStore(StoreOptions{});
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, "user.empty"));
  EXPECT_EQ(v, "");
  ASSERT_OK_AND_ASSIGN(Names names, fs_->ListXattr(file_));
  EXPECT_EQ(names, Names{"user.empty"});
}

TEST_F(XattrTest, BinaryValuesKeepNulBytes) {
  const std::string value("\0a\0\xff\x01\0", 6);
  ASSERT_OK(fs_->SetXattr(file_, "user.bin", value, 0));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, "user.bin"));
  EXPECT_EQ(v.size(), 6u);
  EXPECT_EQ(v, value);
  const std::string zeros(1000, '\0');
  ASSERT_OK(fs_->SetXattr(file_, "user.zeros", zeros, 0));
  ASSERT_OK_AND_ASSIGN(std::string z, fs_->GetXattr(file_, "user.zeros"));
  EXPECT_EQ(z, zeros);
}

TEST_F(XattrTest, ValueOf64KiBIsAllowedAndLargerIsTooBig) {
  std::string largest(kMaxValue, 'v');
  largest[12345] = '\0';
  ASSERT_OK(fs_->SetXattr(file_, "user.big", largest, 0));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, "user.big"));
  EXPECT_EQ(v, largest);
  EXPECT_CODE(fs_->SetXattr(file_, "user.big", std::string(kMaxValue + 1, 'w'), 0),
              Code::kTooBig);
  EXPECT_CODE(fs_->SetXattr(file_, "user.new", std::string(kMaxValue + 1, 'w'), 0),
              Code::kTooBig);
  ASSERT_OK_AND_ASSIGN(std::string still, fs_->GetXattr(file_, "user.big"));
  EXPECT_EQ(still, largest);
  EXPECT_CODE(fs_->GetXattr(file_, "user.new"), Code::kNoData);
}

TEST_F(XattrTest, NameOf255BytesIsAllowedAnd256IsRange) {
  const std::string longest = "user." + std::string(250, 'n');
  ASSERT_EQ(longest.size(), 255u);
  ASSERT_OK(fs_->SetXattr(file_, longest, "v", 0));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, longest));
  EXPECT_EQ(v, "v");
  const std::string too_long = longest + "n";
  EXPECT_CODE(fs_->SetXattr(file_, too_long, "v", 0), Code::kRange);
  EXPECT_CODE(fs_->GetXattr(file_, too_long), Code::kRange);
  EXPECT_CODE(fs_->RemoveXattr(file_, too_long), Code::kRange);
  ASSERT_OK_AND_ASSIGN(Names names, fs_->ListXattr(file_));
  EXPECT_EQ(names, Names{longest});
}

TEST_F(XattrTest, EmptyNameIsRange) {
  EXPECT_CODE(fs_->SetXattr(file_, "", "v", 0), Code::kRange);
  EXPECT_CODE(fs_->GetXattr(file_, ""), Code::kRange);
  EXPECT_CODE(fs_->RemoveXattr(file_, ""), Code::kRange);
}

TEST_F(XattrTest, NamesAreCaseSensitive) {
  ASSERT_OK(fs_->SetXattr(file_, "user.Key", "upper", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.key", "lower", 0));
  EXPECT_EQ(*fs_->GetXattr(file_, "user.Key"), "upper");
  EXPECT_EQ(*fs_->GetXattr(file_, "user.key"), "lower");
}

// --- Any inode type

TEST_F(XattrTest, DirectoriesSymlinksAndSpecialFilesCarryXattrs) {
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, "d", 0755, Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(kRootIno, "l", "f", Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr fifo, fs_->MkNod(kRootIno, "p", S_IFIFO | 0644, 0, Cred{}));
  for (InodeId ino : {kRootIno, dir.ino, link.ino, fifo.ino}) {
    ASSERT_OK(fs_->SetXattr(ino, "trusted.kind", std::to_string(ino), 0));
  }
  for (InodeId ino : {kRootIno, dir.ino, link.ino, fifo.ino}) {
    ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(ino, "trusted.kind"));
    EXPECT_EQ(v, std::to_string(ino));
  }
  // Each inode has its own set.
  EXPECT_CODE(fs_->GetXattr(file_, "trusted.kind"), Code::kNoData);
}

TEST_F(XattrTest, HardLinksShareXattrs) {
  ASSERT_OK(fs_->Link(file_, kRootIno, "g").status());
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "shared", 0));
  ASSERT_OK_AND_ASSIGN(Attr g, fs_->Lookup(kRootIno, "g"));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(g.ino, "user.k"));
  EXPECT_EQ(v, "shared");
}

TEST_F(XattrTest, SetAndRemoveChangeCtime) {
  auto now = std::make_shared<std::atomic<int64_t>>(3'000'000'000'000'000'001);
  StoreOptions options;
  options.clock = [now]() { return now->load(); };
  OpenStore(std::move(options));
  ASSERT_OK_AND_ASSIGN(Attr before, fs_->GetAttr(file_));
  now->store(3'000'000'000'000'000'555);
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "v", 0));
  ASSERT_OK_AND_ASSIGN(Attr set, fs_->GetAttr(file_));
  EXPECT_EQ(set.ctime_ns, 3'000'000'000'000'000'555);
  EXPECT_EQ(set.mtime_ns, before.mtime_ns);
  now->store(3'000'000'000'000'000'999);
  ASSERT_OK(fs_->RemoveXattr(file_, "user.k"));
  ASSERT_OK_AND_ASSIGN(Attr removed, fs_->GetAttr(file_));
  EXPECT_EQ(removed.ctime_ns, 3'000'000'000'000'000'999);
  // A failed call changes nothing.
  now->store(3'000'000'000'000'001'500);
  EXPECT_CODE(fs_->RemoveXattr(file_, "user.k"), Code::kNoData);
  EXPECT_EQ(fs_->GetAttr(file_)->ctime_ns, 3'000'000'000'000'000'999);
}

TEST_F(XattrTest, XattrsSurviveReopeningTheStore) {
  ASSERT_OK(fs_->SetXattr(file_, "user.a", "1", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.b", std::string("\0\1", 2), 0));
  OpenStore(StoreOptions{});
  EXPECT_EQ(*fs_->GetXattr(file_, "user.a"), "1");
  EXPECT_EQ(*fs_->GetXattr(file_, "user.b"), std::string("\0\1", 2));
  EXPECT_EQ(*fs_->ListXattr(file_), (Names{"user.a", "user.b"}));
}

TEST_F(XattrTest, XattrsOfAnUnlinkedOpenFileStayUntilRelease) {
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "v", 0));
  ASSERT_OK(fs_->Open(file_));
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  ASSERT_OK_AND_ASSIGN(std::string v, fs_->GetXattr(file_, "user.k"));
  EXPECT_EQ(v, "v");
  ASSERT_OK(fs_->SetXattr(file_, "user.k2", "v2", 0));
  EXPECT_EQ(*fs_->ListXattr(file_), (Names{"user.k", "user.k2"}));
  ASSERT_OK(fs_->Release(file_));
  EXPECT_CODE(fs_->GetXattr(file_, "user.k"), Code::kNotFound);
}

// --- Snapshots and forks

TEST_F(XattrTest, SnapshotXattrsAreFrozenWhileTheHeadChanges) {
  ASSERT_OK(fs_->SetXattr(file_, "user.a", "a at v", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.b", "b at v", 0));
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_, "v"));
  ASSERT_OK(fs_->SetXattr(file_, "user.a", "a at head", XATTR_REPLACE));
  ASSERT_OK(fs_->RemoveXattr(file_, "user.b"));
  ASSERT_OK(fs_->SetXattr(file_, "user.c", "c at head", XATTR_CREATE));

  ASSERT_OK_AND_ASSIGN(auto snap, store_->OpenFilesystem(View{branch_, v}));
  EXPECT_EQ(*snap->GetXattr(file_, "user.a"), "a at v");
  EXPECT_EQ(*snap->GetXattr(file_, "user.b"), "b at v");
  EXPECT_CODE(snap->GetXattr(file_, "user.c"), Code::kNoData);
  EXPECT_EQ(*snap->ListXattr(file_), (Names{"user.a", "user.b"}));
  EXPECT_CODE(snap->SetXattr(file_, "user.d", "x", 0), Code::kReadOnly);
  EXPECT_CODE(snap->RemoveXattr(file_, "user.a"), Code::kReadOnly);

  EXPECT_EQ(*fs_->GetXattr(file_, "user.a"), "a at head");
  EXPECT_CODE(fs_->GetXattr(file_, "user.b"), Code::kNoData);
  EXPECT_EQ(*fs_->ListXattr(file_), (Names{"user.a", "user.c"}));

  // A later snapshot has the head's state, and the first one still its own.
  ASSERT_OK(fs_->SetXattr(file_, "user.b", "b again", 0));
  ASSERT_OK_AND_ASSIGN(Version v2, store_->Snapshot(branch_));
  ASSERT_OK(fs_->RemoveXattr(file_, "user.a"));
  ASSERT_OK_AND_ASSIGN(auto snap2, store_->OpenFilesystem(View{branch_, v2}));
  EXPECT_EQ(*snap2->ListXattr(file_), (Names{"user.a", "user.b", "user.c"}));
  EXPECT_EQ(*snap2->GetXattr(file_, "user.b"), "b again");
  EXPECT_EQ(*snap->GetXattr(file_, "user.b"), "b at v");
  EXPECT_EQ(*fs_->ListXattr(file_), (Names{"user.b", "user.c"}));
}

TEST_F(XattrTest, SnapshotKeepsXattrsOfARemovedFile) {
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "kept", 0));
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_));
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  ASSERT_OK_AND_ASSIGN(auto snap, store_->OpenFilesystem(View{branch_, v}));
  EXPECT_EQ(*snap->GetXattr(file_, "user.k"), "kept");
  EXPECT_CODE(fs_->GetXattr(file_, "user.k"), Code::kNotFound);
}

TEST_F(XattrTest, ForkInheritsXattrsAndChangesStayInTheFork) {
  ASSERT_OK(fs_->SetXattr(file_, "user.a", "parent a", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.b", "parent b", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.c", "parent c", 0));
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{branch_, kHead}, "child"));
  ASSERT_OK_AND_ASSIGN(auto fork, store_->OpenFilesystem(View{child, kHead}));
  EXPECT_EQ(*fork->ListXattr(file_), (Names{"user.a", "user.b", "user.c"}));
  EXPECT_EQ(*fork->GetXattr(file_, "user.a"), "parent a");

  // Change the fork: replace one, remove one, add one.
  ASSERT_OK(fork->SetXattr(file_, "user.a", "child a", XATTR_REPLACE));
  ASSERT_OK(fork->RemoveXattr(file_, "user.b"));
  ASSERT_OK(fork->SetXattr(file_, "user.d", "child d", XATTR_CREATE));
  EXPECT_EQ(*fork->GetXattr(file_, "user.a"), "child a");
  EXPECT_CODE(fork->GetXattr(file_, "user.b"), Code::kNoData);
  EXPECT_CODE(fork->RemoveXattr(file_, "user.b"), Code::kNoData);
  EXPECT_CODE(fork->SetXattr(file_, "user.b", "x", XATTR_REPLACE), Code::kNoData);
  EXPECT_EQ(*fork->ListXattr(file_), (Names{"user.a", "user.c", "user.d"}));

  // The parent is untouched.
  EXPECT_EQ(*fs_->GetXattr(file_, "user.a"), "parent a");
  EXPECT_EQ(*fs_->GetXattr(file_, "user.b"), "parent b");
  EXPECT_CODE(fs_->GetXattr(file_, "user.d"), Code::kNoData);
  EXPECT_EQ(*fs_->ListXattr(file_), (Names{"user.a", "user.b", "user.c"}));

  // And the parent's later changes do not reach the fork.
  ASSERT_OK(fs_->SetXattr(file_, "user.c", "parent c2", 0));
  ASSERT_OK(fs_->SetXattr(file_, "user.e", "parent e", 0));
  EXPECT_EQ(*fork->GetXattr(file_, "user.c"), "parent c");
  EXPECT_CODE(fork->GetXattr(file_, "user.e"), Code::kNoData);

  // A removed inherited xattr can be created again in the fork.
  ASSERT_OK(fork->SetXattr(file_, "user.b", "child b", XATTR_CREATE));
  EXPECT_EQ(*fork->GetXattr(file_, "user.b"), "child b");
  EXPECT_EQ(*fs_->GetXattr(file_, "user.b"), "parent b");
}

TEST_F(XattrTest, RemovalInAForkSurvivesAForkSnapshot) {
  ASSERT_OK(fs_->SetXattr(file_, "user.k", "parent", 0));
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_));
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{branch_, v}));
  ASSERT_OK_AND_ASSIGN(auto fork, store_->OpenFilesystem(View{child, kHead}));
  ASSERT_OK(fork->RemoveXattr(file_, "user.k"));
  ASSERT_OK_AND_ASSIGN(Version cv, store_->Snapshot(child));
  ASSERT_OK(fork->SetXattr(file_, "user.k", "back", 0));
  ASSERT_OK_AND_ASSIGN(auto child_snap, store_->OpenFilesystem(View{child, cv}));
  EXPECT_CODE(child_snap->GetXattr(file_, "user.k"), Code::kNoData);
  EXPECT_TRUE(child_snap->ListXattr(file_)->empty());
  EXPECT_EQ(*fork->GetXattr(file_, "user.k"), "back");
  EXPECT_EQ(*fs_->GetXattr(file_, "user.k"), "parent");
}

TEST_F(XattrTest, ForkOfAForkInheritsThroughBothLevels) {
  ASSERT_OK(fs_->SetXattr(file_, "user.root", "r", 0));
  ASSERT_OK_AND_ASSIGN(BranchId child, store_->Fork(View{branch_, kHead}));
  ASSERT_OK_AND_ASSIGN(auto fork, store_->OpenFilesystem(View{child, kHead}));
  ASSERT_OK(fork->SetXattr(file_, "user.child", "c", 0));
  ASSERT_OK_AND_ASSIGN(BranchId grandchild, store_->Fork(View{child, kHead}));
  ASSERT_OK_AND_ASSIGN(auto fork2, store_->OpenFilesystem(View{grandchild, kHead}));
  EXPECT_EQ(*fork2->ListXattr(file_), (Names{"user.child", "user.root"}));
  ASSERT_OK(fork2->RemoveXattr(file_, "user.root"));
  EXPECT_EQ(*fork2->ListXattr(file_), Names{"user.child"});
  EXPECT_EQ(*fork->ListXattr(file_), (Names{"user.child", "user.root"}));
  EXPECT_EQ(*fs_->ListXattr(file_), Names{"user.root"});
}

}  // namespace
}  // namespace strata
