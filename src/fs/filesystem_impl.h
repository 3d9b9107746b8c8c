// FilesystemImpl: the Filesystem interface over the versioned rows of one
// branch. Namespace operations live in namespace_ops.cc, file data in
// file_ops.cc, extended attributes in xattr_ops.cc.
//
// Every mutation is one write transaction on the store's writer connection,
// at the branch's head version (read inside the transaction, so a snapshot
// taken by another process is honoured). Reads use pooled reader connections
// and overlay the write buffer.
//
// Lock order: store writer lock -> open_mu_ -> WriteBuffer's mutex.
#ifndef STRATA_FS_FILESYSTEM_IMPL_H_
#define STRATA_FS_FILESYSTEM_IMPL_H_

#include <functional>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "fs/core.h"
#include "fs/flush_queue.h"
#include "fs/pending_flush.h"
#include "fs/write_buffer.h"
#include "strata/filesystem.h"
#include "tree/rows.h"

namespace strata::fs {

class FilesystemImpl final : public Filesystem, public FlushSource {
 public:
  // A writable filesystem over the head of `view.branch`, or a read-only one
  // over a past version.
  static Result<std::unique_ptr<FilesystemImpl>> Open(std::shared_ptr<StoreCore> core, View view);
  ~FilesystemImpl() override;

  View view() const override { return view_; }
  bool read_only() const override { return !view_.is_head(); }

  Result<Attr> Lookup(InodeId parent, std::string_view name) override;
  Result<Attr> GetAttr(InodeId ino) override;
  Result<Attr> SetAttr(InodeId ino, const AttrChanges& changes) override;
  Result<Attr> MkNod(InodeId parent, std::string_view name, uint32_t mode, uint64_t rdev,
                     Cred cred) override;
  Result<Attr> MkDir(InodeId parent, std::string_view name, uint32_t mode, Cred cred) override;
  Result<Attr> Symlink(InodeId parent, std::string_view name, std::string_view target,
                       Cred cred) override;
  Result<std::string> ReadLink(InodeId ino) override;
  Result<Attr> Link(InodeId ino, InodeId new_parent, std::string_view new_name) override;
  Status Unlink(InodeId parent, std::string_view name) override;
  Status RmDir(InodeId parent, std::string_view name) override;
  Status Rename(InodeId parent, std::string_view name, InodeId new_parent,
                std::string_view new_name, unsigned flags) override;
  Result<std::vector<DirEntry>> ReadDir(InodeId ino) override;

  Result<Attr> Create(InodeId parent, std::string_view name, uint32_t mode, Cred cred) override;
  Status Open(InodeId ino) override;
  Status Release(InodeId ino) override;
  Result<size_t> Read(InodeId ino, uint64_t offset, std::span<uint8_t> out) override;
  Result<size_t> Write(InodeId ino, uint64_t offset, std::span<const uint8_t> data) override;
  Status Flush(InodeId ino) override;
  void FlushLater(InodeId ino) override;
  std::vector<InodeId> OpenInodes() override;
  Status Fsync(InodeId ino) override;
  Status FlushAll() override;
  Status Fallocate(InodeId ino, int mode, uint64_t offset, uint64_t length) override;
  Result<Attr> AddHostEntry(InodeId parent, std::string_view name, const std::string& root,
                            const std::string& rel, bool copy, int64_t taken_ns) override;
  void SetGrowthLimit(std::optional<uint64_t> bytes) override;
  Result<size_t> CopyRange(InodeId in, uint64_t in_offset, InodeId out, uint64_t out_offset,
                           uint64_t length) override;

  Status SetXattr(InodeId ino, std::string_view name, std::string_view value, int flags) override;
  Result<std::string> GetXattr(InodeId ino, std::string_view name) override;
  Result<std::vector<std::string>> ListXattr(InodeId ino) override;
  Status RemoveXattr(InodeId ino, std::string_view name) override;

  Result<FsStats> StatFs() override;
  Result<Attr> Resolve(std::string_view path, bool follow_last) override;

  // FlushSource, for PendingFlush (call with the writer lock held).
  BranchId branch() const override { return view_.branch; }
  WriteBuffer& buffer() override { return buffer_; }
  Status WriteItems(sql::Connection& conn, tree::Head head,
                    const std::vector<FlushItem>& items) override;

 private:
  // One attempt of Lookup (see there).
  Result<Attr> LookupOnce(InodeId parent, std::string_view name);
  using WriteFn = std::function<Status(sql::Connection&, tree::Head)>;
  using ReadFn = std::function<Status(sql::Connection&, tree::Scope)>;

  FilesystemImpl(std::shared_ptr<StoreCore> core, View view);

  // Expands `ino` first if it is a host entry of this view's host base not
  // expanded yet (fs/host_entries.h): call it before reading or changing a
  // directory's entries or a file's blocks. Commits the expansion at once,
  // even in a read-only view (it changes no view).
  Status Materialize(InodeId ino);
  // Materializes `parent` and, if `name` in it is a directory, that
  // directory too (whose emptiness a removal or a rename over it checks).
  Status MaterializeEntry(InodeId parent, std::string_view name);

