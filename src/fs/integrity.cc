#include "fs/integrity.h"

#include <map>
#include <optional>
#include <string>

#include "catalog/branches.h"
#include "fs/tree_check.h"
#include "tree/rows.h"

namespace strata::fs {

namespace {

constexpr const char* kMissingChunks =
    "SELECT b.ino, b.branch, b.idx, b.chunk FROM blocks b WHERE b.chunk IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = b.chunk)";
constexpr const char* kMissingOutputChunks =
    "SELECT o.call, o.stream, o.idx, o.chunk FROM call_output o"
    " WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = o.chunk)";
constexpr const char* kAllChunks = "SELECT id FROM chunks ORDER BY id";
// Columns whose SQLite type lookups depend on (a name stored as an integer
// never matches the blob a lookup binds): each with the types it may hold.
struct TypedColumn {
  const char* table;
  const char* column;
  const char* types;
};
constexpr TypedColumn kTypedColumns[] = {
    {"dentries", "name", "'blob'"},          {"dentries", "ino", "'integer'"},
    {"dentries", "parent", "'integer'"},     {"dentries", "type", "'integer'"},
    {"inodes", "ino", "'integer'"},          {"inodes", "mode", "'integer'"},
    {"inodes", "nlink", "'integer'"},        {"inodes", "size", "'integer'"},
    {"inodes", "parent", "'integer'"},       {"inodes", "target", "'blob','null'"},
    {"blocks", "chunk", "'integer','null'"}, {"blocks", "idx", "'integer'"},
    {"xattrs", "name", "'blob'"},            {"xattrs", "value", "'blob','null'"},
    {"kv", "key", "'text'"},                 {"kv", "value", "'text','null'"},
    {"chunks", "hash", "'blob'"},            {"chunks", "data", "'blob'"},
    {"chunks", "size", "'integer'"},         {"chunks", "codec", "'integer'"},
    {"sessions", "name", "'text'"},          {"session_branches", "session", "'text'"},
    {"snapshots", "name", "'text','null'"},  {"images", "name", "'text'"},
    {"tool_calls", "name", "'text'"},        {"tool_calls", "args", "'text'"},
    {"call_output", "chunk", "'integer'"},
};

// Rows whose values no operation writes (names and values out of range,
// inodes of no file type): a damaged store or a hand-made bundle.
constexpr const char* kBadNames =
    "SELECT parent, branch, hex(name) FROM dentries WHERE length(name) NOT BETWEEN 1 AND 255"
    " OR instr(name, x'2f') > 0 OR instr(name, x'00') > 0 LIMIT 100";
constexpr const char* kBadXattrs =
    "SELECT ino, branch FROM xattrs WHERE length(name) NOT BETWEEN 1 AND 255"
    " OR length(value) > 65536 LIMIT 100";
constexpr const char* kBadModes =
    "SELECT ino, branch, mode FROM inodes WHERE deleted = 0 AND (mode & 61440) NOT IN"
    " (32768, 16384, 40960, 8192, 24576, 4096, 49152) LIMIT 100";
// blocks has no index on chunk: used only for the few chunks found bad.
constexpr const char* kUsersOfChunk =
    "SELECT DISTINCT ino, branch FROM blocks WHERE chunk = ?1 LIMIT 8";
constexpr const char* kBranches =
    "SELECT id, parent, parent_version, head_version FROM branches ORDER BY id";
constexpr const char* kAncestry =
    "SELECT branch, depth, ancestor, vlimit FROM ancestry ORDER BY branch, depth";
constexpr const char* kLayers = "SELECT branch FROM layers";
constexpr const char* kLayerViews =
    "SELECT branch, version, layer, layer_version FROM layer_views";
constexpr const char* kSnapshots = "SELECT id, branch, version, name FROM snapshots ORDER BY id";
constexpr const char* kSessions = "SELECT name, branch FROM sessions";
constexpr const char* kPastSessionBranches = "SELECT session, branch FROM session_branches";
// Each session's history must end at the branch it points at now.
constexpr const char* kSessionHistoryMismatch =
    "SELECT s.name FROM sessions s WHERE s.branch IS NOT (SELECT h.branch FROM session_branches h"
    " WHERE h.session = s.name ORDER BY h.seq DESC LIMIT 1)";
constexpr const char* kImages = "SELECT name, branch, version FROM images";
constexpr const char* kCallVersions =
    "SELECT id, branch, version_before, version_after FROM tool_calls";
constexpr const char* kDropped = "SELECT branch FROM dropped_branches";

template <typename Fn>
Status ForEachRow(sql::Connection& conn, const char* sql, Fn fn) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(sql));
  return s.ForEachRow(fn);
}

