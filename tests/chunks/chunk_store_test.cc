#include "chunks/chunk_store.h"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "catalog/schema.h"
#include "sql/database.h"
#include "testing/raw_db.h"
#include "testing/temp_store.h"

namespace strata::chunks {
namespace {

using ::strata::testing::RawDb;
using ::strata::testing::StoreTest;
using ::strata::testing::TempDir;

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

std::string CompressibleText(size_t n) {
  std::string out;
  while (out.size() < n) out += "the quick brown fox jumps over the lazy dog. ";
  out.resize(n);
  return out;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

ChunkHash ConstantHash(std::span<const uint8_t>) {
  ChunkHash h{};
  h.fill(0xAB);
  return h;
}

// A ChunkStore over a schema'd database, used directly.
class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = sql::Connection::Open(path_, sql::OpenMode::kReadWriteCreate);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(conn).value();
    auto bs = catalog::EnsureSchema(*conn_, path_, 65536, 1);
    ASSERT_TRUE(bs.ok()) << bs.status().ToString();
  }

  // Puts `bytes` in its own committed transaction.
  Result<ChunkId> Put(ChunkStore& store, const std::string& bytes) {
    ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(*conn_));
    ASSIGN_OR_RETURN(ChunkId id, store.Put(*conn_, AsBytes(bytes)));
    RETURN_IF_ERROR(txn.Commit());
    return id;
  }

  std::string Get(ChunkStore& store, ChunkId id) {
    auto got = store.Get(*conn_, id);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? AsString(**got) : std::string("<error>");
  }

  TempDir dir_;
  std::string path_ = dir_.File("chunks.db");
  std::unique_ptr<sql::Connection> conn_;
};

TEST_F(ChunkStoreTest, PutIsIdempotent) {
  ChunkStore store(nullptr, 3);
  std::string bytes = CompressibleText(10000);
  ASSERT_OK_AND_ASSIGN(ChunkId a, Put(store, bytes));
  ASSERT_OK_AND_ASSIGN(ChunkId b, Put(store, bytes));
  EXPECT_EQ(a, b);
  RawDb raw(path_);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks"), 1);
  ASSERT_OK_AND_ASSIGN(ChunkId c, Put(store, bytes + "!"));
  EXPECT_NE(c, a);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks"), 2);
}

TEST_F(ChunkStoreTest, PutRefusesEmptyChunk) {
  ChunkStore store(nullptr, 3);
  EXPECT_CODE(Put(store, ""), Code::kInvalid);
}

TEST_F(ChunkStoreTest, CompressibleTextIsStoredZstdCompressed) {
  ChunkStore store(nullptr, 3);
  std::string bytes = CompressibleText(65536);
  ASSERT_OK_AND_ASSIGN(ChunkId id, Put(store, bytes));
  RawDb raw(path_);
  std::string where = " FROM chunks WHERE id = " + std::to_string(id);
  EXPECT_EQ(raw.Int("SELECT codec" + where), static_cast<int>(Codec::kZstd));
  EXPECT_EQ(raw.Int("SELECT size" + where), 65536);
  EXPECT_LT(raw.Int("SELECT length(data)" + where), 65536 / 10);
  EXPECT_EQ(raw.Int("SELECT length(hash)" + where), 16);
  ChunkStore cold(nullptr, 3, 0);  // no cache: read from the table
  EXPECT_EQ(Get(cold, id), bytes);
}

TEST_F(ChunkStoreTest, RandomBytesAreStoredRaw) {
  ChunkStore store(nullptr, 3);
  std::string bytes = RandomBytes(65536, 7);
  ASSERT_OK_AND_ASSIGN(ChunkId id, Put(store, bytes));
  RawDb raw(path_);
  std::string where = " FROM chunks WHERE id = " + std::to_string(id);
  EXPECT_EQ(raw.Int("SELECT codec" + where), static_cast<int>(Codec::kRaw));
  EXPECT_EQ(raw.Int("SELECT length(data)" + where), 65536);
  EXPECT_EQ(raw.Int("SELECT size" + where), 65536);
  ChunkStore cold(nullptr, 3, 0);
  EXPECT_EQ(Get(cold, id), bytes);
}

