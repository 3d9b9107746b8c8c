// StoreImpl: the Store interface over a StoreCore.
#include <sys/stat.h>

#include "catalog/branches.h"
#include "catalog/calls.h"
#include "catalog/images.h"
#include "catalog/remotes.h"
#include "catalog/layers.h"
#include "catalog/space.h"
#include "catalog/db.h"
#include "fs/core.h"
#include "fs/diff.h"
#include "fs/filesystem_impl.h"
#include "fs/host_entries.h"
#include "fs/integrity.h"
#include "store/bundle.h"
#include "store/compactor.h"
#include "store/query.h"
#include "tree/kv.h"
#include "base/utf8.h"
#include "strata/filesystem.h"
#include "strata/store.h"

namespace strata {

namespace {

Status ValidateKvKey(std::string_view key) {
  if (key.empty()) return InvalidArgument("a key must not be empty");
  if (key.size() > 1024) return InvalidArgument("a key is limited to 1,024 bytes");
  if (!IsUtf8(key)) return InvalidArgument("a key must be UTF-8 text");
  return Status::Ok();
}

class StoreImpl final : public Store {
 public:
  explicit StoreImpl(std::shared_ptr<fs::StoreCore> core) : core_(std::move(core)) {}

  const std::string& path() const override { return core_->db().path(); }
  uint32_t block_size() const override { return core_->block_size(); }

