// Agent state and history through the library, one operation per call as an
// agent makes them (the workload AgentFS's SDK figures in ANCHORS.md measure):
//
// BM_KvSet: Store::KvUpdate of one key (1,000 keys, small JSON objects).
// BM_KvGet: Store::KvGet of one of them.
// BM_ToolsRecord: Store::RecordCall (name, JSON arguments and result); each
//   call freezes the session's head, as every recorded call does.
//   /synced:1: each call in its own durable transaction (RecordCall, Sync).
// BM_ToolsStartEnd: Store::StartCall then EndCall (two freezes).
// BM_WriteFile4K: create, write 4 KiB and release a new file.
// BM_LogLimit50/calls:N: Store::ListCalls(limit 50) on a session with N
//   recorded calls (N = 1,000 and 1,000,000).
// BM_Diff10/files:100000: Store::Diff between two snapshots of a session of
//   100,000 files, 10 files apart.
//
// `state_bench --make-fixture DIR` instead writes DIR/store.db with session
// "agent" (1,000,000 recorded calls) and session "tree" (100,000 files,
// snapshots "before" and "after" 10 files apart), for
// benchmarks/history_cli.sh, which times the `strata` commands on it.
//
// Rates are per wall-clock second (UseRealTime): the work includes I/O.
//
// Every operation commits the way the library commits it (grouped: at most
// 10 ms later, or at the next Sync); the stores are on a real disk
// ($STRATA_BENCH_DIR).
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "strata/filesystem.h"
#include "strata/store.h"

namespace strata::bench {
namespace {

struct Session {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Store> store;
  BranchId branch = 0;
};

Session NewSession() {
  Session s;
  s.dir = std::make_unique<TempDir>();
  StoreOptions options;
  options.path = s.dir->path() + "/store.db";
  s.store = Unwrap(Store::Open(options), "open store");
  s.branch = Unwrap(s.store->CreateSession("agent"), "create session").branch;
  return s;
}

CallStart Call(int64_t i) {
  CallStart c;
  c.name = i % 3 == 0 ? "shell" : "read_file";
  c.args = R"({"path": "/src/file)" + std::to_string(i % 100) + R"(.c", "lines": [1, 80]})";
  return c;
}

CallOutcome Result() {
  CallOutcome o;
  o.result = R"({"ok": true, "bytes": 2048})";
  return o;
}

void BM_KvSet(benchmark::State& state) {
  Session s = NewSession();
  int64_t i = 0;
  for (auto _ : state) {
    ++i;
    Check(s.store->KvUpdate(s.branch, {KvChange{"key" + std::to_string(i % 1000),
                                                R"({"step": )" + std::to_string(i) + "}"}}),
          "kv set");
  }
  Check(s.store->Sync(), "sync");
  state.SetItemsProcessed(state.iterations());
}

void BM_KvGet(benchmark::State& state) {
  Session s = NewSession();
  for (int k = 0; k < 1000; ++k) {
    Check(s.store->KvUpdate(s.branch, {KvChange{"key" + std::to_string(k), R"({"v": 1})"}}), "set");
  }
  Check(s.store->Sync(), "sync");
  int64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        Unwrap(s.store->KvGet(View{s.branch, kHead}, "key" + std::to_string(++i % 1000)), "get"));
  }
  state.SetItemsProcessed(state.iterations());
}

// synced:0 commits as the library does (grouped); synced:1 makes each call
// its own durable transaction (RecordCall, then Sync: one fsync per call).
void BM_ToolsRecord(benchmark::State& state) {
  Session s = NewSession();
  const bool synced = state.range(0) != 0;
  int64_t i = 0;
  for (auto _ : state) {
    Unwrap(s.store->RecordCall(s.branch, Call(++i), Result()), "record");
    if (synced) Check(s.store->Sync(), "sync");
  }
  Check(s.store->Sync(), "sync");
  state.SetItemsProcessed(state.iterations());
}

void BM_ToolsStartEnd(benchmark::State& state) {
  Session s = NewSession();
  int64_t i = 0;
  for (auto _ : state) {
    int64_t id = Unwrap(s.store->StartCall(s.branch, Call(++i)), "start");
    Unwrap(s.store->EndCall(id, Result()), "end");
  }
  Check(s.store->Sync(), "sync");
  state.SetItemsProcessed(state.iterations());
}

