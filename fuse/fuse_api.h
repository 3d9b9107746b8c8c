// libfuse's low-level API, at the version this adapter is written against.
#ifndef STRATA_FUSE_FUSE_API_H_
#define STRATA_FUSE_FUSE_API_H_

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)
#include <fuse_lowlevel.h>

#endif  // STRATA_FUSE_FUSE_API_H_
