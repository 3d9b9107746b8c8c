#include "sql/database.h"

#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "testing/temp_store.h"

namespace strata::sql {
namespace {

using ::strata::testing::TempDir;

constexpr const char* kCreate = "CREATE TABLE t (i INTEGER, s TEXT, b BLOB)";
constexpr const char* kInsert = "INSERT INTO t(i, s, b) VALUES (?1, ?2, ?3)";
constexpr const char* kSelect = "SELECT i, s, b, typeof(b), length(b) FROM t ORDER BY rowid";
constexpr const char* kCount = "SELECT count(*) FROM t";
constexpr const char* kEcho = "SELECT ?1";

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string AsString(std::span<const uint8_t> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Number of statements prepared on the connection (cached ones included).
int PreparedStatements(Connection& conn) {
  int n = 0;
  for (sqlite3_stmt* s = sqlite3_next_stmt(conn.handle(), nullptr); s != nullptr;
       s = sqlite3_next_stmt(conn.handle(), s)) {
    ++n;
  }
  return n;
}

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = Connection::Open(path_, OpenMode::kReadWriteCreate);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(conn).value();
    ASSERT_OK(conn_->Exec(kCreate));
  }

  int64_t CountRows(Connection& conn) {
    auto s = conn.Prepare(kCount);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return -1;
    auto row = s->Step();
    EXPECT_TRUE(row.ok() && *row);
    return s->Int(0);
  }

  TempDir dir_;
  std::string path_ = dir_.File("db.sqlite");
  std::unique_ptr<Connection> conn_;
};

TEST_F(DatabaseTest, BindStepColumnsRoundTripIntTextAndBlob) {
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const std::string text("h\xc3\xa9llo\0world", 12);  // embedded NUL survives
  const std::string blob("\x00\x01\xff\xfe", 4);
  {
    ASSERT_OK_AND_ASSIGN(Statement insert, conn_->Prepare(kInsert));
    ASSERT_OK(insert.Bind(1, kMin).BindText(2, text).BindBlob(3, AsBytes(blob)).Run());
    ASSERT_OK(insert.Bind(1, kMax).BindText(2, "").BindBlob(3, {}).Run());
    ASSERT_OK(insert.Bind(1, uint64_t{42}).BindNull(2).BindNull(3).Run());
    ASSERT_OK(insert.Bind(1, -7).BindText(2, "x").BindBlob(3, AsBytes("y")).Run());
  }
  ASSERT_OK_AND_ASSIGN(Statement select, conn_->Prepare(kSelect));

  ASSERT_OK_AND_ASSIGN(bool row, select.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(select.Int(0), kMin);
  EXPECT_EQ(select.Text(1), text);
  EXPECT_EQ(AsString(select.Blob(2)), blob);
  EXPECT_EQ(select.Text(3), "blob");
  EXPECT_FALSE(select.IsNull(2));

  ASSERT_OK_AND_ASSIGN(row, select.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(select.Int(0), kMax);
  EXPECT_EQ(select.Text(1), "");
  EXPECT_FALSE(select.IsNull(1));
  // An empty blob is a zero-length BLOB, not NULL.
  EXPECT_FALSE(select.IsNull(2));
  EXPECT_EQ(select.Text(3), "blob");
  EXPECT_EQ(select.Int(4), 0);
  EXPECT_TRUE(select.Blob(2).empty());

  ASSERT_OK_AND_ASSIGN(row, select.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(select.Int(0), 42);
  EXPECT_TRUE(select.IsNull(1));
  EXPECT_TRUE(select.IsNull(2));
  EXPECT_EQ(select.Text(3), "null");
  EXPECT_TRUE(select.IsNull(4));
  EXPECT_EQ(select.Text(1), "");
  EXPECT_TRUE(select.Blob(2).empty());

  ASSERT_OK_AND_ASSIGN(row, select.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(select.Int(0), -7);
  EXPECT_EQ(select.Text(1), "x");
  EXPECT_EQ(AsString(select.Blob(2)), "y");

  ASSERT_OK_AND_ASSIGN(row, select.Step());
  EXPECT_FALSE(row);
}

TEST_F(DatabaseTest, UncommittedTransactionRollsBack) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*conn_));
    ASSERT_OK_AND_ASSIGN(Statement insert, conn_->Prepare(kInsert));
    ASSERT_OK(insert.Bind(1, 1).BindText(2, "a").BindNull(3).Run());
    EXPECT_EQ(CountRows(*conn_), 1);
  }
  EXPECT_EQ(CountRows(*conn_), 0);
  EXPECT_TRUE(sqlite3_get_autocommit(conn_->handle()));
}

TEST_F(DatabaseTest, CommittedTransactionPersistsAndIsVisibleToAnotherConnection) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*conn_));
    ASSERT_OK_AND_ASSIGN(Statement insert, conn_->Prepare(kInsert));
    ASSERT_OK(insert.Bind(1, 1).BindText(2, "a").BindNull(3).Run());
    ASSERT_OK(txn.Commit());
  }
  EXPECT_EQ(CountRows(*conn_), 1);
  ASSERT_OK_AND_ASSIGN(auto other, Connection::Open(path_, OpenMode::kQueryOnly));
  EXPECT_EQ(CountRows(*other), 1);
}

