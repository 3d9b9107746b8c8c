// The host base: sessions that see the host's system files copy-on-write.
//
// The base is an image named "host" standing for the host's userland as it
// was at one instant. It is indexed lazily: a directory when it is first
// looked into, a file's blocks when it is first read or written. Every
// regular file's blocks then refer to the host file instead of holding its
// bytes (/etc and dpkg's and apt's state are copied: the host edits them in
// place). Reading never copies; a write stores only the blocks it changes;
// deletes and renames change only the session. A host path that changed
// after that instant fails with IoError. README.md lists what is exposed.
#ifndef STRATA_HOST_BASE_H_
#define STRATA_HOST_BASE_H_

#include <cstdint>
#include <string>

#include "strata/filesystem.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata {

inline constexpr const char* kHostImage = "host";

// Writes the host base of the host tree at `host_root` ("/" normally; tests
// use a directory), as it is at `taken_ns`, into the empty filesystem `fs`:
// only the tops of the exposed trees, the empty directories every session
// starts with, and a few symlinks. What is under the tops becomes rows the
// first time a session looks (see Filesystem::AddHostEntry).
Status IndexHostBase(Filesystem& fs, const std::string& host_root, int64_t taken_ns);

// Whether the host tree at `host_root` may have changed since `taken_ns` in
// a way a host base taken then would see: an exposed directory, or a file of
// a copied tree, with a newer ctime (installing, removing or upgrading a
// package changes directories). Walks the exposed directories and stops at
// the first change.
bool HostChangedSince(const std::string& host_root, int64_t taken_ns);

// The store's host image, made now if it is missing or the host changed
// since it was taken (the old one stays with the sessions made from it).
// `indexed`, if given, is set when this call made a new one.
Result<ImageInfo> EnsureHostImage(Store& store, const std::string& host_root = "/",
                                  bool* indexed = nullptr);

}  // namespace strata

#endif  // STRATA_HOST_BASE_H_
