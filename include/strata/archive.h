// Writing a Strata filesystem out as a tar archive (libarchive).
#ifndef STRATA_ARCHIVE_H_
#define STRATA_ARCHIVE_H_

#include <cstdint>
#include <string>

#include "strata/filesystem.h"
#include "strata/status.h"

namespace strata {

struct TarStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;  // regular file bytes written
};

// Writes the tree of `fs` (a snapshot view, or a head) to a new POSIX pax tar
// archive at `path`: directories, regular files, symlinks, hard links,
// devices and fifos, with modes, owners, modification times and xattrs.
// Paths are relative ("./dir/file"). Refuses to overwrite an existing file;
// the archive is written beside it and renamed into place when complete.
Status WriteTar(Filesystem& fs, const std::string& path, TarStats* stats);

struct UnpackStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t bytes = 0;    // regular file bytes written
  uint64_t skipped = 0;  // device nodes and sockets (a sandbox makes its own /dev)
};

// Unpacks the tar archive at `path` (any format and compression libarchive
// reads: `docker export` output, .tar.gz, .tar.zst, ...) into the root of
// `fs`, keeping modes, owners, modification times, hard links and xattrs.
// A later entry for the same path replaces an earlier one. Refuses, with the
// entry's name, an archive with a path that leaves the root ("../", or a hard
// link to one) and a truncated or damaged archive; the caller discards the
// partly written tree (Store::CreateImage does).
Status UnpackTar(Filesystem& fs, const std::string& path, UnpackStats* stats);

}  // namespace strata

#endif  // STRATA_ARCHIVE_H_
