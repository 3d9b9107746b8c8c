// POSIX behaviour of the namespace operations of Filesystem: lookup, node
// creation, links, removal, rename, readdir, path resolution and attributes.
#include <linux/fs.h>
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::StoreTest;

constexpr int64_t kStartNs = 1'700'000'000'123'456'789;

class NamespaceTest : public StoreTest {
 protected:
  // A store whose clock only moves when the test says so, so that times can
  // be compared exactly.
  void SetUp() override {
    StoreOptions options;
    options.clock = [now = now_]() { return now->load(); };
    OpenStore(std::move(options));
  }

  int64_t Now() const { return now_->load(); }
  // Advances the clock by one microsecond and returns the new time.
  int64_t Tick() { return now_->fetch_add(1000) + 1000; }

  Attr MkDir(InodeId parent, const std::string& name) {
    auto attr = fs_->MkDir(parent, name, 0755, Cred{});
    EXPECT_TRUE(attr.ok()) << name << ": " << attr.status().ToString();
    return attr.ok() ? *attr : Attr{};
  }

  Attr Touch(InodeId parent, const std::string& name) {
    auto attr = fs_->MkNod(parent, name, S_IFREG | 0644, 0, Cred{});
    EXPECT_TRUE(attr.ok()) << name << ": " << attr.status().ToString();
    return attr.ok() ? *attr : Attr{};
  }

  Attr Stat(InodeId ino) {
    auto attr = fs_->GetAttr(ino);
    EXPECT_TRUE(attr.ok()) << "inode " << ino << ": " << attr.status().ToString();
    return attr.ok() ? *attr : Attr{};
  }

  uint32_t Nlink(InodeId ino) { return Stat(ino).nlink; }

  // The names in a directory, without "." and "..".
  std::vector<std::string> Names(InodeId dir) {
    std::vector<std::string> out;
    auto entries = fs_->ReadDir(dir);
    EXPECT_TRUE(entries.ok()) << entries.status().ToString();
    if (!entries.ok()) return out;
    for (const DirEntry& e : *entries) {
      if (e.name != "." && e.name != "..") out.push_back(e.name);
    }
    return out;
  }

  // Checks, for every directory reachable from the root, that nlink is 2 plus
  // the number of subdirectories and that ".." names the containing
  // directory; then runs the store's own integrity check.
  void ExpectTreeConsistent() {
    ExpectDirConsistent(kRootIno, kRootIno, "/");
    auto problems = store_->CheckIntegrity();
    ASSERT_TRUE(problems.ok()) << problems.status().ToString();
    for (const auto& p : *problems) ADD_FAILURE() << p.kind << ": " << p.detail;
  }

  void ExpectDirConsistent(InodeId dir, InodeId parent, const std::string& path) {
    auto entries = fs_->ReadDir(dir);
    ASSERT_TRUE(entries.ok()) << path << ": " << entries.status().ToString();
    uint32_t subdirs = 0;
    for (const DirEntry& e : *entries) {
      if (e.name == ".") {
        EXPECT_EQ(e.ino, dir) << path;
      } else if (e.name == "..") {
        EXPECT_EQ(e.ino, parent) << path;
      } else if (S_ISDIR(e.mode)) {
        ++subdirs;
        ExpectDirConsistent(e.ino, dir, path + e.name + "/");
      }
    }
    EXPECT_EQ(Nlink(dir), 2 + subdirs) << "nlink of " << path;
    auto dotdot = fs_->Lookup(dir, "..");
    ASSERT_TRUE(dotdot.ok()) << path << ": " << dotdot.status().ToString();
    EXPECT_EQ(dotdot->ino, parent) << "'..' of " << path;
  }

  std::shared_ptr<std::atomic<int64_t>> now_ = std::make_shared<std::atomic<int64_t>>(kStartNs);
};

// --- Lookup

TEST_F(NamespaceTest, LookupFindsCreatedEntry) {
  Attr dir = MkDir(kRootIno, "d");
  ASSERT_OK_AND_ASSIGN(Attr found, fs_->Lookup(kRootIno, "d"));
  EXPECT_EQ(found.ino, dir.ino);
  EXPECT_EQ(found.mode, S_IFDIR | 0755u);
  EXPECT_EQ(found.nlink, 2u);
}

TEST_F(NamespaceTest, LookupDotIsTheDirectoryItself) {
  Attr dir = MkDir(kRootIno, "d");
  ASSERT_OK_AND_ASSIGN(Attr self, fs_->Lookup(dir.ino, "."));
  EXPECT_EQ(self.ino, dir.ino);
  ASSERT_OK_AND_ASSIGN(Attr root, fs_->Lookup(kRootIno, "."));
  EXPECT_EQ(root.ino, kRootIno);
}

TEST_F(NamespaceTest, LookupDotDotIsTheParent) {
  Attr a = MkDir(kRootIno, "a");
  Attr b = MkDir(a.ino, "b");
  ASSERT_OK_AND_ASSIGN(Attr up, fs_->Lookup(b.ino, ".."));
  EXPECT_EQ(up.ino, a.ino);
  ASSERT_OK_AND_ASSIGN(Attr up2, fs_->Lookup(a.ino, ".."));
  EXPECT_EQ(up2.ino, kRootIno);
}

TEST_F(NamespaceTest, LookupDotDotOfRootIsRoot) {
  ASSERT_OK_AND_ASSIGN(Attr up, fs_->Lookup(kRootIno, ".."));
  EXPECT_EQ(up.ino, kRootIno);
  EXPECT_TRUE(S_ISDIR(up.mode));
}

TEST_F(NamespaceTest, LookupMissingNameIsNotFound) {
  EXPECT_CODE(fs_->Lookup(kRootIno, "nope"), Code::kNotFound);
}

TEST_F(NamespaceTest, LookupInRemovedDirectoryIsNotFound) {
  Attr dir = MkDir(kRootIno, "d");
  ASSERT_OK(fs_->RmDir(kRootIno, "d"));
  EXPECT_CODE(fs_->Lookup(dir.ino, "x"), Code::kNotFound);
}

TEST_F(NamespaceTest, LookupInFileIsNotDir) {
  Attr file = Touch(kRootIno, "f");
  EXPECT_CODE(fs_->Lookup(file.ino, "x"), Code::kNotDir);
  EXPECT_CODE(fs_->Lookup(file.ino, "."), Code::kNotDir);
  EXPECT_CODE(fs_->Lookup(file.ino, ".."), Code::kNotDir);
}

TEST_F(NamespaceTest, GetAttrOfUnknownInodeIsNotFound) {
  EXPECT_CODE(fs_->GetAttr(987654), Code::kNotFound);
}

TEST_F(NamespaceTest, RootIsADirectoryWithTwoLinks) {
  ASSERT_OK_AND_ASSIGN(Attr root, fs_->GetAttr(kRootIno));
  EXPECT_EQ(root.ino, kRootIno);
  EXPECT_TRUE(S_ISDIR(root.mode));
  EXPECT_EQ(root.nlink, 2u);
}

// --- Name length

TEST_F(NamespaceTest, NamesOf255BytesAreAccepted) {
  const std::string name(255, 'n');
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, name, 0755, Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr found, fs_->Lookup(kRootIno, name));
  EXPECT_EQ(found.ino, dir.ino);
  ASSERT_OK_AND_ASSIGN(Attr file, fs_->Create(dir.ino, name, 0644, Cred{}));
  ASSERT_OK(fs_->Release(file.ino));
  ASSERT_OK(fs_->MkNod(kRootIno, std::string(255, 'm'), S_IFIFO | 0644, 0, Cred{}).status());
  ASSERT_OK(fs_->Symlink(kRootIno, std::string(255, 's'), "target", Cred{}).status());
  ASSERT_OK(fs_->Link(file.ino, kRootIno, std::string(255, 'l')).status());
  ASSERT_OK(fs_->Rename(kRootIno, std::string(255, 'l'), kRootIno, std::string(255, 'r'), 0));
  EXPECT_EQ(Names(kRootIno),
            (std::vector<std::string>{std::string(255, 'm'), std::string(255, 'n'),
                                      std::string(255, 'r'), std::string(255, 's')}));
}

