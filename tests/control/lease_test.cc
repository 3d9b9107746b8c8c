// Leases on the control socket: what keeps a `strata run` daemon mounted.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "control/control.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

class LeaseTest : public testing::StoreTest {
 protected:
  void Start(std::chrono::milliseconds first_lease_timeout) {
    control::ControlOptions options;
    options.mountpoint = "/somewhere";
    options.on_idle = [this] { idle_calls_++; };
    options.first_lease_timeout = first_lease_timeout;
    ASSERT_OK_AND_ASSIGN(server_, control::ControlServer::Start(*store_, *fs_, "main", options));
  }
  bool WaitForIdle(int calls) {
    for (int i = 0; i < 500 && idle_calls_ < calls; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return idle_calls_ == calls;
  }
  std::atomic<int> idle_calls_{0};
  std::unique_ptr<control::ControlServer> server_;
};

TEST_F(LeaseTest, TheLastLeaseEndingMakesTheDaemonIdleAndLeasesAreThenRefused) {
  Start(std::chrono::minutes(1));
  ASSERT_OK_AND_ASSIGN(auto first, control::TakeLease(store_->path(), "main"));
  ASSERT_OK_AND_ASSIGN(auto second, control::TakeLease(store_->path(), "main"));
  EXPECT_EQ(first->mountpoint(), "/somewhere");
  first.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(idle_calls_, 0);  // one lease is still held
  second.reset();
  EXPECT_TRUE(WaitForIdle(1));
  EXPECT_CODE(control::TakeLease(store_->path(), "main"), Code::kBusy);
  // Other requests still work while the daemon unmounts.
  EXPECT_TRUE(control::Call(store_->path(), "main", {{"op", "status"}}).ok());
}

TEST_F(LeaseTest, ADaemonNobodyLeasesGoesIdleAfterTheFirstLeaseTimeout) {
  Start(std::chrono::milliseconds(100));
  EXPECT_TRUE(WaitForIdle(1));
}

TEST_F(LeaseTest, TheFirstLeaseTimeoutCountsFromTheMount) {
  // A slow mount must not make the daemon idle: it would then unmount
  // before mounting, and serve a mount nobody can lease.
  std::atomic<bool> mounted{false};
  control::ControlOptions options;
  options.mountpoint = "/m";
  options.mounted = [&] { return mounted.load(); };
  options.on_idle = [this] { idle_calls_++; };
  options.first_lease_timeout = std::chrono::milliseconds(20);
  ASSERT_OK_AND_ASSIGN(server_, control::ControlServer::Start(*store_, *fs_, "main", options));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(idle_calls_, 0);
  mounted = true;
  EXPECT_TRUE(WaitForIdle(1));
}

TEST_F(LeaseTest, AnUnmountThatLeavesTheMountUpIsRetriedUntilItIsGone) {
  // Every lease is refused once the daemon is idle, so a mount left up by
  // an unmount that failed would never be leased or unmounted again.
  std::atomic<bool> mounted{true};
  control::ControlOptions options;
  options.mountpoint = "/m";
  options.mounted = [&] { return mounted.load(); };
  options.on_idle = [this] { idle_calls_++; };
  options.first_lease_timeout = std::chrono::milliseconds(10);
  ASSERT_OK_AND_ASSIGN(server_, control::ControlServer::Start(*store_, *fs_, "main", options));
  for (int i = 0; i < 5000 && idle_calls_ < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_GE(idle_calls_, 3);
  mounted = false;  // the unmount went through
  std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a retry's period, and more
  const int calls = idle_calls_;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(idle_calls_, calls);
}

TEST_F(LeaseTest, OfServersStartedAtOnceForOneSessionExactlyOneServes) {
  // Two `strata run`s may start daemons for one session at the same time:
  // exactly one may listen and mount.
  for (int round = 0; round < 50; ++round) {
    constexpr int kServers = 6;
    std::vector<Result<std::unique_ptr<control::ControlServer>>> started;
    for (int i = 0; i < kServers; ++i) started.emplace_back(Status(Code::kInternal, "not run"));
    std::atomic<int> waiting{kServers};
    std::vector<std::thread> threads;
    for (int i = 0; i < kServers; ++i) {
      threads.emplace_back([&, i] {
        for (--waiting; waiting > 0;) std::this_thread::yield();  // all start at once
        started[i] = control::ControlServer::Start(*store_, *fs_, "main");
      });
    }
    for (auto& t : threads) t.join();
    int serving = 0;
    for (auto& s : started) {
      if (s.ok()) {
        ++serving;
      } else {
        EXPECT_CODE(s, Code::kBusy);
      }
    }
    ASSERT_EQ(serving, 1) << "round " << round;
    EXPECT_TRUE(control::Call(store_->path(), "main", {{"op", "status"}}).ok());
  }
  // The last server gone, nothing of it is left beside the socket's path.
  const std::string socket = control::SocketPath(store_->path(), "main");
  EXPECT_FALSE(std::filesystem::exists(socket));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(socket).replace_extension(".lock")));
}

TEST_F(LeaseTest, NoLeaseBeforeTheSessionIsMounted) {
  std::atomic<bool> mounted{false};
  control::ControlOptions options;
  options.mountpoint = "/m";
  options.mounted = [&] { return mounted.load(); };
  ASSERT_OK_AND_ASSIGN(server_, control::ControlServer::Start(*store_, *fs_, "main", options));
  EXPECT_CODE(control::TakeLease(store_->path(), "main"), Code::kBusy);
  mounted = true;
  EXPECT_TRUE(control::TakeLease(store_->path(), "main").ok());
}

TEST_F(LeaseTest, WithoutAnIdleHandlerLeasesComeAndGo) {
  control::ControlOptions options;
  options.mountpoint = "/m";
  ASSERT_OK_AND_ASSIGN(server_, control::ControlServer::Start(*store_, *fs_, "main", options));
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(auto lease, control::TakeLease(store_->path(), "main"));
  }
  EXPECT_TRUE(control::TakeLease(store_->path(), "main").ok());
}

}  // namespace
}  // namespace strata
