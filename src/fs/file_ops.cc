// File data: open handles, reads through the write buffer, flushes,
// truncation and fallocate.
#include <linux/falloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "fs/filesystem_impl.h"

namespace strata::fs {

namespace {

bool AllZero(std::span<const uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

Status CheckRegular(const tree::InodeRow& row) {
  if (S_ISDIR(row.mode)) return IsDir("inode " + std::to_string(row.ino) + " is a directory");
  if (!S_ISREG(row.mode)) return InvalidArgument("inode " + std::to_string(row.ino) +
                                                 " is not a regular file");
  return Status::Ok();
}

}  // namespace

Status FilesystemImpl::Open(InodeId ino) {
  {
    // Open already: its row has nothing new to tell (an unlink since has
    // marked it a possible orphan), and reading it would wait for the
    // writer connection while a batch is open.
    std::scoped_lock lock(open_mu_);
    auto it = open_files_.find(ino);
    if (it != open_files_.end()) {
      it->second.count++;
      return Status::Ok();
    }
  }
  RETURN_IF_ERROR(Materialize(ino));
  bool regular = false;
  bool unlinked = false;
  uint64_t size = 0;
  RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, scope, ino));
    regular = S_ISREG(row.mode);
    unlinked = row.nlink == 0 && !S_ISDIR(row.mode);
    size = row.size;
    return Status::Ok();
  }));
  std::scoped_lock lock(open_mu_);
  OpenFile& file = open_files_[ino];
  if (file.count == 0) file.known_size = size;
  file.count++;
  file.regular = regular;
  // An orphan opened again (open_by_handle_at, as a snapshot's drain does,
  // or /proc/PID/fd/N) after its other handles went: this handle's Release
  // must delete it.
  if (unlinked) file.maybe_orphan = true;
  return Status::Ok();
}

void FilesystemImpl::SetGrowthLimit(std::optional<uint64_t> bytes) {
  growth_ = 0;
  growth_limit_ = bytes ? static_cast<int64_t>(std::min<uint64_t>(*bytes, INT64_MAX)) : -1;
}

Status FilesystemImpl::CountResize(InodeId ino, uint64_t current, uint64_t new_size,
                                   bool grow_only) {
  std::scoped_lock lock(open_mu_);
  auto it = open_files_.find(ino);
  if (it != open_files_.end()) current = std::max(current, it->second.known_size);
  if (grow_only && new_size <= current) return Status::Ok();
  const int64_t delta = static_cast<int64_t>(new_size) - static_cast<int64_t>(current);
  const int64_t limit = growth_limit_.load();
  if (delta > 0 && limit >= 0 && growth_.load() + delta > limit) {
    return Status(Code::kNoSpace, "the session's disk quota (" + std::to_string(limit) +
                                      " bytes of growth) is used up");
  }
  growth_ += delta;
  if (it != open_files_.end()) it->second.known_size = new_size;
  return Status::Ok();
}

void FilesystemImpl::CountRemoved(uint64_t size) { growth_ -= static_cast<int64_t>(size); }

Status FilesystemImpl::Release(InodeId ino) {
  bool maybe_orphan;
  {
    std::scoped_lock lock(open_mu_);
    auto it = open_files_.find(ino);
    if (it == open_files_.end()) return InvalidArgument("inode is not open");
    if (--it->second.count > 0) return Status::Ok();
    maybe_orphan = it->second.maybe_orphan;
    open_files_.erase(it);
  }
  if (read_only()) return Status::Ok();
  if (!maybe_orphan) {
    FlushLater(ino);
    return Status::Ok();
  }
  // The last handle of an inode with no name left: now it goes.
  return Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, head.scope(), ino));
    if (!row.has_value() || row->nlink > 0 || S_ISDIR(row->mode)) return Status::Ok();
    // Opened again since our handle went: the new handle's last Release
    // deletes it (without the mark it would only queue a flush, and the
    // orphan would stay until the branch is next opened).
    if (MarkOrphanIfOpen(ino)) return Status::Ok();
    buffer_.Discard(ino);
    RETURN_IF_ERROR(tree::DeleteInode(conn, head, ino));
    CountRemoved(row->size);
    return tree::RemoveOrphan(conn, head.branch, ino);
  });
}

