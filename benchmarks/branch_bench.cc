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
//   the root branch, seen through a chain of D forks. touched:0 = the chain:
//   D = 0, 1, 8, 64, 1,000, 10,000 (STRATA_BENCH_CHAIN_DEPTH lowers the
//   deepest), each fork writing one file of its own, so the 10,000 files are
//   found at the root, under every level (compacted into layers past
//   catalog::kMaxReadLevels, as any store does). touched:1 = D = 1, 8, where
//   at each level 1/8 of the files had their attributes changed, 1/64 their
//   data rewritten and 1/80 were unlinked and re-created, so rows are found
//   at every depth. Items/s.
// BM_ForkAtDepth / BM_SnapshotAtDepth /depth:D: Store::Fork of (and
//   Store::Snapshot, after a one-byte write, of) the chain's branch at depth
//   D, as the caller sees them.
//
// BM_SnapshotDirty/buffered_mib:M (informative, no budget): snapshot time
//   when M MiB of writes are still buffered, which the snapshot commits.
//
// The stores are built once per process and per size (building 100,000 files
// takes a while) and reused by every repetition. At exit a summary prints the
// medians, the ratios and the verdict of each budget:
//   snapshot and fork at 100k files: median < 5 ms and <= 2x the 1k median;
//   lookup and getattr at every depth of the chain up to 10,000, and at depth
//   8 of the touched chain: time within 1.5x of the chain's depth 1.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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

// --- lookups, forks and snapshots through deep chains

// The 10,000-file store with two fork chains from its root:
//  - the chain: kChainDepth forks, each writing one file of its own (levels/L<d>);
//    filesystems are kept at the depths of kChainDepths;
//  - the touched chain: kTouchedDepth forks, each changing 1/8 of the files
//    (TouchLevel), so rows are found at every depth.
// The chain's branches are compacted as they are forked (the store's own
// background compactor, as for any user); CompactLevels at the end only
// confirms that nothing is left to do.
int ChainDepth() {
  const char* env = std::getenv("STRATA_BENCH_CHAIN_DEPTH");
  return env != nullptr && *env != '\0' ? std::max(64, std::atoi(env)) : 10'000;
}
constexpr int kChainDepths[] = {0, 1, 8, 64, 1'000, 10'000};
constexpr int kTouchedDepth = 8;

