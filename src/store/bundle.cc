#include "store/bundle.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "catalog/branches.h"
#include "catalog/schema.h"
#include "fs/integrity.h"
#include "sql/database.h"

namespace strata {

namespace {

constexpr int kBundleFormat = 1;

// Every table a bundle holds, with the order its rows are checksummed in.
struct TableOrder {
  const char* table;
  const char* order;
};
constexpr TableOrder kTables[] = {
    {"meta", "key"},
    {"branches", "id"},
    {"ancestry", "branch, depth"},
    {"layers", "branch"},
    {"layer_views", "branch, version"},
    {"host_entries", "branch, ino"},
    {"sessions", "name"},
    {"session_branches", "session, seq"},
    {"snapshots", "id"},
    {"chunks", "id"},
    {"inodes", "ino, branch, vfrom"},
    {"dentries", "parent, branch, name, vfrom"},
    {"blocks", "ino, branch, idx, vfrom"},
    {"xattrs", "ino, branch, name, vfrom"},
    {"kv", "branch, key, vfrom"},
    {"tool_calls", "id"},
    {"call_output", "call, stream, idx"},
    {"bundle", "key"},
};

constexpr const char* kCreateBundleTable =
    "CREATE TABLE bundle (key TEXT PRIMARY KEY, value ANY NOT NULL) WITHOUT ROWID";

// The branches `session` (?1) needs, with the version limit up to which its
// rows are exported: every branch the session used (all of it), their
// lineage through parent pointers (history, restores to any point of it),
// and the levels each of those reads through (layers included).
constexpr const char* kLineage = R"sql(
CREATE TEMP TABLE lineage AS
  WITH RECURSIVE logical(branch, lim) AS (
    SELECT branch, 9223372036854775807 FROM main.session_branches WHERE session = ?1
    UNION
    SELECT b.parent, b.parent_version FROM logical l JOIN main.branches b ON b.id = l.branch
    WHERE b.parent IS NOT NULL),
  levels(branch, lim) AS (
    SELECT a.ancestor, CASE WHEN a.depth = 0 THEN l.lim ELSE a.vlimit END
    FROM logical l JOIN main.ancestry a ON a.branch = l.branch)
  SELECT branch, max(lim) AS lim FROM (SELECT * FROM logical UNION ALL SELECT * FROM levels)
  GROUP BY branch
)sql";

constexpr const char* kExportRows[] = {
    "INSERT INTO b.branches SELECT r.* FROM main.branches r"
    " WHERE r.id IN (SELECT branch FROM temp.lineage)",
    "INSERT INTO b.ancestry SELECT r.* FROM main.ancestry r"
    " WHERE r.branch IN (SELECT branch FROM temp.lineage)",
    "INSERT INTO b.layers SELECT r.* FROM main.layers r"
    " WHERE r.branch IN (SELECT branch FROM temp.lineage)",
    "INSERT INTO b.layer_views SELECT r.* FROM main.layer_views r"
    " WHERE r.branch IN (SELECT branch FROM temp.lineage)"
    " AND r.layer IN (SELECT branch FROM temp.lineage)",
    "INSERT INTO b.host_entries SELECT r.* FROM main.host_entries r"
    " WHERE r.branch IN (SELECT branch FROM temp.lineage)",
    "INSERT INTO b.sessions SELECT r.* FROM main.sessions r WHERE r.name = ?1",
    "INSERT INTO b.session_branches SELECT r.* FROM main.session_branches r WHERE r.session = ?1",
    "INSERT INTO b.snapshots SELECT r.* FROM main.snapshots r"
    " JOIN temp.lineage l ON l.branch = r.branch WHERE r.version <= l.lim",
    "INSERT INTO b.inodes SELECT r.* FROM main.inodes r"
    " JOIN temp.lineage l ON l.branch = r.branch WHERE r.vfrom <= l.lim",
    "INSERT INTO b.dentries SELECT r.* FROM main.dentries r"
    " JOIN temp.lineage l ON l.branch = r.branch WHERE r.vfrom <= l.lim",
    "INSERT INTO b.blocks SELECT r.* FROM main.blocks r"
    " JOIN temp.lineage l ON l.branch = r.branch WHERE r.vfrom <= l.lim",
    "INSERT INTO b.xattrs SELECT r.* FROM main.xattrs r"
    " JOIN temp.lineage l ON l.branch = r.branch WHERE r.vfrom <= l.lim",
    "INSERT INTO b.kv SELECT r.* FROM main.kv r"
    " JOIN temp.lineage l ON l.branch = r.branch WHERE r.vfrom <= l.lim",
    "INSERT INTO b.tool_calls SELECT r.* FROM main.tool_calls r"
    " JOIN temp.lineage l ON l.branch = r.branch WHERE r.version_before < l.lim",
    "INSERT INTO b.call_output SELECT r.* FROM main.call_output r"
    " WHERE r.call IN (SELECT id FROM b.tool_calls)",
    "UPDATE b.meta SET value = (SELECT value FROM main.meta WHERE key = 'next_ino')"
    " WHERE key = 'next_ino'",
};

// Import: new ids for the bundle's branches, calls and chunks (reusing the
// chunks the store already has), then every row with its ids mapped.
// The chunks the exported rows use, with or without their bytes.
constexpr const char* kExportChunks =
    "INSERT INTO b.chunks SELECT r.id, r.hash, r.size, r.codec, r.data FROM main.chunks r"
    " WHERE r.id IN (SELECT chunk FROM b.blocks WHERE chunk IS NOT NULL)"
    " OR r.id IN (SELECT chunk FROM b.call_output)";
constexpr const char* kExportChunkRows =
    "INSERT INTO b.chunks SELECT r.id, r.hash, r.size, r.codec, X'' FROM main.chunks r"
    " WHERE r.id IN (SELECT chunk FROM b.blocks WHERE chunk IS NOT NULL)"
    " OR r.id IN (SELECT chunk FROM b.call_output)";

constexpr const char* kImportMaps = R"sql(
CREATE TEMP TABLE map_branch (old INTEGER PRIMARY KEY, new INTEGER NOT NULL);
INSERT INTO temp.map_branch
  SELECT id, (SELECT coalesce(max(id), 0) FROM main.branches) + row_number() OVER (ORDER BY id)
  FROM b.branches;
CREATE TEMP TABLE map_call (old INTEGER PRIMARY KEY, new INTEGER NOT NULL);
INSERT INTO temp.map_call
  SELECT id, max(coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = 'tool_calls'), 0),
                 coalesce((SELECT max(id) FROM main.tool_calls), 0))
             + row_number() OVER (ORDER BY id)
  FROM b.tool_calls;
