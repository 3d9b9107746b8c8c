#include "fs/tree_check.h"

#include <sys/stat.h>

#include <deque>
#include <map>
#include <set>
#include <utility>

#include "fs/host_entries.h"

namespace strata::fs {

namespace {

// Rows a branch wrote in a range of versions (the *_by_version indexes).
constexpr const char* kChangedEntries =
    "SELECT DISTINCT parent, name FROM dentries WHERE branch = ?1 AND vfrom > ?2 AND vfrom <= ?3";
constexpr const char* kChangedInodes =
    "SELECT DISTINCT ino FROM inodes WHERE branch = ?1 AND vfrom > ?2 AND vfrom <= ?3";
constexpr const char* kInodesUpTo =
    "SELECT DISTINCT ino FROM inodes WHERE branch = ?1 AND vfrom <= ?2";
constexpr const char* kOrphansOf = "SELECT ino FROM orphans WHERE branch = ?1";
constexpr const char* kIsOrphan = "SELECT 1 FROM orphans WHERE branch = ?1 AND ino = ?2";

// Deeper than any path a kernel will resolve (PATH_MAX / 2): a longer
// parent chain is a cycle.
constexpr int kMaxDepth = 2048;

struct Name {
  InodeId parent;
  std::string name;
  uint32_t type;
};

class Reporter {
 public:
  Reporter(const CheckedView& view, std::vector<IntegrityProblem>* out) : view_(view), out_(out) {}

  // Records a problem at `path`; returns it so the caller can mark a repair.
  IntegrityProblem& Add(const char* kind, const std::string& path, const std::string& what) {
    IntegrityProblem p;
    p.kind = kind;
    p.where = view_.where;
    p.path = path;
    p.detail = view_.where + ": " + (path.empty() ? "" : path + ": ") + what;
    p.branch = view_.scope.branch;
    out_->push_back(std::move(p));
    return out_->back();
  }
  // As Add, repairable only in a head view (snapshots are history).
  IntegrityProblem& AddFixable(const char* kind, const std::string& path, const std::string& what) {
    IntegrityProblem& p = Add(kind, path, what);
    p.repairable = view_.head;
    return p;
  }

 private:
  const CheckedView& view_;
  std::vector<IntegrityProblem>* out_;
};

std::string InodeText(InodeId ino) { return "inode " + std::to_string(ino); }

// A directory of a host base keeps the host's link count (its subdirectories
// become rows only when it is listed): only other directories must have
// 2 + subdirectories. Asked only of a directory whose count differs.
Result<bool> KeepsHostLinkCount(sql::Connection& conn, tree::Scope scope, InodeId dir) {
  ASSIGN_OR_RETURN(BranchId base, HostBaseOf(conn, scope.branch));
  if (base == 0) return false;
  ASSIGN_OR_RETURN(auto entry, GetHostEntry(conn, base, dir));
  return entry.has_value();
}

// The names that point at `ino` in `scope`, from live directories.
Result<std::vector<Name>> LiveNamesOf(sql::Connection& conn, tree::Scope scope, InodeId ino) {
  ASSIGN_OR_RETURN(auto entries, tree::NamesOf(conn, scope, ino));
  std::vector<Name> names;
  for (auto& [parent, entry] : entries) {
    ASSIGN_OR_RETURN(auto dir, tree::GetInode(conn, scope, parent));
    if (!dir.has_value() || !S_ISDIR(dir->mode)) continue;
    names.push_back({parent, std::move(entry.name), entry.type});
  }
  return names;
}

Result<bool> IsOrphan(sql::Connection& conn, BranchId branch, InodeId ino) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kIsOrphan));
  s.Bind(1, branch).Bind(2, static_cast<int64_t>(ino));
  return s.Step();
}

Result<uint32_t> CountSubdirs(sql::Connection& conn, tree::Scope scope, InodeId dir) {
  ASSIGN_OR_RETURN(auto entries, tree::ListDentries(conn, scope, dir));
  uint32_t n = 0;
  for (const auto& e : entries) n += e.type == S_IFDIR;
  return n;
}

// Whether following parent pointers up from `dir` reaches the root.
Result<bool> ReachesRoot(sql::Connection& conn, tree::Scope scope, const tree::InodeRow& dir) {
  InodeId at = dir.parent;
  std::set<InodeId> seen{dir.ino};
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    if (at == kRootIno) return true;
    if (!seen.insert(at).second) return false;
    ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, scope, at));
    if (!row.has_value() || !S_ISDIR(row->mode)) return false;
    at = row->parent;
  }
  return false;
}

std::string Join(const std::string& dir_path, const std::string& name) {
  return dir_path == "/" ? "/" + name : dir_path + "/" + name;
}

