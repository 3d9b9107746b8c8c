#include "fs/host_entries.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "base/time_ns.h"
#include "base/unique_fd.h"
#include "strata/import.h"

namespace strata::fs {

namespace {

constexpr const char* kRootOfLevels =
    "SELECT ancestor FROM ancestry WHERE branch = ?1 ORDER BY depth DESC LIMIT 1";
constexpr const char* kIsHostBase = "SELECT 1 FROM host_entries WHERE branch = ?1 LIMIT 1";
// The columns EntryOfRow reads.
#define HOST_ENTRY_COLUMNS "SELECT ino, root, rel, dev, host_ino, taken_ns, copy, expanded"
constexpr const char* kGetHostEntry =
    HOST_ENTRY_COLUMNS " FROM host_entries WHERE branch = ?1 AND ino = ?2";
constexpr const char* kUnexpanded = HOST_ENTRY_COLUMNS
    " FROM host_entries WHERE branch = ?1 AND ino > ?2 AND expanded = 0 ORDER BY ino LIMIT ?3";
#undef HOST_ENTRY_COLUMNS
constexpr const char* kPutHostEntry =
    "INSERT INTO host_entries(branch, ino, root, rel, dev, host_ino, taken_ns, copy, expanded)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)";
constexpr const char* kMarkExpanded =
    "UPDATE host_entries SET expanded = 1 WHERE branch = ?1 AND ino = ?2";

Status Changed(const std::string& host, const std::string& how) {
  return IoError("host path " + host + " " + how +
                 " after this session's host base was taken; start a new session to see it");
}

// The host path still is the entry the base named, unchanged since the base
// was taken.
Status CheckUnchanged(const HostEntry& e, const std::string& host, const struct stat& st) {
  if (static_cast<uint64_t>(st.st_dev) != e.dev || static_cast<uint64_t>(st.st_ino) != e.host_ino) {
    return Changed(host, "was replaced");
  }
  if (TimespecNs(st.st_ctim) > e.taken_ns) return Changed(host, "changed");
  return Status::Ok();
}

Status LstatEntry(const HostEntry& e, const std::string& host, struct stat* st) {
  if (lstat(host.c_str(), st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Changed(host, "was removed");
    return IoError("cannot stat host path " + host + ": " + std::strerror(errno));
  }
  return CheckUnchanged(e, host, *st);
}

Status MarkExpanded(sql::Connection& conn, const HostEntry& e) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kMarkExpanded));
  return s.Bind(1, e.base).Bind(2, e.ino).Run();
}

Status ExpandDir(sql::Connection& conn, StoreCore& core, tree::Head head, const HostEntry& e) {
  const std::string host = e.HostPath();
  struct stat st;
  RETURN_IF_ERROR(LstatEntry(e, host, &st));
  if (!HostPathExposed(e.rel, st)) return Status(Code::kAccess, host + " is not exposed");
  if (!S_ISDIR(st.st_mode)) return Changed(host, "is no longer a directory");
  auto names = ListHostDir(host);
  if (!names.ok()) {
    // As a full index always did: a directory root may not list is empty.
    if (names.status().code() != Code::kAccess) return names.status();
    names = std::vector<HostDirEntry>{};
  }
  HostEntry child = e;
  for (const HostDirEntry& d : *names) {
    child.rel = e.rel.empty() ? d.name : e.rel + "/" + d.name;
    struct stat cst;
    if (lstat(HostPathOf(e.root, child.rel).c_str(), &cst) != 0) {
      return Changed(HostPathOf(e.root, child.rel), "was removed");
    }
    auto added = AddHostChild(conn, core, head, e.ino, d.name, child, cst);
    if (!added.ok() && added.status().code() != Code::kNotFound) return added.status();
  }
  // Listed while the directory was as the base took it: nothing was added,
  // removed or renamed in it meanwhile either.
  RETURN_IF_ERROR(LstatEntry(e, host, &st));
  return MarkExpanded(conn, e);
}

