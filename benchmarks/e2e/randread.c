/* Random 4 KiB reads for the end-to-end benchmark (benchmarks/e2e/run.sh).
 *
 *   randread FILE COUNT [SEED]
 *
 * COUNT pread()s of 4 KiB at 4 KiB-aligned offsets drawn uniformly from the
 * whole file (same SEED, same offsets on every target), one at a time,
 * buffered (no O_DIRECT: the page cache is part of what is measured). Prints
 * the elapsed wall time in seconds; exits 1 on any error or short read.
 */
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

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: randread FILE COUNT [SEED]\n");
    return 2;
  }
  long count = atol(argv[2]);
  uint64_t x = argc > 3 ? strtoull(argv[3], NULL, 10) : 42;
  if (x == 0) x = 42;
  int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    fprintf(stderr, "randread: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  uint64_t blocks = (uint64_t)st.st_size / 4096;
  if (blocks == 0) return 1;
  char buf[4096];
  double t0 = Now();
  for (long i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    off_t off = (off_t)((x % blocks) * 4096);
    if (pread(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf)) {
      fprintf(stderr, "randread: pread at %lld: %s\n", (long long)off, strerror(errno));
      return 1;
    }
  }
  printf("%.6f\n", Now() - t0);
  close(fd);
  return 0;
}