TEST_F(NamespaceTest, NamesOf256BytesAreNameTooLong) {
  const std::string name(256, 'n');
  Attr file = Touch(kRootIno, "f");
  EXPECT_CODE(fs_->Lookup(kRootIno, name), Code::kNameTooLong);
  EXPECT_CODE(fs_->MkDir(kRootIno, name, 0755, Cred{}), Code::kNameTooLong);
  EXPECT_CODE(fs_->Create(kRootIno, name, 0644, Cred{}), Code::kNameTooLong);
  EXPECT_CODE(fs_->MkNod(kRootIno, name, S_IFREG | 0644, 0, Cred{}), Code::kNameTooLong);
  EXPECT_CODE(fs_->Symlink(kRootIno, name, "t", Cred{}), Code::kNameTooLong);
  EXPECT_CODE(fs_->Link(file.ino, kRootIno, name), Code::kNameTooLong);
  EXPECT_CODE(fs_->Unlink(kRootIno, name), Code::kNameTooLong);
  EXPECT_CODE(fs_->RmDir(kRootIno, name), Code::kNameTooLong);
  EXPECT_CODE(fs_->Rename(kRootIno, "f", kRootIno, name, 0), Code::kNameTooLong);
  EXPECT_CODE(fs_->Rename(kRootIno, name, kRootIno, "g", 0), Code::kNameTooLong);
  EXPECT_EQ(Names(kRootIno), std::vector<std::string>{"f"});
}

// --- MkDir

TEST_F(NamespaceTest, MkDirSetsTypePermissionsLinksAndTimes) {
  int64_t t = Tick();
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, "d", 01750, Cred{}));
  EXPECT_EQ(dir.mode, S_IFDIR | 01750u);
  EXPECT_EQ(dir.nlink, 2u);
  EXPECT_EQ(dir.atime_ns, t);
  EXPECT_EQ(dir.mtime_ns, t);
  EXPECT_EQ(dir.ctime_ns, t);
  EXPECT_NE(dir.ino, kRootIno);
}

TEST_F(NamespaceTest, MkDirIgnoresFileTypeBitsInMode) {
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, "d", S_IFREG | 0700, Cred{}));
  EXPECT_EQ(dir.mode, S_IFDIR | 0700u);
}

TEST_F(NamespaceTest, MkDirIncrementsParentNlinkAndTouchesParent) {
  Attr a = MkDir(kRootIno, "a");
  int64_t t = Tick();
  MkDir(a.ino, "b");
  Attr after = Stat(a.ino);
  EXPECT_EQ(after.nlink, 3u);
  EXPECT_EQ(after.mtime_ns, t);
  EXPECT_EQ(after.ctime_ns, t);
  EXPECT_EQ(Nlink(kRootIno), 3u);
  MkDir(a.ino, "c");
  EXPECT_EQ(Nlink(a.ino), 4u);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, MkDirOverExistingNameIsExists) {
  MkDir(kRootIno, "d");
  Touch(kRootIno, "f");
  EXPECT_CODE(fs_->MkDir(kRootIno, "d", 0755, Cred{}), Code::kExists);
  EXPECT_CODE(fs_->MkDir(kRootIno, "f", 0755, Cred{}), Code::kExists);
  EXPECT_CODE(fs_->MkDir(kRootIno, ".", 0755, Cred{}), Code::kExists);
  EXPECT_CODE(fs_->MkDir(kRootIno, "..", 0755, Cred{}), Code::kExists);
  EXPECT_EQ(Nlink(kRootIno), 3u);
}

TEST_F(NamespaceTest, MkDirInMissingDirectoryIsNotFound) {
  EXPECT_CODE(fs_->MkDir(424242, "d", 0755, Cred{}), Code::kNotFound);
}

TEST_F(NamespaceTest, MkDirInFileIsNotDir) {
  Attr file = Touch(kRootIno, "f");
  EXPECT_CODE(fs_->MkDir(file.ino, "d", 0755, Cred{}), Code::kNotDir);
}

TEST_F(NamespaceTest, NamesWithSlashOrNulAreInvalid) {
  EXPECT_CODE(fs_->MkDir(kRootIno, "a/b", 0755, Cred{}), Code::kInvalid);
  EXPECT_CODE(fs_->Create(kRootIno, std::string("a\0b", 3), 0644, Cred{}), Code::kInvalid);
  EXPECT_TRUE(Names(kRootIno).empty());
}

TEST_F(NamespaceTest, EmptyNameIsNotFound) {
  EXPECT_CODE(fs_->MkDir(kRootIno, "", 0755, Cred{}), Code::kNotFound);
  EXPECT_CODE(fs_->Lookup(kRootIno, ""), Code::kNotFound);
}

// --- MkNod

TEST_F(NamespaceTest, MkNodCreatesRegularFileFifoAndSocketWithoutRdev) {
  for (uint32_t type : {S_IFREG, S_IFIFO, S_IFSOCK}) {
    std::string name = "node" + std::to_string(type);
    ASSERT_OK_AND_ASSIGN(Attr attr, fs_->MkNod(kRootIno, name, type | 0640, 0x0801, Cred{}));
    EXPECT_EQ(attr.mode, type | 0640u) << name;
    EXPECT_EQ(attr.rdev, 0u) << name;
    EXPECT_EQ(attr.nlink, 1u) << name;
    EXPECT_EQ(attr.size, 0u) << name;
    ASSERT_OK_AND_ASSIGN(Attr found, fs_->Lookup(kRootIno, name));
    EXPECT_EQ(found.ino, attr.ino);
    EXPECT_EQ(found.mode, type | 0640u);
  }
  // Regular files and special files do not count as links of the parent.
  EXPECT_EQ(Nlink(kRootIno), 2u);
}

TEST_F(NamespaceTest, MkNodKeepsRdevOfDevices) {
  const uint64_t dev = (8u << 8) | 1u;
  ASSERT_OK_AND_ASSIGN(Attr chr, fs_->MkNod(kRootIno, "chr", S_IFCHR | 0600, dev, Cred{}));
  EXPECT_EQ(chr.mode, S_IFCHR | 0600u);
  EXPECT_EQ(chr.rdev, dev);
  ASSERT_OK_AND_ASSIGN(Attr blk, fs_->MkNod(kRootIno, "blk", S_IFBLK | 0660, dev + 7, Cred{}));
  EXPECT_EQ(blk.mode, S_IFBLK | 0660u);
  EXPECT_EQ(blk.rdev, dev + 7);
  ASSERT_OK_AND_ASSIGN(Attr found, fs_->Lookup(kRootIno, "blk"));
  EXPECT_EQ(found.rdev, dev + 7);
}

TEST_F(NamespaceTest, MkNodWithUnsupportedTypeIsInvalid) {
  EXPECT_CODE(fs_->MkNod(kRootIno, "d", S_IFDIR | 0755, 0, Cred{}), Code::kInvalid);
  EXPECT_CODE(fs_->MkNod(kRootIno, "l", S_IFLNK | 0777, 0, Cred{}), Code::kInvalid);
  EXPECT_CODE(fs_->MkNod(kRootIno, "x", 0170000 | 0644, 0, Cred{}), Code::kInvalid);
  EXPECT_TRUE(Names(kRootIno).empty());
}

TEST_F(NamespaceTest, MkNodOverExistingNameIsExists) {
  Touch(kRootIno, "f");
  EXPECT_CODE(fs_->MkNod(kRootIno, "f", S_IFIFO | 0644, 0, Cred{}), Code::kExists);
  EXPECT_CODE(fs_->Create(kRootIno, "f", 0644, Cred{}), Code::kExists);
}

TEST_F(NamespaceTest, MkNodInFileIsNotDir) {
  Attr file = Touch(kRootIno, "f");
  EXPECT_CODE(fs_->MkNod(file.ino, "x", S_IFREG | 0644, 0, Cred{}), Code::kNotDir);
  EXPECT_CODE(fs_->Create(file.ino, "x", 0644, Cred{}), Code::kNotDir);
}

TEST_F(NamespaceTest, CreateMakesAnOpenRegularFile) {
  ASSERT_OK_AND_ASSIGN(Attr file, fs_->Create(kRootIno, "f", 0600, Cred{}));
  EXPECT_EQ(file.mode, S_IFREG | 0600u);
  EXPECT_EQ(file.nlink, 1u);
  EXPECT_EQ(file.size, 0u);
  // Create opened it: one Release succeeds, a second has no handle left.
  ASSERT_OK(fs_->Release(file.ino));
  EXPECT_CODE(fs_->Release(file.ino), Code::kInvalid);
}

