// Lines worth a human's attention from code that has no caller to tell
// (a chunk a read could not fetch, inside a FUSE request): to standard
// error, or, in a detached daemon, appended to a file that is created only
// when there is something to write in it.
#ifndef STRATA_BASE_LOG_H_
#define STRATA_BASE_LOG_H_

#include <string>

namespace strata {

// From now on, LogLine appends to `path` instead of writing to stderr.
void SetLogFile(const std::string& path);

// Writes "strata: LINE\n" in one write. Thread-safe.
void LogLine(const std::string& line);

}  // namespace strata

#endif  // STRATA_BASE_LOG_H_
