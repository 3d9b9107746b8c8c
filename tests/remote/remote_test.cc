// Remotes without a server: URLs, credentials, regions, and the CLI's
// remote add|ls|rm with its errors. (s3_client_test.cc talks to radosgw.)
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "remote/remote.h"
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

}  // namespace
}  // namespace strata::remote
