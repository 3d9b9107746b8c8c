// gc on a full disk: the store lives on a small tmpfs that is filled until
// only kGcReserveBytes are free. Removing a session and running `strata gc`
// must succeed there, shrink the store file and give the space back to the
// file system, and lose nothing that another session still holds.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "strata/store.h"
#include "testing/cli_runner.h"
#include "testing/random_bytes.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::RunStrata;

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs st {};
  EXPECT_EQ(statvfs(dir.c_str(), &st), 0);
  return uint64_t{st.f_bavail} * st.f_frsize;
}

uint64_t SizeOf(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

class GcFullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    disk_ = dir_.File("disk");
    std::filesystem::create_directories(disk_);
    ASSERT_EQ(::mount("tmpfs", disk_.c_str(), "tmpfs", 0, "size=40m"), 0) << strerror(errno);
    mounted_ = true;
    store_ = disk_ + "/store.db";
  }
  void TearDown() override {
    if (mounted_) ::umount2(disk_.c_str(), MNT_DETACH);
  }
  // Runs strata on the store and expects success.
  testing::CliRun Ok(const std::string& args) {
    testing::CliRun r = RunStrata(dir_, store_, args);
    EXPECT_EQ(r.exit_code, 0) << "strata " << args << ": " << r.err;
    return r;
  }

  testing::TempDir dir_;
  std::string disk_, store_;
  bool mounted_ = false;
};

TEST_F(GcFullDiskTest, GcWithOnlyTheReserveFreeShrinksTheStoreAndKeepsTheRest) {
  constexpr size_t kKeptBytes = 6 << 20;
  constexpr size_t kGoneBytes = 16 << 20;
  const std::string kept = testing::IncompressibleBytes(kKeptBytes, 1);
  std::ofstream(dir_.File("kept.bin"), std::ios::binary) << kept;
  std::ofstream(dir_.File("gone.bin"), std::ios::binary) << testing::IncompressibleBytes(kGoneBytes, 2);
  Ok("init --base empty kept");
  Ok("init --base empty gone");
  Ok("put kept:/kept.bin '" + dir_.File("kept.bin") + "'");
  Ok("put gone:/gone.bin '" + dir_.File("gone.bin") + "'");

  // Fill the disk until only the reserve is left.
  const uint64_t free_before = FreeBytes(disk_);
  ASSERT_GT(free_before, kGcReserveBytes);
  {
    std::ofstream filler(disk_ + "/filler", std::ios::binary);
    std::string mib(1 << 20, 'x');
    uint64_t left = free_before - kGcReserveBytes;
    for (; left >= mib.size(); left -= mib.size()) filler << mib;
    filler << mib.substr(0, left);
  }
  ASSERT_LE(FreeBytes(disk_), kGcReserveBytes);
  ASSERT_GE(FreeBytes(disk_) + (64 << 10), kGcReserveBytes);

  Ok("rm gone");
  testing::CliRun gc = Ok("--json gc");
  nlohmann::json stats = nlohmann::json::parse(gc.out, nullptr, false);
  ASSERT_TRUE(stats.is_object()) << gc.out;
  EXPECT_EQ(stats["branches_freed"], 1);
  EXPECT_TRUE(stats["can_shrink"].get<bool>());
  const uint64_t before = stats["file_bytes_before"], after = stats["file_bytes_after"];
  EXPECT_LE(after + kGoneBytes * 9 / 10, before) << before << " -> " << after;
  EXPECT_LE(SizeOf(store_) + SizeOf(store_ + "-wal"), after + (1 << 20));
  EXPECT_GE(FreeBytes(disk_), kGcReserveBytes + kGoneBytes * 9 / 10);

  EXPECT_TRUE(Ok("cat kept:/kept.bin").out == kept);
  Ok("fsck");
}

}  // namespace
}  // namespace strata
