// Push and pull through a real radosgw (the ctest fixture s3, as in
// s3_client_test.cc): sessions between two stores, byte for byte; lazy
// pulls that fetch on first read; what a second push sends; diverging
// pushes; damaged and missing objects.
#include <fcntl.h>
#include <sys/time.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "chunks/chunk_store.h"
#include "remote/fetch.h"
#include "strata/host_base.h"
#include "remote/layout.h"
#include "remote/maintenance.h"
#include "remote/remote.h"
#include "remote/transfer.h"
#include "testing/random_bytes.h"
#include "testing/s3_server.h"
#include "testing/session_files.h"
#include "testing/temp_store.h"

namespace strata::remote {
namespace {


PullOptions As(const std::string& name) {
  PullOptions o;
  o.as = name;
  return o;
}

PullOptions Eager() {
  PullOptions o;
  o.eager = true;
  return o;
}

std::string Random(size_t n, uint32_t seed) { return testing::IncompressibleBytes(n, seed); }

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
    // As the CLI does, so that lazily pulled chunks can be read (with a
    // copy of the environment: the fetcher outlives this test).
    InstallLazyFetcher([env = env_](const char* name) -> const char* {
      auto it = env.find(name);
      return it == env.end() ? nullptr : it->second.c_str();
    });
  }

  // Rows of the store file `file` that match `where` (chunks still on a
  // remote: "codec = 3"), after the fetcher wrote what it fetched.
  int64_t CountChunks(const std::string& file, const std::string& where) {
    chunks::GetRemoteChunkSource()->Flush();
    auto conn = sql::Connection::Open(dir_.File(file), sql::OpenMode::kQueryOnly);
    EXPECT_TRUE(conn.ok());
    auto s = (*conn)->PrepareUncached("SELECT count(*) FROM chunks WHERE " + where);
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(*s->Step());
    return s->Int(0);
  }

