// Images and the host base, through the library: a fake host tree in a
// temporary directory stands in for "/".
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "strata/archive.h"
#include "strata/host_base.h"
#include "strata/import.h"
#include "testing/raw_db.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

class ImageTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    host_ = dir_.File("host");
    Put("usr/bin/tool", RandomBytes(200'000), 0755);
    Put("usr/share/doc/readme", "read me\n", 0644);
    Put("etc/config", "key=value\n", 0644);
    Put("etc/shadow", "root:secret\n", 0644);  // world-readable here, still never exposed
    Put("etc/private", "only root\n", 0600);
    Put("var/lib/dpkg/status", "Package: x\n", 0644);
    Put("home/user/notes", "private\n", 0644);
    std::filesystem::create_symlink("usr/bin", host_ + "/bin");
  }

  static std::string RandomBytes(size_t n) {
    std::mt19937 rng(42);
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    return s;
  }

  void Put(const std::string& rel, const std::string& content, mode_t mode) {
    std::string path = host_ + "/" + rel;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << content;
    chmod(path.c_str(), mode);
  }

  std::unique_ptr<Filesystem> SessionFs(const std::string& name) {
    auto info = store_->GetSession(name);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    auto fs = store_->OpenFilesystem(View{info->branch, kHead});
    EXPECT_TRUE(fs.ok()) << fs.status().ToString();
    return std::move(fs).value();
  }

  std::string ReadPath(Filesystem& fs, const std::string& path) {
    auto attr = fs.Resolve(path);
    EXPECT_TRUE(attr.ok()) << path << ": " << attr.status().ToString();
    return attr.ok() ? ReadAll(fs, attr->ino) : "";
  }

  int64_t RealChunks() {
    return testing::RawDb(dir_.File("store.db")).Int("SELECT count(*) FROM chunks WHERE codec != 2");
  }

  // Host timestamps come from a clock that may lag by a tick: a change made
  // right after a base was taken could carry a ctime from before it.
  static StoreOptions Options(const std::string& path, bool read_only) {
    StoreOptions o;
    o.path = path;
    o.read_only = read_only;
    return o;
  }

  static void AfterTheBaseWasTaken() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }

  std::string host_;
};

