// WriteBuffer: file data written but not yet committed, per inode and block.
//
// Write() copies bytes into dirty blocks and never touches the database.
// A flush takes the dirty blocks (TakeForFlush), the caller merges them with
// the stored blocks and commits, then calls Complete (or Abort on failure, so
// nothing is lost). Until Complete, the taken blocks stay visible to readers,
// so a reader that looks here first and at the database second never misses
// a write: either the block is still here, or its commit is already visible.
//
// Thread-safe. Lock order: callers may hold the store's writer lock when
// calling in; the buffer's own mutex is innermost.
#ifndef STRATA_FS_WRITE_BUFFER_H_
#define STRATA_FS_WRITE_BUFFER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "chunks/chunk_store.h"
#include "strata/types.h"

namespace strata::fs {

// One block's pending bytes. `extents` (start -> end, disjoint, merged) say
// which bytes of `data` were written; the rest come from the stored block.
// `data` is as long as the last written byte (at most a block).
struct DirtyBlock {
  std::vector<uint8_t> data;
  std::map<uint32_t, uint32_t> extents;
  // `data` hashed and compressed, once it is a whole block (see
  // WriteBuffer::SetEncoded); Apply drops it. For incompressible data this
  // holds a second copy of the block until it is flushed.
  std::shared_ptr<const chunks::Encoded> encoded;
  // Handed to a reader or an encoder, who uses it without the buffer's lock:
  // the next write copies the block instead of changing it. Guarded by the
  // WriteBuffer's mutex. (Testing use_count() instead is not enough: a
  // reader's release does not order its reads before our writes.)
  mutable bool lent = false;

  void Apply(uint32_t offset, std::span<const uint8_t> bytes);
  // Copies the written bytes over `out` (a whole block's worth).
  void OverlayOnto(std::span<uint8_t> out) const;
  bool Covers(uint32_t size) const;
};

using BlockOverlay = std::map<uint64_t, std::shared_ptr<const DirtyBlock>>;

// What a reader must lay over the stored file: older (flushing) blocks first.
struct PendingView {
  std::optional<uint64_t> size;  // the file is at least this long
  std::optional<int64_t> mtime_ns;
  std::vector<BlockOverlay> layers;  // apply in order
  // Blocks pending for the inode in all (not only the requested range), so
  // that attributes count data not yet committed.
  uint64_t block_count = 0;
};

// Blocks of one inode taken for a flush.
struct FlushItem {
  InodeId ino = 0;
  uint64_t size = 0;  // the file is at least this long
  int64_t mtime_ns = 0;
  BlockOverlay blocks;
};

class WriteBuffer {
 public:
  explicit WriteBuffer(uint32_t block_size) : block_size_(block_size) {}

  // Buffers `data` at `offset`. Returns the bytes now buffered in total.
  uint64_t Write(InodeId ino, uint64_t offset, std::span<const uint8_t> data, int64_t now_ns);

  // The overlay for blocks first..last of `ino` (empty if nothing pending).
  PendingView View(InodeId ino, uint64_t first, uint64_t last) const;
  // How many flushes have completed (their blocks left the buffer), and the
  // number of the last one that took blocks of `ino` (or of an inode that
  // shares its slot: never too low, sometimes too high). A reader that must
  // take its view of `ino` after starting its database read compares the
  // two: if a flush of `ino` completed after the read began, its data may be
  // in a commit the read does not see and no longer in the buffer, and the
  // read must be done again. (Per inode, so that a long read is not retried
  // for every flush of other files: with many writers it never finished.)
  uint64_t CompletedFlushes() const { return completed_.load(std::memory_order_acquire); }
  uint64_t LastFlushOf(InodeId ino) const {
    return last_flush_of_[ino % kFlushSlots].load(std::memory_order_acquire);
  }
  bool HasPending(InodeId ino) const;
  // The dirty (not yet taken) blocks of `ino` among first..last that hold a
  // whole block and have no encoding yet.
  BlockOverlay UnencodedWholeBlocks(InodeId ino, uint64_t first, uint64_t last) const;
  // Attaches the encoding of `block` (one of UnencodedWholeBlocks), unless
  // the block was written again or taken for a flush meanwhile.
  void SetEncoded(InodeId ino, uint64_t idx, const DirtyBlock* block,
                  std::shared_ptr<const chunks::Encoded> encoded);

  // Takes the dirty blocks of `ino` (or of every inode when nullopt). Taken
  // blocks stay visible until Complete or Abort.
  std::vector<FlushItem> TakeForFlush(std::optional<InodeId> ino);
  // The taken items are committed: forget them.
  void Complete(const std::vector<FlushItem>& items);
  // The commit failed: make the taken items dirty again, under newer writes.
  void Abort(const std::vector<FlushItem>& items);
  // Sets the modification time that pending data of `ino` (if any) will
  // commit with: an explicit setattr after the write wins. Call with the
  // store's writer lock held, so that no flush is between Take and Complete.
  void OverrideMtime(InodeId ino, int64_t mtime_ns);
  // Sets the modification time that the data written to `ino` and not yet
  // taken for a flush will commit with, and returns true; false (nothing
  // set) when there is no such data. Needs no writer lock: the next flush
  // takes the time with that data.
  bool SetMtimeOfUntakenWrites(InodeId ino, int64_t mtime_ns);
  // Drops everything pending for `ino` (the inode is gone).
  void Discard(InodeId ino);

  uint64_t buffered_bytes() const;

 private:
  struct Pending {
    std::map<uint64_t, std::shared_ptr<DirtyBlock>> dirty;
    BlockOverlay flushing;
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    bool written = false;  // size/mtime hold a write not yet taken
    uint64_t flushing_size = 0;
    int64_t flushing_mtime_ns = 0;
    bool has_flushing = false;
  };

  const uint32_t block_size_;
  mutable std::mutex mu_;
  std::atomic<uint64_t> completed_{0};
  static constexpr size_t kFlushSlots = 256;
  std::array<std::atomic<uint64_t>, kFlushSlots> last_flush_of_{};  // by ino % kFlushSlots
  std::map<InodeId, Pending> files_;  // guarded by mu_
  uint64_t bytes_ = 0;                // guarded by mu_: dirty + flushing block bytes
};

}  // namespace strata::fs

#endif  // STRATA_FS_WRITE_BUFFER_H_
