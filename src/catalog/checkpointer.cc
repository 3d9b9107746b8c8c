#include "catalog/checkpointer.h"

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace strata::catalog {

Result<std::unique_ptr<Checkpointer>> Checkpointer::Start(const std::string& path) {
  ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(path, sql::OpenMode::kReadWriteCreate));
  // NORMAL: the WAL is synced before each checkpoint and the store after it.
  RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = NORMAL"));
  std::string dir = std::filesystem::path(path).parent_path().string();
  auto checkpointer = std::unique_ptr<Checkpointer>(
      new Checkpointer(std::move(conn), dir.empty() ? "." : dir));
  checkpointer->thread_ = std::thread([c = checkpointer.get()] { c->Run(); });
  return checkpointer;
}

Checkpointer::~Checkpointer() {
  {
    std::scoped_lock lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool Checkpointer::LowOnSpace(std::chrono::steady_clock::time_point now) {
  if (now - space_checked_ < kSpaceCheckInterval) return low_space_;
  space_checked_ = now;
  struct statvfs st {};
  if (statvfs(dir_.c_str(), &st) == 0) {
    low_space_ = uint64_t{st.f_bavail} * st.f_frsize < kLowSpaceBytes;
  }
  return low_space_;
}

void Checkpointer::Committed(int wal_frames) {
  bool wake;
  {
    std::scoped_lock lock(mu_);
    auto now = std::chrono::steady_clock::now();
    // Wake the thread only when a threshold is crossed, not on every commit
    // (on every one while space is low).
    wake = wal_frames >= kMaxFrames || (wal_frames_ < kIdleFrames && wal_frames >= kIdleFrames) ||
           (wal_frames > 0 && LowOnSpace(now));
    wal_frames_ = wal_frames;
    last_write_ = now;
    if (wal_frames > 0) ++commits_;
  }
  if (wake) wake_.notify_one();
}

void Checkpointer::WriterBusy(bool busy) {
  std::scoped_lock lock(mu_);
  writer_busy_ = busy;
  last_write_ = std::chrono::steady_clock::now();
}

void Checkpointer::CatchUp() {
  {
    std::scoped_lock lock(mu_);
    if (checkpointed_ >= commits_ || !LowOnSpace(std::chrono::steady_clock::now())) return;
  }
  std::scoped_lock conn_lock(conn_mu_);
  uint64_t target;
  {
    std::scoped_lock lock(mu_);
    if (checkpointed_ >= commits_) return;  // the thread's round, just finished, covered them
    target = commits_;
    wal_frames_ = 0;  // nothing left for the thread to do
  }
  Checkpoint(/*truncate=*/true);
  std::scoped_lock lock(mu_);
  checkpointed_ = std::max(checkpointed_, target);
}

Status Checkpointer::CheckpointNow() {
  std::scoped_lock conn_lock(conn_mu_);
  uint64_t target;
  {
    std::scoped_lock lock(mu_);
    target = commits_;
    wal_frames_ = 0;
  }
  RETURN_IF_ERROR(conn_->Checkpoint(sql::CheckpointMode::kTruncate));
  std::scoped_lock lock(mu_);
  checkpointed_ = std::max(checkpointed_, target);
  return Status::Ok();
}

void Checkpointer::Checkpoint(bool truncate) {
  // Errors (a busy reader, a full disk) are not fatal here: the WAL keeps
  // the data, and the next commit triggers another attempt.
  if (truncate) {
    (void)conn_->Checkpoint(sql::CheckpointMode::kTruncate);
    return;
  }
  (void)conn_->Checkpoint(sql::CheckpointMode::kPassive);
  (void)conn_->Checkpoint(sql::CheckpointMode::kRestart);
}

bool Checkpointer::CaughtUp() {
  std::scoped_lock lock(mu_);
  return checkpointed_ >= commits_;
}

void Checkpointer::Run() {
  // Background work yields the CPU to the threads answering requests.
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] {
      return stop_ || wal_frames_ >= kIdleFrames || (wal_frames_ > 0 && low_space_);
    });
    if (stop_) return;
    if (wal_frames_ < kMaxFrames && !low_space_) {
      auto now = std::chrono::steady_clock::now();
      auto due = (writer_busy_ ? now : last_write_) + kIdleDelay;
      if (now < due) {
        wake_.wait_until(lock, due);
        continue;  // look again: the writer may have been busy meanwhile
      }
    }
    wal_frames_ = 0;  // the next commit reports the size anew
    const uint64_t target = commits_;
    const bool truncate = low_space_;
    lock.unlock();
    {
      std::scoped_lock conn_lock(conn_mu_);
      Checkpoint(truncate);
    }
    lock.lock();
    checkpointed_ = std::max(checkpointed_, target);
  }
}

}  // namespace strata::catalog
