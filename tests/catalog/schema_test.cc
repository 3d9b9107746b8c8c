#include "catalog/schema.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "testing/temp_store.h"

namespace strata::catalog {
namespace {

using ::strata::testing::TempDir;

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Runs `sql` on a plain sqlite3 connection and returns the first column of the
// first row as an integer (-1 when no row).
int64_t RawInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sql;
  int64_t v = -1;
  if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

std::string RawText(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sql;
  std::string v = "<no row>";
  if (sqlite3_step(s) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(s, 0);
    v = t == nullptr ? "<null>" : reinterpret_cast<const char*>(t);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
      << sql << ": " << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SchemaTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<Store>> Open(bool read_only = false, uint32_t block_size = 64 * 1024) {
    StoreOptions options;
    options.path = path_;
    options.read_only = read_only;
    options.block_size = block_size;
    return Store::Open(std::move(options));
  }

  // Creates a store holding session "main" with /file = `content`, and closes it.
  void MakeStore(const std::string& content) {
    ASSERT_OK_AND_ASSIGN(auto store, Open());
    ASSERT_OK_AND_ASSIGN(SessionInfo s, store->CreateSession("main"));
    ASSERT_OK_AND_ASSIGN(auto fs, store->OpenFilesystem(View{s.branch, kHead}));
    ASSERT_OK_AND_ASSIGN(Attr a, fs->Create(kRootIno, "file", 0644, Cred{}));
    ASSERT_OK(fs->Write(a.ino, 0, AsBytes(content)).status());
    ASSERT_OK(fs->Release(a.ino));
  }

  std::string ReadFile(Store& store) {
    auto session = store.GetSession("main");
    EXPECT_TRUE(session.ok()) << session.status().ToString();
    if (!session.ok()) return "<no session>";
    auto fs = store.OpenFilesystem(View{session->branch, kHead});
    EXPECT_TRUE(fs.ok()) << fs.status().ToString();
    if (!fs.ok()) return "<no fs>";
    auto attr = (*fs)->Resolve("/file");
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    if (!attr.ok()) return "<no file>";
    std::string out(attr->size, '\0');
    auto n = (*fs)->Read(attr->ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return out;
  }

  void ExpectNamesFile(const Status& s) {
    EXPECT_NE(s.message().find(path_), std::string::npos) << s.ToString();
  }

  TempDir dir_;
  std::string path_ = dir_.File("store.db");
};

TEST_F(SchemaTest, OpenOnFreshPathCreatesSchema) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, Open());
    EXPECT_EQ(store->path(), path_);
    EXPECT_EQ(store->block_size(), 64u * 1024);
  }
  ASSERT_TRUE(std::filesystem::exists(path_));
  EXPECT_EQ(RawInt(path_, "PRAGMA application_id"), 0x53545241);
  EXPECT_EQ(RawInt(path_, "PRAGMA application_id"), kApplicationId);
  EXPECT_EQ(RawInt(path_, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(RawText(path_, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawInt(path_, "SELECT value FROM meta WHERE key = 'block_size'"), 65536);
  for (const char* table : {"meta", "branches", "ancestry", "sessions", "snapshots", "chunks",
                            "inodes", "dentries", "blocks", "xattrs", "orphans", "kv",
                            "tool_calls", "dropped_branches", "images", "call_output", "layers",
                            "layer_views", "host_entries", "remotes",
                            "remote_heads"}) {
    EXPECT_EQ(RawInt(path_, std::string("SELECT count(*) FROM sqlite_schema WHERE type = "
                                        "'table' AND name = '") + table + "'"),
              1)
        << table;
  }
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM sessions"), 0);
}

TEST_F(SchemaTest, ReopenKeepsDataAndBlockSize) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, Open(false, 8192));
    EXPECT_EQ(store->block_size(), 8192u);
  }
  MakeStore("persisted bytes");
  ASSERT_OK_AND_ASSIGN(auto store, Open(false, 65536));
  EXPECT_EQ(store->block_size(), 8192u);  // an existing store keeps its own
  EXPECT_EQ(ReadFile(*store), "persisted bytes");
  ASSERT_OK_AND_ASSIGN(auto sessions, store->ListSessions());
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].name, "main");
}

