// End-to-end tests of the `strata` binary: real processes, a real store file.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::CliRun;
using testing::Slurp;

class CliTest : public ::testing::Test {
 protected:
  std::string store() const { return dir_.File("store.db"); }

  // Runs `strata ARGS` with --store pointing into the test's directory (unless
  // the arguments name one), feeding `input` on standard input.
  CliRun Strata(const std::string& args, const std::string& input = "", bool with_store = true) {
    return testing::RunStrata(dir_, with_store ? store() : "", args, input);
  }

  testing::TempDir dir_;
};

TEST_F(CliTest, DemoShowsBaseAndForkSideBySide) {
  CliRun r = Strata("demo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("demo-1@base"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("demo-1-fork"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("~  /src/greet.c"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("+  /tests/greet_test.c"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-  /notes.txt"), std::string::npos) << r.out;
  // A second run picks fresh session names instead of failing.
  CliRun again = Strata("demo");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("demo-2@base"), std::string::npos) << again.out;
}

TEST_F(CliTest, PutCatSnapshotForkDiffRoundTrip) {
  ASSERT_EQ(Strata("init --base empty work").exit_code, 0);
  ASSERT_EQ(Strata("put work:/dir/a.txt", "first\n").exit_code, 0);
  CliRun cat = Strata("cat work:/dir/a.txt");
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, "first\n");
  ASSERT_EQ(Strata("snapshot work v1").exit_code, 0);
  ASSERT_EQ(Strata("put work:/dir/a.txt", "second version\n").exit_code, 0);
  ASSERT_EQ(Strata("put work:/dir/b.txt", "new\n").exit_code, 0);
  EXPECT_EQ(Strata("cat work@v1:/dir/a.txt").out, "first\n");
  EXPECT_EQ(Strata("cat work:/dir/a.txt").out, "second version\n");
  CliRun diff = Strata("diff work@v1 work");
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_EQ(diff.out, "~ /dir/a.txt  (6 -> 15 bytes)\n+ /dir/b.txt\n");
  ASSERT_EQ(Strata("fork work@v1 other").exit_code, 0);
  EXPECT_EQ(Strata("cat other:/dir/a.txt").out, "first\n");
  CliRun ls = Strata("--json ls other:/dir");
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  auto entries = nlohmann::json::parse(ls.out);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["name"], "a.txt");
  EXPECT_EQ(entries[0]["size"], 6);
}

TEST_F(CliTest, RestoreRewindsAndCanBeUndone) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("put s:/f", "old").exit_code, 0);
  ASSERT_EQ(Strata("snapshot s before").exit_code, 0);
  ASSERT_EQ(Strata("put s:/f", "new").exit_code, 0);
  CliRun restore = Strata("restore s@before");
  ASSERT_EQ(restore.exit_code, 0) << restore.err;
  EXPECT_NE(restore.out.find("strata restore s@before-restore-1"), std::string::npos)
      << restore.out;
  EXPECT_EQ(Strata("cat s:/f").out, "old");
  ASSERT_EQ(Strata("restore s@before-restore-1").exit_code, 0);
  EXPECT_EQ(Strata("cat s:/f").out, "new");
  CliRun snaps = Strata("--json snapshots s");
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  auto list = nlohmann::json::parse(snaps.out);
  std::vector<std::string> names;
  for (const auto& s : list) names.push_back(s["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"before", "before-restore-1", "before-restore-2"}));
}

TEST_F(CliTest, MissingStoreIsAClearError) {
  CliRun r = Strata("sessions");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no store at " + store()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("strata init"), std::string::npos) << r.err;
}

TEST_F(CliTest, GarbageStoreFileIsRefusedAndUntouched) {
  std::string garbage(8192, 'x');
  std::ofstream(store()) << garbage;
  CliRun r = Strata("sessions");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(store()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not a SQLite database"), std::string::npos) << r.err;
  EXPECT_EQ(Slurp(store()), garbage);
}

TEST_F(CliTest, BadAddressesAndNamesAreClearErrors) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  struct Case {
    std::string args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"cat s@:/x", "empty snapshot"},
           {"cat nosuch:/x", "no session 'nosuch'"},
           {"cat s@nosnap:/x", "has no snapshot 'nosnap'"},
           {"cat s:/missing", "no entry 'missing'"},
           {"init 'bad name'", "may contain only"},
           {"init s", "exists"},
           {"fork s:/path t", "not a path"},
           {"restore s", "SESSION@SNAP"},
           {"put s@x:/f", "read-only"},
       }) {
    CliRun r = Strata(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << ": " << r.err;
  }
}