Status FilesystemImpl::LoadBlock(sql::Connection& conn, tree::Scope scope, InodeId ino,
                                 uint64_t idx, std::vector<uint8_t>* out) {
  out->assign(block_size_, 0);
  ASSIGN_OR_RETURN(tree::BlockMap map, tree::GetBlocks(conn, scope, ino, idx, idx));
  auto it = map.find(idx);
  if (it == map.end() || !it->second.has_value()) return Status::Ok();
  ASSIGN_OR_RETURN(auto bytes, core_->chunks().Get(conn, *it->second));
  std::memcpy(out->data(), bytes->data(), std::min<size_t>(bytes->size(), block_size_));
  return Status::Ok();
}

Result<std::optional<chunks::ChunkId>> FilesystemImpl::StoreBlock(
    sql::Connection& conn, std::span<const uint8_t> bytes, const chunks::Encoded* encoded) {
  if (bytes.empty() || AllZero(bytes)) return std::optional<chunks::ChunkId>();
  ASSIGN_OR_RETURN(chunks::ChunkId id, core_->chunks().Put(conn, bytes, encoded));
  return std::optional<chunks::ChunkId>(id);
}

Result<size_t> FilesystemImpl::Read(InodeId ino, uint64_t offset, std::span<uint8_t> out) {
  if (out.empty()) return size_t{0};
  RETURN_IF_ERROR(Materialize(ino));
  uint64_t first = offset / block_size_;
  uint64_t last = (offset + out.size() - 1) / block_size_;
  // Buffer first, database second: see WriteBuffer.
  PendingView pending = buffer_.View(ino, first, last);
  size_t done = 0;
  RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, scope, ino));
    RETURN_IF_ERROR(CheckRegular(row));
    uint64_t size = std::max<uint64_t>(row.size, pending.size.value_or(0));
    if (offset >= size) return Status::Ok();
    uint64_t n = std::min<uint64_t>(out.size(), size - offset);
    last = (offset + n - 1) / block_size_;
    ASSIGN_OR_RETURN(tree::BlockMap blocks, tree::GetBlocks(conn, scope, ino, first, last));
    std::vector<uint8_t> tmp;
    for (uint64_t idx = first; idx <= last; ++idx) {
      uint64_t block_start = idx * block_size_;
      uint64_t from = std::max(offset, block_start);
      uint64_t to = std::min(offset + n, block_start + block_size_);
      std::span<uint8_t> dest = out.subspan(from - offset, to - from);
      uint32_t in_block = static_cast<uint32_t>(from - block_start);
      std::shared_ptr<const chunks::Bytes> stored;
      auto b = blocks.find(idx);
      if (b != blocks.end() && b->second.has_value()) {
        ASSIGN_OR_RETURN(stored, core_->chunks().Get(conn, *b->second));
      }
      bool overlaid = false;
      for (const auto& layer : pending.layers) overlaid |= layer.count(idx) != 0;
      if (!overlaid) {
        std::fill(dest.begin(), dest.end(), 0);
        if (stored && stored->size() > in_block) {
          size_t k = std::min<size_t>(dest.size(), stored->size() - in_block);
          std::memcpy(dest.data(), stored->data() + in_block, k);
        }
        continue;
      }
      tmp.assign(block_size_, 0);
      if (stored) std::memcpy(tmp.data(), stored->data(), std::min<size_t>(stored->size(), tmp.size()));
      for (const auto& layer : pending.layers) {
        auto it = layer.find(idx);
        if (it != layer.end()) it->second->OverlayOnto(tmp);
      }
      std::memcpy(dest.data(), tmp.data() + in_block, dest.size());
    }
    done = static_cast<size_t>(n);
    return Status::Ok();
  }));
  return done;
}

