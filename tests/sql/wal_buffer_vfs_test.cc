// The WAL write-gathering shim, in both of its write paths: O_DIRECT for
// large flushes, and the buffered path that file systems without direct I/O
// take. Whatever mix of transaction sizes, mid-transaction spills, rewrites
// of a transaction's own frames and reads it sees, every committed byte must
// be in the file when the commit returns.
#include "sql/wal_buffer_vfs.h"

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sql/database.h"
#include "testing/temp_store.h"

namespace strata::sql {
namespace {

using ::strata::testing::TempDir;

// The row content derived from a seed (so the expected state is small).
std::vector<uint8_t> Content(uint32_t seed, size_t size) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(size);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

struct Row {
  uint32_t seed;
  size_t size;
};

class WalBufferVfsTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { SetWalDirectIo(GetParam()); }
  void TearDown() override { SetWalDirectIo(true); }

  // Checks every expected row through `db`, a plain sqlite3 handle.
  static void ExpectRows(sqlite3* db, const std::map<int64_t, Row>& rows) {
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id, b FROM t ORDER BY id", -1, &s, nullptr), SQLITE_OK);
    auto it = rows.begin();
    while (sqlite3_step(s) == SQLITE_ROW) {
      ASSERT_NE(it, rows.end()) << "an unexpected row";
      ASSERT_EQ(sqlite3_column_int64(s, 0), it->first);
      const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s, 1));
      std::vector<uint8_t> got(p, p + sqlite3_column_bytes(s, 1));
      ASSERT_EQ(got, Content(it->second.seed, it->second.size)) << "row " << it->first;
      ++it;
    }
    sqlite3_finalize(s);
    EXPECT_EQ(it, rows.end()) << "rows missing";
  }

  TempDir dir_;
};

TEST_P(WalBufferVfsTest, EveryCommittedByteIsInTheFile) {
  const std::string path = dir_.File("t.db");
  auto opened = Connection::Open(path, OpenMode::kReadWriteCreate);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Connection> conn = std::move(opened).value();
  ASSERT_OK(conn->Exec("PRAGMA journal_mode = WAL"));
  // A 256 KiB cache: large transactions spill pages to the WAL mid-way and
  // then change them again, so SQLite rewrites frames it already wrote.
  ASSERT_OK(conn->Exec("PRAGMA cache_size = 64"));
  ASSERT_OK(conn->Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)"));
  // Another connection, on the default VFS, reads the file as another
  // process would, while the writer is still open.
  sqlite3* outside = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &outside), SQLITE_OK);

  std::mt19937 rng(GetParam() ? 7 : 8);
  std::map<int64_t, Row> rows;
  int64_t next_id = 1;
  const int kRowsPerTxn[] = {1, 3, 40, 150};  // up to ~15 MiB: past the 4 MiB buffer
  for (int txn = 0; txn < 24; ++txn) {
    ASSERT_OK(conn->Exec("BEGIN"));
    std::vector<int64_t> mine;
    int n = kRowsPerTxn[rng() % 4];
    auto put = [&](const char* sql, int64_t id) {
      Row row{static_cast<uint32_t>(rng()), rng() % (100 << 10) + 1};
      auto st = conn->Prepare(sql);
      ASSERT_TRUE(st.ok());
      ASSERT_OK(st->Bind(1, id).BindBlob(2, Content(row.seed, row.size)).Run());
      rows[id] = row;
    };
    for (int i = 0; i < n; ++i) {
      mine.push_back(next_id);
      put("INSERT INTO t(id, b) VALUES (?1, ?2)", next_id++);
    }
    // Change some rows of this transaction again (their pages may have been
    // spilled already) and one committed before.
    for (int i = 0; i < n / 3 + 1; ++i) put("UPDATE t SET b = ?2 WHERE id = ?1", mine[rng() % n]);
    if (next_id > 2) put("UPDATE t SET b = ?2 WHERE id = ?1", 1 + rng() % (next_id - 1));
    // Reads inside the transaction see its own rows (some from the buffer).
    {
      auto check = conn->Prepare("SELECT length(b) FROM t WHERE id = ?1");
      ASSERT_TRUE(check.ok());
      ASSERT_TRUE(check->Bind(1, mine.back()).Step().value());
      EXPECT_EQ(static_cast<size_t>(check->Int(0)), rows[mine.back()].size);
    }
    ASSERT_OK(conn->Exec("COMMIT"));
    if (txn % 6 == 5) ExpectRows(outside, rows);
  }
  ExpectRows(outside, rows);
  sqlite3_close(outside);
  conn.reset();
  // Closed (and checkpointed): plain SQLite finds a sound file with every row.
  sqlite3* after = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &after), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(after, "PRAGMA integrity_check", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "ok");
  sqlite3_finalize(s);
  ExpectRows(after, rows);
  sqlite3_close(after);
}

INSTANTIATE_TEST_SUITE_P(Paths, WalBufferVfsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param) {
                           return param.param ? "Direct" : "Buffered";
                         });

}  // namespace
}  // namespace strata::sql
