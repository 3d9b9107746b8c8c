#include "catalog/schema.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

namespace strata::catalog {

namespace {

// Version 1. Versioned tables carry (branch, vfrom): a row is the state of its
// key in `branch` from version `vfrom` until a newer row of the same key in the
// same branch. Tombstones (deleted=1, ino=0, chunk NULL, value NULL) hide rows
// inherited from ancestors. See docs/FORMAT.md.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value ANY NOT NULL
) WITHOUT ROWID;

CREATE TABLE branches (
  id             INTEGER PRIMARY KEY,
  parent         INTEGER REFERENCES branches(id),
  parent_version INTEGER NOT NULL,
  head_version   INTEGER NOT NULL,
  created_ns     INTEGER NOT NULL
);

CREATE TABLE ancestry (
  branch   INTEGER NOT NULL,
  depth    INTEGER NOT NULL,
  ancestor INTEGER NOT NULL,
  vlimit   INTEGER NOT NULL,
  PRIMARY KEY (branch, depth)
) WITHOUT ROWID;

CREATE TABLE sessions (
  name       TEXT PRIMARY KEY,
  branch     INTEGER NOT NULL REFERENCES branches(id),
  created_ns INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE session_branches (
  session  TEXT NOT NULL,
  seq      INTEGER NOT NULL,
  branch   INTEGER NOT NULL,
  since_ns INTEGER NOT NULL,
  PRIMARY KEY (session, seq)
) WITHOUT ROWID;

CREATE TABLE snapshots (
  id         INTEGER PRIMARY KEY,
  branch     INTEGER NOT NULL REFERENCES branches(id),
  version    INTEGER NOT NULL,
  name       TEXT,
  created_ns INTEGER NOT NULL
);
CREATE UNIQUE INDEX snapshots_by_name ON snapshots(branch, name) WHERE name IS NOT NULL;
CREATE INDEX snapshots_by_version ON snapshots(branch, version);

CREATE TABLE chunks (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  hash  BLOB NOT NULL,
  size  INTEGER NOT NULL,
  codec INTEGER NOT NULL,
  data  BLOB NOT NULL
);
CREATE INDEX chunks_by_hash ON chunks(hash);

CREATE TABLE inodes (
  ino      INTEGER NOT NULL,
  branch   INTEGER NOT NULL,
  vfrom    INTEGER NOT NULL,
  deleted  INTEGER NOT NULL,
  mode     INTEGER NOT NULL,
  nlink    INTEGER NOT NULL,
  uid      INTEGER NOT NULL,
  gid      INTEGER NOT NULL,
  rdev     INTEGER NOT NULL,
  size     INTEGER NOT NULL,
  atime_ns INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  parent   INTEGER NOT NULL,
  nblocks  INTEGER NOT NULL,
  target   BLOB,
  PRIMARY KEY (ino, branch, vfrom)
) WITHOUT ROWID;
CREATE INDEX inodes_by_version ON inodes(branch, vfrom);

CREATE TABLE dentries (
  parent INTEGER NOT NULL,
  name   BLOB NOT NULL,
  branch INTEGER NOT NULL,
  vfrom  INTEGER NOT NULL,
  ino    INTEGER NOT NULL,
  type   INTEGER NOT NULL,
  PRIMARY KEY (parent, branch, name, vfrom)
) WITHOUT ROWID;
CREATE INDEX dentries_by_version ON dentries(branch, vfrom);
CREATE INDEX dentries_by_ino ON dentries(ino);

CREATE TABLE blocks (
  ino    INTEGER NOT NULL,
  idx    INTEGER NOT NULL,
  branch INTEGER NOT NULL,
  vfrom  INTEGER NOT NULL,
  chunk  INTEGER,
  PRIMARY KEY (ino, branch, idx, vfrom)
) WITHOUT ROWID;

CREATE TABLE xattrs (
  ino    INTEGER NOT NULL,
  name   BLOB NOT NULL,
  branch INTEGER NOT NULL,
  vfrom  INTEGER NOT NULL,
  value  BLOB,
  PRIMARY KEY (ino, branch, name, vfrom)
) WITHOUT ROWID;

CREATE TABLE orphans (
  branch INTEGER NOT NULL,
  ino    INTEGER NOT NULL,
  PRIMARY KEY (branch, ino)
) WITHOUT ROWID;
)sql";

// Version 2: the key-value state of sessions, versioned like the tree.
constexpr const char* kMigrationV2 = R"sql(
CREATE TABLE kv (
  branch INTEGER NOT NULL,
  key    TEXT NOT NULL,
  vfrom  INTEGER NOT NULL,
  value  TEXT,
  PRIMARY KEY (branch, key, vfrom)
) WITHOUT ROWID;
)sql";

