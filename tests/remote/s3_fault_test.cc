// Push and pull through a FaultProxy (testing/fault_proxy.h) in front of the
// radosgw of the ctest fixture s3, as in s3_transfer_test.cc: replies cut
// short, connections refused, delays, and a server that goes away in the
// middle of a push. Transient faults are retried and the bytes arrive whole;
// persistent ones fail with IoError after a bounded number of attempts and
// leave the remote's old head, which still pulls whole; once the faults stop,
// the next push succeeds and sends only what the remote lacks.
//
// Each test's stores know the remote by the proxy's address; the test itself
// reads the bucket directly (client_, direct_) to see what really is there.
// The proxy's counts show that each fault fired as many times as the test
// says: a fault that silently did not happen fails the test. Nothing here
// depends on timing.
//
// The server going away here is the proxy's (GoDownAfter), not a real stop
// of radosgw: the fixture's radosgw serves every S3 test of the run, some in
// parallel. To the client the two look alike: the open connection is reset,
// and new ones fail (reset as soon as accepted, where a stopped server's port
// would refuse them; S3Client retries both alike). s3_server_stop_test.cc
// stops a real radosgw, in a cluster of its own.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <string>

#include "remote/fetch.h"
#include "remote/layout.h"
#include "remote/remote.h"
#include "remote/transfer.h"
#include "testing/fault_proxy.h"
#include "testing/random_bytes.h"
#include "testing/s3_server.h"
#include "testing/session_files.h"
#include "testing/temp_store.h"