TEST_F(CliTest, UsageErrorsExitNonZeroWithHint) {
  CliRun none = Strata("", "", false);
  EXPECT_NE(none.exit_code, 0);
  CliRun unknown = Strata("frobnicate");
  EXPECT_NE(unknown.exit_code, 0);
  CliRun missing_arg = Strata("snapshot");
  EXPECT_NE(missing_arg.exit_code, 0);
  EXPECT_NE(missing_arg.err.find("session"), std::string::npos) << missing_arg.err;
  CliRun help = Strata("--help", "", false);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("snapshot"), std::string::npos);
}

// main() defines subcommands group by group until the named one exists:
// every subcommand that the full help lists must still be found by name,
// with --store before it, and take global options after it.
TEST_F(CliTest, EverySubcommandInTheHelpIsFoundByName) {
  CliRun help = Strata("--help", "", false);
  ASSERT_EQ(help.exit_code, 0);
  std::istringstream lines(help.out.substr(help.out.find("Subcommands:")));
  std::vector<std::string> names;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  ", 0) == 0 && line.size() > 2 && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  EXPECT_GE(names.size(), 20u) << help.out;
  for (const std::string& name : names) {
    CliRun sub = Strata(name + " --help");
    EXPECT_EQ(sub.exit_code, 0) << name << ": " << sub.err;
    EXPECT_NE(sub.out.find("Usage: "), std::string::npos) << name;
    EXPECT_NE(sub.out.find(" " + name + " "), std::string::npos) << name << ": " << sub.out;
  }
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  CliRun store_after = Strata("sessions --json --store " + store(), "", false);
  EXPECT_EQ(store_after.exit_code, 0) << store_after.err;
  EXPECT_EQ(nlohmann::json::parse(store_after.out, nullptr, false).is_array(), true)
      << store_after.out;
}

TEST_F(CliTest, FsckReportsCleanStoreAndGcFreesOverwrittenData) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("put s:/f", std::string(200000, 'a')).exit_code, 0);
  ASSERT_EQ(Strata("put s:/f", std::string(200000, 'b')).exit_code, 0);
  CliRun gc = Strata("gc");
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_NE(gc.out.find(", 2 chunks ("), std::string::npos) << gc.out;
  CliRun fsck = Strata("fsck");
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
  EXPECT_NE(fsck.out.find("no problems found"), std::string::npos);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

class CliKvTest : public CliTest {};

TEST_F(CliKvTest, SetGetListRemoveUpdateAcrossSnapshotsAndForks) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  CliRun set = Strata(R"(kv s set plan '{"steps": [1, 2]}' turns 3)");
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(Strata("kv s get plan").out, "{\"steps\":[1,2]}\n");
  CliRun from_stdin = Strata("kv s set note", "\"from stdin\"\n");
  ASSERT_EQ(from_stdin.exit_code, 0) << from_stdin.err;
  EXPECT_EQ(Strata("kv s get note").out, "\"from stdin\"\n");

  CliRun list = Strata("--json kv s list");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto entries = nlohmann::json::parse(list.out);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0]["key"], "note");
  EXPECT_EQ(entries[1]["value"]["steps"][1], 2);
  EXPECT_EQ(entries[2]["value"], 3);
  CliRun table = Strata("kv s list --prefix t");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out, "KEY    VALUE\nturns  3\n");

  ASSERT_EQ(Strata("snapshot s v1").exit_code, 0);
  CliRun update = Strata(R"(kv s update '{"turns": 4, "note": null}')");
  ASSERT_EQ(update.exit_code, 0) << update.err;
  EXPECT_EQ(Strata("kv s get turns").out, "4\n");
  EXPECT_EQ(Strata("kv s@v1 get turns").out, "3\n");
  CliRun gone = Strata("kv s get note");
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("strata kv get: no key 'note' in s"), std::string::npos) << gone.err;

  ASSERT_EQ(Strata("fork s@v1 f").exit_code, 0);
  EXPECT_EQ(Strata("kv f get note").out, "\"from stdin\"\n");
  ASSERT_EQ(Strata("kv s rm plan turns").exit_code, 0);
  EXPECT_EQ(Strata("--json kv s list").out, "[]\n");
  EXPECT_EQ(nlohmann::json::parse(Strata("--json kv f list").out).size(), 3u);
}

