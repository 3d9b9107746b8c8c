// The block-size / compression-level trade-off behind the defaults
// (StoreOptions: block_size 64 KiB, compression_level 3).
//
// BM_BlockSize/block_kib:B/level:L, for B in 16, 32, 64, 128 and L in 1, 3,
// each repetition on fresh stores:
//   write_MiBps   96 MiB of real source text (concatenated /usr/include
//                 headers) as one file in 1 MiB writes, then FlushAll+Fsync;
//   read_MiBps    that file read back in 1 MiB reads (after reopening the
//                 store, so the chunk cache is cold);
//   rw4k_per_s    random 4 KiB overwrites, each followed by Flush (every one
//                 rewrites a whole block: the cost of large blocks);
//   rr4k_per_s    random 4 KiB reads (cold chunk cache at the start);
//   import_MiBps  ImportPath of /usr/include;
//   ratio_pct     store size / raw size of /usr/include (closed store).
// Repetitions are interleaved; medians are printed in a table at exit.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "bench_util.h"
#include "strata/filesystem.h"
#include "strata/import.h"
#include "strata/store.h"

namespace strata::bench {
namespace {

constexpr size_t kCorpusBytes = 96 << 20;
constexpr size_t kWriteBytes = 1 << 20;
constexpr int kRandomWrites = 400;
constexpr int kRandomReads = 4000;

const std::vector<uint8_t>& Corpus() {
  static const std::vector<uint8_t> corpus = [] {
    std::vector<uint8_t> c = HeaderCorpus(kCorpusBytes);
    size_t have = c.size();
    if (have < kCorpusBytes) {  // small /usr/include: top up with text
      c.resize(kCorpusBytes);
      Rng rng(17);
      FillText(std::span<uint8_t>(c).subspan(have), rng);
    }
    return c;
  }();
  return corpus;
}

using Figures = std::map<std::string, double>;
// [block_kib, level] -> name -> samples
std::map<std::pair<int, int>, std::map<std::string, std::vector<double>>> g_samples;

Figures MeasureFile(uint32_t block, int level) {
  Figures f;
  const auto& corpus = Corpus();
  TempDir dir;
  StoreOptions opts{.path = dir.File("file.db"), .block_size = block, .compression_level = level};
  InodeId ino;
  BranchId branch;
  {
    auto store = Unwrap(Store::Open(opts), "open store");
    branch = Unwrap(store->CreateSession("s"), "session").branch;
    auto fs = Unwrap(store->OpenFilesystem({branch, kHead}), "open fs");
    auto start = Clock::now();
    ino = Unwrap(fs->Create(kRootIno, "corpus", 0644, {}), "create").ino;
    for (size_t off = 0; off < corpus.size(); off += kWriteBytes) {
      Unwrap(fs->Write(ino, off, std::span<const uint8_t>(corpus).subspan(off, kWriteBytes)),
             "write");
    }
    Check(fs->FlushAll(), "flush");
    Check(fs->Fsync(ino), "fsync");
    Check(fs->Release(ino), "release");
    f["write_MiBps"] = corpus.size() / kMiB / SecondsSince(start);
  }
  auto store = Unwrap(Store::Open(opts), "reopen store");
  auto fs = Unwrap(store->OpenFilesystem({branch, kHead}), "open fs");
  std::vector<uint8_t> buf(kWriteBytes);
  auto start = Clock::now();
  for (size_t off = 0; off < corpus.size(); off += kWriteBytes) {
    Unwrap(fs->Read(ino, off, buf), "read");
  }
  f["read_MiBps"] = corpus.size() / kMiB / SecondsSince(start);
  if (!std::equal(buf.begin(), buf.end(), corpus.end() - kWriteBytes)) std::abort();

  // Random 4 KiB overwrites, each committed.
  Rng rng(block + level);
  std::vector<uint8_t> small(4096);
  Check(fs->Open(ino), "open");
  start = Clock::now();
  for (int i = 0; i < kRandomWrites; ++i) {
    rng.Fill(small);
    uint64_t off = (rng.Next() % (corpus.size() / 4096)) * 4096;
    Unwrap(fs->Write(ino, off, small), "write 4k");
    Check(fs->Flush(ino), "flush 4k");
  }
  f["rw4k_per_s"] = kRandomWrites / SecondsSince(start);
  Check(fs->Release(ino), "release");
  fs.reset();
  store.reset();

  // Random 4 KiB reads, from a cold chunk cache.
  store = Unwrap(Store::Open(opts), "reopen store");
  fs = Unwrap(store->OpenFilesystem({branch, kHead}), "open fs");
  start = Clock::now();
  for (int i = 0; i < kRandomReads; ++i) {
    uint64_t off = (rng.Next() % (corpus.size() / 4096)) * 4096;
    Unwrap(fs->Read(ino, off, small), "read 4k");
  }
  f["rr4k_per_s"] = kRandomReads / SecondsSince(start);
  return f;
}

void MeasureImport(uint32_t block, int level, Figures* f) {
  TempDir dir;
  StoreOptions opts{.path = dir.File("inc.db"), .block_size = block, .compression_level = level};
  ImportStats stats;
  double seconds;
  {
    auto store = Unwrap(Store::Open(opts), "open store");
    BranchId b = Unwrap(store->CreateSession("inc"), "session").branch;
    auto fs = Unwrap(store->OpenFilesystem({b, kHead}), "open fs");
    auto start = Clock::now();
    Check(ImportPath(*fs, "/usr/include", kRootIno, "include", &stats), "import");
    seconds = SecondsSince(start);
  }
  double raw = static_cast<double>(stats.bytes);
  (*f)["import_MiBps"] = raw / kMiB / seconds;
  (*f)["ratio_pct"] = 100.0 * static_cast<double>(StoreFileBytes(dir.File("inc.db"))) / raw;
}

void BM_BlockSize(benchmark::State& state) {
  int kib = static_cast<int>(state.range(0));
  int level = static_cast<int>(state.range(1));
  Corpus();  // load outside the timing
  Figures f;
  for (auto _ : state) {
    f = MeasureFile(static_cast<uint32_t>(kib) * 1024, level);
    MeasureImport(static_cast<uint32_t>(kib) * 1024, level, &f);
  }
  for (auto& [name, value] : f) {
    state.counters[name] = value;
    g_samples[{kib, level}][name].push_back(value);
  }
}
BENCHMARK(BM_BlockSize)
    ->ArgNames({"block_kib", "level"})
    ->ArgsProduct({{16, 32, 64, 128}, {1, 3}})
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true)
    ->Unit(benchmark::kSecond);

void PrintSummary() {
  if (g_samples.empty()) return;
  std::printf("\n=== blocksize_bench summary (medians of %zu repetitions) ===\n",
              g_samples.begin()->second.begin()->second.size());
  std::printf("%-6s %-5s %11s %10s %10s %10s %12s %9s\n", "block", "level", "write MiB/s",
              "read MiB/s", "rw4k/s", "rr4k/s", "import MiB/s", "ratio %");
  for (auto& [key, figures] : g_samples) {
    auto m = [&](const char* name) { return Median(figures[name]); };
    std::printf("%3d KiB %5d %11.0f %10.0f %10.0f %10.0f %12.1f %9.1f\n", key.first, key.second,
                m("write_MiBps"), m("read_MiBps"), m("rw4k_per_s"), m("rr4k_per_s"),
                m("import_MiBps"), m("ratio_pct"));
  }
}

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  if (!strata::bench::RunInterleaved(argc, argv)) return 1;
  strata::bench::PrintSummary();
  return 0;
}
