#include "catalog/layers.h"

#include <optional>

#include "catalog/branches.h"

namespace strata::catalog {

namespace {

struct Level {
  BranchId branch = 0;
  Version limit = 0;
  // Only rows newer than this (a level brought up from a view a layer
  // already holds, of the same branch at an older version).
  Version after = 0;
};

constexpr const char* kCountLevels = "SELECT count(*) FROM ancestry WHERE branch = ?1";
constexpr const char* kLevels =
    "SELECT ancestor, vlimit FROM ancestry WHERE branch = ?1 ORDER BY depth";
constexpr const char* kIsLayer = "SELECT 1 FROM layers WHERE branch = ?1";
constexpr const char* kFindLayerView =
    "SELECT layer, layer_version FROM layer_views WHERE branch = ?1 AND version = ?2";
// The newest view of branch ?1 older than version ?2 that a layer holds.
constexpr const char* kFindOlderLayerView =
    "SELECT version, layer, layer_version FROM layer_views WHERE branch = ?1 AND version < ?2"
    " ORDER BY version DESC LIMIT 1";
constexpr const char* kRecordLayerView =
    "INSERT INTO layer_views(branch, version, layer, layer_version) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kInsertLayer = "INSERT INTO layers(branch, created_ns) VALUES (?1, ?2)";
constexpr const char* kDropLevels = "DELETE FROM ancestry WHERE branch = ?1 AND depth >= 1";
constexpr const char* kInsertLevel =
    "INSERT INTO ancestry(branch, depth, ancestor, vlimit) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kLongAncestries =
    "SELECT branch FROM ancestry GROUP BY branch HAVING count(*) > ?1 ORDER BY branch LIMIT ?2";

// The levels being absorbed, shallowest (depth 0) first.
constexpr const char* kPrepareAbsorbed = R"sql(
CREATE TEMP TABLE IF NOT EXISTS compact_levels (
  depth    INTEGER PRIMARY KEY,
  ancestor INTEGER NOT NULL,
  vlimit   INTEGER NOT NULL,
  vafter   INTEGER NOT NULL);
DELETE FROM temp.compact_levels;
)sql";
constexpr const char* kInsertAbsorbed =
    "INSERT INTO temp.compact_levels(depth, ancestor, vlimit, vafter) VALUES (?1, ?2, ?3, ?4)";

// The winning row of every key the absorbed levels hold, written to layer ?1
// at version ?2: for each key the shallowest level's newest row at or below
// that level's limit, tombstones included, as a read would pick it. Block
// and xattr rows are found through the inodes the levels changed: a change
// of either also writes the inode's row at the same version (Diff relies on
// the same rule), and those tables have no (branch, vfrom) index.
#define STRATA_TOUCHED_INOS                              \
  "WITH touched(ino) AS ("                               \
  " SELECT DISTINCT r.ino FROM temp.compact_levels a"    \
  " JOIN inodes r ON r.branch = a.ancestor AND r.vfrom <= a.vlimit AND r.vfrom > a.vafter)"
constexpr const char* kCopyWinners[] = {
    R"sql(
INSERT INTO inodes(ino, branch, vfrom, deleted, mode, nlink, uid, gid, rdev, size, atime_ns,
                   mtime_ns, ctime_ns, parent, nblocks, target)
SELECT ino, ?1, ?2, deleted, mode, nlink, uid, gid, rdev, size, atime_ns, mtime_ns, ctime_ns,
       parent, nblocks, target FROM (
  SELECT r.*, row_number() OVER (PARTITION BY r.ino ORDER BY a.depth, r.vfrom DESC) AS n
  FROM temp.compact_levels a JOIN inodes r ON r.branch = a.ancestor AND r.vfrom <= a.vlimit AND r.vfrom > a.vafter)
WHERE n = 1
)sql",
    R"sql(
INSERT INTO dentries(parent, name, branch, vfrom, ino, type)
SELECT parent, name, ?1, ?2, ino, type FROM (
  SELECT r.*, row_number() OVER (PARTITION BY r.parent, r.name
                                 ORDER BY a.depth, r.vfrom DESC) AS n
  FROM temp.compact_levels a JOIN dentries r ON r.branch = a.ancestor AND r.vfrom <= a.vlimit AND r.vfrom > a.vafter)
WHERE n = 1
)sql",
    STRATA_TOUCHED_INOS R"sql(
INSERT INTO blocks(ino, idx, branch, vfrom, chunk)
SELECT ino, idx, ?1, ?2, chunk FROM (
  SELECT r.ino AS ino, r.idx AS idx, r.chunk AS chunk,
         row_number() OVER (PARTITION BY r.ino, r.idx ORDER BY a.depth, r.vfrom DESC) AS n
  FROM touched t CROSS JOIN temp.compact_levels a
  JOIN blocks r ON r.ino = t.ino AND r.branch = a.ancestor AND r.vfrom <= a.vlimit AND r.vfrom > a.vafter)
