// Store: one SQLite file holding chunks, branches, sessions and every
// filesystem tree. The entry point of the Strata core.
//
// Thread safety: every method may be called from any thread at the same time.
// Mutations are serialized on one writer connection; reads use a pool of
// reader connections and never wait for a writer's commit. Several processes
// may open the same store; SQLite's locking (with a long busy timeout) orders
// them and no caller sees SQLITE_BUSY.
#ifndef STRATA_STORE_H_
#define STRATA_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "strata/status.h"
#include "strata/types.h"

namespace strata {

class Filesystem;

// 128-bit content key of a chunk.
using ChunkHash = std::array<uint8_t, 16>;
// Computes a chunk's key from its plain bytes. Tests replace the default
// (XXH3-128) to force collisions; see StoreOptions::hash.
using HashFunction = std::function<ChunkHash(std::span<const uint8_t>)>;

struct StoreOptions {
  std::string path;
  // Block size of newly created stores (an existing store keeps its own).
  // Must be a power of two between 4 KiB and 1 MiB.
  uint32_t block_size = 64 * 1024;
  // zstd level for chunks; a chunk is stored raw when zstd does not shrink it.
  int compression_level = 3;
  // Dirty file data held in memory before a write triggers a flush.
  uint64_t write_buffer_bytes = 64ull << 20;
  // Null means XXH3-128. Every dedup hit is verified byte for byte, so a
  // colliding function costs speed, never correctness.
  HashFunction hash;
  // Open without ever writing: mutations fail with ReadOnly.
  bool read_only = false;
  // Time source in nanoseconds since the epoch; null means the real clock.
  std::function<int64_t()> clock;
};

// The free space `Store::CollectGarbage` needs beyond the store's files, on a
// full disk: enough for the WAL of one of its steps (a few hundred chunk rows
// deleted, or 256 pages moved; the WAL is emptied between steps when space is
// low) and one removed session's metadata (about 4 KiB per 100 rows of it:
// a 1 GiB session has about 16,000).
inline constexpr uint64_t kGcReserveBytes = uint64_t{8} << 20;

class Store {
 public:
  // Opens the store at options.path, creating it (and its schema) if the file
  // does not exist or is empty. Fails with a message naming the file when it
  // is not a Strata store, is damaged or truncated, or was written by a newer
  // schema version.
  static Result<std::unique_ptr<Store>> Open(StoreOptions options);

  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  virtual const std::string& path() const = 0;
  virtual uint32_t block_size() const = 0;

  // --- Sessions: names bound to a branch.
  // Creates a session on a new root branch holding an empty root directory.
  virtual Result<SessionInfo> CreateSession(std::string_view name, Cred owner = {}) = 0;
  virtual Result<SessionInfo> GetSession(std::string_view name) = 0;
  virtual Result<std::vector<SessionInfo>> ListSessions() = 0;
  // Removes a session: its name, snapshots and history become unreachable,
  // and CollectGarbage reclaims its data once no other session's branch
  // descends from it (forks of it keep working). Not undoable.
  virtual Status RemoveSession(std::string_view name) = 0;
  // Size and last activity of a session's head, and its base.
  virtual Result<SessionUsage> GetSessionUsage(std::string_view name) = 0;
  // Every branch the session has pointed at, newest first. Restore moves a
  // session to a new branch; snapshots of the earlier ones stay reachable.
  virtual Result<std::vector<BranchId>> SessionBranches(std::string_view session) = 0;

  // --- Branches and versions.
  virtual Result<BranchInfo> GetBranch(BranchId branch) = 0;
  // Freezes the branch's current state as a version and returns it; later
  // writes land in a newer version. Includes every write that returned before
  // the call (buffered data is flushed first). O(1) in the size of the tree.
  // Durable when it returns, as an fsync (so are Fork and Restore): a
  // snapshot is a point to come back to, even after a machine crash. If
  // acknowledged changes were lost since the last durable commit (a full
  // disk), it fails once, saying so, instead of freezing a state without them.
  virtual Result<Version> Snapshot(BranchId branch, std::string_view name = "") = 0;
  // Snapshot, returning the new snapshot as ListSnapshots would list it.
  virtual Result<SnapshotInfo> TakeSnapshot(BranchId branch, std::string_view name = "") = 0;
  virtual Result<std::vector<SnapshotInfo>> ListSnapshots(BranchId branch) = 0;
  // Finds a snapshot of `branch` by name.
  virtual Result<SnapshotInfo> FindSnapshot(BranchId branch, std::string_view name) = 0;
  // New branch whose initial state is `from` (kHead: snapshot the head first).
  // If `session` is not empty, it names the new branch. O(1).
  virtual Result<BranchId> Fork(View from, std::string_view session = "") = 0;
  // Points `session` at a new branch starting from `target`. The abandoned
  // head is kept as a snapshot named "before-restore-N" (N unique in the
  // store), returned here, so the restore can be undone by restoring to it.
  virtual Result<View> Restore(std::string_view session, View target) = 0;

