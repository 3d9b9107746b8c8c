#include "catalog/branches.h"

#include <algorithm>
#include <string>

#include "catalog/images.h"
#include "catalog/layers.h"

namespace strata::catalog {

namespace {

constexpr const char* kInsertBranch =
    "INSERT INTO branches(parent, parent_version, head_version, created_ns) "
    "VALUES (?1, ?2, 1, ?3)";
constexpr const char* kInsertAncestry =
    "INSERT INTO ancestry(branch, depth, ancestor, vlimit) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kInheritAncestry =
    "INSERT INTO ancestry(branch, depth, ancestor, vlimit) "
    "SELECT ?1, depth + 1, ancestor, CASE WHEN depth = 0 THEN ?3 ELSE vlimit END "
    "FROM ancestry WHERE branch = ?2";
constexpr const char* kSelectBranch =
    "SELECT parent, parent_version, head_version FROM branches WHERE id = ?1";
// The lineage of view (?1, ?2) through parent pointers, shallowest first; at
// most ?3 levels (the highest branch id, which no lineage without a cycle
// exceeds).
constexpr const char* kLineage = R"sql(
WITH RECURSIVE chain(branch, vlimit, depth) AS (
  SELECT ?1, ?2, 0
  UNION ALL
  SELECT b.parent, b.parent_version, c.depth + 1 FROM chain c JOIN branches b ON b.id = c.branch
  WHERE b.parent IS NOT NULL AND c.depth < ?3)
SELECT branch, vlimit FROM chain ORDER BY depth
)sql";
// O(log n), where count(*) would read the whole table on every call.
constexpr const char* kMaxBranchId = "SELECT coalesce(max(id), 0) FROM branches";
constexpr const char* kSelectHead = "SELECT head_version FROM branches WHERE id = ?1";
constexpr const char* kBumpHead =
    "UPDATE branches SET head_version = head_version + 1 WHERE id = ?1 "
    "RETURNING head_version - 1";
constexpr const char* kSelectAncestry =
    "SELECT ancestor, vlimit, depth FROM ancestry WHERE branch = ?1 ORDER BY depth";

constexpr const char* kDropSessionBranches =
    "INSERT OR IGNORE INTO dropped_branches(branch, dropped_ns)"
    " SELECT branch, ?2 FROM session_branches WHERE session = ?1";
constexpr const char* kDeleteSessionHistory = "DELETE FROM session_branches WHERE session = ?1";
constexpr const char* kDeleteSession = "DELETE FROM sessions WHERE name = ?1";
// Garbage: dropped branches that no live branch reads through (its levels,
// which may be layers) or descends from (its lineage, which history
// follows), and that no session still points at (a restore can point a
// session back at a branch it left). Layers that only dropped branches read
// through are dropped first.
// (No index on ancestry.ancestor: with one, the planner drives every read's
// join from the row table; the branches read through are listed once here.)
constexpr const char* kPrepareGarbageBranches = R"sql(
CREATE TEMP TABLE IF NOT EXISTS gc_branches (branch INTEGER PRIMARY KEY);
DELETE FROM temp.gc_branches;
CREATE TEMP TABLE IF NOT EXISTS gc_read (branch INTEGER PRIMARY KEY);
DELETE FROM temp.gc_read;
INSERT OR IGNORE INTO temp.gc_read
  SELECT ancestor FROM ancestry
  WHERE depth > 0 AND branch NOT IN (SELECT branch FROM dropped_branches);
INSERT OR IGNORE INTO dropped_branches(branch, dropped_ns)
  SELECT branch, created_ns FROM layers WHERE branch NOT IN (SELECT branch FROM temp.gc_read);
CREATE TEMP TABLE IF NOT EXISTS gc_lineage (branch INTEGER PRIMARY KEY);
DELETE FROM temp.gc_lineage;
WITH RECURSIVE up(branch) AS (
  SELECT id FROM branches WHERE id NOT IN (SELECT branch FROM dropped_branches)
  UNION
  SELECT b.parent FROM up JOIN branches b ON b.id = up.branch WHERE b.parent IS NOT NULL)
INSERT INTO temp.gc_lineage SELECT branch FROM up;
)sql";
// Up to ?1 of them.
constexpr const char* kFindGarbageBranches = R"sql(
INSERT INTO temp.gc_branches
  SELECT d.branch FROM dropped_branches d
  WHERE d.branch NOT IN (SELECT branch FROM session_branches)
    AND d.branch NOT IN (SELECT branch FROM temp.gc_lineage)
    AND d.branch NOT IN (SELECT branch FROM temp.gc_read)
  ORDER BY d.branch LIMIT ?1
)sql";
constexpr const char* kDeleteGarbageBranches = R"sql(
DELETE FROM inodes WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM dentries WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM blocks WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM xattrs WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM orphans WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM kv WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM call_output WHERE call IN
  (SELECT id FROM tool_calls WHERE branch IN (SELECT branch FROM temp.gc_branches));
