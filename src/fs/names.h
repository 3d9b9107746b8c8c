// Checks on names and paths shared by the filesystem operations.
#ifndef STRATA_FS_NAMES_H_
#define STRATA_FS_NAMES_H_

#include <string>
#include <string_view>

#include "strata/status.h"
#include "strata/types.h"

namespace strata::fs {

inline bool IsDotOrDotDot(std::string_view name) { return name == "." || name == ".."; }

// A name that can be stored in a directory: 1-255 bytes, no '/' or NUL.
// "." and ".." pass here; each operation decides what they mean to it.
inline Status ValidateName(std::string_view name) {
  if (name.empty()) return NotFound("empty name");
  if (name.size() > kMaxNameLength) {
    return Status(Code::kNameTooLong, "name longer than 255 bytes");
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return InvalidArgument("name contains '/' or NUL");
  }
  return Status::Ok();
}

inline std::string Quote(std::string_view name) { return "'" + std::string(name) + "'"; }

}  // namespace strata::fs

#endif  // STRATA_FS_NAMES_H_
