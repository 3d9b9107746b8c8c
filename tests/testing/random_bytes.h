// Incompressible test data, reproducible from a seed.
#ifndef STRATA_TESTS_TESTING_RANDOM_BYTES_H_
#define STRATA_TESTS_TESTING_RANDOM_BYTES_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>

namespace strata::testing {

// `n` pseudo-random bytes: zstd cannot shrink them, so a store grows by
// what is written.
inline std::string IncompressibleBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, std::min<size_t>(8, n - i));
  }
  return s;
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_TESTING_RANDOM_BYTES_H_
