// ChunkStore throughput: Put of new chunks, Put of chunks already stored
// (a dedup hit, which re-reads and compares the stored bytes), and Get, on
// compressible text (C headers from /usr/include) and on random bytes.
// Chunks are 64 KiB (the default block size), zstd level 3 (the default).
//
// Arguments: /0 = text, /1 = random. Dup: /hot (working set fits the 32 MiB
// chunk cache) or /cold (128 MiB working set: every verify loads from SQLite
// and decompresses).
#include <benchmark/benchmark.h>

#include <memory>
#include <optional>

#include "bench_util.h"
#include "catalog/db.h"
#include "chunks/chunk_store.h"
#include "sql/database.h"

namespace strata::bench {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr size_t kSetChunks = 2048;  // 128 MiB of distinct chunks per kind
constexpr size_t kHotChunks = 128;   // 8 MiB: fits the default 32 MiB cache
constexpr int kCommitEvery = 256;    // puts per write transaction (16 MiB)

enum Kind { kText = 0, kRandom = 1 };

// One store shared by every benchmark of this binary, filled lazily.
struct Env {
  TempDir dir;
  std::unique_ptr<catalog::Db> db;
  std::vector<uint8_t> data[2];            // source bytes per kind
  std::vector<chunks::ChunkId> ids[2];     // prefilled chunks per kind
  uint64_t stamp = 0;                      // makes "new" chunks unique

  Env() {
    db = Unwrap(catalog::Db::Open(dir.File("chunks.db"), false, kChunk, 1), "open db");
    data[kText] = HeaderCorpus(kSetChunks * kChunk);
    if (data[kText].size() < kSetChunks * kChunk) {
      // Small /usr/include: top up with generated text.
      size_t have = data[kText].size();
      data[kText].resize(kSetChunks * kChunk);
      Rng rng(7);
      FillText(std::span<uint8_t>(data[kText]).subspan(have), rng);
    }
    data[kRandom] = RandomBytes(kSetChunks * kChunk, 42);
  }

  // The i-th source chunk of `kind`, stamped so that no two are equal.
  std::span<const uint8_t> Slice(Kind kind, size_t i) {
    auto s = std::span<uint8_t>(data[kind]).subspan((i % kSetChunks) * kChunk, kChunk);
    uint64_t tag = (static_cast<uint64_t>(kind) << 56) | i;
    std::memcpy(s.data(), &tag, sizeof(tag));
    return s;
  }

