// UniqueFd: the owner of one file descriptor, closed when the owner goes.
#ifndef STRATA_BASE_UNIQUE_FD_H_
#define STRATA_BASE_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace strata {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  // Closes the descriptor held, if any, and holds `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace strata

#endif  // STRATA_BASE_UNIQUE_FD_H_