TEST_F(ChunkStoreTest, GetReturnsExactBytes) {
  ChunkStore store(nullptr, 3);
  std::vector<std::string> inputs = {"x", std::string(1, '\0'), std::string("a\0b", 3),
                                     CompressibleText(4097), RandomBytes(300, 1),
                                     std::string(70000, '\0') + "z"};
  std::vector<ChunkId> ids;
  for (const auto& in : inputs) {
    ASSERT_OK_AND_ASSIGN(ChunkId id, Put(store, in));
    ids.push_back(id);
  }
  ChunkStore cold(nullptr, 3, 0);
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_EQ(Get(store, ids[i]), inputs[i]) << i;
    EXPECT_EQ(Get(cold, ids[i]), inputs[i]) << i;
  }
}

TEST_F(ChunkStoreTest, GetOfMissingChunkIsCorruption) {
  ChunkStore store(nullptr, 3);
  EXPECT_CODE(store.Get(*conn_, 12345), Code::kCorruption);
}

TEST_F(ChunkStoreTest, CollidingHashesKeepDifferentBlocksApart) {
  ChunkStore store(ConstantHash, 3, 0);
  std::string a = CompressibleText(5000);
  std::string b = RandomBytes(5000, 2);  // same size, different bytes
  std::string c = "short";
  ASSERT_OK_AND_ASSIGN(ChunkId ia, Put(store, a));
  ASSERT_OK_AND_ASSIGN(ChunkId ib, Put(store, b));
  ASSERT_OK_AND_ASSIGN(ChunkId ic, Put(store, c));
  EXPECT_NE(ia, ib);
  EXPECT_NE(ia, ic);
  EXPECT_NE(ib, ic);
  EXPECT_EQ(Get(store, ia), a);
  EXPECT_EQ(Get(store, ib), b);
  EXPECT_EQ(Get(store, ic), c);
  // Dedup still works among colliding candidates.
  ASSERT_OK_AND_ASSIGN(ChunkId ib2, Put(store, b));
  ASSERT_OK_AND_ASSIGN(ChunkId ic2, Put(store, c));
  EXPECT_EQ(ib2, ib);
  EXPECT_EQ(ic2, ic);
  RawDb raw(path_);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks"), 3);
  EXPECT_EQ(raw.Int("SELECT count(DISTINCT hash) FROM chunks"), 1);
}

TEST_F(ChunkStoreTest, CollectUnreferencedDeletesOnlyUnreferencedChunks) {
  ChunkStore store(nullptr, 3);
  ASSERT_OK_AND_ASSIGN(ChunkId kept, Put(store, CompressibleText(3000)));
  ASSERT_OK_AND_ASSIGN(ChunkId dropped, Put(store, RandomBytes(3000, 3)));
  ASSERT_OK(conn_->Exec("INSERT INTO blocks(ino, idx, branch, vfrom, chunk) VALUES (5, 0, 1, 1, " +
                        std::to_string(kept) + "), (6, 0, 1, 1, NULL)"));
  ASSERT_OK_AND_ASSIGN(sql::Transaction txn, sql::Transaction::Begin(*conn_));
  ChunkId after = 0;
  ASSERT_OK_AND_ASSIGN(GcStats stats, store.CollectUnreferenced(*conn_, &after, 100));
  ASSERT_OK(txn.Commit());
  EXPECT_EQ(stats.chunks_freed, 1u);
  EXPECT_EQ(after, dropped);
  EXPECT_EQ(stats.bytes_freed, 3000u);  // random bytes are stored raw
  RawDb raw(path_);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks WHERE id = " + std::to_string(kept)), 1);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks WHERE id = " + std::to_string(dropped)), 0);
  // Ids are never reused.
  ASSERT_OK_AND_ASSIGN(ChunkId fresh, Put(store, RandomBytes(3000, 4)));
  EXPECT_GT(fresh, dropped);
}