CREATE TEMP TABLE map_chunk (old INTEGER PRIMARY KEY, new INTEGER);
INSERT INTO temp.map_chunk
  SELECT x.id, CASE WHEN x.codec = 2 THEN NULL
                    ELSE (SELECT c.id FROM main.chunks c WHERE c.hash = x.hash AND c.size = x.size
                          AND c.codec = x.codec AND c.data = x.data LIMIT 1) END
  FROM b.chunks x;
CREATE TEMP TABLE fresh_chunk (old INTEGER PRIMARY KEY, rank INTEGER NOT NULL);
INSERT INTO temp.fresh_chunk
  SELECT old, row_number() OVER (ORDER BY old) FROM temp.map_chunk WHERE new IS NULL;
CREATE TEMP TABLE chunk_base AS
  SELECT max(coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = 'chunks'), 0),
             coalesce((SELECT max(id) FROM main.chunks), 0)) AS id;
)sql";

constexpr const char* kImportRows = R"sql(
INSERT INTO main.chunks(id, hash, size, codec, data)
  SELECT (SELECT id FROM temp.chunk_base) + f.rank, x.hash, x.size, x.codec, x.data
  FROM b.chunks x JOIN temp.fresh_chunk f ON f.old = x.id;
UPDATE temp.map_chunk SET new = (SELECT id FROM temp.chunk_base) + (
  SELECT f.rank FROM temp.fresh_chunk f WHERE f.old = temp.map_chunk.old) WHERE new IS NULL;
INSERT INTO main.branches(id, parent, parent_version, head_version, created_ns)
  SELECT m.new, (SELECT p.new FROM temp.map_branch p WHERE p.old = r.parent), r.parent_version,
         r.head_version, r.created_ns
  FROM b.branches r JOIN temp.map_branch m ON m.old = r.id;
