#include "store/compactor.h"

namespace strata {

Compactor::~Compactor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Compactor::Add(BranchId branch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_.insert(branch);
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  }
  cv_.notify_one();
}

void Compactor::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
    if (queued_.empty()) return;  // stopping, and nothing left
    // Oldest first: a branch forked from one still queued then finds its
    // parent's layer and reuses it.
    BranchId branch = *queued_.begin();
    queued_.erase(queued_.begin());
    lock.unlock();
    compact_(branch);
    lock.lock();
  }
}

}  // namespace strata
