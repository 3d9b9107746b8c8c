#include "catalog/images.h"

#include <string>

namespace strata::catalog {

namespace {

constexpr const char* kInsertImage =
    "INSERT INTO images(name, branch, version, kind, source, fingerprint, created_ns)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
#define IMAGE_COLUMNS \
  "SELECT name, branch, version, kind, source, coalesce(fingerprint, ''), created_ns FROM images"
constexpr const char* kListImages = IMAGE_COLUMNS;
constexpr const char* kSelectImage = IMAGE_COLUMNS " WHERE name = ?1";
#undef IMAGE_COLUMNS
constexpr const char* kDeleteImage = "DELETE FROM images WHERE name = ?1";
constexpr const char* kSupersedeImage =
    "UPDATE images SET name = name || '.superseded-' || created_ns WHERE name = ?1";
constexpr const char* kDropBranch =
    "INSERT OR IGNORE INTO dropped_branches(branch, dropped_ns) VALUES (?1, ?2)";
// The deepest ancestor of a branch is the root of its lineage.
constexpr const char* kKeepBranch = "DELETE FROM dropped_branches WHERE branch = ?1";
constexpr const char* kBaseImage =
    "SELECT i.name FROM ancestry a JOIN images i ON i.branch = a.ancestor"
    " WHERE a.branch = ?1 ORDER BY a.depth DESC LIMIT 1";

ImageInfo ImageFromRow(sql::Statement& s) {
  ImageInfo i;
  i.name = s.Text(0);
  i.branch = s.Int(1);
  i.version = s.Int(2);
  i.kind = s.Text(3);
  i.source = s.Text(4);
  i.fingerprint = s.Text(5);
  i.created_ns = s.Int(6);
  return i;
}

}  // namespace

Status InsertImage(sql::Connection& conn, const ImageInfo& image) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInsertImage));
  s.BindText(1, image.name)
      .Bind(2, image.branch)
      .Bind(3, image.version)
      .BindText(4, image.kind)
      .BindText(5, image.source)
      .BindText(6, image.fingerprint)
      .Bind(7, image.created_ns);
  Status st = s.Run();
  if (st.code() == Code::kExists) return Exists("image '" + image.name + "' already exists");
  return st;
}

Result<ImageInfo> GetImage(sql::Connection& conn, std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSelectImage));
  s.BindText(1, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no image named '" + std::string(name) + "'");
  return ImageFromRow(s);
}

Result<std::vector<ImageInfo>> ListImages(sql::Connection& conn) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kListImages));
  std::vector<ImageInfo> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(ImageFromRow(s));
  }
  return out;
}

Status DropBranch(sql::Connection& conn, BranchId branch, int64_t now_ns) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kDropBranch));
  return s.Bind(1, branch).Bind(2, now_ns).Run();
}

Status DeleteImage(sql::Connection& conn, std::string_view name, int64_t now_ns) {
  ASSIGN_OR_RETURN(ImageInfo image, GetImage(conn, name));
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kDeleteImage));
  RETURN_IF_ERROR(s.BindText(1, name).Run());
  return DropBranch(conn, image.branch, now_ns);
}

Status KeepBranch(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kKeepBranch));
  return s.Bind(1, branch).Run();
}

Status SupersedeImage(sql::Connection& conn, std::string_view name, int64_t now_ns) {
  ASSIGN_OR_RETURN(ImageInfo image, GetImage(conn, name));
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSupersedeImage));
  RETURN_IF_ERROR(s.BindText(1, name).Run());
  return DropBranch(conn, image.branch, now_ns);
}

Result<std::string> BaseImage(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kBaseImage));
  s.Bind(1, branch);
  ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Text(0) : std::string();
}

}  // namespace strata::catalog
