// FlushQueue: writes closed files' buffered data into the store on a
// background thread, so that close(2) does not wait for hashing,
// compression and the database.
//
// Add(ino) queues an inode (once, however often it is added); the thread
// calls `flush(ino)` for each in turn. A failed flush leaves the data
// buffered (WriteBuffer::Abort), to be written by the next flush of any
// kind, and its error surfaces at the next fsync, as for the kernel's own
// write-back. Stop() (or destruction) waits for the thread.
#ifndef STRATA_FS_FLUSH_QUEUE_H_
#define STRATA_FS_FLUSH_QUEUE_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "strata/types.h"

namespace strata::fs {

class FlushQueue {
 public:
  explicit FlushQueue(std::function<void(InodeId)> flush) : flush_(std::move(flush)) {}
  ~FlushQueue() { Stop(); }
  FlushQueue(const FlushQueue&) = delete;
  FlushQueue& operator=(const FlushQueue&) = delete;

  void Add(InodeId ino);
  // Flushes what is queued, then ends the thread. Add afterwards does nothing.
  void Stop();

 private:
  void Run();

  const std::function<void(InodeId)> flush_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<InodeId> queue_;  // guarded by mu_
  std::set<InodeId> queued_;   // guarded by mu_: the members of queue_
  bool stopping_ = false;      // guarded by mu_
  std::thread thread_;         // started by the first Add
};

}  // namespace strata::fs

#endif  // STRATA_FS_FLUSH_QUEUE_H_