// Version 3: the tool-call log.
constexpr const char* kMigrationV3 = R"sql(
CREATE TABLE tool_calls (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  branch         INTEGER NOT NULL,
  parent         INTEGER,
  name           TEXT NOT NULL,
  args           TEXT NOT NULL,
  result         TEXT,
  error          TEXT,
  status         TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'error')),
  start_ns       INTEGER NOT NULL,
  end_ns         INTEGER,
  exit_status    INTEGER,
  stdout         BLOB,
  stderr         BLOB,
  version_before INTEGER NOT NULL,
  version_after  INTEGER
);
CREATE INDEX tool_calls_by_branch ON tool_calls(branch, id);
)sql";

// Version 4: branches of removed sessions, for gc.
constexpr const char* kMigrationV4 = R"sql(
CREATE TABLE dropped_branches (
  branch     INTEGER PRIMARY KEY,
  dropped_ns INTEGER NOT NULL
);
)sql";

// Version 5: images, frozen trees that sessions start from.
constexpr const char* kMigrationV5 = R"sql(
CREATE TABLE images (
  name        TEXT PRIMARY KEY,
  branch      INTEGER NOT NULL,
  version     INTEGER NOT NULL,
  kind        TEXT NOT NULL CHECK (kind IN ('dir', 'tar', 'host')),
  source      TEXT NOT NULL,
  fingerprint TEXT,
  created_ns  INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Version 6: tool-call output stored as chunks.
constexpr const char* kMigrationV6 = R"sql(
CREATE TABLE call_output (
  call   INTEGER NOT NULL,
  stream INTEGER NOT NULL,
  idx    INTEGER NOT NULL,
  chunk  INTEGER NOT NULL,
  PRIMARY KEY (call, stream, idx)
) WITHOUT ROWID;
)sql";

// Version 7: read layers, so that forks of any depth read through a bounded
// number of levels (catalog/layers.h).
constexpr const char* kMigrationV7 = R"sql(
CREATE TABLE layers (
  branch     INTEGER PRIMARY KEY,
  created_ns INTEGER NOT NULL
);
CREATE TABLE layer_views (
  branch        INTEGER NOT NULL,
  version       INTEGER NOT NULL,
  layer         INTEGER NOT NULL,
  layer_version INTEGER NOT NULL,
  PRIMARY KEY (branch, version)
) WITHOUT ROWID;
CREATE INDEX layer_views_by_layer ON layer_views(layer);
)sql";

// Version 8: the lazy host base: host directories and files whose entries or
// blocks become rows of the base on first use (fs/host_entries.h).
constexpr const char* kMigrationV8 = R"sql(
CREATE TABLE host_entries (
  branch   INTEGER NOT NULL,
  ino      INTEGER NOT NULL,
  root     TEXT NOT NULL,
  rel      TEXT NOT NULL,
  dev      INTEGER NOT NULL,
  host_ino INTEGER NOT NULL,
  taken_ns INTEGER NOT NULL,
  copy     INTEGER NOT NULL,
  expanded INTEGER NOT NULL,
  PRIMARY KEY (branch, ino)
) WITHOUT ROWID;
)sql";

// Version 9: remotes, S3 locations that sessions are pushed to and pulled
// from (credentials are never stored), and the remote head each session was
// last pushed as or pulled from.
constexpr const char* kMigrationV9 = R"sql(
CREATE TABLE remotes (
  name       TEXT PRIMARY KEY,
  bucket     TEXT NOT NULL,
  prefix     TEXT NOT NULL,
  endpoint   TEXT NOT NULL,
  region     TEXT NOT NULL,
  created_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE remote_heads (
  remote  TEXT NOT NULL,
  session TEXT NOT NULL,
  bundle  TEXT NOT NULL,
  PRIMARY KEY (remote, session)
) WITHOUT ROWID;
)sql";

