// The S3 client against a real radosgw: the ctest fixture `s3` starts one
// with tools/dev-s3.sh for the run and writes its endpoint and keys to the
// file STRATA_S3_ENV names. Each test works in a bucket of its own.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "remote/remote.h"
#include "remote/s3_client.h"
#include "testing/cli_runner.h"
#include "testing/s3_server.h"
#include "testing/temp_store.h"

namespace strata::remote {
namespace {


class S3ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = testing::S3ServerEnv();
    ASSERT_FALSE(env_["STRATA_S3_ENDPOINT"].empty())
        << "no radosgw: the ctest fixture s3 (tools/dev-s3.sh) writes its address to "
           "$STRATA_S3_ENV";
    std::mt19937_64 rng(std::random_device{}());
    bucket_ = "test-" + std::to_string(rng() % 1'000'000'000'000ull);
    client_ = Client(env_["AWS_SECRET_ACCESS_KEY"]);
    ASSERT_OK(client_->CreateBucket());
  }

  std::unique_ptr<S3Client> Client(const std::string& secret,
                                   const std::string& bucket = "") {
    S3Location where{env_["STRATA_S3_ENDPOINT"], env_["AWS_REGION"],
                     bucket.empty() ? bucket_ : bucket};
    S3Credentials credentials{env_["AWS_ACCESS_KEY_ID"], secret, ""};
    auto client = S3Client::Create(where, credentials);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return std::move(client).value();
  }

  std::map<std::string, std::string> env_;
  std::string bucket_;
  std::unique_ptr<S3Client> client_;
};

TEST_F(S3ClientTest, ObjectsRoundTripByteForByte) {
  std::string big(5 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : big) c = static_cast<char>(rng());
  const std::map<std::string, std::string> objects = {
      {"plain", "hello"},
      {"empty", ""},
      {"dir/sub/a b+c%d&e=f", "odd key"},
      {"big", big},
      {"binary", std::string("\0\1\2\xff", 4)},
  };
  for (const auto& [key, body] : objects) {
    ASSERT_OK_AND_ASSIGN(std::string etag, client_->Put(key, body));
    EXPECT_FALSE(etag.empty()) << key;
  }
  for (const auto& [key, body] : objects) {
    ASSERT_OK_AND_ASSIGN(std::string got, client_->Get(key));
    EXPECT_EQ(got, body) << key;
    ASSERT_OK_AND_ASSIGN(ObjectInfo info, client_->Head(key));
    EXPECT_EQ(info.size, body.size()) << key;
  }
  ASSERT_OK_AND_ASSIGN(ListPage all, client_->List(""));
  ASSERT_EQ(all.keys.size(), objects.size());
  auto it = objects.begin();
  for (const auto& [key, size] : all.keys) {  // both in key order
    EXPECT_EQ(key, it->first);
    EXPECT_EQ(size, it->second.size());
    ++it;
  }
  EXPECT_TRUE(all.next.empty());
  ASSERT_OK_AND_ASSIGN(ListPage dir, client_->List("dir/"));
  ASSERT_EQ(dir.keys.size(), 1u);
  EXPECT_EQ(dir.keys[0].first, "dir/sub/a b+c%d&e=f");
  ASSERT_OK(client_->Delete("plain"));
  ASSERT_OK(client_->Delete("plain"));  // gone already: fine
  EXPECT_CODE(client_->Get("plain"), Code::kNotFound);
  EXPECT_CODE(client_->Head("plain"), Code::kNotFound);
  EXPECT_GE(client_->counters().requests, 2 * objects.size());
  EXPECT_GE(client_->counters().bytes_sent, big.size());
}

TEST_F(S3ClientTest, ListingComesInPagesThatCoverEveryKeyOnce) {
  for (int i = 0; i < 7; ++i) ASSERT_OK(client_->Put("k" + std::to_string(i), "x").status());
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(ListPage page, client_->List("k", after, /*max_keys=*/3));
    for (const auto& [key, size] : page.keys) seen.push_back(key);
    after = page.next;
    ++pages;
  } while (!after.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"k0", "k1", "k2", "k3", "k4", "k5", "k6"}));
}

