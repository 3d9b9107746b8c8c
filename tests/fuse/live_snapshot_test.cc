// Snapshots taken through the CLI while a writer appends to a file on the
// mount: each one holds an exact prefix of the records, and at least every
// record whose write returned before the snapshot command started.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>

#include "control/control.h"
#include "testing/mounted_fs.h"

namespace strata {
namespace {

constexpr size_t kRecord = 9;  // "%08d\n"

class LiveSnapshotTest : public testing::MountedTest {
 protected:
  void SetUp() override {
    MountedTest::SetUp();
    control::ControlOptions options;
    options.cut = [this](const std::function<Status()>& commit) { return server_->Cut(commit); };
    auto control = control::ControlServer::Start(*store_, *fs_, "main", options);
    ASSERT_TRUE(control.ok()) << control.status().ToString();
    control_ = std::move(control).value();
  }
  void TearDown() override {
    control_.reset();
    MountedTest::TearDown();
  }

  int Cli(const std::string& args) {
    std::string cmd = std::string(STRATA_CLI) + " --store '" + dir_.File("store.db") + "' " +
                      args + " >/dev/null 2>&1";
    return std::system(cmd.c_str());
  }

  std::unique_ptr<control::ControlServer> control_;
};

TEST_F(LiveSnapshotTest, EverySnapshotHoldsAGaplessPrefixOfReturnedWrites) {
  int fd = open(P("log").c_str(), O_CREAT | O_WRONLY | O_APPEND, 0644);
  ASSERT_GE(fd, 0);
  std::atomic<int> written{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    char rec[16];
    for (int i = 0; !stop.load(); ++i) {
      snprintf(rec, sizeof(rec), "%08d\n", i);
      if (write(fd, rec, kRecord) != static_cast<ssize_t>(kRecord)) return;
      written.store(i + 1);
    }
  });
  // A fixed number of snapshots, however long each takes; each waits until
  // the writer has made progress, so that every one has new writes to cut.
  constexpr int n = 12;
  std::vector<int> floor;  // records returned before each snapshot started
  for (int i = 0; i < n; ++i) {
    const int seen = written.load();
    while (written.load() < seen + 100) std::this_thread::yield();
    floor.push_back(written.load());
    ASSERT_EQ(Cli("snapshot main s" + std::to_string(i)), 0);
  }
  stop = true;
  writer.join();
  close(fd);

  int previous = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_OK_AND_ASSIGN(SnapshotInfo snap, store_->FindSnapshot(branch_, "s" + std::to_string(i)));
    ASSERT_OK_AND_ASSIGN(auto view, store_->OpenFilesystem(View{branch_, snap.version}));
    ASSERT_OK_AND_ASSIGN(Attr attr, view->Resolve("/log", true));
    ASSERT_EQ(attr.size % kRecord, 0u) << "torn record in snapshot " << i;
    std::string data(attr.size, '\0');
    ASSERT_OK_AND_ASSIGN(size_t got, view->Read(attr.ino, 0, {reinterpret_cast<uint8_t*>(
                                                                  data.data()), data.size()}));
    ASSERT_EQ(got, data.size());
    int records = static_cast<int>(attr.size / kRecord);
    for (int r = 0; r < records; ++r) {
      char want[16];
      snprintf(want, sizeof(want), "%08d\n", r);
      ASSERT_EQ(data.compare(r * kRecord, kRecord, want), 0)
          << "snapshot " << i << " record " << r << " is wrong";
    }
    EXPECT_GE(records, floor[i]) << "snapshot " << i << " lost writes that had returned";
    EXPECT_GE(records, previous) << "snapshot " << i << " went back in time";
    previous = records;
  }
  EXPECT_GT(previous, 0);
}

TEST_F(LiveSnapshotTest, SecondDaemonForTheSameSessionIsRefused) {
  auto again = control::ControlServer::Start(*store_, *fs_, "main");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kBusy);
}

}  // namespace
}  // namespace strata
