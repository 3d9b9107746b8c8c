// Integrity check and repair of a whole store (`strata fsck`).
#ifndef STRATA_FS_INTEGRITY_H_
#define STRATA_FS_INTEGRITY_H_

#include <set>
#include <vector>

#include "chunks/chunk_store.h"
#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::fs {

// Checks, reading through `conn` (one transaction, so one state):
// - SQLite's own structure (PRAGMA quick_check);
// - the catalog: every branch's parent exists and was frozen where the
//   branch forked, the parent chain ends (no cycle) and the flattened
//   `ancestry` rows match it; every snapshot, image, session and tool call
//   names an existing branch and a frozen version of it;
// - chunks: every block and every call_output row references an existing
//   chunk, and every chunk decodes to its recorded size and hashes to its
//   key (host references: the host file still has its size and mtime);
// - every addressable tree (each branch's head, and each version a
//   snapshot, image, tool call or fork names): entries point at live
//   inodes of their type, directory parent pointers and link counts match,
//   no directory is its own ancestor, file link counts equal their names;
// - orphans: rows of `orphans` name unlinked inodes; an orphan of a branch
//   not in `live_branches` (served by a process now) is left over from a
//   process that ended with the file open, and is reported.
// Each problem names the session, snapshot or image it affects, and the path.
Result<std::vector<IntegrityProblem>> CheckStoreIntegrity(sql::Connection& conn,
                                                          chunks::ChunkStore& chunks,
                                                          const std::set<BranchId>& live_branches);

// Fixes the repairable problems in `problems` (see IntegrityProblem), in
// the caller's write transaction: deletes orphans and nameless unlinked
// inodes (what reopening their branch would do), drops entries that name no
// inode, and sets link counts to the number of names. Writes only to
// branch heads; snapshots are history and stay as they are.
Status RepairProblems(sql::Connection& conn, const std::vector<IntegrityProblem>& problems);

}  // namespace strata::fs

#endif  // STRATA_FS_INTEGRITY_H_
