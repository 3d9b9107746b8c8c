// libarchive, loaded on first use.
//
// Linking libarchive makes every strata process load it and the ten
// libraries it needs (libxml2, ICU, nettle, ...): about 1.6 ms of each start,
// which `strata run` pays on every command. Only tarball import and export
// need it, so it is opened with dlopen when they run. The declarations still
// come from <archive.h>, so the compiler checks every call.
#ifndef STRATA_STORE_ARCHIVE_API_H_
#define STRATA_STORE_ARCHIVE_API_H_

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "strata/status.h"

namespace strata {

#define STRATA_ARCHIVE_FUNCTIONS(X)                                                             \
  X(archive_error_string) X(archive_entry_new) X(archive_entry_free)                          \
  X(archive_entry_filetype) X(archive_entry_perm) X(archive_entry_uid) X(archive_entry_gid)   \
  X(archive_entry_mtime) X(archive_entry_mtime_nsec) X(archive_entry_pathname)                 \
  X(archive_entry_hardlink) X(archive_entry_symlink) X(archive_entry_xattr_reset)              \
  X(archive_entry_xattr_next) X(archive_entry_set_pathname) X(archive_entry_set_mode)          \
  X(archive_entry_set_uid) X(archive_entry_set_gid) X(archive_entry_set_mtime)                 \
  X(archive_entry_set_hardlink) X(archive_entry_set_size) X(archive_entry_set_symlink)         \
  X(archive_entry_set_rdev) X(archive_entry_xattr_add_entry) X(archive_read_new)               \
  X(archive_read_free) X(archive_read_support_format_tar) X(archive_read_support_filter_gzip)  \
  X(archive_read_support_filter_bzip2) X(archive_read_support_filter_xz)                       \
  X(archive_read_support_filter_zstd) X(archive_read_open_filename)                            \
  X(archive_read_next_header) X(archive_read_data_block) X(archive_write_new)                  \
  X(archive_write_free) X(archive_write_set_format_pax_restricted)                             \
  X(archive_write_open_filename) X(archive_write_header) X(archive_write_data)                 \
  X(archive_write_close)

struct ArchiveApi {
#define STRATA_ARCHIVE_POINTER(name) decltype(&::name) name = nullptr;
  STRATA_ARCHIVE_FUNCTIONS(STRATA_ARCHIVE_POINTER)
#undef STRATA_ARCHIVE_POINTER
};

// The loaded library (once per process; thread-safe). NotSupported, saying
// what to install, when libarchive is missing.
Result<const ArchiveApi*> LoadArchiveApi();

}  // namespace strata

#endif  // STRATA_STORE_ARCHIVE_API_H_