  // Shell words that run the strata CLI on store file `file` with this
  // test's credentials, under `wrapper` if given ("timeout -s KILL 0.1").
  std::string Cli(const std::string& file, const std::string& wrapper = "") {
    return "env AWS_ACCESS_KEY_ID='" + env_["AWS_ACCESS_KEY_ID"] + "' AWS_SECRET_ACCESS_KEY='" +
           env_["AWS_SECRET_ACCESS_KEY"] + "' " + (wrapper.empty() ? "" : wrapper + " ") +
           STRATA_CLI + " --store '" + dir_.File(file) + "' ";
  }
  std::unique_ptr<Store> OpenStore(const std::string& file) {
    return testing::OpenStoreWithRemote(dir_.File(file), remote_);
  }
  std::unique_ptr<Filesystem> Head(Store& store, const std::string& session) {
    return testing::OpenHead(store, session);
  }
  void Write(Store& store, const std::string& session, const std::string& name,
             const std::string& content) {
    testing::WriteHeadFile(store, session, name, content);
  }
  std::string Read(Store& store, const std::string& session, const std::string& path) {
    return testing::ReadHeadFile(store, session, path);
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

// The key of the pack whose index names the chunk of plain bytes `bytes`
// ("" if none does).
std::string PackHolding(S3Client& client, const RemoteInfo& remote, std::string_view bytes) {
  const std::string sha = ShaHex(**LoadNetApi(), bytes);
  for (const std::string& key : AllKeys(client, remote.prefix + "/index/")) {
    auto index = client.Get(key);
    EXPECT_TRUE(index.ok()) << index.status().ToString();
    if (index.ok() && index->find(sha) != std::string::npos) {
      return remote.prefix + "/packs/" + ShaOfKey(key);
    }
  }
  return "";
}

// remote fsck --verify-data finds `sessions` sessions and nothing wrong.
void ExpectRemoteWhole(S3Client& client, const RemoteInfo& remote, uint64_t sessions) {
  uint64_t checked = 0;
  auto problems = CheckRemote(client, remote, /*verify_data=*/true, &checked);
  ASSERT_OK(problems.status());
  EXPECT_EQ(checked, sessions);
  EXPECT_TRUE(problems->empty()) << (*problems)[0].key << ": " << (*problems)[0].detail;
}

TEST_F(TransferTest, APulledSessionIsThePushedOneByteForByteAndComesBack) {
  MakeSession(*a_, "work");
  PushOptions options;
  uint64_t progress_calls = 0, last_done = 0, last_total = 0;
  options.progress = [&](uint64_t done, uint64_t total) {
    ++progress_calls;
    EXPECT_GT(done, last_done);  // chunks sent so far, one pack at a time, in order
    last_done = done;
    last_total = total;
  };
  ASSERT_OK_AND_ASSIGN(TransferStats pushed, Push(*a_, remote_, "work", options, getenv_));
  EXPECT_GT(pushed.chunks, 10u);
  EXPECT_EQ(pushed.sent, pushed.chunks);
  EXPECT_EQ(progress_calls, 1u);  // one pack
  EXPECT_EQ(last_done, pushed.chunks);
  EXPECT_EQ(last_total, pushed.chunks);
  // (head, the gc's doomed list, index listing, the chunks' pack and its
  // index, the metadata's pack and its index, the manifest, head): not one
  // per chunk
  EXPECT_EQ(pushed.requests, 9u);
  ASSERT_OK_AND_ASSIGN(TransferStats pulled, Pull(*b_, remote_, "work", {}, getenv_));
  EXPECT_EQ(pulled.head, pushed.head);
  EXPECT_EQ(pulled.sent, 0u);  // lazily: each chunk is fetched when first read
  EXPECT_EQ(pulled.left, pushed.chunks);
  EXPECT_EQ(CountChunks("b.db", "codec = 3"), static_cast<int64_t>(pushed.chunks));
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
  EXPECT_EQ(back.left, 1u);  // the one new chunk: the rest is here already
  EXPECT_EQ(back.chunks, pushed.chunks + 1);
  EXPECT_EQ(Read(*a_, "work-from-b", "/from-b.txt"), "written in the second store\n");
  EXPECT_EQ(Read(*a_, "work-from-b", "/big.bin"), Random(700'000, 1));
}

// A small host userland under `root`, as a host base sees one.
void MakeHost(const std::string& root) {
  auto put = [&](const std::string& rel, const std::string& content) {
    const std::string path = root + "/" + rel;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << content;
    chmod(path.c_str(), 0644);
  };
  put("usr/bin/tool", Random(200'000, 11));
  put("usr/share/doc/readme", "read me\n");
  put("usr/share/doc/license", "license text\n");
  put("usr/lib/deep/a/b/never-listed.txt", "far down\n");
  put("etc/config", "key=value\n");
  put("var/lib/dpkg/status", "Package: x\n");
  std::filesystem::create_symlink("usr/bin", root + "/bin");
}

// Replaces the bytes of host file `path` with others of the same length and
// puts its modification time back: only a hash can tell.
void ForgeSameSizeAndTime(const std::string& path) {
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  std::string bytes(static_cast<size_t>(st.st_size), 'X');
  std::ofstream(path, std::ios::trunc) << bytes;
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST_F(TransferTest, AHostBaseSessionIsPushedWholeAndReadsWhereThatHostIsNot) {
  const std::string host = dir_.File("host");
  MakeHost(host);
  ASSERT_OK(EnsureHostImage(*a_, host).status());
  ASSERT_OK(a_->CreateSessionFromImage("agent", kHostImage).status());
  Write(*a_, "agent", "notes.txt", "the agent's own\n");
  EXPECT_EQ(Read(*a_, "agent", "/usr/bin/tool"), Random(200'000, 11));  // read before the push

  ASSERT_OK_AND_ASSIGN(TransferStats first, Push(*a_, remote_, "agent", {}, getenv_));
  // The tool's 4 blocks, the host files never read, the copied ones, the
  // session's note: every chunk the session can see went up.
  EXPECT_GE(first.sent, 9u);
  EXPECT_EQ(first.sent, first.chunks);
  EXPECT_GT(first.bytes, 200'000u);

  // A second session on the same base costs nothing more, and nor does the
  // same host indexed by another store (per bucket, by SHA-256).
  ASSERT_OK(a_->CreateSessionFromImage("agent2", kHostImage).status());
  ASSERT_OK_AND_ASSIGN(TransferStats second, Push(*a_, remote_, "agent2", {}, getenv_));
  EXPECT_EQ(second.sent, 0u);
  auto c = OpenStore("c.db");
  ASSERT_OK(EnsureHostImage(*c, host).status());
  ASSERT_OK(c->CreateSessionFromImage("agent3", kHostImage).status());
  ASSERT_OK_AND_ASSIGN(TransferStats third, Push(*c, remote_, "agent3", {}, getenv_));
  EXPECT_GT(third.chunks, 0u);
  EXPECT_EQ(third.sent, 0u);

  // Another machine: that host is gone; everything reads from the remote.
  std::filesystem::rename(host, host + ".elsewhere");
  ASSERT_OK(Pull(*b_, remote_, "agent", {}, getenv_).status());
  EXPECT_EQ(Read(*b_, "agent", "/usr/bin/tool"), Random(200'000, 11));
  EXPECT_EQ(Read(*b_, "agent", "/bin/tool"), Random(200'000, 11));
  EXPECT_EQ(Read(*b_, "agent", "/usr/lib/deep/a/b/never-listed.txt"), "far down\n");
  EXPECT_EQ(Read(*b_, "agent", "/etc/config"), "key=value\n");
  EXPECT_EQ(Read(*b_, "agent", "/notes.txt"), "the agent's own\n");
  auto fs = Head(*b_, "agent");
  ASSERT_NE(fs, nullptr);
  ASSERT_OK_AND_ASSIGN(Attr doc, fs->Resolve("/usr/share/doc"));
  ASSERT_OK_AND_ASSIGN(auto names, fs->ReadDir(doc.ino));
  EXPECT_EQ(names.size(), 4u);  // ., .., license, readme
  EXPECT_EQ(CountChunks("b.db", "codec = 2"), 0);  // no reference to any host
  // Every chunk came with its content key: fetched, each is a chunk like any
  // other (fsck checks the bytes against it).
  ASSERT_OK(Pull(*b_, remote_, "agent", Eager(), getenv_).status());
  EXPECT_EQ(CountChunks("b.db", "codec = 3"), 0);
  EXPECT_EQ(CountChunks("b.db", "length(hash) != 16"), 0);
  auto problems = b_->CheckIntegrity();
  ASSERT_OK(problems.status());
  EXPECT_TRUE(problems->empty()) << (*problems)[0].kind << ": " << (*problems)[0].detail;
}

TEST_F(TransferTest, AHostBaseSessionPushedByReferenceChecksEachHostFileWhenRead) {
  const std::string host = dir_.File("host");
  MakeHost(host);
  ASSERT_OK(EnsureHostImage(*a_, host).status());
  ASSERT_OK(a_->CreateSessionFromImage("agent", kHostImage).status());
  Write(*a_, "agent", "notes.txt", "the agent's own\n");
  PushOptions by_reference;
  by_reference.host_by_reference = true;
  ASSERT_OK_AND_ASSIGN(TransferStats pushed, Push(*a_, remote_, "agent", by_reference, getenv_));
  // Only what is not a reference: the note and the copied files of /etc and
  // dpkg's state; the 200 kB tool stays on the host.
  EXPECT_EQ(pushed.sent, 3u);
  EXPECT_LT(pushed.bytes, 100'000u);
  // The same session pushed as chunks is not "up to date": the tool goes up.
  ASSERT_OK_AND_ASSIGN(TransferStats as_chunks, Push(*a_, remote_, "agent", {}, getenv_));
  EXPECT_FALSE(as_chunks.up_to_date);
  EXPECT_GT(as_chunks.bytes, 200'000u);
  // And by reference again: references again, the tool's bytes not needed.
  ASSERT_OK_AND_ASSIGN(TransferStats again, Push(*a_, remote_, "agent", by_reference, getenv_));
  EXPECT_FALSE(again.up_to_date);
  EXPECT_EQ(again.sent, 0u);

  // A puller must name the host root it trusts; another one is refused.
  EXPECT_CODE(Pull(*b_, remote_, "agent", As("elsewhere"), getenv_), Code::kAccess);
  PullOptions same_image;
  same_image.host_root = host;
  ASSERT_OK(Pull(*b_, remote_, "agent", same_image, getenv_).status());
  EXPECT_EQ(Read(*b_, "agent", "/usr/bin/tool"), Random(200'000, 11));
  EXPECT_EQ(Read(*b_, "agent", "/notes.txt"), "the agent's own\n");
  EXPECT_EQ(CountChunks("b.db", "codec = 2"), 7);  // 4 blocks of the tool, 2 docs, 1 deep file
  // A host file with other bytes, even of the same size and time, and one of
  // another size: EIO, never those bytes.
  ForgeSameSizeAndTime(host + "/usr/share/doc/readme");
  std::ofstream(host + "/usr/share/doc/license", std::ios::app) << "more\n";
  auto fs = Head(*b_, "agent");
  ASSERT_NE(fs, nullptr);
  for (const char* path : {"/usr/share/doc/readme", "/usr/share/doc/license"}) {
    ASSERT_OK_AND_ASSIGN(Attr attr, fs->Resolve(path));
    std::string buf(attr.size, '\0');
    SCOPED_TRACE(path);
    EXPECT_CODE(fs->Read(attr.ino, 0, {reinterpret_cast<uint8_t*>(buf.data()), buf.size()}),
                Code::kIoError);
  }
  EXPECT_EQ(Read(*b_, "agent", "/usr/lib/deep/a/b/never-listed.txt"), "far down\n");
}

TEST_F(TransferTest, ASecondPushSendsOnlyTheChangedChunk) {
  MakeSession(*a_, "work");
  ASSERT_OK_AND_ASSIGN(TransferStats first, Push(*a_, remote_, "work", {}, getenv_));
  Write(*a_, "work", "small.txt", Random(4096, 9));
  ASSERT_OK_AND_ASSIGN(TransferStats second, Push(*a_, remote_, "work", {}, getenv_));
  EXPECT_EQ(second.chunks, first.chunks + 1);
  EXPECT_EQ(second.sent, 1u);
  EXPECT_NE(second.head, first.head);
  // This store knows what the remote holds: no request per chunk. (head,
  // the doomed list, index listing, a HEAD of each pack it reuses, a new
  // pack and its index for the chunk and for the changed pieces of the
  // metadata, the manifest, head)
  EXPECT_LE(second.requests, 11u);
  EXPECT_LT(second.bytes, 64u << 10);
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
  // b's copy changed since its push, and the remote moved on: only --force
  // replaces it, and b's state is kept as a snapshot.
  Write(*b_, "work", "b2.txt", "b again\n");
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

TEST_F(TransferTest, APullReplacesASessionUnchangedHereAndAPushOfNothingNewSendsNothing) {
  MakeSession(*a_, "work");
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  ASSERT_OK(Pull(*b_, remote_, "work", {}, getenv_).status());
  // Nothing changed on either side: nothing to send (one request: the head).
  ASSERT_OK_AND_ASSIGN(TransferStats nothing, Push(*b_, remote_, "work", {}, getenv_));
  EXPECT_TRUE(nothing.up_to_date);
  EXPECT_EQ(nothing.requests, 1u);
  // a moves on; b did not change since its pull, so pulling again replaces
  // it without --force.
  Write(*a_, "work", "v2.txt", "second version\n");
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  ASSERT_OK_AND_ASSIGN(TransferStats forward, Pull(*b_, remote_, "work", {}, getenv_));
  EXPECT_FALSE(forward.up_to_date);
  EXPECT_EQ(Read(*b_, "work", "/v2.txt"), "second version\n");
  // Now b changes too: its session is no longer what it pulled, and a pull
  // that would replace it is refused, saying why.
  Write(*b_, "work", "mine.txt", "b's own\n");
  Write(*a_, "work", "v3.txt", "third version\n");
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  auto refused = Pull(*b_, remote_, "work", {}, getenv_);
  EXPECT_CODE(refused, Code::kExists);
  EXPECT_NE(refused.status().message().find("changed here"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(Read(*b_, "work", "/mine.txt"), "b's own\n");
}

TEST_F(TransferTest, ADamagedOrMissingPackFailsTheReadNeverGivesOtherBytes) {
  // Bytes of its own: the fetcher may have MakeSession's (checked) in memory.
  ASSERT_OK(a_->CreateSession("work").status());
  Write(*a_, "work", "notes.txt", "hello\n");
  Write(*a_, "work", "big.bin", Random(700'000, 1234));
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
  const std::string victim = PackHolding(*client, remote_, Random(700'000, 1234).substr(0, 65536));
  ASSERT_FALSE(victim.empty());
  ASSERT_OK_AND_ASSIGN(std::string body, client->Get(victim));
  std::string damaged = body;
  damaged[damaged.size() / 2] ^= 0x55;  // inside big.bin's chunks
  ASSERT_OK(client->Put(victim, damaged).status());
  // The pull brings the metadata; the damage shows when a chunk is read.
  ASSERT_OK(Pull(*b_, remote_, "work", {}, getenv_).status());
  EXPECT_EQ(Read(*b_, "work", "/notes.txt"), "hello\n");
  {
    auto fs = Head(*b_, "work");
    ASSERT_OK_AND_ASSIGN(auto attr, fs->Resolve("/big.bin"));
    std::string out(attr.size, '\0');
    auto n = fs->Read(attr.ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    EXPECT_CODE(n, Code::kIoError);
    EXPECT_NE(n.status().message().find(victim), std::string::npos) << n.status().message();
  }
  auto fetched = Pull(*b_, remote_, "work", Eager(), getenv_);
  EXPECT_CODE(fetched, Code::kCorruption);
  EXPECT_NE(fetched.status().message().find(victim), std::string::npos)
      << fetched.status().message();
  EXPECT_TRUE(b_->CheckIntegrity()->empty());  // what did arrive is whole
  ASSERT_OK(client->Delete(victim));
  EXPECT_CODE(Pull(*b_, remote_, "work", Eager(), getenv_), Code::kNotFound);
  // The pack is back (pushed again): the next pull --eager continues.
  ASSERT_OK(client->Put(victim, body).status());
  ASSERT_OK(Pull(*b_, remote_, "work", Eager(), getenv_).status());
  EXPECT_EQ(CountChunks("b.db", "codec = 3"), 0);
  EXPECT_TRUE(Read(*b_, "work", "/big.bin") == Random(700'000, 1234));
  auto missing = Pull(*b_, remote_, "nobody", {}, getenv_);
  EXPECT_CODE(missing, Code::kNotFound);
  EXPECT_NE(missing.status().message().find("has no session 'nobody'"), std::string::npos)
      << missing.status().message();
}

TEST_F(TransferTest, ALazyPullFetchesOnFirstReadReadsAheadAndKeepsWhatItFetched) {
  ASSERT_OK(a_->CreateSession("work").status());
  const std::string big = Random(4 << 20, 3);  // 64 chunks
  Write(*a_, "work", "small.txt", "small\n");    // packed first: no read of big.bin reads it
  Write(*a_, "work", "big.bin", big);
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  ASSERT_OK_AND_ASSIGN(TransferStats pulled, Pull(*b_, remote_, "work", {}, getenv_));
  EXPECT_EQ(pulled.left, 65u);
  EXPECT_EQ(CountChunks("b.db", "codec = 3"), 65);
  // Three 64 KiB blocks read in order: the third read is a read-ahead's.
  {
    auto fs = Head(*b_, "work");
    ASSERT_OK_AND_ASSIGN(auto attr, fs->Resolve("/big.bin"));
    for (uint64_t block = 0; block < 3; ++block) {
      std::string out(65536, '\0');
      ASSERT_OK_AND_ASSIGN(size_t n, fs->Read(attr.ino, block * 65536,
                                              {reinterpret_cast<uint8_t*>(out.data()), out.size()}));
      ASSERT_EQ(n, 65536u);
      EXPECT_EQ(out, big.substr(block * 65536, 65536)) << block;
    }
  }
  const int64_t left = CountChunks("b.db", "codec = 3");
  EXPECT_LT(left, 65 - 3);  // more than the three blocks were fetched and kept
  EXPECT_GT(left, 0);       // but not the whole file
  // The CLI reads the rest (and keeps it): a new process, the same store.
  const std::string cmd = Cli("b.db") + "cat work:/big.bin > '" + dir_.File("out.bin") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(dir_.File("out.bin"), std::ios::binary);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(out == big);
  EXPECT_EQ(CountChunks("b.db", "codec = 3"), 1);  // small.txt, never read
  // pull --eager on a pulled session fetches what was not read.
  ASSERT_OK_AND_ASSIGN(TransferStats rest, Pull(*b_, remote_, "work", Eager(), getenv_));
  EXPECT_TRUE(rest.up_to_date);
  EXPECT_EQ(rest.sent, 1u);
  EXPECT_EQ(CountChunks("b.db", "codec = 3"), 0);
  EXPECT_TRUE(b_->CheckIntegrity()->empty());
  // A store without the remote says what to do.
  ASSERT_OK(b_->CreateSession("x").status());
  testing::TempDir other;
  StoreOptions options;
  options.path = other.File("c.db");
  ASSERT_OK_AND_ASSIGN(auto c, Store::Open(options));
  ASSERT_OK(c->AddRemote(remote_));
  ASSERT_OK(Pull(*c, remote_, "work", {}, getenv_).status());
  ASSERT_OK(c->RemoveRemote(remote_.name));
  auto fs = Head(*c, "work");
  ASSERT_OK_AND_ASSIGN(auto attr, fs->Resolve("/small.txt"));
  std::string small(attr.size, '\0');
  auto n = fs->Read(attr.ino, 0, {reinterpret_cast<uint8_t*>(small.data()), small.size()});
  EXPECT_CODE(n, Code::kIoError);
  EXPECT_NE(n.status().message().find("no longer has"), std::string::npos) << n.status().message();
  // Exporting a session whose chunks are elsewhere is refused, saying why.
  auto exported = c->Export("work", other.File("work.bundle"));
  EXPECT_CODE(exported, Code::kNotSupported);
  EXPECT_NE(exported.status().message().find("--eager"), std::string::npos);
}

TEST_F(TransferTest, AMountedLazilyPulledSessionFetchesOnReadAndLogsWhatItCannot) {
  ASSERT_OK(a_->CreateSession("work").status());
  const std::string good = Random(1 << 20, 41), bad = Random(1 << 20, 42);
  Write(*a_, "work", "good.bin", good);
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  Write(*a_, "work", "bad.bin", bad);  // in a pack of its own
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
  const std::string victim = PackHolding(*client, remote_, bad.substr(0, 65536));
  ASSERT_FALSE(victim.empty());
  ASSERT_OK(client->Put(victim, "not a pack").status());
  ASSERT_OK(Pull(*b_, remote_, "work", {}, getenv_).status());
  b_.reset();  // the daemon serves the store from here on
  const std::string mnt = dir_.File("mnt");
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  const std::string strata = Cli("b.db");
  ASSERT_EQ(std::system((strata + "mount work '" + mnt + "'").c_str()), 0);
  {
    std::ifstream in(mnt + "/good.bin", std::ios::binary);
    std::string read((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(read == good);
  }
  const int fd = open((mnt + "/bad.bin").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char byte;
  errno = 0;
  EXPECT_EQ(pread(fd, &byte, 1, 0), -1);
  EXPECT_EQ(errno, EIO);
  close(fd);
  EXPECT_EQ(std::system((strata + "umount '" + mnt + "'").c_str()), 0);
  std::ifstream log_file(dir_.File("b.db-daemon.log"));
  std::string log((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find(victim), std::string::npos) << log;
  // What the daemon fetched was kept: good.bin's 16 chunks are here now.
  EXPECT_EQ(CountChunks("b.db", "codec = 3"), 16);
}

TEST_F(TransferTest, StoresPushingTheSameFilesShareTheBucketsPacks) {
  ASSERT_OK(a_->CreateSession("one").status());
  Write(*a_, "one", "lib.bin", Random(1 << 20, 21));
  ASSERT_OK_AND_ASSIGN(TransferStats first, Push(*a_, remote_, "one", {}, getenv_));
  EXPECT_EQ(first.sent, 16u);
  // Another store, another session, the same library plus one file.
  ASSERT_OK(b_->CreateSession("two").status());
  Write(*b_, "two", "lib.bin", Random(1 << 20, 21));
  Write(*b_, "two", "own.txt", "own\n");
  ASSERT_OK_AND_ASSIGN(TransferStats second, Push(*b_, remote_, "two", {}, getenv_));
  EXPECT_EQ(second.chunks, 17u);
  EXPECT_EQ(second.sent, 1u);  // learnt from the first store's pack index
  testing::TempDir other;
  StoreOptions options;
  options.path = other.File("c.db");
  ASSERT_OK_AND_ASSIGN(auto c, Store::Open(options));
  ASSERT_OK_AND_ASSIGN(TransferStats pulled, Pull(*c, remote_, "two", Eager(), getenv_));
  EXPECT_EQ(pulled.sent, 17u);
  EXPECT_EQ(Read(*c, "two", "/lib.bin"), Random(1 << 20, 21));
  EXPECT_EQ(Read(*c, "two", "/own.txt"), "own\n");
}

TEST_F(TransferTest, APullKilledAnywhereLeavesTheStoreWholeAndTheNextOneContinues) {
  MakeSession(*a_, "work");
  Write(*a_, "work", "more.bin", Random(6 << 20, 5));  // ~96 more chunks
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  b_.reset();  // the CLI opens the store from here on
  auto pull_killed_after = [&](const char* delay) {
    std::string cmd = Cli("b.db", std::string("timeout -s KILL ") + delay) +
                      "pull --eager --parallel 2 work >/dev/null 2>&1";
    return std::system(cmd.c_str());
  };
  int killed = 0;
  for (const char* delay : {"0.05", "0.1", "0.2", "0.3", "0.5"}) {
    // Killed, or done: the store must be whole either way.
    const int rc = pull_killed_after(delay);
    killed += WIFEXITED(rc) && WEXITSTATUS(rc) == 128 + SIGKILL;
    b_ = OpenStore("b.db");
    ASSERT_NE(b_, nullptr);
    auto problems = b_->CheckIntegrity();
    SCOPED_TRACE(delay);
    ASSERT_OK(problems.status());
    EXPECT_TRUE(problems->empty()) << delay << ": " << (*problems)[0].kind << ": "
                                   << (*problems)[0].detail;
    b_.reset();
  }
  EXPECT_GE(killed, 1);  // the first, at least, was cut short
  // The next pull finishes the job: every file whole, nothing left remote.
  b_ = OpenStore("b.db");
  ASSERT_OK(Pull(*b_, remote_, "work", Eager(), getenv_).status());
  EXPECT_EQ(CountChunks("b.db", "codec = 3"), 0);
  EXPECT_EQ(Read(*b_, "work", "/more.bin"), Random(6 << 20, 5));
  EXPECT_EQ(Read(*b_, "work", "/big.bin"), Random(700'000, 1));
  EXPECT_TRUE(b_->CheckIntegrity()->empty());
}

TEST_F(TransferTest, APushKilledAnywhereLeavesTheOldHeadAndTheNextOneResumes) {
  MakeSession(*a_, "work");
  ASSERT_OK_AND_ASSIGN(TransferStats first, Push(*a_, remote_, "work", {}, getenv_));
  Write(*a_, "work", "more.bin", Random(6 << 20, 5));  // ~96 new chunks
  a_.reset();  // the CLI opens the store from here on
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
  const std::string head_key = remote_.prefix + "/sessions/work/HEAD";
  for (const char* delay : {"0.05", "0.2", "0.4", "0.8"}) {
    std::string cmd = Cli("a.db", std::string("timeout -s KILL ") + delay) +
                      "push work --parallel 2 >/dev/null 2>&1";
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
    if (bundle != first.head) {  // a push got through
      EXPECT_EQ(Read(*c, "work", "/more.bin"), Random(6 << 20, 5));
      break;
    }
  }
  // The next push uploads only what the killed ones did not: the chunks no
  // pack index names yet.
  a_ = OpenStore("a.db");
  std::set<std::string> indexed;
  for (const std::string& key : AllKeys(*client, remote_.prefix + "/index/")) {
    ASSERT_OK_AND_ASSIGN(std::string index, client->Get(key));
    std::istringstream lines(index);
    for (std::string sha, offset, length; lines >> sha >> offset >> length;) indexed.insert(sha);
  }
  ASSERT_OK_AND_ASSIGN(TransferStats last, Push(*a_, remote_, "work", {}, getenv_));
  if (last.up_to_date) return;  // a killed push had got through: nothing left
  uint64_t chunks_indexed = 0;  // (the rest of `indexed` are pieces of metadata)
  {
    auto conn = sql::Connection::Open(dir_.File("a.db"), sql::OpenMode::kQueryOnly);
    ASSERT_TRUE(conn.ok());
    ASSERT_OK_AND_ASSIGN(auto shas, (*conn)->PrepareUncached("SELECT DISTINCT sha FROM chunk_sha"));
    ASSERT_OK(shas.ForEachRow([&](sql::Statement& row) {
      chunks_indexed += indexed.count(row.Text(0));
      return Status::Ok();
    }));
  }
  EXPECT_EQ(last.sent + chunks_indexed, last.chunks);
}

TEST_F(TransferTest, RemoteGcDoomsAnOldUnreferencedPackBeforeItDeletesItAndPushesStopUsingIt) {
  // Session "old" is pushed, then its head removed (as by another machine's
  // rm): its packs are unreferenced, and older than the grace period.
  ASSERT_OK(a_->CreateSession("old").status());
  Write(*a_, "old", "x.bin", Random(300'000, 91));
  ASSERT_OK(Push(*a_, remote_, "old", {}, getenv_).status());
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
  ASSERT_OK(client->Delete(SessionKey(remote_, "old") + "HEAD"));
  const std::string x_pack = PackHolding(*client, remote_, Random(300'000, 91).substr(0, 65536));
  ASSERT_FALSE(x_pack.empty());
  constexpr int64_t kGrace = 2;
  std::this_thread::sleep_for(std::chrono::seconds(kGrace + 1));

  // The first gc only dooms what nothing references: a push that began
  // before the gc may still rely on it.
  ASSERT_OK_AND_ASSIGN(RemoteGcStats first, CollectRemoteGarbage(*client, remote_, kGrace));
  EXPECT_EQ(first.packs_deleted, 0u);
  EXPECT_GE(first.packs_doomed, 2u);  // x's pack, the metadata's
  EXPECT_OK(client->Head(x_pack).status());
  // Pushes from now on do not rely on a doomed pack. Another store's push of
  // the same bytes makes a pack of the same name: it writes it again (say its
  // head has not moved yet when the next gc runs)...
  ASSERT_OK(b_->CreateSession("again").status());
  Write(*b_, "again", "x.bin", Random(300'000, 91));
  ASSERT_OK_AND_ASSIGN(TransferStats again, Push(*b_, remote_, "again", {}, getenv_));
  EXPECT_EQ(again.sent, 5u);  // 300,000 bytes in 64 KiB blocks
  ASSERT_OK(client->Delete(SessionKey(remote_, "again") + "HEAD"));
  // ... and this store, which knew the bytes were there, sends them again.
  ASSERT_OK(a_->CreateSession("new").status());
  Write(*a_, "new", "x.bin", Random(300'000, 91));
  Write(*a_, "new", "y.bin", Random(1'000, 92));
  ASSERT_OK_AND_ASSIGN(TransferStats pushed, Push(*a_, remote_, "new", {}, getenv_));
  EXPECT_EQ(pushed.sent, 6u);  // x's 5 chunks and y, in a pack of their own

  // A grace period after the doom, a gc deletes what is still unreferenced
  // and was not written since: the old metadata, not x's pack.
  std::this_thread::sleep_for(std::chrono::seconds(kGrace + 1));
  ASSERT_OK_AND_ASSIGN(RemoteGcStats second, CollectRemoteGarbage(*client, remote_, kGrace));
  EXPECT_GE(second.packs_deleted, 1u);
  EXPECT_OK(client->Head(x_pack).status());
  ExpectRemoteWhole(*client, remote_, 1);
  ASSERT_OK(Pull(*b_, remote_, "new", Eager(), getenv_).status());
  EXPECT_EQ(Read(*b_, "new", "/x.bin"), Random(300'000, 91));
  EXPECT_EQ(Read(*b_, "new", "/y.bin"), Random(1'000, 92));
  // Once nothing was written for a grace period, x's pack goes too.
  std::this_thread::sleep_for(std::chrono::seconds(kGrace + 1));
  ASSERT_OK(CollectRemoteGarbage(*client, remote_, kGrace).status());
  std::this_thread::sleep_for(std::chrono::seconds(kGrace + 1));
  ASSERT_OK_AND_ASSIGN(RemoteGcStats last, CollectRemoteGarbage(*client, remote_, kGrace));
  EXPECT_GE(last.packs_deleted, 1u);
  EXPECT_CODE(client->Head(x_pack), Code::kNotFound);
  EXPECT_CODE(client->Head(DoomedKey(remote_)), Code::kNotFound);  // nothing left doomed
  ExpectRemoteWhole(*client, remote_, 1);
}

TEST_F(TransferTest, RemoteGcDeletesOnlyWhatNoHeadReferencesAndFsckFindsWhatIsMissing) {
  MakeSession(*a_, "work");
  ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  MakeSession(*a_, "other");
  Write(*a_, "other", "own.bin", Random(300'000, 77));
  ASSERT_OK(Push(*a_, remote_, "other", {}, getenv_).status());
  // Three more pushes of "work", each replacing a file (each in a pack of
  // its own): the head keeps the last two bundles; the first two bundles and
  // the pack of big2's first version are garbage.
  for (uint32_t seed : {11u, 12u, 13u}) {
    Write(*a_, "work", "big2.bin", Random(200'000, seed));
    ASSERT_OK(Push(*a_, remote_, "work", {}, getenv_).status());
  }
  ASSERT_OK_AND_ASSIGN(auto client, Connect(remote_, getenv_));
  const size_t packs_before = AllKeys(*client, remote_.prefix + "/packs/").size();
  const std::string first_big2 = PackHolding(*client, remote_, Random(200'000, 11).substr(0, 65536));
  ASSERT_FALSE(first_big2.empty());
  // Everything is young: a gc with the default grace deletes nothing.
  ASSERT_OK_AND_ASSIGN(RemoteGcStats young, CollectRemoteGarbage(*client, remote_, 3600));
  EXPECT_EQ(young.sessions, 2u);
  EXPECT_EQ(young.packs_deleted + young.bundles_deleted, 0u);
  EXPECT_GT(young.young_kept, 0u);
  ASSERT_OK_AND_ASSIGN(RemoteGcStats gc, CollectRemoteGarbage(*client, remote_, 0));
  EXPECT_EQ(gc.bundles_deleted, 2u);  // work's first two (other has one: kept)
  // big2's first version: no head names its pack any more (nor some of the
  // metadata pieces of the bundles deleted).
  const std::vector<std::string> packs_after = AllKeys(*client, remote_.prefix + "/packs/");
  EXPECT_GE(gc.packs_deleted, 1u);
  EXPECT_EQ(packs_after.size(), packs_before - gc.packs_deleted);
  EXPECT_EQ(gc.packs_kept, packs_after.size());
  EXPECT_EQ(std::count(packs_after.begin(), packs_after.end(), first_big2), 0);
  EXPECT_EQ(AllKeys(*client, remote_.prefix + "/index/").size(), packs_after.size());
  ExpectRemoteWhole(*client, remote_, 2);
  // Both still pull whole.
  ASSERT_OK(Pull(*b_, remote_, "work", Eager(), getenv_).status());
  EXPECT_EQ(Read(*b_, "work", "/big2.bin"), Random(200'000, 13));
  ASSERT_OK(Pull(*b_, remote_, "other", Eager(), getenv_).status());
  EXPECT_EQ(Read(*b_, "other", "/own.bin"), Random(300'000, 77));
  // fsck names a pack that is gone, and with --verify-data one that is damaged.
  const std::string gone = PackHolding(*client, remote_, Random(300'000, 77).substr(0, 65536));
  const std::string damaged = PackHolding(*client, remote_, Random(200'000, 13).substr(0, 65536));
  ASSERT_FALSE(gone.empty());
  ASSERT_FALSE(damaged.empty());
  ASSERT_OK(client->Delete(gone));
  ASSERT_OK_AND_ASSIGN(std::string body, client->Get(damaged));
  body[body.size() - 1] ^= 1;
  ASSERT_OK(client->Put(damaged, body).status());
  uint64_t sessions = 0;
  ASSERT_OK_AND_ASSIGN(auto problems, CheckRemote(*client, remote_, false, &sessions));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, gone);
  EXPECT_NE(problems[0].detail.find("missing"), std::string::npos) << problems[0].detail;
  ASSERT_OK_AND_ASSIGN(problems, CheckRemote(*client, remote_, true, &sessions));
  ASSERT_EQ(problems.size(), 2u);
  const bool gone_first = gone < damaged;
  EXPECT_EQ(problems[gone_first ? 0 : 1].key, gone);
  EXPECT_EQ(problems[gone_first ? 1 : 0].key, damaged);
  EXPECT_NE(problems[gone_first ? 1 : 0].detail.find("damaged"), std::string::npos)
      << problems[gone_first ? 1 : 0].detail;
}

}  // namespace
}  // namespace strata::remote
