// The tool-call log: recording, the states before and after each call,
// history across forks and restores, filters and errors, on a real store.
#include <string>
#include <vector>

#include "catalog/schema.h"
#include "testing/raw_db.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using ::strata::testing::RawDb;
using ::strata::testing::StoreTest;

CallStart Named(const std::string& name, const std::string& args = "{}") {
  CallStart start;
  start.name = name;
  start.args = args;
  return start;
}

CallOutcome Returned(const std::string& json) {
  CallOutcome out;
  out.result = json;
  return out;
}

class CallsTest : public StoreTest {
 protected:
  std::vector<int64_t> Ids(View view, const CallFilter& filter = {}) {
    auto calls = store_->ListCalls(view, filter);
    EXPECT_TRUE(calls.ok()) << calls.status().ToString();
    std::vector<int64_t> ids;
    if (calls.ok()) {
      for (const auto& c : *calls) ids.push_back(c.id);
    }
    return ids;
  }
  std::vector<int64_t> HeadIds(const CallFilter& filter = {}) {
    return Ids(View{branch_, kHead}, filter);
  }
  // Records a finished call named `name` that wrote `file`.
  int64_t Record(const std::string& name, const std::string& file = "") {
    if (!file.empty()) WriteFile(kRootIno, file, name);
    auto c = store_->RecordCall(branch_, Named(name), Returned("{}"));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c->id : -1;
  }
  // The content of /name at `view`, or "<Code>".
  std::string Cat(View view, const std::string& name) {
    auto fs = store_->OpenFilesystem(view);
    if (!fs.ok()) return "<fs>";
    auto a = (*fs)->Lookup(kRootIno, name);
    if (!a.ok()) return "<" + std::string(CodeName(a.status().code())) + ">";
    return ReadAll(**fs, a->ino);
  }
};

TEST_F(CallsTest, ACallSeesTheStatesBeforeAndAfterIt) {
  WriteFile(kRootIno, "f", "old");
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->StartCall(branch_, Named("edit", R"({"file": "g"})")));
  WriteFile(kRootIno, "g", "new");
  CallOutcome outcome;
  outcome.result = R"({ "lines": 1 })";
  outcome.exit_status = 0;
  outcome.stdout_data = "edited\n";
  ASSERT_OK_AND_ASSIGN(ToolCall c, store_->EndCall(id, outcome));
  EXPECT_EQ(c.status, CallStatus::kOk);
  EXPECT_EQ(c.args, R"({"file":"g"})");
  EXPECT_EQ(c.result, std::optional<std::string>(R"({"lines":1})"));
  ASSERT_TRUE(c.version_after.has_value());
  EXPECT_EQ(Cat(View{branch_, c.version_before}, "f"), "old");
  EXPECT_EQ(Cat(View{branch_, c.version_before}, "g"), "<NotFound>");
  EXPECT_EQ(Cat(View{branch_, *c.version_after}, "g"), "new");
  ASSERT_OK_AND_ASSIGN(auto diff, store_->Diff(View{branch_, c.version_before},
                                               View{branch_, *c.version_after}));
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0].path, "/g");
  // Read back from the store, everything is there.
  ASSERT_OK_AND_ASSIGN(ToolCall back, store_->GetCall(id));
  EXPECT_EQ(back.name, "edit");
  EXPECT_EQ(back.stdout_data, "edited\n");
  EXPECT_EQ(back.exit_status, std::optional<int>(0));
  EXPECT_EQ(back.version_after, c.version_after);
  EXPECT_CODE(store_->EndCall(id, CallOutcome{}), Code::kExists);  // only once
}

TEST_F(CallsTest, AForkShowsItsParentsCallsUpToTheForkPointThenItsOwn) {
  int64_t a = Record("a", "fa");
  int64_t b = Record("b", "fb");
  ASSERT_OK_AND_ASSIGN(ToolCall cb, store_->GetCall(b));
  // Fork from the state right after b: a and b are the fork's history too.
  ASSERT_OK_AND_ASSIGN(BranchId fork, store_->Fork(View{branch_, *cb.version_after}, "fork"));
  int64_t c = Record("c", "fc");  // on main, after the fork
  ASSERT_OK_AND_ASSIGN(ToolCall cd, store_->RecordCall(fork, Named("d"), Returned("1")));
  EXPECT_EQ(HeadIds(), (std::vector<int64_t>{c, b, a}));
  EXPECT_EQ(Ids(View{fork, kHead}), (std::vector<int64_t>{cd.id, b, a}));
  // A snapshot's history stops where the snapshot was taken.
  EXPECT_EQ(Ids(View{branch_, *cb.version_after}), (std::vector<int64_t>{b, a}));
  EXPECT_EQ(Ids(View{branch_, cb.version_before}), (std::vector<int64_t>{a}));

  // Restoring to the state after a rewinds the history too; undoing it
  // brings every call back.
  ASSERT_OK_AND_ASSIGN(ToolCall ca, store_->GetCall(a));
  ASSERT_OK_AND_ASSIGN(View undo, store_->Restore("main", View{branch_, *ca.version_after}));
  ASSERT_OK_AND_ASSIGN(SessionInfo main, store_->GetSession("main"));
  EXPECT_EQ(Ids(View{main.branch, kHead}), (std::vector<int64_t>{a}));
  EXPECT_EQ(Ids(undo), (std::vector<int64_t>{c, b, a}));
}