  Result<SessionInfo> CreateSession(std::string_view name, Cred owner) override {
    RETURN_IF_ERROR(catalog::ValidateSessionName(name));
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(BranchId branch, CreateEmptyTree(conn, owner));
      return catalog::InsertSession(conn, name, branch, core_->Now());
    }));
    return GetSession(name);
  }

  Result<ImageInfo> CreateImage(const ImageInfo& spec,
                                const std::function<Status(Filesystem&)>& fill,
                                bool replace) override {
    RETURN_IF_ERROR(catalog::ValidateName("image", spec.name));
    if (!replace) {
      auto existing = GetImage(spec.name);
      if (existing.ok()) return Exists("image '" + spec.name + "' already exists");
    }
    BranchId branch = 0;
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(branch, CreateEmptyTree(conn, Cred{}));
      // Dropped until the image is complete: a failed fill leaves garbage
      // for gc, never a half image.
      return catalog::DropBranch(conn, branch, core_->Now());
    }));
    Status filled = [&]() -> Status {
      ASSIGN_OR_RETURN(auto fs, OpenFilesystem(View{branch, kHead}));
      RETURN_IF_ERROR(fill(*fs));
      return fs->FlushAll();
    }();
    if (!filled.ok()) return filled;
    ImageInfo image = spec;
    image.branch = branch;
    image.created_ns = core_->Now();
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(image.version, catalog::FreezeHead(conn, branch));
      if (replace) {
        Status removed = catalog::SupersedeImage(conn, image.name, image.created_ns);
        if (!removed.ok() && removed.code() != Code::kNotFound) return removed;
      }
      RETURN_IF_ERROR(catalog::KeepBranch(conn, branch));
      return catalog::InsertImage(conn, image);
    }));
    return image;
  }

  Result<ImageInfo> GetImage(std::string_view name) override {
    return Read([&](sql::Connection& c) { return catalog::GetImage(c, name); });
  }

  Result<std::vector<ImageInfo>> ListImages() override {
    return Read([&](sql::Connection& c) { return catalog::ListImages(c); });
  }

  Status RemoveImage(std::string_view name) override {
    return WriteTxn([&](sql::Connection& conn) {
      return catalog::DeleteImage(conn, name, core_->Now());
    });
  }

  Status AddRemote(const RemoteInfo& remote) override {
    RETURN_IF_ERROR(catalog::ValidateName("remote", remote.name));
    RemoteInfo row = remote;
    row.created_ns = core_->Now();
    return WriteTxn([&](sql::Connection& conn) { return catalog::InsertRemote(conn, row); });
  }

  Result<RemoteInfo> GetRemote(std::string_view name) override {
    return Read([&](sql::Connection& c) { return catalog::GetRemote(c, name); });
  }

  Result<std::vector<RemoteInfo>> ListRemotes() override {
    return Read([&](sql::Connection& c) { return catalog::ListRemotes(c); });
  }

  Status RemoveRemote(std::string_view name) override {
    return WriteTxn([&](sql::Connection& conn) { return catalog::DeleteRemote(conn, name); });
  }

  Result<RemoteHeadInfo> GetRemoteHead(std::string_view remote,
                                       std::string_view session) override {
    return Read([&](sql::Connection& c) { return catalog::GetRemoteHead(c, remote, session); });
  }

  Status SetRemoteHead(std::string_view remote, std::string_view session,
                       const RemoteHeadInfo& head) override {
    return WriteTxn([&](sql::Connection& conn) {
      return catalog::SetRemoteHead(conn, remote, session, head);
    });
  }

  Result<SessionInfo> CreateSessionFromImage(std::string_view name,
                                             std::string_view image_name) override {
    ASSIGN_OR_RETURN(ImageInfo image, GetImage(image_name));
    RETURN_IF_ERROR(Fork(View{image.branch, image.version}, name).status());
    return GetSession(name);
  }

  Result<SessionInfo> GetSession(std::string_view name) override {
    return Read([&](sql::Connection& c) { return catalog::GetSession(c, name); });
  }

  Status RemoveSession(std::string_view name) override {
    return WriteTxn([&](sql::Connection& conn) {
      return catalog::DeleteSession(conn, name, core_->Now());
    });
  }

  Result<SessionUsage> GetSessionUsage(std::string_view name) override {
    return Read([&](sql::Connection& c) { return catalog::GetSessionUsage(c, name); });
  }

  Result<std::vector<BranchId>> SessionBranches(std::string_view name) override {
    return Read([&](sql::Connection& c) { return catalog::SessionBranches(c, name); });
  }

  Result<std::vector<SessionInfo>> ListSessions() override {
    return Read([&](sql::Connection& c) { return catalog::ListSessions(c); });
  }

  Result<BranchInfo> GetBranch(BranchId branch) override {
    return Read([&](sql::Connection& c) { return catalog::GetBranch(c, branch); });
  }

  Result<Version> Snapshot(BranchId branch, std::string_view name) override {
    ASSIGN_OR_RETURN(SnapshotInfo snap, TakeSnapshot(branch, name));
    return snap.version;
  }

  Result<SnapshotInfo> TakeSnapshot(BranchId branch, std::string_view name) override {
    SnapshotInfo snap;
    snap.branch = branch;
    snap.name = name;
    snap.created_ns = core_->Now();
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(snap.version, FreezeWithPending(conn, branch));
      ASSIGN_OR_RETURN(snap.id,
                       catalog::InsertSnapshot(conn, branch, snap.version, name, snap.created_ns));
      return Status::Ok();
    }, catalog::Commit::kDurable));
    return snap;
  }

  Result<std::vector<SnapshotInfo>> ListSnapshots(BranchId branch) override {
    return Read([&](sql::Connection& c) { return catalog::ListSnapshots(c, branch); });
  }

  Result<SnapshotInfo> FindSnapshot(BranchId branch, std::string_view name) override {
    return Read([&](sql::Connection& c) { return catalog::FindSnapshot(c, branch, name); });
  }

  Result<BranchId> Fork(View from, std::string_view session) override {
    if (!session.empty()) RETURN_IF_ERROR(catalog::ValidateSessionName(session));
    BranchId child = 0;
    int levels = 0;
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      Version version = from.version;
      if (from.is_head()) {
        ASSIGN_OR_RETURN(version, FreezeWithPending(conn, from.branch));
      }
      int64_t now = core_->Now();
      ASSIGN_OR_RETURN(child, catalog::CreateChildBranch(conn, from.branch, version, now));
      if (!session.empty()) RETURN_IF_ERROR(catalog::InsertSession(conn, session, child, now));
      ASSIGN_OR_RETURN(levels, catalog::ReadLevels(conn, child));
      return Status::Ok();
    }, catalog::Commit::kDurable));
    CompactLater(child, levels);
    return child;
  }

  Result<View> Restore(std::string_view session, View target) override {
    View undo;
    BranchId fresh = 0;
    int levels = 0;
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(SessionInfo info, catalog::GetSession(conn, session));
      int64_t now = core_->Now();
      ASSIGN_OR_RETURN(Version abandoned, FreezeWithPending(conn, info.branch));
      undo = View{info.branch, abandoned};
      // Name the abandoned head so that the restore can be undone by name. The
      // name is unique in the store: the session's later branches do not
      // descend from this one, so a per-branch name could be ambiguous.
      for (int n = 1;; ++n) {
        std::string name = "before-restore-" + std::to_string(n);
        ASSIGN_OR_RETURN(bool used, catalog::SnapshotNameUsed(conn, name));
        if (used) continue;
        RETURN_IF_ERROR(catalog::InsertSnapshot(conn, info.branch, abandoned, name, now).status());
        break;
      }
      Version version = target.version;
      if (target.is_head()) {
        if (target.branch == info.branch) {
          version = abandoned;
        } else {
          ASSIGN_OR_RETURN(version, FreezeWithPending(conn, target.branch));
        }
      }
      ASSIGN_OR_RETURN(fresh, catalog::CreateChildBranch(conn, target.branch, version, now));
      ASSIGN_OR_RETURN(levels, catalog::ReadLevels(conn, fresh));
      return catalog::SetSessionBranch(conn, session, fresh, now);
    }, catalog::Commit::kDurable));
    CompactLater(fresh, levels);
    return undo;
  }

  Result<std::vector<Change>> Diff(View from, View to) override {
    // Buffered writes of live heads belong in the comparison.
    for (View v : {from, to}) {
      if (v.is_head() && !core_->db().read_only()) {
        RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
          return WritePending(conn, v.branch);
        }));
      }
    }
    return Read([&](sql::Connection& c) { return fs::ComputeDiff(c, from, to); });
  }

  Result<std::string> KvGet(View view, std::string_view key) override {
    ASSIGN_OR_RETURN(std::optional<std::string> value, Read([&](sql::Connection& c) {
                       return tree::GetKv(c, tree::Scope{view.branch, view.version}, key);
                     }));
    if (!value.has_value()) return NotFound("no key '" + std::string(key) + "'");
    return std::move(*value);
  }

  Result<std::vector<KvEntry>> KvList(View view, std::string_view prefix) override {
    ASSIGN_OR_RETURN(auto rows, Read([&](sql::Connection& c) {
                       return tree::ListKv(c, tree::Scope{view.branch, view.version}, prefix);
                     }));
    std::vector<KvEntry> out;
    out.reserve(rows.size());
    for (auto& [key, value] : rows) out.push_back(KvEntry{std::move(key), std::move(value)});
    return out;
  }

  Status KvUpdate(BranchId branch, const std::vector<KvChange>& changes) override {
    for (const KvChange& c : changes) RETURN_IF_ERROR(ValidateKvKey(c.key));
    return WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(Version head, catalog::HeadVersion(conn, branch));
      const tree::Head at{branch, head};
      for (const KvChange& c : changes) {
        if (!c.value.has_value()) {
          RETURN_IF_ERROR(tree::DeleteKv(conn, at, c.key));
          continue;
        }
        auto json = tree::NormalizeJson(conn, *c.value);
        if (!json.ok()) return json.status().WithContext("key '" + c.key + "'");
        RETURN_IF_ERROR(tree::PutKv(conn, at, c.key, *json));
      }
      return Status::Ok();
    }, catalog::Commit::kBatched);
  }

  Result<int64_t> StartCall(BranchId branch, const CallStart& start) override {
    ToolCall call;
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(call, NewCall(conn, branch, start));
      ASSIGN_OR_RETURN(call.version_before, FreezeWithPending(conn, branch));
      ASSIGN_OR_RETURN(call.id, catalog::InsertCall(conn, call));
      return Status::Ok();
    }, catalog::Commit::kBatched));
    return call.id;
  }

  Result<ToolCall> EndCall(int64_t id, const CallOutcome& outcome) override {
    ToolCall call;
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(call, catalog::GetCall(conn, id));
      if (call.status != CallStatus::kPending) {
        return Status(Code::kExists, "tool call " + std::to_string(id) + " has already ended");
      }
      return Finish(conn, call, outcome);
    }, catalog::Commit::kBatched));
    return call;
  }

  Status AppendCallOutput(int64_t id, int stream, std::string_view bytes) override {
    if (stream != 1 && stream != 2) return InvalidArgument("output stream must be 1 or 2");
    return WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(ToolCall call, catalog::GetCall(conn, id));
      if (call.status != CallStatus::kPending) {
        return Status(Code::kExists, "tool call " + std::to_string(id) + " has already ended");
      }
      return StoreOutput(conn, id, stream, bytes);
    }, catalog::Commit::kBatched);
  }

  Result<ToolCall> RecordCall(BranchId branch, const CallStart& start,
                              const CallOutcome& outcome) override {
    ToolCall call;
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(call, NewCall(conn, branch, start));
      // The head as last frozen: the state before the changes now pending.
      ASSIGN_OR_RETURN(Version head, catalog::HeadVersion(conn, branch));
      call.version_before = head - 1;
      ASSIGN_OR_RETURN(call.id, catalog::InsertCall(conn, call));
      return Finish(conn, call, outcome);
    }, catalog::Commit::kBatched));
    return call;
  }

  Result<ToolCall> GetCall(int64_t id) override {
    return Read([&](sql::Connection& c) -> Result<ToolCall> {
      ASSIGN_OR_RETURN(ToolCall call, catalog::GetCall(c, id));
      RETURN_IF_ERROR(LoadOutput(c, call));
      return call;
    });
  }

  Result<std::vector<ToolCall>> ListCalls(View view, const CallFilter& filter) override {
    return Read([&](sql::Connection& c) -> Result<std::vector<ToolCall>> {
      ASSIGN_OR_RETURN(auto lineage, catalog::Lineage(c, view));
      return catalog::ListCalls(c, lineage, filter);
    });
  }

  Result<BundleStats> Export(std::string_view session, const std::string& bundle_path) override {
    return ExportWith(session, bundle_path, /*chunk_data=*/true);
  }

  Result<BundleStats> ExportRows(std::string_view session, const std::string& bundle_path) override {
    return ExportWith(session, bundle_path, /*chunk_data=*/false);
  }

  Result<BundleStats> ExportWith(std::string_view session, const std::string& bundle_path,
                                 bool chunk_data) {
    if (!core_->db().read_only()) {
      ASSIGN_OR_RETURN(SessionInfo info, GetSession(session));
      RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) { return WritePending(conn, info.branch); }));
    }
    return ExportBundle(path(), session, bundle_path, core_->Now(), chunk_data);
  }

  Status ExpandHostBase(std::string_view session) override {
    if (core_->db().read_only()) return ReadOnly("store " + path() + " is open read-only");
    ASSIGN_OR_RETURN(SessionInfo info, GetSession(session));
    ASSIGN_OR_RETURN(BranchId base, Read([&](sql::Connection& c) {
                       return fs::HostBaseOf(c, info.branch);
                     }));
    if (base == 0) return Status::Ok();
    // One pass in inode order, a batch per transaction (each a moment of
    // the writer lock, as a lookup's expansion is).
    constexpr int kBatch = 256;
    InodeId after = 0;
    for (bool more = true; more;) {
      RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
        ASSIGN_OR_RETURN(auto entries, fs::UnexpandedHostEntries(conn, base, after, kBatch));
        more = !entries.empty();
        ASSIGN_OR_RETURN(Version head, catalog::HeadVersion(conn, base));
        for (const fs::HostEntry& e : entries) {
          RETURN_IF_ERROR(fs::ExpandHostEntry(conn, *core_, head - 1, e));
          after = e.ino;
        }
        return Status::Ok();
      }));
    }
    return Status::Ok();
  }

  Result<BundleStats> Import(const std::string& bundle_path, std::string_view as) override {
    if (core_->db().read_only()) return ReadOnly("store " + path() + " is open read-only");
    if (!as.empty()) RETURN_IF_ERROR(catalog::ValidateSessionName(as));
    RETURN_IF_ERROR(core_->db().CommitOpenBatch());
    return ImportBundle(path(), bundle_path, as, core_->chunks());
  }

  Result<QueryResult> Query(std::string_view sql) override {
    // Committed state only: what this process has batched is committed first.
    if (!core_->db().read_only()) RETURN_IF_ERROR(core_->db().CommitOpenBatch());
    return RunReadOnlyQuery(path(), sql);
  }

  Result<std::unique_ptr<Filesystem>> OpenFilesystem(View view) override {
    ASSIGN_OR_RETURN(auto fs, fs::FilesystemImpl::Open(core_, view));
    return std::unique_ptr<Filesystem>(std::move(fs));
  }

  Result<GcStats> CollectGarbage(const GcOptions& options) override {
    // Each step is one transaction of bounded size: low on space, the WAL is
    // copied back and emptied before the next one (Db::Writer).
    constexpr uint64_t kChunksPerStep = 512;
    constexpr uint64_t kPagesPerStep = 256;
    catalog::Db& db = core_->db();
    GcStats stats;
    ASSIGN_OR_RETURN(stats.branches_compacted, CompactLevels());
    ASSIGN_OR_RETURN(catalog::PageCounts before, Read(catalog::CountPages));
    stats.file_bytes_before = before.pages * before.page_size;
    for (;;) {
      uint64_t freed = 0;
      RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
        ASSIGN_OR_RETURN(freed, catalog::DeleteDroppedBranches(conn, 1));
        return Status::Ok();
      }).WithContext("deleting a removed session's rows"));
      if (freed == 0) break;
      stats.branches_freed += freed;
    }
    for (chunks::ChunkId after = 0;;) {
      GcStats step;
      RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
        ASSIGN_OR_RETURN(step, core_->chunks().CollectUnreferenced(conn, &after, kChunksPerStep));
        return Status::Ok();
      }).WithContext("deleting unreferenced chunks"));
      if (step.chunks_freed == 0) break;
      stats.chunks_freed += step.chunks_freed;
      stats.bytes_freed += step.bytes_freed;
    }
    if (options.rewrite && !before.can_shrink) {
      RETURN_IF_ERROR(db.CommitOpenBatch());
      ASSIGN_OR_RETURN(catalog::WriterLease lease, db.Writer());
      RETURN_IF_ERROR(catalog::RewriteForIncrementalVacuum(lease.conn()));
    }
    catalog::PageCounts after;
    for (uint64_t last_free = UINT64_MAX;;) {
      RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
        ASSIGN_OR_RETURN(after, catalog::CountPages(conn));
        if (after.can_shrink && after.free_pages > 0) {
          RETURN_IF_ERROR(catalog::IncrementalVacuum(conn, kPagesPerStep));
        }
        return Status::Ok();
      }).WithContext("giving free pages back to the file system"));
      if (!after.can_shrink || after.free_pages <= kPagesPerStep) break;
      if (after.free_pages >= last_free) return Internal("incremental vacuum made no progress");
      last_free = after.free_pages;
    }
    ASSIGN_OR_RETURN(after, Read(catalog::CountPages));
    stats.file_bytes_after = after.pages * after.page_size;
    stats.can_shrink = after.can_shrink;
    // The file itself shrinks when the WAL is copied back. A reader still on
    // the WAL (a mounted session's daemon) can delay that to the next
    // checkpoint; the space is given back then.
    (void)db.CheckpointNow();
    return stats;
  }

  Result<uint64_t> CompactLevels() override {
    constexpr int kBranchesPerRound = 256;
    uint64_t compacted = 0;
    for (;;) {
      ASSIGN_OR_RETURN(auto deep, Read([&](sql::Connection& c) {
                         return catalog::BranchesToCompact(c, kBranchesPerRound);
                       }));
      uint64_t round = 0;
      for (BranchId branch : deep) {
        ASSIGN_OR_RETURN(bool done, CompactBranch(branch));
        round += done ? 1 : 0;
      }
      compacted += round;
      if (deep.size() < kBranchesPerRound || round == 0) return compacted;
    }
  }

  Result<std::vector<IntegrityProblem>> CheckIntegrity(
      const std::set<BranchId>& live_branches) override {
    std::set<BranchId> live = core_->OpenBranches();
    live.insert(live_branches.begin(), live_branches.end());
    return Read([&](sql::Connection& c) { return fs::CheckStoreIntegrity(c, core_->chunks(), live); });
  }

  Result<std::vector<IntegrityProblem>> RepairIntegrity() override {
    std::vector<IntegrityProblem> fixed;
    constexpr int kMaxPasses = 4;
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      for (int pass = 0; pass < kMaxPasses; ++pass) {
        ASSIGN_OR_RETURN(auto problems,
                         fs::CheckStoreIntegrity(conn, core_->chunks(), core_->OpenBranches()));
        size_t before = fixed.size();
        for (auto& p : problems) {
          if (p.repairable) fixed.push_back(p);
        }
        if (fixed.size() == before) break;
        RETURN_IF_ERROR(fs::RepairProblems(conn, problems));
      }
      return Status::Ok();
    }, catalog::Commit::kDurable));
    return fixed;
  }

  Status Sync() override {
    if (core_->db().read_only()) return Status::Ok();  // nothing of ours to sync
    ASSIGN_OR_RETURN(catalog::WriterLease lease, core_->db().Writer());
    sql::Connection& conn = lease.conn();
    fs::PendingFlush pending = core_->TakeAll();
    return fs::CommitWith(core_->db(), lease, catalog::Commit::kDurable, core_->Now(), pending,
                          [&] { return pending.Write(conn); });
  }

 private:
  // A new root branch holding an empty root directory owned by `owner`.
  Result<BranchId> CreateEmptyTree(sql::Connection& conn, Cred owner) {
    int64_t now = core_->Now();
    ASSIGN_OR_RETURN(BranchId branch, catalog::CreateRootBranch(conn, now));
    tree::InodeRow root;
    root.ino = kRootIno;
    root.mode = S_IFDIR | 0755;
    root.nlink = 2;
    root.uid = owner.uid;
    root.gid = owner.gid;
    root.atime_ns = root.mtime_ns = root.ctime_ns = now;
    root.parent = kRootIno;
    RETURN_IF_ERROR(tree::PutInode(conn, tree::Head{branch, 1}, root));
    return branch;
  }

  // Runs `fn` inside one write transaction and commits it (kNow), or adds
  // it to the open batch (kBatched); any buffered data taken by fn (through
  // pending_) is completed or restored accordingly.
  Status WriteTxn(const std::function<Status(sql::Connection&)>& fn,
                  catalog::Commit commit = catalog::Commit::kNow) {
    ASSIGN_OR_RETURN(catalog::WriterLease lease, core_->db().Writer());
    sql::Connection& conn = lease.conn();
    const int64_t now = commit == catalog::Commit::kDurable ? core_->Now() : 0;
    return fs::CommitWith(core_->db(), lease, commit, now, pending_, [&] { return fn(conn); });
  }

  // A pending call on `branch` from `start`, checked: a name, JSON
  // arguments (stored minified), an existing parent.
  Result<ToolCall> NewCall(sql::Connection& conn, BranchId branch, const CallStart& start) {
    if (start.name.empty()) return InvalidArgument("a tool call needs a name");
    ToolCall call;
    call.branch = branch;
    call.name = start.name;
    auto args = tree::NormalizeJson(conn, start.args);
    if (!args.ok()) return args.status().WithContext("tool call arguments");
    call.args = std::move(*args);
    if (start.parent.has_value()) {
      RETURN_IF_ERROR(catalog::GetCall(conn, *start.parent).status().WithContext("parent call"));
      call.parent = start.parent;
    }
    call.start_ns = start.start_ns.value_or(core_->Now());
    return call;
  }

  // Ends `call` with `outcome` and freezes its branch's head: the state
  // right after the call.
  Status Finish(sql::Connection& conn, ToolCall& call, const CallOutcome& outcome) {
    if (outcome.result.has_value()) {
      auto result = tree::NormalizeJson(conn, *outcome.result);
      if (!result.ok()) return result.status().WithContext("tool call result");
      call.result = std::move(*result);
    }
    call.error = outcome.error;
    call.status = outcome.error.has_value() ? CallStatus::kError : CallStatus::kOk;
    call.exit_status = outcome.exit_status;
    call.stdout_data = outcome.stdout_data;
    call.stderr_data = outcome.stderr_data;
    call.end_ns = outcome.end_ns.value_or(core_->Now());
    if (*call.end_ns < call.start_ns) {
      return InvalidArgument("a tool call cannot end before it started");
    }
    ASSIGN_OR_RETURN(call.version_after, FreezeWithPending(conn, call.branch));
    ToolCall row = call;  // the output goes to chunks, not to the row
    row.stdout_data.clear();
    row.stderr_data.clear();
    RETURN_IF_ERROR(catalog::FinishCall(conn, row));
    RETURN_IF_ERROR(StoreOutput(conn, call.id, 1, call.stdout_data));
    return StoreOutput(conn, call.id, 2, call.stderr_data);
  }

  // A call's output (stream 1 stdout, 2 stderr) as chunks of the block size:
  // compressed, deduplicated, and without a size limit of its own.
  Status StoreOutput(sql::Connection& conn, int64_t call, int stream, std::string_view data) {
    std::vector<int64_t> ids;
    const size_t piece = core_->block_size();
    for (size_t offset = 0; offset < data.size(); offset += piece) {
      std::string_view bytes = data.substr(offset, piece);
      ASSIGN_OR_RETURN(int64_t id, core_->chunks().Put(conn, {reinterpret_cast<const uint8_t*>(
                                                                  bytes.data()), bytes.size()}));
      ids.push_back(id);
    }
    return catalog::InsertOutput(conn, call, stream, ids);
  }

  // Fills the call's output from its chunks (calls recorded before chunked
  // output keep theirs in the row).
  Status LoadOutput(sql::Connection& conn, ToolCall& call) {
    for (int stream : {1, 2}) {
      ASSIGN_OR_RETURN(auto ids, catalog::OutputChunks(conn, call.id, stream));
      if (ids.empty()) continue;
      std::string& out = stream == 1 ? call.stdout_data : call.stderr_data;
      out.clear();
      for (int64_t id : ids) {
        ASSIGN_OR_RETURN(auto bytes, core_->chunks().Get(conn, id));
        out.append(reinterpret_cast<const char*>(bytes->data()), bytes->size());
      }
    }
    return Status::Ok();
  }

  // Writes the buffered data of every open filesystem of `branch` into the
  // current transaction. Call only inside WriteTxn (writer lock held).
  Status WritePending(sql::Connection& conn, BranchId branch) {
    fs::PendingFlush taken = core_->TakeBranch(branch);
    RETURN_IF_ERROR(taken.Write(conn));
    pending_.Absorb(std::move(taken));
    return Status::Ok();
  }

  // Commits buffered data into the head, then freezes it: the frozen version
  // holds every write that returned before this call.
  Result<Version> FreezeWithPending(sql::Connection& conn, BranchId branch) {
    RETURN_IF_ERROR(WritePending(conn, branch));
    return catalog::FreezeHead(conn, branch);
  }

  // One branch's compaction, in a transaction of its own (catalog/layers.h).
  Result<bool> CompactBranch(BranchId branch) {
    bool done = false;
    RETURN_IF_ERROR(WriteTxn([&](sql::Connection& conn) -> Status {
      ASSIGN_OR_RETURN(done, catalog::CompactBranch(conn, branch, core_->Now()));
      return Status::Ok();
    }).WithContext("compacting the levels of branch " + std::to_string(branch)));
    return done;
  }

  // Hands a new `branch` to the compactor's thread if reads of it visit
  // `levels` > kMaxReadLevels levels.
  void CompactLater(BranchId branch, int levels) {
    if (levels > catalog::kMaxReadLevels) compactor_.Add(branch);
  }

  template <typename Fn>
  auto Read(Fn fn) -> decltype(fn(std::declval<sql::Connection&>())) {
    ASSIGN_OR_RETURN(catalog::ReaderLease lease, core_->db().Reader());
    return fn(lease.conn());
  }

  std::shared_ptr<fs::StoreCore> core_;
  fs::PendingFlush pending_;  // taken inside WriteTxn; guarded by the writer lock
  // Last: destroyed first, finishing its queue while the store is whole.
  Compactor compactor_{[this](BranchId branch) { (void)CompactBranch(branch); }};
};

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(StoreOptions options) {
  if (options.path.empty()) return InvalidArgument("no store path given");
  uint32_t bs = options.block_size;
  if (bs < 4096 || bs > (1u << 20) || (bs & (bs - 1)) != 0) {
    return InvalidArgument("block size must be a power of two from 4 KiB to 1 MiB");
  }
  int64_t now = options.clock ? options.clock() : 0;
  if (now == 0) {
    now = std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
  }
  auto db = catalog::Db::Open(options.path, options.read_only, bs, now);
  if (!db.ok()) return db.status();
  auto core = std::make_shared<fs::StoreCore>(std::move(db).value(), std::move(options));
  return std::unique_ptr<Store>(new StoreImpl(std::move(core)));
}

Status CheckSessionName(std::string_view name) { return catalog::ValidateSessionName(name); }

}  // namespace strata
