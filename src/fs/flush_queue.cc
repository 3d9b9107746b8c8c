#include "fs/flush_queue.h"

namespace strata::fs {

void FlushQueue::Add(InodeId ino) {
  {
    std::scoped_lock lock(mu_);
    if (stopping_ || !queued_.insert(ino).second) return;
    queue_.push_back(ino);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  cv_.notify_one();
}

void FlushQueue::Stop() {
  {
    std::scoped_lock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void FlushQueue::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    InodeId ino = queue_.front();
    queue_.pop_front();
    queued_.erase(ino);
    lock.unlock();
    flush_(ino);
    lock.lock();
  }
}

}  // namespace strata::fs