TEST_F(ImageTest, HostBaseReadsWithoutCopyingAndWritesOnlyChangedBlocks) {
  bool indexed = false;
  ASSERT_OK_AND_ASSIGN(ImageInfo image, EnsureHostImage(*store_, host_, &indexed));
  EXPECT_TRUE(indexed);
  EXPECT_EQ(image.kind, "host");
  ASSERT_OK(store_->CreateSessionFromImage("s", kHostImage).status());
  auto fs = SessionFs("s");
  const std::string tool = RandomBytes(200'000);
  EXPECT_EQ(ReadPath(*fs, "/usr/bin/tool"), tool);
  EXPECT_EQ(ReadPath(*fs, "/bin/tool"), tool);  // the symlink, as on the host
  EXPECT_EQ(ReadPath(*fs, "/etc/config"), "key=value\n");
  EXPECT_EQ(ReadPath(*fs, "/var/lib/dpkg/status"), "Package: x\n");
  // Never exposed: secrets, files only root may read, private trees.
  EXPECT_CODE(fs->Resolve("/etc/shadow"), Code::kNotFound);
  EXPECT_CODE(fs->Resolve("/etc/private"), Code::kNotFound);
  EXPECT_CODE(fs->Resolve("/home/user"), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto tmp, fs->Resolve("/tmp"));
  EXPECT_EQ(tmp.mode & 07777, 01777u);
  ASSERT_OK_AND_ASSIGN(auto empty, fs->ReadDir(tmp.ino));
  EXPECT_EQ(empty.size(), 2u);  // . and ..
  // Only the files of /etc and dpkg's state hold bytes in the store; the rest
  // refers to the host.
  const int64_t copied = RealChunks();
  EXPECT_EQ(copied, 2);  // etc/config, var/lib/dpkg/status

  // A 10-byte write stores one block, not the 200 kB file.
  ASSERT_OK_AND_ASSIGN(auto attr, fs->Resolve("/usr/bin/tool"));
  ASSERT_OK(fs->Open(attr.ino));
  ASSERT_OK(fs->Write(attr.ino, 70'000, {reinterpret_cast<const uint8_t*>("0123456789"), 10}).status());
  ASSERT_OK(fs->Release(attr.ino));
  ASSERT_OK(fs->FlushAll());
  EXPECT_EQ(RealChunks(), copied + 1);
  std::string expected = tool;
  expected.replace(70'000, 10, "0123456789");
  EXPECT_EQ(ReadPath(*fs, "/usr/bin/tool"), expected);
  // The host is untouched, and so is a second session from the same base.
  std::ifstream host_file(host_ + "/usr/bin/tool");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(host_file), {}), tool);
  ASSERT_OK(store_->CreateSessionFromImage("t", kHostImage).status());
  EXPECT_EQ(ReadPath(*SessionFs("t"), "/usr/bin/tool"), tool);
  // Deleting a host file only changes the session.
  ASSERT_OK_AND_ASSIGN(auto doc, fs->Resolve("/usr/share/doc"));
  ASSERT_OK(fs->Unlink(doc.ino, "readme"));
  EXPECT_TRUE(std::filesystem::exists(host_ + "/usr/share/doc/readme"));
  EXPECT_TRUE(store_->CheckIntegrity()->empty());
}

TEST_F(ImageTest, AnUnchangedHostReusesItsIndexAndAChangedOneIsIndexedAgain) {
  ASSERT_OK_AND_ASSIGN(ImageInfo first, EnsureHostImage(*store_, host_));
  bool indexed = true;
  ASSERT_OK_AND_ASSIGN(ImageInfo again, EnsureHostImage(*store_, host_, &indexed));
  EXPECT_FALSE(indexed);
  EXPECT_EQ(again.branch, first.branch);
  ASSERT_OK(store_->CreateSessionFromImage("old", kHostImage).status());
  // A package upgrade replaces files: the directory changes.
  AfterTheBaseWasTaken();
  Put("usr/bin/new-tool", "#!/bin/sh\n", 0755);
  ASSERT_OK_AND_ASSIGN(ImageInfo fresh, EnsureHostImage(*store_, host_, &indexed));
  EXPECT_TRUE(indexed);
  EXPECT_NE(fresh.branch, first.branch);
  ASSERT_OK(store_->CreateSessionFromImage("new", kHostImage).status());
  EXPECT_TRUE(SessionFs("new")->Resolve("/usr/bin/new-tool").ok());
  // The old session's /usr/bin was never listed, and changed after its base
  // was taken: an error, never the new contents.
  EXPECT_CODE(SessionFs("old")->Resolve("/usr/bin/new-tool"), Code::kIoError);
  // The old index stays, superseded, while a session uses it; then gc takes it.
  ASSERT_OK_AND_ASSIGN(SessionUsage old_usage, store_->GetSessionUsage("old"));
  EXPECT_EQ(old_usage.base_image.rfind("host.superseded-", 0), 0u) << old_usage.base_image;
  ASSERT_OK_AND_ASSIGN(SessionUsage new_usage, store_->GetSessionUsage("new"));
  EXPECT_EQ(new_usage.base_image, "host");
  EXPECT_EQ(store_->ListImages()->size(), 2u);
  ASSERT_OK(store_->RemoveSession("old"));
  ASSERT_OK(store_->CollectGarbage().status());
  ASSERT_OK_AND_ASSIGN(auto images, store_->ListImages());
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].branch, fresh.branch);
  testing::RawDb raw(dir_.File("store.db"));
  EXPECT_EQ(raw.Int("SELECT count(*) FROM host_entries WHERE branch = " +
                    std::to_string(first.branch)),
            0);
  EXPECT_GT(raw.Int("SELECT count(*) FROM host_entries WHERE branch = " +
                    std::to_string(fresh.branch)),
            0);
}