Status ExpandFile(sql::Connection& conn, StoreCore& core, tree::Head head, const HostEntry& e) {
  const std::string host = e.HostPath();
  ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, head.scope(), e.ino));
  if (!row.has_value()) return Internal("host entry " + host + " has no inode");
  struct stat st;
  RETURN_IF_ERROR(LstatEntry(e, host, &st));
  if (!HostPathExposed(e.rel, st)) return Status(Code::kAccess, host + " is not exposed");
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != row->size) {
    return Changed(host, "changed");
  }
  const uint32_t block_size = core.block_size();
  tree::BlockMap blocks;
  if (!e.copy) {
    // References to the host file's ranges: nothing is read now.
    chunks::HostRange range{host, row->size, TimespecNs(st.st_mtim), 0, 0};
    for (uint64_t offset = 0; offset < row->size; offset += block_size) {
      range.offset = offset;
      range.length = static_cast<uint32_t>(std::min<uint64_t>(block_size, row->size - offset));
      ASSIGN_OR_RETURN(blocks[offset / block_size], core.chunks().PutHostRange(conn, range));
    }
  } else {
    UniqueFd fd(open(host.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) return IoError("cannot open host file " + host + ": " + std::strerror(errno));
    std::vector<uint8_t> buf(block_size);
    for (uint64_t offset = 0; offset < row->size; offset += block_size) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(block_size, row->size - offset));
      ssize_t n = pread(fd.get(), buf.data(), want, static_cast<off_t>(offset));
      if (n < 0) return IoError("cannot read host file " + host + ": " + std::strerror(errno));
      if (static_cast<size_t>(n) != want) return Changed(host, "changed");
      ASSIGN_OR_RETURN(blocks[offset / block_size],
                       core.chunks().Put(conn, std::span<const uint8_t>(buf).first(want)));
    }
    // The bytes read are the bytes the base stands for only if the file did
    // not change while they were read.
    if (fstat(fd.get(), &st) != 0) return IoError("cannot stat host file " + host);
    RETURN_IF_ERROR(CheckUnchanged(e, host, st));
    if (static_cast<uint64_t>(st.st_size) != row->size) return Changed(host, "changed");
  }
  RETURN_IF_ERROR(tree::PutBlocks(conn, head, e.ino, blocks).status());
  return MarkExpanded(conn, e);
}

}  // namespace

std::string HostPathOf(const std::string& root, const std::string& rel) {
  if (rel.empty()) return root;
  return root == "/" ? "/" + rel : root + "/" + rel;
}

std::string HostEntry::HostPath() const { return HostPathOf(root, rel); }

std::span<const ExposedTree> ExposedTrees() {
  static constexpr ExposedTree kTrees[] = {
      {"bin", false},   {"sbin", false},   {"lib", false}, {"lib32", false},
      {"lib64", false}, {"libx32", false}, {"usr", false}, {"opt", false},
      {"etc", true},    {"var/lib/dpkg", true}, {"var/lib/apt", true},
  };
  return kTrees;
}

bool HostNameExposed(const std::string& rel) {
  // A bundle brings its own host_entries rows: they name nothing else.
  bool inside = false;
  for (const ExposedTree& tree : ExposedTrees()) {
    size_t n = std::strlen(tree.path);
    inside |= rel.compare(0, n, tree.path) == 0 && (rel.size() == n || rel[n] == '/');
  }
  if (!inside || ("/" + rel + "/").find("/../") != std::string::npos ||
      ("/" + rel + "/").find("/./") != std::string::npos ||
      ("/" + rel + "/").find("//") != std::string::npos) {
    return false;
  }
  static const char* const kSecrets[] = {"etc/shadow", "etc/gshadow", "etc/shadow-",
                                         "etc/gshadow-", "etc/security/opasswd"};
  for (const char* s : kSecrets) {
    if (rel == s) return false;
  }
  if (rel.rfind("etc/ssh/ssh_host_", 0) == 0 && rel.find(".pub") == std::string::npos) {
    return false;
  }
  return true;
}

bool HostPathExposed(const std::string& rel, const struct stat& st) {
  if (!HostNameExposed(rel)) return false;
  // Only what any user of the host may read: files readable by others,
  // directories others may list and enter, symlinks, and FIFOs.
  if (S_ISLNK(st.st_mode)) return true;
  if (S_ISDIR(st.st_mode)) return (st.st_mode & (S_IROTH | S_IXOTH)) == (S_IROTH | S_IXOTH);
  if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode)) return (st.st_mode & S_IROTH) != 0;
  return false;
}

Result<BranchId> HostBaseOf(sql::Connection& conn, BranchId branch) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kRootOfLevels));
  s.Bind(1, branch);
  ASSIGN_OR_RETURN(bool row, s.Step());
  BranchId root = row ? s.Int(0) : branch;
  ASSIGN_OR_RETURN(sql::Statement h, conn.Prepare(kIsHostBase));
  h.Bind(1, root);
  ASSIGN_OR_RETURN(bool is_base, h.Step());
  return is_base ? root : BranchId{0};
}

