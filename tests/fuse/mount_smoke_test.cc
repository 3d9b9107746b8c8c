#include <fcntl.h>
#include <unistd.h>

#include "testing/mounted_fs.h"

namespace strata {
namespace {

class MountSmokeTest : public testing::MountedTest {};

TEST_F(MountSmokeTest, FileWrittenThroughMountIsInTheStore) {
  WriteHostFile(P("a.txt"), "through the kernel");
  EXPECT_EQ(ReadHostFile(P("a.txt")), "through the kernel");
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Resolve("/a.txt", true));
  EXPECT_EQ(attr.size, 18u);
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_, "s"));
  ASSERT_OK_AND_ASSIGN(auto snap, store_->OpenFilesystem(View{branch_, v}));
  ASSERT_OK_AND_ASSIGN(Attr frozen, snap->Resolve("/a.txt", true));
  EXPECT_EQ(frozen.size, 18u);
}

TEST_F(MountSmokeTest, MountingOverAMountIsRefused) {
  fuse::MountOptions mo;
  mo.mountpoint = mnt_;
  auto second = fuse::FuseServer::Mount(*fs_, mo);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kBusy) << second.status().ToString();
}

TEST_F(MountSmokeTest, MissingMountpointIsRefused) {
  fuse::MountOptions mo;
  mo.mountpoint = dir_.File("nope");
  auto r = fuse::FuseServer::Mount(*fs_, mo);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("nope"), std::string::npos);
}

}  // namespace
}  // namespace strata