  // Runs `fn` in one write transaction at the head version and commits.
  Status Mutate(const WriteFn& fn);
  // Writes pending data of `ino` (every inode when nullopt) into the store,
  // committed as `commit` says.
  Status FlushPending(std::optional<InodeId> ino, catalog::Commit commit);
  // Runs `fn` on a reader connection at this filesystem's scope.
  Status Query(const ReadFn& fn);
  tree::Scope scope() const { return {view_.branch, view_.version}; }

  // The inode's attributes with buffered writes laid over.
  Attr MakeAttr(const tree::InodeRow& row, const PendingView& pending) const;
  Result<tree::InodeRow> LoadInode(sql::Connection& conn, tree::Scope scope, InodeId ino);
  Result<tree::InodeRow> LoadDir(sql::Connection& conn, tree::Scope scope, InodeId ino);
  // Creates an inode and names it; shared by MkNod, MkDir, Symlink, Create.
  Result<Attr> MakeNode(InodeId parent, std::string_view name, uint32_t mode, uint64_t rdev,
                        std::string_view target, Cred cred, bool open);
  // Sets mtime and ctime of `dir` to now and adds `nlink_delta` to its links.
  Status TouchDir(sql::Connection& conn, tree::Head head, InodeId dir, int nlink_delta,
                  int64_t now);
  // Removes one name's link to `ino`; deletes or orphans the inode at zero.
  Status DropLink(sql::Connection& conn, tree::Head head, const tree::InodeRow& row, int64_t now);
  // Writes the file's content range [offset, offset+len) as zeros, or as holes
  // where whole blocks are covered. Requires the inode's buffer flushed.
  Status ZeroRange(sql::Connection& conn, tree::Head head, tree::InodeRow& row, uint64_t offset,
                   uint64_t length);
  // Copies bytes through a buffer (Read, then Write), in pieces.
  Status CopyBytes(InodeId in, uint64_t in_offset, InodeId out, uint64_t out_offset,
                   uint64_t length);
  // Points `count` whole blocks of `out` from `out_first` at the chunks of
  // `in`'s blocks from `in_first` (holes stay holes). Buffers must be flushed.
  Status ShareBlocks(InodeId in, uint64_t in_first, InodeId out, uint64_t out_first,
                     uint64_t count);
  // Sets the file size, dropping or trimming blocks past it.
  Status Truncate(sql::Connection& conn, tree::Head head, tree::InodeRow& row, uint64_t size);
  // Stores one block's bytes (trimmed to the file size) and returns its chunk,
  // or nullopt when it is all zeros.
  Result<std::optional<chunks::ChunkId>> StoreBlock(sql::Connection& conn,
                                                    std::span<const uint8_t> bytes,
                                                    const chunks::Encoded* encoded = nullptr);
  // Hashes and compresses the pending whole blocks of `ino` among
  // first..last, without any lock but the buffer's, so that the flush that
  // stores them (under the writer lock) does not have to.
  void EncodeWholeBlocks(InodeId ino, uint64_t first, uint64_t last);
  // The stored bytes of block idx (zeros where there is a hole), block_size long.
  Status LoadBlock(sql::Connection& conn, tree::Scope scope, InodeId ino, uint64_t idx,
                   std::vector<uint8_t>* out);
  bool IsOpen(InodeId ino);
  // If `ino` is open, notes that its last Release may have to delete it and
  // returns true.
  bool MarkOrphanIfOpen(InodeId ino);
  Status IsAncestor(sql::Connection& conn, tree::Scope scope, InodeId maybe_ancestor,
                    InodeId dir, bool* result);

  const std::shared_ptr<StoreCore> core_;
  const View view_;
  const uint32_t block_size_;
  // The host base this view reads through (the root of its levels), or 0.
  BranchId host_base_ = 0;
  WriteBuffer buffer_;
  std::mutex open_mu_;
  // --- The growth limit (SetGrowthLimit). Sizes change under Mutate, the
  // counter outside it: a transaction that fails after counting leaves the
  // count slightly high, never low.
  // Counts `ino` going from `current` (or the size counted for it while
  // open, if larger) to `new_size`; NoSpace if that passes the limit. With
  // `grow_only`, a smaller `new_size` (a write inside the file) counts nothing.
  Status CountResize(InodeId ino, uint64_t current, uint64_t new_size, bool grow_only = false);
  // Counts a file of `size` bytes leaving the tree.
  void CountRemoved(uint64_t size);
  std::atomic<int64_t> growth_{0};
  std::atomic<int64_t> growth_limit_{-1};  // -1: no limit

  struct OpenFile {
    int count = 0;
    // Write skips its type check for open regular files only (an open
    // directory must still be refused).
    bool regular = true;
    // Its last name went while open (or a transaction that removed it was
    // tried): the last Release checks whether it must be deleted.
    bool maybe_orphan = false;
    // The file's size as the growth limit has counted it (see GrowthLimit).
    uint64_t known_size = 0;
  };
  std::map<InodeId, OpenFile> open_files_;  // guarded by open_mu_
  // Declared last: its thread calls into everything above, so it stops first.
  // kFlushEverything (never an inode number) queues a flush of every inode.
  static constexpr InodeId kFlushEverything = 0;
  FlushQueue flush_queue_;
};

}  // namespace strata::fs

#endif  // STRATA_FS_FILESYSTEM_IMPL_H_
