// State shared by the FUSE callbacks of one mount (the session's userdata).
#ifndef STRATA_FUSE_SERVER_STATE_H_
#define STRATA_FUSE_SERVER_STATE_H_

#include <cstdint>

#include "fuse/cut_gate.h"
#include "fuse/fuse_api.h"
#include "strata/filesystem.h"

namespace strata::fuse {

// The generation of every inode we report: inode numbers are never reused.
// (Also part of the file handles KernelDrainer builds.)
constexpr uint32_t kGeneration = 1;

struct ServerState {
  Filesystem* fs = nullptr;
  double timeout = 60.0;
  CutGate cut;
};

// The callback table; every callback is noexcept and replies exactly once.
const fuse_lowlevel_ops& Operations();

}  // namespace strata::fuse

#endif  // STRATA_FUSE_SERVER_STATE_H_