struct DepthStore {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Store> store;
  std::vector<InodeId> dirs;
  // [touched][depth]: the branch at that depth, a filesystem on its head,
  // and the inode of every file name as seen there.
  std::map<int, BranchId> branch[2];
  std::map<int, std::unique_ptr<Filesystem>> fs[2];
  std::map<int, std::vector<InodeId>> inos[2];
  double chain_seconds = 0;
  uint64_t compacted_after = 0;  // what CompactLevels still found to do
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

bool KeptDepth(int depth, int max_depth) {
  for (int d : kChainDepths) {
    if (d == depth && d <= max_depth) return true;
  }
  return false;
}

DepthStore& GetDepthStore() {
  if (g_depth) return *g_depth;
  auto start = Clock::now();
  auto d = std::make_unique<DepthStore>();
  d->dir = std::make_unique<TempDir>();
  d->store = Unwrap(Store::Open({.path = d->dir->File("store.db")}), "open store");
  SessionInfo root = Unwrap(d->store->CreateSession("root"), "session");
  std::vector<InodeId> files;
  InodeId levels_dir = 0;
  {
    auto fs = Unwrap(d->store->OpenFilesystem({root.branch, kHead}), "open fs");
    Populate(*fs, kDepthFiles, &d->dirs, &files);
    levels_dir = Unwrap(fs->MkDir(kRootIno, "levels", 0755, {}), "mkdir").ino;
  }
  const int max_depth = ChainDepth();
  std::vector<uint8_t> body = TextBytes(kFileBytes, 7);
  auto chain_start = Clock::now();
  for (int touched = 0; touched < 2; ++touched) {
    BranchId branch = root.branch;
    const int last = touched ? kTouchedDepth : max_depth;
    for (int depth = 0; depth <= last; ++depth) {
      if (depth > 0) branch = Unwrap(d->store->Fork({branch, kHead}), "fork");
      const bool keep = touched ? (depth == 1 || depth == kTouchedDepth) : KeptDepth(depth, max_depth);
      if (depth == 0 && touched) continue;
      if (depth > 0 || keep) {
        auto fs = Unwrap(d->store->OpenFilesystem({branch, kHead}), "open fs");
        if (touched) {
          TouchLevel(*fs, d->dirs, depth);
        } else if (depth > 0) {
          Attr a = Unwrap(fs->Create(levels_dir, "L" + std::to_string(depth), 0644, {}), "create");
          Unwrap(fs->Write(a.ino, 0, body), "write");
          Check(fs->Release(a.ino), "release");
        }
        if (keep) {
          d->branch[touched][depth] = branch;
          d->fs[touched][depth] = std::move(fs);
        }
      }
    }
    if (!touched) d->chain_seconds = SecondsSince(chain_start);
  }
  d->compacted_after = Unwrap(d->store->CompactLevels(), "compact");
  for (int touched = 0; touched < 2; ++touched) {
    for (auto& [depth, fs] : d->fs[touched]) {
      auto& inos = d->inos[touched][depth];
      for (int i = 0; i < kDepthFiles; ++i) {
        inos.push_back(Unwrap(fs->Lookup(d->dirs[i / kFilesPerDir], Name(i)), "lookup").ino);
      }
      auto info = Unwrap(d->store->GetBranch(d->branch[touched][depth]), "branch");
      if (info.depth != depth) std::abort();
      std::fprintf(stderr, "[branch_bench] %s depth %d: reads visit %d levels\n",
                   touched ? "touched chain" : "chain", depth, info.read_levels);
    }
  }
  std::fprintf(stderr,
               "[branch_bench] built depth store (%d files, a chain of %d forks in %.1f s, "
               "%.0f forks/s with their writes and compaction; CompactLevels then found %llu) "
               "in %.1f s\n",
               kDepthFiles, max_depth, d->chain_seconds, max_depth / d->chain_seconds,
               static_cast<unsigned long long>(d->compacted_after), SecondsSince(start));
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

// Skips a depth the chain does not reach (STRATA_BENCH_CHAIN_DEPTH).
Filesystem* DepthFs(benchmark::State& state, DepthStore& d, int depth, int touched) {
  auto it = d.fs[touched].find(depth);
  if (it != d.fs[touched].end()) return it->second.get();
  state.SkipWithError("the chain is shallower (STRATA_BENCH_CHAIN_DEPTH)");
  return nullptr;
}

void BM_Lookup(benchmark::State& state) {
  int depth = static_cast<int>(state.range(0));
  int touched = static_cast<int>(state.range(1));
  DepthStore& d = GetDepthStore();
  Filesystem* fs = DepthFs(state, d, depth, touched);
  if (fs == nullptr) return;
  Rng rng(depth * 10 + touched);
  auto start = Clock::now();
  double cpu = ThreadCpuSeconds();
  for (auto _ : state) {
    int i = static_cast<int>(rng.Next() % kDepthFiles);
    benchmark::DoNotOptimize(Unwrap(fs->Lookup(d.dirs[i / kFilesPerDir], Name(i)), "lookup"));
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
  Filesystem* fs = DepthFs(state, d, depth, touched);
  if (fs == nullptr) return;
  const auto& inos = d.inos[touched][depth];
  Rng rng(depth * 10 + touched + 5);
  auto start = Clock::now();
  double cpu = ThreadCpuSeconds();
  for (auto _ : state) {
    benchmark::DoNotOptimize(Unwrap(fs->GetAttr(inos[rng.Next() % inos.size()]), "getattr"));
  }
  double n = static_cast<double>(state.iterations());
  g_per_item[DepthKey("getattr", depth, touched)].push_back(SecondsSince(start) / n);
  g_cpu_per_item[DepthKey("getattr", depth, touched)].push_back((ThreadCpuSeconds() - cpu) / n);
  state.SetItemsProcessed(state.iterations());
}

void DepthArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"depth", "touched"});
  for (int depth : kChainDepths) b->Args({depth, 0});
  b->Args({1, 1})->Args({kTouchedDepth, 1});
  b->Iterations(10'000)->Repetitions(15)->ReportAggregatesOnly(true)->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_Lookup)->Apply(DepthArgs);
BENCHMARK(BM_GetAttr)->Apply(DepthArgs);

// Fork (a new branch of the head) and snapshot of the chain's branch at a
// depth, as its caller sees them: each a durable commit. A fork deep enough
// queues its compaction on the store's thread, which is not timed.
void BM_ForkAtDepth(benchmark::State& state) {
  int depth = static_cast<int>(state.range(0));
  DepthStore& d = GetDepthStore();
  if (DepthFs(state, d, depth, 0) == nullptr) return;
  std::vector<double> samples;
  for (auto _ : state) {
    auto start = Clock::now();
    Unwrap(d.store->Fork({d.branch[0][depth], kHead}), "fork");
    double s = SecondsSince(start);
    state.SetIterationTime(s);
    samples.push_back(s);
  }
  RecordSamples(state, "fork-at-depth", depth, samples);
}

void BM_SnapshotAtDepth(benchmark::State& state) {
  int depth = static_cast<int>(state.range(0));
  DepthStore& d = GetDepthStore();
  Filesystem* fs = DepthFs(state, d, depth, 0);
  if (fs == nullptr) return;
  static uint64_t n = 0;
  const auto& inos = d.inos[0][depth];
  std::vector<double> samples;
  for (auto _ : state) {
    InodeId ino = inos[n++ % inos.size()];
    uint8_t byte = static_cast<uint8_t>(n);
    Unwrap(fs->Write(ino, 0, {&byte, 1}), "write");
    Check(fs->Flush(ino), "flush");
    auto start = Clock::now();
    Unwrap(d.store->Snapshot(d.branch[0][depth]), "snapshot");
    double s = SecondsSince(start);
    state.SetIterationTime(s);
    samples.push_back(s);
  }
  RecordSamples(state, "snapshot-at-depth", depth, samples);
}

void AtDepthArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("depth");
  for (int depth : kChainDepths) b->Arg(depth);
  b->Iterations(20)->Repetitions(5)->UseManualTime()->ReportAggregatesOnly(true);
  b->Unit(benchmark::kMicrosecond);
}
BENCHMARK(BM_ForkAtDepth)->Apply(AtDepthArgs);
BENCHMARK(BM_SnapshotAtDepth)->Apply(AtDepthArgs);

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
    const double d1 = get(g_per_item, 1, 0), c1 = get(g_cpu_per_item, 1, 0);
    if (d1 == 0) continue;
    std::printf("%-8s chain (wall rate/s, CPU us/op, wall ratio to depth 1):", op);
    bool ok = true;
    for (int depth : kChainDepths) {
      const double w = get(g_per_item, depth, 0), c = get(g_cpu_per_item, depth, 0);
      if (w == 0) continue;
      std::printf("  depth %d: %.0f/s, %.2f us, %.2fx", depth, rate(w), c * 1e6, w / d1);
      if (depth > 1) ok &= w <= 1.5 * d1;
    }
    const double t1 = get(g_per_item, 1, 1), t8 = get(g_per_item, kTouchedDepth, 1);
    std::printf("\n%-8s touched chain: depth 1 %.0f/s, depth %d %.0f/s (%.2fx of the chain's "
                "depth 1)\n", op, rate(t1), kTouchedDepth, rate(t8), t8 / d1);
    ok &= t8 == 0 || t8 <= 1.5 * d1;
    all_ok &= ok;
    ++budgets;
    const double deepest = get(g_per_item, ChainDepth() >= 10'000 ? 10'000 : 1'000, 0);
    std::printf("BUDGET %s depth: wall time at every depth (up to %d) and touched depth %d "
                "within 1.5x of depth 1 (deepest %.2fx, CPU %.2fx) -> %s\n",
                op, ChainDepth(), kTouchedDepth, deepest / d1,
                get(g_cpu_per_item, ChainDepth() >= 10'000 ? 10'000 : 1'000, 0) / c1,
                ok ? "PASS" : "FAIL");
  }
  for (const char* op : {"fork-at-depth", "snapshot-at-depth"}) {
    auto& by_depth = g_samples[op];
    if (by_depth.empty()) continue;
    std::printf("%-18s", op);
    for (auto& [depth, samples] : by_depth) {
      std::printf("  depth %d: median %.3f ms (p90 %.3f, n=%zu)", depth, Median(samples) * 1e3,
                  Percentile(samples, 0.9) * 1e3, samples.size());
    }
    std::printf("\n");
  }
  if (g_depth) {
    std::printf("chain of %d forks (each writing one file) built in %.1f s: %.0f forks/s\n",
                ChainDepth(), g_depth->chain_seconds, ChainDepth() / g_depth->chain_seconds);
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
