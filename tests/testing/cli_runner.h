// Running the real `strata` binary from tests: one shell command, its exit
// status and what it printed.
#ifndef STRATA_TESTS_TESTING_CLI_RUNNER_H_
#define STRATA_TESTS_TESTING_CLI_RUNNER_H_

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "testing/temp_store.h"

namespace strata::testing {

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs `strata [--store STORE] ARGS` (ARGS as the shell reads them), feeding
// `input` on stdin; scratch files go to `dir`.
inline CliRun RunStrata(const TempDir& dir, const std::string& store, const std::string& args,
                        const std::string& input = "") {
  std::string in = dir.File("stdin"), out = dir.File("stdout"), err = dir.File("stderr");
  std::ofstream(in) << input;
  std::string cmd = std::string(STRATA_CLI) + (store.empty() ? " " : " --store '" + store + "' ") +
                    args + " <'" + in + "' >'" + out + "' 2>'" + err + "'";
  int status = std::system(cmd.c_str());
  CliRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_TESTING_CLI_RUNNER_H_