DELETE FROM tool_calls WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM snapshots WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM ancestry WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM images WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM layer_views WHERE branch IN (SELECT branch FROM temp.gc_branches)
  OR layer IN (SELECT branch FROM temp.gc_branches);
DELETE FROM layers WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM host_entries WHERE branch IN (SELECT branch FROM temp.gc_branches);
DELETE FROM branches WHERE id IN (SELECT branch FROM temp.gc_branches);
DELETE FROM dropped_branches WHERE branch IN (SELECT branch FROM temp.gc_branches);
)sql";
// Regular files at a branch's head (?1): count, total size, newest ctime.
constexpr const char* kHeadUsage = R"sql(
SELECT count(*), coalesce(sum(size), 0), coalesce(max(ctime_ns), 0) FROM (
  SELECT r.deleted AS deleted, r.mode AS mode, r.size AS size, r.ctime_ns AS ctime_ns,
         row_number() OVER (PARTITION BY r.ino ORDER BY a.depth, r.vfrom DESC) AS n
  FROM ancestry a JOIN inodes r ON r.branch = a.ancestor
   AND +r.vfrom <= CASE WHEN a.depth = 0 THEN 9223372036854775807 ELSE a.vlimit END
  WHERE a.branch = ?1)
WHERE n = 1 AND deleted = 0 AND (mode & 61440) = 32768
)sql";
// The newest snapshot or tool call on any branch the session (?1) used.
constexpr const char* kLastEvents = R"sql(
SELECT max(coalesce((SELECT max(created_ns) FROM snapshots WHERE branch IN
                       (SELECT branch FROM session_branches WHERE session = ?1)), 0),
           coalesce((SELECT max(coalesce(end_ns, start_ns)) FROM tool_calls WHERE branch IN
                       (SELECT branch FROM session_branches WHERE session = ?1)), 0))
)sql";
// The session (and version) the first branch of session ?1 was forked from.
constexpr const char* kBase = R"sql(
SELECT sb2.session, b.parent_version FROM session_branches sb
JOIN branches b ON b.id = sb.branch
JOIN session_branches sb2 ON sb2.branch = b.parent
WHERE sb.session = ?1 ORDER BY sb.seq LIMIT 1
)sql";
constexpr const char* kInsertSession =
    "INSERT INTO sessions(name, branch, created_ns) VALUES (?1, ?2, ?3)";
constexpr const char* kUpdateSession = "UPDATE sessions SET branch = ?2 WHERE name = ?1";
constexpr const char* kSelectSession =
    "SELECT name, branch, created_ns FROM sessions WHERE name = ?1";
constexpr const char* kRecordSessionBranch =
    "INSERT INTO session_branches(session, seq, branch, since_ns) "
    "SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3 FROM session_branches WHERE session = ?1";
constexpr const char* kSessionBranches =
    "SELECT branch FROM session_branches WHERE session = ?1 ORDER BY seq DESC";
