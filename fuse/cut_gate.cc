#include "fuse/cut_gate.h"

#include <sys/stat.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
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
  bool late;
  {
    std::scoped_lock lock(mu_);
    if (!IsDrainer(fuse_req_ctx(req)->pid)) return false;
    late = !active_;
    if (!late) held_.emplace_back(ino, req);
  }
  if (late) {
    // Late for a round that was abandoned: nothing waits for its data.
    fuse_reply_err(req, 0);
    return true;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  return true;
}

void CutGate::Begin(pid_t drainer) {
  std::scoped_lock lock(mu_);
  active_ = true;
  drainer_ = drainer;
}

void CutGate::WaitForRunning() {
  std::unique_lock lock(mu_);
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
  // The last End's work is done: this cut's WaitForRunning waited for its queued
  // requests, and FuseServer::Cut for the drainer's answered fsyncs; so
  // this join only waits for that thread to return.
  JoinResumer();
  {
    std::scoped_lock lock(mu_);
    active_ = false;
    resuming_.swap(queued_);
    resuming_held_.swap(held_);
    running_ += static_cast<int>(resuming_.size());
  }
  uint64_t count;
  (void)!read(wake_fd_, &count, sizeof(count));
  if (resuming_.empty() && resuming_held_.empty()) return;
  auto resume = [this, error] {
    for (const auto& [ino, req] : resuming_held_) fuse_reply_err(req, error);
    resuming_held_.clear();
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
  // FUSE reports the calling thread: one of the drainer's if it is listed
  // among the drainer's tasks.
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/task/%d", static_cast<int>(drainer_),
                static_cast<int>(pid));
  struct stat st;
  return stat(path, &st) == 0;
}

}  // namespace strata::fuse