INSERT INTO main.ancestry(branch, depth, ancestor, vlimit)
  SELECT m.new, r.depth, a.new, r.vlimit FROM b.ancestry r
  JOIN temp.map_branch m ON m.old = r.branch JOIN temp.map_branch a ON a.old = r.ancestor;
INSERT INTO main.layers(branch, created_ns)
  SELECT m.new, r.created_ns FROM b.layers r JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.layer_views(branch, version, layer, layer_version)
  SELECT m.new, r.version, l.new, r.layer_version FROM b.layer_views r
  JOIN temp.map_branch m ON m.old = r.branch JOIN temp.map_branch l ON l.old = r.layer;
INSERT INTO main.host_entries(branch, ino, root, rel, dev, host_ino, taken_ns, copy, expanded)
  SELECT m.new, r.ino, r.root, r.rel, r.dev, r.host_ino, r.taken_ns, r.copy, r.expanded
  FROM b.host_entries r JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.sessions(name, branch, created_ns)
  SELECT temp.import_name.name, m.new, r.created_ns FROM b.sessions r, temp.import_name
  JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.session_branches(session, seq, branch, since_ns)
  SELECT temp.import_name.name, r.seq, m.new, r.since_ns FROM b.session_branches r, temp.import_name
  JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.snapshots(branch, version, name, created_ns)
  SELECT m.new, r.version, r.name, r.created_ns FROM b.snapshots r
  JOIN temp.map_branch m ON m.old = r.branch ORDER BY r.id;
INSERT INTO main.inodes(ino, branch, vfrom, deleted, mode, nlink, uid, gid, rdev, size, atime_ns,
                        mtime_ns, ctime_ns, parent, nblocks, target)
  SELECT r.ino, m.new, r.vfrom, r.deleted, r.mode, r.nlink, r.uid, r.gid, r.rdev, r.size,
         r.atime_ns, r.mtime_ns, r.ctime_ns, r.parent, r.nblocks, r.target
  FROM b.inodes r JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.dentries(parent, name, branch, vfrom, ino, type)
  SELECT r.parent, r.name, m.new, r.vfrom, r.ino, r.type
  FROM b.dentries r JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.blocks(ino, idx, branch, vfrom, chunk)
  SELECT r.ino, r.idx, m.new, r.vfrom, (SELECT c.new FROM temp.map_chunk c WHERE c.old = r.chunk)
  FROM b.blocks r JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.xattrs(ino, name, branch, vfrom, value)
  SELECT r.ino, r.name, m.new, r.vfrom, r.value
  FROM b.xattrs r JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.kv(branch, key, vfrom, value)
  SELECT m.new, r.key, r.vfrom, r.value FROM b.kv r JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.tool_calls(id, branch, parent, name, args, result, error, status, start_ns,
                            end_ns, exit_status, stdout, stderr, version_before, version_after)
  SELECT c.new, m.new, (SELECT p.new FROM temp.map_call p WHERE p.old = r.parent), r.name,
         r.args, r.result, r.error, r.status, r.start_ns, r.end_ns, r.exit_status, r.stdout,
         r.stderr, r.version_before, r.version_after
  FROM b.tool_calls r JOIN temp.map_call c ON c.old = r.id JOIN temp.map_branch m ON m.old = r.branch;
INSERT INTO main.call_output(call, stream, idx, chunk)
  SELECT c.new, r.stream, r.idx, (SELECT k.new FROM temp.map_chunk k WHERE k.old = r.chunk)
  FROM b.call_output r JOIN temp.map_call c ON c.old = r.call;
UPDATE main.meta SET value = max(value, (SELECT coalesce(max(ino), 0) + 1 FROM b.inodes))
  WHERE key = 'next_ino';
)sql";

constexpr const char* kHasSession = "SELECT 1 FROM main.sessions WHERE name = ?1";
constexpr const char* kInsertBundleMeta =
    "INSERT INTO b.bundle(key, value) VALUES ('format', ?1), ('session', ?2), ('created_ns', ?3)";

