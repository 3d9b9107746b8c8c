// File data and small-file rates through the public Filesystem API, on a real
// store file under $STRATA_BENCH_DIR (default /tmp).
//
// BM_SeqWrite: one 1 GiB file written in 1 MiB writes, then FlushAll and
//   Fsync (all inside the timing); MiB/s. Arg /0 = English-like text,
//   /1 = random bytes. Every MiB is distinct (no dedup help).
// BM_SeqRead: the file just written, read back in 1 MiB reads and verified
//   (verification is outside the timing); MiB/s. The store file is in the
//   OS page cache by then; the 32 MiB chunk cache is far smaller than 1 GiB.
// BM_SmallFiles: 20,000 files of 4 KiB (text, distinct) in 20 directories of
//   1,000: create+write+release, stat by name (Lookup), read (Open, Read,
//   Release), read without open/release, unlink. Counters are items/s.
//
// Timing is manual (wall clock of the Strata calls only); data generation
// and verification are excluded.
#include <benchmark/benchmark.h>

#include <memory>

#include "bench_util.h"
#include "strata/filesystem.h"
#include "strata/store.h"

namespace strata::bench {
namespace {

constexpr uint64_t kFileBytes = 1ull << 30;
constexpr size_t kWriteBytes = 1 << 20;
constexpr int kSmallFiles = 20'000;
constexpr int kFilesPerDir = 1'000;
constexpr size_t kSmallBytes = 4096;

// The content of MiB number `i` of the big file.
void FillMiB(std::span<uint8_t> out, bool random, uint64_t i) {
  Rng rng(0x5eed0000 + i);
  if (random) {
    rng.Fill(out);
  } else {
    FillText(out, rng);
  }
}

// The store and file left by the last BM_SeqWrite run, for BM_SeqRead.
struct Written {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<Filesystem> fs;
  InodeId ino = 0;
  bool random = false;
  uint64_t io_bytes = 0;  // bytes handed to write(2) while writing the file
  uint64_t wal_bytes = 0;  // size of the WAL file right after the write
};
std::unique_ptr<Written> g_written;

// Writes the 1 GiB file into a new store; returns the seconds spent in Strata.
double WriteBigFile(bool random, std::unique_ptr<Written>* out) {
  auto w = std::make_unique<Written>();
  w->dir = std::make_unique<TempDir>();
  w->random = random;
  w->store = Unwrap(Store::Open({.path = w->dir->File("store.db")}), "open store");
  SessionInfo session = Unwrap(w->store->CreateSession("bench"), "session");
  w->fs = Unwrap(w->store->OpenFilesystem({session.branch, kHead}), "open fs");
  std::vector<uint8_t> buf(kWriteBytes);
  double seconds = 0;
  uint64_t io_before = ProcessWriteBytes();
  auto start = Clock::now();
  Attr file = Unwrap(w->fs->Create(kRootIno, "big", 0644, {}), "create");
  seconds += SecondsSince(start);
  w->ino = file.ino;
  for (uint64_t i = 0; i < kFileBytes / kWriteBytes; ++i) {
    FillMiB(buf, random, i);
    start = Clock::now();
    size_t n = Unwrap(w->fs->Write(file.ino, i * kWriteBytes, buf), "write");
    seconds += SecondsSince(start);
    if (n != buf.size()) std::abort();
  }
  start = Clock::now();
  Check(w->fs->FlushAll(), "flush all");
  Check(w->fs->Fsync(file.ino), "fsync");
  Check(w->fs->Release(file.ino), "release");
  seconds += SecondsSince(start);
  w->io_bytes = ProcessWriteBytes() - io_before;
  w->wal_bytes = FileSizeOrZero(w->dir->File("store.db-wal"));
  *out = std::move(w);
  return seconds;
}

void BM_SeqWrite(benchmark::State& state) {
  bool random = state.range(0) != 0;
  for (auto _ : state) {
    g_written.reset();  // delete the previous store before timing a new one
    state.SetIterationTime(WriteBigFile(random, &g_written));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFileBytes));
  // Bytes written to the store's files (WAL, then checkpoint) per byte of data.
  state.counters["io_per_byte"] =
      static_cast<double>(g_written->io_bytes) / static_cast<double>(kFileBytes);
  state.counters["wal_MiB"] = static_cast<double>(g_written->wal_bytes) / kMiB;
}

void BM_SeqRead(benchmark::State& state) {
  bool random = state.range(0) != 0;
  if (!g_written || g_written->random != random) {
    g_written.reset();
    WriteBigFile(random, &g_written);
  }
  Filesystem& fs = *g_written->fs;
  InodeId ino = g_written->ino;
  std::vector<uint8_t> buf(kWriteBytes), expect(kWriteBytes);
  for (auto _ : state) {
    double seconds = 0;
    auto start = Clock::now();
    Check(fs.Open(ino), "open");
    seconds += SecondsSince(start);
    for (uint64_t i = 0; i < kFileBytes / kWriteBytes; ++i) {
      start = Clock::now();
      size_t n = Unwrap(fs.Read(ino, i * kWriteBytes, buf), "read");
      seconds += SecondsSince(start);
      FillMiB(expect, random, i);
      if (n != buf.size() || buf != expect) {
        state.SkipWithError("read back different bytes");
        return;
      }
    }
    start = Clock::now();
    Check(fs.Release(ino), "release");
    seconds += SecondsSince(start);
    state.SetIterationTime(seconds);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kFileBytes));
}

void KindArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("random")->Arg(0)->Arg(1);
}

BENCHMARK(BM_SeqWrite)->Apply(KindArgs)->Iterations(1)->Repetitions(3)->UseManualTime()
    ->ReportAggregatesOnly(true)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SeqRead)->Apply(KindArgs)->Iterations(1)->Repetitions(3)->UseManualTime()
    ->ReportAggregatesOnly(true)->Unit(benchmark::kMillisecond);

std::string Name(int i) { return "f" + std::to_string(i); }

void BM_SmallFiles(benchmark::State& state) {
  // Distinct 4 KiB text per file.
  std::vector<uint8_t> content = TextBytes(kSmallFiles * kSmallBytes, 11);
  for (int i = 0; i < kSmallFiles; ++i) {
    std::memcpy(content.data() + i * kSmallBytes, &i, sizeof(i));
  }
  auto body = [&](int i) {
    return std::span<const uint8_t>(content).subspan(i * kSmallBytes, kSmallBytes);
  };
  double create_s = 0, stat_s = 0, read_s = 0, read_noopen_s = 0, unlink_s = 0;
  uint64_t create_io = 0, unlink_io = 0;
  for (auto _ : state) {
    g_written.reset();
    TempDir dir;
    auto store = Unwrap(Store::Open({.path = dir.File("store.db")}), "open store");
    SessionInfo session = Unwrap(store->CreateSession("bench"), "session");
    auto fs = Unwrap(store->OpenFilesystem({session.branch, kHead}), "open fs");
    std::vector<InodeId> dirs;
    for (int d = 0; d < kSmallFiles / kFilesPerDir; ++d) {
      dirs.push_back(Unwrap(fs->MkDir(kRootIno, "d" + std::to_string(d), 0755, {}), "mkdir").ino);
    }
    auto dir_of = [&](int i) { return dirs[i / kFilesPerDir]; };
    std::vector<InodeId> inos(kSmallFiles);

    uint64_t io = ProcessWriteBytes();
    auto start = Clock::now();
    for (int i = 0; i < kSmallFiles; ++i) {
      Attr a = Unwrap(fs->Create(dir_of(i), Name(i), 0644, {}), "create");
      Unwrap(fs->Write(a.ino, 0, body(i)), "write");
      Check(fs->Release(a.ino), "release");
      inos[i] = a.ino;
    }
    create_s = SecondsSince(start);
    create_io = ProcessWriteBytes() - io;

    start = Clock::now();
    for (int i = 0; i < kSmallFiles; ++i) {
      Attr a = Unwrap(fs->Lookup(dir_of(i), Name(i)), "lookup");
      if (a.size != kSmallBytes) std::abort();
    }
    stat_s = SecondsSince(start);

    std::vector<uint8_t> buf(kSmallBytes);
    start = Clock::now();
    for (int i = 0; i < kSmallFiles; ++i) {
      Check(fs->Open(inos[i]), "open");
      size_t n = Unwrap(fs->Read(inos[i], 0, buf), "read");
      Check(fs->Release(inos[i]), "release");
      if (n != kSmallBytes) std::abort();
    }
    read_s = SecondsSince(start);
    if (!std::equal(buf.begin(), buf.end(), body(kSmallFiles - 1).begin())) std::abort();

    start = Clock::now();
    for (int i = 0; i < kSmallFiles; ++i) {
      size_t n = Unwrap(fs->Read(inos[i], 0, buf), "read");
      if (n != kSmallBytes) std::abort();
    }
    read_noopen_s = SecondsSince(start);

    io = ProcessWriteBytes();
    start = Clock::now();
    for (int i = 0; i < kSmallFiles; ++i) Check(fs->Unlink(dir_of(i), Name(i)), "unlink");
    unlink_s = SecondsSince(start);
    unlink_io = ProcessWriteBytes() - io;

    state.SetIterationTime(create_s + stat_s + read_s + unlink_s);
  }
  state.counters["create_per_s"] = kSmallFiles / create_s;
  state.counters["stat_per_s"] = kSmallFiles / stat_s;
  state.counters["read_per_s"] = kSmallFiles / read_s;
  state.counters["read_noopen_per_s"] = kSmallFiles / read_noopen_s;
  state.counters["unlink_per_s"] = kSmallFiles / unlink_s;
  // KiB handed to write(2) (WAL frames, checkpoints) per file created / unlinked.
  state.counters["create_io_KiB"] = create_io / 1024.0 / kSmallFiles;
  state.counters["unlink_io_KiB"] = unlink_io / 1024.0 / kSmallFiles;
}

BENCHMARK(BM_SmallFiles)->Iterations(1)->Repetitions(5)->UseManualTime()
    ->ReportAggregatesOnly(true)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  if (!strata::bench::RunBenchmarks(argc, argv)) return 1;
  strata::bench::g_written.reset();
  return 0;
}