  // Stores the kSetChunks reference chunks of `kind` once.
  const std::vector<chunks::ChunkId>& Prefilled(Kind kind, chunks::ChunkStore& store) {
    if (!ids[kind].empty()) return ids[kind];
    auto lease = Unwrap(db->Writer(), "writer");
    auto txn = Unwrap(sql::Transaction::Begin(lease.conn()), "begin");
    for (size_t i = 0; i < kSetChunks; ++i) {
      ids[kind].push_back(Unwrap(store.Put(lease.conn(), Slice(kind, i)), "prefill put"));
    }
    Check(txn.Commit(), "commit");
    return ids[kind];
  }
};

Env* g_env = nullptr;  // created on first use, deleted (with its temp dir) in main

Env& GetEnv() {
  if (g_env == nullptr) g_env = new Env();
  return *g_env;
}

void BM_ChunkPutNew(benchmark::State& state) {
  Env& env = GetEnv();
  Kind kind = static_cast<Kind>(state.range(0));
  chunks::ChunkStore store(nullptr, 3);
  auto lease = Unwrap(env.db->Writer(), "writer");
  std::optional<sql::Transaction> txn;
  int in_txn = 0;
  // Sources cycle over the set; the stamp (>= kSetChunks) keeps them new.
  for (auto _ : state) {
    if (!txn) txn.emplace(Unwrap(sql::Transaction::Begin(lease.conn()), "begin"));
    uint64_t n = kSetChunks + env.stamp++;
    auto s = std::span<uint8_t>(env.data[kind]).subspan((n % kSetChunks) * kChunk, kChunk);
    uint64_t tag = (static_cast<uint64_t>(kind) << 56) | n;
    std::memcpy(s.data(), &tag, sizeof(tag));
    benchmark::DoNotOptimize(Unwrap(store.Put(lease.conn(), s), "put"));
    if (++in_txn == kCommitEvery) {
      Check(txn->Commit(), "commit");
      txn.reset();
      in_txn = 0;
    }
  }
  if (txn) Check(txn->Commit(), "commit");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
}

void BM_ChunkPutDup(benchmark::State& state) {
  Env& env = GetEnv();
  Kind kind = static_cast<Kind>(state.range(0));
  bool hot = state.range(1) != 0;
  chunks::ChunkStore store(nullptr, 3);  // default 32 MiB cache
  const auto& ids = env.Prefilled(kind, store);
  size_t set = hot ? kHotChunks : kSetChunks;
  // Copies of the stored bytes (Slice stamps in place, so take them first).
  std::vector<std::vector<uint8_t>> copies;
  for (size_t i = 0; i < set; ++i) {
    auto s = env.Slice(kind, i);
    copies.emplace_back(s.begin(), s.end());
  }
  auto lease = Unwrap(env.db->Writer(), "writer");
  auto txn = Unwrap(sql::Transaction::Begin(lease.conn()), "begin");
  size_t i = 0;
  for (auto _ : state) {
    size_t k = i++ % set;
    chunks::ChunkId id = Unwrap(store.Put(lease.conn(), copies[k]), "dup put");
    if (id != ids[k]) {
      state.SkipWithError("dedup miss: a duplicate chunk got a new id");
      break;
    }
  }
  Check(txn.Commit(), "commit");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
}

void BM_ChunkGet(benchmark::State& state) {
  Env& env = GetEnv();
  Kind kind = static_cast<Kind>(state.range(0));
  {
    chunks::ChunkStore filler(nullptr, 3);
    env.Prefilled(kind, filler);
  }
  // No chunk cache: every Get reads the row and decompresses.
  chunks::ChunkStore store(nullptr, 3, 0);
  const auto& ids = env.ids[kind];
  auto reader = Unwrap(env.db->Reader(), "reader");
  Rng rng(99);
  for (auto _ : state) {
    chunks::ChunkId id = ids[rng.Next() % ids.size()];
    auto bytes = Unwrap(store.Get(reader.conn(), id), "get");
    benchmark::DoNotOptimize(bytes->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
}

// Put of new text chunks at other block sizes and zstd levels: the CPU and
// SQLite side of the block-size choice, without the filesystem around it.
// ratio_pct = stored (compressed) bytes / plain bytes.
void BM_ChunkPutTextLevel(benchmark::State& state) {
  Env& env = GetEnv();
  size_t block = static_cast<size_t>(state.range(0)) * 1024;
  int level = static_cast<int>(state.range(1));
  chunks::ChunkStore store(nullptr, level);
  auto lease = Unwrap(env.db->Writer(), "writer");
  sql::Connection& conn = lease.conn();
  std::vector<uint8_t>& text = env.data[kText];
  size_t per_set = text.size() / block;
  std::optional<sql::Transaction> txn;
  size_t in_txn = 0;
  chunks::ChunkId first = 0, last = 0;
  for (auto _ : state) {
    if (!txn) txn.emplace(Unwrap(sql::Transaction::Begin(conn), "begin"));
    uint64_t n = env.stamp++;
    auto s = std::span<uint8_t>(text).subspan((n % per_set) * block, block);
    uint64_t tag = (uint64_t{3} << 56) | n;
    std::memcpy(s.data(), &tag, sizeof(tag));
    last = Unwrap(store.Put(conn, s), "put");
    if (first == 0) first = last;
    if (++in_txn * block >= (16u << 20)) {
      Check(txn->Commit(), "commit");
      txn.reset();
      in_txn = 0;
    }
  }
  if (txn) Check(txn->Commit(), "commit");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * block));
  static constexpr const char* kStored =
      "SELECT sum(length(data)), sum(size) FROM chunks WHERE id BETWEEN ?1 AND ?2";
  auto q = Unwrap(conn.Prepare(kStored), "prepare");
  q.Bind(1, first).Bind(2, last);
  if (Unwrap(q.Step(), "step")) {
    state.counters["ratio_pct"] = 100.0 * static_cast<double>(q.Int(0)) /
                                  static_cast<double>(q.Int(1));
  }
}
BENCHMARK(BM_ChunkPutTextLevel)->ArgNames({"block_kib", "level"})
    ->ArgsProduct({{16, 32, 64, 128}, {1, 3}})->MinTime(1.0)->UseRealTime()->Repetitions(3)
    ->ReportAggregatesOnly(true)->Unit(benchmark::kMicrosecond);

void KindArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("random")->Arg(kText)->Arg(kRandom);
}

BENCHMARK(BM_ChunkPutNew)->Apply(KindArgs)->MinTime(1.0)->UseRealTime()->Repetitions(3)
    ->ReportAggregatesOnly(true)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChunkPutDup)->ArgNames({"random", "hot"})
    ->Args({kText, 1})->Args({kText, 0})->Args({kRandom, 1})->Args({kRandom, 0})
    ->MinTime(1.0)->UseRealTime()->Repetitions(3)->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ChunkGet)->Apply(KindArgs)->MinTime(1.0)->UseRealTime()->Repetitions(3)
    ->ReportAggregatesOnly(true)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  if (!strata::bench::RunBenchmarks(argc, argv)) return 1;
  delete strata::bench::g_env;  // closes the store and removes its directory
  return 0;
}
