// Portable bundles: one session, with its lineage, history, key-value state
// and exactly the chunks it needs, in one file that another store imports.
//
// A bundle is itself a Strata store file (same schema, so `strata --store
// BUNDLE ls SESSION:/` reads it) holding only the rows the session can see:
// for each branch of its lineage the rows up to the version through which
// the session sees that branch. A `bundle` table adds the session's name, a
// format version and an XXH3-128 checksum over every row, so that a
// truncated or altered bundle is refused before anything is imported.
// Import remaps branch, chunk and call ids into the target store in one
// transaction (all or nothing) and reuses the chunks the target already
// holds.
#ifndef STRATA_STORE_BUNDLE_H_
#define STRATA_STORE_BUNDLE_H_

#include <string>
#include <string_view>

#include "chunks/chunk_store.h"
#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata {

// Writes the committed state of `session` in the store at `store_path` to a
// new file `bundle_path` (refused if it exists; written beside it and renamed
// into place when complete). Without `chunk_data`, chunk rows keep their
// codec but hold no bytes (a push sends the bytes its own way); with it, a
// session with chunks still on a remote is refused (they would be of no use
// to another store).
Result<BundleStats> ExportBundle(const std::string& store_path, std::string_view session,
                                 const std::string& bundle_path, int64_t now_ns,
                                 bool chunk_data = true);

// Checks the bundle at `bundle_path` (checksum, structure, every chunk against
// its hash), then imports it into the store at `store_path` as session
// `as_session` (empty: the bundle's own name), which must not exist.
Result<BundleStats> ImportBundle(const std::string& store_path, const std::string& bundle_path,
                                 std::string_view as_session, chunks::ChunkStore& chunks);

// The checksum a bundle stores (row 'checksum' of table `bundle`) and Import
// verifies: XXH3-128, as hex, over every row of the bundle's tables except
// that one, in a fixed order. Exposed so that tests and fuzzers can re-seal a
// bundle they altered on purpose.
Result<std::string> BundleChecksum(sql::Connection& bundle);

// A digest of the session's state in a bundle: every row but those of
// `chunks` (how chunks are stored changes, what they hold does not), and of
// `meta` and `bundle` (when and how it was made). Two exports of a session that did
// not change between them have the same digest.
Result<std::string> BundleStateDigest(sql::Connection& bundle);

// Every row of the bundle `bundle` as one byte stream: its tables in the
// checksum's order, each row's values tagged with their SQLite type. Rows
// that did not change keep their bytes and their place, so a stream cut at
// content-defined points shares most pieces with the stream of the same
// session a little later (remote pushes send only the pieces that changed).
Result<std::string> BundleRows(sql::Connection& bundle);

// Writes the rows of `rows` (a BundleRows stream) into a new bundle file at
// `bundle_path`. Corruption for a stream that is malformed or names a table
// bundles do not have; the result is checked like any bundle on import.
Status BundleFromRows(std::string_view rows, const std::string& bundle_path);

}  // namespace strata

#endif  // STRATA_STORE_BUNDLE_H_
