// The control socket's requests: snapshot, fork (of the live head or of a
// frozen view), errors that keep their code, and requests that are not
// what the protocol says (the server answers with an error and goes on).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "control/control.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

class ControlTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_OK_AND_ASSIGN(server_, control::ControlServer::Start(*store_, *fs_, "main"));
  }

  Result<nlohmann::json> Call(const nlohmann::json& request) {
    return control::Call(store_->path(), "main", request);
  }

  // Sends `line` as is and returns the reply line ("" if none).
  std::string Raw(const std::string& line) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = control::SocketPath(store_->path(), "main");
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    std::string reply;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
      char c;
      while (read(fd, &c, 1) == 1 && c != '\n') reply.push_back(c);
    }
    close(fd);
    return reply;
  }

  std::string ReadAll(Filesystem& fs, const std::string& path) {
    auto attr = fs.Resolve(path, true);
    if (!attr.ok()) return "error: " + attr.status().ToString();
    std::string data(attr->size, '\0');
    auto n = fs.Read(attr->ino, 0, {reinterpret_cast<uint8_t*>(data.data()), data.size()});
    return n.ok() ? data.substr(0, *n) : "error: " + n.status().ToString();
  }

  std::unique_ptr<control::ControlServer> server_;
};

TEST_F(ControlTest, SnapshotRepliesWithTheNewSnapshotsId) {
  WriteFile(kRootIno, "a", "before");
  ASSERT_OK_AND_ASSIGN(nlohmann::json reply, Call({{"op", "snapshot"}, {"name", "s1"}}));
  ASSERT_OK_AND_ASSIGN(SnapshotInfo snap, store_->FindSnapshot(branch_, "s1"));
  EXPECT_EQ(reply["id"].get<int64_t>(), snap.id);
  EXPECT_EQ(reply["version"].get<Version>(), snap.version);
}

TEST_F(ControlTest, ForkOfTheLiveHeadHoldsBufferedWrites) {
  WriteFile(kRootIno, "a", "buffered");  // not flushed: only in the write buffer
  ASSERT_OK_AND_ASSIGN(nlohmann::json reply, Call({{"op", "fork"}, {"session", "copy"}}));
  ASSERT_OK_AND_ASSIGN(SessionInfo copy, store_->GetSession("copy"));
  EXPECT_EQ(reply["branch"].get<BranchId>(), copy.branch);
  ASSERT_OK_AND_ASSIGN(auto view, store_->OpenFilesystem(View{copy.branch, kHead}));
  EXPECT_EQ(ReadAll(*view, "/a"), "buffered");
  // Later writes to the original are not in the fork.
  WriteFile(kRootIno, "b", "later");
  EXPECT_FALSE(view->Resolve("/b", true).ok());
}

TEST_F(ControlTest, ForkOfAFrozenViewAndErrorsKeepTheirCode) {
  WriteFile(kRootIno, "a", "one");
  ASSERT_OK_AND_ASSIGN(nlohmann::json snap, Call({{"op", "snapshot"}, {"name", "s1"}}));
  WriteFile(kRootIno, "b", "two");
  ASSERT_OK(Call({{"op", "fork"},
                  {"session", "old"},
                  {"branch", snap["branch"]},
                  {"version", snap["version"]}})
                .status());
  ASSERT_OK_AND_ASSIGN(SessionInfo old, store_->GetSession("old"));
  ASSERT_OK_AND_ASSIGN(auto view, store_->OpenFilesystem(View{old.branch, kHead}));
  EXPECT_EQ(ReadAll(*view, "/a"), "one");
  EXPECT_FALSE(view->Resolve("/b", true).ok());
  // The daemon's Status code reaches the caller, not only an errno.
  auto again = Call({{"op", "fork"}, {"session", "old"}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kExists) << again.status().ToString();
  auto bad_name = Call({{"op", "fork"}, {"session", "no/slash"}});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.status().code(), Code::kInvalid) << bad_name.status().ToString();
}

TEST_F(ControlTest, MalformedRequestsGetAnErrorAndTheServerGoesOn) {
  for (const std::string line :
       {"not json", "[1,2]", "{\"op\":5}", "{\"op\":null}", "{\"op\":\"fork\"}",
        "{\"op\":\"fork\",\"session\":7}",
        "{\"op\":\"fork\",\"session\":\"x\",\"branch\":\"a\",\"version\":1}",
        "{\"op\":\"snapshot\",\"name\":[]}", "{\"op\":\"quota\",\"bytes\":\"lots\"}",
        "{\"op\":\"nonsense\"}"}) {
    SCOPED_TRACE(line);
    std::string reply = Raw(line + "\n");
    nlohmann::json parsed = nlohmann::json::parse(reply, nullptr, false);
    ASSERT_TRUE(parsed.is_object()) << "reply: " << reply;
    // Either refused, or (snapshot with a bad name, quota) done with defaults.
    if (!parsed["ok"].get<bool>()) {
      EXPECT_TRUE(parsed["error"].is_string());
    }
  }
  EXPECT_OK(Call({{"op", "status"}}).status());
  EXPECT_FALSE(store_->GetSession("x").ok());
}

}  // namespace
}  // namespace strata