TEST_F(SchemaTest, NewerSchemaVersionIsNotSupported) {
  MakeStore("x");
  RawExec(path_, "PRAGMA user_version = 99");
  auto store = Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kNotSupported) << store.status().ToString();
  ExpectNamesFile(store.status());
  EXPECT_NE(store.status().message().find("newer"), std::string::npos)
      << store.status().ToString();
  EXPECT_NE(store.status().message().find("99"), std::string::npos) << store.status().ToString();
  // Nothing was rewritten.
  EXPECT_EQ(RawInt(path_, "PRAGMA user_version"), 99);
  auto ro = Open(/*read_only=*/true);
  EXPECT_EQ(ro.status().code(), Code::kNotSupported) << ro.status().ToString();
}

TEST_F(SchemaTest, InvalidSchemaVersionIsCorruption) {
  MakeStore("x");
  RawExec(path_, "PRAGMA user_version = 0");
  auto store = Open();
  EXPECT_EQ(store.status().code(), Code::kCorruption) << store.status().ToString();
  ExpectNamesFile(store.status());
}

TEST_F(SchemaTest, DamagedBlockSizeIsCorruptionNamingFile) {
  MakeStore("x");
  RawExec(path_, "UPDATE meta SET value = 1000 WHERE key = 'block_size'");
  auto store = Open();
  EXPECT_EQ(store.status().code(), Code::kCorruption) << store.status().ToString();
  ExpectNamesFile(store.status());
  auto ro = Open(/*read_only=*/true);
  EXPECT_EQ(ro.status().code(), Code::kCorruption) << ro.status().ToString();
}

TEST_F(SchemaTest, ForeignSqliteDatabaseIsCorruptionNamingFile) {
  RawExec(path_, "CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('ada')");
  std::string before = FileBytes(path_);
  auto store = Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kCorruption) << store.status().ToString();
  ExpectNamesFile(store.status());
  EXPECT_NE(store.status().message().find("not a Strata store"), std::string::npos)
      << store.status().ToString();
  // The foreign file is left as it was.
  EXPECT_TRUE(FileBytes(path_) == before) << "the foreign file was modified";
  EXPECT_EQ(RawText(path_, "PRAGMA journal_mode"), "delete");
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM sqlite_schema"), 1);
  auto ro = Open(/*read_only=*/true);
  EXPECT_EQ(ro.status().code(), Code::kCorruption) << ro.status().ToString();
}

TEST_F(SchemaTest, ForeignApplicationIdIsCorruption) {
  RawExec(path_, "PRAGMA application_id = 1234");
  auto store = Open();
  EXPECT_EQ(store.status().code(), Code::kCorruption) << store.status().ToString();
  ExpectNamesFile(store.status());
}