// Checks one inode of a view against every name that points at it there.
Status CheckInode(sql::Connection& conn, const CheckedView& view, InodeId ino, Reporter& report) {
  const tree::Scope scope = view.scope;
  ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, scope, ino));
  ASSIGN_OR_RETURN(std::vector<Name> names, LiveNamesOf(conn, scope, ino));
  if (!row.has_value()) {
    for (const Name& n : names) {
      ASSIGN_OR_RETURN(std::string dir, PathOf(conn, scope, n.parent));
      IntegrityProblem& p = report.AddFixable("dangling-entry", Join(dir, n.name),
                                              "points at missing " + InodeText(ino));
      p.parent = n.parent;
      p.name = n.name;
    }
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(std::string path, PathOf(conn, scope, ino));
  for (const Name& n : names) {
    if (n.type != (row->mode & S_IFMT)) {
      report.Add("type-mismatch", path, "entry type differs from its inode's (" + InodeText(ino) + ")");
    }
  }
  auto wrong_nlink = [&](uint32_t expected) {
    IntegrityProblem& p = report.AddFixable(
        "nlink", path,
        InodeText(ino) + " has nlink " + std::to_string(row->nlink) + " but " +
            std::to_string(expected) + " links");
    p.ino = ino;
    p.nlink = expected;
  };
  if (S_ISDIR(row->mode)) {
    if (ino == kRootIno) {
      if (!names.empty()) report.Add("directory-cycle", path, "the root directory has a name");
    } else if (names.size() != 1) {
      report.Add("directory-links", path,
                 "directory " + InodeText(ino) + " has " + std::to_string(names.size()) + " names");
    } else if (row->parent != names[0].parent) {
      report.Add("bad-parent", path, "directory has a wrong parent pointer");
    }
    if (ino != kRootIno) {
      ASSIGN_OR_RETURN(bool rooted, ReachesRoot(conn, scope, *row));
      if (!rooted) report.Add("directory-cycle", path, "parent pointers do not lead to the root");
    }
    ASSIGN_OR_RETURN(uint32_t subdirs, CountSubdirs(conn, scope, ino));
    if (row->nlink != 2 + subdirs) {
      ASSIGN_OR_RETURN(bool host, KeepsHostLinkCount(conn, scope, ino));
      if (!host) wrong_nlink(2 + subdirs);
    }
    return Status::Ok();
  }
  if (names.empty()) {
    if (row->nlink != 0) {
      report.Add("unreachable", path,
                 InodeText(ino) + " has nlink " + std::to_string(row->nlink) + " but no name");
      return Status::Ok();
    }
    // No name and no links: unlinked while open. Fine in a snapshot; at a
    // head it must be listed as an orphan, or nothing will ever free it.
    if (!view.head) return Status::Ok();
    ASSIGN_OR_RETURN(bool orphan, IsOrphan(conn, scope.branch, ino));
    if (!orphan) {
      IntegrityProblem& p =
          report.AddFixable("lost-inode", path, InodeText(ino) + " has no name and is not an orphan");
      p.ino = ino;
    }
    return Status::Ok();
  }
  if (row->nlink != names.size()) wrong_nlink(static_cast<uint32_t>(names.size()));
  return Status::Ok();
}

}  // namespace

Result<std::string> PathOf(sql::Connection& conn, tree::Scope scope, InodeId ino) {
  std::string path;
  for (int depth = 0; depth < kMaxDepth && ino != kRootIno; ++depth) {
    ASSIGN_OR_RETURN(std::vector<Name> names, LiveNamesOf(conn, scope, ino));
    if (names.empty()) return "<" + InodeText(ino) + ", no name>" + path;
    path = "/" + names[0].name + path;
    ino = names[0].parent;
  }
  return path.empty() ? "/" : path;
}