// --- Symlinks

TEST_F(NamespaceTest, SymlinkStoresTargetAndReadLinkReturnsIt) {
  const std::string target = "../some/where/else";
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(kRootIno, "l", target, Cred{}));
  EXPECT_EQ(link.mode, S_IFLNK | 0777u);
  EXPECT_EQ(link.size, target.size());
  EXPECT_EQ(link.nlink, 1u);
  ASSERT_OK_AND_ASSIGN(std::string read, fs_->ReadLink(link.ino));
  EXPECT_EQ(read, target);
  ASSERT_OK_AND_ASSIGN(Attr found, fs_->Lookup(kRootIno, "l"));
  EXPECT_EQ(found.ino, link.ino);
  EXPECT_EQ(found.mode, S_IFLNK | 0777u);
}

TEST_F(NamespaceTest, SymlinkTargetMayHoldAnyBytes) {
  const std::string target = std::string("dangling\xff\x01 target with spaces", 29);
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(kRootIno, "l", target, Cred{}));
  ASSERT_OK_AND_ASSIGN(std::string read, fs_->ReadLink(link.ino));
  EXPECT_EQ(read, target);
}

TEST_F(NamespaceTest, ReadLinkOnNonSymlinkIsInvalid) {
  Attr file = Touch(kRootIno, "f");
  Attr dir = MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->ReadLink(file.ino), Code::kInvalid);
  EXPECT_CODE(fs_->ReadLink(dir.ino), Code::kInvalid);
  EXPECT_CODE(fs_->ReadLink(kRootIno), Code::kInvalid);
}

TEST_F(NamespaceTest, ReadLinkOfUnknownInodeIsNotFound) {
  EXPECT_CODE(fs_->ReadLink(555555), Code::kNotFound);
}

TEST_F(NamespaceTest, SymlinkWithEmptyTargetIsNotFound) {
  EXPECT_CODE(fs_->Symlink(kRootIno, "l", "", Cred{}), Code::kNotFound);
  EXPECT_CODE(fs_->Lookup(kRootIno, "l"), Code::kNotFound);
}

TEST_F(NamespaceTest, SymlinkTargetOf4095BytesIsAcceptedAnd4096IsNameTooLong) {
  const std::string longest(4095, 't');
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(kRootIno, "l", longest, Cred{}));
  EXPECT_EQ(link.size, 4095u);
  EXPECT_EQ(*fs_->ReadLink(link.ino), longest);
  EXPECT_CODE(fs_->Symlink(kRootIno, "m", std::string(4096, 't'), Cred{}), Code::kNameTooLong);
  EXPECT_CODE(fs_->Lookup(kRootIno, "m"), Code::kNotFound);
}

TEST_F(NamespaceTest, SymlinkOverExistingNameIsExists) {
  Touch(kRootIno, "f");
  EXPECT_CODE(fs_->Symlink(kRootIno, "f", "x", Cred{}), Code::kExists);
}

// --- Hard links

TEST_F(NamespaceTest, LinkAddsANameAndCountsLinks) {
  Attr dir = MkDir(kRootIno, "d");
  Attr file = WriteFile(kRootIno, "f", "shared");
  int64_t t = Tick();
  ASSERT_OK_AND_ASSIGN(Attr linked, fs_->Link(file.ino, dir.ino, "g"));
  EXPECT_EQ(linked.ino, file.ino);
  EXPECT_EQ(linked.nlink, 2u);
  EXPECT_EQ(linked.ctime_ns, t);
  ASSERT_OK_AND_ASSIGN(Attr via_g, fs_->Lookup(dir.ino, "g"));
  EXPECT_EQ(via_g.ino, file.ino);
  EXPECT_EQ(via_g.nlink, 2u);
  ASSERT_OK(fs_->Link(file.ino, kRootIno, "h").status());
  EXPECT_EQ(Nlink(file.ino), 3u);
  // A hard link to a file does not change the parent's link count.
  EXPECT_EQ(Nlink(dir.ino), 2u);
  EXPECT_EQ(Stat(dir.ino).mtime_ns, t);

  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_EQ(Nlink(file.ino), 2u);
  EXPECT_EQ(ReadAll(*fs_, file.ino), "shared");
  ASSERT_OK(fs_->Unlink(dir.ino, "g"));
  EXPECT_EQ(Nlink(file.ino), 1u);
  ASSERT_OK(fs_->Unlink(kRootIno, "h"));
  EXPECT_CODE(fs_->GetAttr(file.ino), Code::kNotFound);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, UnlinkOfOneHardLinkChangesCtimeOfTheInode) {
  Attr f = Touch(kRootIno, "f");
  ASSERT_OK(fs_->Link(f.ino, kRootIno, "g").status());
  int64_t t = Tick();
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  ASSERT_OK_AND_ASSIGN(Attr g, fs_->Lookup(kRootIno, "g"));
  EXPECT_EQ(g.nlink, 1u);
  EXPECT_EQ(g.ctime_ns, t);
  EXPECT_EQ(g.mtime_ns, f.mtime_ns);
}

TEST_F(NamespaceTest, LinkToDirectoryIsNotPermitted) {
  Attr dir = MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->Link(dir.ino, kRootIno, "d2"), Code::kNotPermitted);
  EXPECT_CODE(fs_->Link(kRootIno, dir.ino, "root"), Code::kNotPermitted);
  EXPECT_EQ(Nlink(dir.ino), 2u);
  EXPECT_EQ(Nlink(kRootIno), 3u);
}

TEST_F(NamespaceTest, LinkOverExistingNameIsExists) {
  Attr file = Touch(kRootIno, "f");
  Touch(kRootIno, "g");
  EXPECT_CODE(fs_->Link(file.ino, kRootIno, "g"), Code::kExists);
  EXPECT_CODE(fs_->Link(file.ino, kRootIno, "f"), Code::kExists);
  EXPECT_CODE(fs_->Link(file.ino, kRootIno, "."), Code::kExists);
  EXPECT_EQ(Nlink(file.ino), 1u);
}

TEST_F(NamespaceTest, LinkIntoFileIsNotDir) {
  Attr file = Touch(kRootIno, "f");
  Attr other = Touch(kRootIno, "g");
  EXPECT_CODE(fs_->Link(file.ino, other.ino, "x"), Code::kNotDir);
}

TEST_F(NamespaceTest, LinkOfUnknownInodeIsNotFound) {
  EXPECT_CODE(fs_->Link(777777, kRootIno, "x"), Code::kNotFound);
}

TEST_F(NamespaceTest, LinkSymlinkLinksTheSymlinkItself) {
  Attr file = Touch(kRootIno, "f");
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(kRootIno, "l", "f", Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr linked, fs_->Link(link.ino, kRootIno, "l2"));
  EXPECT_EQ(linked.ino, link.ino);
  EXPECT_EQ(linked.nlink, 2u);
  EXPECT_EQ(Nlink(file.ino), 1u);
}

// --- Unlink

TEST_F(NamespaceTest, UnlinkRemovesNameAndInode) {
  Attr file = WriteFile(kRootIno, "f", "data");
  int64_t t = Tick();
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_CODE(fs_->Lookup(kRootIno, "f"), Code::kNotFound);
  EXPECT_CODE(fs_->GetAttr(file.ino), Code::kNotFound);
  Attr root = Stat(kRootIno);
  EXPECT_EQ(root.mtime_ns, t);
  EXPECT_EQ(root.ctime_ns, t);
  EXPECT_TRUE(Names(kRootIno).empty());
  // The name can be reused for a new inode.
  Attr again = Touch(kRootIno, "f");
  EXPECT_NE(again.ino, file.ino);
}

TEST_F(NamespaceTest, UnlinkRemovesSpecialFilesAndSymlinks) {
  ASSERT_OK(fs_->MkNod(kRootIno, "fifo", S_IFIFO | 0644, 0, Cred{}).status());
  ASSERT_OK(fs_->MkNod(kRootIno, "chr", S_IFCHR | 0644, 5, Cred{}).status());
  ASSERT_OK(fs_->Symlink(kRootIno, "l", "fifo", Cred{}).status());
  ASSERT_OK(fs_->Unlink(kRootIno, "l"));
  ASSERT_OK(fs_->Unlink(kRootIno, "fifo"));
  ASSERT_OK(fs_->Unlink(kRootIno, "chr"));
  EXPECT_TRUE(Names(kRootIno).empty());
}