  // Paths added, removed or modified between two views, sorted by path.
  // Cost grows with the number of changed rows, not with the tree size.
  virtual Result<std::vector<Change>> Diff(View from, View to) = 0;

  // --- Key-value state: JSON values under string keys (non-empty UTF-8, up
  // to 1,024 bytes), versioned with the branch like its files: a fork
  // carries its fork point's state, a snapshot freezes it, a restore
  // rewinds it.
  // The value of `key` at `view`; NotFound when there is none.
  virtual Result<std::string> KvGet(View view, std::string_view key) = 0;
  // The keys starting with `prefix` at `view`, in byte order.
  virtual Result<std::vector<KvEntry>> KvList(View view, std::string_view prefix = "") = 0;
  // Applies every change at the head of `branch`, all or none: an invalid key
  // or value, or the removal of a key that is not there, fails the whole
  // update and changes nothing. Values are stored as minified JSON. Commits
  // like the filesystem's namespace changes: visible at once in this
  // process, committed within 10 ms, durable at the next Sync.
  virtual Status KvUpdate(BranchId branch, const std::vector<KvChange>& changes) = 0;

  // --- The tool-call log. A call is recorded on a branch; the history seen
  // from a view holds the calls of its branch and those of its ancestors up
  // to the fork points, so a fork shows its parent's calls up to where it
  // forked, then its own.
  // Starts a call on the head of `branch`: freezes the head (the state right
  // before the call) and returns the call's id.
  virtual Result<int64_t> StartCall(BranchId branch, const CallStart& start) = 0;
  // Ends a pending call: freezes the head again (the state right after it).
  virtual Result<ToolCall> EndCall(int64_t id, const CallOutcome& outcome) = 0;
  // Adds output to a pending call as it is produced (stream 1 stdout, 2
  // stderr), so that none of it needs to be held in memory; EndCall's
  // outcome output is appended after it. Pass whole multiples of
  // block_size() until the last piece: output is stored in chunks of that
  // size, compressed and deduplicated.
  virtual Status AppendCallOutput(int64_t id, int stream, std::string_view bytes) = 0;
  // Records a call that already happened, in one step. Its "before" state is
  // the head as last frozen (by a snapshot or a call), its "after" state the
  // head now, so it owns every change since the previous call.
  virtual Result<ToolCall> RecordCall(BranchId branch, const CallStart& start,
                                      const CallOutcome& outcome) = 0;
  virtual Result<ToolCall> GetCall(int64_t id) = 0;
  // The history seen from `view`, newest first. Without the calls' output
  // (stdout_data and stderr_data are empty): GetCall has it.
  virtual Result<std::vector<ToolCall>> ListCalls(View view, const CallFilter& filter) = 0;

  // --- Read-only SQL over documented views of the store (see README.md):
  // sessions, snapshots, tool_calls, kv and files (each session's head).
  // One statement; anything that could write is refused (InvalidArgument)
  // and the store cannot be changed through this connection.
  virtual Result<QueryResult> Query(std::string_view sql) = 0;

  // --- Portable bundles (see README.md): one file holding a session's
  // lineage, history, key-value state and exactly the chunks it needs.
  // Writes session's committed state (with this process's buffered writes)
  // to a new file; refuses to overwrite one.
  // Refuses a session whose chunks are not all here (a lazy pull's).
  virtual Result<BundleStats> Export(std::string_view session, const std::string& bundle_path) = 0;
  // The same rows, but the chunk rows hold no bytes: for a push, which sends
  // the chunks its own way.
  virtual Result<BundleStats> ExportRows(std::string_view session,
                                         const std::string& bundle_path) = 0;
  // Reads every host directory and file that the host base of `session`
  // names but has not read yet into rows of the base (a file's blocks as
  // references to the host file), so that its rows describe its whole tree
  // without the host: what a push needs. Does nothing for a session on
  // another base. IoError naming the path if the host changed it since the
  // base was taken (as a read of it would be).
  virtual Status ExpandHostBase(std::string_view session) = 0;
  // Verifies a bundle completely (checksum, structure, every chunk), then
  // imports it as session `as` (default: its own name), reusing the chunks
  // this store already has. A bad bundle is refused and imports nothing.
  virtual Result<BundleStats> Import(const std::string& bundle_path, std::string_view as = "") = 0;