TEST_F(SchemaTest, GarbageFileIsAnErrorNamingFile) {
  std::mt19937 rng(42);
  for (size_t size : {10u, 100u, 4096u, 100000u}) {
    std::string junk(size, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << junk;
    auto store = Open();
    ASSERT_FALSE(store.ok()) << size;
    EXPECT_EQ(store.status().code(), Code::kCorruption) << store.status().ToString();
    ExpectNamesFile(store.status());
    EXPECT_TRUE(FileBytes(path_) == junk) << "the file was modified";
  }
}

TEST_F(SchemaTest, GarbageAfterValidHeaderIsAnErrorNamingFile) {
  MakeStore("x");
  std::string bytes = FileBytes(path_);
  ASSERT_GT(bytes.size(), 4096u);
  std::mt19937 rng(7);
  // Keep the 100-byte header, scramble the rest of page 1 (the schema).
  for (size_t i = 100; i < 4096; ++i) bytes[i] = static_cast<char>(rng());
  std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
  auto store = Open();
  ASSERT_FALSE(store.ok());
  ExpectNamesFile(store.status());
}

class TruncatedStoreTest : public SchemaTest, public ::testing::WithParamInterface<int> {};

TEST_P(TruncatedStoreTest, TruncatedStoreIsAnErrorNamingFile) {
  std::string content;
  std::mt19937 rng(3);
  for (int i = 0; i < 300000; ++i) content.push_back(static_cast<char>('a' + rng() % 26));
  MakeStore(content);
  // Closing the last connection checkpoints the WAL into the main file.
  ASSERT_FALSE(std::filesystem::exists(path_ + "-wal"));
  auto size = std::filesystem::file_size(path_);
  ASSERT_GT(size, 64u * 1024);
  uintmax_t cut = 0;
  switch (GetParam()) {
    case 0: cut = size / 2; break;
    case 1: cut = size - 4096; break;  // one page short
    case 2: cut = size - 1; break;
    case 3: cut = size / 4 + 123; break;
  }
  std::filesystem::resize_file(path_, cut);
  auto store = Open();
  ASSERT_FALSE(store.ok()) << "truncated to " << cut << " of " << size;
  EXPECT_EQ(store.status().code(), Code::kCorruption) << store.status().ToString();
  ExpectNamesFile(store.status());
  EXPECT_NE(store.status().message().find("truncated"), std::string::npos)
      << store.status().ToString();
  auto ro = Open(/*read_only=*/true);
  ASSERT_FALSE(ro.ok());
  ExpectNamesFile(ro.status());
}

INSTANTIATE_TEST_SUITE_P(Cuts, TruncatedStoreTest, ::testing::Values(0, 1, 2, 3));

// A copy taken while a store is open (as after a crash) keeps a WAL beside
// the main file. Cut the main file short: whatever is lost must surface as an
// error or an integrity problem, never as a crash or silently wrong data.
TEST_F(SchemaTest, TruncatedStoreWithWalIsReportedNeverACrash) {
  TempDir copy_dir;
  std::string copy = copy_dir.File("store.db");
  std::string content;
  std::mt19937 rng(5);
  // Half the content is checkpointed into the main file (its pages then live
  // only there), the other half stays in the WAL.
  for (int i = 0; i < 10 << 20; ++i) content.push_back(static_cast<char>(rng()));
  {
    ASSERT_OK_AND_ASSIGN(auto store, Open());
    ASSERT_OK_AND_ASSIGN(SessionInfo s, store->CreateSession("main"));
    ASSERT_OK_AND_ASSIGN(auto fs, store->OpenFilesystem(View{s.branch, kHead}));
    ASSERT_OK_AND_ASSIGN(Attr a, fs->Create(kRootIno, "file", 0644, Cred{}));
    for (size_t off = 0; off < content.size(); off += 1 << 20) {
      ASSERT_OK(fs->Write(a.ino, off, AsBytes(content.substr(off, 1 << 20))).status());
      ASSERT_OK(fs->Flush(a.ino));
      if (off == content.size() / 2) {
        ASSERT_EQ(RawInt(path_, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);  // 0: not busy
      }
    }
    ASSERT_OK(fs->Release(a.ino));
    ASSERT_TRUE(std::filesystem::exists(path_ + "-wal"));
    std::filesystem::copy_file(path_, copy);
    std::filesystem::copy_file(path_ + "-wal", copy + "-wal");
  }
  ASSERT_GT(std::filesystem::file_size(copy), 4u << 20);
  ASSERT_LT(std::filesystem::file_size(copy + "-wal"), 9u << 20);
  std::filesystem::resize_file(copy, std::filesystem::file_size(copy) / 2);
  StoreOptions options;
  options.path = copy;
  auto store = Store::Open(options);
  if (!store.ok()) {
    EXPECT_NE(store.status().message().find(copy), std::string::npos)
        << store.status().ToString();
    return;
  }
  bool reported = false;
  auto problems = (*store)->CheckIntegrity();
  if (!problems.ok()) {
    reported = true;
  } else {
    reported = !problems->empty();
  }
  auto session = (*store)->GetSession("main");
  if (session.ok()) {
    auto fs = (*store)->OpenFilesystem(View{session->branch, kHead});
    if (fs.ok()) {
      auto attr = (*fs)->Resolve("/file");
      if (attr.ok()) {
        std::string out(attr->size, '\0');
        auto n = (*fs)->Read(attr->ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
        if (!n.ok()) {
          EXPECT_TRUE(n.status().code() == Code::kCorruption ||
                      n.status().code() == Code::kIoError)
              << n.status().ToString();
          reported = true;
        } else if (out != content) {
          EXPECT_TRUE(reported) << "wrong data read back and no problem reported";
        }
      }
    }
  }
  EXPECT_TRUE(reported) << "half the file is gone and nothing noticed";
}

TEST_F(SchemaTest, EmptyFileIsInitialisedAsNewStore) {
  std::ofstream(path_, std::ios::binary | std::ios::trunc).close();
  ASSERT_EQ(std::filesystem::file_size(path_), 0u);
  {
    ASSERT_OK_AND_ASSIGN(auto store, Open());
    ASSERT_OK(store->CreateSession("main").status());
  }
  EXPECT_EQ(RawInt(path_, "PRAGMA application_id"), kApplicationId);
  EXPECT_EQ(RawInt(path_, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(RawInt(path_, "SELECT count(*) FROM sessions"), 1);
}

TEST_F(SchemaTest, EmptyFileOpenedReadOnlyIsAnError) {
  std::ofstream(path_, std::ios::binary | std::ios::trunc).close();
  auto store = Open(/*read_only=*/true);
  ASSERT_FALSE(store.ok());
  ExpectNamesFile(store.status());
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);
}

TEST_F(SchemaTest, DirectoryPathIsAnError) {
  std::filesystem::create_directory(path_);
  auto store = Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Code::kIsDir) << store.status().ToString();
  ExpectNamesFile(store.status());
  EXPECT_FALSE(Open(/*read_only=*/true).ok());
}

TEST_F(SchemaTest, MissingParentDirectoryIsAnErrorNamingFile) {
  path_ = dir_.File("no/such/dir/store.db");
  auto store = Open();
  ASSERT_FALSE(store.ok());
  ExpectNamesFile(store.status());
}

TEST_F(SchemaTest, InvalidBlockSizeIsInvalid) {
  for (uint32_t bs : {0u, 1u, 512u, 2048u, 3000u, 4095u, 4097u, 12288u, 2u << 20, 0x80000000u}) {
    SCOPED_TRACE(bs);
    EXPECT_CODE(Open(false, bs), Code::kInvalid);
  }
  EXPECT_FALSE(std::filesystem::exists(path_));
  for (uint32_t bs : {4096u, 8192u, 1u << 20}) {
    std::filesystem::remove(path_);
    ASSERT_OK_AND_ASSIGN(auto store, Open(false, bs));
    EXPECT_EQ(store->block_size(), bs);
  }
}

TEST_F(SchemaTest, EmptyPathIsInvalid) {
  EXPECT_CODE(Store::Open(StoreOptions{}), Code::kInvalid);
}

TEST_F(SchemaTest, ReadOnlyOpenRefusesWrites) {
  MakeStore("read me");
  ASSERT_OK_AND_ASSIGN(SessionInfo main, [&]() -> Result<SessionInfo> {
    ASSIGN_OR_RETURN(auto rw, Open());
    ASSIGN_OR_RETURN(SessionInfo s, rw->GetSession("main"));
    RETURN_IF_ERROR(rw->Snapshot(s.branch, "snap").status());
    return s;
  }());
  std::string before = FileBytes(path_);
  ASSERT_OK_AND_ASSIGN(auto store, Open(/*read_only=*/true));
  EXPECT_CODE(store->CreateSession("other"), Code::kReadOnly);
  EXPECT_CODE(store->Snapshot(main.branch), Code::kReadOnly);
  EXPECT_CODE(store->Fork(View{main.branch, 1}), Code::kReadOnly);
  EXPECT_CODE(store->Restore("main", View{main.branch, 1}), Code::kReadOnly);
  EXPECT_CODE(store->CollectGarbage(), Code::kReadOnly);
  EXPECT_CODE(store->OpenFilesystem(View{main.branch, kHead}), Code::kReadOnly);
  // Reading works.
  ASSERT_OK_AND_ASSIGN(SnapshotInfo snap, store->FindSnapshot(main.branch, "snap"));
  ASSERT_OK_AND_ASSIGN(auto fs, store->OpenFilesystem(View{main.branch, snap.version}));
  EXPECT_TRUE(fs->read_only());
  ASSERT_OK_AND_ASSIGN(Attr a, fs->Resolve("/file"));
  std::string out(a.size, '\0');
  ASSERT_OK_AND_ASSIGN(size_t n, fs->Read(a.ino, 0, {reinterpret_cast<uint8_t*>(out.data()),
                                                     out.size()}));
  EXPECT_EQ(n, 7u);
  EXPECT_EQ(out, "read me");
  EXPECT_CODE(fs->Write(a.ino, 0, AsBytes("no")), Code::kReadOnly);
  EXPECT_CODE(fs->MkDir(kRootIno, "d", 0755, Cred{}), Code::kReadOnly);
  ASSERT_OK_AND_ASSIGN(auto diff, store->Diff(View{main.branch, snap.version},
                                              View{main.branch, kHead}));
  EXPECT_TRUE(diff.empty());
  ASSERT_OK_AND_ASSIGN(auto problems, store->CheckIntegrity());
  EXPECT_TRUE(problems.empty());
  store.reset();
  EXPECT_TRUE(FileBytes(path_) == before) << "a read-only open modified the store";
}

TEST_F(SchemaTest, ReadOnlyOpenOfMissingFileFailsWithoutCreatingIt) {
  auto store = Open(/*read_only=*/true);
  ASSERT_FALSE(store.ok());
  ExpectNamesFile(store.status());
  EXPECT_FALSE(std::filesystem::exists(path_));
}

}  // namespace
}  // namespace strata::catalog
