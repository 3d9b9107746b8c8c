// The lazy host base: host directories and regular files that a host base
// names without having read them yet.
//
// A host base (store/host_base.cc) starts as the tops of the exposed host
// trees. Each host directory or regular file it names has a `host_entries`
// row: where it is on the host, its identity, and the base's instant
// `taken_ns`. The first time a filesystem of a session on that base needs a
// directory's entries or a file's blocks, ExpandHostEntry writes them as
// rows of the base branch at its frozen version, in their own transaction.
// No view can have seen them before (every Filesystem operation that reads
// or changes a directory's entries, or a file's blocks, expands it first),
// so adding them changes no answer any view gave.
//
// The host is what it was at `taken_ns`, or an error: an entry whose host
// file or directory changed after that instant (its ctime is newer, or it is
// another file now) is not expanded, and the operation fails with IoError,
// as a read of a host file changed in place always has.
#ifndef STRATA_FS_HOST_ENTRIES_H_
#define STRATA_FS_HOST_ENTRIES_H_

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fs/core.h"
#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"
#include "tree/rows.h"

namespace strata::fs {

// The host path `rel` under `root` ("/" or a directory without a trailing
// slash); `root` itself when `rel` is empty.
std::string HostPathOf(const std::string& root, const std::string& rel);

struct HostEntry {
  BranchId base = 0;  // the host base's branch
  InodeId ino = 0;    // the entry's inode in that branch
  std::string root;   // the host root the base was taken from ("/" normally)
  std::string rel;    // its path under `root`, e.g. "usr/lib"
  uint64_t dev = 0;   // identity of the host file when the base named it
  uint64_t host_ino = 0;
  int64_t taken_ns = 0;   // the base's instant: a newer ctime means "changed"
  bool copy = false;      // a file's bytes are copied, not referred to
  bool expanded = false;  // its entries (or blocks) are rows of the base

  std::string HostPath() const;
};

// A tree of the host that a host base exposes, relative to the host root:
// the tops a base starts with. Files under the trees with `copy` set are
// copied instead of referred to, so that the host editing them in place (as
// it does /etc, and dpkg and apt their state) does not disturb sessions.
struct ExposedTree {
  const char* path;
  bool copy;
};
std::span<const ExposedTree> ExposedTrees();

// Whether the host path `rel` (under the root), as lstat describes it, is
// exposed by a host base: inside an exposed tree (no "." or ".." parts),
// world-readable directories, files and symlinks, and FIFOs; never the
// secrets of /etc (shadow, SSH host keys).
bool HostPathExposed(const std::string& rel, const struct stat& st);
// The part of HostPathExposed that depends on the name alone.
bool HostNameExposed(const std::string& rel);

// The host base that `branch` reads through (the root of its levels), or 0.
Result<BranchId> HostBaseOf(sql::Connection& conn, BranchId branch);

Result<std::optional<HostEntry>> GetHostEntry(sql::Connection& conn, BranchId base,
                                              InodeId ino);

// Writes the rows naming one host path as `name` in directory `parent` at
// `head`: its inode (the host's mode, owner, times, size; a directory keeps
// the host's link count), its entry, and for a directory or regular file its
// `host_entries` row, unexpanded. `proto` gives base, root, rel, taken_ns
// and copy; `st` is the path's lstat. NotFound if the path is not exposed;
// IoError if it changed after `proto.taken_ns`.
Result<tree::InodeRow> AddHostChild(sql::Connection& conn, StoreCore& core, tree::Head head,
                                    InodeId parent, const std::string& name,
                                    const HostEntry& proto, const struct stat& st);

// Expands `entry` (not yet expanded) as rows of its base at `version` (the
// base's frozen version) and marks it expanded: a directory's exposed
// entries, or a regular file's blocks (references to the host file, or its
// copied bytes). IoError, writing nothing, if the host changed. Runs inside
// the caller's write transaction.
Status ExpandHostEntry(sql::Connection& conn, StoreCore& core, Version version,
                       const HostEntry& entry);

// Up to `limit` entries of host base `base` not expanded yet, with inode
// numbers above `after`, in order. Expanding an entry names new ones with
// higher numbers, so one pass from 0 meets every entry the base will ever
// have.
Result<std::vector<HostEntry>> UnexpandedHostEntries(sql::Connection& conn, BranchId base,
                                                     InodeId after, int limit);

}  // namespace strata::fs

#endif  // STRATA_FS_HOST_ENTRIES_H_
