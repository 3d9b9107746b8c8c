// Read-only SQL over documented views of a store: the engine of Store::Query
// and `strata sql`.
#ifndef STRATA_STORE_QUERY_H_
#define STRATA_STORE_QUERY_H_

#include <string>
#include <string_view>

#include "strata/status.h"
#include "strata/types.h"

namespace strata {

// Opens its own query-only connection to the store at `path`, defines the
// views (TEMP, so they shadow the tables of the same name), then allows only
// reads: an authorizer refuses every action but SELECT, reading columns,
// functions and recursive queries, so not even `PRAGMA query_only = 0` or
// ATTACH can get through. Runs one statement and returns all its rows.
Result<QueryResult> RunReadOnlyQuery(const std::string& path, std::string_view statement);

}  // namespace strata

#endif  // STRATA_STORE_QUERY_H_
