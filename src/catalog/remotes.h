// Remotes: named S3 locations that sessions are pushed to and pulled from.
// Rows of `remotes`; credentials are never stored. Writing functions must
// run inside a write transaction.
#ifndef STRATA_CATALOG_REMOTES_H_
#define STRATA_CATALOG_REMOTES_H_

#include <string_view>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::catalog {

// Exists if the name is taken.
Status InsertRemote(sql::Connection& conn, const RemoteInfo& remote);
Result<RemoteInfo> GetRemote(sql::Connection& conn, std::string_view name);
Result<std::vector<RemoteInfo>> ListRemotes(sql::Connection& conn);
// NotFound if there is none of that name.
Status DeleteRemote(sql::Connection& conn, std::string_view name);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_REMOTES_H_
