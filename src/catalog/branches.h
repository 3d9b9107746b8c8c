// Branches, their ancestry, sessions and snapshots: the catalog of timelines.
//
// A branch is a timeline (id, parent, parent_version, head_version). Its state
// at version v is its own rows with vfrom <= v, falling back to the parent's
// state at parent_version, and so on up: that chain is its lineage. The
// `ancestry` table lists, for each branch, the levels one join reads to
// resolve a key: itself (depth 0, no limit), then (ancestor, limit) pairs
// that give the same state as the lineage. Up to kMaxReadLevels they are the
// lineage itself; deeper chains are compacted into a layer (layers.h).
//
// Every function here takes a connection; the writing ones must run inside a
// write transaction.
#ifndef STRATA_CATALOG_BRANCHES_H_
#define STRATA_CATALOG_BRANCHES_H_

#include <string_view>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::catalog {

Result<BranchId> CreateRootBranch(sql::Connection& conn, int64_t now_ns);
// A new branch seeing `parent` at `version` (which must be a frozen version:
// below the parent's head).
Result<BranchId> CreateChildBranch(sql::Connection& conn, BranchId parent, Version version,
                                   int64_t now_ns);
Result<BranchInfo> GetBranch(sql::Connection& conn, BranchId branch);
Result<Version> HeadVersion(sql::Connection& conn, BranchId branch);
// Freezes the head: returns the frozen version and starts head+1.
Result<Version> FreezeHead(sql::Connection& conn, BranchId branch);
// The levels a read of `view` visits: (ancestor, limit) pairs, shallowest
// first. Past kMaxReadLevels they may be compacted into a layer (see
// catalog/layers.h), so use this for reads and Diff, and Lineage for history.
Result<std::vector<std::pair<BranchId, Version>>> Ancestry(sql::Connection& conn, View view);
// The lineage of `view` through parent pointers: the view itself, its
// parent at the fork version, and so on to the root. O(depth).
Result<std::vector<std::pair<BranchId, Version>>> Lineage(sql::Connection& conn, View view);

Status InsertSession(sql::Connection& conn, std::string_view name, BranchId branch,
                     int64_t now_ns);
// Points the session at `branch`, recording the move in session_branches.
Status SetSessionBranch(sql::Connection& conn, std::string_view name, BranchId branch,
                        int64_t now_ns);
Result<SessionInfo> GetSession(sql::Connection& conn, std::string_view name);
// Files, bytes and activity at the head of `session` (see SessionUsage).
Result<SessionUsage> GetSessionUsage(sql::Connection& conn, std::string_view session);
// Removes the session's name and history; every branch it pointed at becomes
// a dropped branch, whose rows DeleteDroppedBranches reclaims once no other
// branch sees it as an ancestor.
Status DeleteSession(sql::Connection& conn, std::string_view name, int64_t now_ns);
// Deletes every row (tree, kv, calls, snapshots, ancestry) of up to `limit`
// dropped branches that no remaining branch descends from. Returns how many.
// (gc deletes one per transaction, so that the WAL it needs stays small.)
Result<uint64_t> DeleteDroppedBranches(sql::Connection& conn, uint64_t limit);
Result<std::vector<SessionInfo>> ListSessions(sql::Connection& conn);
// Every branch `name` has pointed at, newest first.
Result<std::vector<BranchId>> SessionBranches(sql::Connection& conn, std::string_view name);

Result<int64_t> InsertSnapshot(sql::Connection& conn, BranchId branch, Version version,
                               std::string_view name, int64_t now_ns);
Result<std::vector<SnapshotInfo>> ListSnapshots(sql::Connection& conn, BranchId branch);
Result<SnapshotInfo> FindSnapshot(sql::Connection& conn, BranchId branch, std::string_view name);
// Whether any branch has a snapshot called `name`.
Result<bool> SnapshotNameUsed(sql::Connection& conn, std::string_view name);

// Session names: 1-128 bytes of [A-Za-z0-9._-], not starting with '.' or '-'.
Status ValidateSessionName(std::string_view name);
// The same rules for other names; `what` ("image", ...) starts the messages.
Status ValidateName(std::string_view what, std::string_view name);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_BRANCHES_H_
