#include "fs/diff.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <set>

#include "catalog/branches.h"
#include "tree/rows.h"

namespace strata::fs {

namespace {

constexpr const char* kChangedDentries =
    "SELECT DISTINCT parent, name FROM dentries WHERE branch = ?1 AND vfrom > ?2 AND vfrom <= ?3";
constexpr const char* kChangedInodes =
    "SELECT DISTINCT ino FROM inodes WHERE branch = ?1 AND vfrom > ?2 AND vfrom <= ?3";
// Resolves inodes to paths within one view, caching directories.
class PathFinder {
 public:
  PathFinder(sql::Connection& conn, tree::Scope scope) : conn_(conn), scope_(scope) {}

  // Every path naming `ino` in this view (several for hard links).
  Result<std::vector<std::string>> PathsOf(InodeId ino) {
    std::vector<std::string> out;
    ASSIGN_OR_RETURN(auto names, LiveNames(ino));
    for (const auto& [parent, name] : names) {
      ASSIGN_OR_RETURN(auto dir, DirPath(parent));
      if (dir.has_value()) out.push_back(*dir + "/" + name);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // The path of a directory ("" for the root), or nullopt if unreachable.
  Result<std::optional<std::string>> DirPath(InodeId dir) {
    if (dir == kRootIno) return std::optional<std::string>("");
    auto cached = dirs_.find(dir);
    if (cached != dirs_.end()) return cached->second;
    std::optional<std::string> path;
    ASSIGN_OR_RETURN(auto row, tree::GetInode(conn_, scope_, dir));
    if (row.has_value() && S_ISDIR(row->mode) && depth_ < 4096) {
      ASSIGN_OR_RETURN(auto names, LiveNames(dir));
      for (const auto& [parent, name] : names) {
        if (parent != row->parent) continue;
        ++depth_;
        auto above = DirPath(parent);
        --depth_;
        if (!above.ok()) return above.status();
        if (above->has_value()) path = **above + "/" + name;
        break;
      }
    }
    dirs_[dir] = path;
    return path;
  }

 private:
  Result<std::vector<std::pair<InodeId, std::string>>> LiveNames(InodeId ino) {
    ASSIGN_OR_RETURN(auto names, tree::NamesOf(conn_, scope_, ino));
    std::vector<std::pair<InodeId, std::string>> live;
    for (auto& [parent, entry] : names) live.emplace_back(parent, std::move(entry.name));
    return live;
  }

  sql::Connection& conn_;
  tree::Scope scope_;
  std::map<InodeId, std::optional<std::string>> dirs_;
  int depth_ = 0;
};

using Limits = std::map<BranchId, Version>;

Result<Limits> LimitsOf(sql::Connection& conn, View view) {
  ASSIGN_OR_RETURN(auto chain, catalog::Ancestry(conn, view));
  return Limits(chain.begin(), chain.end());
}

// Changes keyed by (path, rank): at one path a removal sorts before an
// addition, which sorts before a modification.
using ChangeMap = std::map<std::pair<std::string, int>, Change>;
int Rank(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kRemoved: return 0;
    case ChangeKind::kAdded: return 1;
    case ChangeKind::kModified: return 2;
  }
  return 3;
}

struct Side {
  tree::Scope scope;
  PathFinder paths;
};

// Lists `dir`'s subtree (below `path`) as `kind` changes seen from `side`.
Status ExpandSubtree(sql::Connection& conn, Side& side, InodeId dir, const std::string& path,
                     ChangeKind kind, ChangeMap* out,
                     int depth = 0) {
  if (depth > 4096) return Corruption("directory tree too deep");
  ASSIGN_OR_RETURN(auto entries, tree::ListDentries(conn, side.scope, dir));
  for (const auto& e : entries) {
    ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, side.scope, e.ino));
    if (!row.has_value()) continue;
    std::string child = path + "/" + e.name;
    Change c{kind, child, 0, 0, 0, 0};
    if (kind == ChangeKind::kRemoved) {
      c.old_mode = row->mode;
      c.old_size = row->size;
    } else {
      c.new_mode = row->mode;
      c.new_size = row->size;
    }
    (*out)[{child, Rank(kind)}] = c;
    if (S_ISDIR(row->mode)) {
      RETURN_IF_ERROR(ExpandSubtree(conn, side, e.ino, child, kind, out, depth + 1));
    }
  }
  return Status::Ok();
}

bool ContentChanged(const tree::InodeRow& a, const tree::InodeRow& b) {
  if (a.mode != b.mode || a.uid != b.uid || a.gid != b.gid) return true;
  if (S_ISDIR(a.mode)) return false;
  return a.size != b.size || a.mtime_ns != b.mtime_ns || a.target != b.target ||
         a.rdev != b.rdev;
}

}  // namespace