void BM_WriteFile4K(benchmark::State& state) {
  Session s = NewSession();
  auto fs = Unwrap(s.store->OpenFilesystem(View{s.branch, kHead}), "open fs");
  std::vector<uint8_t> data = TextBytes(4096, 7);
  int64_t i = 0;
  for (auto _ : state) {
    Attr a = Unwrap(fs->Create(kRootIno, "f" + std::to_string(++i), 0644, Cred{}), "create");
    Unwrap(fs->Write(a.ino, 0, data), "write");
    Check(fs->Release(a.ino), "release");
  }
  Check(fs->FlushAll(), "flush");
  Check(s.store->Sync(), "sync");
  state.SetItemsProcessed(state.iterations());
}

// Sessions with many calls are built once per size and kept.
Session& SessionWithCalls(int64_t calls) {
  static std::map<int64_t, Session> built;
  auto it = built.find(calls);
  if (it != built.end()) return it->second;
  Session s = NewSession();
  for (int64_t i = 1; i <= calls; ++i) Unwrap(s.store->RecordCall(s.branch, Call(i), Result()), "record");
  Check(s.store->Sync(), "sync");
  return built.emplace(calls, std::move(s)).first->second;
}

void BM_LogLimit50(benchmark::State& state) {
  Session& s = SessionWithCalls(state.range(0));
  CallFilter filter;
  filter.limit = 50;
  for (auto _ : state) {
    auto calls = Unwrap(s.store->ListCalls(View{s.branch, kHead}, filter), "list");
    if (calls.size() != 50) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
}

// Writes `files` files of 100 bytes (directories of 1,000) into `branch`,
// snapshots "before", rewrites 10 of them and snapshots "after".
std::pair<Version, Version> BuildTree(Store& store, BranchId branch, int64_t files) {
  auto fs = Unwrap(store.OpenFilesystem(View{branch, kHead}), "open fs");
  std::vector<uint8_t> data = TextBytes(100, 3);
  std::vector<InodeId> inodes;
  for (int64_t d = 0; d < files / 1000; ++d) {
    Attr dir = Unwrap(fs->MkDir(kRootIno, "d" + std::to_string(d), 0755, Cred{}), "mkdir");
    for (int f = 0; f < 1000; ++f) {
      Attr a = Unwrap(fs->Create(dir.ino, "f" + std::to_string(f), 0644, Cred{}), "create");
      Unwrap(fs->Write(a.ino, 0, data), "write");
      Check(fs->Release(a.ino), "release");
      inodes.push_back(a.ino);
    }
  }
  Check(fs->FlushAll(), "flush");
  Version before = Unwrap(store.Snapshot(branch, "before"), "snapshot");
  for (int k = 0; k < 10; ++k) {
    InodeId ino = inodes[static_cast<size_t>(k) * inodes.size() / 10];
    Unwrap(fs->Write(ino, 0, TextBytes(200, 100 + k)), "rewrite");
  }
  Check(fs->FlushAll(), "flush");
  Version after = Unwrap(store.Snapshot(branch, "after"), "snapshot");
  return {before, after};
}

void BM_Diff10(benchmark::State& state) {
  static Session s;
  static std::pair<Version, Version> versions;
  if (s.store == nullptr) {
    s = NewSession();
    versions = BuildTree(*s.store, s.branch, state.range(0));
  }
  for (auto _ : state) {
    auto changes = Unwrap(s.store->Diff(View{s.branch, versions.first},
                                        View{s.branch, versions.second}), "diff");
    if (changes.size() != 10) std::abort();
  }
  state.SetItemsProcessed(state.iterations());
}

int MakeFixture(const std::string& dir) {
  StoreOptions options;
  options.path = dir + "/store.db";
  auto store = Unwrap(Store::Open(options), "open store");
  BranchId agent = Unwrap(store->CreateSession("agent"), "session").branch;
  for (int64_t i = 1; i <= 1'000'000; ++i) Unwrap(store->RecordCall(agent, Call(i), Result()), "record");
  BranchId tree = Unwrap(store->CreateSession("tree"), "session").branch;
  BuildTree(*store, tree, 100'000);
  Check(store->Sync(), "sync");
  return 0;
}

BENCHMARK(BM_KvSet)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_KvGet)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ToolsRecord)->ArgName("synced")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ToolsStartEnd)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_WriteFile4K)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_LogLimit50)->ArgName("calls")->Arg(1'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Diff10)->ArgName("files")->Arg(100'000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--make-fixture") return strata::bench::MakeFixture(argv[2]);
  return strata::bench::RunBenchmarks(argc, argv) ? 0 : 1;
}
