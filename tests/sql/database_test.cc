#include "sql/database.h"

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
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

// --- Uncached statements, the row loop, and what the query tool needs.

// The integers in column 0 of every row `s` returns (each run starts over).
std::vector<int64_t> Ints(Statement& s) {
  std::vector<int64_t> out;
  Status st = s.ForEachRow([&](Statement& row) {
    out.push_back(row.Int(0));
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST_F(DatabaseTest, UncachedStatementIsOwnedAndFinalizedOnScopeExit) {
  const int before = PreparedStatements(*conn_);
  {
    ASSERT_OK_AND_ASSIGN(Statement s, conn_->PrepareUncached(kEcho));
    EXPECT_EQ(PreparedStatements(*conn_), before + 1);
    Statement moved = std::move(s);  // finalized once, by its new owner
    ASSERT_OK_AND_ASSIGN(bool row, moved.Bind(1, 7).Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(moved.Int(0), 7);
    // Left mid-result on purpose: finalizing must not need a reset.
  }
  EXPECT_EQ(PreparedStatements(*conn_), before);
  // Not in the cache: the same text prepared cached is a new statement.
  ASSERT_OK_AND_ASSIGN(Statement cached, conn_->Prepare(kEcho));
  EXPECT_EQ(PreparedStatements(*conn_), before + 1);
}

TEST_F(DatabaseTest, PrepareUncachedGivesTheTextAfterTheFirstStatement) {
  std::string_view rest = "unset";
  ASSERT_OK_AND_ASSIGN(Statement s, conn_->PrepareUncached("SELECT 1; SELECT 2 -- two", &rest));
  EXPECT_EQ(rest, " SELECT 2 -- two");
  EXPECT_EQ(Ints(s), std::vector<int64_t>{1});
  ASSERT_OK_AND_ASSIGN(Statement last, conn_->PrepareUncached("SELECT 3 ;\n-- done\n", &rest));
  EXPECT_EQ(rest, "\n-- done\n");
  EXPECT_EQ(Ints(last), std::vector<int64_t>{3});
}

TEST_F(DatabaseTest, PrepareUncachedOfNoStatementIsInvalidArgument) {
  for (const char* sql : {"", "   ", "-- only a comment\n", "/* nothing */ ;"}) {
    auto s = conn_->PrepareUncached(sql);
    ASSERT_FALSE(s.ok()) << sql;
    EXPECT_EQ(s.status().code(), Code::kInvalid) << sql;
    EXPECT_EQ(s.status().message(), "no SQL statement given") << sql;
  }
}

TEST_F(DatabaseTest, PrepareUncachedErrorsCarrySqlitesMessageAfterTheContext) {
  const int before = PreparedStatements(*conn_);
  auto bad = conn_->PrepareUncached("SELEKT 1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInternal);  // SQLITE_ERROR
  EXPECT_EQ(bad.status().message(), "preparing statement: near \"SELEKT\": syntax error");
  auto missing = conn_->PrepareUncached("SELECT x FROM nowhere", nullptr, "reading nowhere");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "reading nowhere: no such table: nowhere");
  auto bare = conn_->PrepareUncached("SELEKT 1", nullptr, "");
  ASSERT_FALSE(bare.ok());
  EXPECT_EQ(bare.status().message(), "near \"SELEKT\": syntax error");
  EXPECT_EQ(PreparedStatements(*conn_), before);
}

TEST(SqliteStatusTest, EmptyContextLeavesSqlitesMessageAlone) {
  Status s = SqliteStatus(SQLITE_FULL, nullptr, "");
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_EQ(s.message(), sqlite3_errstr(SQLITE_FULL));
}

TEST_F(DatabaseTest, ForEachRowVisitsEveryRowAndCanRunAgainWithItsBindings) {
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (1), (2), (3)"));
  ASSERT_OK_AND_ASSIGN(Statement s,
                       conn_->PrepareUncached("SELECT i FROM t WHERE i >= ?1 ORDER BY i"));
  s.Bind(1, 2);
  EXPECT_EQ(Ints(s), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Ints(s), (std::vector<int64_t>{2, 3}));
  ASSERT_OK_AND_ASSIGN(Statement none, conn_->PrepareUncached("SELECT i FROM t WHERE i > 9"));
  EXPECT_TRUE(Ints(none).empty());
}

TEST_F(DatabaseTest, ForEachRowStopsAtTheCallbacksErrorAndReturnsIt) {
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (1), (2), (3)"));
  ASSERT_OK_AND_ASSIGN(Statement s, conn_->PrepareUncached("SELECT i FROM t ORDER BY i"));
  std::vector<int64_t> seen;
  Status st = s.ForEachRow([&](Statement& row) {
    seen.push_back(row.Int(0));
    return row.Int(0) == 2 ? NotFound("stop at 2") : Status::Ok();
  });
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), "stop at 2");
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
  // Reset: the next run starts from the first row.
  EXPECT_EQ(Ints(s), (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(DatabaseTest, AFailedStepIsNamedByItsContextOrElseByItsSql) {
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (1), (-9223372036854775807 - 1)"));
  constexpr const char* kAbs = "SELECT abs(i) FROM t ORDER BY rowid";
  ASSERT_OK_AND_ASSIGN(Statement s, conn_->PrepareUncached(kAbs));
  int rows = 0;
  Status st = s.ForEachRow(
      [&](Statement&) {
        ++rows;
        return Status::Ok();
      },
      "reading t");
  EXPECT_EQ(rows, 1);  // abs() of the smallest integer overflows on the second
  EXPECT_EQ(st.code(), Code::kInternal);
  EXPECT_EQ(st.message(), "reading t: integer overflow");
  // Without a context the error names the SQL; Run() reports it the same way.
  EXPECT_EQ(s.Run().message(), std::string(kAbs) + ": integer overflow");
  ASSERT_OK_AND_ASSIGN(bool row, s.Step("first"));
  EXPECT_TRUE(row);
  auto second = s.Step("second");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "second: integer overflow");
}

TEST_F(DatabaseTest, ColumnsReportTypeNameAndValue) {
  ASSERT_OK_AND_ASSIGN(
      Statement s, conn_->PrepareUncached("SELECT 1 AS a, 2.5 AS b, 'x' AS c, x'00ff' AS d, NULL, i"
                                          " FROM (SELECT 7 AS i)"));
  ASSERT_EQ(s.ColumnCount(), 6);
  EXPECT_EQ(s.ColumnName(0), "a");
  EXPECT_EQ(s.ColumnName(3), "d");
  EXPECT_EQ(s.ColumnName(4), "NULL");
  EXPECT_EQ(s.ColumnName(5), "i");
  ASSERT_OK_AND_ASSIGN(bool row, s.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(s.Type(0), ColumnType::kInteger);
  EXPECT_EQ(s.Type(1), ColumnType::kFloat);
  EXPECT_EQ(s.Type(2), ColumnType::kText);
  EXPECT_EQ(s.Type(3), ColumnType::kBlob);
  EXPECT_EQ(s.Type(4), ColumnType::kNull);
  EXPECT_EQ(s.Int(0), 1);
  EXPECT_EQ(s.Double(1), 2.5);
  EXPECT_EQ(s.Text(2), "x");
  EXPECT_EQ(s.BlobString(3), std::string("\x00\xff", 2));
  EXPECT_EQ(s.Int(5), 7);
  // SQLite's own codes: bundle checksums hash them.
  EXPECT_EQ(static_cast<int>(ColumnType::kInteger), 1);
  EXPECT_EQ(static_cast<int>(ColumnType::kFloat), 2);
  EXPECT_EQ(static_cast<int>(ColumnType::kText), 3);
  EXPECT_EQ(static_cast<int>(ColumnType::kBlob), 4);
  EXPECT_EQ(static_cast<int>(ColumnType::kNull), 5);
}

TEST_F(DatabaseTest, StatementsTellWhetherTheyWriteAndHowManyParametersTheyTake) {
  ASSERT_OK_AND_ASSIGN(Statement select, conn_->PrepareUncached("SELECT i FROM t"));
  EXPECT_TRUE(select.IsReadOnly());
  EXPECT_EQ(select.ParameterCount(), 0);
  ASSERT_OK_AND_ASSIGN(Statement insert, conn_->PrepareUncached(kInsert));
  EXPECT_FALSE(insert.IsReadOnly());
  EXPECT_EQ(insert.ParameterCount(), 3);
  ASSERT_OK_AND_ASSIGN(Statement create, conn_->PrepareUncached("CREATE TABLE w (x)"));
  EXPECT_FALSE(create.IsReadOnly());
  ASSERT_OK_AND_ASSIGN(Statement gap, conn_->PrepareUncached("SELECT ?5"));
  EXPECT_EQ(gap.ParameterCount(), 5);
}

TEST_F(DatabaseTest, AllowOnlyReadsRefusesEverythingButReading) {
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (1)"));
  ASSERT_OK(conn_->AllowOnlyReads());
  ASSERT_OK_AND_ASSIGN(Statement read,
                       conn_->PrepareUncached("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT"
                                              " x + 1 FROM n WHERE x < 3) SELECT sum(x) + max(i)"
                                              " FROM n, t"));
  EXPECT_EQ(Ints(read), std::vector<int64_t>{7});
  const std::string other = dir_.File("other.sqlite");
  for (const std::string& sql :
       {std::string("INSERT INTO t(i) VALUES (2)"), std::string("DELETE FROM t"),
        std::string("UPDATE t SET i = 3"), std::string("CREATE TEMP TABLE z (x)"),
        std::string("DROP TABLE t"), std::string("PRAGMA user_version"),
        std::string("PRAGMA query_only = 0"), "ATTACH '" + other + "' AS o"}) {
    auto s = conn_->PrepareUncached(sql);
    ASSERT_FALSE(s.ok()) << sql;
    EXPECT_EQ(s.status().code(), Code::kAccess) << sql;
    EXPECT_EQ(s.status().message(), "preparing statement: not authorized") << sql;
  }
  // Cached statements too, and Exec.
  EXPECT_CODE(conn_->Prepare(kInsert), Code::kAccess);
  EXPECT_CODE(conn_->Exec("DELETE FROM t"), Code::kAccess);
  EXPECT_FALSE(std::filesystem::exists(other));
  EXPECT_EQ(CountRows(*conn_), 1);
}

TEST_F(DatabaseTest, DefinedFunctionReturnsABlobNullOrAnError) {
  // f(N, C): N bytes 'a' + C; NULL for N = 0; an error for N < 0.
  ASSERT_OK(conn_->DefineFunction(
      "f", 2, [](std::span<const int64_t> args) -> Result<std::optional<std::string>> {
        if (args[0] < 0) return InvalidArgument("negative: " + std::to_string(args[0]));
        if (args[0] == 0) return std::optional<std::string>();
        return std::optional<std::string>(
            std::string(static_cast<size_t>(args[0]), static_cast<char>('a' + args[1])));
      }));
  ASSERT_OK_AND_ASSIGN(
      Statement s,
      conn_->PrepareUncached("SELECT f(3, 1), typeof(f(3, 1)), f(0, 0) IS NULL, f('2', '2')"));
  ASSERT_OK_AND_ASSIGN(bool row, s.Step());
  ASSERT_TRUE(row);
  EXPECT_EQ(s.Type(0), ColumnType::kBlob);
  EXPECT_EQ(s.BlobString(0), "bbb");
  EXPECT_EQ(s.Text(1), "blob");
  EXPECT_EQ(s.Int(2), 1);
  EXPECT_EQ(s.BlobString(3), "cc");  // text arguments become integers

  ASSERT_OK_AND_ASSIGN(Statement failing, conn_->PrepareUncached("SELECT f(-4, 0)"));
  auto failed = failing.Step();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), "SELECT f(-4, 0): negative: -4");
  // The wrong number of arguments does not prepare.
  EXPECT_CODE(conn_->PrepareUncached("SELECT f(1)"), Code::kInternal);
}

TEST_F(DatabaseTest, ConnectionKeepsAFunctionUntilRedefinedOrClosed) {
  auto make = [](std::shared_ptr<int> token) -> Connection::BlobFunction {
    return [token](std::span<const int64_t>) -> Result<std::optional<std::string>> {
      return std::optional<std::string>(std::to_string(*token));
    };
  };
  auto first = std::make_shared<int>(1);
  auto second = std::make_shared<int>(2);
  std::weak_ptr<int> first_alive = first, second_alive = second;
  ASSERT_OK(conn_->DefineFunction("g", 0, make(std::move(first))));
  EXPECT_FALSE(first_alive.expired());
  ASSERT_OK(conn_->DefineFunction("g", 0, make(std::move(second))));
  EXPECT_TRUE(first_alive.expired());
  {
    ASSERT_OK_AND_ASSIGN(Statement s, conn_->PrepareUncached("SELECT g()"));
    ASSERT_OK_AND_ASSIGN(bool row, s.Step());
    ASSERT_TRUE(row);
    EXPECT_EQ(s.BlobString(0), "2");
  }
  EXPECT_FALSE(second_alive.expired());
  conn_.reset();
  EXPECT_TRUE(second_alive.expired());
}

// --- Transaction state, the WAL commit hook and checkpoints.

TEST_F(DatabaseTest, InTransactionFollowsBeginCommitAndRollback) {
  EXPECT_FALSE(conn_->InTransaction());
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*conn_));
    EXPECT_TRUE(conn_->InTransaction());
    ASSERT_OK(txn.Commit());
    EXPECT_FALSE(conn_->InTransaction());
  }
  {
    ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*conn_));
    EXPECT_TRUE(conn_->InTransaction());
  }
  EXPECT_FALSE(conn_->InTransaction());  // rolled back
}

