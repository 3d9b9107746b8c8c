// Giving freed pages back to the file system.
//
// Deleting rows (gc) puts their pages on SQLite's freelist: the store file
// keeps its size and new rows reuse them. A store created with
// auto_vacuum = INCREMENTAL (EnsureSchema sets it on every new store) can
// move its last pages into free slots and cut the file, a bounded number of
// pages per transaction. A store made by an older build must be rewritten
// once (VACUUM) before it can.
#ifndef STRATA_CATALOG_SPACE_H_
#define STRATA_CATALOG_SPACE_H_

#include <cstdint>

#include "sql/database.h"
#include "strata/status.h"

namespace strata::catalog {

struct PageCounts {
  uint64_t page_size = 0;
  uint64_t pages = 0;       // in the file (as of the last commit)
  uint64_t free_pages = 0;  // on the freelist
  bool can_shrink = false;  // auto_vacuum = INCREMENTAL
};

Result<PageCounts> CountPages(sql::Connection& conn);

// Moves up to `pages` free pages to the end of the file and cuts them off,
// inside the caller's write transaction. The WAL it needs is bounded by a
// few times `pages`. The file shrinks when a checkpoint copies the commit.
Status IncrementalVacuum(sql::Connection& conn, uint64_t pages);

// Rewrites the whole store with auto_vacuum = INCREMENTAL (VACUUM), outside
// any transaction. Needs free space of about twice the store's size, and no
// other connection in a transaction.
Status RewriteForIncrementalVacuum(sql::Connection& conn);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_SPACE_H_