namespace {

// A row of HOST_ENTRY_COLUMNS of base `base`.
HostEntry EntryOfRow(sql::Statement& row, BranchId base) {
  HostEntry e;
  e.base = base;
  e.ino = static_cast<InodeId>(row.Int(0));
  e.root = row.Text(1);
  e.rel = row.Text(2);
  e.dev = static_cast<uint64_t>(row.Int(3));
  e.host_ino = static_cast<uint64_t>(row.Int(4));
  e.taken_ns = row.Int(5);
  e.copy = row.Int(6) != 0;
  e.expanded = row.Int(7) != 0;
  return e;
}

}  // namespace

Result<std::optional<HostEntry>> GetHostEntry(sql::Connection& conn, BranchId base,
                                              InodeId ino) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetHostEntry));
  s.Bind(1, base).Bind(2, ino);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<HostEntry>();
  return std::optional<HostEntry>(EntryOfRow(s, base));
}

Result<std::vector<HostEntry>> UnexpandedHostEntries(sql::Connection& conn, BranchId base,
                                                     InodeId after, int limit) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kUnexpanded));
  s.Bind(1, base).Bind(2, static_cast<int64_t>(after)).Bind(3, limit);
  std::vector<HostEntry> out;
  RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) {
    out.push_back(EntryOfRow(row, base));
    return Status::Ok();
  }));
  return out;
}

Result<tree::InodeRow> AddHostChild(sql::Connection& conn, StoreCore& core, tree::Head head,
                                    InodeId parent, const std::string& name,
                                    const HostEntry& proto, const struct stat& st) {
  const std::string host = proto.HostPath();
  if (!HostPathExposed(proto.rel, st)) return NotFound(host + " is not exposed");
  if (TimespecNs(st.st_ctim) > proto.taken_ns) return Changed(host, "changed");
  tree::InodeRow row;
  ASSIGN_OR_RETURN(row.ino, tree::AllocateIno(conn, core.InoFloor()));
  core.NoteIno(row.ino);
  row.mode = st.st_mode;
  row.nlink = 1;
  row.uid = st.st_uid;
  row.gid = st.st_gid;
  row.atime_ns = TimespecNs(st.st_atim);
  row.mtime_ns = TimespecNs(st.st_mtim);
  row.ctime_ns = TimespecNs(st.st_ctim);
  if (S_ISDIR(st.st_mode)) {
    // The host's link count: the subdirectories are not counted until
    // listed, and the count must not change when they are.
    row.nlink = static_cast<uint32_t>(std::max<nlink_t>(st.st_nlink, 2));
    row.parent = parent;
  } else if (S_ISREG(st.st_mode)) {
    row.size = static_cast<uint64_t>(st.st_size);
    row.nblocks = (row.size + core.block_size() - 1) / core.block_size();
  } else if (S_ISLNK(st.st_mode)) {
    std::vector<char> target(static_cast<size_t>(st.st_size) + 4097);
    ssize_t n = readlink(host.c_str(), target.data(), target.size());
    if (n < 0) return Changed(host, "was removed");
    row.target.assign(target.data(), static_cast<size_t>(n));
    row.size = row.target.size();
  }
  RETURN_IF_ERROR(tree::PutInode(conn, head, row));
  RETURN_IF_ERROR(tree::PutDentry(conn, head, parent, {name, row.ino, row.mode & S_IFMT}));
  if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode)) {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutHostEntry));
    s.Bind(1, head.branch).Bind(2, row.ino).BindText(3, proto.root).BindText(4, proto.rel)
        .Bind(5, static_cast<int64_t>(st.st_dev)).Bind(6, static_cast<int64_t>(st.st_ino))
        .Bind(7, proto.taken_ns).Bind(8, proto.copy ? 1 : 0);
    RETURN_IF_ERROR(s.Run());
  }
  return row;
}

Status ExpandHostEntry(sql::Connection& conn, StoreCore& core, Version version,
                       const HostEntry& entry) {
  const tree::Head head{entry.base, version};
  ASSIGN_OR_RETURN(auto row, tree::GetInode(conn, head.scope(), entry.ino));
  if (!row.has_value()) return Internal("host entry " + entry.HostPath() + " has no inode");
  if (S_ISDIR(row->mode)) return ExpandDir(conn, core, head, entry);
  return ExpandFile(conn, core, head, entry);
}

}  // namespace strata::fs
