// The pieces every versioned read shares (internal to the tree library):
// the join that keeps the rows visible at a Scope, and the walk that picks
// the winning row of each key.
#ifndef STRATA_TREE_VERSIONED_H_
#define STRATA_TREE_VERSIONED_H_

#include "sql/database.h"
#include "strata/status.h"
#include "tree/rows.h"

// Joins the rows `r` of a versioned table to the ancestry of the scope's
// branch (?1), keeping those visible at the scope's limit (?2 for the branch
// itself, the fork point for each ancestor). `key` constrains r's key
// columns. The planner seeks each ancestor's own range of the table's primary
// key; the unary + keeps it from using a (branch, vfrom) index meant for
// Diff, which would scan every row of the branch. Queries order by
// (key, a.depth, r.vfrom DESC): the first row of each key is the visible one.
#define STRATA_VISIBLE(table, key)                                            \
  " FROM ancestry a JOIN " table " r ON r.branch = a.ancestor AND " key       \
  " AND +r.vfrom <= CASE WHEN a.depth = 0 THEN ?2 ELSE a.vlimit END"          \
  " WHERE a.branch = ?1 "

namespace strata::tree::internal {

inline sql::Statement& BindScope(sql::Statement& s, Scope scope) {
  return s.Bind(1, scope.branch).Bind(2, scope.limit);
}

// Walks rows sorted by (key, depth, vfrom DESC) and calls `visit` with the
// first row of each key: the one visible at the scope. `visit` returns
// whether to go on.
template <typename KeyFn, typename Visit>
Status ForEachWinner(sql::Statement& s, KeyFn key_of, Visit visit) {
  bool have_prev = false;
  decltype(key_of(s)) prev{};
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::Ok();
    auto key = key_of(s);
    if (have_prev && key == prev) continue;
    have_prev = true;
    prev = key;
    ASSIGN_OR_RETURN(bool more, visit(s));
    if (!more) return Status::Ok();
  }
}

}  // namespace strata::tree::internal

#endif  // STRATA_TREE_VERSIONED_H_
