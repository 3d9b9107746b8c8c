// Filesystem: the POSIX view of one branch of a store, addressed by inode
// number, shaped after the FUSE low-level API but independent of it.
//
// Errors are POSIX errors (Status codes map one-to-one to errno). Permission
// checks are not made here: the caller (the kernel with default_permissions,
// or a tool) decides who may do what; ownership of new inodes comes from Cred,
// except that a set-group-ID directory gives new entries its group (and new
// subdirectories the set-group-ID bit).
//
// Thread safety: every method may be called from any thread concurrently.
// Writes are buffered per inode in memory and committed in batches; Fsync and
// Flush commit, and Fsync makes the commit durable before it returns.
#ifndef STRATA_FILESYSTEM_H_
#define STRATA_FILESYSTEM_H_

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "strata/status.h"
#include "strata/types.h"

namespace strata {

class Filesystem {
 public:
  virtual ~Filesystem() = default;
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  virtual View view() const = 0;
  virtual bool read_only() const = 0;

  // --- Names.
  // "." and ".." resolve to the directory and its parent.
  virtual Result<Attr> Lookup(InodeId parent, std::string_view name) = 0;
  virtual Result<Attr> GetAttr(InodeId ino) = 0;
  // Changing size truncates or extends (with a hole). ctime becomes now
  // unless given.
  virtual Result<Attr> SetAttr(InodeId ino, const AttrChanges& changes) = 0;
  // mode carries the type: S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK.
  virtual Result<Attr> MkNod(InodeId parent, std::string_view name, uint32_t mode, uint64_t rdev,
                             Cred cred) = 0;
  virtual Result<Attr> MkDir(InodeId parent, std::string_view name, uint32_t mode, Cred cred) = 0;
  virtual Result<Attr> Symlink(InodeId parent, std::string_view name, std::string_view target,
                               Cred cred) = 0;
  virtual Result<std::string> ReadLink(InodeId ino) = 0;
  virtual Result<Attr> Link(InodeId ino, InodeId new_parent, std::string_view new_name) = 0;
  virtual Status Unlink(InodeId parent, std::string_view name) = 0;
  virtual Status RmDir(InodeId parent, std::string_view name) = 0;
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (from <linux/fs.h>).
  virtual Status Rename(InodeId parent, std::string_view name, InodeId new_parent,
                        std::string_view new_name, unsigned flags) = 0;
  // Every entry of a directory, "." and ".." first, in a stable order. An
  // entry's offset is the position after it: entries with offset > k are the
  // ones that follow a reader that stopped at k.
  virtual Result<std::vector<DirEntry>> ReadDir(InodeId ino) = 0;

  // --- Open files. An inode whose last name is removed while it is open
  // stays readable and writable until the last Release.
  // Creates a regular file and opens it (EEXIST if the name exists).
  virtual Result<Attr> Create(InodeId parent, std::string_view name, uint32_t mode, Cred cred) = 0;
  virtual Status Open(InodeId ino) = 0;
  virtual Status Release(InodeId ino) = 0;
  // Reads up to out.size() bytes at offset; returns the count (0 at or past
  // end of file). Holes read as zeros.
  virtual Result<size_t> Read(InodeId ino, uint64_t offset, std::span<uint8_t> out) = 0;
  virtual Result<size_t> Write(InodeId ino, uint64_t offset, std::span<const uint8_t> data) = 0;
  // Commits this inode's buffered data, and every change made before, to
  // the store (not durably): other connections see it from now on.
  virtual Status Flush(InodeId ino) = 0;
  // Queues this inode's buffered data to be written into the store by a
  // background thread, within milliseconds; a failure leaves the data
  // buffered and is reported by the next Fsync. For close(2).
  virtual void FlushLater(InodeId ino) = 0;
  // The inodes open now (each once), in no particular order.
  virtual std::vector<InodeId> OpenInodes() = 0;
  // Commits this inode's buffered writes durably.
  virtual Status Fsync(InodeId ino) = 0;
  // Commits every buffered write of this filesystem (not necessarily durably).
  virtual Status FlushAll() = 0;
  // mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|FALLOC_FL_KEEP_SIZE,
  // FALLOC_FL_ZERO_RANGE (optionally with KEEP_SIZE). Others: NotSupported.
  virtual Status Fallocate(InodeId ino, int mode, uint64_t offset, uint64_t length) = 0;
  // Copies up to `length` bytes of `in` at `in_offset` to `out` at
  // `out_offset` (copy_file_range(2)); returns the count, 0 at or past the
  // end of `in`. Whole blocks at the same offset within a block in both
  // files are shared (the copy refers to the same chunks: no data is read,
  // written or stored again); the rest is copied. Overlapping ranges of one
  // file are InvalidArgument.
  virtual Result<size_t> CopyRange(InodeId in, uint64_t in_offset, InodeId out,
                                   uint64_t out_offset, uint64_t length) = 0;

  // --- Extended attributes. flags: 0, XATTR_CREATE or XATTR_REPLACE.
  virtual Status SetXattr(InodeId ino, std::string_view name, std::string_view value,
                          int flags) = 0;
  virtual Result<std::string> GetXattr(InodeId ino, std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListXattr(InodeId ino) = 0;
  virtual Status RemoveXattr(InodeId ino, std::string_view name) = 0;

  virtual Result<FsStats> StatFs() = 0;

  // Names the host path `root`/`rel` as `name` in `parent`, as it is now,
  // without reading it (a host base; see README.md). A directory's entries
  // and a regular file's blocks become rows the first time a session on this
  // base needs them, and only if the host path has not changed since
  // `taken_ns` (IoError otherwise); a file's blocks refer to the host file
  // then, or under a `copy` tree hold its bytes. NotFound if the path is not
  // exposed (not world-readable, a secret, a socket or device).
  virtual Result<Attr> AddHostEntry(InodeId parent, std::string_view name,
                                    const std::string& root, const std::string& rel, bool copy,
                                    int64_t taken_ns) = 0;

  // From now on, refuses with NoSpace any write, truncation or allocation
  // that would make the total size of the files grow by more than `bytes`
  // beyond what it is now. Net: removing or shrinking files gives room back.
  // nullopt removes the limit. (Sizes are logical: holes count.)
  virtual void SetGrowthLimit(std::optional<uint64_t> bytes) = 0;

  // --- Conveniences for tools and tests (not used by the FUSE adapter).
  // Resolves an absolute or root-relative path, following symlinks in every
  // component and, if follow_last, in the last one (ELOOP after 40).
  virtual Result<Attr> Resolve(std::string_view path, bool follow_last = true) = 0;

 protected:
  Filesystem() = default;
};

}  // namespace strata

#endif  // STRATA_FILESYSTEM_H_
