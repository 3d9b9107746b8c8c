/* Small-file phases of the end-to-end benchmark (benchmarks/e2e/run.sh).
 *
 *   smallfiles create|stat|read|delete DIR [FILES [DIRS]]
 *
 * FILES files of 4 KiB (default 15000) spread over DIRS directories (default
 * 100) under DIR: DIR/dNN/fNNNNN. Every file holds distinct pseudo-random
 * (incompressible) bytes derived from its index, so nothing deduplicates or
 * compresses. Phases, visiting files in creation order:
 *   create  mkdir the directories, then open(O_CREAT|O_EXCL) + write 4 KiB + close
 *   stat    stat() every file by path
 *   read    open + read 4 KiB + close, contents checked
 *   delete  unlink every file, then rmdir the directories
 * Prints the elapsed wall time of the phase in seconds on stdout; exits 1 on
 * any error (with the failing path on stderr). No fsync anywhere.
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

enum { kSize = 4096 };

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void Fill(unsigned char* buf, uint64_t index) {
  uint64_t x = 0x9E3779B97F4A7C15ull * (index + 1);
  for (int i = 0; i < kSize; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(buf + i, &x, 8);
  }
}

static void Die(const char* what, const char* path) {
  fprintf(stderr, "smallfiles: %s %s: %s\n", what, path, strerror(errno));
  exit(1);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: smallfiles create|stat|read|delete DIR [FILES [DIRS]]\n");
    return 2;
  }
  const char* phase = argv[1];
  const char* root = argv[2];
  long files = argc > 3 ? atol(argv[3]) : 15000;
  long dirs = argc > 4 ? atol(argv[4]) : 100;
  if (files <= 0 || dirs <= 0) return 2;
  char path[4096];
  unsigned char buf[kSize], got[kSize];
  int create = !strcmp(phase, "create"), st = !strcmp(phase, "stat");
  int rd = !strcmp(phase, "read"), del = !strcmp(phase, "delete");
  if (!create && !st && !rd && !del) return 2;

  double t0 = Now();
  if (create) {
    for (long d = 0; d < dirs; d++) {
      snprintf(path, sizeof(path), "%s/d%02ld", root, d);
      if (mkdir(path, 0755) != 0) Die("mkdir", path);
    }
  }
  for (long i = 0; i < files; i++) {
    snprintf(path, sizeof(path), "%s/d%02ld/f%05ld", root, i % dirs, i);
    if (create) {
      Fill(buf, (uint64_t)i);
      int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0) Die("create", path);
      if (write(fd, buf, kSize) != kSize) Die("write", path);
      if (close(fd) != 0) Die("close", path);
    } else if (st) {
      struct stat s;
      if (stat(path, &s) != 0) Die("stat", path);
      if (s.st_size != kSize) {
        errno = EIO;
        Die("size of", path);
      }
    } else if (rd) {
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) Die("open", path);
      if (read(fd, got, kSize) != kSize) Die("read", path);
      if (close(fd) != 0) Die("close", path);
      Fill(buf, (uint64_t)i);
      if (memcmp(buf, got, kSize) != 0) {
        errno = EIO;
        Die("contents of", path);
      }
    } else {
      if (unlink(path) != 0) Die("unlink", path);
    }
  }
  if (del) {
    for (long d = 0; d < dirs; d++) {
      snprintf(path, sizeof(path), "%s/d%02ld", root, d);
      if (rmdir(path) != 0) Die("rmdir", path);
    }
  }
  printf("%.6f\n", Now() - t0);
  return 0;
}