TEST_F(ChunkStoreTest, CollectUnreferencedGoesThroughTheTableInStepsOfTheLimit) {
  ChunkStore store(nullptr, 3);
  std::vector<ChunkId> ids;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(ChunkId id, Put(store, RandomBytes(100, 10 + i)));
    ids.push_back(id);
  }
  // The middle one is referenced: steps skip it and never come back to it.
  ASSERT_OK(conn_->Exec("INSERT INTO blocks(ino, idx, branch, vfrom, chunk) VALUES (5, 0, 1, 1, " +
                        std::to_string(ids[2]) + ")"));
  ChunkId after = 0;
  std::vector<uint64_t> freed;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(GcStats step, store.CollectUnreferenced(*conn_, &after, 2));
    if (step.chunks_freed == 0) break;
    freed.push_back(step.chunks_freed);
  }
  EXPECT_EQ(freed, (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(after, ids[4]);
  RawDb raw(path_);
  EXPECT_EQ(raw.Int("SELECT group_concat(id) FROM chunks"), ids[2]);
}

TEST_F(ChunkStoreTest, VerifyReportsTamperedRawChunkAsBadHash) {
  ChunkStore store(nullptr, 3);
  ASSERT_OK_AND_ASSIGN(ChunkId id, Put(store, RandomBytes(1000, 5)));
  std::vector<IntegrityProblem> problems;
  ASSERT_OK(store.Verify(*conn_, id, &problems));
  EXPECT_TRUE(problems.empty());
  {
    RawDb raw(path_);
    raw.Exec("UPDATE chunks SET data = randomblob(1000) WHERE id = " + std::to_string(id));
  }
  ASSERT_OK(store.Verify(*conn_, id, &problems));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].kind, "bad-hash");
  EXPECT_NE(problems[0].detail.find("chunk " + std::to_string(id)), std::string::npos);
}

TEST_F(ChunkStoreTest, VerifyReportsUndecodableChunkAsBadChunk) {
  ChunkStore store(nullptr, 3);
  ASSERT_OK_AND_ASSIGN(ChunkId zstd, Put(store, CompressibleText(8000)));
  ASSERT_OK_AND_ASSIGN(ChunkId raw_id, Put(store, RandomBytes(1000, 6)));
  {
    RawDb raw(path_);
    raw.Exec("UPDATE chunks SET data = x'00112233' WHERE id = " + std::to_string(zstd));
    raw.Exec("UPDATE chunks SET data = x'0011' WHERE id = " + std::to_string(raw_id));
  }
  std::vector<IntegrityProblem> problems;
  ASSERT_OK(store.Verify(*conn_, zstd, &problems));
  ASSERT_OK(store.Verify(*conn_, raw_id, &problems));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].kind, "bad-chunk");
  EXPECT_EQ(problems[1].kind, "bad-chunk");
  ChunkStore cold(nullptr, 3, 0);
  EXPECT_CODE(cold.Get(*conn_, zstd), Code::kCorruption);
  EXPECT_CODE(cold.Get(*conn_, raw_id), Code::kCorruption);
}

// --- Through the Store API.

class ChunkStoreViaStoreTest : public StoreTest {
 protected:
  std::string StorePath() { return dir_.File("store.db"); }

  // Replaces the fixture's store with a brand-new one made with `options`.
  void OpenFreshStore(StoreOptions options) {
    fs_.reset();
    store_.reset();
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(StorePath() + suffix);
    OpenStore(std::move(options));
  }

  void Overwrite(InodeId ino, const std::string& content) {
    ASSERT_OK(fs_->Open(ino));
    ASSERT_OK(fs_->Write(ino, 0, AsBytes(content)).status());
    ASSERT_OK(fs_->Flush(ino));
    ASSERT_OK(fs_->Release(ino));
  }

  bool HasProblem(const std::vector<IntegrityProblem>& problems, const std::string& kind) {
    for (const auto& p : problems) {
      if (p.kind == kind) return true;
    }
    return false;
  }
};

TEST_F(ChunkStoreViaStoreTest, CollidingHashFunctionKeepsFileContentsApart) {
  StoreOptions options;
  options.hash = ConstantHash;
  options.block_size = 4096;
  OpenFreshStore(options);
  ASSERT_EQ(store_->block_size(), 4096u);
  std::string a = "contents of file a";
  std::string b = "contents of file b";
  std::string big = CompressibleText(4096) + RandomBytes(4096, 9) + CompressibleText(4096) +
                    "tail";  // blocks 0 and 2 are equal and should share a chunk
  Attr fa = WriteFile(kRootIno, "a", a);
  Attr fb = WriteFile(kRootIno, "b", b);
  Attr fbig = WriteFile(kRootIno, "big", big);
  EXPECT_EQ(ReadAll(*fs_, fa.ino), a);
  EXPECT_EQ(ReadAll(*fs_, fb.ino), b);
  EXPECT_EQ(ReadAll(*fs_, fbig.ino), big);
  {
    RawDb raw(StorePath());
    EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks"), 5);  // a, b, text, random, tail
  }
  // With a cold cache, after reopening.
  OpenStore(options);
  ASSERT_OK_AND_ASSIGN(Attr ra, fs_->Lookup(kRootIno, "a"));
  ASSERT_OK_AND_ASSIGN(Attr rb, fs_->Lookup(kRootIno, "b"));
  ASSERT_OK_AND_ASSIGN(Attr rbig, fs_->Lookup(kRootIno, "big"));
  EXPECT_EQ(ReadAll(*fs_, ra.ino), a);
  EXPECT_EQ(ReadAll(*fs_, rb.ino), b);
  EXPECT_EQ(ReadAll(*fs_, rbig.ino), big);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  for (auto& p : problems) ADD_FAILURE() << p.kind << ": " << p.detail;
}