Result<size_t> FilesystemImpl::Write(InodeId ino, uint64_t offset, std::span<const uint8_t> data) {
  if (read_only()) return ReadOnly("snapshot views are read-only");
  if (data.empty()) return size_t{0};
  if (offset > kMaxFileSize || data.size() > kMaxFileSize - offset) {
    return Status(Code::kFileTooBig, "write past the maximum file size");
  }
  // An open regular file needs no look-up per write (and was expanded from
  // the host base, if it is a host file, when it was opened).
  bool checked;
  {
    std::scoped_lock lock(open_mu_);
    auto it = open_files_.find(ino);
    checked = it != open_files_.end() && it->second.regular;
  }
  if (!checked) {
    RETURN_IF_ERROR(Materialize(ino));
    RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
      ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, scope, ino));
      return CheckRegular(row);
    }));
  }
  if (growth_limit_.load() >= 0) {
    bool open;
    {
      std::scoped_lock lock(open_mu_);
      open = open_files_.count(ino) != 0;
    }
    // Only open files are counted (the FUSE adapter writes through handles).
    if (open) RETURN_IF_ERROR(CountResize(ino, 0, offset + data.size(), /*grow_only=*/true));
  }
  uint64_t buffered = buffer_.Write(ino, offset, data, core_->Now());
  // Blocks this write completed are hashed and compressed here, on the
  // request's thread, while the flush thread stores earlier ones.
  const uint64_t end = offset + data.size();
  if (end / block_size_ > offset / block_size_) {
    EncodeWholeBlocks(ino, offset / block_size_, end / block_size_ - 1);
  }
  // From a quarter of the limit on, the background thread writes the buffer
  // out while requests keep filling it (two cores: one takes data in, one
  // stores it; starting early keeps the thread busy from the first megabytes
  // to the last). Past twice the limit, writers wait for a flush of their own.
  if (buffered > core_->write_buffer_limit() / 4) flush_queue_.Add(kFlushEverything);
  if (buffered > 2 * core_->write_buffer_limit()) {
    RETURN_IF_ERROR(FlushPending(std::nullopt, catalog::Commit::kNow));
  }
  return data.size();
}

Status FilesystemImpl::Flush(InodeId ino) { return FlushPending(ino, catalog::Commit::kNow); }
Status FilesystemImpl::Fsync(InodeId ino) { return FlushPending(ino, catalog::Commit::kDurable); }
Status FilesystemImpl::FlushAll() { return FlushPending(std::nullopt, catalog::Commit::kNow); }

void FilesystemImpl::FlushLater(InodeId ino) {
  if (!read_only() && buffer_.HasPending(ino)) flush_queue_.Add(ino);
}

std::vector<InodeId> FilesystemImpl::OpenInodes() {
  std::scoped_lock lock(open_mu_);
  std::vector<InodeId> out;
  out.reserve(open_files_.size());
  for (const auto& [ino, file] : open_files_) out.push_back(ino);
  return out;
}

void FilesystemImpl::EncodeWholeBlocks(InodeId ino, uint64_t first, uint64_t last) {
  for (const auto& [idx, block] : buffer_.UnencodedWholeBlocks(ino, first, last)) {
    if (AllZero(block->data)) continue;  // stored as a hole, not a chunk
    auto encoded = std::make_shared<const chunks::Encoded>(core_->chunks().Encode(block->data));
    buffer_.SetEncoded(ino, idx, block.get(), std::move(encoded));
  }
}

Status FilesystemImpl::WriteItems(sql::Connection& conn, tree::Head head,
                                  const std::vector<FlushItem>& items) {
  std::vector<uint8_t> base;
  for (const FlushItem& item : items) {
    ASSIGN_OR_RETURN(auto found, tree::GetInode(conn, head.scope(), item.ino));
    if (!found.has_value() || !S_ISREG(found->mode)) continue;  // removed meanwhile
    tree::InodeRow& row = *found;
    uint64_t size = std::max(row.size, item.size);
    tree::BlockMap updates;
    for (const auto& [idx, block] : item.blocks) {
      uint64_t block_start = idx * block_size_;
      if (block_start >= size) continue;
      uint32_t valid = static_cast<uint32_t>(std::min<uint64_t>(block_size_, size - block_start));
      std::span<const uint8_t> content;
      const chunks::Encoded* ready = nullptr;
      if (block->Covers(valid)) {
        content = std::span<const uint8_t>(block->data).first(valid);
        if (block->encoded != nullptr && block->encoded->size == valid) ready = block->encoded.get();
      } else {
        RETURN_IF_ERROR(LoadBlock(conn, head.scope(), item.ino, idx, &base));
        block->OverlayOnto(base);
        content = std::span<const uint8_t>(base).first(valid);
      }
      ASSIGN_OR_RETURN(updates[idx], StoreBlock(conn, content, ready));
    }
    ASSIGN_OR_RETURN(int64_t delta, tree::PutBlocks(conn, head, item.ino, updates));
    row.nblocks = static_cast<uint64_t>(static_cast<int64_t>(row.nblocks) + delta);
    row.size = size;
    row.mtime_ns = item.mtime_ns;
    row.ctime_ns = std::max(row.ctime_ns, item.mtime_ns);
    RETURN_IF_ERROR(tree::PutInode(conn, head, row));
  }
  return Status::Ok();
}