// Caches for push and pull: each chunk's SHA-256 once computed, and where a
// remote holds chunks (learnt from its pack indexes, or from packing them);
// and the session's local state at its last push or pull.
constexpr const char* kMigrationV10 = R"sql(
CREATE TABLE chunk_sha (
  chunk INTEGER PRIMARY KEY,
  sha   TEXT NOT NULL
);
CREATE TABLE remote_chunks (
  remote TEXT NOT NULL,
  sha    TEXT NOT NULL,
  pack   TEXT NOT NULL,
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  PRIMARY KEY (remote, sha)
) WITHOUT ROWID;
CREATE INDEX remote_chunks_by_pack ON remote_chunks(remote, pack);
CREATE TABLE remote_packs (
  remote TEXT NOT NULL,
  pack   TEXT NOT NULL,
  PRIMARY KEY (remote, pack)
) WITHOUT ROWID;
ALTER TABLE remote_heads ADD COLUMN state TEXT NOT NULL DEFAULT '';
)sql";

// A host reference's content key (XXH3-128 of its bytes), once a push read
// them: the key its row gets in a pushed bundle, where it holds bytes.
constexpr const char* kMigrationV11 = R"sql(
ALTER TABLE chunk_sha ADD COLUMN content_key BLOB;
)sql";

// kMigrations[i] upgrades schema version i+1 to i+2.
const std::vector<const char*> kMigrations = {kMigrationV2, kMigrationV3, kMigrationV4,
                                              kMigrationV5, kMigrationV6, kMigrationV7,
                                              kMigrationV8, kMigrationV9, kMigrationV10,
                                              kMigrationV11};

