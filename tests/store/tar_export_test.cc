// WriteTar: a session's tree as a tar archive, read back by the system's tar.
#include <sys/stat.h>
#include <sys/xattr.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "strata/archive.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using ::strata::testing::StoreTest;

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class TarExportTest : public StoreTest {};

TEST_F(TarExportTest, SystemTarExtractsTheSameTree) {
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, "src", 0750, Cred{1000, 1000}));
  Attr file = WriteFile(dir.ino, "main.c", "int main() { return 0; }\n");
  std::string big(200'000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 % 251);
  WriteFile(kRootIno, "big.bin", big);
  ASSERT_OK(fs_->Symlink(kRootIno, "link", "src/main.c", Cred{}).status());
  ASSERT_OK(fs_->Link(file.ino, kRootIno, "hard").status());
  ASSERT_OK(fs_->SetXattr(file.ino, "user.origin", "agent", 0));
  AttrChanges times;
  times.mtime_ns = int64_t{1'600'000'000} * 1'000'000'000;
  ASSERT_OK(fs_->SetAttr(file.ino, times).status());
  ASSERT_OK(fs_->FlushAll());

  const std::string tar = dir_.File("tree.tar");
  TarStats stats;
  ASSERT_OK(WriteTar(*fs_, tar, &stats));
  EXPECT_EQ(stats.entries, 6u);  // ., src, src/main.c, big.bin, link, hard
  EXPECT_EQ(stats.bytes, big.size() + 25);
  EXPECT_CODE(WriteTar(*fs_, tar, &stats), Code::kExists);  // never overwritten

  const std::string out = dir_.File("out");
  std::filesystem::create_directories(out);
  ASSERT_EQ(std::system(("tar --xattrs --xattrs-include='*' -xpf '" + tar + "' -C '" + out + "'").c_str()), 0);
  EXPECT_EQ(Slurp(out + "/src/main.c"), "int main() { return 0; }\n");
  EXPECT_EQ(Slurp(out + "/big.bin"), big);
  EXPECT_EQ(std::filesystem::read_symlink(out + "/link"), "src/main.c");
  struct stat a, b;
  ASSERT_EQ(stat((out + "/src/main.c").c_str(), &a), 0);
  ASSERT_EQ(stat((out + "/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // still one file with two names
  EXPECT_EQ(a.st_mtime, 1'600'000'000);
  struct stat d;
  ASSERT_EQ(stat((out + "/src").c_str(), &d), 0);
  EXPECT_EQ(d.st_mode & 07777, 0750u);
  EXPECT_EQ(d.st_uid, 1000u);
  char value[16] = {};
  ASSERT_EQ(getxattr((out + "/src/main.c").c_str(), "user.origin", value, sizeof(value)), 5);
  EXPECT_EQ(std::string(value, 5), "agent");
}

}  // namespace
}  // namespace strata
