// Push and pull through a real radosgw (the ctest fixture s3, as in
// s3_client_test.cc): sessions between two stores, byte for byte; what a
// second push sends; diverging pushes; damaged objects.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <random>
#include <string>

#include "remote/maintenance.h"
#include "remote/remote.h"
#include "remote/transfer.h"
#include "testing/s3_server.h"
#include "testing/temp_store.h"

namespace strata::remote {
namespace {


PullOptions As(const std::string& name) {
  PullOptions o;
  o.as = name;
  return o;
}

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = testing::S3ServerEnv();
    ASSERT_FALSE(env_["STRATA_S3_ENDPOINT"].empty()) << "no radosgw (ctest fixture s3)";
    getenv_ = [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    remote_.name = "origin";
    remote_.bucket = "transfer-" + std::to_string(std::random_device{}() % 1'000'000'000u);
    remote_.prefix = "fleet/a";
    remote_.endpoint = env_["STRATA_S3_ENDPOINT"];
    remote_.region = env_["AWS_REGION"];
    ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
    ASSERT_OK(client->CreateBucket());
    a_ = OpenStore("a.db");
    b_ = OpenStore("b.db");
  }

  std::unique_ptr<Store> OpenStore(const std::string& file) {
    StoreOptions options;
    options.path = dir_.File(file);
    auto store = Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    Status added = (*store)->AddRemote(remote_);
    EXPECT_TRUE(added.ok() || added.code() == Code::kExists) << added.ToString();
    return std::move(store).value();
  }

  std::unique_ptr<Filesystem> Head(Store& store, const std::string& session) {
    auto info = store.GetSession(session);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    auto fs = store.OpenFilesystem(View{info->branch, kHead});
    EXPECT_TRUE(fs.ok()) << fs.status().ToString();
    return std::move(fs).value();
  }

  void Write(Store& store, const std::string& session, const std::string& name,
             const std::string& content) {
    auto fs = Head(store, session);
    testing::ReplaceFile(*fs, kRootIno, name, content);
    ASSERT_OK(fs->FlushAll());
  }

  std::string Read(Store& store, const std::string& session, const std::string& path) {
    auto fs = Head(store, session);
    auto attr = fs->Resolve(path);
    EXPECT_TRUE(attr.ok()) << path << ": " << attr.status().ToString();
    if (!attr.ok()) return "";
    std::string out(attr->size, '\0');
    auto n = fs->Read(attr->ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? out.substr(0, *n) : "";
  }

  // A session with files large and small, a key, a recorded call and a
  // snapshot.
  void MakeSession(Store& store, const std::string& session) {
    ASSERT_OK(store.CreateSession(session).status());
    Write(store, session, "big.bin", Random(700'000, 1));
    Write(store, session, "notes.txt", "hello\n");
    ASSERT_OK_AND_ASSIGN(SessionInfo info, store.GetSession(session));
    ASSERT_OK(store.KvUpdate(info.branch, {{"step", "3"}}));
    CallStart call;
    call.name = "write_file";
    ASSERT_OK(store.RecordCall(info.branch, call, CallOutcome{}).status());
    ASSERT_OK(store.Snapshot(info.branch, "v1").status());
    Write(store, session, "after.txt", "after the snapshot\n");
  }

  std::map<std::string, std::string> env_;
  Getenv getenv_;
  RemoteInfo remote_;
  testing::TempDir dir_;
  std::unique_ptr<Store> a_, b_;
};

TEST_F(TransferTest, APulledSessionIsThePushedOneByteForByteAndComesBack) {
  MakeSession(*a_, "work");
  PushOptions options;
  uint64_t progress_calls = 0, last_done = 0, last_total = 0;
  options.progress = [&](uint64_t done, uint64_t total) {
    ++progress_calls;
    EXPECT_EQ(done, last_done + 1);  // one call per chunk, in order, never two at once
    last_done = done;
    last_total = total;
  };
  ASSERT_OK_AND_ASSIGN(TransferStats pushed, Push(*a_, remote_, "work", options, getenv_));
  EXPECT_GT(pushed.chunks, 10u);
  EXPECT_EQ(pushed.sent, pushed.chunks);
  EXPECT_EQ(progress_calls, pushed.chunks);
  EXPECT_EQ(last_done, pushed.chunks);
  EXPECT_EQ(last_total, pushed.chunks);
  ASSERT_OK_AND_ASSIGN(TransferStats pulled, Pull(*b_, remote_, "work", {}, getenv_));
  EXPECT_EQ(pulled.head, pushed.head);
  EXPECT_EQ(pulled.sent, pushed.chunks);
  for (const char* path : {"/big.bin", "/notes.txt", "/after.txt"}) {
    EXPECT_EQ(Read(*b_, "work", path), Read(*a_, "work", path)) << path;
  }
  ASSERT_OK_AND_ASSIGN(SessionInfo there, b_->GetSession("work"));
  ASSERT_OK_AND_ASSIGN(std::string step, b_->KvGet(View{there.branch, kHead}, "step"));
  EXPECT_EQ(step, "3");
  ASSERT_OK_AND_ASSIGN(auto calls, b_->ListCalls(View{there.branch, kHead}, CallFilter{}));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].name, "write_file");
  ASSERT_OK_AND_ASSIGN(auto snapshots, b_->ListSnapshots(there.branch));
  ASSERT_EQ(snapshots.size(), 1u);
  EXPECT_EQ(snapshots[0].name, "v1");
  EXPECT_TRUE(b_->CheckIntegrity()->empty());

  // Changed there, pushed from there (a fast-forward), pulled back here.
  Write(*b_, "work", "from-b.txt", "written in the second store\n");
  ASSERT_OK(Push(*b_, remote_, "work", {}, getenv_).status());
  ASSERT_OK_AND_ASSIGN(TransferStats back, Pull(*a_, remote_, "work", As("work-from-b"), getenv_));
  EXPECT_EQ(back.sent, 1u);  // the one new chunk: the rest is here already
  EXPECT_EQ(back.chunks, pushed.chunks + 1);
  EXPECT_EQ(Read(*a_, "work-from-b", "/from-b.txt"), "written in the second store\n");
  EXPECT_EQ(Read(*a_, "work-from-b", "/big.bin"), Random(700'000, 1));
}

TEST_F(TransferTest, ASecondPushSendsOnlyTheChangedChunk) {
  MakeSession(*a_, "work");
  ASSERT_OK_AND_ASSIGN(TransferStats first, Push(*a_, remote_, "work", {}, getenv_));
  Write(*a_, "work", "small.txt", Random(4096, 9));
  ASSERT_OK_AND_ASSIGN(TransferStats second, Push(*a_, remote_, "work", {}, getenv_));
  EXPECT_EQ(second.chunks, first.chunks + 1);
  EXPECT_EQ(second.sent, 1u);
  EXPECT_NE(second.head, first.head);
  // The head's bundle says which chunks are there: no request per chunk.
  // (head, previous bundle, the new chunk's HEAD and PUT, bundle, head)
  EXPECT_EQ(second.requests, 6u);
  // Nothing changed: no chunk, the head stays a fast-forward.
  ASSERT_OK_AND_ASSIGN(TransferStats third, Push(*a_, remote_, "work", {}, getenv_));
  EXPECT_EQ(third.sent, 0u);
}

TEST_F(TransferTest, DivergingPushesAreRefusedUnlessForced) {
  MakeSession(*a_, "work");
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  ASSERT_OK(Pull(*b_, remote_, "work", {}, getenv_).status());
  Write(*b_, "work", "b.txt", "b\n");
  ASSERT_OK(Push(*b_, remote_, "work", {}, getenv_).status());
  Write(*a_, "work", "a.txt", "a\n");
  auto refused = Push(*a_, remote_, "work", {}, getenv_);
  EXPECT_CODE(refused, Code::kExists);
  EXPECT_NE(refused.status().message().find("has not pulled"), std::string::npos)
      << refused.status().message();
  // Pulling into the same name is refused too; under another name it works.
  EXPECT_CODE(Pull(*a_, remote_, "work", {}, getenv_), Code::kExists);
  ASSERT_OK(Pull(*a_, remote_, "work", As("theirs"), getenv_).status());
  EXPECT_EQ(Read(*a_, "theirs", "/b.txt"), "b\n");
  PushOptions force;
  force.force = true;
  ASSERT_OK(Push(*a_, remote_, "work", force, getenv_).status());
  // b's copy changed (it pushed b.txt) but the remote moved on: only --force
  // replaces it, and b's state is kept as a snapshot.
  EXPECT_CODE(Pull(*b_, remote_, "work", {}, getenv_), Code::kExists);
  ASSERT_OK_AND_ASSIGN(SessionInfo before, b_->GetSession("work"));
  PullOptions replace;
  replace.force = true;
  ASSERT_OK(Pull(*b_, remote_, "work", replace, getenv_).status());
  EXPECT_EQ(Read(*b_, "work", "/a.txt"), "a\n");
  EXPECT_EQ(Read(*b_, "work", "/big.bin"), Random(700'000, 1));
  ASSERT_OK_AND_ASSIGN(SnapshotInfo kept, b_->FindSnapshot(before.branch, "before-restore-1"));
  ASSERT_OK_AND_ASSIGN(auto old_fs, b_->OpenFilesystem(View{kept.branch, kept.version}));
  EXPECT_TRUE(old_fs->Resolve("/b.txt").ok());  // b's own state, kept
  EXPECT_CODE(b_->GetSession("work-pulling"), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(TransferStats again, Pull(*b_, remote_, "work", {}, getenv_));
  EXPECT_TRUE(again.up_to_date);
  EXPECT_TRUE(b_->CheckIntegrity()->empty());
  testing::TempDir other;
  StoreOptions options;
  options.path = other.File("c.db");
  ASSERT_OK_AND_ASSIGN(auto c, Store::Open(options));
  ASSERT_OK(Pull(*c, remote_, "work", {}, getenv_).status());
  EXPECT_EQ(Read(*c, "work", "/a.txt"), "a\n");
}

TEST_F(TransferTest, ADamagedChunkFailsThePullAndImportsNothing) {
  MakeSession(*a_, "work");
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
  ASSERT_OK_AND_ASSIGN(ListPage chunks, client->List(remote_.prefix + "/chunks/"));
  ASSERT_FALSE(chunks.keys.empty());
  const std::string victim = chunks.keys[chunks.keys.size() / 2].first;
  ASSERT_OK(client->Put(victim, std::string(1, '\0') + "not what was pushed").status());
  auto pulled = Pull(*b_, remote_, "work", {}, getenv_);
  EXPECT_CODE(pulled, Code::kCorruption);
  EXPECT_NE(pulled.status().message().find(victim), std::string::npos)
      << pulled.status().message();
  EXPECT_CODE(b_->GetSession("work"), Code::kNotFound);
  ASSERT_OK(client->Delete(victim));
  EXPECT_CODE(Pull(*b_, remote_, "work", {}, getenv_), Code::kNotFound);
  EXPECT_CODE(b_->GetSession("work"), Code::kNotFound);
  auto missing = Pull(*b_, remote_, "nobody", {}, getenv_);
  EXPECT_CODE(missing, Code::kNotFound);
  EXPECT_NE(missing.status().message().find("has no session 'nobody'"), std::string::npos)
      << missing.status().message();
}

// Keys under `prefix`, all pages.
std::vector<std::string> AllKeys(S3Client& client, const std::string& prefix) {
  std::vector<std::string> keys;
  std::string after;
  do {
    auto page = client.List(prefix, after);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    for (const auto& [key, size] : page->keys) keys.push_back(key);
    after = page->next;
  } while (!after.empty());
  return keys;
}

TEST_F(TransferTest, APushKilledAnywhereLeavesTheOldHeadAndTheNextOneResumes) {
  MakeSession(*a_, "work");
  ASSERT_OK_AND_ASSIGN(TransferStats first, Push(*a_, remote_, "work", {}, getenv_));
  Write(*a_, "work", "more.bin", Random(6 << 20, 5));  // ~96 new chunks
  a_.reset();  // the CLI opens the store from here on
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
  const std::string head_key = remote_.prefix + "/sessions/work/HEAD";
  for (const char* delay : {"0.05", "0.2", "0.4", "0.8"}) {
    std::string cmd = "env AWS_ACCESS_KEY_ID='" + env_["AWS_ACCESS_KEY_ID"] +
                      "' AWS_SECRET_ACCESS_KEY='" + env_["AWS_SECRET_ACCESS_KEY"] +
                      "' timeout -s KILL " + delay + " " + STRATA_CLI + " --store '" +
                      dir_.File("a.db") + "' push work --parallel 2 >/dev/null 2>&1";
    int rc = std::system(cmd.c_str());
    (void)rc;  // killed, or done: either way the remote must be whole
    ASSERT_OK_AND_ASSIGN(std::string head, client->Get(head_key));
    auto json = nlohmann::json::parse(head, nullptr, false);
    ASSERT_TRUE(json.is_object()) << head;
    const std::string bundle = json["bundle"].get<std::string>();
    // The head names a complete push: every object it needs is there.
    testing::TempDir other;
    StoreOptions options;
    options.path = other.File("c.db");
    ASSERT_OK_AND_ASSIGN(auto c, Store::Open(options));
    ASSERT_OK_AND_ASSIGN(TransferStats pulled, Pull(*c, remote_, "work", {}, getenv_));
    EXPECT_EQ(pulled.head, bundle);
    EXPECT_EQ(Read(*c, "work", "/big.bin"), Random(700'000, 1)) << delay;
    if (bundle != first.head) EXPECT_EQ(Read(*c, "work", "/more.bin"), Random(6 << 20, 5));
    if (bundle != first.head) break;  // a push got through
  }
  // The next push uploads only what the killed ones did not.
  a_ = OpenStore("a.db");
  const size_t before = AllKeys(*client, remote_.prefix + "/chunks/").size();
  ASSERT_OK_AND_ASSIGN(TransferStats last, Push(*a_, remote_, "work", {}, getenv_));
  const size_t after = AllKeys(*client, remote_.prefix + "/chunks/").size();
  EXPECT_EQ(last.sent, after - before);
  EXPECT_EQ(after, last.chunks);  // one object per distinct chunk, none twice
}

TEST_F(TransferTest, RemoteGcDeletesOnlyWhatNoHeadReferencesAndFsckFindsWhatIsMissing) {
  MakeSession(*a_, "work");
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  MakeSession(*a_, "other");
  Write(*a_, "other", "own.bin", Random(300'000, 77));
  ASSERT_OK(Push(*a_, remote_, "other", {}, getenv_).status());
  // Three more pushes of "work", each replacing a file: the head keeps the
  // last two bundles; the first two bundles and big2's first version are
  // garbage.
  for (uint32_t seed : {11u, 12u, 13u}) {
    Write(*a_, "work", "big2.bin", Random(200'000, seed));
    ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  }
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
  const size_t chunks_before = AllKeys(*client, remote_.prefix + "/chunks/").size();
  // Everything is young: a gc with the default grace deletes nothing.
  ASSERT_OK_AND_ASSIGN(RemoteGcStats young, CollectRemoteGarbage(*client, remote_, 3600));
  EXPECT_EQ(young.sessions, 2u);
  EXPECT_EQ(young.chunks_deleted + young.bundles_deleted, 0u);
  EXPECT_GT(young.young_kept, 0u);
  ASSERT_OK_AND_ASSIGN(RemoteGcStats gc, CollectRemoteGarbage(*client, remote_, 0));
  EXPECT_EQ(gc.bundles_deleted, 2u);  // work's first two (other has one: kept)
  // big2's first version (4 blocks of 64 KiB): no head names it any more.
  EXPECT_EQ(gc.chunks_deleted, 4u);
  EXPECT_EQ(AllKeys(*client, remote_.prefix + "/chunks/").size(), chunks_before - 4);
  uint64_t sessions = 0;
  ASSERT_OK_AND_ASSIGN(auto problems, CheckRemote(*client, remote_, true, &sessions));
  EXPECT_EQ(sessions, 2u);
  EXPECT_TRUE(problems.empty()) << problems[0].key << ": " << problems[0].detail;
  // Both still pull whole.
  ASSERT_OK(Pull(*b_, remote_, "work", {}, getenv_).status());
  EXPECT_EQ(Read(*b_, "work", "/big2.bin"), Random(200'000, 13));
  ASSERT_OK(Pull(*b_, remote_, "other", {}, getenv_).status());
  EXPECT_EQ(Read(*b_, "other", "/own.bin"), Random(300'000, 77));
  // fsck names a chunk that is gone, and with --verify-data one that is damaged.
  ASSERT_OK_AND_ASSIGN(ListPage page, client->List(remote_.prefix + "/chunks/"));
  ASSERT_GE(page.keys.size(), 2u);
  ASSERT_OK(client->Delete(page.keys[0].first));
  ASSERT_OK(client->Put(page.keys[1].first, std::string(1, '\0') + "garbage").status());
  ASSERT_OK_AND_ASSIGN(problems, CheckRemote(*client, remote_, false, &sessions));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, page.keys[0].first);
  EXPECT_NE(problems[0].detail.find("missing"), std::string::npos) << problems[0].detail;
  ASSERT_OK_AND_ASSIGN(problems, CheckRemote(*client, remote_, true, &sessions));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].key, page.keys[0].first);
  EXPECT_EQ(problems[1].key, page.keys[1].first);
  EXPECT_NE(problems[1].detail.find("damaged"), std::string::npos) << problems[1].detail;
}

}  // namespace
}  // namespace strata::remote
