// Small system-call helpers shared by the sandbox's files.
#ifndef STRATA_SANDBOX_SYS_UTIL_H_
#define STRATA_SANDBOX_SYS_UTIL_H_

#include <string>

#include "strata/status.h"

namespace strata::sandbox {

// IoError "<what>: <strerror(errno)>".
Status Errno(const std::string& what);

// Writes `value` to the existing file at `path` in one write(2), as kernel
// interfaces (/proc, cgroup files) want it.
Status WriteFile(const std::string& path, const std::string& value);

}  // namespace strata::sandbox

#endif  // STRATA_SANDBOX_SYS_UTIL_H_
