// A timespec (a file's times, a clock reading) as nanoseconds since the epoch.
#ifndef STRATA_BASE_TIME_NS_H_
#define STRATA_BASE_TIME_NS_H_

#include <cstdint>
#include <ctime>

namespace strata {

inline int64_t TimespecNs(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace strata

#endif  // STRATA_BASE_TIME_NS_H_
