// Diff between two views of a store, in time proportional to the rows that
// differ between them (not to the size of the trees).
#ifndef STRATA_FS_DIFF_H_
#define STRATA_FS_DIFF_H_

#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::fs {

// Added, removed and modified paths from `from` to `to`, sorted by path. A
// directory that appears or disappears lists its whole subtree. A directory
// whose only change is its entries (mtime, nlink) is not listed itself.
Result<std::vector<Change>> ComputeDiff(sql::Connection& conn, View from, View to);

}  // namespace strata::fs

#endif  // STRATA_FS_DIFF_H_