Status FilesystemImpl::ZeroRange(sql::Connection& conn, tree::Head head, tree::InodeRow& row,
                                 uint64_t offset, uint64_t length) {
  uint64_t end = std::min(row.size, offset + length);
  if (offset >= end) return Status::Ok();
  uint64_t first = offset / block_size_;
  uint64_t last = (end - 1) / block_size_;
  ASSIGN_OR_RETURN(tree::BlockMap existing, tree::GetBlocks(conn, head.scope(), row.ino, first,
                                                            last));
  tree::BlockMap updates;
  std::vector<uint8_t> block;
  for (const auto& [idx, chunk] : existing) {
    if (!chunk.has_value()) continue;
    uint64_t block_start = idx * block_size_;
    uint64_t from = std::max(offset, block_start);
    uint64_t to = std::min(end, block_start + block_size_);
    if (from == block_start && to == block_start + block_size_) {
      updates[idx] = std::nullopt;
      continue;
    }
    RETURN_IF_ERROR(LoadBlock(conn, head.scope(), row.ino, idx, &block));
    std::fill(block.begin() + (from - block_start), block.begin() + (to - block_start), 0);
    uint64_t valid = std::min<uint64_t>(block_size_, row.size - block_start);
    ASSIGN_OR_RETURN(updates[idx],
                     StoreBlock(conn, std::span<const uint8_t>(block).first(valid)));
  }
  ASSIGN_OR_RETURN(int64_t delta, tree::PutBlocks(conn, head, row.ino, updates));
  row.nblocks = static_cast<uint64_t>(static_cast<int64_t>(row.nblocks) + delta);
  return Status::Ok();
}

Status FilesystemImpl::Truncate(sql::Connection& conn, tree::Head head, tree::InodeRow& row,
                                uint64_t size) {
  if (size < row.size) {
    // Bytes past the new end must read as zeros if the file grows again:
    // whole blocks go, the tail block is stored trimmed.
    uint64_t first_dropped = (size + block_size_ - 1) / block_size_;
    ASSIGN_OR_RETURN(int64_t delta, tree::DropBlocksFrom(conn, head, row.ino, first_dropped));
    row.nblocks = static_cast<uint64_t>(static_cast<int64_t>(row.nblocks) + delta);
    if (size % block_size_ != 0) {
      uint64_t idx = size / block_size_;
      std::vector<uint8_t> block;
      RETURN_IF_ERROR(LoadBlock(conn, head.scope(), row.ino, idx, &block));
      tree::BlockMap update;
      ASSIGN_OR_RETURN(update[idx], StoreBlock(conn, std::span<const uint8_t>(block).first(
                                                         size % block_size_)));
      ASSIGN_OR_RETURN(int64_t d, tree::PutBlocks(conn, head, row.ino, update));
      row.nblocks = static_cast<uint64_t>(static_cast<int64_t>(row.nblocks) + d);
    }
  }
  row.size = size;
  return Status::Ok();
}

Status FilesystemImpl::Fallocate(InodeId ino, int mode, uint64_t offset, uint64_t length) {
  if (read_only()) return ReadOnly("snapshot views are read-only");
  if (length == 0) return InvalidArgument("fallocate length is zero");
  if (offset > kMaxFileSize || length > kMaxFileSize - offset) {
    return Status(Code::kFileTooBig, "fallocate past the maximum file size");
  }
  RETURN_IF_ERROR(Materialize(ino));
  const bool keep_size = (mode & FALLOC_FL_KEEP_SIZE) != 0;
  const int op = mode & ~FALLOC_FL_KEEP_SIZE;
  if (op == FALLOC_FL_PUNCH_HOLE && !keep_size) {
    return Status(Code::kNotSupported, "punching a hole requires FALLOC_FL_KEEP_SIZE");
  }
  if (op != 0 && op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE) {
    return Status(Code::kNotSupported, "unsupported fallocate mode");
  }
  RETURN_IF_ERROR(FlushPending(ino, catalog::Commit::kBatched));
  return Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), ino));
    RETURN_IF_ERROR(CheckRegular(row));
    int64_t now = core_->Now();
    if (op != 0) {
      RETURN_IF_ERROR(ZeroRange(conn, head, row, offset, length));
      row.mtime_ns = row.ctime_ns = now;
    }
    if (!keep_size && offset + length > row.size) {
      RETURN_IF_ERROR(CountResize(ino, row.size, offset + length));
      row.size = offset + length;
      row.mtime_ns = row.ctime_ns = now;
    }
    return tree::PutInode(conn, head, row);
  });
}

