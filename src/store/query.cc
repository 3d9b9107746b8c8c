#include "store/query.h"

#include <cctype>
#include <memory>
#include <optional>
#include <span>

#include "catalog/calls.h"
#include "chunks/chunk_store.h"
#include "sql/database.h"

namespace strata {

namespace {

// The views. Each resolves versioned rows at every session's head with the
// same rule as the tree code (shallowest ancestor, newest row; see
// docs/FORMAT.md). In `files`, CROSS JOIN fixes the join order (tree rows
// first) and the unary + on vfrom keeps the planner on the primary keys
// (parent, ...) and (ino, ...) instead of the (branch, vfrom) indexes:
// otherwise it scans a whole branch per directory or per inode (minutes for
// 100,000 files instead of a fraction of a second, whatever the WHERE). Table names inside are qualified with `main.` because the
// TEMP views shadow the tables they are named after.
constexpr const char* kViews = R"sql(
CREATE TEMP VIEW sessions AS
  SELECT s.name AS name, s.branch AS branch, b.head_version AS head_version,
         b.parent AS base_branch, b.parent_version AS base_version, s.created_ns AS created_ns
  FROM main.sessions s JOIN main.branches b ON b.id = s.branch;

CREATE TEMP VIEW snapshots AS
  SELECT sn.id AS id, sn.name AS name, sb.session AS session, sn.branch AS branch,
         sn.version AS version, sn.created_ns AS created_ns
  FROM main.snapshots sn LEFT JOIN main.session_branches sb ON sb.branch = sn.branch;

CREATE TEMP VIEW tool_calls AS
  SELECT c.id AS id, sb.session AS session, c.parent AS parent, c.name AS name, c.args AS args,
         c.result AS result, c.error AS error, c.status AS status, c.start_ns AS start_ns,
         c.end_ns AS end_ns, c.end_ns - c.start_ns AS duration_ns, c.exit_status AS exit_status,
         coalesce(c.stdout, call_output(c.id, 1)) AS stdout,
         coalesce(c.stderr, call_output(c.id, 2)) AS stderr, c.branch AS branch,
         c.version_before AS version_before, c.version_after AS version_after
  FROM main.tool_calls c LEFT JOIN main.session_branches sb ON sb.branch = c.branch;

CREATE TEMP VIEW kv AS
  SELECT session, key, value FROM (
    SELECT s.name AS session, r.key AS key, r.value AS value,
           row_number() OVER (PARTITION BY s.name, r.key ORDER BY a.depth, r.vfrom DESC) AS n
    FROM main.sessions s JOIN main.ancestry a ON a.branch = s.branch
    JOIN main.kv r ON r.branch = a.ancestor
     AND r.vfrom <= CASE WHEN a.depth = 0 THEN 9223372036854775807 ELSE a.vlimit END)
  WHERE n = 1 AND value IS NOT NULL;

CREATE TEMP VIEW files AS
  WITH RECURSIVE tree(session, branch, ino, path) AS (
    SELECT name, branch, 1, '/' FROM main.sessions
    UNION ALL
    -- The children of each directory: entries of any ancestor, visible at its
    -- limit, and not hidden by a shallower or newer row of the same name
    -- (a newest row with ino 0 is a tombstone: the name is gone).
    SELECT t.session, t.branch, d.ino,
           CASE t.path WHEN '/' THEN '/' ELSE t.path || '/' END || CAST(d.name AS TEXT)
    FROM tree t
    CROSS JOIN main.ancestry a ON a.branch = t.branch
    CROSS JOIN main.dentries d ON d.parent = t.ino AND d.branch = a.ancestor
     AND +d.vfrom <= CASE WHEN a.depth = 0 THEN 9223372036854775807 ELSE a.vlimit END
    WHERE d.ino != 0 AND NOT EXISTS (
      SELECT 1 FROM main.ancestry a2
      JOIN main.dentries d2 ON d2.parent = d.parent AND d2.branch = a2.ancestor AND d2.name = d.name
       AND +d2.vfrom <= CASE WHEN a2.depth = 0 THEN 9223372036854775807 ELSE a2.vlimit END
      WHERE a2.branch = t.branch
        AND (a2.depth < a.depth OR (a2.depth = a.depth AND d2.vfrom > d.vfrom))))
  SELECT t.session AS session, t.path AS path,
         CASE i.mode & 61440 WHEN 32768 THEN 'file' WHEN 16384 THEN 'dir'
                             WHEN 40960 THEN 'symlink' ELSE 'other' END AS type,
         i.mode & 4095 AS mode, i.size AS size, i.uid AS uid, i.gid AS gid,
         i.nlink AS nlink, i.mtime_ns AS mtime_ns, t.ino AS ino,
         CAST(i.target AS TEXT) AS target
  FROM tree t
  CROSS JOIN main.ancestry a ON a.branch = t.branch
  CROSS JOIN main.inodes i ON i.ino = t.ino AND i.branch = a.ancestor
   AND +i.vfrom <= CASE WHEN a.depth = 0 THEN 9223372036854775807 ELSE a.vlimit END
  WHERE i.deleted = 0 AND NOT EXISTS (
    SELECT 1 FROM main.ancestry a2
    JOIN main.inodes i2 ON i2.ino = i.ino AND i2.branch = a2.ancestor
     AND +i2.vfrom <= CASE WHEN a2.depth = 0 THEN 9223372036854775807 ELSE a2.vlimit END
    WHERE a2.branch = t.branch
      AND (a2.depth < a.depth OR (a2.depth = a.depth AND i2.vfrom > i.vfrom)));
)sql";

bool OnlySpaceOrComments(std::string_view rest) {
  size_t i = 0;
  while (i < rest.size()) {
    if (std::isspace(static_cast<unsigned char>(rest[i])) || rest[i] == ';') {
      ++i;
    } else if (rest.substr(i, 2) == "--") {
      size_t nl = rest.find('\n', i);
      i = nl == std::string_view::npos ? rest.size() : nl + 1;
    } else if (rest.substr(i, 2) == "/*") {
      size_t end = rest.find("*/", i + 2);
      i = end == std::string_view::npos ? rest.size() : end + 2;
    } else {
      return false;
    }
  }
  return true;
}

QueryCell Cell(const sql::Statement& s, int i) {
  QueryCell c;
  const sql::ColumnType type = s.Type(i);
  switch (type) {
    case sql::ColumnType::kInteger:
      c.type = QueryCell::Type::kInteger;
      c.integer = s.Int(i);
      break;
    case sql::ColumnType::kFloat:
      c.type = QueryCell::Type::kReal;
      c.real = s.Double(i);
      break;
    case sql::ColumnType::kText:
    case sql::ColumnType::kBlob:
      c.type = type == sql::ColumnType::kText ? QueryCell::Type::kText : QueryCell::Type::kBlob;
      c.bytes = s.BlobString(i);
      break;
    default:
      break;
  }
  return c;
}

// call_output(CALL, STREAM): a tool call's stdout (1) or stderr (2), put
// together from its chunks (NULL when it has none).
Result<std::optional<std::string>> CallOutput(sql::Connection& conn, chunks::ChunkStore& chunks,
                                              std::span<const int64_t> args) {
  ASSIGN_OR_RETURN(auto ids, catalog::OutputChunks(conn, args[0], static_cast<int>(args[1])));
  if (ids.empty()) return std::optional<std::string>();
  std::string out;
  for (int64_t id : ids) {
    ASSIGN_OR_RETURN(auto bytes, chunks.Get(conn, id));
    out.append(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  }
  return std::optional<std::string>(std::move(out));
}

}  // namespace

Result<QueryResult> RunReadOnlyQuery(const std::string& path, std::string_view statement) {
  ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(path, sql::OpenMode::kQueryOnly));
  chunks::ChunkStore chunks(nullptr, /*compression_level=*/0, /*cache_bytes=*/0);
  RETURN_IF_ERROR(
      conn->DefineFunction("call_output", 2, [&db = *conn, &chunks](std::span<const int64_t> args) {
        return CallOutput(db, chunks, args);
      }));
  // query_only also refuses TEMP views: lift it while they are defined (on
  // this connection's own temp schema), then the authorizer guards the rest.
  RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 0"));
  RETURN_IF_ERROR(conn->Exec(kViews));
  RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1"));
  RETURN_IF_ERROR(conn->AllowOnlyReads());
  std::string_view rest;
  auto prepared = conn->PrepareUncached(statement, &rest, /*context=*/"");
  if (!prepared.ok()) {
    if (prepared.status().code() == Code::kAccess) {  // refused by AllowOnlyReads
      return InvalidArgument(
          "only reading is allowed (SELECT over the views sessions, snapshots, tool_calls, kv, "
          "files); this statement would do more");
    }
    return InvalidArgument(prepared.status().message());
  }
  sql::Statement& stmt = *prepared;
  if (!OnlySpaceOrComments(rest)) return InvalidArgument("one statement at a time");
  if (!stmt.IsReadOnly()) {
    return InvalidArgument("statements that write are refused: the query tool is read-only");
  }
  QueryResult out;
  const int columns = stmt.ColumnCount();
  for (int i = 0; i < columns; ++i) out.columns.push_back(stmt.ColumnName(i));
  RETURN_IF_ERROR(stmt.ForEachRow(
      [&](sql::Statement& row) {
        std::vector<QueryCell> cells;
        cells.reserve(static_cast<size_t>(columns));
        for (int i = 0; i < columns; ++i) cells.push_back(Cell(row, i));
        out.rows.push_back(std::move(cells));
        return Status::Ok();
      },
      "query failed"));
  return out;
}

}  // namespace strata
