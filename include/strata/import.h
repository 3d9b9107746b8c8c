// Copying host files into a Strata filesystem.
#ifndef STRATA_IMPORT_H_
#define STRATA_IMPORT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <sys/stat.h>

#include "strata/filesystem.h"
#include "strata/status.h"

namespace strata {

struct ImportStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t bytes = 0;    // regular file bytes read from the host
  uint64_t skipped = 0;  // sockets, devices and unreadable entries
};

// Copies the host file, directory (recursively) or symlink at `host_path`
// into `fs` as `name` under directory `parent`, keeping modes, owners and
// modification times. An existing regular file at the destination is
// replaced; an existing directory is merged into. Entries the host does not
// let us read are skipped and counted, not fatal. Buffered data is flushed at
// the end.
Status ImportPath(Filesystem& fs, const std::string& host_path, InodeId parent,
                  std::string_view name, ImportStats* stats);

// Copies the contents of the host directory `host_dir` (recursively, like
// ImportPath) into the root of `fs`, and gives the root its modes and times.
Status ImportTree(Filesystem& fs, const std::string& host_dir, ImportStats* stats);

// Gives `ino` the mode bits, owner and times of a host file.
Status CopyHostAttrs(Filesystem& fs, InodeId ino, const struct stat& st);

// The entries of a host directory, without "." and "..", sorted by name (so
// that walks do not depend on readdir's order). Access when it may not be
// read. `type` is readdir's d_type (DT_UNKNOWN when the filesystem does not
// say).
struct HostDirEntry {
  std::string name;
  unsigned char type;
};
Result<std::vector<HostDirEntry>> ListHostDir(const std::string& host_dir);

// Like open(O_CREAT|O_TRUNC|O_WRONLY): an existing regular file is truncated
// and keeps its inode, otherwise a file is created with `mode` and `cred`.
// The returned inode is open; the caller must Release it.
Result<Attr> CreateOrTruncate(Filesystem& fs, InodeId parent, std::string_view name,
                              uint32_t mode, Cred cred);

// Creates every missing directory of `path` (mode 0755) and returns the last.
Result<Attr> MakeDirs(Filesystem& fs, std::string_view path, Cred cred = {});

}  // namespace strata

#endif  // STRATA_IMPORT_H_