TEST_F(NamespaceTest, UnlinkDirectoryIsIsDir) {
  Attr dir = MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->Unlink(kRootIno, "d"), Code::kIsDir);
  EXPECT_CODE(fs_->Unlink(dir.ino, "."), Code::kIsDir);
  ASSERT_OK_AND_ASSIGN(Attr still, fs_->Lookup(kRootIno, "d"));
  EXPECT_EQ(still.ino, dir.ino);
  EXPECT_EQ(Nlink(kRootIno), 3u);
}

TEST_F(NamespaceTest, UnlinkMissingNameIsNotFound) {
  EXPECT_CODE(fs_->Unlink(kRootIno, "nope"), Code::kNotFound);
}

TEST_F(NamespaceTest, UnlinkInFileIsNotDir) {
  Attr file = Touch(kRootIno, "f");
  EXPECT_CODE(fs_->Unlink(file.ino, "x"), Code::kNotDir);
}

// --- RmDir

TEST_F(NamespaceTest, RmDirRemovesEmptyDirectoryAndDecrementsParentNlink) {
  Attr a = MkDir(kRootIno, "a");
  Attr b = MkDir(a.ino, "b");
  EXPECT_EQ(Nlink(a.ino), 3u);
  int64_t t = Tick();
  ASSERT_OK(fs_->RmDir(a.ino, "b"));
  EXPECT_CODE(fs_->Lookup(a.ino, "b"), Code::kNotFound);
  EXPECT_CODE(fs_->GetAttr(b.ino), Code::kNotFound);
  Attr after = Stat(a.ino);
  EXPECT_EQ(after.nlink, 2u);
  EXPECT_EQ(after.mtime_ns, t);
  EXPECT_EQ(after.ctime_ns, t);
  ASSERT_OK(fs_->RmDir(kRootIno, "a"));
  EXPECT_EQ(Nlink(kRootIno), 2u);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RmDirOnFileIsNotDir) {
  Touch(kRootIno, "f");
  ASSERT_OK(fs_->Symlink(kRootIno, "l", "d", Cred{}).status());
  MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->RmDir(kRootIno, "f"), Code::kNotDir);
  // A symlink to a directory is not a directory.
  EXPECT_CODE(fs_->RmDir(kRootIno, "l"), Code::kNotDir);
}

TEST_F(NamespaceTest, RmDirOfNonEmptyDirectoryIsNotEmpty) {
  Attr a = MkDir(kRootIno, "a");
  Touch(a.ino, "f");
  EXPECT_CODE(fs_->RmDir(kRootIno, "a"), Code::kNotEmpty);
  Attr b = MkDir(kRootIno, "b");
  MkDir(b.ino, "sub");
  EXPECT_CODE(fs_->RmDir(kRootIno, "b"), Code::kNotEmpty);
  EXPECT_EQ(Nlink(kRootIno), 4u);
  // Once emptied it goes.
  ASSERT_OK(fs_->Unlink(a.ino, "f"));
  ASSERT_OK(fs_->RmDir(kRootIno, "a"));
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RmDirDotIsInvalid) {
  Attr dir = MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->RmDir(dir.ino, "."), Code::kInvalid);
  EXPECT_CODE(fs_->RmDir(kRootIno, "."), Code::kInvalid);
  EXPECT_EQ(Stat(dir.ino).ino, dir.ino);
}

TEST_F(NamespaceTest, RmDirDotDotIsNotEmpty) {
  Attr dir = MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->RmDir(dir.ino, ".."), Code::kNotEmpty);
}

TEST_F(NamespaceTest, RmDirMissingNameIsNotFound) {
  EXPECT_CODE(fs_->RmDir(kRootIno, "nope"), Code::kNotFound);
}

TEST_F(NamespaceTest, RmDirInFileIsNotDir) {
  Attr file = Touch(kRootIno, "f");
  EXPECT_CODE(fs_->RmDir(file.ino, "x"), Code::kNotDir);
}

// --- Rename

TEST_F(NamespaceTest, RenameWithinDirectoryMovesTheName) {
  Attr file = WriteFile(kRootIno, "old", "content");
  int64_t t = Tick();
  ASSERT_OK(fs_->Rename(kRootIno, "old", kRootIno, "new", 0));
  EXPECT_CODE(fs_->Lookup(kRootIno, "old"), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(Attr moved, fs_->Lookup(kRootIno, "new"));
  EXPECT_EQ(moved.ino, file.ino);
  EXPECT_EQ(moved.nlink, 1u);
  EXPECT_EQ(moved.ctime_ns, t);
  EXPECT_EQ(ReadAll(*fs_, file.ino), "content");
  EXPECT_EQ(Stat(kRootIno).mtime_ns, t);
  EXPECT_EQ(Names(kRootIno), std::vector<std::string>{"new"});
}

TEST_F(NamespaceTest, RenameFileAcrossDirectories) {
  Attr a = MkDir(kRootIno, "a");
  Attr b = MkDir(kRootIno, "b");
  Attr file = Touch(a.ino, "f");
  int64_t t = Tick();
  ASSERT_OK(fs_->Rename(a.ino, "f", b.ino, "g", 0));
  EXPECT_TRUE(Names(a.ino).empty());
  EXPECT_EQ(Names(b.ino), std::vector<std::string>{"g"});
  ASSERT_OK_AND_ASSIGN(Attr moved, fs_->Lookup(b.ino, "g"));
  EXPECT_EQ(moved.ino, file.ino);
  Attr sa = Stat(a.ino);
  Attr sb = Stat(b.ino);
  EXPECT_EQ(sa.mtime_ns, t);
  EXPECT_EQ(sb.mtime_ns, t);
  EXPECT_EQ(sa.nlink, 2u);
  EXPECT_EQ(sb.nlink, 2u);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameDirectoryAcrossParentsMovesDotDotAndLinks) {
  Attr a = MkDir(kRootIno, "a");
  Attr b = MkDir(kRootIno, "b");
  Attr d = MkDir(a.ino, "d");
  Touch(d.ino, "inner");
  EXPECT_EQ(Nlink(a.ino), 3u);
  ASSERT_OK(fs_->Rename(a.ino, "d", b.ino, "d", 0));
  EXPECT_EQ(Nlink(a.ino), 2u);
  EXPECT_EQ(Nlink(b.ino), 3u);
  EXPECT_EQ(Nlink(d.ino), 2u);
  ASSERT_OK_AND_ASSIGN(Attr up, fs_->Lookup(d.ino, ".."));
  EXPECT_EQ(up.ino, b.ino);
  EXPECT_EQ(Names(d.ino), std::vector<std::string>{"inner"});
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameOverExistingFileReplacesIt) {
  Attr src = WriteFile(kRootIno, "src", "new content");
  Attr victim = WriteFile(kRootIno, "dst", "old content");
  ASSERT_OK(fs_->Rename(kRootIno, "src", kRootIno, "dst", 0));
  ASSERT_OK_AND_ASSIGN(Attr now, fs_->Lookup(kRootIno, "dst"));
  EXPECT_EQ(now.ino, src.ino);
  EXPECT_EQ(ReadAll(*fs_, now.ino), "new content");
  EXPECT_CODE(fs_->Lookup(kRootIno, "src"), Code::kNotFound);
  EXPECT_CODE(fs_->GetAttr(victim.ino), Code::kNotFound);
  EXPECT_EQ(Names(kRootIno), std::vector<std::string>{"dst"});
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameOverHardLinkedFileDropsOneLinkOfTheVictim) {
  Attr src = Touch(kRootIno, "src");
  Attr victim = WriteFile(kRootIno, "dst", "kept");
  ASSERT_OK(fs_->Link(victim.ino, kRootIno, "other").status());
  int64_t t = Tick();
  ASSERT_OK(fs_->Rename(kRootIno, "src", kRootIno, "dst", 0));
  ASSERT_OK_AND_ASSIGN(Attr v, fs_->GetAttr(victim.ino));
  EXPECT_EQ(v.nlink, 1u);
  EXPECT_EQ(v.ctime_ns, t);
  EXPECT_EQ(ReadAll(*fs_, victim.ino), "kept");
  ASSERT_OK_AND_ASSIGN(Attr dst, fs_->Lookup(kRootIno, "dst"));
  EXPECT_EQ(dst.ino, src.ino);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameDirectoryOverEmptyDirectoryReplacesIt) {
  Attr a = MkDir(kRootIno, "a");
  Attr src = MkDir(a.ino, "src");
  Touch(src.ino, "x");
  Attr b = MkDir(kRootIno, "b");
  Attr victim = MkDir(b.ino, "dst");
  ASSERT_OK(fs_->Rename(a.ino, "src", b.ino, "dst", 0));
  ASSERT_OK_AND_ASSIGN(Attr now, fs_->Lookup(b.ino, "dst"));
  EXPECT_EQ(now.ino, src.ino);
  EXPECT_CODE(fs_->GetAttr(victim.ino), Code::kNotFound);
  EXPECT_EQ(Nlink(a.ino), 2u);
  EXPECT_EQ(Nlink(b.ino), 3u);
  EXPECT_EQ(Names(now.ino), std::vector<std::string>{"x"});
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameDirectoryOverEmptyDirectoryInSameParent) {
  Attr src = MkDir(kRootIno, "src");
  MkDir(kRootIno, "dst");
  EXPECT_EQ(Nlink(kRootIno), 4u);
  ASSERT_OK(fs_->Rename(kRootIno, "src", kRootIno, "dst", 0));
  EXPECT_EQ(Nlink(kRootIno), 3u);
  EXPECT_EQ(Names(kRootIno), std::vector<std::string>{"dst"});
  ASSERT_OK_AND_ASSIGN(Attr now, fs_->Lookup(kRootIno, "dst"));
  EXPECT_EQ(now.ino, src.ino);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameDirectoryOverNonEmptyDirectoryIsNotEmpty) {
  Attr src = MkDir(kRootIno, "src");
  Attr dst = MkDir(kRootIno, "dst");
  Touch(dst.ino, "f");
  EXPECT_CODE(fs_->Rename(kRootIno, "src", kRootIno, "dst", 0), Code::kNotEmpty);
  ASSERT_OK_AND_ASSIGN(Attr s, fs_->Lookup(kRootIno, "src"));
  EXPECT_EQ(s.ino, src.ino);
  EXPECT_EQ(Names(dst.ino), std::vector<std::string>{"f"});
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameDirectoryOverItsOwnParentIsNotEmpty) {
  Attr a = MkDir(kRootIno, "a");
  MkDir(a.ino, "b");
  // "a" holds "b", so it cannot be replaced by it.
  EXPECT_CODE(fs_->Rename(a.ino, "b", kRootIno, "a", 0), Code::kNotEmpty);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameFileOverDirectoryIsIsDir) {
  Touch(kRootIno, "f");
  MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->Rename(kRootIno, "f", kRootIno, "d", 0), Code::kIsDir);
  EXPECT_EQ(Names(kRootIno), (std::vector<std::string>{"d", "f"}));
}