TEST_F(CliKvTest, BadInputIsAClearErrorAndChangesNothing) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("kv s set k 1").exit_code, 0);
  struct Case {
    std::string args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"kv nosuch get k", "nosuch"},
      {"kv s set k '{bad'", "not valid JSON"},
      {"kv s set k 2 other", "KEY VALUE pairs"},
      {"kv s rm k missing", "no key 'missing'"},
      {"kv s@nosnap get k", "no snapshot 'nosnap'"},
      {"kv s update '[1, 2]'", "JSON object"},
      {"kv s:/path get k", "no path"},
  };
  for (const Case& c : cases) {
    CliRun r = Strata(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << ": " << r.err;
  }
  ASSERT_EQ(Strata("snapshot s v1").exit_code, 0);
  CliRun ro = Strata("kv s@v1 set k 3");
  EXPECT_EQ(ro.exit_code, 1);
  EXPECT_NE(ro.err.find("read-only"), std::string::npos) << ro.err;
  EXPECT_NE(Strata("kv s").exit_code, 0);  // no action given
  EXPECT_EQ(Strata("kv s get k").out, "1\n");  // nothing above changed it
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

class CliHistoryTest : public CliTest {
 protected:
  // Runs a command that prints a call id and returns it.
  std::string Id(const std::string& args) {
    CliRun r = Strata(args);
    EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
    std::string id = r.out;
    while (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }
};

TEST_F(CliHistoryTest, RecordInspectAndAddressCalls) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  std::string build = Id(R"(call start s build --args '{"cmd": "make"}')");
  ASSERT_EQ(Strata("put s:/out.bin", "binary").exit_code, 0);
  CliRun end = Strata("call end " + build + R"( --result '{"ok": true}' --exit 0)");
  ASSERT_EQ(end.exit_code, 0) << end.err;
  EXPECT_NE(end.out.find("call " + build + " ok"), std::string::npos) << end.out;
  ASSERT_EQ(Strata("put s:/out.bin", "changed!").exit_code, 0);
  std::string test = Id("call record s test --error '2 tests failed' --exit 1");
  std::string nested = Id("call record s shell --parent " + test);

  // log: newest first, with what each call changed.
  CliRun log = Strata("--json log s");
  ASSERT_EQ(log.exit_code, 0) << log.err;
  auto calls = nlohmann::json::parse(log.out);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0]["id"].get<int64_t>(), std::stoll(nested));
  EXPECT_EQ(calls[0]["parent"].get<int64_t>(), std::stoll(test));
  EXPECT_EQ(calls[1]["status"], "error");
  EXPECT_EQ(calls[1]["error"], "2 tests failed");
  EXPECT_EQ(calls[1]["exit_status"], 1);
  EXPECT_EQ(calls[1]["changes"]["modified"], 1);
  EXPECT_EQ(calls[2]["name"], "build");
  EXPECT_EQ(calls[2]["args"]["cmd"], "make");
  EXPECT_EQ(calls[2]["result"]["ok"], true);
  EXPECT_EQ(calls[2]["changes"]["added"], 1);
  CliRun table = Strata("log s --status error");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("error   test  +0 ~1 -0"), std::string::npos) << table.out;
  EXPECT_EQ(nlohmann::json::parse(Strata("--json log s --limit 1 --name build").out).size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(Strata("--json log s --since 1h").out).size(), 3u);

  // show: arguments, result and changed paths with sizes.
  CliRun show = Strata("show s " + build);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find(R"(args:     {"cmd":"make"})"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("+ /out.bin  (6 B)"), std::string::npos) << show.out;

  // Captured output, from stdin or a file.
  std::string captured = Id("call record s cap --stdout -");
  CliRun cap = Strata("call record s cap2 --stdout - --stderr '" + dir_.File("missing") + "'");
  EXPECT_EQ(cap.exit_code, 1);
  EXPECT_NE(cap.err.find("cannot read"), std::string::npos) << cap.err;
  {
    std::string id = Strata("call record s cap3 --stdout -", "line one\nline two\n").out;
    id.pop_back();
    auto shown = nlohmann::json::parse(Strata("--json show s " + id).out);
    EXPECT_EQ(shown["stdout"], "line one\nline two\n");
    EXPECT_EQ(shown["stderr"], "");
  }

  // SESSION@call:ID is the state right after the call; a fork from it
  // inherits the history up to that call.
  EXPECT_EQ(Strata("cat s@call:" + build + ":/out.bin").out, "binary");
  EXPECT_EQ(Strata("cat s@call:" + test + ":/out.bin").out, "changed!");
  CliRun diff = Strata("diff s@call:" + build + " s@call:" + test);
  EXPECT_EQ(diff.out, "~ /out.bin  (6 -> 8 bytes)\n") << diff.err;
  ASSERT_EQ(Strata("fork s@call:" + build + " f").exit_code, 0);
  auto forked = nlohmann::json::parse(Strata("--json log f").out);
  ASSERT_EQ(forked.size(), 1u);
  EXPECT_EQ(forked[0]["name"], "build");
}

