// Checks of one view of a filesystem tree (a branch at a version limit):
// every entry points at a live inode of its type, directories' parent
// pointers and link counts match their entries, no directory is its own
// ancestor, every file's nlink equals its names.
//
// A store holds many views that mostly share their rows (every session forked
// from one image, every snapshot of a session), so checking each whole tree
// would cost views x tree size. Instead the first view of a root branch is
// walked whole, and every other view is checked only where it differs from a
// view checked before it: its base (the previous version of its branch, or
// the version of the parent it was forked from). A problem a view inherits
// unchanged from its base is reported once, at the base.
#ifndef STRATA_FS_TREE_CHECK_H_
#define STRATA_FS_TREE_CHECK_H_

#include <optional>
#include <string>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"
#include "tree/rows.h"

namespace strata::fs {

// One view to check, with the label problems carry ("session S",
// "S@3", "image host").
struct CheckedView {
  tree::Scope scope;
  std::string where;
  bool head = false;  // the branch's head: repairs may write here
  // Whether orphans of this branch are not problems: files open now (a
  // daemon or this process serves the branch), or a head nothing reopens.
  bool live = false;
};

// Walks the whole tree of `view` from the root.
Status CheckWholeTree(sql::Connection& conn, const CheckedView& view,
                      std::vector<IntegrityProblem>* problems);

// Checks `view` where it differs from `base` (nullopt: an empty tree), given
// that base was checked: the entries and inodes `view.scope.branch` wrote in
// versions (since, view.scope.limit], and everything they point at or were
// pointed at by.
Status CheckTreeDelta(sql::Connection& conn, const CheckedView& view,
                      std::optional<tree::Scope> base, Version since,
                      std::vector<IntegrityProblem>* problems);

// Orphans of a head view: each must be an existing inode without links; if
// the branch is not live, each is reported (repairable: deleting it is what
// opening the branch would do).
Status CheckOrphans(sql::Connection& conn, const CheckedView& view,
                    std::vector<IntegrityProblem>* problems);

// The path of `ino` in `scope`, best effort ("?" for parts it cannot name).
Result<std::string> PathOf(sql::Connection& conn, tree::Scope scope, InodeId ino);

}  // namespace strata::fs

#endif  // STRATA_FS_TREE_CHECK_H_
