#include "fs/write_buffer.h"

#include <algorithm>
#include <cstring>

namespace strata::fs {

void DirtyBlock::Apply(uint32_t offset, std::span<const uint8_t> bytes) {
  // Grown on demand: a small file holds only what was written, not a block.
  // Appending copies straight in (no zero fill first: sequential writes of
  // whole blocks are the common case for large files).
  encoded.reset();
  if (offset > data.size()) data.resize(offset);
  const size_t overlap = std::min(bytes.size(), data.size() - offset);
  if (overlap > 0) std::memcpy(data.data() + offset, bytes.data(), overlap);
  data.insert(data.end(), bytes.begin() + static_cast<ptrdiff_t>(overlap), bytes.end());
  uint32_t start = offset;
  uint32_t end = offset + static_cast<uint32_t>(bytes.size());
  // Merge with every extent that overlaps or touches [start, end).
  auto it = extents.upper_bound(start);
  if (it != extents.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= start) it = prev;
  }
  while (it != extents.end() && it->first <= end) {
    start = std::min(start, it->first);
    end = std::max(end, it->second);
    it = extents.erase(it);
  }
  extents.emplace(start, end);
}

void DirtyBlock::OverlayOnto(std::span<uint8_t> out) const {
  for (const auto& [start, end] : extents) {
    if (start >= out.size()) break;
    uint32_t stop = std::min<uint32_t>(end, static_cast<uint32_t>(out.size()));
    std::memcpy(out.data() + start, data.data() + start, stop - start);
  }
}

bool DirtyBlock::Covers(uint32_t size) const {
  return extents.size() == 1 && extents.begin()->first == 0 && extents.begin()->second >= size;
}

uint64_t WriteBuffer::Write(InodeId ino, uint64_t offset, std::span<const uint8_t> data,
                            int64_t now_ns) {
  std::scoped_lock lock(mu_);
  Pending& p = files_[ino];
  uint64_t pos = offset;
  size_t done = 0;
  while (done < data.size()) {
    uint64_t idx = pos / block_size_;
    uint32_t in_block = static_cast<uint32_t>(pos % block_size_);
    size_t n = std::min<size_t>(block_size_ - in_block, data.size() - done);
    auto& slot = p.dirty[idx];
    if (!slot) {
      slot = std::make_shared<DirtyBlock>();
      bytes_ += block_size_;  // counted whole: the limit bounds blocks, not bytes
    } else if (slot->lent) {
      // A reader may still hold this block: copy on write so its view stays
      // intact.
      slot = std::make_shared<DirtyBlock>(*slot);
      slot->lent = false;
    }
    slot->Apply(in_block, data.subspan(done, n));
    pos += n;
    done += n;
  }
  p.size = std::max(p.size, offset + data.size());
  p.mtime_ns = now_ns;
  p.written = true;
  return bytes_;
}

PendingView WriteBuffer::View(InodeId ino, uint64_t first, uint64_t last) const {
  PendingView view;
  std::scoped_lock lock(mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) return view;
  const Pending& p = it->second;
  view.block_count = p.dirty.size() + p.flushing.size();
  if (p.has_flushing) {
    view.size = p.flushing_size;
    view.mtime_ns = p.flushing_mtime_ns;
    BlockOverlay layer(p.flushing.lower_bound(first), p.flushing.upper_bound(last));
    view.layers.push_back(std::move(layer));
  }
  if (p.written) {
    view.size = std::max(view.size.value_or(0), p.size);
    view.mtime_ns = p.mtime_ns;
  }
  BlockOverlay layer;
  for (auto b = p.dirty.lower_bound(first); b != p.dirty.end() && b->first <= last; ++b) {
    b->second->lent = true;
    layer.emplace(b->first, b->second);
  }
  view.layers.push_back(std::move(layer));
  return view;
}

bool WriteBuffer::HasPending(InodeId ino) const {
  std::scoped_lock lock(mu_);
  return files_.count(ino) != 0;
}

BlockOverlay WriteBuffer::UnencodedWholeBlocks(InodeId ino, uint64_t first,
                                               uint64_t last) const {
  BlockOverlay out;
  std::scoped_lock lock(mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) return out;
  const auto& dirty = it->second.dirty;
  for (auto b = dirty.lower_bound(first); b != dirty.end() && b->first <= last; ++b) {
    if (b->second->encoded == nullptr && b->second->data.size() == block_size_ &&
        b->second->Covers(block_size_)) {
      b->second->lent = true;
      out.emplace(b->first, b->second);
    }
  }
  return out;
}

