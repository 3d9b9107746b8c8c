// A SQLite VFS shim that coalesces the small writes SQLite makes to a WAL file.
//
// SQLite appends every page to the WAL with two pwrite(2)s (a 24-byte frame
// header, then the page), so committing 64 MiB of 4 KiB pages costs 33,000
// system calls. This shim sits on top of the default VFS and, for WAL files
// only, collects contiguous writes in a per-file buffer that goes to the
// real file in large writes.
//
// Contract that keeps this safe: a frame becomes visible to other
// connections only when the committing connection publishes the new WAL
// index header, after it has written the transaction's commit frame. The
// shim writes its buffer through as soon as the commit frame's page has been
// written (recognised by its header's non-zero "database size" field), so
// that write returns any I/O error (ENOSPC, EIO) to the committing statement
// and every committed frame is in the file before any reader can look for
// it. Writes over frames already in the file (SQLite rewrites frame headers
// after such a commit to fix their checksums) go straight through. Reads,
// syncs, truncation, size queries and close of the WAL also write the buffer
// through first. Main database and journal files pass straight
// through.
//
// Large flushes (the bulk of a big transaction) write their block-aligned
// middle with O_DIRECT from the buffer, which is kept aligned with the file
// for that purpose; the partial blocks at either end go through the page
// cache. Where the file system refuses O_DIRECT, everything is buffered.
#ifndef STRATA_SQL_WAL_BUFFER_VFS_H_
#define STRATA_SQL_WAL_BUFFER_VFS_H_

#include <cstddef>
#include <cstdint>

namespace strata::sql {

// The name of the shim VFS, registered (not as the default) on first call.
// Thread-safe. Returns nullptr if registration failed, which callers treat
// as "use the default VFS".
const char* WalBufferVfsName();

// Whether WAL files opened from now on may use O_DIRECT for large flushes
// (the default). Turning it off gives the buffered path that file systems
// without direct I/O take; tests run both.
void SetWalDirectIo(bool enabled);

// Test seam (fault injection, tests/testing/fault_vfs.h). The O_DIRECT
// writes go to a descriptor of the shim's own, below the VFS it wraps, so a
// test VFS would not see them. When a hook is set, each such write calls
// hook(wal_path, fd, data, n, offset) instead of pwrite(2): the hook must
// write all n bytes (to `fd`, or keep them) and return 0, or return the
// errno to fail the write with. nullptr restores pwrite(2). Set it before
// opening connections; it may be called from the shim's writer threads.
using WalDirectWriteHook = int (*)(const char* wal_path, int fd, const void* data, size_t n,
                                   int64_t offset);
void SetWalDirectWriteHook(WalDirectWriteHook hook);

}  // namespace strata::sql

#endif  // STRATA_SQL_WAL_BUFFER_VFS_H_
