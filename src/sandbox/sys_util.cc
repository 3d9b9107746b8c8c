#include "sandbox/sys_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace strata::sandbox {

Status Errno(const std::string& what) { return IoError(what + ": " + std::strerror(errno)); }

Status WriteFile(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot write '" + value + "' to " + path);
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  errno = err;
  if (n != static_cast<ssize_t>(value.size())) return Errno("cannot write '" + value + "' to " + path);
  return Status::Ok();
}

}  // namespace strata::sandbox