TEST_F(CliHistoryTest, BadCallsAndAddressesAreClearErrors) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("init --base empty other").exit_code, 0);
  std::string pending = Id("call start s long");
  std::string elsewhere = Id("call record other x");
  struct Case {
    std::string args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"call start nosuch x", "nosuch"},
      {"call start s x --args '{bad'", "not valid JSON"},
      {"call start s x --parent 999", "no tool call 999"},
      {"call end 999", "no tool call 999"},
      {"call end " + pending + " --result 1 --error no", "not both"},
      {"call end " + pending + " --result '{'", "not valid JSON"},
      {"cat s@call:" + pending + ":/x", "has not ended"},
      {"cat s@call:" + elsewhere + ":/x", "has no tool call " + elsewhere},
      {"cat s@call:abc:/x", "not a call address"},
      {"show s " + elsewhere, "has no tool call " + elsewhere},
      {"log s --status done", "unknown call status 'done'"},
      {"log s --since yesterday", "--since"},
      {"log s --since 5w", "unknown unit 'w'"},
  };
  for (const Case& c : cases) {
    CliRun r = Strata(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << ": " << r.err;
  }
  ASSERT_EQ(Strata("call end " + pending + " --error timeout").exit_code, 0);
  CliRun twice = Strata("call end " + pending);
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("already ended"), std::string::npos) << twice.err;
  EXPECT_EQ(nlohmann::json::parse(Strata("--json log s").out).size(), 1u);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

class CliSqlTest : public CliTest {};

TEST_F(CliSqlTest, ViewsShowSessionsFilesKvAndCalls) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("put s:/src/main.c", "int main() {}\n").exit_code, 0);
  ASSERT_EQ(Strata("kv s set plan '{\"step\": 2}'").exit_code, 0);
  ASSERT_EQ(Strata("call record s build --result '{\"ok\": true}'").exit_code, 0);
  ASSERT_EQ(Strata("snapshot s v1").exit_code, 0);
  ASSERT_EQ(Strata("fork s@v1 f").exit_code, 0);
  ASSERT_EQ(Strata("put f:/src/extra.c", "x").exit_code, 0);

  CliRun files = Strata("--json sql \"SELECT session, path, type, size FROM files"
                        " WHERE type = 'file' ORDER BY session, path\"");
  ASSERT_EQ(files.exit_code, 0) << files.err;
  EXPECT_EQ(nlohmann::json::parse(files.out),
            nlohmann::json::parse(R"([
              {"session": "f", "path": "/src/extra.c", "type": "file", "size": 1},
              {"session": "f", "path": "/src/main.c", "type": "file", "size": 14},
              {"session": "s", "path": "/src/main.c", "type": "file", "size": 14}])"));
  CliRun kv = Strata("sql \"SELECT session, key, json_extract(value, '$.step') AS step FROM kv"
                     " ORDER BY session\"");
  ASSERT_EQ(kv.exit_code, 0) << kv.err;
  EXPECT_EQ(kv.out, "session  key   step\nf        plan  2\ns        plan  2\n");
  CliRun calls = Strata("--json sql \"SELECT session, name, status FROM tool_calls\"");
  ASSERT_EQ(calls.exit_code, 0) << calls.err;
  EXPECT_EQ(nlohmann::json::parse(calls.out),
            nlohmann::json::parse(R"([{"session": "s", "name": "build", "status": "ok"}])"));
  CliRun sessions = Strata("--json sql \"SELECT name, base_branch IS NOT NULL AS forked"
                           " FROM sessions ORDER BY name\"");
  EXPECT_EQ(nlohmann::json::parse(sessions.out),
            nlohmann::json::parse(R"([{"name": "f", "forked": 1}, {"name": "s", "forked": 0}])"));
  CliRun snaps = Strata("--json sql \"SELECT name, session FROM snapshots\"");
  EXPECT_EQ(nlohmann::json::parse(snaps.out),
            nlohmann::json::parse(R"([{"name": "v1", "session": "s"}])"));
}

