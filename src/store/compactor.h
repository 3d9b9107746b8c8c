// A thread that compacts the read levels of branches a fork or restore made
// deep (catalog/layers.h), so that the fork itself stays O(1) for its caller.
#ifndef STRATA_STORE_COMPACTOR_H_
#define STRATA_STORE_COMPACTOR_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "strata/types.h"

namespace strata {

class Compactor {
 public:
  // `compact` compacts one branch (in a transaction of its own); its errors
  // leave the branch as it was, which reads resolve the same, only slower.
  explicit Compactor(std::function<void(BranchId)> compact) : compact_(std::move(compact)) {}
  // Compacts every branch already added, then stops: the work is bounded by
  // the levels those branches had, and a store reopened later finds them
  // compact (a process killed first leaves them for the next fork or gc).
  ~Compactor();
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  // Queues `branch`; the thread starts on the first call.
  void Add(BranchId branch);

 private:
  void Loop();

  const std::function<void(BranchId)> compact_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<BranchId> queued_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  std::thread thread_;         // started by the first Add
};

}  // namespace strata

#endif  // STRATA_STORE_COMPACTOR_H_