Result<int64_t> ScalarInt(sql::Connection& conn, const std::string& query) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.PrepareUncached(query));
  ASSIGN_OR_RETURN(bool row, s.Step(query));
  if (!row) return Internal(query + ": no row");
  return s.Int(0);
}

// The first column of the first row of `query` as text, up to its first NUL
// ("" for NULL: a damaged bundle may hold one anywhere); nullopt when the
// query fails or returns no row.
std::optional<std::string> FirstText(sql::Connection& conn, const char* query) {
  auto s = conn.PrepareUncached(query);
  if (!s.ok()) return std::nullopt;
  Result<bool> row = s->Step();
  if (!row.ok() || !*row) return std::nullopt;
  return std::string(s->Text(0).c_str());
}

// Whether the store attached as main has a session named `name`; false, too,
// when the lookup fails after it was prepared.
Result<bool> HasSession(sql::Connection& conn, std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.PrepareUncached(kHasSession));
  Result<bool> row = s.BindText(1, name).Step();
  return row.ok() && *row;
}

// XXH3-128 over every row of every bundle table (the checksum row itself
// excepted), in a fixed order, as hex; only over the session's own state
// (not `meta`, `chunks` or `bundle`) with `state_only`.
Result<std::string> RowsChecksum(sql::Connection& conn, bool state_only = false) {
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) return Internal("out of memory");
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> owner(state, XXH3_freeState);
  XXH3_128bits_reset(state);
  for (const TableOrder& t : kTables) {
    if (state_only && (std::strcmp(t.table, "chunks") == 0 || std::strcmp(t.table, "bundle") == 0 ||
                       std::strcmp(t.table, "meta") == 0)) {
      continue;
    }
    XXH3_128bits_update(state, t.table, std::strlen(t.table));
    std::string query = std::string("SELECT * FROM ") + t.table +
                        (std::strcmp(t.table, "bundle") == 0 ? " WHERE key != 'checksum'" : "") +
                        " ORDER BY " + t.order;
    ASSIGN_OR_RETURN(sql::Statement s, conn.PrepareUncached(query));
    RETURN_IF_ERROR(s.ForEachRow(
        [&](sql::Statement& row) {
          for (int i = 0, n = row.ColumnCount(); i < n; ++i) {
            const sql::ColumnType type = row.Type(i);
            // SQLite's own type code (see ColumnType): bundles hold checksums of it.
            const auto code = static_cast<unsigned char>(type);
            XXH3_128bits_update(state, &code, 1);
            if (type == sql::ColumnType::kInteger) {
              int64_t v = row.Int(i);
              XXH3_128bits_update(state, &v, sizeof(v));
            } else if (type == sql::ColumnType::kFloat) {
              double v = row.Double(i);
              XXH3_128bits_update(state, &v, sizeof(v));
            } else if (type != sql::ColumnType::kNull) {
              std::span<const uint8_t> bytes = row.Blob(i);
              uint64_t len = bytes.size();
              XXH3_128bits_update(state, &len, sizeof(len));
              if (len > 0) XXH3_128bits_update(state, bytes.data(), len);
            }
          }
          return Status::Ok();
        },
        "reading the bundle"));
  }
  XXH128_hash_t h = XXH3_128bits_digest(state);
  char hex[33];
  std::snprintf(hex, sizeof(hex), "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return std::string(hex);
}

Status Exec(sql::Connection& conn, const char* query, std::string_view session) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.PrepareUncached(query));
  if (s.ParameterCount() >= 1) s.BindText(1, session);
  return s.Step(query).status();
}

Status Attach(sql::Connection& conn, const std::string& path) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.PrepareUncached("ATTACH DATABASE ?1 AS b"));
  return s.BindText(1, path).Step("cannot open " + path).status();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

}  // namespace

Result<std::string> BundleChecksum(sql::Connection& bundle) { return RowsChecksum(bundle); }

Result<std::string> BundleStateDigest(sql::Connection& bundle) {
  return RowsChecksum(bundle, /*state_only=*/true);
}

