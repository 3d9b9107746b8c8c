// PeriodicFlusher: commits a filesystem's buffered writes every `period`
// until destroyed, so that data sitting in a file that stays open reaches
// the store.
#ifndef STRATA_DAEMON_FLUSHER_H_
#define STRATA_DAEMON_FLUSHER_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "strata/filesystem.h"

namespace strata::daemon {

class PeriodicFlusher {
 public:
  // `fs` must outlive the flusher.
  PeriodicFlusher(Filesystem& fs, std::chrono::milliseconds period)
      : thread_([this, &fs, period] {
          std::unique_lock lock(mu_);
          while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
            lock.unlock();
            (void)fs.FlushAll();  // a failure is reported by the next fsync
            lock.lock();
          }
        }) {}
  ~PeriodicFlusher() {
    {
      std::scoped_lock lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  PeriodicFlusher(const PeriodicFlusher&) = delete;
  PeriodicFlusher& operator=(const PeriodicFlusher&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace strata::daemon

#endif  // STRATA_DAEMON_FLUSHER_H_