namespace strata::remote {
namespace {

using testing::FaultProxy;
using Fault = FaultProxy::Fault;

// How many times S3Client tries a request (s3_client.cc, kMaxAttempts).
constexpr uint64_t kAttempts = 5;

std::string Random(size_t n, uint32_t seed) { return testing::IncompressibleBytes(n, seed); }

Fault Refuse(int times, std::string on_request = "") {
  Fault f;
  f.kind = Fault::kRefuse;
  f.times = times;
  f.on_request = std::move(on_request);
  return f;
}

Fault ResetReply(uint64_t reply_bytes, int times, std::string on_request = "") {
  Fault f;
  f.kind = Fault::kResetReply;
  f.reply_bytes = reply_bytes;
  f.times = times;
  f.on_request = std::move(on_request);
  return f;
}

PullOptions Eager(const std::string& as = "") {
  PullOptions o;
  o.as = as;
  o.eager = true;
  return o;
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = testing::S3ServerEnv();
    const std::string endpoint = env_["STRATA_S3_ENDPOINT"];
    ASSERT_FALSE(endpoint.empty()) << "no radosgw (ctest fixture s3)";
    getenv_ = [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    direct_.name = "origin";
    direct_.bucket = "fault-" + std::to_string(std::random_device{}() % 1'000'000'000u);
    direct_.prefix = "fleet/a";
    direct_.endpoint = endpoint;
    direct_.region = env_["AWS_REGION"];
    ASSERT_OK_AND_ASSIGN(client_, Connect(direct_, getenv_));
    ASSERT_OK(client_->CreateBucket());
    // "http://127.0.0.1:PORT"
    const size_t colon = endpoint.rfind(':');
    ASSERT_EQ(endpoint.rfind("http://", 0), 0u) << endpoint;
    ASSERT_NE(colon, std::string::npos) << endpoint;
    proxy_ = std::make_unique<FaultProxy>(endpoint.substr(7, colon - 7),
                                          std::stoi(endpoint.substr(colon + 1)));
    remote_ = direct_;
    remote_.endpoint = proxy_->endpoint();
    a_ = OpenStore(dir_, "a.db", remote_);
    // As the CLI does, so that lazily pulled chunks can be read (with a copy
    // of the environment: the fetcher outlives this test).
    InstallLazyFetcher([env = env_](const char* name) -> const char* {
      auto it = env.find(name);
      return it == env.end() ? nullptr : it->second.c_str();
    });
  }

  // A store in `dir` that knows the remote as `remote` says (through the
  // proxy, or not).
  std::unique_ptr<Store> OpenStore(testing::TempDir& dir, const std::string& file,
                                   const RemoteInfo& remote) {
    return testing::OpenStoreWithRemote(dir.File(file), remote);
  }
  void Write(Store& store, const std::string& session, const std::string& name,
             const std::string& content) {
    testing::WriteHeadFile(store, session, name, content);
  }
  std::string Read(Store& store, const std::string& session, const std::string& path) {
    return testing::ReadHeadFile(store, session, path);
  }

  // Session "work" of store a: big.bin (700 kB, about a dozen chunks) and
  // notes.txt, pushed through the proxy (which passes).
  TransferStats PushFirstVersion() {
    EXPECT_OK(a_->CreateSession("work").status());
    Write(*a_, "work", "big.bin", Random(700'000, 1));
    Write(*a_, "work", "notes.txt", "hello\n");
    auto pushed = Push(*a_, remote_, "work", {}, getenv_);
    EXPECT_TRUE(pushed.ok()) << pushed.status().ToString();
    return pushed.ok() ? *pushed : TransferStats{};
  }

  // The bundle the remote's head names, read directly.
  std::string RemoteHeadBundle(const std::string& session = "work") {
    auto head = ReadHead(*client_, SessionKey(direct_, session) + "HEAD");
    EXPECT_TRUE(head.ok()) << head.status().ToString();
    return head.ok() ? head->bundle : "";
  }

  // What the client sends first for a key of the remote, as the proxy sees
  // it: "PUT /BUCKET/fleet/a/packs/" and the like.
  std::string Request(const std::string& method, const std::string& key) const {
    return method + " /" + direct_.bucket + "/" + key;
  }

  // Pulls "work" into a new store that reads the bucket directly (not
  // through the proxy), eagerly, and checks it is the first version whole.
  void ExpectFirstVersionPullsWhole(const std::string& head) {
    testing::TempDir other;
    auto c = OpenStore(other, "c.db", direct_);
    ASSERT_NE(c, nullptr);
    ASSERT_OK_AND_ASSIGN(TransferStats pulled, Pull(*c, direct_, "work", Eager(), getenv_));
    EXPECT_EQ(pulled.head, head);
    EXPECT_EQ(pulled.sent, pulled.left);  // all fetched now
    EXPECT_TRUE(Read(*c, "work", "/big.bin") == Random(700'000, 1));
    EXPECT_EQ(Read(*c, "work", "/notes.txt"), "hello\n");
    EXPECT_TRUE(c->CheckIntegrity()->empty());
  }

  std::map<std::string, std::string> env_;
  Getenv getenv_;
  RemoteInfo direct_;  // the bucket, at radosgw's own address
  RemoteInfo remote_;  // the same, through the proxy
  std::unique_ptr<S3Client> client_;
  std::unique_ptr<FaultProxy> proxy_;  // outlives the stores below
  testing::TempDir dir_;
  std::unique_ptr<Store> a_;
};

TEST_F(FaultTest, TheClientRetriesCutRepliesAndRefusedConnectionsThenGivesUp) {
  const std::string body = Random(100'000, 7);
  ASSERT_OK(client_->Put("object", body).status());
  S3Location through{proxy_->endpoint(), direct_.region, direct_.bucket};
  S3Credentials credentials{env_["AWS_ACCESS_KEY_ID"], env_["AWS_SECRET_ACCESS_KEY"], ""};
  // A new client for each case: the fault applies to new connections.
  auto fresh = [&]() {
    auto c = S3Client::Create(through, credentials);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return std::unique_ptr<S3Client>();
    (*c)->set_retry_delay_ms(1);
    return std::move(c).value();
  };

  // The reply cut after 1000 bytes (inside the body), twice.
  proxy_->Set(ResetReply(1000, 2));
  auto cut = fresh();
  ASSERT_NE(cut, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string got, cut->Get("object"));
  EXPECT_TRUE(got == body);
  EXPECT_EQ(proxy_->counts().resets, 2u);
  EXPECT_EQ(cut->counters().retries, 2u);

  // Refused twice.
  proxy_->Set(Refuse(2));
  auto refused = fresh();
  ASSERT_NE(refused, nullptr);
  ASSERT_OK_AND_ASSIGN(got, refused->Get("object"));
  EXPECT_TRUE(got == body);
  EXPECT_EQ(proxy_->counts().refused, 2u);
  EXPECT_EQ(refused->counters().retries, 2u);

  // Refused every time: every attempt is made, then one clear error.
  proxy_->Set(Refuse(-1));
  auto never = fresh();
  ASSERT_NE(never, nullptr);
  auto failed = never->Get("object");
  EXPECT_CODE(failed, Code::kIoError);
  EXPECT_NE(failed.status().message().find("cannot reach " + proxy_->endpoint()), std::string::npos)
      << failed.status().message();
  EXPECT_EQ(proxy_->counts().refused, 2 + kAttempts);
  EXPECT_EQ(never->counters().retries, kAttempts - 1);
}

TEST_F(FaultTest, PushAndPullRideOutLostAndTruncatedReplies) {
  // Bytes of this run's own: the lazy fetcher keeps what it fetched in
  // memory, and must fetch these.
  const std::string big = Random(700'000, std::random_device{}());
  ASSERT_OK(a_->CreateSession("work").status());
  Write(*a_, "work", "big.bin", big);
  Write(*a_, "work", "notes.txt", "hello\n");
  // The pack's PUT arrives, but its answer is lost three times: the retries
  // find it there (412 to If-None-Match), which is as good.
  proxy_->Set(ResetReply(0, 3, Request("PUT", PackKey(remote_, ""))));
  ASSERT_OK_AND_ASSIGN(TransferStats pushed, Push(*a_, remote_, "work", {}, getenv_));
  EXPECT_EQ(proxy_->counts().resets, 3u);
  EXPECT_EQ(pushed.sent, pushed.chunks);
  EXPECT_EQ(RemoteHeadBundle(), pushed.head);

  // A lazy pull whose manifest arrives cut short twice (in its headers: it
  // is small), then reads whose ranges of the pack arrive cut short twice.
  testing::TempDir dir_b;
  auto b = OpenStore(dir_b, "b.db", remote_);
  ASSERT_NE(b, nullptr);
  proxy_->Set(ResetReply(100, 2, Request("GET", SessionKey(remote_, "work") + "bundles/")));
  ASSERT_OK_AND_ASSIGN(TransferStats lazy, Pull(*b, remote_, "work", {}, getenv_));
  EXPECT_EQ(proxy_->counts().resets, 5u);
  EXPECT_EQ(lazy.head, pushed.head);
  EXPECT_EQ(lazy.left, pushed.chunks);
  proxy_->Set(ResetReply(4096, 2, Request("GET", PackKey(remote_, ""))));
  EXPECT_TRUE(Read(*b, "work", "/big.bin") == big);
  EXPECT_EQ(Read(*b, "work", "/notes.txt"), "hello\n");
  EXPECT_EQ(proxy_->counts().resets, 7u);

  // An eager pull whose pack ranges (the metadata's pieces, then chunks)
  // arrive cut short three times.
  testing::TempDir dir_c;
  auto c = OpenStore(dir_c, "c.db", remote_);
  ASSERT_NE(c, nullptr);
  proxy_->Set(ResetReply(100, 3, Request("GET", PackKey(remote_, ""))));
  ASSERT_OK_AND_ASSIGN(TransferStats eager, Pull(*c, remote_, "work", Eager(), getenv_));
  EXPECT_EQ(proxy_->counts().resets, 10u);
  EXPECT_EQ(eager.sent, pushed.chunks);
  EXPECT_TRUE(Read(*c, "work", "/big.bin") == big);
  EXPECT_EQ(Read(*c, "work", "/notes.txt"), "hello\n");
  EXPECT_TRUE(c->CheckIntegrity()->empty());
  EXPECT_EQ(proxy_->counts().refused, 0u);

  // A pull whose first two connections are refused.
  testing::TempDir dir_d;
  auto d = OpenStore(dir_d, "d.db", remote_);
  ASSERT_NE(d, nullptr);
  proxy_->Set(Refuse(2));
  ASSERT_OK_AND_ASSIGN(TransferStats refused, Pull(*d, remote_, "work", Eager(), getenv_));
  EXPECT_EQ(proxy_->counts().refused, 2u);
  EXPECT_EQ(refused.head, pushed.head);
  EXPECT_TRUE(Read(*d, "work", "/big.bin") == big);
  EXPECT_EQ(proxy_->counts().resets, 10u);
}

TEST_F(FaultTest, PersistentFaultsFailThePushCleanlyAndLeaveTheOldHead) {
  const TransferStats first = PushFirstVersion();
  ASSERT_FALSE(first.head.empty());
  Write(*a_, "work", "new.bin", Random(300'000, 2));

  // No connection gets through: the first request is tried kAttempts times.
  proxy_->Set(Refuse(-1));
  auto refused = Push(*a_, remote_, "work", {}, getenv_);
  EXPECT_CODE(refused, Code::kIoError);
  EXPECT_NE(refused.status().message().find("cannot reach " + proxy_->endpoint()),
            std::string::npos)
      << refused.status().message();
  EXPECT_EQ(proxy_->counts().refused, kAttempts);

  // Every upload of a pack is reset as its answer comes: the pack's PUT is
  // tried kAttempts times, and nothing is sent after it.
  proxy_->Set(ResetReply(0, -1, Request("PUT", PackKey(remote_, ""))));
  auto reset = Push(*a_, remote_, "work", {}, getenv_);
  EXPECT_CODE(reset, Code::kIoError);
  EXPECT_NE(reset.status().message().find("cannot reach " + proxy_->endpoint()), std::string::npos)
      << reset.status().message();
  EXPECT_EQ(proxy_->counts().resets, kAttempts);

  // The remote still has the first version, whole; this store still knows
  // it as the head it pushed.
  EXPECT_EQ(RemoteHeadBundle(), first.head);
  EXPECT_EQ(a_->GetRemoteHead(remote_.name, "work")->bundle, first.head);
  ExpectFirstVersionPullsWhole(first.head);

  // Without faults the push goes through and sends only the new chunks.
  proxy_->Set(Fault{});
  ASSERT_OK_AND_ASSIGN(TransferStats second, Push(*a_, remote_, "work", {}, getenv_));
  EXPECT_GT(second.chunks, first.chunks);
  EXPECT_EQ(second.sent, second.chunks - first.chunks);
  EXPECT_EQ(RemoteHeadBundle(), second.head);
  testing::TempDir other;
  auto d = OpenStore(other, "d.db", remote_);
  ASSERT_NE(d, nullptr);
  ASSERT_OK(Pull(*d, remote_, "work", Eager(), getenv_).status());
  EXPECT_TRUE(Read(*d, "work", "/new.bin") == Random(300'000, 2));
  EXPECT_TRUE(Read(*d, "work", "/big.bin") == Random(700'000, 1));
}

TEST_F(FaultTest, DelaysShorterThanAnyTimeoutJustWork) {
  Fault slow;
  slow.kind = Fault::kDelay;
  slow.delay_ms = 5;
  proxy_->Set(slow);
  const TransferStats pushed = PushFirstVersion();
  ASSERT_FALSE(pushed.head.empty());
  EXPECT_EQ(pushed.sent, pushed.chunks);
  testing::TempDir other;
  auto b = OpenStore(other, "b.db", remote_);
  ASSERT_NE(b, nullptr);
  ASSERT_OK_AND_ASSIGN(TransferStats pulled, Pull(*b, remote_, "work", Eager(), getenv_));
  EXPECT_EQ(pulled.sent, pushed.chunks);
  EXPECT_TRUE(Read(*b, "work", "/big.bin") == Random(700'000, 1));
  const FaultProxy::Counts counts = proxy_->counts();
  // Every request and every answer was held up at least once.
  EXPECT_GE(counts.delays, 2 * pushed.requests);
  EXPECT_EQ(counts.resets + counts.refused + counts.cut, 0u);
}

TEST_F(FaultTest, AServerGoneMidPushLeavesTheOldHeadAndTheNextPushSucceeds) {
  const TransferStats first = PushFirstVersion();
  ASSERT_FALSE(first.head.empty());
  Write(*a_, "work", "more.bin", Random(2 << 20, 5));  // incompressible: a 2 MiB pack
  // The server goes away 1 MiB into the push, inside the pack's upload: the
  // open connection is reset, and the retries find no server.
  const FaultProxy::Counts before = proxy_->counts();
  proxy_->GoDownAfter(1 << 20);
  auto gone = Push(*a_, remote_, "work", {}, getenv_);
  EXPECT_CODE(gone, Code::kIoError);
  EXPECT_NE(gone.status().message().find("cannot reach " + proxy_->endpoint()), std::string::npos)
      << gone.status().message();
  EXPECT_NE(gone.status().message().find("server is running"), std::string::npos)
      << gone.status().message();
  const FaultProxy::Counts after = proxy_->counts();
  EXPECT_TRUE(proxy_->down());
  EXPECT_EQ(after.bytes_up - before.bytes_up, 1u << 20);
  EXPECT_GE(after.cut, 1u);
  EXPECT_EQ(after.refused, kAttempts - 1);  // the pack's upload, tried again

  EXPECT_EQ(RemoteHeadBundle(), first.head);
  EXPECT_EQ(a_->GetRemoteHead(remote_.name, "work")->bundle, first.head);
  ExpectFirstVersionPullsWhole(first.head);

  proxy_->Up();
  ASSERT_OK_AND_ASSIGN(TransferStats second, Push(*a_, remote_, "work", {}, getenv_));
  EXPECT_EQ(second.sent, second.chunks - first.chunks);
  EXPECT_EQ(RemoteHeadBundle(), second.head);
  testing::TempDir other;
  auto d = OpenStore(other, "d.db", remote_);
  ASSERT_NE(d, nullptr);
  ASSERT_OK(Pull(*d, remote_, "work", Eager(), getenv_).status());
  EXPECT_TRUE(Read(*d, "work", "/more.bin") == Random(2 << 20, 5));
  EXPECT_EQ(proxy_->counts().refused, kAttempts - 1);  // nothing refused once up
}

TEST_F(FaultTest, APushStoppedBeforeItsHeadMovesSendsNoChunkTheNextTime) {
  const TransferStats first = PushFirstVersion();
  ASSERT_FALSE(first.head.empty());
  Write(*a_, "work", "new.bin", Random(300'000, 2));
  // Everything reaches the server but the move of the head.
  const std::string move_head = Request("PUT", SessionKey(remote_, "work") + "HEAD ");
  proxy_->Set(Refuse(-1, move_head));
  auto stopped = Push(*a_, remote_, "work", {}, getenv_);
  EXPECT_CODE(stopped, Code::kIoError);
  EXPECT_NE(stopped.status().message().find("cannot reach " + proxy_->endpoint()),
            std::string::npos)
      << stopped.status().message();
  // Each attempt refused; libcurl itself reconnects once when a request on a
  // connection it reused gets no answer at all (the head's PUT follows the
  // bundle's on the same connection), so the first attempt may count twice.
  EXPECT_GE(proxy_->counts().refused, kAttempts);
  EXPECT_LE(proxy_->counts().refused, kAttempts + 1);
  EXPECT_EQ(a_->GetRemoteHead(remote_.name, "work")->bundle, first.head);
  EXPECT_EQ(RemoteHeadBundle(), first.head);
  ExpectFirstVersionPullsWhole(first.head);

  proxy_->Set(Fault{});
  ASSERT_OK_AND_ASSIGN(TransferStats second, Push(*a_, remote_, "work", {}, getenv_));
  EXPECT_GT(second.chunks, first.chunks);
  EXPECT_EQ(second.sent, 0u);  // the packs went up the first time
  EXPECT_EQ(RemoteHeadBundle(), second.head);
  testing::TempDir other;
  auto d = OpenStore(other, "d.db", remote_);
  ASSERT_NE(d, nullptr);
  ASSERT_OK(Pull(*d, remote_, "work", Eager(), getenv_).status());
  EXPECT_TRUE(Read(*d, "work", "/new.bin") == Random(300'000, 2));
}

TEST_F(FaultTest, ALostAnswerToTheMoveOfTheHeadIsNotTakenForAnotherPush) {
  // The head is written (first with If-None-Match: *, then with If-Match)
  // but its answer is lost once: the retry meets 412 from our own write.
  ASSERT_OK(a_->CreateSession("work").status());
  Write(*a_, "work", "notes.txt", "hello\n");
  const std::string move_head = Request("PUT", SessionKey(remote_, "work") + "HEAD ");
  proxy_->Set(ResetReply(0, 1, move_head));
  auto created = Push(*a_, remote_, "work", {}, getenv_);
  EXPECT_EQ(proxy_->counts().resets, 1u);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(RemoteHeadBundle(), created->head);

  Write(*a_, "work", "more.txt", "more\n");
  proxy_->Set(ResetReply(0, 1, move_head));
  auto moved = Push(*a_, remote_, "work", {}, getenv_);
  EXPECT_EQ(proxy_->counts().resets, 2u);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(RemoteHeadBundle(), moved->head);
  // This store knows the head it wrote: the next push is a fast-forward.
  Write(*a_, "work", "last.txt", "last\n");
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
}

}  // namespace
}  // namespace strata::remote
