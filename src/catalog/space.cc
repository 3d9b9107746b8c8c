#include "catalog/space.h"

#include <string>

#include "catalog/schema.h"

namespace strata::catalog {

Result<PageCounts> CountPages(sql::Connection& conn) {
  PageCounts counts;
  ASSIGN_OR_RETURN(int64_t page_size, PragmaInt(conn, "PRAGMA page_size"));
  ASSIGN_OR_RETURN(int64_t pages, PragmaInt(conn, "PRAGMA page_count"));
  ASSIGN_OR_RETURN(int64_t free_pages, PragmaInt(conn, "PRAGMA freelist_count"));
  ASSIGN_OR_RETURN(int64_t auto_vacuum, PragmaInt(conn, "PRAGMA auto_vacuum"));
  counts.page_size = static_cast<uint64_t>(page_size);
  counts.pages = static_cast<uint64_t>(pages);
  counts.free_pages = static_cast<uint64_t>(free_pages);
  counts.can_shrink = auto_vacuum == 2;
  return counts;
}

Status IncrementalVacuum(sql::Connection& conn, uint64_t pages) {
  ASSIGN_OR_RETURN(sql::Statement vacuum,
                   conn.PrepareUncached("PRAGMA incremental_vacuum(" + std::to_string(pages) + ")",
                                        nullptr));
  return vacuum.Run().WithContext("giving free pages back");
}

Status RewriteForIncrementalVacuum(sql::Connection& conn) {
  RETURN_IF_ERROR(conn.Exec("PRAGMA auto_vacuum = INCREMENTAL"));
  return conn.Exec("VACUUM").WithContext("rewriting the store (VACUUM)");
}

}  // namespace strata::catalog