TEST_F(NamespaceTest, RenameDirectoryOverFileIsNotDir) {
  Touch(kRootIno, "f");
  MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->Rename(kRootIno, "d", kRootIno, "f", 0), Code::kNotDir);
  EXPECT_EQ(Names(kRootIno), (std::vector<std::string>{"d", "f"}));
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameDirectoryIntoItselfIsInvalid) {
  Attr a = MkDir(kRootIno, "a");
  Attr b = MkDir(a.ino, "b");
  Attr c = MkDir(b.ino, "c");
  EXPECT_CODE(fs_->Rename(kRootIno, "a", a.ino, "x", 0), Code::kInvalid);
  EXPECT_CODE(fs_->Rename(kRootIno, "a", b.ino, "x", 0), Code::kInvalid);
  EXPECT_CODE(fs_->Rename(kRootIno, "a", c.ino, "x", 0), Code::kInvalid);
  EXPECT_CODE(fs_->Rename(a.ino, "b", c.ino, "b", 0), Code::kInvalid);
  EXPECT_EQ(Names(kRootIno), std::vector<std::string>{"a"});
  EXPECT_EQ(Names(c.ino), std::vector<std::string>{});
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameExchangeDirectoryIntoItsOwnSubdirectoryIsInvalid) {
  Attr a = MkDir(kRootIno, "a");
  Touch(a.ino, "f");
  // Exchanging "a" with a file inside it would put "a" below itself.
  EXPECT_CODE(fs_->Rename(kRootIno, "a", a.ino, "f", RENAME_EXCHANGE), Code::kInvalid);
  EXPECT_CODE(fs_->Rename(a.ino, "f", kRootIno, "a", RENAME_EXCHANGE), Code::kInvalid);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameNoReplaceOverExistingNameIsExists) {
  Attr f = Touch(kRootIno, "f");
  Attr g = Touch(kRootIno, "g");
  EXPECT_CODE(fs_->Rename(kRootIno, "f", kRootIno, "g", RENAME_NOREPLACE), Code::kExists);
  EXPECT_EQ(fs_->Lookup(kRootIno, "f")->ino, f.ino);
  EXPECT_EQ(fs_->Lookup(kRootIno, "g")->ino, g.ino);
}

TEST_F(NamespaceTest, RenameNoReplaceToFreeNameMoves) {
  Attr f = Touch(kRootIno, "f");
  ASSERT_OK(fs_->Rename(kRootIno, "f", kRootIno, "h", RENAME_NOREPLACE));
  EXPECT_EQ(fs_->Lookup(kRootIno, "h")->ino, f.ino);
  EXPECT_CODE(fs_->Lookup(kRootIno, "f"), Code::kNotFound);
}

TEST_F(NamespaceTest, RenameExchangeSwapsTwoFiles) {
  Attr a = MkDir(kRootIno, "a");
  Attr f = WriteFile(kRootIno, "f", "eff");
  Attr g = WriteFile(a.ino, "g", "gee");
  int64_t t = Tick();
  ASSERT_OK(fs_->Rename(kRootIno, "f", a.ino, "g", RENAME_EXCHANGE));
  ASSERT_OK_AND_ASSIGN(Attr at_f, fs_->Lookup(kRootIno, "f"));
  ASSERT_OK_AND_ASSIGN(Attr at_g, fs_->Lookup(a.ino, "g"));
  EXPECT_EQ(at_f.ino, g.ino);
  EXPECT_EQ(at_g.ino, f.ino);
  EXPECT_EQ(ReadAll(*fs_, at_f.ino), "gee");
  EXPECT_EQ(ReadAll(*fs_, at_g.ino), "eff");
  EXPECT_EQ(at_f.ctime_ns, t);
  EXPECT_EQ(at_g.ctime_ns, t);
  EXPECT_EQ(at_f.nlink, 1u);
  EXPECT_EQ(at_g.nlink, 1u);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameExchangeWithMissingNameIsNotFound) {
  Touch(kRootIno, "f");
  EXPECT_CODE(fs_->Rename(kRootIno, "f", kRootIno, "missing", RENAME_EXCHANGE), Code::kNotFound);
  EXPECT_CODE(fs_->Rename(kRootIno, "missing", kRootIno, "f", RENAME_EXCHANGE), Code::kNotFound);
  EXPECT_EQ(Names(kRootIno), std::vector<std::string>{"f"});
}