TEST_F(CliSqlTest, AnythingButReadingIsRefusedAndTheStoreIsUnchanged) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("kv s set k 1").exit_code, 0);
  const std::vector<std::string> statements = {
       "DELETE FROM main.kv", "UPDATE main.sessions SET name = 'x'", "DROP TABLE main.kv",
        "PRAGMA query_only = 0", "PRAGMA main.journal_mode = DELETE",
        "ATTACH '" + dir_.File("other.db") + "' AS other", "CREATE TABLE t(x)",
        "INSERT INTO main.kv VALUES (1, 'x', 1, '1')", "VACUUM"};
  for (const std::string& statement : statements) {
    CliRun r = Strata("sql \"" + statement + "\"");
    EXPECT_EQ(r.exit_code, 1) << statement;
    EXPECT_NE(r.err.find("strata sql: "), std::string::npos) << statement << ": " << r.err;
  }
  CliRun two = Strata("sql \"SELECT 1; DELETE FROM main.kv\"");
  EXPECT_EQ(two.exit_code, 1);
  EXPECT_NE(two.err.find("one statement at a time"), std::string::npos) << two.err;
  CliRun bad = Strata("sql \"SELEC 1\"");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("syntax error"), std::string::npos) << bad.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("other.db")));
  EXPECT_EQ(Strata("kv s get k").out, "1\n");
  EXPECT_EQ(Strata("sessions").exit_code, 0);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST_F(CliTest, DiffContentShowsUnifiedDiffsOfTextFiles) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("put s:/a.txt", "one\ntwo\nthree\n").exit_code, 0);
  ASSERT_EQ(Strata("put s:/b.bin", std::string("\0\1", 2)).exit_code, 0);
  ASSERT_EQ(Strata("snapshot s v1").exit_code, 0);
  ASSERT_EQ(Strata("put s:/a.txt", "one\n2\nthree\n").exit_code, 0);
  ASSERT_EQ(Strata("put s:/b.bin", std::string("\0\2", 2)).exit_code, 0);
  CliRun r = Strata("diff --content s@v1 s");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "~ /a.txt  (14 -> 12 bytes)\n"
            "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"
            "~ /b.bin\nBinary files differ\n");
  auto j = nlohmann::json::parse(Strata("--json diff --content s s@v1").out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["content_diff"], "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-2\n+two\n three\n");
}