struct BranchRow {
  std::optional<BranchId> parent;
  Version parent_version = 0;
  Version head = 0;
};

// What the store's catalog says, loaded once: branches, and the names
// problems are reported under.
class Catalog {
 public:
  Status Load(sql::Connection& conn) {
    RETURN_IF_ERROR(ForEachRow(conn, kBranches, [&](sql::Statement& s) {
      BranchRow b;
      if (!s.IsNull(1)) b.parent = s.Int(1);
      b.parent_version = s.Int(2);
      b.head = s.Int(3);
      branches_[s.Int(0)] = b;
      return Status::Ok();
    }));
    RETURN_IF_ERROR(ForEachRow(conn, kSessions, [&](sql::Statement& s) {
      Name(s.Int(1), "session " + s.Text(0), 0);
      session_heads_.insert(s.Int(1));
      return Status::Ok();
    }));
    RETURN_IF_ERROR(ForEachRow(conn, kImages, [&](sql::Statement& s) {
      Name(s.Int(1), "image " + s.Text(0), 1);
      return Status::Ok();
    }));
    RETURN_IF_ERROR(ForEachRow(conn, kPastSessionBranches, [&](sql::Statement& s) {
      Name(s.Int(1), "session " + s.Text(0) + " (before a restore)", 2);
      return Status::Ok();
    }));
    return ForEachRow(conn, kDropped, [&](sql::Statement& s) {
      Name(s.Int(0), "branch " + std::to_string(s.Int(0)) + " (removed, not yet collected)", 3);
      return Status::Ok();
    });
  }

  const std::map<BranchId, BranchRow>& branches() const { return branches_; }
  const BranchRow* Find(BranchId id) const {
    auto it = branches_.find(id);
    return it == branches_.end() ? nullptr : &it->second;
  }
  // Whether a session writes to `branch` now (opening it reclaims orphans).
  bool IsSessionHead(BranchId branch) const { return session_heads_.count(branch) != 0; }
  // "session S", "image I", ... or "branch N".
  std::string Label(BranchId branch) const {
    auto it = names_.find(branch);
    return it == names_.end() ? "branch " + std::to_string(branch) : it->second.second;
  }
  // The label of a frozen version: "S@ID" / "S@NAME" for a snapshot.
  std::string Label(BranchId branch, Version version) const {
    auto snap = snapshot_labels_.find({branch, version});
    if (snap != snapshot_labels_.end()) return snap->second;
    return Label(branch) + " at version " + std::to_string(version);
  }
  void AddSnapshotLabel(BranchId branch, Version version, const std::string& snap) {
    std::string base = Label(branch);
    if (base.rfind("session ", 0) == 0) base = base.substr(8);
    snapshot_labels_.try_emplace({branch, version}, base + "@" + snap);
  }

 private:
  // Keeps the most telling name of a branch (lower rank wins).
  void Name(BranchId branch, std::string label, int rank) {
    auto it = names_.find(branch);
    if (it == names_.end() || rank < it->second.first) names_[branch] = {rank, std::move(label)};
  }

  std::map<BranchId, BranchRow> branches_;
  std::set<BranchId> session_heads_;
  std::map<BranchId, std::pair<int, std::string>> names_;
  std::map<std::pair<BranchId, Version>, std::string> snapshot_labels_;
};

