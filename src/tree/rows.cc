#include "tree/rows.h"

#include <sys/stat.h>

#include <span>
#include <unordered_set>

#include "tree/versioned.h"

namespace strata::tree {

namespace {

#define VISIBLE STRATA_VISIBLE

constexpr const char* kGetInode =
    "SELECT r.deleted, r.mode, r.nlink, r.uid, r.gid, r.rdev, r.size, r.atime_ns, r.mtime_ns,"
    " r.ctime_ns, r.parent, r.nblocks, r.target" VISIBLE("inodes", "r.ino = ?3")
    "ORDER BY a.depth, r.vfrom DESC LIMIT 1";
constexpr const char* kPutInode =
    "INSERT OR REPLACE INTO inodes(ino, branch, vfrom, deleted, mode, nlink, uid, gid, rdev, size,"
    " atime_ns, mtime_ns, ctime_ns, parent, nblocks, target)"
    " VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
constexpr const char* kTombstoneInode =
    "INSERT OR REPLACE INTO inodes(ino, branch, vfrom, deleted, mode, nlink, uid, gid, rdev, size,"
    " atime_ns, mtime_ns, ctime_ns, parent, nblocks, target)"
    " VALUES (?1, ?2, ?3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL)";
constexpr const char* kDeleteHeadInode =
    "DELETE FROM inodes WHERE ino = ?1 AND branch = ?2 AND vfrom = ?3";
constexpr const char* kDeleteHeadBlocksOfInode =
    "DELETE FROM blocks WHERE ino = ?1 AND branch = ?2 AND vfrom = ?3";
constexpr const char* kDeleteHeadXattrsOfInode =
    "DELETE FROM xattrs WHERE ino = ?1 AND branch = ?2 AND vfrom = ?3";
constexpr const char* kAllocateIno =
    "UPDATE meta SET value = max(value, ?1) + 1 WHERE key = 'next_ino' RETURNING value - 1";

constexpr const char* kGetDentry =
    "SELECT r.ino, r.type" VISIBLE("dentries", "r.parent = ?3 AND r.name = ?4")
    "ORDER BY a.depth, r.vfrom DESC LIMIT 1";
constexpr const char* kPutDentry =
    "INSERT OR REPLACE INTO dentries(parent, name, branch, vfrom, ino, type)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kDeleteHeadDentry =
    "DELETE FROM dentries WHERE parent = ?1 AND name = ?2 AND branch = ?3 AND vfrom = ?4";
constexpr const char* kNamesOfIno =
    "SELECT DISTINCT r.parent, r.name" VISIBLE("dentries", "r.ino = ?3");
constexpr const char* kListDentries =
    "SELECT r.name, r.ino, r.type" VISIBLE("dentries", "r.parent = ?3")
    "ORDER BY r.name, a.depth, r.vfrom DESC";

constexpr const char* kGetBlocks =
    "SELECT r.idx, r.chunk" VISIBLE("blocks", "r.ino = ?3 AND r.idx BETWEEN ?4 AND ?5")
    "ORDER BY r.idx, a.depth, r.vfrom DESC";
constexpr const char* kPutBlock =
    "INSERT OR REPLACE INTO blocks(ino, branch, idx, vfrom, chunk) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kDeleteHeadBlock =
    "DELETE FROM blocks WHERE ino = ?1 AND branch = ?2 AND idx = ?3 AND vfrom = ?4";

constexpr const char* kGetXattr =
    "SELECT r.value" VISIBLE("xattrs", "r.ino = ?3 AND r.name = ?4")
    "ORDER BY a.depth, r.vfrom DESC LIMIT 1";
constexpr const char* kPutXattr =
    "INSERT OR REPLACE INTO xattrs(ino, name, branch, vfrom, value) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kDeleteHeadXattr =
    "DELETE FROM xattrs WHERE ino = ?1 AND name = ?2 AND branch = ?3 AND vfrom = ?4";
constexpr const char* kListXattrs =
    "SELECT r.name, r.value IS NOT NULL" VISIBLE("xattrs", "r.ino = ?3")
    "ORDER BY r.name, a.depth, r.vfrom DESC";

constexpr const char* kAddOrphan = "INSERT OR IGNORE INTO orphans(branch, ino) VALUES (?1, ?2)";
constexpr const char* kRemoveOrphan = "DELETE FROM orphans WHERE branch = ?1 AND ino = ?2";

#undef VISIBLE

}  // namespace

using internal::BindScope;
using internal::ForEachWinner;

// --- inodes

Result<std::optional<InodeRow>> GetInode(sql::Connection& conn, Scope scope, InodeId ino) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetInode));
  BindScope(s, scope).Bind(3, ino);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row || s.Int(0) != 0) return std::optional<InodeRow>();
  InodeRow r;
  r.ino = ino;
  r.mode = static_cast<uint32_t>(s.Int(1));
  r.nlink = static_cast<uint32_t>(s.Int(2));
  r.uid = static_cast<uint32_t>(s.Int(3));
  r.gid = static_cast<uint32_t>(s.Int(4));
  r.rdev = static_cast<uint64_t>(s.Int(5));
  r.size = static_cast<uint64_t>(s.Int(6));
  r.atime_ns = s.Int(7);
  r.mtime_ns = s.Int(8);
  r.ctime_ns = s.Int(9);
  r.parent = static_cast<InodeId>(s.Int(10));
  r.nblocks = static_cast<uint64_t>(s.Int(11));
  if (!s.IsNull(12)) r.target = s.BlobString(12);
  return std::optional<InodeRow>(std::move(r));
}

