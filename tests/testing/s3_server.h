// The S3 server of the ctest fixture `s3` (tests/CMakeLists.txt): what
// tools/dev-s3.sh printed when it started radosgw for this test run.
#ifndef STRATA_TESTS_TESTING_S3_SERVER_H_
#define STRATA_TESTS_TESTING_S3_SERVER_H_

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

namespace strata::testing {

// The variables of the file STRATA_S3_ENV names ("export NAME=VALUE" lines:
// STRATA_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION);
// empty when there is none.
inline std::map<std::string, std::string> S3ServerEnv() {
  std::map<std::string, std::string> vars;
  const char* path = std::getenv("STRATA_S3_ENV");
  if (path == nullptr) return vars;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("export ", 0) != 0) continue;
    size_t eq = line.find('=');
    if (eq != std::string::npos) vars[line.substr(7, eq - 7)] = line.substr(eq + 1);
  }
  return vars;
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_TESTING_S3_SERVER_H_
