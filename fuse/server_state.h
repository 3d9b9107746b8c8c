// State shared by the FUSE callbacks of one mount (the session's userdata).
#ifndef STRATA_FUSE_SERVER_STATE_H_
#define STRATA_FUSE_SERVER_STATE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "fuse/cut_gate.h"
#include "fuse/fuse_api.h"
#include "strata/filesystem.h"

namespace strata::fuse {

// The generation of every inode we report: inode numbers are never reused.
// (Also part of the file handles KernelDrainer builds.)
constexpr uint32_t kGeneration = 1;

// Directory handles hold the listing taken at opendir, so offsets stay stable
// for the life of the handle whatever happens to the directory meanwhile.
struct DirHandle {
  std::vector<DirEntry> entries;
};

// The directory handles given to the kernel and not released yet, owned
// here: a connection that ends (an unmount, an abort) sends no RELEASEDIR
// for those still open, and they go with the server state.
class DirHandles {
 public:
  uint64_t Add(std::vector<DirEntry> entries) {
    std::scoped_lock lock(mu_);
    handles_[++last_] = std::make_unique<DirHandle>(DirHandle{std::move(entries)});
    return last_;
  }
  // Null for a handle the kernel never got (or already released).
  DirHandle* Get(uint64_t id) {
    std::scoped_lock lock(mu_);
    auto it = handles_.find(id);
    return it == handles_.end() ? nullptr : it->second.get();
  }
  void Release(uint64_t id) {
    std::scoped_lock lock(mu_);
    handles_.erase(id);
  }

 private:
  std::mutex mu_;
  uint64_t last_ = 0;                                                // guarded by mu_
  std::unordered_map<uint64_t, std::unique_ptr<DirHandle>> handles_;  // guarded by mu_
};

struct ServerState {
  Filesystem* fs = nullptr;
  double timeout = 60.0;
  CutGate cut;
  DirHandles dirs;
};

// The callback table; every callback is noexcept and replies exactly once.
const fuse_lowlevel_ops& Operations();

}  // namespace strata::fuse

#endif  // STRATA_FUSE_SERVER_STATE_H_