namespace {

constexpr std::string_view kRowsMagic = "strata-rows 1\n";

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Reads a BundleRows stream, every read bounds-checked.
class RowsReader {
 public:
  explicit RowsReader(std::string_view in) : in_(in) {}
  bool done() const { return at_ == in_.size(); }
  bool Byte(char* c) {
    if (at_ >= in_.size()) return false;
    *c = in_[at_++];
    return true;
  }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      char c;
      if (!Byte(&c)) return false;
      *v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if ((c & 0x80) == 0) return true;
    }
    return false;
  }
  bool Fixed64(uint64_t* v) {
    if (in_.size() - at_ < 8) return false;
    *v = 0;
    for (int i = 7; i >= 0; --i) *v = (*v << 8) | static_cast<uint8_t>(in_[at_ + i]);
    at_ += 8;
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (in_.size() - at_ < n) return false;
    *out = in_.substr(at_, n);
    at_ += n;
    return true;
  }
  bool CString(std::string* out) {
    size_t end = in_.find('\0', at_);
    if (end == std::string_view::npos) return false;
    *out = std::string(in_.substr(at_, end - at_));
    at_ = end + 1;
    return true;
  }

 private:
  std::string_view in_;
  size_t at_ = 0;
};

Status WriteRows(std::string_view rows, const std::string& bundle_path) {
  auto malformed = [](const std::string& why) {
    return Corruption("the bundle's rows are malformed (" + why + ")");
  };
  ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kReadWriteCreate));
  RETURN_IF_ERROR(catalog::EnsureSchema(*conn, bundle_path, 65536, 0).status());
  RETURN_IF_ERROR(conn->Exec(kCreateBundleTable));
  ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(*conn));
  RowsReader in(rows);
  size_t table_index = 0;
  while (!in.done()) {
    char tag;
    std::string table;
    if (!in.Byte(&tag) || tag != 'T' || !in.CString(&table)) return malformed("a table expected");
    // The tables in their order, each at most once.
    while (table_index < std::size(kTables) && table != kTables[table_index].table) ++table_index;
    if (table_index == std::size(kTables)) return malformed("table '" + table + "'");
    ++table_index;
    std::map<uint64_t, sql::Statement> inserts;  // by column count
    for (;;) {
      if (!in.Byte(&tag)) return malformed("cut short");
      if (tag == 'E') break;
      uint64_t columns = 0;
      if (tag != 'R' || !in.Varint(&columns) || columns == 0 || columns > 64) {
        return malformed("a row expected in " + table);
      }
      auto it = inserts.find(columns);
      if (it == inserts.end()) {
        std::string sql = "INSERT OR REPLACE INTO " + table + " VALUES (?";
        for (uint64_t i = 1; i < columns; ++i) sql += ", ?";
        ASSIGN_OR_RETURN(sql::Statement insert, conn->PrepareUncached(sql + ")"));
        it = inserts.emplace(columns, std::move(insert)).first;
      }
      sql::Statement& insert = it->second;
      for (int i = 1; i <= static_cast<int>(columns); ++i) {
        uint64_t v = 0;
        std::string_view bytes;
        if (!in.Byte(&tag)) return malformed("cut short");
        if (tag == 'i' && in.Fixed64(&v)) {
          insert.Bind(i, static_cast<int64_t>(v));
        } else if (tag == 'n') {
          insert.BindNull(i);
        } else if ((tag == 't' || tag == 'b') && in.Varint(&v) && in.Bytes(v, &bytes)) {
          if (tag == 't') {
            insert.BindText(i, bytes);
          } else {
            insert.BindBytes(i, bytes);
          }
        } else {
          return malformed("a value of " + table);
        }
      }
      RETURN_IF_ERROR(insert.Run());
    }
  }
  return txn.Commit();
}

}  // namespace

Result<std::string> BundleRows(sql::Connection& bundle) {
  std::string out(kRowsMagic);
  for (const TableOrder& t : kTables) {
    out += 'T';
    out += t.table;
    out += '\0';
    ASSIGN_OR_RETURN(sql::Statement s, bundle.PrepareUncached(std::string("SELECT * FROM ") +
                                                              t.table + " ORDER BY " + t.order));
    RETURN_IF_ERROR(s.ForEachRow(
        [&](sql::Statement& row) {
          out += 'R';
          PutVarint(&out, static_cast<uint64_t>(row.ColumnCount()));
          for (int i = 0, n = row.ColumnCount(); i < n; ++i) {
            switch (row.Type(i)) {
              case sql::ColumnType::kInteger:
                out += 'i';
                PutFixed64(&out, static_cast<uint64_t>(row.Int(i)));
                break;
              case sql::ColumnType::kFloat:
                return Internal(std::string("a REAL value in table ") + t.table);
              case sql::ColumnType::kNull:
                out += 'n';
                break;
              default: {
                out += row.Type(i) == sql::ColumnType::kText ? 't' : 'b';
                std::span<const uint8_t> bytes = row.Blob(i);
                PutVarint(&out, bytes.size());
                out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
              }
            }
          }
          return Status::Ok();
        },
        "reading the bundle"));
    out += 'E';
  }
  return out;
}