TEST_F(NamespaceTest, RenameExchangeDirectoriesAcrossParentsKeepsLinkCounts) {
  Attr p1 = MkDir(kRootIno, "p1");
  Attr p2 = MkDir(kRootIno, "p2");
  Attr a = MkDir(p1.ino, "a");
  Attr b = MkDir(p2.ino, "b");
  MkDir(b.ino, "inside_b");
  ASSERT_OK(fs_->Rename(p1.ino, "a", p2.ino, "b", RENAME_EXCHANGE));
  EXPECT_EQ(fs_->Lookup(p1.ino, "a")->ino, b.ino);
  EXPECT_EQ(fs_->Lookup(p2.ino, "b")->ino, a.ino);
  EXPECT_EQ(Nlink(p1.ino), 3u);
  EXPECT_EQ(Nlink(p2.ino), 3u);
  EXPECT_EQ(Nlink(b.ino), 3u);
  EXPECT_EQ(fs_->Lookup(b.ino, "..")->ino, p1.ino);
  EXPECT_EQ(fs_->Lookup(a.ino, "..")->ino, p2.ino);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameExchangeDirectoryWithFileAcrossParentsMovesTheLink) {
  Attr p1 = MkDir(kRootIno, "p1");
  Attr p2 = MkDir(kRootIno, "p2");
  Attr d = MkDir(p1.ino, "d");
  Attr f = Touch(p2.ino, "f");
  ASSERT_OK(fs_->Rename(p1.ino, "d", p2.ino, "f", RENAME_EXCHANGE));
  EXPECT_EQ(fs_->Lookup(p1.ino, "d")->ino, f.ino);
  EXPECT_EQ(fs_->Lookup(p2.ino, "f")->ino, d.ino);
  EXPECT_EQ(Nlink(p1.ino), 2u);
  EXPECT_EQ(Nlink(p2.ino), 3u);
  EXPECT_EQ(fs_->Lookup(d.ino, "..")->ino, p2.ino);
  ExpectTreeConsistent();
  // And back again, with the file as the source.
  ASSERT_OK(fs_->Rename(p1.ino, "d", p2.ino, "f", RENAME_EXCHANGE));
  EXPECT_EQ(fs_->Lookup(p1.ino, "d")->ino, d.ino);
  EXPECT_EQ(Nlink(p1.ino), 3u);
  EXPECT_EQ(Nlink(p2.ino), 2u);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameExchangeInSameDirectorySwapsTypes) {
  Attr d = MkDir(kRootIno, "d");
  Attr f = Touch(kRootIno, "f");
  ASSERT_OK(fs_->Rename(kRootIno, "d", kRootIno, "f", RENAME_EXCHANGE));
  ASSERT_OK_AND_ASSIGN(auto entries, fs_->ReadDir(kRootIno));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[2].name, "d");
  EXPECT_EQ(entries[2].ino, f.ino);
  EXPECT_EQ(entries[2].mode, static_cast<uint32_t>(S_IFREG));
  EXPECT_EQ(entries[3].name, "f");
  EXPECT_EQ(entries[3].ino, d.ino);
  EXPECT_EQ(entries[3].mode, static_cast<uint32_t>(S_IFDIR));
  EXPECT_EQ(Nlink(kRootIno), 3u);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameWithBothFlagsIsInvalid) {
  Touch(kRootIno, "f");
  Touch(kRootIno, "g");
  EXPECT_CODE(fs_->Rename(kRootIno, "f", kRootIno, "g", RENAME_NOREPLACE | RENAME_EXCHANGE),
              Code::kInvalid);
  EXPECT_CODE(fs_->Rename(kRootIno, "f", kRootIno, "g", RENAME_WHITEOUT), Code::kInvalid);
}

TEST_F(NamespaceTest, RenameBetweenHardLinksOfSameInodeIsANoOp) {
  Attr f = Touch(kRootIno, "f");
  ASSERT_OK(fs_->Link(f.ino, kRootIno, "g").status());
  ASSERT_OK(fs_->Rename(kRootIno, "f", kRootIno, "g", 0));
  // Both names survive and the inode keeps both links.
  EXPECT_EQ(fs_->Lookup(kRootIno, "f")->ino, f.ino);
  EXPECT_EQ(fs_->Lookup(kRootIno, "g")->ino, f.ino);
  EXPECT_EQ(Nlink(f.ino), 2u);
  ASSERT_OK(fs_->Rename(kRootIno, "g", kRootIno, "f", RENAME_EXCHANGE));
  EXPECT_EQ(Nlink(f.ino), 2u);
  EXPECT_EQ(Names(kRootIno), (std::vector<std::string>{"f", "g"}));
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameToItsOwnNameIsANoOp) {
  Attr d = MkDir(kRootIno, "d");
  Attr f = Touch(kRootIno, "f");
  ASSERT_OK(fs_->Rename(kRootIno, "f", kRootIno, "f", 0));
  ASSERT_OK(fs_->Rename(kRootIno, "d", kRootIno, "d", 0));
  EXPECT_EQ(fs_->Lookup(kRootIno, "f")->ino, f.ino);
  EXPECT_EQ(fs_->Lookup(kRootIno, "d")->ino, d.ino);
  ExpectTreeConsistent();
}

TEST_F(NamespaceTest, RenameMissingSourceIsNotFound) {
  EXPECT_CODE(fs_->Rename(kRootIno, "nope", kRootIno, "x", 0), Code::kNotFound);
  EXPECT_CODE(fs_->Rename(999999, "nope", kRootIno, "x", 0), Code::kNotFound);
}

TEST_F(NamespaceTest, RenameWithFileAsParentIsNotDir) {
  Attr f = Touch(kRootIno, "f");
  EXPECT_CODE(fs_->Rename(kRootIno, "f", f.ino, "x", 0), Code::kNotDir);
  EXPECT_CODE(fs_->Rename(f.ino, "x", kRootIno, "y", 0), Code::kNotDir);
}

TEST_F(NamespaceTest, RenameOfDotOrDotDotIsBusy) {
  Attr d = MkDir(kRootIno, "d");
  EXPECT_CODE(fs_->Rename(d.ino, ".", kRootIno, "x", 0), Code::kBusy);
  EXPECT_CODE(fs_->Rename(kRootIno, "d", d.ino, "..", 0), Code::kBusy);
}

TEST_F(NamespaceTest, ParentLinkCountIsTwoPlusSubdirectoriesAfterEveryOperation) {
  Attr a = MkDir(kRootIno, "a");
  ExpectTreeConsistent();
  Attr b = MkDir(kRootIno, "b");
  MkDir(a.ino, "a1");
  MkDir(a.ino, "a2");
  Touch(a.ino, "file");
  ExpectTreeConsistent();
  ASSERT_OK(fs_->Rename(a.ino, "a1", b.ino, "b1", 0));
  ExpectTreeConsistent();
  ASSERT_OK(fs_->Rename(a.ino, "a2", b.ino, "b1", 0));  // over an empty directory
  ExpectTreeConsistent();
  ASSERT_OK(fs_->Rename(a.ino, "file", b.ino, "file", 0));
  ExpectTreeConsistent();
  MkDir(a.ino, "x");
  ASSERT_OK(fs_->Rename(a.ino, "x", b.ino, "file", RENAME_EXCHANGE));
  ExpectTreeConsistent();
  ASSERT_OK(fs_->Rename(kRootIno, "b", a.ino, "b", 0));
  ExpectTreeConsistent();
  ASSERT_OK_AND_ASSIGN(Attr file, fs_->Lookup(a.ino, "x"));
  ASSERT_OK(fs_->Link(file.ino, kRootIno, "link").status());
  ExpectTreeConsistent();
  ASSERT_OK(fs_->Unlink(a.ino, "x"));
  ASSERT_OK(fs_->RmDir(b.ino, "b1"));
  ASSERT_OK(fs_->RmDir(b.ino, "file"));
  ExpectTreeConsistent();
  EXPECT_EQ(Nlink(kRootIno), 3u);
  EXPECT_EQ(Nlink(a.ino), 3u);
  EXPECT_EQ(Nlink(b.ino), 2u);
}

// --- ReadDir