Status PutInode(sql::Connection& conn, Head head, const InodeRow& row) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutInode));
  s.Bind(1, row.ino).Bind(2, head.branch).Bind(3, head.version).Bind(4, row.mode)
      .Bind(5, row.nlink).Bind(6, row.uid).Bind(7, row.gid).Bind(8, row.rdev).Bind(9, row.size)
      .Bind(10, row.atime_ns).Bind(11, row.mtime_ns).Bind(12, row.ctime_ns).Bind(13, row.parent)
      .Bind(14, row.nblocks);
  if (S_ISLNK(row.mode)) {
    s.BindBytes(15, row.target);
  } else {
    s.BindNull(15);
  }
  return s.Run();
}

Status DeleteInode(sql::Connection& conn, Head head, InodeId ino) {
  for (const char* sql : {kDeleteHeadBlocksOfInode, kDeleteHeadXattrsOfInode}) {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(sql));
    RETURN_IF_ERROR(s.Bind(1, ino).Bind(2, head.branch).Bind(3, head.version).Run());
  }
  ASSIGN_OR_RETURN(auto below, GetInode(conn, head.below(), ino));
  ASSIGN_OR_RETURN(sql::Statement s,
                   conn.Prepare(below.has_value() ? kTombstoneInode : kDeleteHeadInode));
  return s.Bind(1, ino).Bind(2, head.branch).Bind(3, head.version).Run();
}

Result<InodeId> AllocateIno(sql::Connection& conn, InodeId floor) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kAllocateIno));
  s.Bind(1, static_cast<int64_t>(floor));
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Corruption("meta has no next_ino");
  InodeId ino = static_cast<InodeId>(s.Int(0));
  RETURN_IF_ERROR(s.Run());
  return ino;
}

// --- directory entries

Result<std::optional<DentryRow>> GetDentry(sql::Connection& conn, Scope scope, InodeId parent,
                                           std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetDentry));
  BindScope(s, scope).Bind(3, parent).BindBytes(4, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row || s.Int(0) == 0) return std::optional<DentryRow>();
  return std::optional<DentryRow>(DentryRow{std::string(name), static_cast<InodeId>(s.Int(0)),
                                            static_cast<uint32_t>(s.Int(1))});
}

Status PutDentry(sql::Connection& conn, Head head, InodeId parent, const DentryRow& entry) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutDentry));
  return s.Bind(1, parent).BindBytes(2, entry.name).Bind(3, head.branch)
      .Bind(4, head.version).Bind(5, entry.ino).Bind(6, entry.type).Run();
}