TEST_F(ChunkStoreViaStoreTest, CollectGarbageFreesChunkOfOverwrittenFile) {
  std::string old_content = RandomBytes(1000, 11);
  std::string new_content = RandomBytes(1000, 12);
  Attr f = WriteFile(kRootIno, "f", old_content);
  int64_t old_chunk;
  {
    RawDb raw(StorePath());
    ASSERT_EQ(raw.Int("SELECT count(*) FROM chunks"), 1);
    old_chunk = raw.Int("SELECT id FROM chunks");
  }
  Overwrite(f.ino, new_content);
  ASSERT_OK_AND_ASSIGN(GcStats stats, store_->CollectGarbage());
  EXPECT_EQ(stats.chunks_freed, 1u);
  EXPECT_EQ(stats.bytes_freed, 1000u);
  {
    RawDb raw(StorePath());
    EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks"), 1);
    EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks WHERE id = " + std::to_string(old_chunk)), 0);
  }
  EXPECT_EQ(ReadAll(*fs_, f.ino), new_content);
  ASSERT_OK_AND_ASSIGN(GcStats again, store_->CollectGarbage());
  EXPECT_EQ(again.chunks_freed, 0u);
  EXPECT_EQ(again.bytes_freed, 0u);
}

TEST_F(ChunkStoreViaStoreTest, CollectGarbageKeepsChunkReferencedOnlyBySnapshot) {
  std::string old_content = RandomBytes(1000, 13);
  std::string new_content = RandomBytes(1000, 14);
  Attr f = WriteFile(kRootIno, "f", old_content);
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_, "keep"));
  Overwrite(f.ino, new_content);
  ASSERT_OK_AND_ASSIGN(GcStats stats, store_->CollectGarbage());
  EXPECT_EQ(stats.chunks_freed, 0u);
  {
    RawDb raw(StorePath());
    EXPECT_EQ(raw.Int("SELECT count(*) FROM chunks"), 2);
  }
  // Reopen so that nothing is served from the chunk cache.
  OpenStore(StoreOptions{});
  ASSERT_OK_AND_ASSIGN(auto snap, store_->OpenFilesystem(View{branch_, v}));
  EXPECT_EQ(ReadAll(*snap, f.ino), old_content);
  EXPECT_EQ(ReadAll(*fs_, f.ino), new_content);
}

TEST_F(ChunkStoreViaStoreTest, CollectGarbageFreesChunkOfUnlinkedFile) {
  WriteFile(kRootIno, "gone", RandomBytes(2000, 15));
  WriteFile(kRootIno, "kept", RandomBytes(2000, 16));
  ASSERT_OK(fs_->Unlink(kRootIno, "gone"));
  ASSERT_OK_AND_ASSIGN(GcStats stats, store_->CollectGarbage());
  EXPECT_EQ(stats.chunks_freed, 1u);
  EXPECT_EQ(stats.bytes_freed, 2000u);
}

TEST_F(ChunkStoreViaStoreTest, CheckIntegrityReportsTamperedChunk) {
  WriteFile(kRootIno, "raw", RandomBytes(3000, 17));
  WriteFile(kRootIno, "text", CompressibleText(3000));
  ASSERT_OK_AND_ASSIGN(auto clean, store_->CheckIntegrity());
  EXPECT_TRUE(clean.empty());
  {
    RawDb raw(StorePath());
    // Same length, different bytes: decodes, but does not match its key.
    raw.Exec("UPDATE chunks SET data = randomblob(3000) WHERE codec = 0");
  }
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].kind, "bad-hash");
  {
    RawDb raw(StorePath());
    raw.Exec("UPDATE chunks SET data = x'deadbeef' WHERE codec = 1");
  }
  ASSERT_OK_AND_ASSIGN(problems, store_->CheckIntegrity());
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_TRUE(HasProblem(problems, "bad-hash"));
  EXPECT_TRUE(HasProblem(problems, "bad-chunk"));
}