TEST_F(NamespaceTest, ReadDirListsDotsThenEntriesSortedByNameWithOffsets) {
  Attr dir = MkDir(kRootIno, "d");
  Attr f = Touch(dir.ino, "zeta");
  Attr sub = MkDir(dir.ino, "alpha");
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(dir.ino, "Mid", "zeta", Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr fifo, fs_->MkNod(dir.ino, "beta", S_IFIFO | 0644, 0, Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr sock, fs_->MkNod(dir.ino, "gamma", S_IFSOCK | 0644, 0, Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr chr, fs_->MkNod(dir.ino, "chr", S_IFCHR | 0644, 1, Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr blk, fs_->MkNod(dir.ino, "blk", S_IFBLK | 0644, 2, Cred{}));

  ASSERT_OK_AND_ASSIGN(std::vector<DirEntry> entries, fs_->ReadDir(dir.ino));
  struct Want {
    std::string name;
    InodeId ino;
    uint32_t type;
  };
  // Sorted bytewise: upper case before lower case.
  std::vector<Want> want = {
      {".", dir.ino, S_IFDIR},    {"..", kRootIno, S_IFDIR},  {"Mid", link.ino, S_IFLNK},
      {"alpha", sub.ino, S_IFDIR}, {"beta", fifo.ino, S_IFIFO}, {"blk", blk.ino, S_IFBLK},
      {"chr", chr.ino, S_IFCHR},  {"gamma", sock.ino, S_IFSOCK}, {"zeta", f.ino, S_IFREG},
  };
  ASSERT_EQ(entries.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(entries[i].name, want[i].name) << i;
    EXPECT_EQ(entries[i].ino, want[i].ino) << i;
    EXPECT_EQ(entries[i].mode, want[i].type) << i;
    EXPECT_EQ(entries[i].offset, i + 1) << i;
  }
}

TEST_F(NamespaceTest, ReadDirOfEmptyDirectoryHasOnlyDots) {
  Attr dir = MkDir(kRootIno, "d");
  ASSERT_OK_AND_ASSIGN(std::vector<DirEntry> entries, fs_->ReadDir(dir.ino));
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, ".");
  EXPECT_EQ(entries[0].ino, dir.ino);
  EXPECT_EQ(entries[0].offset, 1u);
  EXPECT_EQ(entries[1].name, "..");
  EXPECT_EQ(entries[1].ino, kRootIno);
  EXPECT_EQ(entries[1].offset, 2u);
}

TEST_F(NamespaceTest, ReadDirOfRootHasRootAsDotDot) {
  ASSERT_OK_AND_ASSIGN(std::vector<DirEntry> entries, fs_->ReadDir(kRootIno));
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].ino, kRootIno);
  EXPECT_EQ(entries[1].ino, kRootIno);
}

TEST_F(NamespaceTest, ReadDirReflectsRemovalsAndRenames) {
  Touch(kRootIno, "a");
  Touch(kRootIno, "b");
  Touch(kRootIno, "c");
  ASSERT_OK(fs_->Unlink(kRootIno, "b"));
  ASSERT_OK(fs_->Rename(kRootIno, "a", kRootIno, "d", 0));
  ASSERT_OK_AND_ASSIGN(std::vector<DirEntry> entries, fs_->ReadDir(kRootIno));
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[2].name, "c");
  EXPECT_EQ(entries[2].offset, 3u);
  EXPECT_EQ(entries[3].name, "d");
  EXPECT_EQ(entries[3].offset, 4u);
}

TEST_F(NamespaceTest, ReadDirOnFileIsNotDir) {
  Attr f = Touch(kRootIno, "f");
  EXPECT_CODE(fs_->ReadDir(f.ino), Code::kNotDir);
  EXPECT_CODE(fs_->ReadDir(31337), Code::kNotFound);
}

// --- Resolve

TEST_F(NamespaceTest, ResolveWalksPathComponents) {
  Attr a = MkDir(kRootIno, "a");
  Attr b = MkDir(a.ino, "b");
  Attr f = Touch(b.ino, "f");
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->Resolve("/a/b/f"));
  EXPECT_EQ(got.ino, f.ino);
  ASSERT_OK_AND_ASSIGN(Attr rel, fs_->Resolve("a//b/./f"));
  EXPECT_EQ(rel.ino, f.ino);
  ASSERT_OK_AND_ASSIGN(Attr up, fs_->Resolve("/a/b/../b/.."));
  EXPECT_EQ(up.ino, a.ino);
  ASSERT_OK_AND_ASSIGN(Attr root, fs_->Resolve("/"));
  EXPECT_EQ(root.ino, kRootIno);
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->Resolve("/a/b/"));
  EXPECT_EQ(dir.ino, b.ino);
}

TEST_F(NamespaceTest, ResolveFollowsSymlinksInEveryComponent) {
  Attr a = MkDir(kRootIno, "a");
  Attr b = MkDir(a.ino, "b");
  Attr f = Touch(b.ino, "f");
  ASSERT_OK(fs_->Symlink(kRootIno, "abs", "/a/b", Cred{}).status());
  ASSERT_OK(fs_->Symlink(kRootIno, "rel", "a/b", Cred{}).status());
  ASSERT_OK(fs_->Symlink(b.ino, "up", "../b/f", Cred{}).status());
  ASSERT_OK(fs_->Symlink(kRootIno, "chain", "rel", Cred{}).status());
  EXPECT_EQ(fs_->Resolve("/abs/f")->ino, f.ino);
  EXPECT_EQ(fs_->Resolve("/rel/f")->ino, f.ino);
  EXPECT_EQ(fs_->Resolve("/chain/f")->ino, f.ino);
  EXPECT_EQ(fs_->Resolve("/a/b/up")->ino, f.ino);
  EXPECT_EQ(fs_->Resolve("/chain/up")->ino, f.ino);
  EXPECT_EQ(fs_->Resolve("/abs")->ino, b.ino);
}

TEST_F(NamespaceTest, ResolveWithoutFollowLastReturnsTheSymlink) {
  Attr a = MkDir(kRootIno, "a");
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(kRootIno, "l", "a", Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->Resolve("/l", /*follow_last=*/false));
  EXPECT_EQ(got.ino, link.ino);
  EXPECT_TRUE(S_ISLNK(got.mode));
  ASSERT_OK_AND_ASSIGN(Attr followed, fs_->Resolve("/l", /*follow_last=*/true));
  EXPECT_EQ(followed.ino, a.ino);
}

TEST_F(NamespaceTest, ResolveSymlinkLoopIsLoop) {
  ASSERT_OK(fs_->Symlink(kRootIno, "x", "y", Cred{}).status());
  ASSERT_OK(fs_->Symlink(kRootIno, "y", "/x", Cred{}).status());
  ASSERT_OK(fs_->Symlink(kRootIno, "self", "self", Cred{}).status());
  EXPECT_CODE(fs_->Resolve("/x"), Code::kLoop);
  EXPECT_CODE(fs_->Resolve("/self"), Code::kLoop);
  EXPECT_CODE(fs_->Resolve("/self/z"), Code::kLoop);
  // Not following the last component never loops.
  ASSERT_OK_AND_ASSIGN(Attr self, fs_->Resolve("/self", /*follow_last=*/false));
  EXPECT_TRUE(S_ISLNK(self.mode));
}

TEST_F(NamespaceTest, ResolveFollowsFortySymlinksButNotFortyOne) {
  Attr f = Touch(kRootIno, "f");
  // l1 -> l2 -> ... -> l40 -> f: forty links to follow.
  for (int i = 1; i <= 40; ++i) {
    std::string target = i == 40 ? "f" : "l" + std::to_string(i + 1);
    ASSERT_OK(fs_->Symlink(kRootIno, "l" + std::to_string(i), target, Cred{}).status());
  }
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->Resolve("/l1"));
  EXPECT_EQ(got.ino, f.ino);
  ASSERT_OK(fs_->Symlink(kRootIno, "l0", "l1", Cred{}).status());
  EXPECT_CODE(fs_->Resolve("/l0"), Code::kLoop);
}

TEST_F(NamespaceTest, ResolveMissingComponentIsNotFound) {
  MkDir(kRootIno, "a");
  EXPECT_CODE(fs_->Resolve("/a/missing"), Code::kNotFound);
  EXPECT_CODE(fs_->Resolve("/missing/a"), Code::kNotFound);
  ASSERT_OK(fs_->Symlink(kRootIno, "dangling", "nowhere", Cred{}).status());
  EXPECT_CODE(fs_->Resolve("/dangling"), Code::kNotFound);
  EXPECT_OK(fs_->Resolve("/dangling", /*follow_last=*/false).status());
}

TEST_F(NamespaceTest, ResolveThroughFileIsNotDir) {
  Touch(kRootIno, "f");
  EXPECT_CODE(fs_->Resolve("/f/x"), Code::kNotDir);
}

TEST_F(NamespaceTest, ResolveWithTrailingSlashRequiresADirectory) {
  // Like stat("f/") on Linux: ENOTDIR for a file, and a symlink before the
  // slash is followed even without follow_last.
  Attr f = Touch(kRootIno, "f");
  Attr d = MkDir(kRootIno, "d");
  ASSERT_OK(fs_->Symlink(kRootIno, "to_d", "d", Cred{}).status());
  ASSERT_OK(fs_->Symlink(kRootIno, "to_f", "f", Cred{}).status());
  EXPECT_CODE(fs_->Resolve("/f/"), Code::kNotDir);
  EXPECT_CODE(fs_->Resolve("/to_f/"), Code::kNotDir);
  EXPECT_EQ(fs_->Resolve("/f")->ino, f.ino);
  EXPECT_EQ(fs_->Resolve("/d//")->ino, d.ino);
  ASSERT_OK_AND_ASSIGN(Attr via_link, fs_->Resolve("/to_d/", /*follow_last=*/false));
  EXPECT_EQ(via_link.ino, d.ino);
}

