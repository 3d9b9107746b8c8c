/* sandbox_probe CASE [ARG]: attempts one thing a sandbox must not allow and
 * reports how it failed. Each denied system call is made with harmless bad
 * arguments (bubblewrap's technique), so that an unfiltered call fails with a
 * different errno than the filter's and could do no harm if it went through.
 * Prints "denied <errno name>" and exits 0 when the attempt failed as the
 * sandbox should make it fail, prints what happened and exits 1 otherwise. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_alg.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int expect(long rc, int want1, int want2) {
  int err = errno;
  if (rc >= 0) {
    printf("allowed (returned %ld)\n", rc);
    return 1;
  }
  printf("denied %s\n", strerrorname_np(err));
  return err == want1 || err == want2 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* c = argv[1];
  const char* arg = argc > 2 ? argv[2] : "";
  if (!strcmp(c, "mount")) return expect(mount("none", "/mnt", "tmpfs", 0, NULL), EPERM, 0);
  if (!strcmp(c, "umount")) return expect(umount2("/proc", 0), EPERM, 0);
  if (!strcmp(c, "unshare")) return expect(unshare(CLONE_NEWNS), EPERM, 0);
  if (!strcmp(c, "unshare-user")) return expect(unshare(CLONE_NEWUSER), EPERM, 0);
  if (!strcmp(c, "clone-newns")) {
    long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return expect(pid, EPERM, 0);
  }
  if (!strcmp(c, "setns")) return expect(setns(-1, 0), EPERM, 0);  /* EBADF unfiltered */
  if (!strcmp(c, "pivot_root")) return expect(syscall(SYS_pivot_root, "/nonexistent", "/nonexistent"), EPERM, 0);
  if (!strcmp(c, "chroot")) return expect(chroot("/nonexistent"), EPERM, 0);  /* ENOENT unfiltered */
  if (!strcmp(c, "open_by_handle_at")) return expect(syscall(SYS_open_by_handle_at, -1, NULL, 0), EPERM, 0);
  if (!strcmp(c, "ptrace")) return expect(ptrace(PTRACE_ATTACH, atoi(arg), NULL, NULL), ESRCH, EPERM);
  if (!strcmp(c, "kill")) return expect(kill(atoi(arg), 0), ESRCH, 0);
  if (!strcmp(c, "keyctl")) return expect(syscall(SYS_keyctl, 0xffff, 0, 0, 0, 0), EPERM, 0);
  if (!strcmp(c, "bpf")) return expect(syscall(SYS_bpf, -1, NULL, 0), EPERM, 0);
  if (!strcmp(c, "init_module")) return expect(syscall(SYS_init_module, NULL, 0, ""), EPERM, 0);
  if (!strcmp(c, "reboot")) return expect(syscall(SYS_reboot, 0, 0, 0, NULL), EPERM, 0);
  if (!strcmp(c, "clock_settime")) return expect(syscall(SYS_clock_settime, CLOCK_REALTIME, NULL), EPERM, 0);
  if (!strcmp(c, "io_uring")) return expect(syscall(SYS_io_uring_setup, 0, NULL), EPERM, 0);
  if (!strcmp(c, "userfaultfd")) return expect(syscall(SYS_userfaultfd, 0), EPERM, 0);
  if (!strcmp(c, "mknod-block")) return expect(mknod("/tmp/probe-blk", S_IFBLK | 0600, makedev(8, 0)), EPERM, 0);
  /* Read-only mounts; a kernel may also hide the file (ENOENT). */
  if (!strcmp(c, "write")) return expect(open(arg, O_WRONLY), EROFS, ENOENT);
  if (!strcmp(c, "create")) return expect(open(arg, O_WRONLY | O_CREAT, 0600), EROFS, 0);
  if (!strcmp(c, "raw-socket")) return expect(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), EPERM, 0);
  if (!strcmp(c, "af-alg")) return expect(socket(AF_ALG, SOCK_SEQPACKET, 0), EAFNOSUPPORT, EPERM);
  if (!strcmp(c, "af-vsock")) return expect(socket(AF_VSOCK, SOCK_STREAM, 0), EAFNOSUPPORT, EPERM);
  if (!strcmp(c, "connect")) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(arg))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return expect(connect(fd, (struct sockaddr*)&a, sizeof(a)), ECONNREFUSED, ENETUNREACH);
  }
  if (!strcmp(c, "read")) return expect(open(arg, O_RDONLY), ENOENT, EACCES);
  if (!strcmp(c, "sethostname")) return expect(sethostname("evil", 4), EPERM, 0);
  if (!strcmp(c, "fork-bomb")) {
    /* Forks until refused; the children wait to be killed with the sandbox. */
    for (int i = 0; i < 10000; ++i) {
      pid_t pid = fork();
      if (pid == 0) {
        pause();
        _exit(0);
      }
      if (pid < 0) {
        printf("refused after %d processes\n", i);
        return errno == EAGAIN ? 0 : 1;
      }
    }
    printf("allowed 10000 processes\n");
    return 1;
  }
  fprintf(stderr, "unknown case %s\n", c);
  return 2;
}