Status BundleFromRows(std::string_view rows, const std::string& bundle_path) {
  if (PathExists(bundle_path)) return Status(Code::kExists, bundle_path + " exists");
  if (rows.substr(0, kRowsMagic.size()) != kRowsMagic) {
    return Corruption("the bundle's rows are malformed (no header)");
  }
  Status s = WriteRows(rows.substr(kRowsMagic.size()), bundle_path);
  if (!s.ok()) std::remove(bundle_path.c_str());  // nothing half made is left
  return s;
}



Result<BundleStats> ExportBundle(const std::string& store_path, std::string_view session,
                                 const std::string& bundle_path, int64_t now_ns,
                                 bool chunk_data) {
  if (PathExists(bundle_path)) {
    return Status(Code::kExists, bundle_path + " exists; export will not overwrite a file");
  }
  const std::string partial = bundle_path + ".partial";
  std::remove(partial.c_str());
  std::remove((partial + "-journal").c_str());
  Status s = [&]() -> Status {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(store_path, sql::OpenMode::kReadWriteCreate));
    ASSIGN_OR_RETURN(int64_t block_size,
                     ScalarInt(*conn, "SELECT value FROM meta WHERE key = 'block_size'"));
    {
      ASSIGN_OR_RETURN(auto bundle, sql::Connection::Open(partial, sql::OpenMode::kReadWriteCreate));
      RETURN_IF_ERROR(catalog::EnsureSchema(*bundle, partial, static_cast<uint32_t>(block_size), now_ns)
                          .status());
      RETURN_IF_ERROR(bundle->Exec(kCreateBundleTable));
    }
    RETURN_IF_ERROR(Attach(*conn, partial));
    RETURN_IF_ERROR(conn->Exec("BEGIN"));
    ASSIGN_OR_RETURN(bool found, HasSession(*conn, session));
    if (!found) {
      (void)conn->Exec("ROLLBACK");
      return NotFound("no session '" + std::string(session) + "'");
    }
    RETURN_IF_ERROR(Exec(*conn, kLineage, session));
    for (const char* q : kExportRows) RETURN_IF_ERROR(Exec(*conn, q, session));
    RETURN_IF_ERROR(Exec(*conn, chunk_data ? kExportChunks : kExportChunkRows, session));
    if (chunk_data) {
      ASSIGN_OR_RETURN(int64_t remote, ScalarInt(*conn, "SELECT count(*) FROM b.chunks WHERE codec = 3"));
      if (remote > 0) {
        (void)conn->Exec("ROLLBACK");
        return Status(Code::kNotSupported,
                      std::to_string(remote) + " of its chunks are still on the remote it was pulled "
                      "from: fetch them first (strata pull SESSION --eager)");
      }
    }
    {
      ASSIGN_OR_RETURN(sql::Statement meta, conn->PrepareUncached(kInsertBundleMeta));
      RETURN_IF_ERROR(
          meta.Bind(1, kBundleFormat).BindText(2, session).Bind(3, now_ns).Step("bundle").status());
    }
    RETURN_IF_ERROR(conn->Exec("COMMIT"));
    RETURN_IF_ERROR(conn->Exec("DETACH DATABASE b"));
    // The checksum, over the finished rows.
    ASSIGN_OR_RETURN(auto bundle, sql::Connection::Open(partial, sql::OpenMode::kReadWriteCreate));
    ASSIGN_OR_RETURN(std::string sum, RowsChecksum(*bundle));
    return bundle->Exec("INSERT INTO bundle(key, value) VALUES ('checksum', '" + sum + "')");
  }();
  if (!s.ok()) {
    std::remove(partial.c_str());
    return s.WithContext("exporting session '" + std::string(session) + "'");
  }
  if (std::rename(partial.c_str(), bundle_path.c_str()) != 0) {
    std::remove(partial.c_str());
    return IoError("cannot write " + bundle_path + ": " + std::strerror(errno));
  }
  BundleStats stats;
  stats.session = std::string(session);
  ASSIGN_OR_RETURN(auto bundle, sql::Connection::Open(bundle_path, sql::OpenMode::kQueryOnly));
  ASSIGN_OR_RETURN(int64_t branches, ScalarInt(*bundle, "SELECT count(*) FROM branches"));
  ASSIGN_OR_RETURN(int64_t chunk_count, ScalarInt(*bundle, "SELECT count(*) FROM chunks"));
  ASSIGN_OR_RETURN(int64_t bytes, ScalarInt(*bundle, "SELECT coalesce(sum(length(data)), 0) FROM chunks"));
  ASSIGN_OR_RETURN(int64_t calls, ScalarInt(*bundle, "SELECT count(*) FROM tool_calls"));
  stats.branches = static_cast<uint64_t>(branches);
  stats.chunks = static_cast<uint64_t>(chunk_count);
  stats.chunk_bytes = static_cast<uint64_t>(bytes);
  stats.calls = static_cast<uint64_t>(calls);
  return stats;
}