Status DeleteDentry(sql::Connection& conn, Head head, InodeId parent, std::string_view name) {
  ASSIGN_OR_RETURN(auto below, GetDentry(conn, head.below(), parent, name));
  if (below.has_value()) return PutDentry(conn, head, parent, DentryRow{std::string(name), 0, 0});
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kDeleteHeadDentry));
  return s.Bind(1, parent).BindBytes(2, name).Bind(3, head.branch)
      .Bind(4, head.version).Run();
}

namespace {

// Visits the live entries of `parent` in name order until `visit` returns false.
template <typename Visit>
Status ForEachDentry(sql::Connection& conn, Scope scope, InodeId parent, Visit visit) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kListDentries));
  BindScope(s, scope).Bind(3, parent);
  return ForEachWinner(
      s, [](const sql::Statement& st) { return st.BlobString(0); },
      [&](const sql::Statement& st) -> Result<bool> {
        if (st.Int(1) == 0) return true;  // tombstone
        return visit(DentryRow{st.BlobString(0), static_cast<InodeId>(st.Int(1)),
                               static_cast<uint32_t>(st.Int(2))});
      });
}

}  // namespace

Result<std::vector<DentryRow>> ListDentries(sql::Connection& conn, Scope scope, InodeId parent) {
  std::vector<DentryRow> out;
  RETURN_IF_ERROR(ForEachDentry(conn, scope, parent, [&](DentryRow row) {
    out.push_back(std::move(row));
    return true;
  }));
  return out;
}

Result<bool> HasDentries(sql::Connection& conn, Scope scope, InodeId parent) {
  bool any = false;
  RETURN_IF_ERROR(ForEachDentry(conn, scope, parent, [&](const DentryRow&) {
    any = true;
    return false;
  }));
  return any;
}

Result<std::vector<std::pair<InodeId, DentryRow>>> NamesOf(sql::Connection& conn, Scope scope,
                                                           InodeId ino) {
  std::vector<std::pair<InodeId, std::string>> candidates;
  {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kNamesOfIno));
    BindScope(s, scope).Bind(3, static_cast<int64_t>(ino));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      candidates.emplace_back(static_cast<InodeId>(s.Int(0)), s.BlobString(1));
    }
  }
  std::vector<std::pair<InodeId, DentryRow>> names;
  for (auto& [parent, name] : candidates) {
    ASSIGN_OR_RETURN(auto entry, GetDentry(conn, scope, parent, name));
    if (entry.has_value() && entry->ino == ino) names.emplace_back(parent, std::move(*entry));
  }
  return names;
}

// --- blocks

Result<BlockMap> GetBlocks(sql::Connection& conn, Scope scope, InodeId ino, uint64_t first,
                           uint64_t last) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetBlocks));
  BindScope(s, scope).Bind(3, ino).Bind(4, first).Bind(5, last);
  BlockMap out;
  RETURN_IF_ERROR(ForEachWinner(
      s, [](const sql::Statement& st) { return st.Int(0); },
      [&](const sql::Statement& st) -> Result<bool> {
        std::optional<chunks::ChunkId> chunk;
        if (!st.IsNull(1)) chunk = st.Int(1);
        out.emplace(static_cast<uint64_t>(st.Int(0)), chunk);
        return true;
      }));
  return out;
}

namespace {

Status WriteBlockRow(sql::Connection& conn, Head head, InodeId ino, uint64_t idx,
                     std::optional<chunks::ChunkId> chunk, bool below_has_data) {
  if (!chunk.has_value() && !below_has_data) {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kDeleteHeadBlock));
    return s.Bind(1, ino).Bind(2, head.branch).Bind(3, idx).Bind(4, head.version).Run();
  }
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutBlock));
  s.Bind(1, ino).Bind(2, head.branch).Bind(3, idx).Bind(4, head.version);
  if (chunk.has_value()) {
    s.Bind(5, *chunk);
  } else {
    s.BindNull(5);
  }
  return s.Run();
}

