// The key-value state of a branch: JSON values under string keys, versioned
// exactly like the tree (see rows.h): a fork sees its fork point's state, a
// snapshot freezes it, a restore rewinds it. A NULL value is a tombstone.
// Values are stored as given; callers validate and normalize the JSON.
#ifndef STRATA_TREE_KV_H_
#define STRATA_TREE_KV_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "tree/rows.h"

namespace strata::tree {

Result<std::optional<std::string>> GetKv(sql::Connection& conn, Scope scope, std::string_view key);
// Visible keys starting with `prefix`, in byte order, with their values.
Result<std::vector<std::pair<std::string, std::string>>> ListKv(sql::Connection& conn, Scope scope,
                                                                std::string_view prefix);
Status PutKv(sql::Connection& conn, Head head, std::string_view key, std::string_view value);
// Removes a key; NotFound when it is not visible at the head.
Status DeleteKv(sql::Connection& conn, Head head, std::string_view key);

// `text` as minified JSON (SQLite's json()); InvalidArgument when it is not
// valid JSON, is not UTF-8, or escapes an unpaired UTF-16 surrogate.
Result<std::string> NormalizeJson(sql::Connection& conn, std::string_view text);

}  // namespace strata::tree

#endif  // STRATA_TREE_KV_H_