Result<int> CountTables(sql::Connection& conn) {
  ASSIGN_OR_RETURN(sql::Statement stmt,
                   conn.Prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? static_cast<int>(stmt.Int(0)) : 0;
}

Result<uint32_t> ReadBlockSize(sql::Connection& conn, const std::string& path) {
  ASSIGN_OR_RETURN(sql::Statement stmt,
                   conn.Prepare("SELECT value FROM meta WHERE key = 'block_size'"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  int64_t bs = row ? stmt.Int(0) : 0;
  if (bs < 4096 || bs > (1 << 20) || (bs & (bs - 1)) != 0) {
    return Corruption("store " + path + ": invalid block size " + std::to_string(bs));
  }
  return static_cast<uint32_t>(bs);
}

// Reads application_id and user_version and decides whether the file is ours.
// Returns the schema version, or 0 for an empty database.
Result<int> IdentifyStore(sql::Connection& conn, const std::string& path) {
  auto app_id = PragmaInt(conn, "PRAGMA application_id");
  if (!app_id.ok()) {
    return app_id.status().WithContext("store " + path + " is not a readable SQLite database");
  }
  ASSIGN_OR_RETURN(int64_t version, PragmaInt(conn, "PRAGMA user_version"));
  ASSIGN_OR_RETURN(int tables, CountTables(conn));
  if (*app_id == 0 && tables == 0) return 0;
  if (*app_id != kApplicationId) {
    return Corruption("store " + path +
                      " is a SQLite database but not a Strata store (application_id " +
                      std::to_string(*app_id) + ")");
  }
  if (version > kSchemaVersion) {
    return Status(Code::kNotSupported,
                  "store " + path + " has schema version " + std::to_string(version) +
                      ", newer than this build of strata supports (" +
                      std::to_string(kSchemaVersion) + "); upgrade strata");
  }
  if (version < 1) {
    return Corruption("store " + path + " has an invalid schema version " +
                      std::to_string(version));
  }
  return static_cast<int>(version);
}

}  // namespace

Result<int64_t> PragmaInt(sql::Connection& conn, const char* pragma) {
  ASSIGN_OR_RETURN(sql::Statement stmt, conn.Prepare(pragma));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Corruption(std::string("no result for ") + pragma);
  return stmt.Int(0);
}

Status PrecheckStoreFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError("store " + path + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) return Status(Code::kIsDir, "store " + path + " is a directory");
  if (st.st_size == 0) return Status::Ok();
  std::ifstream in(path, std::ios::binary);
  char header[100] = {};
  in.read(header, sizeof(header));
  if (in.gcount() < static_cast<std::streamsize>(sizeof(header)) ||
      std::memcmp(header, "SQLite format 3", 16) != 0) {
    return Corruption("store " + path + " is not a SQLite database (bad header)");
  }
  auto be16 = [&](int off) {
    return (static_cast<uint32_t>(static_cast<uint8_t>(header[off])) << 8) |
           static_cast<uint8_t>(header[off + 1]);
  };
  auto be32 = [&](int off) { return (be16(off) << 16) | be16(off + 2); };
  uint64_t page_size = be16(16) == 1 ? 65536 : be16(16);
  uint64_t pages = be32(28);
  // The in-header page count is valid only when the change counter matches.
  bool count_valid = be32(24) == be32(92) && pages != 0;
  // A process killed during a checkpoint leaves the new header written but
  // the file not yet grown; the WAL still holds every page and SQLite
  // replays it. Only a file with no WAL beside it is known to be short.
  struct stat wal;
  bool has_wal = stat((path + "-wal").c_str(), &wal) == 0 && wal.st_size > 0;
  if (count_valid && !has_wal && static_cast<uint64_t>(st.st_size) < pages * page_size) {
    return Corruption("store " + path + " is truncated: " + std::to_string(st.st_size) +
                      " bytes, but its header says " + std::to_string(pages * page_size));
  }
  return Status::Ok();
}

Result<uint32_t> EnsureSchema(sql::Connection& conn, const std::string& path,
                              uint32_t block_size_for_new_store, int64_t now_ns) {
  // A new (empty) file: before the transaction writes its first page, so
  // that freed pages can be given back to the file system (gc's
  // IncrementalVacuum). It cannot be switched on later without rewriting the
  // whole file (VACUUM), and an existing file is left as it is.
  ASSIGN_OR_RETURN(int64_t pages, PragmaInt(conn, "PRAGMA page_count"));
  if (pages == 0) RETURN_IF_ERROR(conn.Exec("PRAGMA auto_vacuum = INCREMENTAL"));
  ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(conn));
  ASSIGN_OR_RETURN(int version, IdentifyStore(conn, path));
  if (version == 0) {
    RETURN_IF_ERROR(conn.Exec(kSchemaV1));
    ASSIGN_OR_RETURN(sql::Statement meta,
                     conn.Prepare("INSERT INTO meta(key, value) VALUES (?1, ?2)"));
    RETURN_IF_ERROR(meta.BindText(1, "block_size").Bind(2, block_size_for_new_store).Run());
    // Inode 1 is every session's root; allocation starts above it.
    RETURN_IF_ERROR(meta.BindText(1, "next_ino").Bind(2, int64_t{2}).Run());
    RETURN_IF_ERROR(meta.BindText(1, "created_ns").Bind(2, now_ns).Run());
    RETURN_IF_ERROR(conn.Exec("PRAGMA application_id = " + std::to_string(kApplicationId)));
    version = 1;
  }
  for (; version < kSchemaVersion; ++version) {
    RETURN_IF_ERROR(conn.Exec(kMigrations[version - 1]));
  }
  RETURN_IF_ERROR(conn.Exec("PRAGMA user_version = " + std::to_string(kSchemaVersion)));
  ASSIGN_OR_RETURN(uint32_t block_size, ReadBlockSize(conn, path));
  RETURN_IF_ERROR(txn.Commit());
  return block_size;
}

Result<uint32_t> CheckSchema(sql::Connection& conn, const std::string& path) {
  ASSIGN_OR_RETURN(int version, IdentifyStore(conn, path));
  if (version == 0) return NotFound("store " + path + " is empty");
  if (version < kSchemaVersion) {
    return Status(Code::kReadOnly, "store " + path + " needs a schema migration; open it writable");
  }
  return ReadBlockSize(conn, path);
}

}  // namespace strata::catalog