bool HasData(const BlockMap& map, uint64_t idx) {
  auto it = map.find(idx);
  return it != map.end() && it->second.has_value();
}

}  // namespace

Result<int64_t> PutBlocks(sql::Connection& conn, Head head, InodeId ino, const BlockMap& blocks) {
  if (blocks.empty()) return int64_t{0};
  uint64_t first = blocks.begin()->first;
  uint64_t last = blocks.rbegin()->first;
  ASSIGN_OR_RETURN(BlockMap now, GetBlocks(conn, head.scope(), ino, first, last));
  // Only needed to decide hole-vs-delete for blocks becoming holes.
  BlockMap below;
  bool any_hole = false;
  for (const auto& [idx, chunk] : blocks) any_hole |= !chunk.has_value();
  if (any_hole) {
    ASSIGN_OR_RETURN(below, GetBlocks(conn, head.below(), ino, first, last));
  }
  int64_t delta = 0;
  for (const auto& [idx, chunk] : blocks) {
    delta += (chunk.has_value() ? 1 : 0) - (HasData(now, idx) ? 1 : 0);
    RETURN_IF_ERROR(WriteBlockRow(conn, head, ino, idx, chunk, HasData(below, idx)));
  }
  return delta;
}

Result<int64_t> DropBlocksFrom(sql::Connection& conn, Head head, InodeId ino, uint64_t first) {
  constexpr uint64_t kLast = static_cast<uint64_t>(INT64_MAX);
  ASSIGN_OR_RETURN(BlockMap now, GetBlocks(conn, head.scope(), ino, first, kLast));
  BlockMap holes;
  for (const auto& [idx, chunk] : now) {
    if (chunk.has_value()) holes.emplace(idx, std::nullopt);
  }
  return PutBlocks(conn, head, ino, holes);
}

// --- xattrs

Result<std::optional<std::string>> GetXattr(sql::Connection& conn, Scope scope, InodeId ino,
                                            std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetXattr));
  BindScope(s, scope).Bind(3, ino).BindBytes(4, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row || s.IsNull(0)) return std::optional<std::string>();
  return std::optional<std::string>(s.BlobString(0));
}

Status PutXattr(sql::Connection& conn, Head head, InodeId ino, std::string_view name,
                std::string_view value) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutXattr));
  return s.Bind(1, ino).BindBytes(2, name).Bind(3, head.branch).Bind(4, head.version)
      .BindBytes(5, value).Run();
}

Status DeleteXattr(sql::Connection& conn, Head head, InodeId ino, std::string_view name) {
  ASSIGN_OR_RETURN(auto below, GetXattr(conn, head.below(), ino, name));
  if (below.has_value()) {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutXattr));
    return s.Bind(1, ino).BindBytes(2, name).Bind(3, head.branch).Bind(4, head.version)
        .BindNull(5).Run();
  }
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kDeleteHeadXattr));
  return s.Bind(1, ino).BindBytes(2, name).Bind(3, head.branch).Bind(4, head.version)
      .Run();
}

Result<std::vector<std::string>> ListXattrs(sql::Connection& conn, Scope scope, InodeId ino) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kListXattrs));
  BindScope(s, scope).Bind(3, ino);
  std::vector<std::string> out;
  RETURN_IF_ERROR(ForEachWinner(
      s, [](const sql::Statement& st) { return st.BlobString(0); },
      [&](const sql::Statement& st) -> Result<bool> {
        if (st.Int(1) != 0) out.push_back(st.BlobString(0));
        return true;
      }));
  return out;
}

// --- orphans

Status AddOrphan(sql::Connection& conn, BranchId branch, InodeId ino) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kAddOrphan));
  return s.Bind(1, branch).Bind(2, ino).Run();
}

Status RemoveOrphan(sql::Connection& conn, BranchId branch, InodeId ino) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kRemoveOrphan));
  return s.Bind(1, branch).Bind(2, ino).Run();
}

}  // namespace strata::tree