TEST_F(DatabaseTest, MovedTransactionRollsBackOnlyOnce) {
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*conn_));
    Transaction moved = std::move(txn);
    ASSERT_OK_AND_ASSIGN(Statement insert, conn_->Prepare(kInsert));
    ASSERT_OK(insert.Bind(1, 1).BindText(2, "a").BindNull(3).Run());
  }
  EXPECT_EQ(CountRows(*conn_), 0);
}

TEST_F(DatabaseTest, BeginWhileInTransactionFails) {
  ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*conn_));
  auto second = Transaction::Begin(*conn_);
  EXPECT_FALSE(second.ok());
}

TEST_F(DatabaseTest, CachedStatementIsReusedAndItsBindingsCleared) {
  int before = PreparedStatements(*conn_);
  {
    ASSERT_OK_AND_ASSIGN(Statement s, conn_->Prepare(kEcho));
    s.Bind(1, 99);
    ASSERT_OK_AND_ASSIGN(bool row, s.Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(s.Int(0), 99);
    // Left mid-result on purpose: the handle must reset it.
  }
  EXPECT_EQ(PreparedStatements(*conn_), before + 1);
  {
    ASSERT_OK_AND_ASSIGN(Statement s, conn_->Prepare(kEcho));
    ASSERT_OK_AND_ASSIGN(bool row, s.Step());
    ASSERT_TRUE(row);
    EXPECT_TRUE(s.IsNull(0)) << "binding from the previous use leaked: " << s.Int(0);
  }
  // The same text (even from a different buffer) hits the cache.
  std::string copy(kEcho);
  {
    ASSERT_OK_AND_ASSIGN(Statement s, conn_->Prepare(copy.c_str()));
    s.BindText(1, "again");
    ASSERT_OK_AND_ASSIGN(bool row, s.Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(s.Text(0), "again");
  }
  EXPECT_EQ(PreparedStatements(*conn_), before + 1);
}

TEST_F(DatabaseTest, RunKeepsBindingsAndCanRunAgain) {
  ASSERT_OK_AND_ASSIGN(Statement insert, conn_->Prepare(kInsert));
  insert.Bind(1, 5).BindText(2, "same").BindNull(3);
  ASSERT_OK(insert.Run());
  ASSERT_OK(insert.Run());
  EXPECT_EQ(CountRows(*conn_), 2);
}

TEST_F(DatabaseTest, PrepareOfInvalidSqlFailsWithoutCaching) {
  int before = PreparedStatements(*conn_);
  auto s = conn_->Prepare("SELEKT nothing");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("SELEKT"), std::string::npos) << s.status().ToString();
  EXPECT_EQ(PreparedStatements(*conn_), before);
}

TEST_F(DatabaseTest, StepErrorIsReportedAndStatementIsReusable) {
  ASSERT_OK(conn_->Exec("CREATE TABLE u (k INTEGER PRIMARY KEY)"));
  constexpr const char* kInsertU = "INSERT INTO u(k) VALUES (?1)";
  {
    ASSERT_OK_AND_ASSIGN(Statement s, conn_->Prepare(kInsertU));
    ASSERT_OK(s.Bind(1, 1).Run());
    EXPECT_CODE(s.Bind(1, 1).Run(), Code::kExists);
    ASSERT_OK(s.Bind(1, 2).Run());
  }
  ASSERT_OK_AND_ASSIGN(Statement count, conn_->Prepare("SELECT count(*) FROM u"));
  ASSERT_OK_AND_ASSIGN(bool row, count.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(count.Int(0), 2);
}

TEST(SqliteStatusTest, MapsResultCodesToCodes) {
  EXPECT_TRUE(SqliteStatus(SQLITE_OK, nullptr, "x").ok());
  EXPECT_TRUE(SqliteStatus(SQLITE_DONE, nullptr, "x").ok());
  EXPECT_TRUE(SqliteStatus(SQLITE_ROW, nullptr, "x").ok());
  EXPECT_EQ(SqliteStatus(SQLITE_FULL, nullptr, "x").code(), Code::kNoSpace);
  EXPECT_EQ(SqliteStatus(SQLITE_CORRUPT, nullptr, "x").code(), Code::kCorruption);
  EXPECT_EQ(SqliteStatus(SQLITE_NOTADB, nullptr, "x").code(), Code::kCorruption);
  EXPECT_EQ(SqliteStatus(SQLITE_BUSY, nullptr, "x").code(), Code::kBusy);
  EXPECT_EQ(SqliteStatus(SQLITE_READONLY, nullptr, "x").code(), Code::kReadOnly);
  EXPECT_EQ(SqliteStatus(SQLITE_IOERR, nullptr, "x").code(), Code::kIoError);
  EXPECT_EQ(SqliteStatus(SQLITE_CONSTRAINT, nullptr, "x").code(), Code::kExists);
}

TEST(SqliteStatusTest, MapsExtendedResultCodesByTheirPrimaryCode) {
  EXPECT_EQ(SqliteStatus(SQLITE_CORRUPT_INDEX, nullptr, "x").code(), Code::kCorruption);
  EXPECT_EQ(SqliteStatus(SQLITE_BUSY_SNAPSHOT, nullptr, "x").code(), Code::kBusy);
  EXPECT_EQ(SqliteStatus(SQLITE_READONLY_DBMOVED, nullptr, "x").code(), Code::kReadOnly);
  EXPECT_EQ(SqliteStatus(SQLITE_IOERR_FSYNC, nullptr, "x").code(), Code::kIoError);
  EXPECT_EQ(SqliteStatus(SQLITE_CONSTRAINT_UNIQUE, nullptr, "x").code(), Code::kExists);
}

TEST(SqliteStatusTest, MessageCarriesContextAndSqliteText) {
  Status s = SqliteStatus(SQLITE_FULL, nullptr, "writing block 3");
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_NE(s.message().find("writing block 3"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(sqlite3_errstr(SQLITE_FULL)), std::string::npos) << s.message();
}

TEST_F(DatabaseTest, QueryOnlyConnectionRefusesWrites) {
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (1)"));
  ASSERT_OK_AND_ASSIGN(auto reader, Connection::Open(path_, OpenMode::kQueryOnly));
  EXPECT_EQ(CountRows(*reader), 1);
  EXPECT_CODE(reader->Exec("INSERT INTO t(i) VALUES (2)"), Code::kReadOnly);
  EXPECT_CODE(reader->Exec("CREATE TABLE v (x)"), Code::kReadOnly);
  {
    ASSERT_OK_AND_ASSIGN(Statement insert, reader->Prepare(kInsert));
    EXPECT_CODE(insert.Bind(1, 3).BindNull(2).BindNull(3).Run(), Code::kReadOnly);
  }
  EXPECT_EQ(CountRows(*reader), 1);
  EXPECT_EQ(CountRows(*conn_), 1);
}

TEST(ConnectionTest, QueryOnlyOpenDoesNotCreateAMissingFile) {
  TempDir dir;
  std::string path = dir.File("missing.sqlite");
  auto conn = Connection::Open(path, OpenMode::kQueryOnly);
  EXPECT_FALSE(conn.ok());
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ConnectionTest, OpenErrorNamesTheFile) {
  TempDir dir;
  std::string path = dir.File("no/such/dir/db.sqlite");
  auto conn = Connection::Open(path, OpenMode::kReadWriteCreate);
  ASSERT_FALSE(conn.ok());
  EXPECT_NE(conn.status().message().find(path), std::string::npos) << conn.status().ToString();
}

}  // namespace
}  // namespace strata::sql
