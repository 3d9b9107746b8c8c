// A push while radosgw itself stops (tools/dev-s3.sh rgw-stop: killed, as a
// crash would) and starts again, in a cluster of this test's own: the
// fixture's radosgw serves the other S3 tests, some in parallel. The push
// fails after its retries with an error that names the endpoint, moves no
// head, and once radosgw is back the next push sends only what had not
// landed; the session pulls whole. The stop comes at a fixed point (after
// the first pack, from the push's progress callback), not after a delay.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "remote/fetch.h"
#include "remote/layout.h"
#include "remote/remote.h"
#include "remote/transfer.h"
#include "testing/random_bytes.h"
#include "testing/session_files.h"
#include "testing/temp_store.h"

namespace strata::remote {
namespace {

std::string Random(size_t n, uint32_t seed) { return testing::IncompressibleBytes(n, seed); }

// A cluster of tools/dev-s3.sh in `dir`, stopped when this goes.
class PrivateCluster {
 public:
  explicit PrivateCluster(std::string dir) : dir_(std::move(dir)) {
    FILE* out = popen(("'" STRATA_DEV_S3 "' start '" + dir_ + "' 2>/dev/null").c_str(), "r");
    if (out == nullptr) return;
    char line[4096];
    while (fgets(line, sizeof line, out) != nullptr) {
      std::string l(line);
      if (!l.empty() && l.back() == '\n') l.pop_back();
      size_t eq = l.find('=');
      if (l.rfind("export ", 0) == 0 && eq != std::string::npos) {
        env_[l.substr(7, eq - 7)] = l.substr(eq + 1);
      }
    }
    pclose(out);
  }
  ~PrivateCluster() { Run("stop"); }
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  bool ok() const { return env_.count("STRATA_S3_ENDPOINT") != 0; }
  // rgw-stop or rgw-start; whether it succeeded.
  bool Run(const char* command) {
    const std::string cmd =
        "'" STRATA_DEV_S3 "' " + std::string(command) + " '" + dir_ + "' >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  }
  Getenv getenv() const {
    return [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
  }
  const std::string& endpoint() const { return env_.at("STRATA_S3_ENDPOINT"); }
  const std::map<std::string, std::string>& env() const { return env_; }

 private:
  std::string dir_;
  std::map<std::string, std::string> env_;
};

TEST(ServerStopTest, APushWhoseServerStopsFailsLeavesNoHeadAndTheNextPushResumes) {
  testing::TempDir dir;
  PrivateCluster cluster(dir.File("s3"));
  ASSERT_TRUE(cluster.ok()) << "tools/dev-s3.sh start failed";
  // Reads of the pulled session below (with a copy: the fetcher outlives
  // this test).
  InstallLazyFetcher([env = cluster.env()](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  RemoteInfo remote;
  remote.name = "origin";
  remote.bucket = "stopping";
  remote.endpoint = cluster.endpoint();
  remote.region = "us-east-1";
  {
    ASSERT_OK_AND_ASSIGN(auto client, Connect(remote, cluster.getenv()));
    ASSERT_OK(client->CreateBucket());
  }
  auto a = testing::OpenStoreWithRemote(dir.File("a.db"), remote);
  ASSERT_OK(a->CreateSession("work").status());
  for (uint32_t i = 0; i < 4; ++i) {  // 32 MiB: more than one pack
    testing::WriteHeadFile(*a, "work", "f" + std::to_string(i), Random(8 << 20, i));
  }

  PushOptions stop_after_first_pack;
  stop_after_first_pack.parallel = 1;  // packs one after another
  int packs_done = 0;
  bool stopped = false;
  stop_after_first_pack.progress = [&](uint64_t, uint64_t) {
    if (++packs_done == 1) stopped = cluster.Run("rgw-stop");
  };
  auto failed = Push(*a, remote, "work", stop_after_first_pack, cluster.getenv());
  ASSERT_TRUE(stopped);
  EXPECT_EQ(packs_done, 1);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Code::kIoError) << failed.status().ToString();
  EXPECT_NE(failed.status().message().find(cluster.endpoint().substr(7)), std::string::npos)
      << failed.status().ToString();  // names where it could not reach

  ASSERT_TRUE(cluster.Run("rgw-start"));
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote, cluster.getenv()));
  EXPECT_FALSE(ReadHead(*client, SessionKey(remote, "work") + "HEAD")->exists);
  ASSERT_OK_AND_ASSIGN(TransferStats pushed, Push(*a, remote, "work", {}, cluster.getenv()));
  EXPECT_GT(pushed.sent, 0u);
  EXPECT_LT(pushed.sent, pushed.chunks);  // the first pack's chunks had landed

  auto b = testing::OpenStoreWithRemote(dir.File("b.db"), remote);
  PullOptions eager;
  eager.eager = true;
  ASSERT_OK(Pull(*b, remote, "work", eager, cluster.getenv()).status());
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(testing::ReadHeadFile(*b, "work", "/f" + std::to_string(i)), Random(8 << 20, i));
  }
  EXPECT_TRUE(b->CheckIntegrity()->empty());
}

}  // namespace
}  // namespace strata::remote
