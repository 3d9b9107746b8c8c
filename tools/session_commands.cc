// init, sessions, snapshot, snapshots, fork, restore.
#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>

#include "cli.h"
#include "strata/host_base.h"

namespace strata::cli {

namespace {

struct InitArgs {
  std::string session;
  std::string image;        // --image NAME
  std::string base = "host";  // --base host|empty
};

Status Init(Globals& g, const InitArgs& a) {
  if (!a.image.empty() && a.base != "host") {
    return InvalidArgument("give either --image or --base, not both");
  }
  if (a.base != "host" && a.base != "empty") {
    return InvalidArgument("--base must be 'host' or 'empty' (or use --image NAME)");
  }
  ASSIGN_OR_RETURN(auto store, OpenStore(g, /*create=*/true));
  if (a.session.empty()) {
    std::cout << "store ready at " << store->path() << "\n";
    return Status::Ok();
  }
  // Before any costly work (indexing the host): the name must be free.
  RETURN_IF_ERROR(CheckSessionName(a.session));
  if (store->GetSession(a.session).ok()) {
    return Exists("session '" + a.session + "' already exists");
  }
  std::string base;
  if (!a.image.empty()) {
    RETURN_IF_ERROR(store->CreateSessionFromImage(a.session, a.image).status());
    base = "image " + a.image;
  } else if (a.base == "host") {
    ASSIGN_OR_RETURN(ImageInfo host, EnsureHostImage(*store, "/"));
    RETURN_IF_ERROR(store->CreateSessionFromImage(a.session, host.name).status());
    base = "the host base";
  } else {
    RETURN_IF_ERROR(store->CreateSession(a.session).status());
    base = "an empty tree";
  }
  std::cout << "created session " << a.session << " from " << base << " in " << store->path()
            << "\n";
  return Status::Ok();
}

Status Sessions(Globals& g) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(auto sessions, store->ListSessions());
  nlohmann::json out = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{
      {"SESSION", "BASE", "FILES", "SIZE", "LAST ACTIVITY", "CREATED"}};
  for (const auto& s : sessions) {
    auto usage = store->GetSessionUsage(s.name);
    // Removed by another process since the listing: no longer a session.
    if (!usage.ok() && usage.status().code() == Code::kNotFound) continue;
    RETURN_IF_ERROR(usage.status());
    const SessionUsage& u = *usage;
    ASSIGN_OR_RETURN(BranchInfo b, store->GetBranch(s.branch));
    const std::string base =
        !u.base_session.empty() ? u.base_session + "@v" + std::to_string(u.base_version)
        : u.base_image == kHostImage ? "host"
        : u.base_image.rfind(std::string(kHostImage) + ".superseded-", 0) == 0
            ? "host (older index)"
        : !u.base_image.empty() ? "image:" + u.base_image
                                : "-";
    if (g.json) {
      out.push_back({{"name", s.name}, {"branch", s.branch}, {"created_ns", s.created_ns},
                     {"head_version", b.head_version}, {"depth", b.depth},
                     {"read_levels", b.read_levels},
                     {"base", base == "-" ? nlohmann::json(nullptr) : nlohmann::json(base)},
                     {"files", u.files}, {"bytes", u.bytes},
                     {"last_activity_ns", u.last_activity_ns}});
      continue;
    }
    rows.push_back({s.name, base, std::to_string(u.files), FormatSize(u.bytes),
                    FormatTime(u.last_activity_ns), FormatTime(s.created_ns)});
  }
  if (g.json) {
    PrintJson(out);
  } else {
    PrintTable(rows);
  }
  return Status::Ok();
}

Status Snapshot(Globals& g, const std::string& session, const std::string& name) {
  // Mounted: the daemon takes it (with its buffered writes, at one instant
  // of the mount), and this process need not open the store at all.
  ASSIGN_OR_RETURN(auto reply, AskDaemon(g, session, {{"op", "snapshot"}, {"name", name}}));
  SnapshotInfo snap;
  if (reply) {
    ASSIGN_OR_RETURN(snap.id, ReplyNumber(*reply, "id"));
    ASSIGN_OR_RETURN(snap.branch, ReplyNumber(*reply, "branch"));
    ASSIGN_OR_RETURN(snap.version, ReplyNumber(*reply, "version"));
  } else {
    ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
    ASSIGN_OR_RETURN(SessionInfo info, store->GetSession(session));
    ASSIGN_OR_RETURN(snap, store->TakeSnapshot(info.branch, name));
  }
  if (g.json) {
    PrintJson({{"session", session}, {"snapshot", snap.id}, {"name", name}, {"branch", snap.branch},
               {"version", snap.version}},
              -1);
  } else {
    std::cout << session << "@" << (name.empty() ? std::to_string(snap.id) : name) << " (version "
              << snap.version << ")\n";
  }
  return Status::Ok();
}

Status Snapshots(Globals& g, const std::string& session) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(auto all, SessionSnapshots(*store, session));
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : all) {
      out.push_back({{"id", s.id}, {"name", s.name}, {"branch", s.branch}, {"version", s.version},
                     {"created_ns", s.created_ns}});
    }
    PrintJson(out);
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows{{"ID", "NAME", "BRANCH", "VERSION", "CREATED"}};
  for (const auto& s : all) {
    rows.push_back({std::to_string(s.id), s.name.empty() ? "-" : s.name, std::to_string(s.branch),
                    std::to_string(s.version), FormatTime(s.created_ns)});
  }
  PrintTable(rows);
  return Status::Ok();
}