Result<BundleStats> ImportBundle(const std::string& store_path, const std::string& bundle_path,
                                 std::string_view as_session, chunks::ChunkStore& chunks) {
  if (!PathExists(bundle_path)) return NotFound("no bundle at " + bundle_path);
  auto refuse = [&](const std::string& why) {
    return Status(Code::kCorruption, "refusing " + bundle_path + ": " + why + "; nothing was imported");
  };
  BundleStats stats;
  int64_t theirs = 0;  // the bundle's block size
  {
    // Everything is checked before the store is touched.
    Status pre = catalog::PrecheckStoreFile(bundle_path);
    if (!pre.ok()) return refuse(pre.message());
    auto opened = sql::Connection::Open(bundle_path, sql::OpenMode::kQueryOnly);
    if (!opened.ok()) return refuse(opened.status().message());
    sql::Connection& bundle = **opened;
    auto app_id = ScalarInt(bundle, "PRAGMA application_id");
    auto has_table = ScalarInt(bundle, "SELECT count(*) FROM sqlite_schema WHERE name = 'bundle'");
    if (!app_id.ok() || *app_id != catalog::kApplicationId || !has_table.ok() || *has_table != 1) {
      return refuse("not a Strata bundle");
    }
    auto version = ScalarInt(bundle, "PRAGMA user_version");
    if (!version.ok() || *version != catalog::kSchemaVersion) {
      return refuse("made with schema version " + (version.ok() ? std::to_string(*version) : "?") +
                    ", this strata reads version " + std::to_string(catalog::kSchemaVersion));
    }
    if (FirstText(bundle, "PRAGMA integrity_check") != "ok") return refuse("the file is damaged");
    const std::string stored_sum =
        FirstText(bundle, "SELECT value FROM bundle WHERE key = 'checksum'").value_or("");
    auto sum = RowsChecksum(bundle);
    if (!sum.ok() || stored_sum.empty() || *sum != stored_sum) return refuse("its checksum does not match");
    auto block_size = ScalarInt(bundle, "SELECT value FROM meta WHERE key = 'block_size'");
    if (!block_size.ok()) return refuse("it records no block size");
    theirs = *block_size;
    std::optional<std::string> name =
        FirstText(bundle, "SELECT value FROM bundle WHERE key = 'session'");
    if (!name.has_value()) return refuse("it names no session");
    stats.session = as_session.empty() ? *name : std::string(as_session);
    // Exactly the session it names, under a name this store accepts.
    Status valid = catalog::ValidateSessionName(stats.session);
    if (!valid.ok()) return refuse(valid.message());
    auto sessions = ScalarInt(bundle, "SELECT count(*) FROM sessions");
    auto named = ScalarInt(bundle,
                           "SELECT count(*) FROM sessions WHERE name = "
                           "(SELECT value FROM bundle WHERE key = 'session')");
    if (!sessions.ok() || !named.ok() || *sessions != 1 || *named != 1) {
      return refuse("it does not hold exactly the one session it names");
    }
    // The whole of fsck on the bundle: its chunks, and rows that agree with
    // each other (a checksum only proves the rows are those it was made
    // over, by anyone).
    auto problems = fs::CheckStoreIntegrity(bundle, chunks, {});
    if (!problems.ok()) return refuse(problems.status().message());
    // A host reference whose file differs here says what this host is, not
    // that the bundle is damaged: reading it fails with EIO, as it would
    // where the bundle was made once the host changed.
    std::erase_if(*problems, [](const IntegrityProblem& p) { return p.kind == "host-changed"; });
    if (!problems->empty()) {
      const IntegrityProblem& p = problems->front();
      return refuse("it fails the integrity check (" + p.kind + ": " + p.detail +
                    (problems->size() > 1 ? ", and " + std::to_string(problems->size() - 1) +
                                                " more" : "") + ")");
    }
  }
  ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(store_path, sql::OpenMode::kReadWriteCreate));
  ASSIGN_OR_RETURN(int64_t ours, ScalarInt(*conn, "SELECT value FROM meta WHERE key = 'block_size'"));
  RETURN_IF_ERROR(Attach(*conn, bundle_path));
  Status s = [&]() -> Status {
    if (theirs != ours) {
      return InvalidArgument("the bundle's block size (" + std::to_string(theirs) +
                             ") differs from this store's (" + std::to_string(ours) + ")");
    }
    ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(*conn));
    RETURN_IF_ERROR(Exec(*conn, "CREATE TEMP TABLE import_name AS SELECT ?1 AS name", stats.session));
    ASSIGN_OR_RETURN(bool taken, HasSession(*conn, stats.session));
    if (taken) {
      return Status(Code::kExists, "session '" + stats.session + "' exists (import it under another name)");
    }
    RETURN_IF_ERROR(conn->Exec(kImportMaps));
    ASSIGN_OR_RETURN(int64_t reused, ScalarInt(*conn, "SELECT count(*) FROM temp.map_chunk WHERE new IS NOT NULL"));
    ASSIGN_OR_RETURN(int64_t all, ScalarInt(*conn, "SELECT count(*) FROM temp.map_chunk"));
    ASSIGN_OR_RETURN(int64_t bytes, ScalarInt(*conn, "SELECT coalesce(sum(length(data)), 0) FROM b.chunks"));
    ASSIGN_OR_RETURN(int64_t branches, ScalarInt(*conn, "SELECT count(*) FROM temp.map_branch"));
    ASSIGN_OR_RETURN(int64_t calls, ScalarInt(*conn, "SELECT count(*) FROM temp.map_call"));
    RETURN_IF_ERROR(conn->Exec(kImportRows));
    // The rows must have made the session, on one of the bundle's branches
    // (rows that disagree can make nothing: then refuse, do not commit).
    ASSIGN_OR_RETURN(int64_t made, ScalarInt(*conn,
        "SELECT count(*) FROM main.sessions s JOIN temp.map_branch m ON m.new = s.branch"
        " WHERE s.name = (SELECT name FROM temp.import_name)"));
    if (made != 1) return Corruption("the bundle's session is not on one of its branches");
    stats.chunks = static_cast<uint64_t>(all);
    stats.chunks_reused = static_cast<uint64_t>(reused);
    stats.chunk_bytes = static_cast<uint64_t>(bytes);
    stats.branches = static_cast<uint64_t>(branches);
    stats.calls = static_cast<uint64_t>(calls);
    return txn.Commit();
  }();
  (void)conn->Exec("DROP TABLE IF EXISTS temp.import_name");
  (void)conn->Exec("DETACH DATABASE b");
  if (!s.ok()) {
    // A statement that fails on the bundle's rows (a constraint, a missing
    // column) means a bad bundle, not a bug here.
    const Code code = s.code() == Code::kInternal ? Code::kCorruption : s.code();
    return Status(code, s.message()).WithContext("importing " + bundle_path + " (nothing was imported)");
  }
  return stats;
}

}  // namespace strata