TEST_F(ImageTest, AHostFileChangedInPlaceIsAnErrorNotWrongBytes) {
  ASSERT_OK(EnsureHostImage(*store_, host_).status());
  ASSERT_OK(store_->CreateSessionFromImage("s", kHostImage).status());
  auto fs = SessionFs("s");
  ASSERT_OK_AND_ASSIGN(auto readme, fs->Resolve("/usr/share/doc/readme"));
  ASSERT_OK_AND_ASSIGN(auto tool, fs->Resolve("/usr/bin/tool"));
  ASSERT_OK(fs->Open(readme.ino));  // its blocks refer to the host now, none read
  ASSERT_OK(fs->Release(readme.ino));
  AfterTheBaseWasTaken();
  std::ofstream(host_ + "/usr/share/doc/readme", std::ios::app) << "edited on the host\n";
  std::ofstream(host_ + "/usr/bin/tool", std::ios::app) << "edited on the host\n";
  std::string buf(64, '\0');
  // Read before: the reference finds the host file changed.
  auto n = fs->Read(readme.ino, 0, {reinterpret_cast<uint8_t*>(buf.data()), buf.size()});
  EXPECT_CODE(n, Code::kIoError);
  EXPECT_NE(n.status().message().find("changed since it was indexed"), std::string::npos)
      << n.status().message();
  // Never read: its blocks are not made from a file that changed.
  n = fs->Read(tool.ino, 0, {reinterpret_cast<uint8_t*>(buf.data()), buf.size()});
  EXPECT_CODE(n, Code::kIoError);
  EXPECT_NE(n.status().message().find("after this session's host base was taken"),
            std::string::npos)
      << n.status().message();
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].kind, "host-changed");
}

