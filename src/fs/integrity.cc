#include "fs/integrity.h"

#include <sys/stat.h>

#include <deque>
#include <map>
#include <set>

#include "tree/rows.h"

namespace strata::fs {

namespace {

constexpr const char* kMissingChunks =
    "SELECT b.ino, b.branch, b.idx, b.chunk FROM blocks b WHERE b.chunk IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = b.chunk)";
constexpr const char* kAllChunks = "SELECT id FROM chunks ORDER BY id";
constexpr const char* kAllViews =
    "SELECT id, 9223372036854775807, 'head of branch ' || id FROM branches"
    " UNION ALL SELECT branch, version, 'snapshot ' || id || ' (branch ' || branch || ', version '"
    " || version || ')' FROM snapshots";
constexpr const char* kOrphansOf = "SELECT ino FROM orphans WHERE branch = ?1";

template <typename Fn>
Status ForEachRow(sql::Connection& conn, const char* sql, Fn fn) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(sql));
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::Ok();
    RETURN_IF_ERROR(fn(s));
  }
}

Status CheckTree(sql::Connection& conn, tree::Scope scope, const std::string& label,
                 std::vector<IntegrityProblem>* problems) {
  auto report = [&](const char* kind, const std::string& detail) {
    problems->push_back({kind, label + ": " + detail});
  };
  std::map<InodeId, uint32_t> links;       // names pointing at each non-directory
  std::map<InodeId, uint32_t> subdirs;     // subdirectories of each directory
  std::map<InodeId, tree::InodeRow> rows;  // every inode reached
  std::set<InodeId> visited{kRootIno};
  std::deque<std::pair<InodeId, std::string>> queue{{kRootIno, ""}};
  ASSIGN_OR_RETURN(auto root, tree::GetInode(conn, scope, kRootIno));
  if (!root.has_value()) {
    report("missing-root", "the root directory is missing");
    return Status::Ok();
  }
  rows[kRootIno] = *root;
  while (!queue.empty()) {
    auto [dir, path] = queue.front();
    queue.pop_front();
    ASSIGN_OR_RETURN(auto entries, tree::ListDentries(conn, scope, dir));
    for (const auto& e : entries) {
      std::string child = path + "/" + e.name;
      ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, scope, e.ino));
      if (!row.has_value()) {
        report("dangling-entry", child + " points at missing inode " + std::to_string(e.ino));
        continue;
      }
      if ((row->mode & S_IFMT) != e.type) {
        report("type-mismatch", child + " entry type differs from its inode");
      }
      rows[e.ino] = *row;
      if (S_ISDIR(row->mode)) {
        subdirs[dir]++;
        if (row->parent != dir) report("bad-parent", child + " has a wrong parent pointer");
        if (!visited.insert(e.ino).second) {
          report("directory-cycle", child + " is reachable twice");
          continue;
        }
        queue.emplace_back(e.ino, child);
      } else {
        links[e.ino]++;
      }
    }
  }
  for (const auto& [ino, row] : rows) {
    uint32_t expected = S_ISDIR(row.mode) ? 2 + subdirs[ino] : links[ino];
    if (row.nlink != expected) {
      report("nlink", "inode " + std::to_string(ino) + " has nlink " + std::to_string(row.nlink) +
                          " but " + std::to_string(expected) + " links");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<IntegrityProblem>> CheckStoreIntegrity(sql::Connection& conn,
                                                          chunks::ChunkStore& chunks) {
  std::vector<IntegrityProblem> problems;
  RETURN_IF_ERROR(ForEachRow(conn, "PRAGMA quick_check", [&](sql::Statement& s) -> Status {
    std::string msg = s.Text(0);
    if (msg != "ok") problems.push_back({"sqlite", msg});
    return Status::Ok();
  }));
  RETURN_IF_ERROR(ForEachRow(conn, kMissingChunks, [&](sql::Statement& s) -> Status {
    problems.push_back({"missing-chunk", "block " + std::to_string(s.Int(2)) + " of inode " +
                                             std::to_string(s.Int(0)) + " in branch " +
                                             std::to_string(s.Int(1)) + " references chunk " +
                                             std::to_string(s.Int(3)) + ", which is missing"});
    return Status::Ok();
  }));
  std::vector<chunks::ChunkId> ids;
  RETURN_IF_ERROR(ForEachRow(conn, kAllChunks, [&](sql::Statement& s) -> Status {
    ids.push_back(s.Int(0));
    return Status::Ok();
  }));
  for (chunks::ChunkId id : ids) RETURN_IF_ERROR(chunks.Verify(conn, id, &problems));

  std::vector<std::tuple<BranchId, Version, std::string>> views;
  RETURN_IF_ERROR(ForEachRow(conn, kAllViews, [&](sql::Statement& s) -> Status {
    views.emplace_back(s.Int(0), s.Int(1), s.Text(2));
    return Status::Ok();
  }));
  for (const auto& [branch, version, label] : views) {
    RETURN_IF_ERROR(CheckTree(conn, tree::Scope{branch, version}, label, &problems));
  }
  // Orphans must still exist and have no links (they are removed on reopen).
  for (const auto& [branch, version, label] : views) {
    if (version != kHead) continue;
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kOrphansOf));
    s.Bind(1, branch);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      InodeId ino = static_cast<InodeId>(s.Int(0));
      ASSIGN_OR_RETURN(auto inode, tree::GetInode(conn, tree::Scope{branch, kHead}, ino));
      if (!inode.has_value() || inode->nlink != 0) {
        problems.push_back({"orphan", label + ": orphan inode " + std::to_string(ino) +
                                          " is missing or still linked"});
      }
    }
  }
  return problems;
}

}  // namespace strata::fs
