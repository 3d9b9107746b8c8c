// Integrity check of a whole store: chunks, block references, and every
// branch head's and snapshot's tree.
#ifndef STRATA_FS_INTEGRITY_H_
#define STRATA_FS_INTEGRITY_H_

#include <vector>

#include "chunks/chunk_store.h"
#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::fs {

// Checks that SQLite's own structure is sound, every block references an
// existing chunk whose bytes hash to its key, and in every branch head and
// snapshot: every entry points at a live inode of the entry's type, every
// directory's parent pointer matches, and every nlink count matches.
Result<std::vector<IntegrityProblem>> CheckStoreIntegrity(sql::Connection& conn,
                                                          chunks::ChunkStore& chunks);

}  // namespace strata::fs

#endif  // STRATA_FS_INTEGRITY_H_
