// Images: named, frozen (branch, version) trees that sessions are forked
// from. Rows of `images`. Writing functions must run inside a write
// transaction.
#ifndef STRATA_CATALOG_IMAGES_H_
#define STRATA_CATALOG_IMAGES_H_

#include <string_view>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::catalog {

// Image names follow the session name rules.
Status InsertImage(sql::Connection& conn, const ImageInfo& image);
Result<ImageInfo> GetImage(sql::Connection& conn, std::string_view name);
Result<std::vector<ImageInfo>> ListImages(sql::Connection& conn);
// Removes the name; its branch is dropped, and gc reclaims it once no session
// is forked from it.
Status DeleteImage(sql::Connection& conn, std::string_view name, int64_t now_ns);
// Renames image `name` to "<name>.superseded-<created_ns>" (sessions made
// from it still name their base) and drops its branch: gc removes both once
// no session descends from it.
Status SupersedeImage(sql::Connection& conn, std::string_view name, int64_t now_ns);
// Drops a branch that no session or image names (an image whose import
// failed halfway), for gc.
Status DropBranch(sql::Connection& conn, BranchId branch, int64_t now_ns);
// Undoes DropBranch once the image on `branch` is complete.
Status KeepBranch(sql::Connection& conn, BranchId branch);
// The image at the root of `branch`'s ancestry, or an empty name.
Result<std::string> BaseImage(sql::Connection& conn, BranchId branch);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_IMAGES_H_
