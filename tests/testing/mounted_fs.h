// A real FUSE mount of a fresh store's session, served by a FuseServer on a
// background thread of the test process. Unmounted in TearDown, even when the
// test failed.
#ifndef STRATA_TESTS_TESTING_MOUNTED_FS_H_
#define STRATA_TESTS_TESTING_MOUNTED_FS_H_

#include <sys/mount.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "fuse/fuse_server.h"
#include "testing/temp_store.h"

namespace strata::testing {

class MountedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mnt_ = dir_.File("mnt");
    std::filesystem::create_directories(mnt_);
    StoreOptions options;
    ConfigureStore(&options);
    options.path = dir_.File("store.db");
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto session = store_->CreateSession("main");
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    branch_ = session->branch;
    auto fs = store_->OpenFilesystem(View{branch_, kHead});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(fs).value();
    fuse::MountOptions mo;
    mo.mountpoint = mnt_;
    mo.options = ExtraMountOptions();
    auto server = fuse::FuseServer::Mount(*fs_, mo);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    thread_ = std::thread([this] { served_ = server_->Run(); });
  }

  void TearDown() override {
    if (server_ != nullptr) {
      // A test that left files open makes a plain unmount fail: detach then.
      if (umount2(mnt_.c_str(), 0) != 0) umount2(mnt_.c_str(), MNT_DETACH);
      thread_.join();
      server_.reset();
      EXPECT_TRUE(served_.ok()) << served_.ToString();
    }
    fs_.reset();
    store_.reset();
  }

  virtual std::vector<std::string> ExtraMountOptions() { return {}; }
  // Lets a test change the store's options (block size, write buffer, ...).
  virtual void ConfigureStore(StoreOptions* options) { (void)options; }

  // Absolute path of `rel` inside the mount.
  std::string P(const std::string& rel) const { return mnt_ + "/" + rel; }

  static void WriteHostFile(const std::string& path, const std::string& content) {
    std::ofstream f(path, std::ios::binary);
    f << content;
  }
  static std::string ReadHostFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  TempDir dir_;
  std::string mnt_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Filesystem> fs_;
  std::unique_ptr<fuse::FuseServer> server_;
  std::thread thread_;
  Status served_;
  BranchId branch_ = 0;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_TESTING_MOUNTED_FS_H_
