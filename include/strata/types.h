// Plain value types shared by the Strata core API.
#ifndef STRATA_TYPES_H_
#define STRATA_TYPES_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace strata {

using InodeId = uint64_t;
using BranchId = int64_t;
using Version = int64_t;

// Every session's root directory has this inode number.
inline constexpr InodeId kRootIno = 1;
// The version that names "the live head of a branch".
inline constexpr Version kHead = std::numeric_limits<Version>::max();
// Largest file size the core accepts (2^63 - 1).
inline constexpr uint64_t kMaxFileSize = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
inline constexpr size_t kMaxNameLength = 255;

// A point in a branch's timeline: the branch at `version`, or its live head.
struct View {
  BranchId branch = 0;
  Version version = kHead;
  bool is_head() const { return version == kHead; }
};

// Who creates a file: the new inode is owned by this uid/gid.
struct Cred {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// Attributes of an inode, as stat(2) reports them. Times are nanoseconds since
// the Unix epoch.
struct Attr {
  InodeId ino = 0;
  uint32_t mode = 0;  // file type and permission bits (S_IFMT | 07777)
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units actually stored (holes excluded)
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

// The attributes SetAttr changes: only fields that are set.
struct AttrChanges {
  std::optional<uint32_t> mode;  // permission bits only; the file type cannot change
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;
  std::optional<int64_t> atime_ns;
  std::optional<int64_t> mtime_ns;
  std::optional<int64_t> ctime_ns;  // default: now, whenever anything changes
};

struct DirEntry {
  std::string name;
  InodeId ino = 0;
  uint32_t mode = 0;  // file type bits only
  uint64_t offset = 0;  // position after this entry; pass it back to resume
};

struct FsStats {
  uint64_t block_size = 0;
  uint64_t total_blocks = 0;
  uint64_t free_blocks = 0;
  uint64_t available_blocks = 0;
  uint64_t files = 0;
  uint64_t free_files = 0;
  uint64_t name_max = kMaxNameLength;
};

enum class ChangeKind { kAdded, kRemoved, kModified };

struct Change {
  ChangeKind kind;
  std::string path;
  uint32_t old_mode = 0;  // 0 when added
  uint32_t new_mode = 0;  // 0 when removed
  uint64_t old_size = 0;
  uint64_t new_size = 0;
};

struct SessionInfo {
  std::string name;
  BranchId branch = 0;
  int64_t created_ns = 0;
};

// What a session's head holds, and when it last changed.
struct SessionUsage {
  uint64_t files = 0;  // regular files
  uint64_t bytes = 0;  // their total size (logical; before dedup and compression)
  // The latest of: the session's creation, the newest change time of an
  // inode at its head, its newest snapshot, its newest tool call.
  int64_t last_activity_ns = 0;
  // Where the session started: the session and version it was forked from
  // (empty for a session created from nothing).
  std::string base_session;
  Version base_version = 0;
  // The image the session's lineage starts from ("host" for the host base),
  // or empty.
  std::string base_image;
};

struct SnapshotInfo {
  int64_t id = 0;
  BranchId branch = 0;
  Version version = 0;
  std::string name;  // may be empty
  int64_t created_ns = 0;
};

// One key of a session's key-value state; `value` is JSON text.
struct KvEntry {
  std::string key;
  std::string value;
};

// One change of an atomic key-value update: sets `key` to the JSON text
// `value`, or removes it when `value` is nullopt.
struct KvChange {
  std::string key;
  std::optional<std::string> value;
};

// --- The tool-call log.
enum class CallStatus { kPending, kOk, kError };

// One recorded tool call. The session's state right before it is version
// `version_before` of `branch`, right after it `version_after` (both frozen,
// so both can be read, diffed and forked from).
struct ToolCall {
  int64_t id = 0;
  BranchId branch = 0;
  std::optional<int64_t> parent;  // the enclosing call (nested calls, sub-agents)
  std::string name;
  std::string args;                   // JSON
  std::optional<std::string> result;  // JSON
  std::optional<std::string> error;
  CallStatus status = CallStatus::kPending;
  int64_t start_ns = 0;
  std::optional<int64_t> end_ns;
  std::optional<int> exit_status;
  std::string stdout_data;  // captured output, if any
  std::string stderr_data;
  Version version_before = 0;
  std::optional<Version> version_after;  // once ended
};

struct CallStart {
  std::string name;
  std::string args = "{}";  // JSON
  std::optional<int64_t> parent;
  std::optional<int64_t> start_ns;  // default: now
};

// How a call ended: with a result (JSON), an error message (status "error"),
// or both (a sandbox run that failed still records its resource usage).
struct CallOutcome {
  std::optional<std::string> result;
  std::optional<std::string> error;
  std::optional<int> exit_status;
  std::string stdout_data;
  std::string stderr_data;
  std::optional<int64_t> end_ns;  // default: now
};

// Which calls ListCalls returns; empty fields do not filter.
struct CallFilter {
  std::string name;
  std::optional<CallStatus> status;
  std::optional<int64_t> since_ns;  // calls that started at or after
  size_t limit = 0;                 // newest first; 0: all
};

// The result of a read-only query (Store::Query): column names, then rows of
// cells. A cell is NULL, an integer, a real, text or a blob.
struct QueryCell {
  enum class Type { kNull, kInteger, kReal, kText, kBlob };
  Type type = Type::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string bytes;  // text (UTF-8) or blob
};
struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<QueryCell>> rows;
};

// What an export or import moved.
struct BundleStats {
  std::string session;
  uint64_t branches = 0;
  uint64_t chunks = 0;         // chunks in the bundle
  uint64_t chunks_reused = 0;  // import: chunks the store already had
  uint64_t chunk_bytes = 0;    // stored (compressed) bytes of the bundle's chunks
  uint64_t calls = 0;
};

// A frozen tree that sessions start from: imported from a directory or a
// tarball, or the index of the host's system files (the host base).
struct ImageInfo {
  std::string name;
  BranchId branch = 0;
  Version version = 0;
  std::string kind;         // "dir", "tar" or "host"
  std::string source;       // the path it was imported from
  std::string fingerprint;  // host base: what the host looked like when indexed
  int64_t created_ns = 0;
};

// A named S3 location that sessions are pushed to and pulled from
// (`strata remote add`). Credentials are never stored: they come from the
// environment or the AWS profile files when the remote is used.
struct RemoteInfo {
  std::string name;
  std::string bucket;
  std::string prefix;    // "" or a key prefix without leading or trailing '/'
  std::string endpoint;  // "" for AWS S3 (https://s3.REGION.amazonaws.com)
  std::string region;    // "" to take it from AWS_REGION / AWS_DEFAULT_REGION
  int64_t created_ns = 0;
};

// What this store last pushed `session` of a remote as, or pulled it from:
// the remote's bundle (manifest) key, and a digest of the session's state
// here right then, so that a later pull can tell a session that did not
// change here since (which it may replace) from one that did (which it must
// not).
struct RemoteHeadInfo {
  std::string bundle;  // "" if never
  std::string state;   // digest of the local session's rows then
};

struct BranchInfo {
  BranchId id = 0;
  std::optional<BranchId> parent;
  Version parent_version = 0;
  Version head_version = 0;
  int depth = 0;        // number of ancestors (its lineage, through parents)
  int read_levels = 0;  // levels a read visits: itself, ancestors or layers
};

struct GcStats {
  uint64_t branches_freed = 0;  // of removed sessions, no longer needed by any other
  uint64_t branches_compacted = 0;  // see Store::CompactLevels
  uint64_t chunks_freed = 0;
  uint64_t bytes_freed = 0;  // stored (compressed) bytes
  // The store file's size (as of its last commit) before and after: freed
  // pages are given back to the file system when the store can shrink.
  uint64_t file_bytes_before = 0;
  uint64_t file_bytes_after = 0;
  // False for a store made before incremental vacuum: freed pages are only
  // reused, until a gc with GcOptions::rewrite converts it.
  bool can_shrink = true;
};

struct GcOptions {
  // Rewrite the whole store first (VACUUM) so that it can shrink from now
  // on. Needs free space of about twice the store's size.
  bool rewrite = false;
};

// One problem found by an integrity check.
struct IntegrityProblem {
  std::string kind;    // e.g. "missing-chunk", "bad-hash", "dangling-entry", "nlink"
  std::string detail;  // one line naming what is wrong, where and at which path
  std::string where;   // the session, snapshot or image affected; empty: store-wide
  std::string path;    // the path it affects in that tree, when one is known
  // Whether `fsck --repair` fixes it: only problems whose fix loses nothing
  // that could be verified (orphans, link counts, entries naming nothing).
  bool repairable = false;
  // The rows a repair touches: in the head of `branch`, inode `ino` (its
  // link count becomes `nlink`), or the entry `name` of directory `parent`.
  BranchId branch = 0;
  InodeId ino = 0;
  InodeId parent = 0;
  std::string name;
  uint32_t nlink = 0;
};

}  // namespace strata

#endif  // STRATA_TYPES_H_
