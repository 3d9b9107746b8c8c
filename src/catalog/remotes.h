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
// NotFound if there is none of that name. Forgets its heads too.
Status DeleteRemote(sql::Connection& conn, std::string_view name);

// The remote object (a bundle's key) that session `session` of remote
// `remote` was last pushed as or pulled from here; "" if never.
Result<std::string> GetRemoteHead(sql::Connection& conn, std::string_view remote,
                                  std::string_view session);
Status SetRemoteHead(sql::Connection& conn, std::string_view remote, std::string_view session,
                     std::string_view bundle);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_REMOTES_H_