TEST_F(CliTest, RmRemovesASessionAndGcReclaimsIt) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("put s:/data", std::string(100000, 'x')).exit_code, 0);
  ASSERT_EQ(Strata("fork s f").exit_code, 0);
  ASSERT_EQ(Strata("rm s").exit_code, 0);
  CliRun again = Strata("rm s");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("no session 's'"), std::string::npos) << again.err;
  CliRun gc = Strata("gc");
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_NE(gc.out.find("freed 0 branches"), std::string::npos) << gc.out;  // f still needs it
  EXPECT_EQ(Strata("cat f:/data").out, std::string(100000, 'x'));
  ASSERT_EQ(Strata("rm f").exit_code, 0);
  gc = Strata("gc");
  EXPECT_NE(gc.out.find("freed 2 branches"), std::string::npos) << gc.out;
  EXPECT_EQ(Strata("fsck").exit_code, 0);
  EXPECT_EQ(Strata("--json sessions").out, "[]\n");
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST_F(CliTest, JsonOutputSurvivesNamesThatAreNotUtf8) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("put 's:/bad\xff" "name'", "x").exit_code, 0);
  CliRun ls = Strata("--json ls s:/");
  ASSERT_EQ(ls.exit_code, 0) << ls.err;  // it used to abort in the JSON library
  auto entries = nlohmann::json::parse(ls.out);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["name"], "bad\xEF\xBF\xBDname");  // U+FFFD for the bad byte
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

class CliBundleTest : public CliTest {
 protected:
  // The first line where `a` and `b` differ ("" when equal), for messages.
  static std::string FirstDifference(const std::string& a, const std::string& b) {
    std::istringstream sa(a), sb(b);
    std::string la, lb;
    for (int n = 1;; ++n) {
      bool ga = static_cast<bool>(std::getline(sa, la)), gb = static_cast<bool>(std::getline(sb, lb));
      if (!ga && !gb) return "";
      if (!ga || !gb || la != lb) {
        size_t at = 0;
        while (at < la.size() && at < lb.size() && la[at] == lb[at]) ++at;
        const size_t from = at > 40 ? at - 40 : 0;
        return "line " + std::to_string(n) + ": '" + la.substr(from, 100) + "' vs '" + lb.substr(from, 100) + "'";
      }
    }
  }
  // Everything a user can see of a session, as text: history, state, files
  // (with contents) and snapshots.
  std::string Everything(const std::string& store, const std::string& session) {
    auto run = [&](const std::string& args) {
      CliRun r = Strata("--store '" + store + "' " + args, "", false);
      EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
      return r.out;
    };
    auto calls = nlohmann::json::parse(run("--json log " + session));
    for (auto& c : calls) {  // branch and call ids are each store's own
      c.erase("branch");
      c.erase("id");
      c["parent"] = !c["parent"].is_null();
    }
    std::string out = calls.dump() + "\n" + run("--json kv " + session + " list") +
                      run("--json sql \"SELECT path, type, mode, size, target FROM files WHERE session = '" +
                          session + "' ORDER BY path\"");
    auto files = nlohmann::json::parse(
        run("--json sql \"SELECT path FROM files WHERE session = '" + session + "' AND type = 'file'\""));
    for (const auto& f : files) out += run("cat " + session + ":" + f["path"].get<std::string>());
    auto snaps = nlohmann::json::parse(run("--json snapshots " + session));
    for (const auto& s : snaps) {
      out += s["name"].get<std::string>() + "\n";
      out += run("ls " + session + "@" + s["name"].get<std::string>() + ":/");
    }
    return out;
  }

  // A source store: "work" forked from "base", with history, state,
  // snapshots, and data shared with base.
  void MakeSource() {
    ASSERT_EQ(Strata("init --base empty base").exit_code, 0);
    // Incompressible, so that most of a bundle is chunk data.
    std::string big(300'000, '\0');
    uint32_t x = 12345;
    for (char& c : big) {
      x = x * 1103515245u + 12345u;
      c = static_cast<char>(x >> 24);
    }
    ASSERT_EQ(Strata("put base:/lib/big", big).exit_code, 0);
    ASSERT_EQ(Strata("snapshot base v1").exit_code, 0);
    ASSERT_EQ(Strata("fork base@v1 work").exit_code, 0);
    ASSERT_EQ(Strata("put work:/src/main.c", "int main() { return 0; }\n").exit_code, 0);
    ASSERT_EQ(Strata("kv work set plan '{\"step\": 3}' owner '\"me\"'").exit_code, 0);
    ASSERT_EQ(Strata("call record work build --result '{\"ok\": true}' --exit 0").exit_code, 0);
    ASSERT_EQ(Strata("snapshot work w1").exit_code, 0);
    ASSERT_EQ(Strata("put work:/src/main.c", "int main() { return 1; }\n").exit_code, 0);
    ASSERT_EQ(Strata("put base:/after-the-fork", "not part of work").exit_code, 0);
  }
};

TEST_F(CliBundleTest, ExportImportRoundTripIsIdentical) {
  MakeSource();
  const std::string bundle = dir_.File("work.bundle");
  CliRun exp = Strata("export work '" + bundle + "'");
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  CliRun again = Strata("export work '" + bundle + "'");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("will not overwrite"), std::string::npos) << again.err;

