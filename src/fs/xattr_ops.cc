// Extended attributes.
#include <sys/xattr.h>

#include "fs/filesystem_impl.h"
#include "fs/names.h"

namespace strata::fs {

namespace {

constexpr size_t kMaxXattrValue = 64 * 1024;
constexpr std::string_view kCapabilityXattr = "security.capability";

Status ValidateXattrName(std::string_view name) {
  if (name.empty() || name.size() > 255) return Status(Code::kRange, "bad xattr name length");
  return Status::Ok();
}

}  // namespace

Status FilesystemImpl::SetXattr(InodeId ino, std::string_view name, std::string_view value,
                                int flags) {
  RETURN_IF_ERROR(ValidateXattrName(name));
  if (value.size() > kMaxXattrValue) return Status(Code::kTooBig, "xattr value too large");
  if ((flags & ~(XATTR_CREATE | XATTR_REPLACE)) != 0 ||
      flags == (XATTR_CREATE | XATTR_REPLACE)) {
    return InvalidArgument("bad setxattr flags");
  }
  if (name == kCapabilityXattr) core_->NoteCapabilityXattr();
  return Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), ino));
    ASSIGN_OR_RETURN(auto existing, tree::GetXattr(conn, head.scope(), ino, name));
    if ((flags & XATTR_CREATE) && existing.has_value()) {
      return Exists("xattr " + Quote(name) + " exists");
    }
    if ((flags & XATTR_REPLACE) && !existing.has_value()) {
      return Status(Code::kNoData, "no xattr " + Quote(name));
    }
    RETURN_IF_ERROR(tree::PutXattr(conn, head, ino, name, value));
    row.ctime_ns = core_->Now();
    return tree::PutInode(conn, head, row);
  });
}

Result<std::string> FilesystemImpl::GetXattr(InodeId ino, std::string_view name) {
  RETURN_IF_ERROR(ValidateXattrName(name));
  if (name == kCapabilityXattr) {
    ASSIGN_OR_RETURN(bool none, core_->HasNoCapabilityXattrs());
    if (none) return Status(Code::kNoData, "no xattr " + Quote(name));
  }
  std::string out;
  RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
    RETURN_IF_ERROR(LoadInode(conn, scope, ino).status());
    ASSIGN_OR_RETURN(auto value, tree::GetXattr(conn, scope, ino, name));
    if (!value.has_value()) return Status(Code::kNoData, "no xattr " + Quote(name));
    out = std::move(*value);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<std::string>> FilesystemImpl::ListXattr(InodeId ino) {
  std::vector<std::string> out;
  RETURN_IF_ERROR(Query([&](sql::Connection& conn, tree::Scope scope) -> Status {
    RETURN_IF_ERROR(LoadInode(conn, scope, ino).status());
    ASSIGN_OR_RETURN(out, tree::ListXattrs(conn, scope, ino));
    return Status::Ok();
  }));
  return out;
}

Status FilesystemImpl::RemoveXattr(InodeId ino, std::string_view name) {
  RETURN_IF_ERROR(ValidateXattrName(name));
  return Mutate([&](sql::Connection& conn, tree::Head head) -> Status {
    ASSIGN_OR_RETURN(tree::InodeRow row, LoadInode(conn, head.scope(), ino));
    ASSIGN_OR_RETURN(auto existing, tree::GetXattr(conn, head.scope(), ino, name));
    if (!existing.has_value()) return Status(Code::kNoData, "no xattr " + Quote(name));
    RETURN_IF_ERROR(tree::DeleteXattr(conn, head, ino, name));
    row.ctime_ns = core_->Now();
    return tree::PutInode(conn, head, row);
  });
}

}  // namespace strata::fs