TEST_F(CallsTest, RecordOwnsEverythingSinceThePreviousCall) {
  WriteFile(kRootIno, "one", "1");
  int64_t first = Record("first");
  WriteFile(kRootIno, "two", "2");
  WriteFile(kRootIno, "three", "3");
  int64_t second = Record("second");
  ASSERT_OK_AND_ASSIGN(ToolCall c1, store_->GetCall(first));
  ASSERT_OK_AND_ASSIGN(ToolCall c2, store_->GetCall(second));
  EXPECT_EQ(c2.version_before, *c1.version_after);
  ASSERT_OK_AND_ASSIGN(auto diff, store_->Diff(View{branch_, c2.version_before},
                                               View{branch_, *c2.version_after}));
  ASSERT_EQ(diff.size(), 2u);
  EXPECT_EQ(diff[0].path, "/three");
  EXPECT_EQ(diff[1].path, "/two");
}

TEST_F(CallsTest, FiltersAndLimitsAndNestedCalls) {
  ASSERT_OK_AND_ASSIGN(int64_t outer, store_->StartCall(branch_, Named("agent")));
  CallStart inner_start = Named("shell");
  inner_start.parent = outer;
  inner_start.start_ns = 5'000;
  CallOutcome failed;
  failed.error = "exit 2";
  failed.end_ns = 6'000;
  ASSERT_OK_AND_ASSIGN(ToolCall inner, store_->RecordCall(branch_, inner_start, failed));
  EXPECT_EQ(inner.parent, std::optional<int64_t>(outer));
  EXPECT_EQ(inner.status, CallStatus::kError);
  int64_t last = Record("shell");

  CallFilter by_name;
  by_name.name = "shell";
  EXPECT_EQ(HeadIds(by_name), (std::vector<int64_t>{last, inner.id}));
  CallFilter errors;
  errors.status = CallStatus::kError;
  EXPECT_EQ(HeadIds(errors), (std::vector<int64_t>{inner.id}));
  CallFilter pending;
  pending.status = CallStatus::kPending;
  EXPECT_EQ(HeadIds(pending), (std::vector<int64_t>{outer}));
  CallFilter recent;
  recent.since_ns = 1'000'000;  // the inner call claims to have started at 5 us
  EXPECT_EQ(HeadIds(recent), (std::vector<int64_t>{last, outer}));
  CallFilter one;
  one.limit = 1;
  EXPECT_EQ(HeadIds(one), (std::vector<int64_t>{last}));
}

TEST_F(CallsTest, BadCallsAreRefusedAndRecordNothing) {
  EXPECT_CODE(store_->StartCall(branch_, Named("")), Code::kInvalid);
  EXPECT_CODE(store_->StartCall(branch_, Named("x", "{oops")), Code::kInvalid);
  CallStart orphan = Named("x");
  orphan.parent = 42;
  EXPECT_CODE(store_->StartCall(branch_, orphan), Code::kNotFound);
  EXPECT_CODE(store_->StartCall(branch_ + 100, Named("x")), Code::kNotFound);
  EXPECT_CODE(store_->RecordCall(branch_, Named("x"), Returned("[unclosed")), Code::kInvalid);
  CallStart late = Named("x");
  late.start_ns = 2'000;
  CallOutcome early = Returned("1");
  early.end_ns = 1'000;
  EXPECT_CODE(store_->RecordCall(branch_, late, early), Code::kInvalid);
  EXPECT_CODE(store_->EndCall(7, CallOutcome{}), Code::kNotFound);
  EXPECT_CODE(store_->GetCall(7), Code::kNotFound);
  EXPECT_TRUE(HeadIds().empty());
}