// The lazy host base: rows only for what sessions look at.
TEST_F(ImageTest, AHostBaseStartsAsItsTopsAndGrowsOnlyWithWhatSessionsTouch) {
  for (int i = 0; i < 50; ++i) Put("usr/share/big/file" + std::to_string(i), RandomBytes(300'000), 0644);
  ASSERT_OK(EnsureHostImage(*store_, host_).status());
  ASSERT_OK(store_->CreateSessionFromImage("s", kHostImage).status());
  testing::RawDb raw(dir_.File("store.db"));
  auto count = [&](const std::string& query) { return raw.Int(query); };
  const std::string unexpanded = "SELECT count(*) FROM host_entries WHERE expanded = 0";
  // The tops (usr, etc, var/lib/dpkg; bin is a symlink), none looked into.
  EXPECT_EQ(count("SELECT count(*) FROM host_entries"), 3);
  EXPECT_EQ(count(unexpanded), 3);
  EXPECT_EQ(count("SELECT count(*) FROM blocks"), 0);
  const int64_t inodes = count("SELECT count(*) FROM inodes");

  auto fs = SessionFs("s");
  ASSERT_OK_AND_ASSIGN(auto tool, fs->Resolve("/usr/bin/tool"));
  // usr and usr/bin were listed; usr/share and the file's blocks were not.
  EXPECT_EQ(count("SELECT count(*) FROM host_entries WHERE expanded = 1"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM blocks"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM inodes"), inodes + 3);  // bin, share, tool
  EXPECT_EQ(tool.size, 200'000u);
  EXPECT_EQ(ReadAll(*fs, tool.ino), RandomBytes(200'000));
  const int64_t tool_blocks = (200'000 + store_->block_size() - 1) / store_->block_size();
  EXPECT_EQ(count("SELECT count(*) FROM blocks"), tool_blocks);
  // Listing a directory of 50 large files adds their names, not their blocks.
  ASSERT_OK_AND_ASSIGN(auto big, fs->Resolve("/usr/share/big"));
  ASSERT_OK_AND_ASSIGN(auto listed, fs->ReadDir(big.ino));
  EXPECT_EQ(listed.size(), 52u);
  EXPECT_EQ(count("SELECT count(*) FROM blocks"), tool_blocks);
  EXPECT_EQ(RealChunks(), 0);
  EXPECT_TRUE(store_->CheckIntegrity()->empty());
}

TEST_F(ImageTest, AListingIsTheSameInEveryViewForeverOrAnError) {
  ASSERT_OK(EnsureHostImage(*store_, host_).status());
  ASSERT_OK(store_->CreateSessionFromImage("s", kHostImage).status());
  ASSERT_OK_AND_ASSIGN(SessionInfo s, store_->GetSession("s"));
  ASSERT_OK_AND_ASSIGN(Version snap, store_->Snapshot(s.branch));
  // A read-only view of a snapshot is the first to look: its answer is the
  // one every later view gets, the head's too.
  ASSERT_OK_AND_ASSIGN(auto frozen, store_->OpenFilesystem(View{s.branch, snap}));
  ASSERT_OK_AND_ASSIGN(auto doc, frozen->Resolve("/usr/share/doc"));
  ASSERT_OK_AND_ASSIGN(auto first, frozen->ReadDir(doc.ino));
  AfterTheBaseWasTaken();
  Put("usr/share/doc/added-later", "new\n", 0644);
  Put("usr/bin/added-later", "new\n", 0755);
  auto names = [](const std::vector<DirEntry>& entries) {
    std::vector<std::pair<std::string, InodeId>> out;
    for (const auto& e : entries) out.emplace_back(e.name, e.ino);
    return out;
  };
  auto head = SessionFs("s");
  ASSERT_OK_AND_ASSIGN(auto again, frozen->ReadDir(doc.ino));
  ASSERT_OK_AND_ASSIGN(auto at_head, head->ReadDir(doc.ino));
  EXPECT_EQ(names(again), names(first));
  EXPECT_EQ(names(at_head), names(first));
  ASSERT_OK(store_->Fork(View{s.branch, snap}, "f").status());
  ASSERT_OK_AND_ASSIGN(auto in_fork, SessionFs("f")->ReadDir(doc.ino));
  EXPECT_EQ(names(in_fork), names(first));
  // A directory first looked into after it changed: an error in every view,
  // every time, and nothing of it is written.
  ASSERT_OK_AND_ASSIGN(auto bin, head->Resolve("/usr/bin"));
  const int64_t inodes = testing::RawDb(dir_.File("store.db")).Int("SELECT count(*) FROM inodes");
  for (int i = 0; i < 2; ++i) {
    EXPECT_CODE(head->ReadDir(bin.ino), Code::kIoError);
    EXPECT_CODE(frozen->Lookup(bin.ino, "tool"), Code::kIoError);
    EXPECT_CODE(head->Create(bin.ino, "mine", 0644, Cred{}), Code::kIoError);
  }
  EXPECT_EQ(testing::RawDb(dir_.File("store.db")).Int("SELECT count(*) FROM inodes"), inodes);
  EXPECT_TRUE(store_->CheckIntegrity()->empty());
}

TEST_F(ImageTest, StoresExpandingOneDirectoryAtOnceAgreeOnItsRows) {
  for (int i = 0; i < 200; ++i) Put("usr/lib/f" + std::to_string(i), "x", 0644);
  ASSERT_OK(EnsureHostImage(*store_, host_).status());
  ASSERT_OK(store_->CreateSessionFromImage("s", kHostImage).status());
  ASSERT_OK(store_->CreateSessionFromImage("t", kHostImage).status());
  ASSERT_OK_AND_ASSIGN(auto lib, SessionFs("s")->Resolve("/usr/lib", false));
  // Two handles on the store file, as two processes have.
  ASSERT_OK_AND_ASSIGN(auto other, Store::Open(Options(dir_.File("store.db"), false)));
  std::vector<std::vector<DirEntry>> seen(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      Store& store = i % 2 == 0 ? *store_ : *other;
      auto session = store.GetSession(i < 2 ? "s" : "t");
      auto fs = store.OpenFilesystem(View{session->branch, kHead});
      auto entries = (*fs)->ReadDir(lib.ino);
      if (entries.ok()) seen[i] = *entries;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(seen[i].size(), 202u) << i;
    for (size_t k = 0; k < seen[i].size(); ++k) EXPECT_EQ(seen[i][k].ino, seen[0][k].ino);
  }
  EXPECT_EQ(testing::RawDb(dir_.File("store.db"))
                .Int("SELECT count(*) FROM dentries WHERE parent = " + std::to_string(lib.ino)),
            200);
}

TEST_F(ImageTest, AHostSessionExportedHalfExpandedImportsAndExpandsThere) {
  ASSERT_OK(EnsureHostImage(*store_, host_).status());
  ASSERT_OK(store_->CreateSessionFromImage("s", kHostImage).status());
  EXPECT_EQ(ReadPath(*SessionFs("s"), "/usr/bin/tool"), RandomBytes(200'000));
  std::string bundle = dir_.File("s.bundle");
  ASSERT_OK(store_->Export("s", bundle).status());
  testing::TempDir other_dir;
  ASSERT_OK_AND_ASSIGN(auto other, Store::Open(Options(other_dir.File("o.db"), false)));
  ASSERT_OK(other->Import(bundle, "s").status());
  ASSERT_OK_AND_ASSIGN(SessionInfo s, other->GetSession("s"));
  ASSERT_OK_AND_ASSIGN(auto fs, other->OpenFilesystem(View{s.branch, kHead}));
  // Listed before the export, and never listed: both read as on the host.
  EXPECT_EQ(ReadPath(*fs, "/usr/bin/tool"), RandomBytes(200'000));
  EXPECT_EQ(ReadPath(*fs, "/usr/share/doc/readme"), "read me\n");
  EXPECT_TRUE(other->CheckIntegrity()->empty());
}

TEST_F(ImageTest, AReadOnlyStoreCannotExpandAndSaysWhy) {
  ASSERT_OK(EnsureHostImage(*store_, host_).status());
  ASSERT_OK(store_->CreateSessionFromImage("s", kHostImage).status());
  ASSERT_OK_AND_ASSIGN(SessionInfo s, store_->GetSession("s"));
  ASSERT_OK_AND_ASSIGN(Version snap, store_->Snapshot(s.branch));
  ASSERT_OK_AND_ASSIGN(auto reader,
                       Store::Open(Options(dir_.File("store.db"), true)));
  ASSERT_OK_AND_ASSIGN(auto fs, reader->OpenFilesystem(View{s.branch, snap}));
  auto usr = fs->Resolve("/usr/bin");
  EXPECT_CODE(usr, Code::kReadOnly);
  EXPECT_NE(usr.status().message().find("not indexed yet"), std::string::npos)
      << usr.status().message();
}

class TarImageTest : public ImageTest {
 protected:
  // A tarball of `dir` made by GNU tar, as `docker export` would write one.
  std::string Tar(const std::string& dir, const std::string& extra = "") {
    std::string tar = dir_.File("image.tar");
    std::filesystem::remove(tar);
    std::string cmd = "tar -C '" + dir + "' " + extra + " -cf '" + tar + "' . 2>/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return tar;
  }
  Status ImportTar(const std::string& name, const std::string& tar) {
    ImageInfo spec;
    spec.name = name;
    spec.kind = "tar";
    spec.source = tar;
    UnpackStats stats;
    return store_->CreateImage(spec, [&](Filesystem& fs) { return UnpackTar(fs, tar, &stats); })
        .status();
  }
};

TEST_F(TarImageTest, ATarballBecomesAnImageThatSessionsShare) {
  std::filesystem::create_hard_link(host_ + "/usr/bin/tool", host_ + "/usr/bin/tool-link");
  ASSERT_OK(ImportTar("img", Tar(host_)));
  ASSERT_OK(store_->CreateSessionFromImage("a", "img").status());
  ASSERT_OK(store_->CreateSessionFromImage("b", "img").status());
  auto a = SessionFs("a");
  EXPECT_EQ(ReadPath(*a, "/usr/bin/tool"), RandomBytes(200'000));
  EXPECT_EQ(ReadPath(*a, "/etc/shadow"), "root:secret\n");  // an image is taken whole
  ASSERT_OK_AND_ASSIGN(auto tool, a->Resolve("/usr/bin/tool"));
  ASSERT_OK_AND_ASSIGN(auto link, a->Resolve("/usr/bin/tool-link"));
  EXPECT_EQ(tool.ino, link.ino);
  EXPECT_EQ(tool.mode & 07777, 0755u);
  ASSERT_OK_AND_ASSIGN(auto bin, a->Resolve("/bin", false));
  EXPECT_TRUE(S_ISLNK(bin.mode));
  // A session's change stays in it.
  ASSERT_OK_AND_ASSIGN(auto etc, a->Resolve("/etc"));
  ASSERT_OK(a->Unlink(etc.ino, "config"));
  EXPECT_EQ(ReadPath(*SessionFs("b"), "/etc/config"), "key=value\n");
  ASSERT_OK_AND_ASSIGN(auto images, store_->ListImages());
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].name, "img");
  EXPECT_CODE(ImportTar("img", Tar(host_)), Code::kExists);
}

TEST_F(TarImageTest, PathTraversalIsRefusedAndLeavesNoImage) {
  Put("evil", "x", 0644);
  std::string tar = dir_.File("evil.tar");
  ASSERT_EQ(std::system(("tar -C '" + host_ + "' -P --transform 's,^evil,../../evil,' -cf '" +
                         tar + "' evil 2>/dev/null").c_str()),
            0);
  Status s = ImportTar("bad", tar);
  EXPECT_CODE(s, Code::kInvalid);
  EXPECT_NE(s.message().find("leaves the image root"), std::string::npos) << s.message();
  EXPECT_CODE(store_->GetImage("bad"), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir_.path().parent_path() / "evil"));
  // What it wrote before failing is garbage for gc.
  ASSERT_OK_AND_ASSIGN(GcStats gc, store_->CollectGarbage());
  EXPECT_EQ(gc.branches_freed, 1u);
}

TEST_F(TarImageTest, ATruncatedTarballIsRefused) {
  std::string tar = Tar(host_);
  std::filesystem::resize_file(tar, std::filesystem::file_size(tar) / 2);
  Status s = ImportTar("cut", tar);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("damaged or truncated"), std::string::npos) << s.message();
  EXPECT_CODE(store_->GetImage("cut"), Code::kNotFound);
}

// Hostile tarballs, written entry by entry with Python's tarfile (GNU tar
// will not write most of them). `entries` is Python: a list of
// (TarInfo, data-or-None) made with the helpers f, d, sym, hard, dev, or
// (bytes, None) for raw bytes written as they are.
std::string HostileTar(const testing::TempDir& dir, const std::string& name,
                       const std::string& entries) {
  std::string tar = dir.File(name);
  std::string script = dir.File(name + ".py");
  std::ofstream(script) << R"(import io, sys, tarfile
def info(name, kind, **kw):
    t = tarfile.TarInfo(name); t.type = kind
    for k, v in kw.items(): setattr(t, k, v)
    return t
def f(name, data=b"x"): return (info(name, tarfile.REGTYPE, size=len(data)), data)
def d(name): return (info(name, tarfile.DIRTYPE, mode=0o755), None)
def sym(name, target): return (info(name, tarfile.SYMTYPE, linkname=target), None)
def hard(name, target): return (info(name, tarfile.LNKTYPE, linkname=target), None)
def dev(name, kind): return (info(name, kind, devmajor=8, devminor=0), None)
with tarfile.open(sys.argv[1], "w", format=tarfile.GNU_FORMAT) as out:
    for t, data in )" << entries << R"(:
        if isinstance(t, bytes): out.fileobj.write(t); continue  # raw bytes, unchecked
        out.addfile(t, io.BytesIO(data) if data is not None else None)
)";
  EXPECT_EQ(std::system(("python3 '" + script + "' '" + tar + "'").c_str()), 0) << entries;
  return tar;
}

TEST_F(TarImageTest, AbsolutePathsStayInsideTheImage) {
  std::string tar = HostileTar(dir_, "abs.tar", "[d('/abs'), f('/abs/evil', b'inside')]");
  ASSERT_OK(ImportTar("abs", tar));
  ASSERT_OK(store_->CreateSessionFromImage("s", "abs").status());
  EXPECT_EQ(ReadPath(*SessionFs("s"), "/abs/evil"), "inside");
  EXPECT_FALSE(std::filesystem::exists("/abs/evil"));
}

TEST_F(TarImageTest, EntriesThroughASymlinkAreRefusedAndWriteNothingOutside) {
  const std::string outside = dir_.File("outside");
  std::filesystem::create_directories(outside);
  for (const std::string& target : {outside, std::string("../../..")}) {
    std::string tar = HostileTar(dir_, "sym.tar",
                                 "[sym('link', '" + target + "'), f('link/evil', b'gotcha')]");
    Status s = ImportTar("sym", tar);
    EXPECT_CODE(s, Code::kNotDir);
    EXPECT_NE(s.message().find("'link' is not a directory"), std::string::npos) << s.message();
    EXPECT_CODE(store_->GetImage("sym"), Code::kNotFound);
  }
  EXPECT_TRUE(std::filesystem::is_empty(outside));
  // A symlink pointing anywhere is fine as data: it is resolved inside the
  // session, never on the host.
  ASSERT_OK(ImportTar("ok", HostileTar(dir_, "ok.tar", "[sym('etc-passwd', '/etc/passwd')]")));
}

TEST_F(TarImageTest, HardLinksOutOfTheImageOrToNothingAreRefused) {
  for (const std::string& target : {std::string("../../etc/passwd"), std::string("missing")}) {
    Status s = ImportTar("hard", HostileTar(dir_, "hard.tar", "[f('a'), hard('b', '" + target + "')]"));
    EXPECT_FALSE(s.ok()) << target;
    EXPECT_CODE(store_->GetImage("hard"), Code::kNotFound);
  }
}

TEST_F(TarImageTest, DeviceNodesAreSkippedAndFifosKept) {
  std::string tar = HostileTar(
      dir_, "dev.tar", "[dev('sda', tarfile.BLKTYPE), dev('mem', tarfile.CHRTYPE), (info('fifo', tarfile.FIFOTYPE), None), f('file')]");
  ImageInfo spec;
  spec.name = "dev";
  spec.kind = "tar";
  spec.source = tar;
  UnpackStats stats;
  ASSERT_OK(store_->CreateImage(spec, [&](Filesystem& fs) { return UnpackTar(fs, tar, &stats); })
                .status());
  EXPECT_EQ(stats.skipped, 2u);
  ASSERT_OK(store_->CreateSessionFromImage("s", "dev").status());
  auto fs = SessionFs("s");
  EXPECT_CODE(fs->Resolve("/sda"), Code::kNotFound);
  EXPECT_CODE(fs->Resolve("/mem"), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(Attr fifo, fs->Resolve("/fifo"));
  EXPECT_TRUE(S_ISFIFO(fifo.mode));
}

TEST_F(TarImageTest, AnEntryClaimingAHugeSizeIsRefusedWithoutAllocatingIt) {
  // The header says 1 TiB; the archive ends after a few bytes.
  std::string tar = HostileTar(
      dir_, "huge.tar",
      "[(info('huge', tarfile.REGTYPE, size=1 << 40).tobuf(tarfile.GNU_FORMAT, 'utf-8',"
      " 'surrogateescape') + b'abc', None)]");
  Status s = ImportTar("huge", tar);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("damaged or truncated"), std::string::npos) << s.message();
  EXPECT_CODE(store_->GetImage("huge"), Code::kNotFound);
  EXPECT_LT(std::filesystem::file_size(dir_.File("store.db")), 64u << 20);
}

TEST_F(TarImageTest, ADirectoryBecomesAnImage) {
  ImageInfo spec;
  spec.name = "dir";
  spec.kind = "dir";
  spec.source = host_;
  ImportStats stats;
  ASSERT_OK(store_->CreateImage(spec, [&](Filesystem& fs) { return ImportTree(fs, host_, &stats); })
                .status());
  ASSERT_OK(store_->CreateSessionFromImage("d", "dir").status());
  EXPECT_EQ(ReadPath(*SessionFs("d"), "/usr/share/doc/readme"), "read me\n");
  ASSERT_OK(store_->RemoveImage("dir"));
  // The session keeps the image's tree after the image is removed and collected.
  ASSERT_OK(store_->CollectGarbage().status());
  EXPECT_EQ(ReadPath(*SessionFs("d"), "/usr/share/doc/readme"), "read me\n");
}

}  // namespace
}  // namespace strata
