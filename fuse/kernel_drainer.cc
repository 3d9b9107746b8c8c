#include "fuse/kernel_drainer.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fuse/server_state.h"

namespace strata::fuse {

namespace {

// Messages on the SOCK_SEQPACKET pair, one per packet.
enum Op : uint32_t { kFsync = 1, kFsyncEnd = 2 };
struct Request {
  uint32_t op;
  uint32_t count;  // kFsync: inode numbers following the header
};
enum Kind : uint32_t { kFinishedMsg = 1, kDoneMsg = 2 };
struct Reply {
  uint32_t kind;
  int32_t error;
  uint64_t ino;
};
constexpr size_t kMaxInodesPerPacket = 4096;

// A handle of the inode `ino` on a FUSE mount, in the kernel's encoding
// (fs/fuse/inode.c, fuse_encode_fh: type 0x81, node id high and low words,
// generation), for open_by_handle_at(2).
class FuseHandle {
 public:
  explicit FuseHandle(InodeId ino) {
    file_handle* h = get();
    h->handle_bytes = 3 * sizeof(uint32_t);
    h->handle_type = 0x81;
    const uint32_t words[3] = {static_cast<uint32_t>(ino >> 32), static_cast<uint32_t>(ino),
                               kGeneration};
    std::memcpy(h->f_handle, words, sizeof(words));
  }
  file_handle* get() { return reinterpret_cast<file_handle*>(bytes_); }

 private:
  alignas(file_handle) unsigned char bytes_[sizeof(file_handle) + 3 * sizeof(uint32_t)] = {};
};

void Send(int sock, Kind kind, int error, uint64_t ino = 0) {
  Reply r{kind, error, ino};
  (void)!send(sock, &r, sizeof(r), MSG_NOSIGNAL);
}

// fsync holds the inode's lock while the kernel writes the file's dirty
// pages and waits for the server to take them, then sends FSYNC: so the
// pages it sends are one cut of the file's writes, never a later page
// without an earlier one.
void FsyncOne(int sock, int mount_fd, InodeId ino) {
  FuseHandle handle(ino);
  // O_NONBLOCK: a FIFO must not wait for a writer.
  const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
  int fd = open_by_handle_at(mount_fd, handle.get(), flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open_by_handle_at(mount_fd, handle.get(), flags);
  int err = 0;
  if (fd < 0) {
    err = errno;
  } else {
    if (fsync(fd) != 0) err = errno;
    close(fd);
  }
  Send(sock, kFinishedMsg, err, ino);
}

// One file's fsync, on its own thread of the helper.
struct FsyncJob {
  int sock;
  int mount_fd;
  InodeId ino;
  pthread_t thread;
};

void* RunFsyncJob(void* arg) {
  const FsyncJob& job = *static_cast<FsyncJob*>(arg);
  FsyncOne(job.sock, job.mount_fd, job.ino);
  return nullptr;
}

// The helper never uses the heap: it is forked from a process whose other
// threads may hold an allocator lock at that instant (glibc's malloc copes,
// the sanitizers' allocators of clang 14 do not). Memory comes from mmap,
// threads from pthread_create (which maps their stacks), the request buffer
// is on the stack.
[[noreturn]] void HelperMain(int sock, const char* mountpoint) {
  constexpr size_t kMaxPackets = 64;  // 262,144 files per cut
  FsyncJob* batches[kMaxPackets];     // one mapping per packet; jobs never move
  size_t batch_sizes[kMaxPackets];
  size_t batch_count = 0;
  int mount_fd = -1;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 << 10);
  alignas(uint64_t) uint8_t buf[sizeof(Request) + kMaxInodesPerPacket * sizeof(uint64_t)];
  for (;;) {
    ssize_t n = recv(sock, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < static_cast<ssize_t>(sizeof(Request))) _exit(0);  // the daemon is gone
    Request r;
    std::memcpy(&r, buf, sizeof(r));
    if (r.op == kFsync) {
      if (mount_fd < 0) mount_fd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      const int open_error = mount_fd < 0 ? errno : 0;
      const size_t count = std::min<size_t>(r.count, (static_cast<size_t>(n) - sizeof(r)) / 8);
      void* mapped = batch_count < kMaxPackets && count > 0
                         ? mmap(nullptr, count * sizeof(FsyncJob), PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                         : MAP_FAILED;
      FsyncJob* jobs = mapped == MAP_FAILED ? nullptr : static_cast<FsyncJob*>(mapped);
      if (jobs != nullptr) {
        batches[batch_count] = jobs;
        batch_sizes[batch_count++] = count;
      }
      for (size_t i = 0; i < count; ++i) {
        uint64_t ino;
        std::memcpy(&ino, buf + sizeof(r) + i * 8, 8);
        if (mount_fd < 0 || jobs == nullptr) {  // this file is not part of the cut
          Send(sock, kFinishedMsg, mount_fd < 0 ? open_error : ENOMEM, ino);
          continue;
        }
        jobs[i] = FsyncJob{sock, mount_fd, ino, {}};
        if (pthread_create(&jobs[i].thread, &attr, RunFsyncJob, &jobs[i]) != 0) {
          jobs[i].ino = 0;  // not started
          Send(sock, kFinishedMsg, EAGAIN, ino);
        }
      }
    } else if (r.op == kFsyncEnd) {
      for (size_t b = 0; b < batch_count; ++b) {
        for (size_t i = 0; i < batch_sizes[b]; ++i) {
          if (batches[b][i].ino != 0) pthread_join(batches[b][i].thread, nullptr);
        }
        munmap(batches[b], batch_sizes[b] * sizeof(FsyncJob));
      }
      batch_count = 0;
      if (mount_fd >= 0) close(mount_fd);  // an open mount could not be unmounted
      mount_fd = -1;
      Send(sock, kDoneMsg, 0);
    }
  }
}

bool SendPacket(int fd, const void* data, size_t size) {
  for (;;) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(size);
  }
}

}  // namespace

Result<std::unique_ptr<KernelDrainer>> KernelDrainer::Start(const std::string& mountpoint) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return IoError(std::string("socketpair: ") + std::strerror(errno));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(sv[0]);
    close(sv[1]);
    return IoError(std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    setpgid(0, 0);  // a Ctrl-C meant for a foreground daemon is not for us
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Nothing inherited but the socket: above all no /dev/fuse descriptor,
    // none of the store's files, and no standard stream that a caller
    // waits on until it ends.
    if (dup2(sv[1], 3) < 0) _exit(1);
    close_range(4, ~0U, 0);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) _exit(1);
    for (int fd = 0; fd < 3; ++fd) dup2(null, fd);
    close(null);
    if (chdir("/") != 0) _exit(1);
    struct rlimit files;  // one descriptor per open file of the mount
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
      files.rlim_cur = files.rlim_max;
      setrlimit(RLIMIT_NOFILE, &files);
    }
    HelperMain(3, mountpoint.c_str());
  }
  close(sv[1]);
  return std::unique_ptr<KernelDrainer>(new KernelDrainer(pid, sv[0]));
}

