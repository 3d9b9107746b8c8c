// Resource limits through cgroups, v1 or v2, whichever holds each controller.
//
// A machine may have the memory, pids and cpu controllers on cgroup v1
// hierarchies (/sys/fs/cgroup/memory, ...) with a v2 hierarchy beside them
// that has none, or everything on one v2 hierarchy. For each controller a
// limit needs, SandboxCgroup uses the v1 hierarchy that has it, else the v2
// hierarchy if it offers it; if neither does, the limit is refused with a
// clear error rather than silently ignored.
#ifndef STRATA_SANDBOX_CGROUPS_H_
#define STRATA_SANDBOX_CGROUPS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/status.h"

namespace strata::sandbox {

struct Limits {
  std::optional<uint64_t> memory_bytes;  // RAM; swap is not allowed beyond it
  std::optional<uint64_t> pids;          // processes and threads
  std::optional<double> cpus;            // CPU time, in CPUs (0.5 = half of one)
  bool any() const { return memory_bytes || pids || cpus; }
};

struct CgroupUsage {
  uint64_t memory_peak_bytes = 0;  // 0 when unknown
  bool oom_killed = false;         // the memory limit killed a process
};

// The cgroups of one sandbox, removed (after killing what is left in them)
// when destroyed.
class SandboxCgroup {
 public:
  static Result<std::unique_ptr<SandboxCgroup>> Create(const std::string& name,
                                                       const Limits& limits);
  ~SandboxCgroup();
  SandboxCgroup(const SandboxCgroup&) = delete;
  SandboxCgroup& operator=(const SandboxCgroup&) = delete;

  // Moves `pid` (and so everything it starts later) into every cgroup.
  Status Add(pid_t pid);
  CgroupUsage Usage() const;

 private:
  SandboxCgroup() = default;
  struct Dir {
    std::string path;
    bool v2 = false;
    std::string controller;  // v1: the hierarchy's controller
  };
  std::vector<Dir> dirs_;
};

}  // namespace strata::sandbox

#endif  // STRATA_SANDBOX_CGROUPS_H_
