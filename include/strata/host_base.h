// The host base: sessions that see the host's system files copy-on-write.
//
// The base is an image named "host" holding an index of the host's userland:
// directories, symlinks and file metadata, with every regular file's blocks
// referring to the host file instead of holding its bytes (/etc and dpkg's
// and apt's state are copied: the host edits them in place). Reading never copies; a write stores only the blocks it
// changes; deletes and renames change only the session. README.md lists
// exactly what is exposed.
#ifndef STRATA_HOST_BASE_H_
#define STRATA_HOST_BASE_H_

#include <cstdint>
#include <string>

#include "strata/filesystem.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata {

inline constexpr const char* kHostImage = "host";

struct HostBaseStats {
  uint64_t files = 0;        // regular files referred to
  uint64_t copied = 0;       // regular files copied (/etc, /var/lib/dpkg, /var/lib/apt)
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t bytes = 0;        // regular file bytes, referred to or copied
  uint64_t skipped = 0;      // not world-readable, secrets, sockets, devices
};

// Writes the host base of the host tree at `host_root` ("/" normally; tests
// use a directory) into the empty filesystem `fs`.
Status IndexHostBase(Filesystem& fs, const std::string& host_root, HostBaseStats* stats);

// A digest of what the host base of `host_root` would hold: the identity and
// times of every exposed directory, and of every file under etc/. It changes
// when a package is installed, removed or upgraded (they add, remove and
// rename files) and when a copied file (/etc, dpkg's and apt's state) changes.
Result<std::string> HostBaseFingerprint(const std::string& host_root);

// The store's host image, indexed now if it is missing or the host changed
// since (the old index stays with the sessions made from it). `indexed`, if
// given, is set when this call built a new index.
Result<ImageInfo> EnsureHostImage(Store& store, const std::string& host_root = "/",
                                  bool* indexed = nullptr);

}  // namespace strata

#endif  // STRATA_HOST_BASE_H_