WHERE n = 1
)sql",
    STRATA_TOUCHED_INOS R"sql(
INSERT INTO xattrs(ino, name, branch, vfrom, value)
SELECT ino, name, ?1, ?2, value FROM (
  SELECT r.ino AS ino, r.name AS name, r.value AS value,
         row_number() OVER (PARTITION BY r.ino, r.name ORDER BY a.depth, r.vfrom DESC) AS n
  FROM touched t CROSS JOIN temp.compact_levels a
  JOIN xattrs r ON r.ino = t.ino AND r.branch = a.ancestor AND r.vfrom <= a.vlimit AND r.vfrom > a.vafter)
WHERE n = 1
)sql",
    R"sql(
INSERT INTO kv(branch, key, vfrom, value)
SELECT ?1, key, ?2, value FROM (
  SELECT r.*, row_number() OVER (PARTITION BY r.key ORDER BY a.depth, r.vfrom DESC) AS n
  FROM temp.compact_levels a JOIN kv r ON r.branch = a.ancestor AND r.vfrom <= a.vlimit AND r.vfrom > a.vafter)
WHERE n = 1
)sql",
};
#undef STRATA_TOUCHED_INOS

Result<std::vector<Level>> Levels(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kLevels));
  s.Bind(1, branch);
  std::vector<Level> out;
  RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) {
    out.push_back(Level{row.Int(0), row.Int(1)});
    return Status::Ok();
  }));
  if (out.empty()) return NotFound("no branch " + std::to_string(branch));
  return out;
}

Result<std::optional<Level>> FindLayerView(sql::Connection& conn, Level view) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kFindLayerView));
  s.Bind(1, view.branch).Bind(2, view.limit);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<Level>();
  return std::optional<Level>(Level{s.Int(0), s.Int(1)});
}

Result<BranchId> NewLayer(sql::Connection& conn, int64_t now_ns) {
  ASSIGN_OR_RETURN(BranchId layer, CreateRootBranch(conn, now_ns));
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInsertLayer));
  RETURN_IF_ERROR(s.Bind(1, layer).Bind(2, now_ns).Run());
  return layer;
}

// Writes the winners of `absorbed` (shallowest first) into `layer` at `version`.
Status CopyWinners(sql::Connection& conn, const std::vector<Level>& absorbed, BranchId layer,
                   Version version) {
  RETURN_IF_ERROR(conn.Exec(kPrepareAbsorbed));
  {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInsertAbsorbed));
    for (size_t i = 0; i < absorbed.size(); ++i) {
      RETURN_IF_ERROR(s.Bind(1, static_cast<int64_t>(i))
                          .Bind(2, absorbed[i].branch)
                          .Bind(3, absorbed[i].limit)
                          .Bind(4, absorbed[i].after)
                          .Run());
    }
  }
  for (const char* copy : kCopyWinners) {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(copy));
    RETURN_IF_ERROR(s.Bind(1, layer).Bind(2, version).Run());
  }
  return Status::Ok();  // kPrepareAbsorbed empties the table before the next use
}

Status RecordLayerView(sql::Connection& conn, Level view, Level layer) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kRecordLayerView));
  return s.Bind(1, view.branch).Bind(2, view.limit).Bind(3, layer.branch).Bind(4, layer.limit).Run();
}

// Writes the winners of `absorbed` into `layer` at its head version, freezes
// it, and records that the new version holds `view`.
Result<Level> FillLayer(sql::Connection& conn, BranchId layer, const std::vector<Level>& absorbed,
                        Level view) {
  ASSIGN_OR_RETURN(Version version, HeadVersion(conn, layer));
  RETURN_IF_ERROR(CopyWinners(conn, absorbed, layer, version));
  ASSIGN_OR_RETURN(Version frozen, FreezeHead(conn, layer));
  const Level made{layer, frozen};
  RETURN_IF_ERROR(RecordLayerView(conn, view, made));
  return made;
}

// A layer version holding `view`, made from one that holds an older view of
// the same branch by adding that branch's newer rows in place (a cheap step:
// the siblings forked from one branch at successive versions). Nothing when
// there is none, or it cannot grow in place.
Result<std::optional<Level>> LayerFromOlderView(sql::Connection& conn, Level view) {
  Version older = 0;
  Level layer;
  {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kFindOlderLayerView));
    s.Bind(1, view.branch).Bind(2, view.limit);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<Level>();
    older = s.Int(0);
    layer = Level{s.Int(1), s.Int(2)};
  }
  ASSIGN_OR_RETURN(Version head, HeadVersion(conn, layer.branch));
  if (head != layer.limit + 1) return std::optional<Level>();
  ASSIGN_OR_RETURN(Level grown,
                   FillLayer(conn, layer.branch, {Level{view.branch, view.limit, older}}, view));
  return std::optional<Level>(grown);
}