Status Fork(Globals& g, const std::string& from, const std::string& name) {
  ASSIGN_OR_RETURN(Address addr, ParseAddress(from));
  if (addr.has_path) return InvalidArgument("fork takes SESSION[@SNAP], not a path");
  RETURN_IF_ERROR(CheckSessionName(name));
  nlohmann::json request = {{"op", "fork"}, {"session", name}};
  if (!addr.snapshot.empty()) {
    // A frozen view: resolved here, read-only, and forked by the daemon if
    // the session is mounted (its store writer is then the only one).
    ASSIGN_OR_RETURN(auto reader, OpenStore(g, false, /*read_only=*/true));
    ASSIGN_OR_RETURN(View view, ResolveView(*reader, addr));
    request["branch"] = view.branch;
    request["version"] = view.version;
  }
  // Mounted, the head is forked by the daemon, with its buffered writes, at
  // one instant of the mount.
  ASSIGN_OR_RETURN(auto reply, AskDaemon(g, addr.session, request));
  BranchId branch = 0;
  if (reply) {
    ASSIGN_OR_RETURN(branch, ReplyNumber(*reply, "branch"));
  } else {
    ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
    ASSIGN_OR_RETURN(View view, ResolveView(*store, addr));
    ASSIGN_OR_RETURN(branch, store->Fork(view, name));
  }
  std::cout << "forked " << from << " as " << name << " (branch " << branch << ")\n";
  return Status::Ok();
}

Status Restore(Globals& g, const std::string& target) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(Address addr, ParseAddress(target));
  if (addr.snapshot.empty() || addr.has_path) {
    return InvalidArgument("restore takes SESSION@SNAP");
  }
  RETURN_IF_ERROR(RequireUnmounted(g, addr.session, "unmount it before restoring"));
  ASSIGN_OR_RETURN(View view, ResolveView(*store, addr));
  ASSIGN_OR_RETURN(View undo, store->Restore(addr.session, view));
  ASSIGN_OR_RETURN(auto snaps, store->ListSnapshots(undo.branch));
  std::string undo_name;
  for (const auto& s : snaps) {
    if (s.version == undo.version && !s.name.empty()) undo_name = s.name;
  }
  std::cout << "restored " << addr.session << " to " << target << "; undo with: strata restore "
            << addr.session << "@" << undo_name << "\n";
  return Status::Ok();
}

}  // namespace

void AddSessionCommands(CLI::App& app, Globals& g) {
  static InitArgs init_args;
  static std::string snap_session, snap_name, list_session, fork_from, fork_name,
      restore_target;
  auto* init = g.Add(app, "init", "Create the store (if needed) and optionally a session",
                     [&g] { return Init(g, init_args); });
  init->add_option("session", init_args.session, "Name of a new session");
  init->add_option("--image", init_args.image, "Start from image NAME (see 'strata images')");
  init->add_option("--base", init_args.base,
                   "host (default): the host's system files, copy-on-write; empty: nothing");

  g.Add(app, "sessions", "List sessions", [&g] { return Sessions(g); });

  auto* snap = g.Add(app, "snapshot", "Freeze a session's current state as a snapshot",
                     [&g] { return Snapshot(g, snap_session, snap_name); });
  snap->add_option("session", snap_session, "Session")->required();
  snap->add_option("name", snap_name, "Optional snapshot name");

  auto* snaps = g.Add(app, "snapshots", "List a session's snapshots",
                      [&g] { return Snapshots(g, list_session); });
  snaps->add_option("session", list_session, "Session")->required();

  auto* fork = g.Add(app, "fork", "Create a new session from SESSION[@SNAP] (O(1))",
                     [&g] { return Fork(g, fork_from, fork_name); });
  fork->add_option("from", fork_from, "SESSION or SESSION@SNAP")->required();
  fork->add_option("new", fork_name, "Name of the new session")->required();

  auto* restore = g.Add(app, "restore", "Rewind a session to a snapshot (undoable)",
                        [&g] { return Restore(g, restore_target); });
  restore->add_option("target", restore_target, "SESSION@SNAP")->required();
}

}  // namespace strata::cli