TEST_F(ChunkStoreViaStoreTest, CheckIntegrityReportsMissingChunk) {
  Attr f = WriteFile(kRootIno, "f", RandomBytes(3000, 18));
  {
    RawDb raw(StorePath());
    raw.Exec("DELETE FROM chunks");
  }
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].kind, "missing-chunk");
  EXPECT_NE(problems[0].detail.find("inode " + std::to_string(f.ino)), std::string::npos)
      << problems[0].detail;
  // Reading the file reports the damage (cold cache).
  OpenStore(StoreOptions{});
  std::string out(3000, '\0');
  EXPECT_CODE(fs_->Read(f.ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()}),
              Code::kCorruption);
}

// A reader that found a block's chunk id must be able to load it even if the
// file is overwritten and the old chunk collected meanwhile.
TEST_F(ChunkStoreViaStoreTest, ReadsRacingGarbageCollectionNeverFail) {
  StoreOptions options;
  options.block_size = 4096;
  OpenFreshStore(options);
  constexpr size_t kSize = 4 * 4096;
  Attr f = WriteFile(kRootIno, "f", RandomBytes(kSize, 100));
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what, const Status& s) {
    std::scoped_lock lock(mu);
    if (errors.size() < 10) errors.push_back(what + ": " + s.ToString());
  };
  std::atomic<int> writes{0}, collections{0}, reads{0};
  std::thread writer([&] {
    for (uint32_t i = 0; !stop.load(); ++i) {
      std::string content = RandomBytes(kSize, 1000 + i);
      auto n = fs_->Write(f.ino, 0, AsBytes(content));
      Status s = n.ok() ? fs_->Flush(f.ino) : n.status();
      if (!s.ok()) return fail("write", s);
      writes++;
    }
  });
  std::thread collector([&] {
    while (!stop.load()) {
      auto stats = store_->CollectGarbage();
      if (!stats.ok()) return fail("gc", stats.status());
      collections++;
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      std::string out(kSize, '\0');
      while (!stop.load()) {
        auto n = fs_->Read(f.ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
        if (!n.ok()) return fail("read", n.status());
        if (*n != kSize) return fail("read", Internal("short read"));
        reads++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop = true;
  writer.join();
  collector.join();
  for (auto& t : readers) t.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_GT(writes.load(), 10);
  EXPECT_GT(collections.load(), 10);
  EXPECT_GT(reads.load(), 10);
}

// CheckIntegrity reads one consistent state even while the tree changes.
TEST_F(ChunkStoreViaStoreTest, CheckIntegrityDuringWritesFindsNoProblems) {
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> errors;
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      std::string dir = "d" + std::to_string(i % 5);
      auto d = fs_->Lookup(kRootIno, dir);
      if (!d.ok()) d = fs_->MkDir(kRootIno, dir, 0755, Cred{});
      Status s = d.status();
      if (s.ok()) {
        std::string name = "f" + std::to_string(i % 7);
        auto existing = fs_->Lookup(d->ino, name);
        if (existing.ok()) {
          s = fs_->Unlink(d->ino, name);
        } else {
          auto a = fs_->Create(d->ino, name, 0644, Cred{});
          s = a.status();
          if (s.ok()) s = fs_->Write(a->ino, 0, AsBytes(RandomBytes(5000, i))).status();
          if (s.ok()) s = fs_->Release(a->ino);
        }
      }
      if (s.ok() && i % 9 == 0) s = fs_->RmDir(kRootIno, "d" + std::to_string((i / 9) % 5));
      if (!s.ok() && s.code() != Code::kNotEmpty && s.code() != Code::kNotFound) {
        std::scoped_lock lock(mu);
        errors.push_back("write: " + s.ToString());
        return;
      }
      if (i % 13 == 0) (void)store_->CollectGarbage();
    }
  });
  int checks = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < deadline) {
    auto problems = store_->CheckIntegrity();
    if (!problems.ok()) {
      ADD_FAILURE() << problems.status().ToString();
      break;
    }
    for (const auto& p : *problems) ADD_FAILURE() << p.kind << ": " << p.detail;
    if (!problems->empty()) break;
    ++checks;
  }
  stop = true;
  writer.join();
  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_GT(checks, 3);
}

}  // namespace
}  // namespace strata::chunks