constexpr const char* kSnapshotNameUsed = "SELECT 1 FROM snapshots WHERE name = ?1 LIMIT 1";
constexpr const char* kListSessions =
    "SELECT name, branch, created_ns FROM sessions ORDER BY name";

constexpr const char* kInsertSnapshot =
    "INSERT INTO snapshots(branch, version, name, created_ns) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kListSnapshots =
    "SELECT id, branch, version, name, created_ns FROM snapshots WHERE branch = ?1 ORDER BY id";
constexpr const char* kFindSnapshot =
    "SELECT id, branch, version, name, created_ns FROM snapshots WHERE branch = ?1 AND name = ?2";

SessionInfo SessionFrom(const sql::Statement& s) {
  return SessionInfo{s.Text(0), s.Int(1), s.Int(2)};
}

SnapshotInfo SnapshotFrom(const sql::Statement& s) {
  return SnapshotInfo{s.Int(0), s.Int(1), s.Int(2), s.IsNull(3) ? "" : s.Text(3), s.Int(4)};
}

}  // namespace

Result<BranchId> CreateRootBranch(sql::Connection& conn, int64_t now_ns) {
  {
    ASSIGN_OR_RETURN(sql::Statement insert, conn.Prepare(kInsertBranch));
    RETURN_IF_ERROR(insert.BindNull(1).Bind(2, int64_t{0}).Bind(3, now_ns).Run());
  }
  BranchId id = conn.LastInsertRowId();
  ASSIGN_OR_RETURN(sql::Statement anc, conn.Prepare(kInsertAncestry));
  RETURN_IF_ERROR(anc.Bind(1, id).Bind(2, 0).Bind(3, id).Bind(4, kHead).Run());
  return id;
}

Result<BranchId> CreateChildBranch(sql::Connection& conn, BranchId parent, Version version,
                                   int64_t now_ns) {
  ASSIGN_OR_RETURN(Version head, HeadVersion(conn, parent));
  if (version < 1 || version >= head) {
    return InvalidArgument("version " + std::to_string(version) + " of branch " +
                           std::to_string(parent) + " is not a frozen version");
  }
  {
    ASSIGN_OR_RETURN(sql::Statement insert, conn.Prepare(kInsertBranch));
    RETURN_IF_ERROR(insert.Bind(1, parent).Bind(2, version).Bind(3, now_ns).Run());
  }
  BranchId id = conn.LastInsertRowId();
  {
    ASSIGN_OR_RETURN(sql::Statement anc, conn.Prepare(kInsertAncestry));
    RETURN_IF_ERROR(anc.Bind(1, id).Bind(2, 0).Bind(3, id).Bind(4, kHead).Run());
  }
  ASSIGN_OR_RETURN(sql::Statement inherit, conn.Prepare(kInheritAncestry));
  RETURN_IF_ERROR(inherit.Bind(1, id).Bind(2, parent).Bind(3, version).Run());
  return id;
}

Result<BranchInfo> GetBranch(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSelectBranch));
  s.Bind(1, branch);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no branch " + std::to_string(branch));
  BranchInfo info;
  info.id = branch;
  if (!s.IsNull(0)) info.parent = s.Int(0);
  info.parent_version = s.Int(1);
  info.head_version = s.Int(2);
  ASSIGN_OR_RETURN(auto lineage, Lineage(conn, View{branch, kHead}));
  info.depth = static_cast<int>(lineage.size()) - 1;
  ASSIGN_OR_RETURN(info.read_levels, ReadLevels(conn, branch));
  return info;
}

Result<Version> HeadVersion(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSelectHead));
  s.Bind(1, branch);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no branch " + std::to_string(branch));
  return s.Int(0);
}

Result<Version> FreezeHead(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kBumpHead));
  s.Bind(1, branch);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no branch " + std::to_string(branch));
  Version frozen = s.Int(0);
  RETURN_IF_ERROR(s.Run());  // finish the statement so the UPDATE completes
  return frozen;
}

