// Versioned rows of the filesystem tree: inodes, directory entries, block
// maps and extended attributes.
//
// Reading resolves a key at a Scope (a branch and a version limit for that
// branch): the row from the shallowest ancestor that has one, newest first. A
// tombstone (deleted inode, entry with ino 0, block with no chunk, xattr with
// no value) hides what an ancestor holds.
//
// Writing happens at a branch's head version H: a row with vfrom = H is not
// seen by any snapshot and is replaced in place; otherwise a new row with
// vfrom = H is added (copy on first touch). Removing a key deletes its head
// row outright when nothing older shows through, and writes a tombstone when
// something does. All functions take the caller's connection; writes must run
// inside a write transaction.
#ifndef STRATA_TREE_ROWS_H_
#define STRATA_TREE_ROWS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chunks/chunk_store.h"
#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::tree {

// What a read sees: `branch` with its own rows limited to vfrom <= limit.
struct Scope {
  BranchId branch;
  Version limit;
};

// Where a write lands: the head version of `branch`.
struct Head {
  BranchId branch;
  Version version;
  Scope scope() const { return {branch, version}; }
  // The state just before this head version: what snapshots see.
  Scope below() const { return {branch, version - 1}; }
};

struct InodeRow {
  InodeId ino = 0;
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  InodeId parent = 0;  // directories: the containing directory (root: itself)
  uint64_t nblocks = 0;  // blocks that hold data (holes excluded)
  std::string target;  // symlinks
};

struct DentryRow {
  std::string name;
  InodeId ino = 0;
  uint32_t type = 0;  // S_IFMT bits
};

// --- inodes
Result<std::optional<InodeRow>> GetInode(sql::Connection& conn, Scope scope, InodeId ino);
Status PutInode(sql::Connection& conn, Head head, const InodeRow& row);
// Removes the inode with its head-version blocks and xattrs.
Status DeleteInode(sql::Connection& conn, Head head, InodeId ino);
// Allocates a fresh inode number (store-wide, never reused): the larger
// of meta.next_ino and `floor`. A rolled-back transaction (a full disk)
// rolls next_ino back too, while the process that allocated may still hold
// state under that number (the kernel's inode, buffered writes); such a
// process passes the number after the last it handed out as `floor`.
Result<InodeId> AllocateIno(sql::Connection& conn, InodeId floor = 0);

// --- directory entries
Result<std::optional<DentryRow>> GetDentry(sql::Connection& conn, Scope scope, InodeId parent,
                                           std::string_view name);
Status PutDentry(sql::Connection& conn, Head head, InodeId parent, const DentryRow& entry);
Status DeleteDentry(sql::Connection& conn, Head head, InodeId parent, std::string_view name);
// Live entries of `parent`, sorted by name.
Result<std::vector<DentryRow>> ListDentries(sql::Connection& conn, Scope scope, InodeId parent);
Result<bool> HasDentries(sql::Connection& conn, Scope scope, InodeId parent);
// Every entry that names `ino` in `scope`, with the directory holding it:
// candidates from dentries_by_ino within the scope's ancestry, each resolved
// to keep only those that still point at `ino` there. (Whether the
// directory itself is live is the caller's question.)
Result<std::vector<std::pair<InodeId, DentryRow>>> NamesOf(sql::Connection& conn, Scope scope,
                                                           InodeId ino);

// --- block map: block index -> chunk (nullopt: hole)
using BlockMap = std::map<uint64_t, std::optional<chunks::ChunkId>>;
// Blocks with first <= idx <= last that have a row (holes included as nullopt).
Result<BlockMap> GetBlocks(sql::Connection& conn, Scope scope, InodeId ino, uint64_t first,
                           uint64_t last);
// Sets each listed block (nullopt makes it a hole). Returns the change in the
// number of blocks that hold data.
Result<int64_t> PutBlocks(sql::Connection& conn, Head head, InodeId ino, const BlockMap& blocks);
// Makes every block with idx >= first a hole. Returns the change in the number
// of blocks that hold data (zero or negative).
Result<int64_t> DropBlocksFrom(sql::Connection& conn, Head head, InodeId ino, uint64_t first);

// --- extended attributes
Result<std::optional<std::string>> GetXattr(sql::Connection& conn, Scope scope, InodeId ino,
                                            std::string_view name);
Status PutXattr(sql::Connection& conn, Head head, InodeId ino, std::string_view name,
                std::string_view value);
Status DeleteXattr(sql::Connection& conn, Head head, InodeId ino, std::string_view name);
Result<std::vector<std::string>> ListXattrs(sql::Connection& conn, Scope scope, InodeId ino);

// --- orphans: inodes with no name left, kept alive by open handles
Status AddOrphan(sql::Connection& conn, BranchId branch, InodeId ino);
Status RemoveOrphan(sql::Connection& conn, BranchId branch, InodeId ino);

}  // namespace strata::tree

#endif  // STRATA_TREE_ROWS_H_
