#include "sandbox/cgroups.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "sandbox/sys_util.h"

namespace strata::sandbox {

namespace {

struct Hierarchy {
  std::string mount;  // where it is mounted
  bool v2 = false;
};

// Finds the hierarchy for `controller` in /proc/self/mountinfo: a v1 mount
// whose options name it, else the v2 mount if its cgroup.controllers lists it.
std::optional<Hierarchy> FindHierarchy(const std::string& controller) {
  std::ifstream info("/proc/self/mountinfo");
  std::string line, v2_mount;
  while (std::getline(info, line)) {
    std::istringstream in(line);
    std::string id, parent, dev, root, point, opts, word;
    in >> id >> parent >> dev >> root >> point >> opts;
    while (in >> word && word != "-") {
    }
    std::string type, source, super_opts;
    in >> type >> source >> super_opts;
    if (type == "cgroup") {
      std::istringstream options(super_opts);
      std::string o;
      while (std::getline(options, o, ',')) {
        if (o == controller) return Hierarchy{point, false};
      }
    } else if (type == "cgroup2" && v2_mount.empty()) {
      v2_mount = point;
    }
  }
  if (v2_mount.empty()) return std::nullopt;
  std::ifstream available(v2_mount + "/cgroup.controllers");
  std::string c;
  while (available >> c) {
    if (c == controller) return Hierarchy{v2_mount, true};
  }
  return std::nullopt;
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// v2: controllers must be enabled in every ancestor's subtree_control.
Status EnableV2(const std::string& mount, const std::string& dir, const std::string& controller) {
  std::string path = mount;
  std::string rel = dir.substr(mount.size());
  size_t pos = 1;
  for (;;) {
    std::string control = path + "/cgroup.subtree_control";
    std::string enabled = ReadFirstLine(control);
    if (enabled.find(controller) == std::string::npos) {
      RETURN_IF_ERROR(WriteFile(control, "+" + controller));
    }
    size_t next = rel.find('/', pos);
    if (next == std::string::npos) break;
    path = mount + rel.substr(0, next);
    pos = next + 1;
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<SandboxCgroup>> SandboxCgroup::Create(const std::string& name,
                                                             const Limits& limits) {
  std::unique_ptr<SandboxCgroup> cg(new SandboxCgroup());
  struct Want {
    const char* controller;
    bool needed;
  };
  const Want wants[] = {{"memory", limits.memory_bytes.has_value()},
                        {"pids", limits.pids.has_value()},
                        {"cpu", limits.cpus.has_value()}};
  for (const Want& w : wants) {
    if (!w.needed) continue;
    auto h = FindHierarchy(w.controller);
    if (!h) {
      return Status(Code::kNotSupported, std::string("cannot limit ") + w.controller +
                                             ": no cgroup hierarchy offers the '" + w.controller +
                                             "' controller here");
    }
    // One directory per v2 hierarchy (shared by its controllers), one per v1
    // controller. Under <mount>/strata, made on first use.
    std::string base = h->mount + "/strata";
    std::string path = base + "/" + name;
    bool exists = false;
    for (const Dir& d : cg->dirs_) exists |= d.path == path;
    if (!exists) {
      if (mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) {
        return IoError("cannot create cgroup " + base + ": " + std::strerror(errno));
      }
      if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        return IoError("cannot create cgroup " + path + ": " + std::strerror(errno));
      }
      cg->dirs_.push_back({path, h->v2, w.controller});
    }
    if (h->v2) RETURN_IF_ERROR(EnableV2(h->mount, path, w.controller));
    const std::string c = w.controller;
    if (c == "memory") {
      const std::string bytes = std::to_string(*limits.memory_bytes);
      if (h->v2) {
        RETURN_IF_ERROR(WriteFile(path + "/memory.max", bytes));
        (void)WriteFile(path + "/memory.swap.max", "0");  // absent without swap accounting
      } else {
        RETURN_IF_ERROR(WriteFile(path + "/memory.limit_in_bytes", bytes));
        (void)WriteFile(path + "/memory.memsw.limit_in_bytes", bytes);
      }
    } else if (c == "pids") {
      RETURN_IF_ERROR(WriteFile(path + "/pids.max", std::to_string(*limits.pids)));
    } else if (c == "cpu") {
      const uint64_t period = 100000;
      const uint64_t quota =
          static_cast<uint64_t>(std::llround(std::max(0.01, *limits.cpus) * period));
      if (h->v2) {
        RETURN_IF_ERROR(WriteFile(path + "/cpu.max", std::to_string(quota) + " " +
                                                         std::to_string(period)));
      } else {
        RETURN_IF_ERROR(WriteFile(path + "/cpu.cfs_period_us", std::to_string(period)));
        RETURN_IF_ERROR(WriteFile(path + "/cpu.cfs_quota_us", std::to_string(quota)));
      }
    }
  }
  return cg;
}

Status SandboxCgroup::Add(pid_t pid) {
  for (const Dir& d : dirs_) {
    RETURN_IF_ERROR(WriteFile(d.path + "/cgroup.procs", std::to_string(pid)));
  }
  return Status::Ok();
}

CgroupUsage SandboxCgroup::Usage() const {
  CgroupUsage u;
  for (const Dir& d : dirs_) {
    if (d.v2) {
      std::string peak = ReadFirstLine(d.path + "/memory.peak");
      if (!peak.empty()) u.memory_peak_bytes = std::strtoull(peak.c_str(), nullptr, 10);
      std::ifstream events(d.path + "/memory.events");
      std::string key;
      uint64_t value;
      while (events >> key >> value) {
        if (key == "oom_kill" && value > 0) u.oom_killed = true;
      }
    } else if (d.controller == "memory") {
      std::string peak = ReadFirstLine(d.path + "/memory.max_usage_in_bytes");
      if (!peak.empty()) u.memory_peak_bytes = std::strtoull(peak.c_str(), nullptr, 10);
      std::ifstream control(d.path + "/memory.oom_control");
      std::string key;
      uint64_t value;
      while (control >> key >> value) {
        if (key == "oom_kill" && value > 0) u.oom_killed = true;
      }
    }
  }
  return u;
}

SandboxCgroup::~SandboxCgroup() {
  // The sandbox's pid namespace is gone by now, so its processes are dead;
  // still, kill stragglers and wait briefly for the cgroup to empty.
  for (const Dir& d : dirs_) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::ifstream procs(d.path + "/cgroup.procs");
      pid_t pid;
      bool any = false;
      while (procs >> pid) {
        any = true;
        kill(pid, SIGKILL);
      }
      if (!any && rmdir(d.path.c_str()) == 0) break;
      if (!any && errno != EBUSY) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
}

}  // namespace strata::sandbox