Result<std::vector<Change>> ComputeDiff(sql::Connection& conn, View from, View to) {
  ASSIGN_OR_RETURN(Limits la, LimitsOf(conn, from));
  ASSIGN_OR_RETURN(Limits lb, LimitsOf(conn, to));
  std::set<BranchId> branches;
  for (const auto& [b, v] : la) branches.insert(b);
  for (const auto& [b, v] : lb) branches.insert(b);

  // Only rows in a version range that one view sees and the other does not
  // can make the two differ.
  std::set<std::pair<InodeId, std::string>> dentry_keys;
  std::set<InodeId> inode_keys;
  for (BranchId b : branches) {
    Version va = la.count(b) ? la[b] : 0;
    Version vb = lb.count(b) ? lb[b] : 0;
    if (va == vb) continue;
    Version lo = std::min(va, vb);
    Version hi = std::max(va, vb);
    {
      ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kChangedDentries));
      s.Bind(1, b).Bind(2, lo).Bind(3, hi);
      for (;;) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        dentry_keys.emplace(static_cast<InodeId>(s.Int(0)), s.BlobString(1));
      }
    }
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kChangedInodes));
    s.Bind(1, b).Bind(2, lo).Bind(3, hi);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      inode_keys.insert(static_cast<InodeId>(s.Int(0)));
    }
  }

  Side a{{from.branch, from.version}, PathFinder(conn, {from.branch, from.version})};
  Side b{{to.branch, to.version}, PathFinder(conn, {to.branch, to.version})};
  ChangeMap changes;

  for (const auto& [parent, name] : dentry_keys) {
    ASSIGN_OR_RETURN(auto ea, tree::GetDentry(conn, a.scope, parent, name));
    ASSIGN_OR_RETURN(auto eb, tree::GetDentry(conn, b.scope, parent, name));
    if (ea.has_value() && eb.has_value() && ea->ino == eb->ino) continue;
    struct Step {
      Side* side;
      std::optional<tree::DentryRow>* entry;
      ChangeKind kind;
    };
    for (Step step : {Step{&a, &ea, ChangeKind::kRemoved}, Step{&b, &eb, ChangeKind::kAdded}}) {
      if (!step.entry->has_value()) continue;
      ASSIGN_OR_RETURN(auto dir, step.side->paths.DirPath(parent));
      if (!dir.has_value()) continue;  // its directory is itself added or removed
      ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, step.side->scope, (*step.entry)->ino));
      if (!row.has_value()) continue;
      std::string path = *dir + "/" + name;
      Change c{step.kind, path, 0, 0, 0, 0};
      if (step.kind == ChangeKind::kRemoved) {
        c.old_mode = row->mode;
        c.old_size = row->size;
      } else {
        c.new_mode = row->mode;
        c.new_size = row->size;
      }
      changes[{path, Rank(step.kind)}] = c;
      if (S_ISDIR(row->mode)) {
        RETURN_IF_ERROR(ExpandSubtree(conn, *step.side, row->ino, path, step.kind, &changes));
      }
    }
  }

  for (InodeId ino : inode_keys) {
    ASSIGN_OR_RETURN(auto ra, tree::GetInode(conn, a.scope, ino));
    ASSIGN_OR_RETURN(auto rb, tree::GetInode(conn, b.scope, ino));
    if (!ra.has_value() || !rb.has_value() || !ContentChanged(*ra, *rb)) continue;
    ASSIGN_OR_RETURN(auto paths, b.paths.PathsOf(ino));
    for (const std::string& path : paths) {
      // A path that was added or removed is already listed as such.
      if (changes.count({path, Rank(ChangeKind::kAdded)})) continue;
      changes[{path, Rank(ChangeKind::kModified)}] =
          Change{ChangeKind::kModified, path, ra->mode, rb->mode, ra->size, rb->size};
    }
  }

  std::vector<Change> out;
  out.reserve(changes.size());
  for (auto& [key, c] : changes) out.push_back(std::move(c));
  return out;
}

}  // namespace strata::fs
