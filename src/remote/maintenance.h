// A remote's upkeep: what its sessions' heads reference, gc of the rest, and
// a check that every referenced object is there and whole. Layout: see
// transfer.h and docs/FORMAT.md, "Remote objects".
#ifndef STRATA_REMOTE_MAINTENANCE_H_
#define STRATA_REMOTE_MAINTENANCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "remote/s3_client.h"
#include "strata/types.h"

namespace strata::remote {

struct RemoteGcStats {
  uint64_t sessions = 0;          // heads found
  uint64_t packs_kept = 0;
  uint64_t packs_deleted = 0;     // with their index objects
  uint64_t packs_doomed = 0;      // unreferenced, deleted by a gc a grace period later
  uint64_t bundles_deleted = 0;
  uint64_t bytes_deleted = 0;
  uint64_t young_kept = 0;        // unreferenced, but newer than the grace period
};

// Deletes the pack (with its index) and bundle objects that no session's
// head references: a head references its bundle, the bundle before it (a
// pull may be reading it), and every pack holding a chunk those two bundles
// name (the session's whole history: snapshots and tool calls included). A
// pack is kept whole while any of its chunks is named. Objects newer than
// `grace_s` seconds are kept, for pushes in flight (they upload packs and
// the bundle before they move the head). An older pack that nothing
// references is not deleted at once but doomed (layout.h, DoomedPacks):
// pushes from then on do not rely on it, and a gc at least `grace_s` later
// deletes it if still nothing references it. So gc may run beside pushes
// that take less than `grace_s`.
Result<RemoteGcStats> CollectRemoteGarbage(S3Client& client, const RemoteInfo& remote,
                                           int64_t grace_s);

struct RemoteProblem {
  std::string key;     // the object
  std::string detail;  // what is wrong, one line
};

// Checks every session's head: its bundle is there and hashes to its name,
// and every pack it names is there; with `verify_data`, every chunk it
// names is fetched and checked against its SHA-256 too. Problems come in key order.
Result<std::vector<RemoteProblem>> CheckRemote(S3Client& client, const RemoteInfo& remote,
                                               bool verify_data, uint64_t* sessions_checked);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_MAINTENANCE_H_