void AddProblem(std::vector<IntegrityProblem>* problems, const char* kind, std::string where,
                const std::string& what) {
  IntegrityProblem p;
  p.kind = kind;
  p.detail = where.empty() ? what : where + ": " + what;
  p.where = std::move(where);
  problems->push_back(std::move(p));
}

// Branches, their ancestry and the versions that other rows name. Returns
// the branches whose chain is sound (only those have trees to check) and
// fills `views` with the frozen versions to check of each.
Result<std::set<BranchId>> CheckCatalog(sql::Connection& conn, Catalog& cat,
                                        std::map<BranchId, std::set<Version>>* views,
                                        std::vector<IntegrityProblem>* problems) {
  using Level = std::pair<BranchId, Version>;
  std::map<BranchId, std::vector<Level>> levels;
  RETURN_IF_ERROR(ForEachRow(conn, kAncestry, [&](sql::Statement& s) {
    levels[s.Int(0)].emplace_back(s.Int(2), s.Int(3));
    return Status::Ok();
  }));
  std::set<BranchId> layers;
  RETURN_IF_ERROR(ForEachRow(conn, kLayers, [&](sql::Statement& s) {
    layers.insert(s.Int(0));
    return Status::Ok();
  }));
  std::map<Level, Level> view_of_layer;  // (layer, version) -> the view it holds
  RETURN_IF_ERROR(ForEachRow(conn, kLayerViews, [&](sql::Statement& s) {
    view_of_layer[{s.Int(2), s.Int(3)}] = {s.Int(0), s.Int(1)};
    return Status::Ok();
  }));

  // Each branch's own link to its parent.
  std::set<BranchId> bad_link;
  for (const auto& [id, b] : cat.branches()) {
    if (!b.parent.has_value()) continue;
    const BranchRow* up = cat.Find(*b.parent);
    if (up == nullptr) {
      AddProblem(problems, "missing-branch", cat.Label(id),
                 "branch " + std::to_string(id) + " forks from missing branch " +
                     std::to_string(*b.parent));
      bad_link.insert(id);
    } else if (b.parent_version < 1 || b.parent_version >= up->head) {
      AddProblem(problems, "fork-version", cat.Label(id),
                 "branch " + std::to_string(id) + " forks from version " +
                     std::to_string(b.parent_version) + " of branch " +
                     std::to_string(*b.parent) + ", which is not frozen");
      bad_link.insert(id);
    } else {
      (*views)[*b.parent].insert(b.parent_version);
    }
  }

  // Whether each lineage reaches its root through sound links only, and the
  // level its root is seen at (for branches other than a root), each branch
  // worked out once so that deep chains cost O(branches).
  enum class Lineage { kVisiting, kSound, kBroken };
  std::map<BranchId, Lineage> lineage;
  std::map<BranchId, Level> root_level;
  for (const auto& [id, b] : cat.branches()) {
    std::vector<BranchId> path;
    BranchId at = id;
    Lineage outcome = Lineage::kSound;
    for (;;) {
      auto known = lineage.find(at);
      if (known != lineage.end()) {
        if (known->second == Lineage::kVisiting) {
          AddProblem(problems, "branch-cycle", cat.Label(id), "the branch's lineage is a cycle");
          outcome = Lineage::kBroken;
        } else {
          outcome = known->second;
        }
        break;
      }
      lineage[at] = Lineage::kVisiting;
      path.push_back(at);
      const BranchRow* row = cat.Find(at);
      if (bad_link.count(at) != 0) {
        outcome = Lineage::kBroken;
        break;
      }
      if (!row->parent.has_value()) break;  // a root
      at = *row->parent;
    }
    for (auto it = path.rbegin(); it != path.rend(); ++it) {
      lineage[*it] = outcome;
      const BranchRow* row = cat.Find(*it);
      if (outcome != Lineage::kSound || !row->parent.has_value()) continue;
      const BranchRow* up = cat.Find(*row->parent);
      root_level[*it] = up->parent.has_value() ? root_level[*row->parent]
                                               : Level{*row->parent, row->parent_version};
    }
  }

  // The levels a read visits must resolve as the lineage does: the lineage
  // itself, or its first levels, then a layer holding the view at that
  // point (down to the root, excluded), then the root.
  auto levels_match = [&](BranchId id) {
    const std::vector<Level>& got = levels[id];
    if (got.empty() || got[0] != Level{id, kHead}) return false;
    auto parent_level = [&](BranchId branch) -> std::optional<Level> {
      const BranchRow* row = cat.Find(branch);
      if (!row->parent.has_value()) return std::nullopt;
      return Level{*row->parent, row->parent_version};
    };
    std::optional<Level> expected = parent_level(id);
    for (size_t p = 1;; ++p) {
      if (!expected.has_value()) return p == got.size();
      if (p >= got.size()) return false;
      if (got[p] == *expected) {
        expected = parent_level(expected->first);
        continue;
      }
      auto held = view_of_layer.find(got[p]);
      return layers.count(got[p].first) != 0 && held != view_of_layer.end() &&
             held->second == *expected && root_level.count(expected->first) != 0 &&
             p + 2 == got.size() && got[p + 1] == root_level[expected->first];
    }
  };

  std::set<BranchId> sound;
  for (const auto& [id, b] : cat.branches()) {
    std::string where = cat.Label(id);
    if (layers.count(id) != 0) {
      if (b.parent.has_value() || levels[id] != std::vector<Level>{{id, kHead}}) {
        AddProblem(problems, "ancestry", where,
                   "layer " + std::to_string(id) + " has a parent or levels of its own");
      }
      continue;  // read only through the branches that use it
    }
    (*views)[id].insert(kHead);
    if (lineage[id] != Lineage::kSound) continue;
    if (!levels_match(id)) {
      AddProblem(problems, "ancestry", where,
                 "the ancestry rows of branch " + std::to_string(id) +
                     " differ from its parent chain");
      continue;
    }
    sound.insert(id);
  }
  // A frozen version named by another row: it must exist.
  auto version_of = [&](const std::string& what, BranchId branch, Version v) -> bool {
    const BranchRow* b = cat.Find(branch);
    if (b == nullptr) {
      AddProblem(problems, "missing-branch", "", what + " names missing branch " + std::to_string(branch));
      return false;
    }
    if (v < 1 || v >= b->head) {
      AddProblem(problems, "missing-version", cat.Label(branch),
                 what + " names version " + std::to_string(v) + ", which is not frozen");
      return false;
    }
    (*views)[branch].insert(v);
    return true;
  };
  RETURN_IF_ERROR(ForEachRow(conn, kSnapshots, [&](sql::Statement& s) {
    std::string id = std::to_string(s.Int(0));
    if (version_of("snapshot " + id, s.Int(1), s.Int(2))) {
      cat.AddSnapshotLabel(s.Int(1), s.Int(2), s.IsNull(3) ? id : s.Text(3));
    }
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kImages, [&](sql::Statement& s) {
    version_of("image " + s.Text(0), s.Int(1), s.Int(2));
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kSessions, [&](sql::Statement& s) {
    if (cat.Find(s.Int(1)) == nullptr) {
      AddProblem(problems, "missing-branch", "session " + s.Text(0),
                 "points at missing branch " + std::to_string(s.Int(1)));
    }
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kSessionHistoryMismatch, [&](sql::Statement& s) {
    AddProblem(problems, "session-history", "session " + s.Text(0),
               "its branch history (session_branches) does not end at its current branch");
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kPastSessionBranches, [&](sql::Statement& s) {
    if (cat.Find(s.Int(1)) == nullptr) {
      AddProblem(problems, "missing-branch", "session " + s.Text(0),
                 "its history names missing branch " + std::to_string(s.Int(1)));
    }
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kCallVersions, [&](sql::Statement& s) {
    // version_before 0: recorded (RecordCall) on a branch never frozen, so
    // no state before the call was kept.
    std::string call = "tool call " + std::to_string(s.Int(0));
    if ((s.Int(2) == 0 || version_of(call, s.Int(1), s.Int(2))) && !s.IsNull(3)) {
      version_of(call, s.Int(1), s.Int(3));
    }
    return Status::Ok();
  }));
  return sound;
}

// Every chunk reference resolves, every chunk decodes and hashes to its key.
Status CheckChunks(sql::Connection& conn, chunks::ChunkStore& chunks, const Catalog& cat,
                   std::vector<IntegrityProblem>* problems) {
  RETURN_IF_ERROR(ForEachRow(conn, kMissingChunks, [&](sql::Statement& s) -> Status {
    BranchId branch = s.Int(1);
    InodeId ino = static_cast<InodeId>(s.Int(0));
    ASSIGN_OR_RETURN(std::string path, PathOf(conn, tree::Scope{branch, kHead}, ino));
    std::string where = cat.Label(branch);
    AddProblem(problems, "missing-chunk", where,
               path + ": block " + std::to_string(s.Int(2)) + " of inode " + std::to_string(ino) +
                   " references chunk " + std::to_string(s.Int(3)) + ", which is missing");
    problems->back().path = path;
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kMissingOutputChunks, [&](sql::Statement& s) -> Status {
    AddProblem(problems, "missing-chunk", "",
               "output " + std::to_string(s.Int(1)) + " of tool call " + std::to_string(s.Int(0)) +
                   " references chunk " + std::to_string(s.Int(3)) + ", which is missing");
    return Status::Ok();
  }));
  for (const TypedColumn& c : kTypedColumns) {
    std::string sql = std::string("SELECT count(*) FROM ") + c.table + " WHERE typeof(" +
                      c.column + ") NOT IN (" + c.types + ")";
    ASSIGN_OR_RETURN(sql::Statement stmt, conn.PrepareUncached(sql));
    Result<bool> row = stmt.Step();
    if (row.ok() && *row && stmt.Int(0) > 0) {
      AddProblem(problems, "bad-type", "",
                 std::to_string(stmt.Int(0)) + " rows of " + c.table + " hold a " + c.column +
                     " of the wrong type (allowed: " + c.types + ")");
    }
  }
  RETURN_IF_ERROR(ForEachRow(conn, kBadNames, [&](sql::Statement& s) -> Status {
    AddProblem(problems, "bad-name", cat.Label(s.Int(1)),
               "directory inode " + std::to_string(s.Int(0)) + " has an entry named x'" +
                   s.Text(2) + "', which no file name can be");
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kBadXattrs, [&](sql::Statement& s) -> Status {
    AddProblem(problems, "bad-xattr", cat.Label(s.Int(1)),
               "inode " + std::to_string(s.Int(0)) +
                   " has an extended attribute whose name or value is out of range");
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kBadModes, [&](sql::Statement& s) -> Status {
    AddProblem(problems, "bad-mode", cat.Label(s.Int(1)),
               "inode " + std::to_string(s.Int(0)) + " has mode " + std::to_string(s.Int(2)) +
                   ", of no file type");
    return Status::Ok();
  }));
  std::vector<chunks::ChunkId> ids;
  RETURN_IF_ERROR(ForEachRow(conn, kAllChunks, [&](sql::Statement& s) -> Status {
    ids.push_back(s.Int(0));
    return Status::Ok();
  }));
  for (chunks::ChunkId id : ids) {
    size_t before = problems->size();
    RETURN_IF_ERROR(chunks.Verify(conn, id, problems));
    if (problems->size() == before) continue;
    // Name the files the bad chunk belongs to.
    std::string users;
    std::string first_where;
    std::string first_path;
    std::vector<std::pair<InodeId, BranchId>> owners;
    {
      ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kUsersOfChunk));
      s.Bind(1, id);
      for (;;) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        owners.emplace_back(static_cast<InodeId>(s.Int(0)), s.Int(1));
      }
    }
    for (const auto& [ino, branch] : owners) {
      ASSIGN_OR_RETURN(std::string path, PathOf(conn, tree::Scope{branch, kHead}, ino));
      if (first_where.empty()) {
        first_where = cat.Label(branch);
        first_path = path;
      }
      users += (users.empty() ? "; used by " : ", ") + cat.Label(branch) + ":" + path;
    }
    for (size_t i = before; i < problems->size(); ++i) {
      (*problems)[i].detail += users;
      (*problems)[i].where = first_where;
      (*problems)[i].path = first_path;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<IntegrityProblem>> CheckStoreIntegrity(sql::Connection& conn,
                                                          chunks::ChunkStore& chunks,
                                                          const std::set<BranchId>& live_branches) {
  std::vector<IntegrityProblem> problems;
  RETURN_IF_ERROR(ForEachRow(conn, "PRAGMA quick_check", [&](sql::Statement& s) -> Status {
    std::string msg = s.Text(0);
    if (msg != "ok") AddProblem(&problems, "sqlite", "", msg);
    return Status::Ok();
  }));
  Catalog cat;
  RETURN_IF_ERROR(cat.Load(conn));
  std::map<BranchId, std::set<Version>> views;
  ASSIGN_OR_RETURN(std::set<BranchId> sound, CheckCatalog(conn, cat, &views, &problems));
  RETURN_IF_ERROR(CheckChunks(conn, chunks, cat, &problems));

  // Each branch's views in version order, each checked where it differs
  // from the one before it; a branch's first view against the version of
  // its parent it forked from, which the parent's own pass checks.
  for (BranchId branch : sound) {
    const BranchRow& b = *cat.Find(branch);
    std::optional<tree::Scope> base;
    if (b.parent.has_value()) base = tree::Scope{*b.parent, b.parent_version};
    Version since = 0;
    for (Version v : views[branch]) {
      CheckedView view;
      view.scope = {branch, v};
      view.head = v == kHead;
      view.where = view.head ? cat.Label(branch) : cat.Label(branch, v);
      // Orphans are open files while a process serves the branch, and
      // unreachable leftovers in a head no session writes any more (a
      // restore moved it away): problems only in a session's closed head.
      view.live = live_branches.count(branch) != 0 || !cat.IsSessionHead(branch);
      if (!base.has_value() && since == 0) {
        RETURN_IF_ERROR(CheckWholeTree(conn, view, &problems));
      } else {
        RETURN_IF_ERROR(CheckTreeDelta(conn, view, base, since, &problems));
      }
      if (view.head) RETURN_IF_ERROR(CheckOrphans(conn, view, &problems));
      base = view.scope;
      since = v;
    }
  }
  return problems;
}

Status RepairProblems(sql::Connection& conn, const std::vector<IntegrityProblem>& problems) {
  for (const IntegrityProblem& p : problems) {
    if (!p.repairable) continue;
    ASSIGN_OR_RETURN(Version version, catalog::HeadVersion(conn, p.branch));
    tree::Head head{p.branch, version};
    if (p.kind == "dangling-entry") {
      RETURN_IF_ERROR(tree::DeleteDentry(conn, head, p.parent, p.name));
    } else if (p.kind == "nlink") {
      ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, head.scope(), p.ino));
      if (!row.has_value()) continue;
      row->nlink = p.nlink;
      RETURN_IF_ERROR(tree::PutInode(conn, head, *row));
    } else if (p.kind == "orphan" || p.kind == "lost-inode") {
      RETURN_IF_ERROR(tree::DeleteInode(conn, head, p.ino));
      RETURN_IF_ERROR(tree::RemoveOrphan(conn, p.branch, p.ino));
    } else if (p.kind == "orphan-row") {
      RETURN_IF_ERROR(tree::RemoveOrphan(conn, p.branch, p.ino));
    }
  }
  return Status::Ok();
}

}  // namespace strata::fs