Result<size_t> FilesystemImpl::CopyRange(InodeId in, uint64_t in_offset, InodeId out,
                                         uint64_t out_offset, uint64_t length) {
  if (read_only()) return ReadOnly("snapshot views are read-only");
  RETURN_IF_ERROR(Materialize(in));
  RETURN_IF_ERROR(Materialize(out));
  ASSIGN_OR_RETURN(Attr in_attr, GetAttr(in));
  ASSIGN_OR_RETURN(Attr out_attr, GetAttr(out));
  if (S_ISDIR(in_attr.mode) || S_ISDIR(out_attr.mode)) return IsDir("cannot copy a directory");
  if (!S_ISREG(in_attr.mode) || !S_ISREG(out_attr.mode)) {
    return InvalidArgument("copy_file_range needs regular files");
  }
  if (in_offset >= in_attr.size || length == 0) return size_t{0};
  length = std::min(length, in_attr.size - in_offset);
  if (out_offset > kMaxFileSize || length > kMaxFileSize - out_offset) {
    return Status(Code::kFileTooBig, "copy past the maximum file size");
  }
  if (in == out && in_offset < out_offset + length && out_offset < in_offset + length) {
    return InvalidArgument("overlapping ranges of one file");
  }
  RETURN_IF_ERROR(CountResize(out, out_attr.size, out_offset + length, /*grow_only=*/true));
  // Whole output blocks whose source is a whole block too are shared; the
  // bytes before (lead) and after them are copied.
  uint64_t lead = length;
  uint64_t shared = 0;
  if (in_offset % block_size_ == out_offset % block_size_) {
    lead = std::min(length, (block_size_ - out_offset % block_size_) % block_size_);
    shared = (length - lead) / block_size_;
  }
  RETURN_IF_ERROR(CopyBytes(in, in_offset, out, out_offset, lead));
  if (shared > 0) {
    RETURN_IF_ERROR(FlushPending(in, catalog::Commit::kBatched));
    RETURN_IF_ERROR(FlushPending(out, catalog::Commit::kBatched));
    RETURN_IF_ERROR(ShareBlocks(in, (in_offset + lead) / block_size_, out,
                                (out_offset + lead) / block_size_, shared));
  }
  const uint64_t done = lead + shared * block_size_;
  RETURN_IF_ERROR(CopyBytes(in, in_offset + done, out, out_offset + done, length - done));
  return static_cast<size_t>(length);
}

Status FilesystemImpl::CopyBytes(InodeId in, uint64_t in_offset, InodeId out,
                                 uint64_t out_offset, uint64_t length) {
  std::vector<uint8_t> piece(std::min<uint64_t>(length, 1 << 20));
  while (length > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(length, piece.size()));
    ASSIGN_OR_RETURN(size_t got, Read(in, in_offset, std::span<uint8_t>(piece).first(want)));
    if (got == 0) break;  // the source shrank meanwhile
    ASSIGN_OR_RETURN(size_t put, Write(out, out_offset, std::span<const uint8_t>(piece).first(got)));
    in_offset += got;
    out_offset += put;
    length -= got;
  }
  return Status::Ok();
}

Status FilesystemImpl::ShareBlocks(InodeId in, uint64_t in_first, InodeId out, uint64_t out_first,
                                   uint64_t count) {
  return Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), out));
    RETURN_IF_ERROR(CheckRegular(row));
    ASSIGN_OR_RETURN(tree::BlockMap source,
                     tree::GetBlocks(conn, head.scope(), in, in_first, in_first + count - 1));
    tree::BlockMap updates;
    for (uint64_t i = 0; i < count; ++i) {
      auto it = source.find(in_first + i);
      updates[out_first + i] = it == source.end() ? std::nullopt : it->second;
    }
    ASSIGN_OR_RETURN(int64_t delta, tree::PutBlocks(conn, head, out, updates));
    row.nblocks = static_cast<uint64_t>(static_cast<int64_t>(row.nblocks) + delta);
    row.size = std::max(row.size, (out_first + count) * block_size_);
    row.mtime_ns = row.ctime_ns = core_->Now();
    return tree::PutInode(conn, head, row);
  });
}

}  // namespace strata::fs
