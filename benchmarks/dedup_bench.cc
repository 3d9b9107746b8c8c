// Store size, not speed: how much the store grows for duplicate data, and how
// small a real source tree gets. Sizes are of the closed store (SQLite
// checkpoints the WAL into the database and removes it on close).
//
// BM_DedupForks: 10 forks of one session each write the same 100 MiB of
//   random bytes (same seed) as a new file. BUDGET: the store grows by at
//   most 110 MiB in total. Also reports the write rate of the first fork
//   (new data) and of the other nine (every block a dedup hit, verified
//   byte for byte).
// BM_ImportUsrInclude: /usr/include copied in with ImportPath. BUDGET: the
//   store is at most 40% of the raw size (sum of regular file sizes).
//
// A summary with the verdicts is printed at exit.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <string>

#include "bench_util.h"
#include "strata/filesystem.h"
#include "strata/import.h"
#include "strata/store.h"

namespace strata::bench {
namespace {

constexpr int kForks = 10;
constexpr uint64_t kForkBytes = 100ull << 20;
constexpr size_t kWriteBytes = 1 << 20;

struct Summary {
  bool have_dedup = false;
  double growth_mib = 0, first_mibps = 0, dup_mibps = 0;
  bool have_import = false;
  double raw_mib = 0, store_mib = 0, import_mibps = 0;
  uint64_t files = 0;
} g_summary;

// Writes kForkBytes of seeded random bytes to a new file; returns seconds.
double WriteRandomFile(Filesystem& fs, const std::string& name) {
  std::vector<uint8_t> buf(kWriteBytes);
  Rng rng(1234);  // the same bytes in every fork
  double seconds = 0;
  Attr a = Unwrap(fs.Create(kRootIno, name, 0644, {}), "create");
  for (uint64_t off = 0; off < kForkBytes; off += kWriteBytes) {
    rng.Fill(buf);
    auto start = Clock::now();
    Unwrap(fs.Write(a.ino, off, buf), "write");
    seconds += SecondsSince(start);
  }
  auto start = Clock::now();
  Check(fs.Release(a.ino), "release");  // flushes
  return seconds + SecondsSince(start);
}

void BM_DedupForks(benchmark::State& state) {
  for (auto _ : state) {
    TempDir dir;
    std::string path = dir.File("store.db");
    BranchId base;
    {
      auto store = Unwrap(Store::Open({.path = path}), "open store");
      base = Unwrap(store->CreateSession("base"), "session").branch;
      auto fs = Unwrap(store->OpenFilesystem({base, kHead}), "open fs");
      std::vector<uint8_t> readme = TextBytes(4096, 5);
      Attr a = Unwrap(fs->Create(kRootIno, "README", 0644, {}), "create");
      Unwrap(fs->Write(a.ino, 0, readme), "write");
      Check(fs->Release(a.ino), "release");
    }
    uint64_t before = StoreFileBytes(path);
    std::vector<double> seconds;
    {
      auto store = Unwrap(Store::Open({.path = path}), "reopen store");
      for (int k = 0; k < kForks; ++k) {
        BranchId fork = Unwrap(store->Fork({base, kHead}, "fork" + std::to_string(k)), "fork");
        auto fs = Unwrap(store->OpenFilesystem({fork, kHead}), "open fork");
        seconds.push_back(WriteRandomFile(*fs, "data.bin"));
      }
      // Every fork sees its own copy.
      auto fs = Unwrap(store->OpenFilesystem({base, kHead}), "open base");
      if (fs->Lookup(kRootIno, "data.bin").ok()) std::abort();
    }
    uint64_t after = StoreFileBytes(path);
    if (FileSizeOrZero(path + "-wal") != 0) {
      std::fprintf(stderr, "[dedup_bench] note: WAL not checkpointed on close\n");
    }
    double growth = static_cast<double>(after - before) / kMiB;
    double dup_s = 0;
    for (int k = 1; k < kForks; ++k) dup_s += seconds[k];
    g_summary.have_dedup = true;
    g_summary.growth_mib = growth;
    g_summary.first_mibps = kForkBytes / kMiB / seconds[0];
    g_summary.dup_mibps = (kForks - 1) * kForkBytes / kMiB / dup_s;
    state.counters["growth_MiB"] = growth;
    state.counters["logical_MiB"] = kForks * kForkBytes / kMiB;
    state.counters["first_write_MiBps"] = g_summary.first_mibps;
    state.counters["dup_write_MiBps"] = g_summary.dup_mibps;
    state.counters["budget_ok"] = growth <= 110 ? 1 : 0;
  }
}
BENCHMARK(BM_DedupForks)->Iterations(1)->Unit(benchmark::kSecond);

void BM_ImportUsrInclude(benchmark::State& state) {
  for (auto _ : state) {
    TempDir dir;
    std::string path = dir.File("store.db");
    ImportStats stats;
    double seconds;
    {
      auto store = Unwrap(Store::Open({.path = path}), "open store");
      BranchId b = Unwrap(store->CreateSession("inc"), "session").branch;
      auto fs = Unwrap(store->OpenFilesystem({b, kHead}), "open fs");
      auto start = Clock::now();
      Check(ImportPath(*fs, "/usr/include", kRootIno, "include", &stats), "import");
      seconds = SecondsSince(start);
    }
    double store_mib = static_cast<double>(StoreFileBytes(path)) / kMiB;
    double raw_mib = static_cast<double>(stats.bytes) / kMiB;
    g_summary.have_import = true;
    g_summary.raw_mib = raw_mib;
    g_summary.store_mib = store_mib;
    g_summary.import_mibps = raw_mib / seconds;
    g_summary.files = stats.files;
    state.counters["files"] = static_cast<double>(stats.files);
    state.counters["raw_MiB"] = raw_mib;
    state.counters["store_MiB"] = store_mib;
    state.counters["ratio_pct"] = 100 * store_mib / raw_mib;
    state.counters["import_MiBps"] = raw_mib / seconds;
    state.counters["budget_ok"] = store_mib <= 0.4 * raw_mib ? 1 : 0;
  }
}
BENCHMARK(BM_ImportUsrInclude)->Iterations(1)->Unit(benchmark::kSecond);

void PrintSummary() {
  const Summary& s = g_summary;
  std::printf("\n=== dedup_bench summary ===\n");
  if (s.have_dedup) {
    std::printf("dedup: %d forks x 100 MiB identical random data (1000 MiB logical): store grew "
                "%.1f MiB (%.3fx of one copy)\n",
                kForks, s.growth_mib, s.growth_mib / 100);
    std::printf("dedup: write rate, first fork (new data) %.0f MiB/s, forks 2-10 (dedup hits) "
                "%.0f MiB/s\n",
                s.first_mibps, s.dup_mibps);
    std::printf("BUDGET dedup growth <= 110 MiB: %.1f MiB -> %s\n", s.growth_mib,
                s.growth_mib <= 110 ? "PASS" : "FAIL");
  }
  if (s.have_import) {
    std::printf("import /usr/include: %llu files, raw %.1f MiB, store %.1f MiB, %.0f MiB/s\n",
                static_cast<unsigned long long>(s.files), s.raw_mib, s.store_mib, s.import_mibps);
    std::printf("BUDGET /usr/include store/raw <= 40%%: %.1f%% -> %s\n",
                100 * s.store_mib / s.raw_mib, s.store_mib <= 0.4 * s.raw_mib ? "PASS" : "FAIL");
  }
}

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  if (!strata::bench::RunBenchmarks(argc, argv)) return 1;
  strata::bench::PrintSummary();
  return 0;
}