  // --- Images: frozen trees that sessions start from (see ImageInfo).
  // Creates image `spec.name` (kind, source and fingerprint from `spec`) from
  // what `fill` writes into an empty filesystem. All or nothing: if `fill`
  // fails, no image is created and gc reclaims what it wrote. With
  // `replace`, an existing image of that name is replaced (sessions made
  // from the old one keep it); otherwise it is Exists.
  virtual Result<ImageInfo> CreateImage(const ImageInfo& spec,
                                        const std::function<Status(Filesystem&)>& fill,
                                        bool replace = false) = 0;
  virtual Result<ImageInfo> GetImage(std::string_view name) = 0;
  virtual Result<std::vector<ImageInfo>> ListImages() = 0;
  // Removes the name; gc reclaims the tree once no session uses it.
  virtual Status RemoveImage(std::string_view name) = 0;
  // --- Remotes (S3 locations; see RemoteInfo). Names follow the session
  // name rules; Exists if taken, NotFound if missing.
  virtual Status AddRemote(const RemoteInfo& remote) = 0;
  virtual Result<RemoteInfo> GetRemote(std::string_view name) = 0;
  virtual Result<std::vector<RemoteInfo>> ListRemotes() = 0;
  virtual Status RemoveRemote(std::string_view name) = 0;
  // What `session` of `remote` was last pushed as or pulled from in this
  // store (bundle "" if never), for the fast-forward checks of push and pull.
  virtual Result<RemoteHeadInfo> GetRemoteHead(std::string_view remote,
                                               std::string_view session) = 0;
  virtual Status SetRemoteHead(std::string_view remote, std::string_view session,
                               const RemoteHeadInfo& head) = 0;

  // Creates session `name` from an image, sharing its whole tree: O(1).
  virtual Result<SessionInfo> CreateSessionFromImage(std::string_view name,
                                                     std::string_view image) = 0;

  // --- Filesystems.
  // A filesystem over a branch's head (writable) or a past version (read-only).
  virtual Result<std::unique_ptr<Filesystem>> OpenFilesystem(View view) = 0;

  // --- Maintenance.
  // Deletes the rows of removed sessions' branches that nothing descends
  // from, then the chunks no block references any longer, then gives the
  // freed pages back to the file system, so that the store file shrinks.
  // Works in steps of bounded size, each its own transaction, so that it
  // needs little free space (kGcReserveBytes) even when the disk is full;
  // an interrupted gc leaves a consistent store and can be run again.
  virtual Result<GcStats> CollectGarbage(const GcOptions& options) = 0;
  Result<GcStats> CollectGarbage() { return CollectGarbage(GcOptions{}); }
  // Compacts the levels reads visit for every branch with more than
  // catalog::kMaxReadLevels (4) of them, one branch per transaction: the
  // levels between the branch and its root become one layer, a hidden
  // branch holding their winning rows (docs/ARCHITECTURE.md, "Forks of any
  // depth"). Reads see the same state, through three levels. Fork and
  // Restore queue this on a thread of the store for the branch they make,
  // so that they stay O(1); gc runs it for every branch. Returns how many
  // branches were compacted.
  virtual Result<uint64_t> CompactLevels() = 0;
  // Checks the whole store (`strata fsck`; src/fs/integrity.h lists what):
  // catalog, chunks, every addressable tree, orphans. Returns the problems
  // found, each naming the session or snapshot and path it affects (empty
  // when the store is sound). Reads one consistent state; works on a store
  // opened read-only and while other processes write. `live_branches`
  // are branches served by another process now (mounted), whose orphans
  // are files still open; those of filesystems open in this process are
  // known without it.
  virtual Result<std::vector<IntegrityProblem>> CheckIntegrity(
      const std::set<BranchId>& live_branches) = 0;
  Result<std::vector<IntegrityProblem>> CheckIntegrity() { return CheckIntegrity({}); }
  // Checks and fixes, in one durable transaction, every problem marked
  // repairable, again until none is left (a fix can reveal another, as a
  // dropped entry changes its directory's link count). Returns the
  // problems fixed. Only heads of branches not open anywhere may be
  // repaired: the caller makes sure no other process serves the store.
  virtual Result<std::vector<IntegrityProblem>> RepairIntegrity() = 0;
  // Writes every buffered change of every open filesystem and syncs the log.
  virtual Status Sync() = 0;

 protected:
  Store() = default;
};

// InvalidArgument, with the reason, unless `name` is a valid session (or
// image) name: 1-128 of [A-Za-z0-9._-], not starting with '.' or '-'.
Status CheckSessionName(std::string_view name);

// "pending", "ok" or "error"; and back (InvalidArgument for anything else).
std::string_view CallStatusName(CallStatus status);
Result<CallStatus> ParseCallStatus(std::string_view name);

// The default chunk key: XXH3-128 of the bytes.
ChunkHash Xxh3Hash(std::span<const uint8_t> bytes);

}  // namespace strata

#endif  // STRATA_STORE_H_