TEST_F(S3ClientTest, ConditionalWritesRefuseWhatSomeoneElseWrote) {
  PutConditions absent;
  absent.if_absent = true;
  ASSERT_OK_AND_ASSIGN(std::string first, client_->Put("head", "v1", absent));
  EXPECT_CODE(client_->Put("head", "v2", absent), Code::kExists);
  PutConditions match;
  match.if_etag = first;
  ASSERT_OK_AND_ASSIGN(std::string second, client_->Put("head", "v2", match));
  EXPECT_NE(second, first);
  // A writer still holding the first ETag lost the race.
  EXPECT_CODE(client_->Put("head", "v3", match), Code::kExists);
  ASSERT_OK_AND_ASSIGN(std::string now, client_->Get("head"));
  EXPECT_EQ(now, "v2");
}

TEST_F(S3ClientTest, WrongKeysAndAMissingBucketSayWhatToFix) {
  auto wrong_secret = Client("not-the-secret");
  auto r = wrong_secret->Get("anything");
  EXPECT_CODE(r, Code::kAccess);
  EXPECT_NE(r.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos)
      << r.status().message();
  S3Location where{env_["STRATA_S3_ENDPOINT"], env_["AWS_REGION"], bucket_};
  ASSERT_OK_AND_ASSIGN(auto unknown_key,
                       S3Client::Create(where, S3Credentials{"NOSUCHKEY", "x", ""}));
  r = unknown_key->Get("anything");
  EXPECT_CODE(r, Code::kAccess);
  EXPECT_NE(r.status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos)
      << r.status().message();
  auto no_bucket = Client(env_["AWS_SECRET_ACCESS_KEY"], bucket_ + "-missing");
  auto listed = no_bucket->List("");
  EXPECT_CODE(listed, Code::kNotFound);
  EXPECT_NE(listed.status().message().find("does not exist"), std::string::npos)
      << listed.status().message();
}

TEST_F(S3ClientTest, RemoteCheckReachesTheBucketOrSaysWhatIsWrong) {
  testing::TempDir dir;
  const std::string store = dir.File("store.db");
  auto strata = [&](const std::string& args) { return testing::RunStrata(dir, store, args); };
  ASSERT_EQ(strata("remote add here s3://" + bucket_ + "/team --endpoint " +
                   env_["STRATA_S3_ENDPOINT"] + " --region " + env_["AWS_REGION"])
                .exit_code,
            0);
  ASSERT_EQ(strata("remote add nobucket s3://" + bucket_ + "-missing --endpoint " +
                   env_["STRATA_S3_ENDPOINT"])
                .exit_code,
            0);
  setenv("AWS_ACCESS_KEY_ID", env_["AWS_ACCESS_KEY_ID"].c_str(), 1);
  setenv("AWS_SECRET_ACCESS_KEY", env_["AWS_SECRET_ACCESS_KEY"].c_str(), 1);
  setenv("AWS_REGION", env_["AWS_REGION"].c_str(), 1);
  testing::CliRun r = strata("remote check here");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("reachable, credentials accepted"), std::string::npos) << r.out;
  r = strata("remote check nobucket");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  setenv("AWS_SECRET_ACCESS_KEY", "wrong", 1);
  r = strata("remote check here");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line
}

// A server that answers every request with 503 SlowDown, counting them.
class SlowDownServer {
 public:
  SlowDownServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~SlowDownServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  int port() const { return port_; }
  int requests() const { return requests_.load(); }

 private:
  void Serve() {
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      // One request per connection, headers only (the client sends no body).
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      requests_++;
      const std::string body =
          "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce your request "
          "rate.</Message></Error>";
      std::string reply = "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                          "Connection: close\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
      (void)!write(c, reply.data(), reply.size());
      close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(S3ClientRetryTest, ThrottlingIsRetriedWithBackoffThenReported) {
  SlowDownServer server;
  ASSERT_OK_AND_ASSIGN(auto client,
                       S3Client::Create(S3Location{"http://127.0.0.1:" +
                                                       std::to_string(server.port()),
                                                   "us-east-1", "bucket"},
                                        S3Credentials{"AK", "SK", ""}));
  client->set_retry_delay_ms(1);
  auto r = client->Get("key");
  EXPECT_CODE(r, Code::kIoError);
  EXPECT_NE(r.status().message().find("SlowDown"), std::string::npos) << r.status().message();
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(client->counters().retries, 4u);
}

}  // namespace
}  // namespace strata::remote
