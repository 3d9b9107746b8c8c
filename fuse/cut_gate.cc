#include "fuse/cut_gate.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace strata::fuse {

CutGate::CutGate() : wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

CutGate::~CutGate() {
  JoinResumer();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void CutGate::JoinResumer() {
  if (resumer_.joinable()) resumer_.join();
}

void CutGate::Exit() {
  std::scoped_lock lock(mu_);
  if (--running_ == 0) idle_.notify_all();
}

bool CutGate::HoldFsync(fuse_req_t req, InodeId ino) {
  {
    std::scoped_lock lock(mu_);
    if (!IsDrainer(fuse_req_ctx(req)->pid)) return false;
    if (!active_) {
      // Late for a round that was abandoned: nothing waits for its data.
      fuse_reply_err(req, 0);
      return true;
    }
    held_.emplace_back(ino, req);
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  return true;
}

void CutGate::Begin(pid_t drainer) {
  std::unique_lock lock(mu_);
  active_ = true;
  drainer_ = drainer;
  idle_.wait(lock, [this] { return running_ == 0; });
}

std::set<InodeId> CutGate::Held() {
  uint64_t count;
  (void)!read(wake_fd_, &count, sizeof(count));
  std::scoped_lock lock(mu_);
  std::set<InodeId> out;
  for (const auto& [ino, req] : held_) out.insert(ino);
  return out;
}

void CutGate::End(int error) {
  std::vector<std::function<void()>> queued;
  std::vector<std::pair<InodeId, fuse_req_t>> held;
  {
    std::scoped_lock lock(mu_);
    active_ = false;
    queued.swap(queued_);
    held.swap(held_);
    running_ += static_cast<int>(queued.size());
  }
  uint64_t count;
  (void)!read(wake_fd_, &count, sizeof(count));
  for (const auto& [ino, req] : held) fuse_reply_err(req, error);
  if (queued.empty()) return;
  // The last End's requests have all run (this cut's Begin waited for
  // them), so this join only waits for that thread to return.
  JoinResumer();
  resuming_ = std::move(queued);
  auto resume = [this] {
    for (const auto& run : resuming_) {
      run();
      Exit();
    }
    resuming_.clear();
  };
  try {
    resumer_ = std::thread(resume);
  } catch (const std::system_error&) {  // no thread to be had: here, then
    resume();
  }
}

bool CutGate::IsDrainer(pid_t pid) const {
  if (drainer_ == 0) return false;  // no cut yet
  if (pid == drainer_) return true;
  // FUSE reports the calling thread; its process is the Tgid of its status.
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/status", static_cast<int>(pid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* tgid = std::strstr(buf, "\nTgid:");
  return tgid != nullptr && std::atoi(tgid + 6) == drainer_;
}

}  // namespace strata::fuse
