// State shared by the FUSE callbacks of one mount (the session's userdata).
#ifndef STRATA_FUSE_SERVER_STATE_H_
#define STRATA_FUSE_SERVER_STATE_H_

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <fuse_lowlevel.h>

#include <cstdint>

#include "strata/filesystem.h"

namespace strata::fuse {

// The generation of every inode we report: inode numbers are never reused.
// (Also part of the file handles DrainKernelCache builds.)
constexpr uint32_t kGeneration = 1;

struct ServerState {
  Filesystem* fs = nullptr;
  double timeout = 60.0;
};

// The callback table; every callback is noexcept and replies exactly once.
const fuse_lowlevel_ops& Operations();

}  // namespace strata::fuse

#endif  // STRATA_FUSE_SERVER_STATE_H_