KernelDrainer::~KernelDrainer() {
  close(fd_);  // the helper exits at EOF
  // It may still be in a wait on a mount that is gone; never hang on it.
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) != 0) return;
    if (i == 20) kill(pid_, SIGKILL);
    usleep(10'000);
  }
}

Status KernelDrainer::StartFsyncs(const std::vector<InodeId>& inodes) {
  std::vector<uint8_t> packet;
  for (size_t first = 0; first < inodes.size(); first += kMaxInodesPerPacket) {
    const size_t count = std::min(kMaxInodesPerPacket, inodes.size() - first);
    Request r{kFsync, static_cast<uint32_t>(count)};
    packet.resize(sizeof(r) + count * 8);
    std::memcpy(packet.data(), &r, sizeof(r));
    std::memcpy(packet.data() + sizeof(r), inodes.data() + first, count * 8);
    if (!SendPacket(fd_, packet.data(), packet.size())) {
      return IoError("the kernel-cache drainer is gone");
    }
  }
  return Status::Ok();
}

Status KernelDrainer::EndBatch() {
  Request end{kFsyncEnd, 0};
  if (!SendPacket(fd_, &end, sizeof(end))) return IoError("the kernel-cache drainer is gone");
  return Status::Ok();
}

Result<KernelDrainer::Event> KernelDrainer::Next(std::chrono::milliseconds timeout) {
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(timeout.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return Status(Code::kBusy, "the kernel-cache drainer did not answer in time");
    Reply reply;
    ssize_t n = recv(fd_, &reply, sizeof(reply), MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n != sizeof(reply)) return IoError("the kernel-cache drainer is gone");
    Event e;
    e.kind = reply.kind == kFinishedMsg ? Event::kFinished : Event::kDone;
    e.ino = reply.ino;
    e.error = reply.error;
    return e;
  }
}

}  // namespace strata::fuse
