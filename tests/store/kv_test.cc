// The key-value state of sessions: values, atomic updates, errors, and
// versioning across snapshots, forks and restores, on a real store file.
#include <string>
#include <vector>

#include "catalog/schema.h"
#include "testing/raw_db.h"
#include "testing/temp_store.h"

namespace strata {
namespace {

using ::strata::testing::RawDb;
using ::strata::testing::StoreTest;

class KvTest : public StoreTest {
 protected:
  Status Set(BranchId branch, const std::string& key, const std::string& json) {
    return store_->KvUpdate(branch, {KvChange{key, json}});
  }
  // The value at `view`, or "<Code>" when there is none.
  std::string Get(View view, const std::string& key) {
    auto v = store_->KvGet(view, key);
    return v.ok() ? *v : "<" + std::string(CodeName(v.status().code())) + ">";
  }
  std::string Head(const std::string& key) { return Get(View{branch_, kHead}, key); }
  std::vector<std::string> Keys(View view, const std::string& prefix = "") {
    auto list = store_->KvList(view, prefix);
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    std::vector<std::string> keys;
    if (list.ok()) {
      for (const auto& e : *list) keys.push_back(e.key);
    }
    return keys;
  }
};

TEST_F(KvTest, SetGetListAndRemove) {
  ASSERT_OK(Set(branch_, "plan", R"({ "steps": [1, 2, 3], "done": false })"));
  ASSERT_OK(Set(branch_, "agent/name", R"("builder")"));
  ASSERT_OK(Set(branch_, "agent/turns", "12"));
  EXPECT_EQ(Head("plan"), R"({"steps":[1,2,3],"done":false})");  // minified
  EXPECT_EQ(Head("agent/name"), R"("builder")");
  EXPECT_EQ(Head("missing"), "<NotFound>");
  EXPECT_EQ(Keys(View{branch_, kHead}), (std::vector<std::string>{"agent/name", "agent/turns", "plan"}));
  EXPECT_EQ(Keys(View{branch_, kHead}, "agent/"),
            (std::vector<std::string>{"agent/name", "agent/turns"}));
  EXPECT_TRUE(Keys(View{branch_, kHead}, "zzz").empty());
  ASSERT_OK(Set(branch_, "agent/turns", "13"));
  EXPECT_EQ(Head("agent/turns"), "13");
  ASSERT_OK(store_->KvUpdate(branch_, {KvChange{"agent/turns", std::nullopt}}));
  EXPECT_EQ(Head("agent/turns"), "<NotFound>");
  EXPECT_EQ(Keys(View{branch_, kHead}, "agent/"), (std::vector<std::string>{"agent/name"}));
}

TEST_F(KvTest, AnUpdateAppliesAllOrNothing) {
  ASSERT_OK(Set(branch_, "a", "1"));
  // One bad value, one missing key, one bad key: each fails the whole update.
  EXPECT_CODE(store_->KvUpdate(branch_, {KvChange{"a", "2"}, KvChange{"b", "{not json"}}),
              Code::kInvalid);
  EXPECT_CODE(store_->KvUpdate(branch_, {KvChange{"a", "3"}, KvChange{"nope", std::nullopt}}),
              Code::kNotFound);
  EXPECT_CODE(store_->KvUpdate(branch_, {KvChange{"a", "4"}, KvChange{"", "1"}}),
              Code::kInvalid);
  EXPECT_CODE(store_->KvUpdate(branch_, {KvChange{"a", "5"}, KvChange{"\xff\xfe", "1"}}),
              Code::kInvalid);
  EXPECT_CODE(store_->KvUpdate(branch_, {KvChange{std::string(1025, 'k'), "1"}}),
              Code::kInvalid);
  EXPECT_EQ(Head("a"), "1");
  EXPECT_EQ(Keys(View{branch_, kHead}), (std::vector<std::string>{"a"}));
  // A good one applies every change.
  ASSERT_OK(store_->KvUpdate(branch_, {KvChange{"a", std::nullopt}, KvChange{"b", "[true]"},
                                       KvChange{"c", "null"}}));
  EXPECT_EQ(Keys(View{branch_, kHead}), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Head("c"), "null");  // a JSON null is a value, not a removal
}

TEST_F(KvTest, SnapshotsForksAndRestoresVersionTheState) {
  ASSERT_OK(Set(branch_, "step", "1"));
  ASSERT_OK(Set(branch_, "keep", R"("x")"));
  ASSERT_OK_AND_ASSIGN(Version v1, store_->Snapshot(branch_, "one"));
  ASSERT_OK(Set(branch_, "step", "2"));
  ASSERT_OK(store_->KvUpdate(branch_, {KvChange{"keep", std::nullopt}}));
  // The snapshot still holds the old state; the head has the new one.
  EXPECT_EQ(Get(View{branch_, v1}, "step"), "1");
  EXPECT_EQ(Get(View{branch_, v1}, "keep"), R"("x")");
  EXPECT_EQ(Head("step"), "2");
  EXPECT_EQ(Head("keep"), "<NotFound>");
  EXPECT_CODE(Set(branch_ + 1000, "k", "1"), Code::kNotFound);  // no such branch

  // A fork carries its fork point's state and then goes its own way.
  ASSERT_OK_AND_ASSIGN(BranchId fork, store_->Fork(View{branch_, v1}, "fork"));
  EXPECT_EQ(Get(View{fork, kHead}, "step"), "1");
  ASSERT_OK(Set(fork, "step", "10"));
  ASSERT_OK(store_->KvUpdate(fork, {KvChange{"keep", std::nullopt}}));  // hides the parent's
  EXPECT_EQ(Get(View{fork, kHead}, "step"), "10");
  EXPECT_EQ(Get(View{fork, kHead}, "keep"), "<NotFound>");
  EXPECT_EQ(Head("step"), "2");
  EXPECT_EQ(Get(View{branch_, v1}, "keep"), R"("x")");

  // Restore rewinds the state; undoing the restore brings the head back.
  ASSERT_OK_AND_ASSIGN(View undo, store_->Restore("main", View{branch_, v1}));
  ASSERT_OK_AND_ASSIGN(SessionInfo main, store_->GetSession("main"));
  EXPECT_EQ(Get(View{main.branch, kHead}, "step"), "1");
  EXPECT_EQ(Get(View{main.branch, kHead}, "keep"), R"("x")");
  ASSERT_OK(store_->Restore("main", undo).status());
  ASSERT_OK_AND_ASSIGN(main, store_->GetSession("main"));
  EXPECT_EQ(Get(View{main.branch, kHead}, "step"), "2");
  EXPECT_EQ(Get(View{main.branch, kHead}, "keep"), "<NotFound>");
}

TEST_F(KvTest, StateSurvivesReopeningAndIsVisibleToOtherConnections) {
  ASSERT_OK(Set(branch_, "k", R"({"a":1})"));
  ASSERT_OK(store_->Sync());
  EXPECT_EQ(RawDb(dir_.File("store.db")).Int("SELECT count(*) FROM kv WHERE key = 'k'"), 1);
  OpenStore(StoreOptions{});
  EXPECT_EQ(Head("k"), R"({"a":1})");
}

TEST_F(KvTest, AStoreFromBeforeKeyValueStateIsMigratedOnOpen) {
  ASSERT_OK(Set(branch_, "k", "1"));
  fs_.reset();
  store_.reset();
  {
    // What a schema-1 store looked like: no kv table (nor any later one).
    RawDb raw(dir_.File("store.db"));
    raw.Exec("DROP TABLE kv");
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
    raw.Exec("PRAGMA user_version = 1");
  }
  StoreOptions read_only;
  read_only.read_only = true;
  read_only.path = dir_.File("store.db");
  EXPECT_CODE(Store::Open(read_only), Code::kReadOnly);  // cannot migrate read-only
  OpenStore(StoreOptions{});
  EXPECT_EQ(Head("k"), "<NotFound>");
  ASSERT_OK(Set(branch_, "k", "2"));
  EXPECT_EQ(Head("k"), "2");
  EXPECT_EQ(RawDb(dir_.File("store.db")).Int("PRAGMA user_version"), catalog::kSchemaVersion);
}

}  // namespace
}  // namespace strata