// Output is kept whole, as chunks: compressed, deduplicated, removed with its
// calls by gc, carried by bundles, visible in SQL.
TEST_F(CallsTest, LargeOutputIsStoredAsChunksAndComesBackWhole) {
  std::string out;
  for (int i = 0; i < 20'000; ++i) out += "line " + std::to_string(i) + "\n";  // ~200 kB
  CallOutcome outcome = Returned("{}");
  outcome.stdout_data = out;
  outcome.stderr_data = std::string(70'000, 'e');
  ASSERT_OK_AND_ASSIGN(ToolCall recorded, store_->RecordCall(branch_, Named("big"), outcome));
  ASSERT_OK(store_->Sync());  // committed, for the connections below
  testing::RawDb raw(dir_.File("store.db"));
  EXPECT_EQ(raw.Int("SELECT count(*) FROM call_output WHERE stream = 1"), 4);  // 64 KiB pieces
  EXPECT_EQ(raw.Int("SELECT count(*) FROM tool_calls WHERE stdout IS NOT NULL AND length(stdout) > 0"), 0);
  ASSERT_OK_AND_ASSIGN(ToolCall back, store_->GetCall(recorded.id));
  EXPECT_EQ(back.stdout_data, out);
  EXPECT_EQ(back.stderr_data, std::string(70'000, 'e'));
  ASSERT_OK_AND_ASSIGN(QueryResult q, store_->Query(
      "SELECT length(stdout), length(stderr) FROM tool_calls WHERE name = 'big'"));
  ASSERT_EQ(q.rows.size(), 1u);
  EXPECT_EQ(q.rows[0][0].integer, static_cast<int64_t>(out.size()));
  EXPECT_EQ(q.rows[0][1].integer, 70'000);
  // A bundle carries it.
  const std::string bundle = dir_.File("s.bundle");
  ASSERT_OK(store_->Export("main", bundle).status());
  StoreOptions other;
  other.path = dir_.File("other.db");
  ASSERT_OK_AND_ASSIGN(auto second, Store::Open(other));
  ASSERT_OK(second->Import(bundle).status());
  ASSERT_OK_AND_ASSIGN(SessionInfo moved, second->GetSession("main"));
  ASSERT_OK_AND_ASSIGN(auto calls, second->ListCalls(View{moved.branch, kHead}, CallFilter{}));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].stdout_data.empty());  // listings leave the output out
  ASSERT_OK_AND_ASSIGN(ToolCall imported, second->GetCall(calls[0].id));
  EXPECT_EQ(imported.stdout_data, out);
  // gc keeps it while the call exists, and frees it with the session.
  ASSERT_OK(store_->CollectGarbage().status());
  EXPECT_EQ(store_->GetCall(recorded.id)->stdout_data, out);
  fs_.reset();
  ASSERT_OK(store_->RemoveSession("main"));
  ASSERT_OK(store_->CollectGarbage().status());
  ASSERT_OK(store_->Sync());
  EXPECT_EQ(raw.Int("SELECT count(*) FROM call_output"), 0);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks"), 0);
}

// A failed sandbox run keeps its resource usage: an error may carry a result.
TEST_F(CallsTest, AnErrorMayCarryAResult) {
  CallOutcome both;
  both.result = R"({"max_rss_bytes": 1})";
  both.error = "exited with status 3";
  both.exit_status = 3;
  ASSERT_OK_AND_ASSIGN(ToolCall c, store_->RecordCall(branch_, Named("x"), both));
  EXPECT_EQ(c.status, CallStatus::kError);
  EXPECT_EQ(c.result.value_or(""), R"({"max_rss_bytes":1})");
  EXPECT_EQ(c.error.value_or(""), "exited with status 3");
}

TEST_F(CallsTest, AStoreFromBeforeTheLogIsMigratedOnOpen) {
  Record("kept-out");
  fs_.reset();
  store_.reset();
  {
    RawDb raw(dir_.File("store.db"));
    raw.Exec("DROP TABLE tool_calls");
    raw.Exec("DROP TABLE dropped_branches");
    raw.Exec("DROP TABLE images");
    raw.Exec("DROP TABLE call_output");
    raw.Exec("DROP TABLE layers");
    raw.Exec("DROP TABLE layer_views");
    raw.Exec("DROP TABLE host_entries");
    raw.Exec("DROP TABLE remotes");
    raw.Exec("DROP TABLE remote_heads");
    raw.Exec("DROP TABLE chunk_sha");
    raw.Exec("DROP TABLE remote_chunks");
    raw.Exec("DROP TABLE remote_packs");
    raw.Exec("PRAGMA user_version = 2");
  }
  OpenStore(StoreOptions{});
  EXPECT_TRUE(HeadIds().empty());
  int64_t id = Record("after");
  EXPECT_EQ(HeadIds(), (std::vector<int64_t>{id}));
  EXPECT_EQ(RawDb(dir_.File("store.db")).Int("PRAGMA user_version"), catalog::kSchemaVersion);
}

}  // namespace
}  // namespace strata
