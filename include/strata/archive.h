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

}  // namespace strata

#endif  // STRATA_ARCHIVE_H_
