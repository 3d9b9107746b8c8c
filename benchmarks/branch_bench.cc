// Branch costs: snapshot and fork time against the number of files in the
// session, and lookup/getattr rates against the depth of the branch ancestry.
//
// BM_Snapshot/files:N, BM_Fork/files:N (N = 1,000, 10,000, 100,000 files of
//   100 bytes, in directories of 1,000): each sample changes one file and
//   commits it (untimed), then times Store::Snapshot (or Store::Fork of the
//   head into a new named session). Samples from all repetitions are pooled;
//   the MEDIAN is what the budgets use. Repetitions of different benchmarks
//   are randomly interleaved so that machine noise hits every size alike.
// BM_Lookup / BM_GetAttr /depth:D/touched:T: a 10,000-file session created at
//   the root branch, seen through a chain of D forks (D = 0, 1, 8; and 32,
//   untouched only, to show how the cost grows past the budget's depth).
//   touched:0 = nothing changed below the root, so every row is found D
//   levels up; touched:1 = at each level of the chain 1/8 of the files had
//   their attributes changed, 1/64 their data rewritten and 1/80 were
//   unlinked and re-created, so rows are found at every depth. Items/s.
//
// BM_SnapshotDirty/buffered_mib:M (informative, no budget): snapshot time
//   when M MiB of writes are still buffered, which the snapshot commits.
//
// The stores are built once per process and per size (building 100,000 files
// takes a while) and reused by every repetition. At exit a summary prints the
// medians, the ratios and the verdict of each budget:
//   snapshot and fork at 100k files: median < 5 ms and <= 2x the 1k median;
//   lookup and getattr at depth 8: time within 1.5x of depth 1.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "bench_util.h"
#include "strata/filesystem.h"
#include "strata/store.h"

