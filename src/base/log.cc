#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <mutex>

namespace strata {

namespace {

std::mutex g_mu;
std::string g_path;  // guarded by g_mu; empty: stderr

}  // namespace

void SetLogFile(const std::string& path) {
  std::scoped_lock lock(g_mu);
  g_path = path;
}

void LogLine(const std::string& line) {
  const std::string text = "strata: " + line + "\n";
  std::scoped_lock lock(g_mu);
  int fd = g_path.empty() ? STDERR_FILENO
                          : open(g_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  (void)!write(fd, text.data(), text.size());
  if (fd != STDERR_FILENO) close(fd);
}

}  // namespace strata
