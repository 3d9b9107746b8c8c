// Load generator for benchmarks/memory_bench.sh and benchmarks/soak.sh:
// writes incompressible data (splitmix64) fast enough that the file system,
// not the generator, is the bottleneck.
//
//   fill bigfile PATH BYTES          one file in 1 MiB writes, then fsync
//   fill files DIR COUNT PER_DIR     COUNT files of 64..4096 bytes in
//                                    DIR/dNNNNN/ (PER_DIR files each)
//
// Progress lines go to stdout ("progress BYTES|FILES SECONDS"), the summary
// last ("done ... SECONDS RATE").
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint64_t Next(void) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void Fill(uint8_t* buf, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = Next();
    memcpy(buf + i, &v, 8);
  }
  for (; i < n; ++i) buf[i] = (uint8_t)Next();
}

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int Die(const char* what, const char* path) {
  fprintf(stderr, "fill: %s %s: %s\n", what, path, strerror(errno));
  return 1;
}

static int BigFile(const char* path, uint64_t bytes) {
  enum { kWrite = 1 << 20 };
  static uint8_t buf[kWrite];
  int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) return Die("open", path);
  double start = Now();
  uint64_t done = 0, next_report = 1ull << 30;
  while (done < bytes) {
    size_t n = bytes - done < kWrite ? (size_t)(bytes - done) : kWrite;
    Fill(buf, n);
    for (size_t off = 0; off < n;) {
      ssize_t w = write(fd, buf + off, n - off);
      if (w < 0) return Die("write", path);
      off += (size_t)w;
    }
    done += n;
    if (done >= next_report) {
      printf("progress %llu %.1f\n", (unsigned long long)done, Now() - start);
      fflush(stdout);
      next_report += 1ull << 30;
    }
  }
  if (fsync(fd) != 0) return Die("fsync", path);
  if (close(fd) != 0) return Die("close", path);
  double secs = Now() - start;
  printf("done %llu bytes %.1f s %.1f MiB/s\n", (unsigned long long)bytes, secs,
         bytes / secs / (1 << 20));
  return 0;
}

static int Files(const char* dir, long count, long per_dir) {
  uint8_t buf[4096];
  char path[4096];
  double start = Now();
  for (long i = 0; i < count; ++i) {
    if (i % per_dir == 0) {
      snprintf(path, sizeof(path), "%s/d%05ld", dir, i / per_dir);
      if (mkdir(path, 0755) != 0 && errno != EEXIST) return Die("mkdir", path);
    }
    snprintf(path, sizeof(path), "%s/d%05ld/f%06ld", dir, i / per_dir, i);
    size_t n = 64 + Next() % (4096 - 64 + 1);
    Fill(buf, n);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) return Die("open", path);
    if (write(fd, buf, n) != (ssize_t)n) return Die("write", path);
    if (close(fd) != 0) return Die("close", path);
    if ((i + 1) % 50000 == 0) {
      printf("progress %ld %.1f\n", i + 1, Now() - start);
      fflush(stdout);
    }
  }
  double secs = Now() - start;
  printf("done %ld files %.1f s %.0f files/s\n", count, secs, count / secs);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "bigfile") == 0) {
    return BigFile(argv[2], strtoull(argv[3], NULL, 10));
  }
  if (argc == 5 && strcmp(argv[1], "files") == 0) {
    return Files(argv[2], atol(argv[3]), atol(argv[4]));
  }
  fprintf(stderr, "usage: fill bigfile PATH BYTES | fill files DIR COUNT PER_DIR\n");
  return 2;
}