  const std::string target = dir_.File("target.db");
  CliRun imp = Strata("--store '" + target + "' import '" + bundle + "'", "", false);
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_EQ(FirstDifference(Everything(target, "work"), Everything(store(), "work")), "");
  EXPECT_EQ(Strata("--store '" + target + "' fsck", "", false).exit_code, 0);
  // Only work's lineage came: base's session and its later file did not.
  EXPECT_EQ(Strata("--store '" + target + "' sessions", "", false).out.find("base"), std::string::npos);

  // A second import reuses every chunk, and needs another name.
  CliRun clash = Strata("--store '" + target + "' import '" + bundle + "'", "", false);
  EXPECT_EQ(clash.exit_code, 1);
  EXPECT_NE(clash.err.find("session 'work' exists"), std::string::npos) << clash.err;
  CliRun as = Strata("--store '" + target + "' import '" + bundle + "' --as copy", "", false);
  ASSERT_EQ(as.exit_code, 0) << as.err;
  EXPECT_NE(as.out.find("already in the store"), std::string::npos);
  EXPECT_EQ(FirstDifference(Everything(target, "copy"), Everything(store(), "work")), "");
}

TEST_F(CliBundleTest, DamagedBundlesAreRefusedOrImportIntact) {
  MakeSource();
  const std::string bundle = dir_.File("work.bundle");
  ASSERT_EQ(Strata("export work '" + bundle + "'").exit_code, 0);
  const std::string original = Slurp(bundle);
  const std::string expected = Everything(store(), "work");
  const std::string target = dir_.File("target.db");
  ASSERT_EQ(Strata("--store '" + target + "' init --base empty other", "", false).exit_code, 0);
  const std::string sessions_before = Strata("--store '" + target + "' sessions", "", false).out;

  // Truncated: refused, nothing imported.
  std::ofstream(dir_.File("short.bundle"), std::ios::binary) << original.substr(0, original.size() / 2);
  CliRun r = Strata("--store '" + target + "' import '" + dir_.File("short.bundle") + "'", "", false);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nothing was imported"), std::string::npos) << r.err;
  EXPECT_EQ(Strata("--store '" + target + "' sessions", "", false).out, sessions_before);

  // One byte changed anywhere: either refused, or (the byte was unused) the
  // import is exactly the original. Never a silently different session.
  int refused = 0;
  for (size_t i = 0; i < 40; ++i) {
    std::string damaged = original;
    size_t at = 100 + i * (original.size() - 200) / 40;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x5A);
    const std::string path = dir_.File("damaged.bundle");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << damaged;
    const std::string name = "try" + std::to_string(i);
    CliRun d = Strata("--store '" + target + "' import '" + path + "' --as " + name, "", false);
    if (d.exit_code != 0) {
      ++refused;
      EXPECT_NE(d.err.find("nothing was imported"), std::string::npos) << at << ": " << d.err;
      continue;
    }
    EXPECT_EQ(FirstDifference(Everything(target, name), expected), "") << "byte " << at << " changed the import";
  }
  EXPECT_GT(refused, 20);
  EXPECT_EQ(Strata("--store '" + target + "' fsck", "", false).exit_code, 0);

  CliRun not_bundle = Strata("--store '" + target + "' import '" + store() + "'", "", false);
  EXPECT_EQ(not_bundle.exit_code, 1);
  EXPECT_NE(not_bundle.err.find("not a Strata bundle"), std::string::npos) << not_bundle.err;
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST_F(CliTest, SessionsShowBaseSizeAndActivity) {
  ASSERT_EQ(Strata("init --base empty base").exit_code, 0);
  ASSERT_EQ(Strata("put base:/a", std::string(1000, 'a')).exit_code, 0);
  ASSERT_EQ(Strata("snapshot base v1").exit_code, 0);
  ASSERT_EQ(Strata("fork base@v1 work").exit_code, 0);
  ASSERT_EQ(Strata("put work:/b", std::string(500, 'b')).exit_code, 0);
  CliRun r = Strata("--json sessions");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto list = nlohmann::json::parse(r.out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["name"], "base");
  EXPECT_TRUE(list[0]["base"].is_null());
  EXPECT_EQ(list[0]["files"], 1);
  EXPECT_EQ(list[0]["bytes"], 1000);
  EXPECT_EQ(list[1]["name"], "work");
  EXPECT_EQ(list[1]["base"].get<std::string>().rfind("base@v", 0), 0u);
  EXPECT_EQ(list[1]["files"], 2);
  EXPECT_EQ(list[1]["bytes"], 1500);
  EXPECT_GE(list[1]["last_activity_ns"].get<int64_t>(), list[1]["created_ns"].get<int64_t>());
  CliRun table = Strata("sessions");
  EXPECT_NE(table.out.find("SESSION  BASE"), std::string::npos) << table.out;
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST_F(CliTest, TablesFitTheTerminalAndKeepEverythingInAPipe) {
  ASSERT_EQ(Strata("init --base empty a-session-with-a-rather-long-name").exit_code, 0);
  // In a pipe: full lines.
  CliRun piped = Strata("sessions");
  ASSERT_EQ(piped.exit_code, 0);
  EXPECT_NE(piped.out.find("a-session-with-a-rather-long-name"), std::string::npos);
  // On a 40-column terminal (script(1) provides one): every line fits.
  const std::string out = dir_.File("tty.out");
  std::string cmd = "script -qec \"stty cols 40; " + std::string(STRATA_CLI) + " --store '" +
                    store() + "' sessions\" /dev/null > '" + out + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::istringstream lines(Slurp(out));
  int count = 0;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    ++count;
    EXPECT_LE(line.size(), 40u) << line;
  }
  EXPECT_EQ(count, 2);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

TEST_F(CliTest, EveryAddressFormWorksAcrossCommands) {
  ASSERT_EQ(Strata("init --base empty s").exit_code, 0);
  ASSERT_EQ(Strata("put s:/f", "one").exit_code, 0);
  ASSERT_EQ(Strata("kv s set k 1").exit_code, 0);
  ASSERT_EQ(Strata("snapshot s named").exit_code, 0);  // snapshot id 1
  std::string call = Strata("call record s edit").out;
  call.pop_back();
  ASSERT_EQ(Strata("put s:/f", "two").exit_code, 0);
  ASSERT_EQ(Strata("kv s set k 2").exit_code, 0);
  for (const std::string addr : {"s@named", "s@1"}) {
    EXPECT_EQ(Strata("cat " + addr + ":/f").out, "one") << addr;
    EXPECT_EQ(Strata("kv " + addr + " get k").out, "1\n") << addr;
    EXPECT_EQ(nlohmann::json::parse(Strata("--json log " + addr).out).size(), 0u) << addr;
  }
  const std::string after_call = "s@call:" + call;
  EXPECT_EQ(Strata("cat " + after_call + ":/f").out, "one");
  EXPECT_EQ(nlohmann::json::parse(Strata("--json log " + after_call).out).size(), 1u);
  EXPECT_EQ(Strata("diff s@1 " + after_call).out, "");
  EXPECT_EQ(Strata("diff " + after_call + " s").out, "~ /f\n");
  EXPECT_EQ(Strata("--json ls s@named:/").exit_code, 0);
  struct Case {
    std::string args;
    std::string message;
  };
  const std::vector<Case> bad = {
      {"cat s@:/f", "empty snapshot"},        {"cat @x:/f", "no session"},
      {"kv s@9 get k", "no snapshot '9'"},     {"log nosuch", "nosuch"},
      {"cat s@call:99:/f", "no tool call 99"}, {"log s@call:", "not a call address"},
  };
  for (const Case& c : bad) {
    CliRun r = Strata(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << ": " << r.err;
  }
}

}  // namespace
}  // namespace strata