TEST_F(DatabaseTest, OnWalCommitReportsTheWalSizeAndCheckpointRestartsIt) {
  ASSERT_OK(conn_->Exec("PRAGMA journal_mode = WAL"));
  std::vector<int> frames;
  conn_->OnWalCommit([&](int wal_frames) { frames.push_back(wal_frames); });
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (1)"));
  ASSERT_OK(conn_->Exec("INSERT INTO t(b) SELECT randomblob(100000)"));
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_GT(frames[0], 0);
  EXPECT_GT(frames[1], frames[0] + 20);  // 100 kB is 25 pages of 4 KiB: the WAL grows
  // No checkpoint ran by itself: the next commit appends to the same WAL.
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (2)"));
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_GT(frames[2], frames[1]);

  ASSERT_OK(conn_->Checkpoint(CheckpointMode::kPassive));
  ASSERT_OK(conn_->Checkpoint(CheckpointMode::kRestart));
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (3)"));
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_LT(frames[3], frames[0] + 5) << "the WAL did not start anew";

  conn_->OnWalCommit(nullptr);
  ASSERT_OK(conn_->Exec("INSERT INTO t(i) VALUES (4)"));
  EXPECT_EQ(frames.size(), 4u);
  EXPECT_EQ(CountRows(*conn_), 5);
}

TEST_F(DatabaseTest, CheckpointInsideATransactionIsBusy) {
  ASSERT_OK(conn_->Exec("PRAGMA journal_mode = WAL"));
  ASSERT_OK_AND_ASSIGN(Transaction txn, Transaction::Begin(*conn_));
  Status s = conn_->Checkpoint(CheckpointMode::kPassive);
  EXPECT_EQ(s.code(), Code::kBusy);
  EXPECT_EQ(s.message().rfind("checkpoint: ", 0), 0u) << s.message();
}

}  // namespace
}  // namespace strata::sql