void WriteBuffer::SetEncoded(InodeId ino, uint64_t idx, const DirtyBlock* block,
                             std::shared_ptr<const chunks::Encoded> encoded) {
  std::scoped_lock lock(mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) return;
  auto b = it->second.dirty.find(idx);
  if (b != it->second.dirty.end() && b->second.get() == block) b->second->encoded = std::move(encoded);
}

std::vector<FlushItem> WriteBuffer::TakeForFlush(std::optional<InodeId> ino) {
  std::vector<FlushItem> items;
  std::scoped_lock lock(mu_);
  auto take = [&](InodeId id, Pending& p) {
    if (!p.written || p.has_flushing) return;
    FlushItem item{id, p.size, p.mtime_ns, {}};
    for (auto& [idx, block] : p.dirty) item.blocks.emplace(idx, std::move(block));
    p.dirty.clear();
    p.flushing = item.blocks;
    p.flushing_size = p.size;
    p.flushing_mtime_ns = p.mtime_ns;
    p.has_flushing = true;
    p.written = false;
    items.push_back(std::move(item));
  };
  if (ino.has_value()) {
    auto it = files_.find(*ino);
    if (it != files_.end()) take(it->first, it->second);
  } else {
    for (auto& [id, p] : files_) take(id, p);
  }
  return items;
}

void WriteBuffer::Complete(const std::vector<FlushItem>& items) {
  std::scoped_lock lock(mu_);
  // Numbered before the blocks leave: a reader that sees them gone also
  // sees the number (both under mu_, or published by the release below).
  const uint64_t number = completed_.load(std::memory_order_relaxed) + 1;
  for (const FlushItem& item : items) {
    last_flush_of_[item.ino % kFlushSlots].store(number, std::memory_order_release);
  }
  for (const FlushItem& item : items) {
    auto it = files_.find(item.ino);
    if (it == files_.end()) continue;
    Pending& p = it->second;
    bytes_ -= p.flushing.size() * block_size_;
    p.flushing.clear();
    p.has_flushing = false;
    if (!p.written && p.dirty.empty()) files_.erase(it);
  }
  completed_.store(number, std::memory_order_release);
}

void WriteBuffer::Abort(const std::vector<FlushItem>& items) {
  std::scoped_lock lock(mu_);
  for (const FlushItem& item : items) {
    auto it = files_.find(item.ino);
    if (it == files_.end()) continue;
    Pending& p = it->second;
    for (auto& [idx, old_block] : p.flushing) {
      auto merged = std::make_shared<DirtyBlock>(*old_block);
      auto newer = p.dirty.find(idx);
      if (newer != p.dirty.end()) {
        for (const auto& [start, end] : newer->second->extents) {
          merged->Apply(start, std::span<const uint8_t>(newer->second->data).subspan(
                                   start, end - start));
        }
        bytes_ -= block_size_;
      }
      p.dirty[idx] = std::move(merged);
    }
    if (!p.written) p.mtime_ns = p.flushing_mtime_ns;
    p.size = std::max(p.size, p.flushing_size);
    p.written = true;
    p.flushing.clear();
    p.has_flushing = false;
  }
}

void WriteBuffer::OverrideMtime(InodeId ino, int64_t mtime_ns) {
  std::scoped_lock lock(mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) return;
  it->second.mtime_ns = mtime_ns;
  it->second.flushing_mtime_ns = mtime_ns;
}

bool WriteBuffer::SetMtimeOfUntakenWrites(InodeId ino, int64_t mtime_ns) {
  std::scoped_lock lock(mu_);
  auto it = files_.find(ino);
  if (it == files_.end() || !it->second.written) return false;
  it->second.mtime_ns = mtime_ns;
  return true;
}

void WriteBuffer::Discard(InodeId ino) {
  std::scoped_lock lock(mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) return;
  bytes_ -= (it->second.dirty.size() + it->second.flushing.size()) * block_size_;
  files_.erase(it);
}

uint64_t WriteBuffer::buffered_bytes() const {
  std::scoped_lock lock(mu_);
  return bytes_;
}

}  // namespace strata::fs