// --- SetAttr

TEST_F(NamespaceTest, SetAttrModeChangesPermissionBitsOnlyAndSetsCtime) {
  Attr f = Touch(kRootIno, "f");
  int64_t t = Tick();
  AttrChanges changes;
  changes.mode = S_IFDIR | 04711;
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->SetAttr(f.ino, changes));
  EXPECT_EQ(got.mode, S_IFREG | 04711u);
  EXPECT_EQ(got.ctime_ns, t);
  EXPECT_EQ(got.mtime_ns, f.mtime_ns);
  EXPECT_EQ(got.atime_ns, f.atime_ns);
  EXPECT_EQ(Stat(f.ino).mode, S_IFREG | 04711u);
}

TEST_F(NamespaceTest, SetAttrModeOnDirectoryKeepsItADirectory) {
  Attr d = MkDir(kRootIno, "d");
  AttrChanges changes;
  changes.mode = 0700;
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->SetAttr(d.ino, changes));
  EXPECT_EQ(got.mode, S_IFDIR | 0700u);
  EXPECT_EQ(got.nlink, 2u);
}

TEST_F(NamespaceTest, SetAttrUidAndGid) {
  Attr f = Touch(kRootIno, "f");
  int64_t t = Tick();
  AttrChanges changes;
  changes.uid = 1234;
  changes.gid = 5678;
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->SetAttr(f.ino, changes));
  EXPECT_EQ(got.uid, 1234u);
  EXPECT_EQ(got.gid, 5678u);
  EXPECT_EQ(got.ctime_ns, t);
  AttrChanges only_gid;
  only_gid.gid = 42;
  ASSERT_OK_AND_ASSIGN(Attr again, fs_->SetAttr(f.ino, only_gid));
  EXPECT_EQ(again.uid, 1234u);
  EXPECT_EQ(again.gid, 42u);
}

TEST_F(NamespaceTest, SetAttrTimesKeepNanosecondsAndCtimeBecomesNow) {
  Attr f = Touch(kRootIno, "f");
  int64_t t = Tick();
  AttrChanges changes;
  changes.atime_ns = 1'234'567'890'123'456'789;
  changes.mtime_ns = 987'654'321'000'000'001;
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->SetAttr(f.ino, changes));
  EXPECT_EQ(got.atime_ns, 1'234'567'890'123'456'789);
  EXPECT_EQ(got.mtime_ns, 987'654'321'000'000'001);
  EXPECT_EQ(got.ctime_ns, t);
  Attr stored = Stat(f.ino);
  EXPECT_EQ(stored.atime_ns, 1'234'567'890'123'456'789);
  EXPECT_EQ(stored.mtime_ns, 987'654'321'000'000'001);
  EXPECT_EQ(stored.ctime_ns, t);
}

TEST_F(NamespaceTest, SetAttrTimesBeforeTheEpoch) {
  Attr f = Touch(kRootIno, "f");
  AttrChanges changes;
  changes.mtime_ns = -1'500'000'001;
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->SetAttr(f.ino, changes));
  EXPECT_EQ(got.mtime_ns, -1'500'000'001);
}

TEST_F(NamespaceTest, SetAttrExplicitCtimeIsKept) {
  Attr f = Touch(kRootIno, "f");
  Tick();
  AttrChanges changes;
  changes.ctime_ns = 111'000'000'222;
  changes.atime_ns = 5;
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->SetAttr(f.ino, changes));
  EXPECT_EQ(got.ctime_ns, 111'000'000'222);
  EXPECT_EQ(got.atime_ns, 5);
}

TEST_F(NamespaceTest, SetAttrWithNoChangesOnlyTouchesCtime) {
  Attr f = Touch(kRootIno, "f");
  int64_t t = Tick();
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->SetAttr(f.ino, AttrChanges{}));
  EXPECT_EQ(got.mode, f.mode);
  EXPECT_EQ(got.mtime_ns, f.mtime_ns);
  EXPECT_EQ(got.ctime_ns, t);
}

TEST_F(NamespaceTest, SetAttrOfUnknownInodeIsNotFound) {
  AttrChanges changes;
  changes.mode = 0644;
  EXPECT_CODE(fs_->SetAttr(8888888, changes), Code::kNotFound);
}

TEST_F(NamespaceTest, SetAttrSizeOfDirectoryIsIsDir) {
  Attr d = MkDir(kRootIno, "d");
  AttrChanges changes;
  changes.size = 0;
  EXPECT_CODE(fs_->SetAttr(d.ino, changes), Code::kIsDir);
}

TEST_F(NamespaceTest, SetAttrOnSymlinkChangesOwner) {
  ASSERT_OK_AND_ASSIGN(Attr l, fs_->Symlink(kRootIno, "l", "t", Cred{}));
  AttrChanges changes;
  changes.uid = 7;
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->SetAttr(l.ino, changes));
  EXPECT_EQ(got.uid, 7u);
  ASSERT_OK_AND_ASSIGN(std::string target, fs_->ReadLink(l.ino));
  EXPECT_EQ(target, "t");
}

// --- Ownership

TEST_F(NamespaceTest, CredSetsOwnerOfNewInodes) {
  const Cred cred{1001, 2002};
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, "d", 0755, cred));
  ASSERT_OK_AND_ASSIGN(Attr file, fs_->Create(kRootIno, "f", 0644, cred));
  ASSERT_OK(fs_->Release(file.ino));
  ASSERT_OK_AND_ASSIGN(Attr node, fs_->MkNod(kRootIno, "n", S_IFIFO | 0644, 0, cred));
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(kRootIno, "l", "f", cred));
  for (const Attr& a : {dir, file, node, link}) {
    EXPECT_EQ(a.uid, 1001u) << a.ino;
    EXPECT_EQ(a.gid, 2002u) << a.ino;
    Attr stored = Stat(a.ino);
    EXPECT_EQ(stored.uid, 1001u) << a.ino;
    EXPECT_EQ(stored.gid, 2002u) << a.ino;
  }
  // The parent's owner does not change.
  EXPECT_EQ(Stat(kRootIno).uid, 0u);
  // A hard link keeps the inode's owner.
  ASSERT_OK_AND_ASSIGN(Attr linked, fs_->Link(file.ino, dir.ino, "g"));
  EXPECT_EQ(linked.uid, 1001u);
  EXPECT_EQ(linked.gid, 2002u);
}

TEST_F(NamespaceTest, NewInodesCarryCreationTime) {
  int64_t t = Tick();
  ASSERT_OK_AND_ASSIGN(Attr file, fs_->Create(kRootIno, "f", 0644, Cred{}));
  ASSERT_OK(fs_->Release(file.ino));
  EXPECT_EQ(file.atime_ns, t);
  EXPECT_EQ(file.mtime_ns, t);
  EXPECT_EQ(file.ctime_ns, t);
  Attr root = Stat(kRootIno);
  EXPECT_EQ(root.mtime_ns, t);
  EXPECT_EQ(root.ctime_ns, t);
}

TEST_F(NamespaceTest, NamespaceSurvivesReopeningTheStore) {
  Attr a = MkDir(kRootIno, "a");
  Attr f = WriteFile(a.ino, "f", "persist");
  ASSERT_OK(fs_->Link(f.ino, kRootIno, "hard").status());
  ASSERT_OK(fs_->Symlink(kRootIno, "l", "a/f", Cred{}).status());
  OpenStore(StoreOptions{});
  ASSERT_OK_AND_ASSIGN(Attr got, fs_->Resolve("/l"));
  EXPECT_EQ(got.ino, f.ino);
  EXPECT_EQ(got.nlink, 2u);
  EXPECT_EQ(ReadAll(*fs_, f.ino), "persist");
  EXPECT_EQ(Names(kRootIno), (std::vector<std::string>{"a", "hard", "l"}));
  EXPECT_EQ(Nlink(a.ino), 2u);
  ExpectTreeConsistent();
}

}  // namespace
}  // namespace strata
