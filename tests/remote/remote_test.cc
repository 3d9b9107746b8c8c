// Remotes without a server: URLs, credentials, regions, the CLI's remote
// add|ls|rm with its errors, and how a session's metadata is cut into
// pieces. (s3_client_test.cc and s3_transfer_test.cc talk to radosgw.)
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <nlohmann/json.hpp>
#include <string>

#include "remote/manifest.h"
#include "remote/remote.h"
#include "sql/database.h"
#include "store/bundle.h"
#include "testing/cli_runner.h"
#include "testing/temp_store.h"

namespace strata::remote {
namespace {

// An environment of our own, for LoadCredentials and ResolveRegion.
struct FakeEnv {
  std::map<std::string, std::string> vars;
  Getenv get() const {
    return [this](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(RemoteUrlTest, BucketAndPrefixAreParsedAndBadOnesRefused) {
  RemoteInfo r;
  ASSERT_OK(ParseS3Url("s3://my-bucket", &r));
  EXPECT_EQ(r.bucket, "my-bucket");
  EXPECT_EQ(r.prefix, "");
  ASSERT_OK(ParseS3Url("s3://my.bucket-1/team/agents/", &r));
  EXPECT_EQ(r.bucket, "my.bucket-1");
  EXPECT_EQ(r.prefix, "team/agents");
  EXPECT_EQ(S3Url(r), "s3://my.bucket-1/team/agents");
  for (const char* bad : {"my-bucket", "http://b/x", "s3://", "s3://ab", "s3://Upper",
                          "s3://-dash", "s3://a..b", "s3://bucket/a//b", "s3://bucket/a/../b",
                          "s3://under_score"}) {
    SCOPED_TRACE(bad);
    EXPECT_CODE(ParseS3Url(bad, &r), Code::kInvalid);
  }
}

TEST(RemoteCredentialsTest, TheEnvironmentComesFirstThenTheProfileFiles) {
  testing::TempDir dir;
  FakeEnv env;
  env.vars["HOME"] = dir.path().string();
  EXPECT_CODE(LoadCredentials(env.get()), Code::kAccess);
  std::filesystem::create_directories(dir.File(".aws"));
  std::ofstream(dir.File(".aws/credentials"))
      << "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = sdefault\n"
         "[work]\naws_access_key_id=AKWORK\naws_secret_access_key=swork\naws_session_token=tok\n";
  std::ofstream(dir.File(".aws/config"))
      << "[profile other]\naws_access_key_id = AKCONFIG\naws_secret_access_key = sconfig\n";
  ASSERT_OK_AND_ASSIGN(S3Credentials c, LoadCredentials(env.get()));
  EXPECT_EQ(c.access_key, "AKDEFAULT");
  EXPECT_EQ(c.secret_key, "sdefault");
  EXPECT_EQ(c.session_token, "");
  env.vars["AWS_PROFILE"] = "work";
  ASSERT_OK_AND_ASSIGN(c, LoadCredentials(env.get()));
  EXPECT_EQ(c.access_key, "AKWORK");
  EXPECT_EQ(c.session_token, "tok");
  env.vars["AWS_PROFILE"] = "other";  // only in the config file
  ASSERT_OK_AND_ASSIGN(c, LoadCredentials(env.get()));
  EXPECT_EQ(c.access_key, "AKCONFIG");
  env.vars["AWS_PROFILE"] = "missing";
  auto missing = LoadCredentials(env.get());
  EXPECT_CODE(missing, Code::kAccess);
  EXPECT_NE(missing.status().message().find("'missing'"), std::string::npos)
      << missing.status().message();
  env.vars["AWS_ACCESS_KEY_ID"] = "AKENV";
  env.vars["AWS_SECRET_ACCESS_KEY"] = "senv";
  ASSERT_OK_AND_ASSIGN(c, LoadCredentials(env.get()));
  EXPECT_EQ(c.access_key, "AKENV");
  EXPECT_EQ(c.secret_key, "senv");
}

TEST(RemoteCredentialsTest, TheRegionIsTheRemotesThenTheEnvironments) {
  FakeEnv env;
  EXPECT_EQ(ResolveRegion("", env.get()), "us-east-1");
  env.vars["AWS_DEFAULT_REGION"] = "eu-west-1";
  EXPECT_EQ(ResolveRegion("", env.get()), "eu-west-1");
  env.vars["AWS_REGION"] = "ap-south-1";
  EXPECT_EQ(ResolveRegion("", env.get()), "ap-south-1");
  EXPECT_EQ(ResolveRegion("us-west-2", env.get()), "us-west-2");
  RemoteInfo r;
  r.bucket = "b";
  EXPECT_EQ(LocationOf(r, env.get()).endpoint, "https://s3.ap-south-1.amazonaws.com");
  r.endpoint = "http://127.0.0.1:7480";
  EXPECT_EQ(LocationOf(r, env.get()).endpoint, "http://127.0.0.1:7480");
}

TEST(RemoteCliTest, AddListRemoveAndEveryMistakeSaysWhatIsWrong) {
  testing::TempDir dir;
  const std::string store = dir.File("store.db");
  auto strata = [&](const std::string& args) { return testing::RunStrata(dir, store, args); };
  testing::CliRun r = strata("remote add origin s3://bucket-a/agents --endpoint http://127.0.0.1:9 --region r1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(strata("remote add origin s3://bucket-b").exit_code, 1);
  r = strata("remote add other s3://Bad_Bucket");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a valid S3 bucket name"), std::string::npos) << r.err;
  r = strata("remote add other s3://bucket-b --endpoint ftp://x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--endpoint"), std::string::npos) << r.err;
  r = strata("--json remote ls");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto listed = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(listed.is_array() && listed.size() == 1) << r.out;
  EXPECT_EQ(listed[0]["url"], "s3://bucket-a/agents");
  EXPECT_EQ(listed[0]["endpoint"], "http://127.0.0.1:9");
  EXPECT_EQ(listed[0]["region"], "r1");
  // Nothing listens on port 9: one line saying what to check, never a hang.
  setenv("AWS_ACCESS_KEY_ID", "AKTEST", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  r = strata("remote check origin");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach http://127.0.0.1:9"), std::string::npos) << r.err;
  EXPECT_EQ(strata("remote rm origin").exit_code, 0);
  r = strata("remote rm origin");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no remote named 'origin'"), std::string::npos) << r.err;
}

TEST(PiecesTest, CutsDependOnContentSoAnInsertionChangesOnlyThePiecesAroundIt) {
  std::mt19937 rng(7);
  std::string bytes(1 << 20, '\0');
  for (char& c : bytes) c = static_cast<char>(rng());
  std::vector<std::string_view> before = CutPieces(bytes);
  std::string joined;
  for (size_t i = 0; i < before.size(); ++i) {
    joined += before[i];
    if (i + 1 < before.size()) {
      EXPECT_GE(before[i].size(), 4u << 10) << i;
    }
    EXPECT_LE(before[i].size(), 64u << 10) << i;
  }
  EXPECT_EQ(joined, bytes);
  EXPECT_GT(before.size(), 16u);  // about 16 KiB each
  EXPECT_LT(before.size(), 128u);
  std::string changed = bytes;
  changed.insert(changed.size() / 2, "a few inserted bytes");
  const std::set<std::string_view> old(before.begin(), before.end());
  size_t fresh = 0;
  for (std::string_view piece : CutPieces(changed)) fresh += old.count(piece) == 0;
  EXPECT_GE(fresh, 1u);
  EXPECT_LE(fresh, 2u);
  EXPECT_TRUE(CutPieces("").empty());
}

TEST(BundleRowsTest, ABundleBuiltFromItsRowsIsTheSameBundle) {
  testing::TempDir dir;
  StoreOptions options;
  options.path = dir.File("a.db");
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(options));
  ASSERT_OK_AND_ASSIGN(SessionInfo info, store->CreateSession("work"));
  {
    ASSERT_OK_AND_ASSIGN(auto fs, store->OpenFilesystem(View{info.branch, kHead}));
    testing::ReplaceFile(*fs, kRootIno, "a.txt", std::string(100'000, 'a'));
    ASSERT_OK(fs->FlushAll());
  }
  ASSERT_OK(store->KvUpdate(info.branch, {{"k", "\"v\""}}));
  ASSERT_OK(store->Snapshot(info.branch, "s1").status());
  ASSERT_OK(store->Export("work", dir.File("a.bundle")).status());
  std::string rows;
  {
    ASSERT_OK_AND_ASSIGN(auto bundle, sql::Connection::Open(dir.File("a.bundle"),
                                                            sql::OpenMode::kQueryOnly));
    ASSERT_OK_AND_ASSIGN(rows, BundleRows(*bundle));
  }
  ASSERT_OK(BundleFromRows(rows, dir.File("b.bundle")));
  {
    ASSERT_OK_AND_ASSIGN(auto rebuilt, sql::Connection::Open(dir.File("b.bundle"),
                                                             sql::OpenMode::kQueryOnly));
    ASSERT_OK_AND_ASSIGN(std::string again, BundleRows(*rebuilt));
    EXPECT_TRUE(again == rows);
  }
  options.path = dir.File("b.db");
  ASSERT_OK_AND_ASSIGN(auto other, Store::Open(options));
  ASSERT_OK(other->Import(dir.File("b.bundle")).status());  // checksum and fsck pass
  ASSERT_OK_AND_ASSIGN(SessionInfo there, other->GetSession("work"));
  ASSERT_OK_AND_ASSIGN(std::string v, other->KvGet(View{there.branch, kHead}, "k"));
  EXPECT_EQ(v, "\"v\"");
  // A stream cut short, or naming a table bundles do not have, is refused.
  EXPECT_CODE(BundleFromRows(rows.substr(0, rows.size() / 2), dir.File("c.bundle")),
              Code::kCorruption);
  std::string foreign = rows;
  foreign.replace(foreign.find("Tmeta"), 5, "Tmetx");
  EXPECT_CODE(BundleFromRows(foreign, dir.File("d.bundle")), Code::kCorruption);
  EXPECT_CODE(BundleFromRows("not rows", dir.File("e.bundle")), Code::kCorruption);
}

}  // namespace
}  // namespace strata::remote