Result<std::vector<std::pair<BranchId, Version>>> Ancestry(sql::Connection& conn, View view) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSelectAncestry));
  s.Bind(1, view.branch);
  std::vector<std::pair<BranchId, Version>> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.emplace_back(s.Int(0), s.Int(2) == 0 ? view.version : s.Int(1));
  }
  if (out.empty()) return NotFound("no branch " + std::to_string(view.branch));
  return out;
}

Result<std::vector<std::pair<BranchId, Version>>> Lineage(sql::Connection& conn, View view) {
  int64_t max_id = 0;
  {
    ASSIGN_OR_RETURN(sql::Statement top, conn.Prepare(kMaxBranchId));
    ASSIGN_OR_RETURN(bool row, top.Step());
    if (row) max_id = top.Int(0);
  }
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kLineage));
  s.Bind(1, view.branch).Bind(2, view.version).Bind(3, max_id);
  std::vector<std::pair<BranchId, Version>> out;
  RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) {
    out.emplace_back(row.Int(0), row.Int(1));
    return Status::Ok();
  }));
  if (static_cast<int64_t>(out.size()) > max_id) {
    return Corruption("the lineage of branch " + std::to_string(view.branch) + " is a cycle");
  }
  return out;
}

Status DeleteSession(sql::Connection& conn, std::string_view name, int64_t now_ns) {
  RETURN_IF_ERROR(GetSession(conn, name).status());
  ASSIGN_OR_RETURN(sql::Statement drop, conn.Prepare(kDropSessionBranches));
  RETURN_IF_ERROR(drop.BindText(1, name).Bind(2, now_ns).Run());
  for (const char* sql : {kDeleteSessionHistory, kDeleteSession}) {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(sql));
    RETURN_IF_ERROR(s.BindText(1, name).Run());
  }
  return Status::Ok();
}

Result<uint64_t> DeleteDroppedBranches(sql::Connection& conn, uint64_t limit) {
  RETURN_IF_ERROR(conn.Exec(kPrepareGarbageBranches));
  ASSIGN_OR_RETURN(sql::Statement find, conn.Prepare(kFindGarbageBranches));
  RETURN_IF_ERROR(find.Bind(1, static_cast<int64_t>(limit)).Run());
  ASSIGN_OR_RETURN(sql::Statement count, conn.Prepare("SELECT count(*) FROM temp.gc_branches"));
  ASSIGN_OR_RETURN(bool row, count.Step());
  const uint64_t n = row ? static_cast<uint64_t>(count.Int(0)) : 0;
  RETURN_IF_ERROR(count.Run());
  if (n > 0) RETURN_IF_ERROR(conn.Exec(kDeleteGarbageBranches));
  return n;
}

Result<SessionUsage> GetSessionUsage(sql::Connection& conn, std::string_view session) {
  ASSIGN_OR_RETURN(SessionInfo info, GetSession(conn, session));
  SessionUsage u;
  ASSIGN_OR_RETURN(sql::Statement head, conn.Prepare(kHeadUsage));
  head.Bind(1, info.branch);
  ASSIGN_OR_RETURN(bool row, head.Step());
  if (row) {
    u.files = static_cast<uint64_t>(head.Int(0));
    u.bytes = static_cast<uint64_t>(head.Int(1));
    u.last_activity_ns = std::max(info.created_ns, head.Int(2));
  }
  RETURN_IF_ERROR(head.Run());
  ASSIGN_OR_RETURN(sql::Statement events, conn.Prepare(kLastEvents));
  events.BindText(1, session);
  ASSIGN_OR_RETURN(row, events.Step());
  if (row) u.last_activity_ns = std::max(u.last_activity_ns, events.Int(0));
  RETURN_IF_ERROR(events.Run());
  ASSIGN_OR_RETURN(sql::Statement base, conn.Prepare(kBase));
  base.BindText(1, session);
  ASSIGN_OR_RETURN(row, base.Step());
  if (row) {
    u.base_session = base.Text(0);
    u.base_version = base.Int(1);
  }
  RETURN_IF_ERROR(base.Run());
  ASSIGN_OR_RETURN(u.base_image, BaseImage(conn, info.branch));
  return u;
}