Status CheckWholeTree(sql::Connection& conn, const CheckedView& view,
                      std::vector<IntegrityProblem>* problems) {
  Reporter report(view, problems);
  const tree::Scope scope = view.scope;
  std::map<InodeId, uint32_t> links;       // names pointing at each non-directory
  std::map<InodeId, uint32_t> subdirs;     // subdirectories of each directory
  std::map<InodeId, std::pair<tree::InodeRow, std::string>> reached;  // with a path
  std::set<InodeId> visited{kRootIno};
  std::deque<std::pair<InodeId, std::string>> queue{{kRootIno, "/"}};
  ASSIGN_OR_RETURN(auto root, tree::GetInode(conn, scope, kRootIno));
  if (!root.has_value()) {
    report.Add("missing-root", "/", "the root directory is missing");
    return Status::Ok();
  }
  reached[kRootIno] = {*root, "/"};
  while (!queue.empty()) {
    auto [dir, path] = queue.front();
    queue.pop_front();
    ASSIGN_OR_RETURN(auto entries, tree::ListDentries(conn, scope, dir));
    for (const auto& e : entries) {
      std::string child = Join(path, e.name);
      ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, scope, e.ino));
      if (!row.has_value()) {
        IntegrityProblem& p =
            report.AddFixable("dangling-entry", child, "points at missing " + InodeText(e.ino));
        p.parent = dir;
        p.name = e.name;
        continue;
      }
      if ((row->mode & S_IFMT) != e.type) {
        report.Add("type-mismatch", child, "entry type differs from its inode's (" +
                                               InodeText(e.ino) + ")");
      }
      reached.try_emplace(e.ino, *row, child);
      if (S_ISDIR(row->mode)) {
        subdirs[dir]++;
        if (row->parent != dir) report.Add("bad-parent", child, "directory has a wrong parent pointer");
        if (!visited.insert(e.ino).second) {
          report.Add("directory-cycle", child, "directory is reachable twice");
          continue;
        }
        queue.emplace_back(e.ino, child);
      } else {
        links[e.ino]++;
      }
    }
  }
  // Live inodes the walk did not reach: unlinked while open, or lost.
  std::vector<InodeId> unreached;
  {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInodesUpTo));
    s.Bind(1, scope.branch).Bind(2, scope.limit);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      InodeId ino = static_cast<InodeId>(s.Int(0));
      if (reached.count(ino) == 0) unreached.push_back(ino);
    }
  }
  for (InodeId ino : unreached) RETURN_IF_ERROR(CheckInode(conn, view, ino, report));
  for (const auto& [ino, reached_row] : reached) {
    const auto& [row, path] = reached_row;
    uint32_t expected = S_ISDIR(row.mode) ? 2 + subdirs[ino] : links[ino];
    if (row.nlink != expected && S_ISDIR(row.mode)) {
      ASSIGN_OR_RETURN(bool host, KeepsHostLinkCount(conn, scope, ino));
      if (host) continue;
    }
    if (row.nlink != expected) {
      IntegrityProblem& p = report.AddFixable(
          "nlink", path,
          InodeText(ino) + " has nlink " + std::to_string(row.nlink) + " but " +
              std::to_string(expected) + " links");
      p.ino = ino;
      p.nlink = expected;
    }
  }
  return Status::Ok();
}

Status CheckTreeDelta(sql::Connection& conn, const CheckedView& view,
                      std::optional<tree::Scope> base, Version since,
                      std::vector<IntegrityProblem>* problems) {
  Reporter report(view, problems);
  const tree::Scope scope = view.scope;
  ASSIGN_OR_RETURN(auto root, tree::GetInode(conn, scope, kRootIno));
  if (!root.has_value() || !S_ISDIR(root->mode)) {
    report.Add("missing-root", "/", "the root directory is missing");
    return Status::Ok();
  }
  std::vector<std::pair<InodeId, std::string>> entries;
  std::set<InodeId> inodes;  // every inode whose names or row may differ from base
  {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kChangedEntries));
    s.Bind(1, scope.branch).Bind(2, since).Bind(3, scope.limit);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      entries.emplace_back(static_cast<InodeId>(s.Int(0)), s.BlobString(1));
    }
  }
  {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kChangedInodes));
    s.Bind(1, scope.branch).Bind(2, since).Bind(3, scope.limit);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      inodes.insert(static_cast<InodeId>(s.Int(0)));
    }
  }
  for (const auto& [parent, name] : entries) {
    inodes.insert(parent);  // its count of subdirectories may have changed
    ASSIGN_OR_RETURN(auto now, tree::GetDentry(conn, scope, parent, name));
    if (now.has_value()) inodes.insert(now->ino);
    if (base.has_value()) {
      ASSIGN_OR_RETURN(auto before, tree::GetDentry(conn, *base, parent, name));
      if (before.has_value()) inodes.insert(before->ino);
    }
  }
  for (InodeId ino : inodes) RETURN_IF_ERROR(CheckInode(conn, view, ino, report));
  return Status::Ok();
}

Status CheckOrphans(sql::Connection& conn, const CheckedView& view,
                    std::vector<IntegrityProblem>* problems) {
  Reporter report(view, problems);
  std::vector<InodeId> orphans;
  {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kOrphansOf));
    s.Bind(1, view.scope.branch);
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      orphans.push_back(static_cast<InodeId>(s.Int(0)));
    }
  }
  for (InodeId ino : orphans) {
    ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, view.scope, ino));
    std::string label = "<orphan " + InodeText(ino) + ">";
    if (!row.has_value() || row->nlink != 0) {
      IntegrityProblem& p = report.AddFixable(
          "orphan-row", label, row.has_value() ? "is listed as an orphan but still linked"
                                               : "is listed as an orphan but does not exist");
      p.ino = ino;
    } else if (!view.live) {
      IntegrityProblem& p = report.AddFixable(
          "orphan", label,
          "was unlinked while open and its process ended before releasing it (" +
              std::to_string(row->size) + " bytes)");
      p.ino = ino;
    }
  }
  return Status::Ok();
}

}  // namespace strata::fs
