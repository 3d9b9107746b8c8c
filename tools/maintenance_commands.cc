// export, import, rm, gc, fsck.
#include <iostream>
#include <map>
#include <set>

#include "cli.h"
#include "strata/archive.h"

namespace strata::cli {

namespace {

Status Gc(Globals& g, const GcOptions& options) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(GcStats stats, store->CollectGarbage(options));
  if (g.json) {
    std::cout << nlohmann::json{{"branches_freed", stats.branches_freed},
                                {"branches_compacted", stats.branches_compacted},
                                {"chunks_freed", stats.chunks_freed},
                                {"bytes_freed", stats.bytes_freed},
                                {"file_bytes_before", stats.file_bytes_before},
                                {"file_bytes_after", stats.file_bytes_after},
                                {"can_shrink", stats.can_shrink}}
                     .dump()
              << "\n";
    return Status::Ok();
  }
  std::cout << "freed " << stats.branches_freed << " branches of removed sessions, "
            << stats.chunks_freed << " chunks (" << FormatSize(stats.bytes_freed) << " stored)\n"
            << "store file: " << FormatSize(stats.file_bytes_before) << " -> "
            << FormatSize(stats.file_bytes_after) << "\n";
  if (stats.branches_compacted > 0) {
    std::cout << "compacted the read levels of " << stats.branches_compacted << " deep branches\n";
  }
  if (!stats.can_shrink) {
    std::cout << "this store was made by an older strata and only reuses freed space; "
                 "'strata gc --rewrite' converts it once (needs free space of about twice its "
                 "size) so that gc shrinks it from then on\n";
  }
  return Status::Ok();
}

// The branches of sessions a daemon serves now: their orphans are files
// still open, and nothing of theirs may be repaired.
Result<std::map<BranchId, std::string>> MountedBranches(const Globals& g, Store& store) {
  ASSIGN_OR_RETURN(auto sessions, store.ListSessions());
  std::map<BranchId, std::string> mounted;
  for (const auto& s : sessions) {
    if (IsMounted(g, s.name)) mounted[s.branch] = s.name;
  }
  return mounted;
}

void PrintProblems(const Globals& g, const std::vector<IntegrityProblem>& problems,
                   const char* heading) {
  if (g.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& p : problems) {
      list.push_back({{"kind", p.kind}, {"where", p.where}, {"path", p.path},
                      {"detail", p.detail}, {"repairable", p.repairable}});
    }
    PrintJson({{heading, list}});
    return;
  }
  for (const auto& p : problems) {
    std::cout << (heading == std::string("repaired") ? "repaired " : "") << p.kind << ": "
              << p.detail << (p.repairable && heading != std::string("repaired") ? " [repairable]" : "")
              << "\n";
  }
}

// Checks the store, read-only (so also while sessions are mounted); with
// --repair, first fixes what can be fixed safely, which needs every
// session unmounted.
Status Fsck(Globals& g, bool repair) {
  if (repair) {
    ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
    ASSIGN_OR_RETURN(auto mounted, MountedBranches(g, *store));
    if (!mounted.empty()) {
      return Status(Code::kBusy, "session '" + mounted.begin()->second +
                                     "' is mounted; unmount every session before 'fsck --repair'"
                                     " ('fsck' alone checks a mounted store)");
    }
    ASSIGN_OR_RETURN(auto fixed, store->RepairIntegrity());
    PrintProblems(g, fixed, "repaired");
  }
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false, /*read_only=*/true));
  ASSIGN_OR_RETURN(auto mounted, MountedBranches(g, *store));
  std::set<BranchId> live;
  for (const auto& [branch, name] : mounted) live.insert(branch);
  ASSIGN_OR_RETURN(auto problems, store->CheckIntegrity(live));
  PrintProblems(g, problems, "problems");
  if (!problems.empty()) {
    size_t fixable = 0;
    for (const auto& p : problems) fixable += p.repairable;
    std::string hint = fixable == 0 || repair ? ""
                       : "; 'strata fsck --repair' fixes " + std::to_string(fixable) + " of them";
    return Corruption(std::to_string(problems.size()) + " problem(s) found in " + store->path() +
                      hint);
  }
  if (!g.json) std::cout << store->path() << ": no problems found\n";
  return Status::Ok();
}