namespace strata::bench {
namespace {

constexpr int kFilesPerDir = 1'000;
constexpr size_t kFileBytes = 100;
constexpr int kDepthFiles = 10'000;
constexpr int kMaxDepth = 8;    // the budget's depth
constexpr int kDeepDepth = 32;  // untouched chain only: how cost scales further

std::string Name(int i) { return "f" + std::to_string(i); }

// A session of `files` small files in directories of kFilesPerDir.
struct Tree {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Store> store;
  SessionInfo session;
  std::unique_ptr<Filesystem> fs;
  std::vector<InodeId> dirs;
  std::vector<InodeId> files;
  double build_seconds = 0;
};

void Populate(Filesystem& fs, int files, std::vector<InodeId>* dirs, std::vector<InodeId>* inos) {
  std::vector<uint8_t> body = TextBytes(kFileBytes, 3);
  for (int d = 0; d * kFilesPerDir < files; ++d) {
    dirs->push_back(Unwrap(fs.MkDir(kRootIno, "d" + std::to_string(d), 0755, {}), "mkdir").ino);
  }
  for (int i = 0; i < files; ++i) {
    std::memcpy(body.data(), &i, sizeof(i));  // distinct contents
    Attr a = Unwrap(fs.Create((*dirs)[i / kFilesPerDir], Name(i), 0644, {}), "create");
    Unwrap(fs.Write(a.ino, 0, body), "write");
    Check(fs.Release(a.ino), "release");
    inos->push_back(a.ino);
  }
}

std::unique_ptr<Tree> BuildTree(int files) {
  auto t = std::make_unique<Tree>();
  t->dir = std::make_unique<TempDir>();
  t->store = Unwrap(Store::Open({.path = t->dir->File("store.db")}), "open store");
  t->session = Unwrap(t->store->CreateSession("base"), "session");
  t->fs = Unwrap(t->store->OpenFilesystem({t->session.branch, kHead}), "open fs");
  auto start = Clock::now();
  Populate(*t->fs, files, &t->dirs, &t->files);
  Check(t->fs->FlushAll(), "flush");
  t->build_seconds = SecondsSince(start);
  std::fprintf(stderr, "[branch_bench] built %d files in %.1f s (%.0f files/s)\n", files,
               t->build_seconds, files / t->build_seconds);
  return t;
}

std::map<int, std::unique_ptr<Tree>> g_trees;

Tree& TreeOf(int files) {
  auto& t = g_trees[files];
  if (!t) t = BuildTree(files);
  return *t;
}

// Every timed sample, pooled across repetitions: [op][size] -> seconds.
std::map<std::string, std::map<int, std::vector<double>>> g_samples;

// Makes the head dirty the way a working session does: rewrite one file.
void TouchOne(Tree& t, uint64_t n) {
  InodeId ino = t.files[n % t.files.size()];
  uint8_t byte = static_cast<uint8_t>(n);
  Unwrap(t.fs->Write(ino, 0, {&byte, 1}), "write");
  Check(t.fs->Flush(ino), "flush");
}

void RecordSamples(benchmark::State& state, const std::string& op, int size,
                   const std::vector<double>& samples) {
  auto& all = g_samples[op][size];
  all.insert(all.end(), samples.begin(), samples.end());
  state.counters["median_us"] = Median(samples) * 1e6;
  state.counters["p90_us"] = Percentile(samples, 0.9) * 1e6;
}

void BM_Snapshot(benchmark::State& state) {
  int files = static_cast<int>(state.range(0));
  Tree& t = TreeOf(files);
  static uint64_t n = 0;
  std::vector<double> samples;
  for (auto _ : state) {
    TouchOne(t, n++);
    auto start = Clock::now();
    Unwrap(t.store->Snapshot(t.session.branch), "snapshot");
    double s = SecondsSince(start);
    state.SetIterationTime(s);
    samples.push_back(s);
  }
  RecordSamples(state, "snapshot", files, samples);
}

void BM_Fork(benchmark::State& state) {
  int files = static_cast<int>(state.range(0));
  Tree& t = TreeOf(files);
  static uint64_t n = 0;
  std::vector<double> samples;
  for (auto _ : state) {
    uint64_t k = n++;
    TouchOne(t, k);
    std::string name = "fork-" + std::to_string(files) + "-" + std::to_string(k);
    auto start = Clock::now();
    Unwrap(t.store->Fork({t.session.branch, kHead}, name), "fork");
    double s = SecondsSince(start);
    state.SetIterationTime(s);
    samples.push_back(s);
  }
  RecordSamples(state, "fork", files, samples);
}

// Snapshot of a head with D MiB of buffered (unflushed) writes: a snapshot
// commits the write buffer first, so its time grows with the buffered bytes
// (not with the tree). Random bytes (stored raw: no compression cost).
void BM_SnapshotDirty(benchmark::State& state) {
  int mib = static_cast<int>(state.range(0));
  Tree& t = TreeOf(1'000);
  static uint64_t n = 0;
  std::vector<uint8_t> buf(1 << 20);
  static Rng rng(77);  // static: new bytes in every repetition (no dedup hits)
  std::vector<double> samples;
  for (auto _ : state) {
    Attr a = Unwrap(t.fs->Create(kRootIno, "dirty" + std::to_string(n++), 0644, {}), "create");
    for (int i = 0; i < mib; ++i) {
      rng.Fill(buf);
      Unwrap(t.fs->Write(a.ino, static_cast<uint64_t>(i) << 20, buf), "write");
    }
    auto start = Clock::now();
    Unwrap(t.store->Snapshot(t.session.branch), "snapshot");
    double s = SecondsSince(start);
    state.SetIterationTime(s);
    samples.push_back(s);
    Check(t.fs->Release(a.ino), "release");
    Check(t.fs->Unlink(kRootIno, "dirty" + std::to_string(n - 1)), "unlink");
  }
  state.counters["median_ms"] = Median(samples) * 1e3;
}
BENCHMARK(BM_SnapshotDirty)->ArgName("buffered_mib")->Arg(0)->Arg(1)->Arg(16)->Arg(60)
    ->Iterations(1)->Repetitions(5)->UseManualTime()->ReportAggregatesOnly(true)
    ->Unit(benchmark::kMillisecond);

void SizeArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("files")->Arg(1'000)->Arg(10'000)->Arg(100'000);
  b->Iterations(20)->Repetitions(5)->UseManualTime()->ReportAggregatesOnly(true);
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_Snapshot)->Apply(SizeArgs);
BENCHMARK(BM_Fork)->Apply(SizeArgs);

// --- lookups through deep ancestry

// The 10,000-file store with two fork chains of depth 8 from its root.
struct DepthStore {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Store> store;
  std::vector<InodeId> dirs;
  // [touched][depth]: a filesystem on the head of the branch at that depth,
  // and the inode of every file name as seen there.
  std::unique_ptr<Filesystem> fs[2][kDeepDepth + 1];
  std::vector<InodeId> inos[2][kDeepDepth + 1];
};
std::unique_ptr<DepthStore> g_depth;

// Changes, in the filesystem at level d (1-based) of the touched chain, the
// files of residue d-1: attributes of 1/8, data of 1/64, re-creation of 1/80.
void TouchLevel(Filesystem& fs, const std::vector<InodeId>& dirs, int d) {
  std::vector<uint8_t> body = TextBytes(kFileBytes, 100 + d);
  for (int i = 0; i < kDepthFiles; ++i) {
    InodeId dir = dirs[i / kFilesPerDir];
    if (i % 80 == d - 1) {
      Check(fs.Unlink(dir, Name(i)), "unlink");
      Attr a = Unwrap(fs.Create(dir, Name(i), 0644, {}), "recreate");
      Unwrap(fs.Write(a.ino, 0, body), "write");
      Check(fs.Release(a.ino), "release");
      continue;
    }
    if (i % 8 != d - 1) continue;
    Attr a = Unwrap(fs.Lookup(dir, Name(i)), "lookup");
    AttrChanges ch;
    ch.mtime_ns = 1'000'000'000LL * (d + 1);
    Unwrap(fs.SetAttr(a.ino, ch), "setattr");
    if (i % 64 == d - 1) {
      Check(fs.Open(a.ino), "open");
      Unwrap(fs.Write(a.ino, 0, body), "write");
      Check(fs.Release(a.ino), "release");
    }
  }
  Check(fs.FlushAll(), "flush");
}

DepthStore& GetDepthStore() {
  if (g_depth) return *g_depth;
  auto start = Clock::now();
  auto d = std::make_unique<DepthStore>();
  d->dir = std::make_unique<TempDir>();
  d->store = Unwrap(Store::Open({.path = d->dir->File("store.db")}), "open store");
  SessionInfo root = Unwrap(d->store->CreateSession("root"), "session");
  std::vector<InodeId> files;
  {
    auto fs = Unwrap(d->store->OpenFilesystem({root.branch, kHead}), "open fs");
    Populate(*fs, kDepthFiles, &d->dirs, &files);
  }
  for (int touched = 0; touched < 2; ++touched) {
    BranchId branch = root.branch;
    for (int depth = 0; depth <= (touched ? kMaxDepth : kDeepDepth); ++depth) {
      if (depth > 0) {
        std::string name = "chain" + std::to_string(touched) + "-" + std::to_string(depth);
        branch = Unwrap(d->store->Fork({branch, kHead}, name), "fork");
      }
      if (touched || depth <= 1 || depth == kMaxDepth || depth == kDeepDepth) {
        auto fs = Unwrap(d->store->OpenFilesystem({branch, kHead}), "open fs");
        if (touched && depth > 0) TouchLevel(*fs, d->dirs, depth);
        d->fs[touched][depth] = std::move(fs);
      }
    }
  }
  for (int touched = 0; touched < 2; ++touched) {
    for (int depth = 0; depth <= kDeepDepth; ++depth) {
      if (!d->fs[touched][depth]) continue;
      for (int i = 0; i < kDepthFiles; ++i) {
        d->inos[touched][depth].push_back(
            Unwrap(d->fs[touched][depth]->Lookup(d->dirs[i / kFilesPerDir], Name(i)), "lookup")
                .ino);
      }
    }
  }
  auto info = Unwrap(d->store->GetBranch(d->fs[1][kMaxDepth]->view().branch), "branch");
  if (info.depth != kMaxDepth) std::abort();
  std::fprintf(stderr, "[branch_bench] built depth store (%d files, 2 chains of %d) in %.1f s\n",
               kDepthFiles, kMaxDepth, SecondsSince(start));
  g_depth = std::move(d);
  return *g_depth;
}

// Seconds per item of each repetition, wall clock and thread CPU:
// [op/depth/touched].
std::map<std::string, std::vector<double>> g_per_item, g_cpu_per_item;

std::string DepthKey(const char* op, int depth, int touched) {
  return std::string(op) + "/depth:" + std::to_string(depth) + "/touched:" +
         std::to_string(touched);
}

void BM_Lookup(benchmark::State& state) {
  int depth = static_cast<int>(state.range(0));
  int touched = static_cast<int>(state.range(1));
  DepthStore& d = GetDepthStore();
  Filesystem& fs = *d.fs[touched][depth];
  Rng rng(depth * 10 + touched);
  auto start = Clock::now();
  double cpu = ThreadCpuSeconds();
  for (auto _ : state) {
    int i = static_cast<int>(rng.Next() % kDepthFiles);
    benchmark::DoNotOptimize(Unwrap(fs.Lookup(d.dirs[i / kFilesPerDir], Name(i)), "lookup"));
  }
  double n = static_cast<double>(state.iterations());
  g_per_item[DepthKey("lookup", depth, touched)].push_back(SecondsSince(start) / n);
  g_cpu_per_item[DepthKey("lookup", depth, touched)].push_back((ThreadCpuSeconds() - cpu) / n);
  state.SetItemsProcessed(state.iterations());
}

void BM_GetAttr(benchmark::State& state) {
  int depth = static_cast<int>(state.range(0));
  int touched = static_cast<int>(state.range(1));
  DepthStore& d = GetDepthStore();
  Filesystem& fs = *d.fs[touched][depth];
  const auto& inos = d.inos[touched][depth];
  Rng rng(depth * 10 + touched + 5);
  auto start = Clock::now();
  double cpu = ThreadCpuSeconds();
  for (auto _ : state) {
    benchmark::DoNotOptimize(Unwrap(fs.GetAttr(inos[rng.Next() % inos.size()]), "getattr"));
  }
  double n = static_cast<double>(state.iterations());
  g_per_item[DepthKey("getattr", depth, touched)].push_back(SecondsSince(start) / n);
  g_cpu_per_item[DepthKey("getattr", depth, touched)].push_back((ThreadCpuSeconds() - cpu) / n);
  state.SetItemsProcessed(state.iterations());
}

void DepthArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"depth", "touched"});
  b->Args({0, 0})->Args({1, 0})->Args({8, 0})->Args({32, 0})->Args({1, 1})->Args({8, 1});
  b->Iterations(10'000)->Repetitions(7)->ReportAggregatesOnly(true)->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_Lookup)->Apply(DepthArgs);
BENCHMARK(BM_GetAttr)->Apply(DepthArgs);

void PrintSummary() {
  std::printf("\n=== branch_bench summary (medians over all samples of this run) ===\n");
  bool all_ok = true;
  int budgets = 0;
  for (const char* op : {"snapshot", "fork"}) {
    auto& by_size = g_samples[op];
    if (by_size.count(1'000) == 0 || by_size.count(100'000) == 0) continue;
    std::printf("%-8s", op);
    for (auto& [size, samples] : by_size) {
      std::printf("  %6d files: median %.3f ms (p90 %.3f, n=%zu)", size, Median(samples) * 1e3,
                  Percentile(samples, 0.9) * 1e3, samples.size());
    }
    double m1 = Median(by_size[1'000]);
    double m100 = Median(by_size[100'000]);
    bool ok = m100 < 0.005 && m100 <= 2 * m1;
    all_ok &= ok;
    ++budgets;
    std::printf("\nBUDGET %s: 100k median %.3f ms (< 5 ms: %s), "
                "100k/1k = %.2fx (<= 2x: %s) -> %s\n",
                op, m100 * 1e3, m100 < 0.005 ? "yes" : "NO", m100 / m1,
                m100 <= 2 * m1 ? "yes" : "NO", ok ? "PASS" : "FAIL");
  }
  for (const char* op : {"lookup", "getattr"}) {
    auto get = [&](const std::map<std::string, std::vector<double>>& m, int depth, int touched) {
      auto it = m.find(DepthKey(op, depth, touched));
      return it == m.end() ? 0.0 : Median(it->second);
    };
    auto rate = [](double t) { return t > 0 ? 1 / t : 0.0; };
    double d0 = get(g_per_item, 0, 0), d1 = get(g_per_item, 1, 0), d8 = get(g_per_item, 8, 0);
    double t1 = get(g_per_item, 1, 1), t8 = get(g_per_item, 8, 1);
    if (d1 == 0 || d8 == 0) continue;
    std::printf("%-8s wall rate/s: depth0 %.0f, depth1 %.0f, depth8 %.0f, touched depth1 %.0f, "
                "touched depth8 %.0f\n",
                op, rate(d0), rate(d1), rate(d8), rate(t1), rate(t8));
    double c0 = get(g_cpu_per_item, 0, 0), c1 = get(g_cpu_per_item, 1, 0);
    double c8 = get(g_cpu_per_item, 8, 0), ct8 = get(g_cpu_per_item, 8, 1);
    double c32 = get(g_cpu_per_item, 32, 0), d32 = get(g_per_item, 32, 0);
    std::printf("%-8s CPU us/op:   depth0 %.2f, depth1 %.2f, depth8 %.2f, touched depth8 %.2f "
                "(CPU depth8/depth1 = %.2fx, touched %.2fx)\n",
                op, c0 * 1e6, c1 * 1e6, c8 * 1e6, ct8 * 1e6, c8 / c1, ct8 / c1);
    if (d32 > 0) {
      std::printf("%-8s depth32 (no budget): %.0f/s wall, %.2f us CPU, depth32/depth1 = %.2fx "
                  "wall, %.2fx CPU\n",
                  op, rate(d32), c32 * 1e6, d32 / d1, c32 / c1);
    }
    bool ok = d8 <= 1.5 * d1 && (t8 == 0 || t8 <= 1.5 * d1);
    all_ok &= ok;
    ++budgets;
    std::printf("BUDGET %s depth: wall time depth8/depth1 = %.2fx, touched depth8/depth1 = %.2fx "
                "(<= 1.5x) -> %s\n",
                op, d8 / d1, t8 > 0 ? t8 / d1 : 0, ok ? "PASS" : "FAIL");
  }
  for (auto& [files, tree] : g_trees) {
    std::printf("build: %d files in %.1f s (%.0f creates/s)\n", files, tree->build_seconds,
                files / tree->build_seconds);
  }
  if (budgets > 0) {
    std::printf("ALL BRANCH BUDGETS (%d checked): %s\n", budgets, all_ok ? "PASS" : "FAIL");
  }
}

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  if (!strata::bench::RunInterleaved(argc, argv)) return 1;
  strata::bench::PrintSummary();
  std::fflush(stdout);
  strata::bench::g_depth.reset();
  strata::bench::g_trees.clear();
  return 0;
}