Status ValidateName(std::string_view what, std::string_view name) {
  const std::string kind(what);
  if (name.empty() || name.size() > 128) {
    return InvalidArgument(kind + " name must be 1 to 128 characters");
  }
  if (name[0] == '.' || name[0] == '-') {
    return InvalidArgument(kind + " name '" + std::string(name) +
                           "' must not start with '.' or '-'");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return InvalidArgument(kind + " name '" + std::string(name) +
                             "' may contain only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

Status ValidateSessionName(std::string_view name) { return ValidateName("session", name); }

Status InsertSession(sql::Connection& conn, std::string_view name, BranchId branch,
                     int64_t now_ns) {
  RETURN_IF_ERROR(ValidateSessionName(name));
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInsertSession));
  Status st = s.BindText(1, name).Bind(2, branch).Bind(3, now_ns).Run();
  if (st.code() == Code::kExists) return Exists("session '" + std::string(name) + "' exists");
  RETURN_IF_ERROR(st);
  ASSIGN_OR_RETURN(sql::Statement record, conn.Prepare(kRecordSessionBranch));
  return record.BindText(1, name).Bind(2, branch).Bind(3, now_ns).Run();
}

Status SetSessionBranch(sql::Connection& conn, std::string_view name, BranchId branch,
                        int64_t now_ns) {
  {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kUpdateSession));
    RETURN_IF_ERROR(s.BindText(1, name).Bind(2, branch).Run());
    if (conn.Changes() == 0) return NotFound("no session '" + std::string(name) + "'");
  }
  ASSIGN_OR_RETURN(sql::Statement record, conn.Prepare(kRecordSessionBranch));
  return record.BindText(1, name).Bind(2, branch).Bind(3, now_ns).Run();
}

Result<std::vector<BranchId>> SessionBranches(sql::Connection& conn, std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSessionBranches));
  s.BindText(1, name);
  std::vector<BranchId> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(s.Int(0));
  }
  if (out.empty()) return NotFound("no session '" + std::string(name) + "'");
  return out;
}

Result<bool> SnapshotNameUsed(sql::Connection& conn, std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSnapshotNameUsed));
  s.BindText(1, name);
  return s.Step();
}

Result<SessionInfo> GetSession(sql::Connection& conn, std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSelectSession));
  s.BindText(1, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no session '" + std::string(name) + "'");
  return SessionFrom(s);
}

Result<std::vector<SessionInfo>> ListSessions(sql::Connection& conn) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kListSessions));
  std::vector<SessionInfo> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.push_back(SessionFrom(s));
  }
}

Result<int64_t> InsertSnapshot(sql::Connection& conn, BranchId branch, Version version,
                               std::string_view name, int64_t now_ns) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInsertSnapshot));
  s.Bind(1, branch).Bind(2, version).Bind(4, now_ns);
  if (name.empty()) {
    s.BindNull(3);
  } else {
    s.BindText(3, name);
  }
  Status st = s.Run();
  if (st.code() == Code::kExists) {
    return Exists("a snapshot named '" + std::string(name) + "' exists");
  }
  RETURN_IF_ERROR(st);
  return conn.LastInsertRowId();
}

Result<std::vector<SnapshotInfo>> ListSnapshots(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kListSnapshots));
  s.Bind(1, branch);
  std::vector<SnapshotInfo> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.push_back(SnapshotFrom(s));
  }
}

Result<SnapshotInfo> FindSnapshot(sql::Connection& conn, BranchId branch, std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kFindSnapshot));
  s.Bind(1, branch).BindText(2, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no snapshot named '" + std::string(name) + "'");
  return SnapshotFrom(s);
}

}  // namespace strata::catalog