// The levels to read instead of `run` (a branch's levels between itself and
// its root), at most kMaxReadLevels - 2 of them, the last a layer. Copies as
// little as it can:
//  - the shallowest level that is a layer, or whose view a layer holds (or
//    can hold by adding that level's rows newer than an older view it
//    holds), and everything below it, are that layer, if the levels above
//    it fit;
//  - otherwise the levels above it are added to that layer in place, when
//    it is the layer's newest version (a chain of forks: only their rows);
//  - otherwise (no layer yet, or a layer that grew another way since) a new
//    layer takes the deepest levels, keeping the shallowest ones that fit
//    above it. Those kept are the ones siblings differ in (each fork of the
//    same parent sees it at another version), so siblings reuse the new
//    layer through the view it records.
Result<std::vector<Level>> CompactRun(sql::Connection& conn, const std::vector<Level>& run,
                                      int64_t now_ns) {
  std::optional<Level> base;
  size_t above = run.size();
  for (size_t i = 0; i < run.size() && !base.has_value(); ++i) {
    ASSIGN_OR_RETURN(bool layer, IsLayer(conn, run[i].branch));
    if (layer) {
      base = run[i];
    } else {
      ASSIGN_OR_RETURN(base, FindLayerView(conn, run[i]));
      if (!base.has_value()) {
        ASSIGN_OR_RETURN(base, LayerFromOlderView(conn, run[i]));
      }
    }
    if (base.has_value()) above = i;
  }
  // Besides these, a branch reads itself, the layer and its root.
  const size_t room = static_cast<size_t>(kMaxReadLevels) - 3;
  auto kept_above = [&](size_t n, Level layer) {
    std::vector<Level> out(run.begin(), run.begin() + static_cast<std::ptrdiff_t>(n));
    out.push_back(layer);
    return out;
  };
  if (base.has_value() && above <= room) return kept_above(above, *base);
  if (base.has_value()) {
    ASSIGN_OR_RETURN(Version head, HeadVersion(conn, base->branch));
    if (head == base->limit + 1) {
      std::vector<Level> absorbed(run.begin(), run.begin() + static_cast<std::ptrdiff_t>(above));
      ASSIGN_OR_RETURN(Level grown, FillLayer(conn, base->branch, absorbed, run[0]));
      return std::vector<Level>{grown};
    }
  }
  std::vector<Level> absorbed(run.begin() + static_cast<std::ptrdiff_t>(room),
                              run.begin() + static_cast<std::ptrdiff_t>(above));
  if (base.has_value()) absorbed.push_back(*base);
  ASSIGN_OR_RETURN(BranchId layer, NewLayer(conn, now_ns));
  ASSIGN_OR_RETURN(Level made, FillLayer(conn, layer, absorbed, run[room]));
  return kept_above(room, made);
}

}  // namespace

Result<int> ReadLevels(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kCountLevels));
  s.Bind(1, branch);
  ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? static_cast<int>(s.Int(0)) : 0;
}

Result<bool> IsLayer(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kIsLayer));
  s.Bind(1, branch);
  return s.Step();
}

Result<bool> CompactBranch(sql::Connection& conn, BranchId branch, int64_t now_ns) {
  ASSIGN_OR_RETURN(std::vector<Level> levels, Levels(conn, branch));
  if (levels.size() <= static_cast<size_t>(kMaxReadLevels)) return false;
  // Between the branch itself and its root.
  const std::vector<Level> run(levels.begin() + 1, levels.end() - 1);
  ASSIGN_OR_RETURN(std::vector<Level> middle, CompactRun(conn, run, now_ns));
  middle.push_back(levels.back());
  ASSIGN_OR_RETURN(sql::Statement drop, conn.Prepare(kDropLevels));
  RETURN_IF_ERROR(drop.Bind(1, branch).Run());
  ASSIGN_OR_RETURN(sql::Statement insert, conn.Prepare(kInsertLevel));
  for (size_t i = 0; i < middle.size(); ++i) {
    RETURN_IF_ERROR(insert.Bind(1, branch)
                        .Bind(2, static_cast<int64_t>(i + 1))
                        .Bind(3, middle[i].branch)
                        .Bind(4, middle[i].limit)
                        .Run());
  }
  return true;
}

Result<std::vector<BranchId>> BranchesToCompact(sql::Connection& conn, int limit) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kLongAncestries));
  s.Bind(1, kMaxReadLevels).Bind(2, limit);
  std::vector<BranchId> out;
  RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) {
    out.push_back(row.Int(0));
    return Status::Ok();
  }));
  return out;
}

}  // namespace strata::catalog
