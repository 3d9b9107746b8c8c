// Read layers: forks of any depth read through a bounded number of levels.
//
// A branch's `ancestry` rows are the levels a read visits: the branch itself
// (depth 0), then (ancestor, limit) pairs down to the root of its lineage.
// A fork adds one level, and each level costs a read one more index seek. So
// once a branch has more than kMaxReadLevels levels, compaction replaces the
// deepest levels between it and its root with one *layer*: a hidden branch
// (listed in `layers`) whose rows at one version are the winning rows of
// those levels, tombstones included. A read then sees exactly what it saw
// before.
//
// A layer version materializes one frozen view (branch, version) without its
// root level, and `layer_views` remembers which, so that a branch whose
// levels reach the same view reuses the layer instead of copying again (the
// siblings of a fork). A layer grows in place: compacting the levels above a
// layer's newest version writes only their winners, at the layer's next
// version, so a chain of N forks copies each level's rows O(1) times. Older
// versions of the layer stay as they were for the branches that read them.
//
// The logical lineage (branches.parent) is never changed: history, bundle
// export and fsck follow it (catalog::Lineage). Only reads and diff use the
// levels. A layer never holds its lineage's root, so an image's rows (the
// host base) are never copied.
#ifndef STRATA_CATALOG_LAYERS_H_
#define STRATA_CATALOG_LAYERS_H_

#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::catalog {

// A branch with more levels than this is compacted (see above), to three
// (itself, a layer, its root) or four (with its parent above the layer).
inline constexpr int kMaxReadLevels = 4;

// The number of levels (ancestry rows) of `branch`.
Result<int> ReadLevels(sql::Connection& conn, BranchId branch);

// Compacts `branch`'s levels if it has more than kMaxReadLevels; returns
// whether it did. One call is one unit of work for one write transaction:
// it copies the winning rows of the levels it absorbs (none when a layer of
// the same view exists), so its cost follows the rows written in those
// levels, not the depth or the size of the tree.
Result<bool> CompactBranch(sql::Connection& conn, BranchId branch, int64_t now_ns);

// Up to `limit` branches (never layers) with more than kMaxReadLevels levels,
// oldest first.
Result<std::vector<BranchId>> BranchesToCompact(sql::Connection& conn, int limit);

// Whether `branch` is a layer.
Result<bool> IsLayer(sql::Connection& conn, BranchId branch);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_LAYERS_H_
