// Helpers shared by the Strata benchmarks: temporary store directories,
// deterministic test data, store-size measurement and medians.
//
// Stores live under $STRATA_BENCH_DIR (default /tmp), which must be a real
// disk, not tmpfs: the figures include SQLite's file I/O.
#ifndef STRATA_BENCHMARKS_BENCH_UTIL_H_
#define STRATA_BENCHMARKS_BENCH_UTIL_H_

#include <benchmark/benchmark.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::bench {

// Aborts the benchmark binary with a message: a failing call means the
// numbers would be meaningless.
inline void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "FATAL: %s: %s\n", what, s.ToString().c_str());
    std::abort();
  }
}
template <typename T>
T Unwrap(Result<T> r, const char* what) {
  Check(r.ok() ? Status::Ok() : r.status(), what);
  return std::move(r).value();
}

inline std::string BenchRoot() {
  const char* env = std::getenv("STRATA_BENCH_DIR");
  return env != nullptr && *env != '\0' ? env : "/tmp";
}

// A fresh directory under BenchRoot(), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = BenchRoot() + "/strata-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// splitmix64: fast, deterministic, good enough for test data.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  void Fill(std::span<uint8_t> out) {
    size_t i = 0;
    for (; i + 8 <= out.size(); i += 8) {
      uint64_t v = Next();
      std::memcpy(out.data() + i, &v, 8);
    }
    if (i < out.size()) {
      uint64_t v = Next();
      std::memcpy(out.data() + i, &v, out.size() - i);
    }
  }

 private:
  uint64_t s_;
};

inline std::vector<uint8_t> RandomBytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> out(n);
  Rng(seed).Fill(out);
  return out;
}

// English-like text: words drawn (Zipf-ish) from a fixed vocabulary, with
// punctuation and line breaks. zstd -3 shrinks it to roughly 30-35%.
inline void FillText(std::span<uint8_t> out, Rng& rng) {
  static const char* const kWords[] = {
      "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
      "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
      "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has",
      "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "file",
      "branch", "snapshot", "store", "session", "agent", "sandbox", "version", "chunk", "data",
      "system", "process", "memory", "directory", "network", "request", "response", "value",
      "function", "program", "compiler", "library", "kernel", "thread", "buffer", "table",
      "index", "query", "record", "journal", "commit", "transaction", "history", "between",
      "through", "because", "however", "therefore", "although", "another", "without", "under",
      "against", "during", "before", "after", "above", "below", "important", "different",
      "possible", "necessary", "available", "particular", "information", "development",
      "government", "international", "environment", "experience", "performance", "structure"};
  constexpr size_t kCount = sizeof(kWords) / sizeof(kWords[0]);
  size_t pos = 0;
  int in_line = 0;
  while (pos < out.size()) {
    uint64_t r = rng.Next();
    // Square the uniform index to skew towards the frequent words.
    uint64_t u = r & 0xffff;
    size_t w = static_cast<size_t>((u * u * kCount) >> 32);
    const char* word = kWords[std::min(w, kCount - 1)];
    size_t len = std::strlen(word);
    for (size_t i = 0; i < len && pos < out.size(); ++i) out[pos++] = static_cast<uint8_t>(word[i]);
    if (pos >= out.size()) break;
    uint64_t p = (r >> 16) % 32;
    char sep = p == 0 ? '.' : p == 1 ? ',' : ' ';
    out[pos++] = static_cast<uint8_t>(sep);
    in_line += static_cast<int>(len) + 1;
    if (in_line > 72 && pos < out.size()) {
      out[pos++] = '\n';
      in_line = 0;
    }
  }
}

inline std::vector<uint8_t> TextBytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> out(n);
  Rng rng(seed);
  FillText(out, rng);
  return out;
}

// Regular files under `root`, sorted by path (deterministic order).
inline std::vector<std::filesystem::path> RegularFiles(const std::string& root) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::skip_permission_denied, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Concatenated C headers from /usr/include, at most `max_bytes` (real-world
// compressible source text).
inline std::vector<uint8_t> HeaderCorpus(size_t max_bytes) {
  std::vector<uint8_t> out;
  out.reserve(max_bytes);
  for (const auto& p : RegularFiles("/usr/include")) {
    if (out.size() >= max_bytes) break;
    std::ifstream in(p, std::ios::binary);
    std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t take = std::min(buf.size(), max_bytes - out.size());
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(take));
  }
  return out;
}

inline uint64_t FileSizeOrZero(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Bytes a store occupies on disk: the database plus its WAL (which is gone
// after the last connection closes and SQLite checkpoints).
inline uint64_t StoreFileBytes(const std::string& path) {
  return FileSizeOrZero(path) + FileSizeOrZero(path + "-wal");
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

using Clock = std::chrono::steady_clock;
inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// CPU time of the calling thread: unlike wall time, it does not grow when
// other processes take the CPU (this machine is shared).
inline double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Bytes this process has handed to write(2)/pwrite(2) so far ("wchar" of
// /proc/self/io): SQLite's WAL appends and checkpoint copies. Divided by the
// bytes the caller wrote, it is the store's write amplification.
inline uint64_t ProcessWriteBytes() {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

constexpr double kMiB = 1024.0 * 1024.0;

// Runs the registered benchmarks as the command line says. Returns false on
// unrecognized arguments.
inline bool RunBenchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return false;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return true;
}

// RunBenchmarks with repetitions of different benchmarks interleaved (noise
// then spreads evenly), unless the command line already chooses.
inline bool RunInterleaved(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  std::string interleave = "--benchmark_enable_random_interleaving=true";
  bool given = false;
  for (int i = 1; i < argc; ++i) {
    given |= std::string(argv[i]).rfind("--benchmark_enable_random_interleaving", 0) == 0;
  }
  if (!given) args.insert(args.begin() + 1, interleave.data());
  return RunBenchmarks(static_cast<int>(args.size()), args.data());
}

}  // namespace strata::bench

#endif  // STRATA_BENCHMARKS_BENCH_UTIL_H_
