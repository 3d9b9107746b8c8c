// The store's SQL schema: creation, validation and migrations.
// docs/FORMAT.md describes every table and column; keep the two in step.
#ifndef STRATA_CATALOG_SCHEMA_H_
#define STRATA_CATALOG_SCHEMA_H_

#include <cstdint>
#include <string>

#include "sql/database.h"
#include "strata/status.h"

namespace strata::catalog {

// PRAGMA application_id of every Strata store ("STRA").
inline constexpr int32_t kApplicationId = 0x53545241;
// The schema version this build writes. Older stores are migrated on open.
inline constexpr int kSchemaVersion = 11;

// Checks the file at `path` before SQLite touches it: a truncated or foreign
// file gets a clear error naming it. A missing or empty file is fine (new store).
Status PrecheckStoreFile(const std::string& path);

// Creates the schema in an empty database, migrates an older one, and refuses
// a foreign database or a newer schema. Runs in its own transaction. Returns
// the block size recorded in the store.
Result<uint32_t> EnsureSchema(sql::Connection& conn, const std::string& path,
                              uint32_t block_size_for_new_store, int64_t now_ns);

// The integer a PRAGMA (or any one-value query) returns.
Result<int64_t> PragmaInt(sql::Connection& conn, const char* pragma);

// Checks the schema without writing (for read-only opens).
Result<uint32_t> CheckSchema(sql::Connection& conn, const std::string& path);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_SCHEMA_H_