Status Rm(Globals& g, const std::string& session) {
  RETURN_IF_ERROR(RequireUnmounted(g, session, "unmount it first"));
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  RETURN_IF_ERROR(store->RemoveSession(session));
  std::cout << "removed session " << session << " ('strata gc' reclaims its data)\n";
  return Status::Ok();
}

// --tar: the tree of SESSION[@SNAP] as a tar archive.
Status ExportTar(Globals& g, const std::string& where, const std::string& file) {
  ASSIGN_OR_RETURN(Address addr, ParseAddress(where));
  if (addr.has_path) return InvalidArgument("export --tar takes SESSION[@SNAP], not a path");
  if (addr.snapshot.empty()) RETURN_IF_ERROR(FlushIfMounted(g, addr.session));
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(View view, ResolveView(*store, addr));
  ASSIGN_OR_RETURN(auto fs, store->OpenFilesystem(view));
  TarStats stats;
  RETURN_IF_ERROR(WriteTar(*fs, file, &stats));
  std::cout << "wrote " << file << ": " << stats.entries << " entries, " << FormatSize(stats.bytes)
            << " of file data\n";
  return Status::Ok();
}

Status Export(Globals& g, const std::string& session, const std::string& file, bool tar) {
  if (tar) return ExportTar(g, session, file);
  RETURN_IF_ERROR(FlushIfMounted(g, session));
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(BundleStats s, store->Export(session, file));
  std::cout << "exported session " << s.session << " to " << file << ": " << s.branches
            << " branches, " << s.calls << " tool calls, " << s.chunks << " chunks ("
            << FormatSize(s.chunk_bytes) << ")\n";
  return Status::Ok();
}

Status Import(Globals& g, const std::string& file, const std::string& as) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, true));
  ASSIGN_OR_RETURN(BundleStats s, store->Import(file, as));
  std::cout << "imported session " << s.session << ": " << s.branches << " branches, " << s.calls
            << " tool calls, " << s.chunks << " chunks (" << s.chunks_reused
            << " already in the store)\n";
  return Status::Ok();
}

}  // namespace

void AddMaintenanceCommands(CLI::App& app, Globals& g) {
  static GcOptions gc_options;
  auto* gc = g.Add(app, "gc",
                   "Reclaim removed sessions and unreferenced chunks; the store file shrinks",
                   [&g] { return Gc(g, gc_options); });
  gc->add_flag("--rewrite", gc_options.rewrite,
               "Rewrite a store made by an older strata once, so that gc can shrink it");
  static std::string export_session, export_file, import_file, import_as;
  static bool export_tar = false;
  auto* exp = g.Add(app, "export", "Write a session (lineage, history, KV, chunks) to one file",
                    [&g] { return Export(g, export_session, export_file, export_tar); });
  exp->add_option("session", export_session, "Session (with --tar: SESSION[@SNAP])")->required();
  exp->add_flag("--tar", export_tar, "Write the files of SESSION[@SNAP] as a tar archive instead");
  exp->add_option("file", export_file, "Bundle file to create (never overwritten)")->required();
  auto* imp = g.Add(app, "import", "Bring a bundle made by 'strata export' into this store",
                    [&g] { return Import(g, import_file, import_as); });
  imp->add_option("file", import_file, "Bundle file")->required();
  imp->add_option("--as", import_as, "Session name to import as (default: the bundle's)");
  static std::string rm_session;
  auto* rm = g.Add(app, "rm", "Remove a session (its forks stay); 'strata gc' reclaims the space",
                   [&g] { return Rm(g, rm_session); });
  rm->add_option("session", rm_session, "Session")->required();
  static bool fsck_repair = false;
  auto* fsck = g.Add(app, "fsck",
                     "Check the store: catalog, chunks, every session's and snapshot's tree, orphans",
                     [&g] { return Fsck(g, fsck_repair); });
  fsck->add_flag("--repair", fsck_repair,
                 "First fix what is safe to fix: orphans left by a crash, link counts, entries"
                 " naming no file (sessions must be unmounted)");
}

}  // namespace strata::cli
