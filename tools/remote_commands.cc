// remote add|ls|rm|check: S3 locations that sessions are pushed to and
// pulled from. Credentials come from the environment or the AWS profile
// files when a remote is used, and are never stored.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "remote/maintenance.h"
#include "remote/remote.h"
#include "remote/transfer.h"

namespace strata::cli {

namespace {

remote::Getenv ProcessEnv() {
  return [](const char* name) -> const char* { return std::getenv(name); };
}

struct AddArgs {
  std::string name;
  std::string url;
  std::string endpoint;
  std::string region;
};

Status RemoteAdd(Globals& g, const AddArgs& a) {
  RemoteInfo remote;
  remote.name = a.name;
  RETURN_IF_ERROR(remote::ParseS3Url(a.url, &remote));
  if (!a.endpoint.empty() && a.endpoint.rfind("http://", 0) != 0 &&
      a.endpoint.rfind("https://", 0) != 0) {
    return InvalidArgument("--endpoint '" + a.endpoint + "' is not an http:// or https:// URL");
  }
  remote.endpoint = a.endpoint;
  while (!remote.endpoint.empty() && remote.endpoint.back() == '/') remote.endpoint.pop_back();
  remote.region = a.region;
  ASSIGN_OR_RETURN(auto store, OpenStore(g, /*create=*/true));
  RETURN_IF_ERROR(store->AddRemote(remote));
  std::cout << "added remote " << remote.name << " (" << remote::S3Url(remote) << ")\n";
  return Status::Ok();
}

Status RemoteLs(Globals& g) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(auto remotes, store->ListRemotes());
  nlohmann::json out = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"REMOTE", "URL", "ENDPOINT", "REGION"}};
  for (const RemoteInfo& r : remotes) {
    out.push_back({{"name", r.name}, {"url", remote::S3Url(r)}, {"bucket", r.bucket},
                   {"prefix", r.prefix}, {"endpoint", r.endpoint}, {"region", r.region},
                   {"created_ns", r.created_ns}});
    rows.push_back({r.name, remote::S3Url(r), r.endpoint.empty() ? "(AWS S3)" : r.endpoint,
                    r.region.empty() ? "(from the environment)" : r.region});
  }
  if (g.json) {
    PrintJson(out);
  } else {
    PrintTable(rows);
  }
  return Status::Ok();
}

Status RemoteRm(Globals& g, const std::string& name) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  RETURN_IF_ERROR(store->RemoveRemote(name));
  std::cout << "removed remote " << name << " (nothing on it was deleted)\n";
  return Status::Ok();
}

// Remote `name` of the store, and a client for it with the credentials of
// the environment.
struct Connected {
  RemoteInfo remote;
  std::unique_ptr<remote::S3Client> client;
};
Result<Connected> ConnectTo(Globals& g, const std::string& name) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  Connected c;
  ASSIGN_OR_RETURN(c.remote, store->GetRemote(name));
  ASSIGN_OR_RETURN(c.client, remote::Connect(c.remote, ProcessEnv()));
  return c;
}

// Lists the remote's prefix: reaches the endpoint, checks the credentials,
// the clock and the bucket, each with an error that says what to fix.
Status RemoteCheck(Globals& g, const std::string& name) {
  ASSIGN_OR_RETURN(Connected c, ConnectTo(g, name));
  const RemoteInfo& remote = c.remote;
  remote::S3Client* client = c.client.get();
  ASSIGN_OR_RETURN(remote::ListPage page,
                   client->List(remote.prefix.empty() ? "" : remote.prefix + "/"));
  const remote::S3Location& where = client->location();
  if (g.json) {
    PrintJson({{"name", remote.name}, {"endpoint", where.endpoint}, {"region", where.region},
               {"ok", true}},
              -1);
  } else {
    std::cout << "remote " << remote.name << " (" << remote::S3Url(remote) << " at "
              << where.endpoint << ", region " << where.region
              << "): reachable, credentials accepted, bucket readable\n";
  }
  return Status::Ok();
}

// The remote named `name`, or the store's only remote when `name` is empty.
Result<RemoteInfo> ChooseRemote(Store& store, const std::string& name) {
  if (!name.empty()) return store.GetRemote(name);
  ASSIGN_OR_RETURN(auto remotes, store.ListRemotes());
  if (remotes.size() == 1) return remotes[0];
  if (remotes.empty()) return NotFound("no remote: add one with 'strata remote add NAME s3://BUCKET'");
  return InvalidArgument("this store has " + std::to_string(remotes.size()) +
                         " remotes; name the one to use");
}

// A one-line progress bar on stderr when it is a terminal; nothing otherwise.
remote::Progress ProgressBar(const char* verb) {
  if (!isatty(STDERR_FILENO)) return nullptr;
  return [verb](uint64_t done, uint64_t total) {
    constexpr int kWidth = 30;
    const int filled = total == 0 ? kWidth : static_cast<int>(kWidth * done / total);
    std::fprintf(stderr, "\r%s [%s%s] %llu/%llu chunks", verb, std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, ' ').c_str(), static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total));
    if (done == total) std::fprintf(stderr, "\n");
  };
}

struct TransferArgs {
  std::string session;
  std::string remote;
  std::string as;
  bool force = false;
  bool eager = false;
  bool host_by_reference = false;
  int parallel = 8;
};

void PrintTransfer(Globals& g, const char* verb, const std::string& session,
                   const RemoteInfo& remote, const remote::TransferStats& stats) {
  if (g.json) {
    PrintJson({{"session", session}, {"remote", remote.name}, {"head", stats.head},
               {"chunks", stats.chunks}, {"transferred", stats.sent}, {"left", stats.left},
               {"bytes", stats.bytes},
               {"requests", stats.requests}, {"up_to_date", stats.up_to_date}},
              -1);
    return;
  }
  if (stats.up_to_date) {
    std::cout << session << " is up to date with " << remote.name;
    if (stats.sent > 0) std::cout << "; fetched its other " << stats.sent << " chunks";
    std::cout << "\n";
    return;
  }
  const bool push = std::string(verb) == "pushed";
  std::cout << verb << " " << session << " " << (push ? "to " : "from ") << remote.name << ": "
            << stats.sent << " of " << stats.chunks << " chunks " << (push ? "uploaded" : "fetched");
  if (!push && stats.left > 0) {
    std::cout << " (" << stats.left - std::min(stats.left, stats.sent)
              << " more are fetched when first read)";
  }
  std::cout << ", " << FormatSize(stats.bytes) << " in " << stats.requests << " requests\n";
}

Status Push(Globals& g, const TransferArgs& a) {
  // A mounted session's daemon commits what it holds first: the push
  // carries every write that returned before it started.
  RETURN_IF_ERROR(FlushIfMounted(g, a.session));
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(RemoteInfo remote, ChooseRemote(*store, a.remote));
  remote::PushOptions options;
  options.force = a.force;
  options.host_by_reference = a.host_by_reference;
  options.parallel = a.parallel;
  options.progress = ProgressBar("pushing");
  ASSIGN_OR_RETURN(auto stats, remote::Push(*store, remote, a.session, options, ProcessEnv()));
  PrintTransfer(g, "pushed", a.session, remote, stats);
  return Status::Ok();
}

Status Pull(Globals& g, const TransferArgs& a) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, /*create=*/true));
  ASSIGN_OR_RETURN(RemoteInfo remote, ChooseRemote(*store, a.remote));
  if (!a.as.empty()) RETURN_IF_ERROR(CheckSessionName(a.as));
  const std::string name = a.as.empty() ? a.session : a.as;
  if (a.force) RETURN_IF_ERROR(RequireUnmounted(g, name, "unmount it before pulling over it"));
  remote::PullOptions options;
  options.as = a.as;
  options.force = a.force;
  options.eager = a.eager;
  options.parallel = a.parallel;
  options.progress = ProgressBar("fetching");
  ASSIGN_OR_RETURN(auto stats, remote::Pull(*store, remote, a.session, options, ProcessEnv()));
  PrintTransfer(g, "pulled", a.as.empty() ? a.session : a.as, remote, stats);
  return Status::Ok();
}

struct UpkeepArgs {
  std::string name;
  int64_t grace_s = 3600;
  bool verify_data = false;
};

Status RemoteGc(Globals& g, const UpkeepArgs& a) {
  ASSIGN_OR_RETURN(Connected c, ConnectTo(g, a.name));
  const RemoteInfo& remote = c.remote;
  remote::S3Client* client = c.client.get();
  ASSIGN_OR_RETURN(remote::RemoteGcStats stats,
                   remote::CollectRemoteGarbage(*client, remote, a.grace_s));
  if (g.json) {
    PrintJson({{"sessions", stats.sessions}, {"packs_kept", stats.packs_kept},
               {"packs_deleted", stats.packs_deleted}, {"bundles_deleted", stats.bundles_deleted},
               {"bytes_deleted", stats.bytes_deleted}, {"young_kept", stats.young_kept},
               {"packs_doomed", stats.packs_doomed}},
              -1);
  } else {
    std::cout << "remote " << remote.name << ": " << stats.sessions << " sessions, "
              << stats.packs_kept << " packs in use; deleted " << stats.packs_deleted
              << " packs and " << stats.bundles_deleted << " old bundles ("
              << FormatSize(stats.bytes_deleted) << ")";
    if (stats.young_kept > 0) {
      std::cout << "; kept " << stats.young_kept << " unreferenced objects newer than "
                << a.grace_s << " s";
    }
    if (stats.packs_doomed > 0) {
      std::cout << "; " << stats.packs_doomed << " unreferenced packs are deleted by a gc "
                << a.grace_s << " s after this one first found them (pushes no longer use them)";
    }
    std::cout << "\n";
  }
  return Status::Ok();
}

Status RemoteFsck(Globals& g, const UpkeepArgs& a) {
  ASSIGN_OR_RETURN(Connected c, ConnectTo(g, a.name));
  const RemoteInfo& remote = c.remote;
  remote::S3Client* client = c.client.get();
  uint64_t sessions = 0;
  ASSIGN_OR_RETURN(auto problems, remote::CheckRemote(*client, remote, a.verify_data, &sessions));
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : problems) out.push_back({{"key", p.key}, {"problem", p.detail}});
    PrintJson({{"sessions", sessions}, {"problems", out}}, -1);
  } else {
    for (const auto& p : problems) std::cout << p.key << ": " << p.detail << "\n";
    std::cout << "remote " << remote.name << ": " << sessions << " sessions checked, "
              << (problems.empty() ? "no problems found" : std::to_string(problems.size()) + " problem(s)")
              << "\n";
  }
  if (!problems.empty()) return Status(Code::kCorruption, "remote " + remote.name + " has problems");
  return Status::Ok();
}

}  // namespace

void AddRemoteCommands(CLI::App& app, Globals& g) {
  static TransferArgs push_args, pull_args;
  auto* push = g.Add(app, "push", "Upload session SESSION to a remote (what it lacks, then its head)",
                     [&g] { return Push(g, push_args); });
  push->add_option("session", push_args.session, "Session")->required();
  push->add_option("remote", push_args.remote, "Remote (default: the store's only one)");
  push->add_flag("--force", push_args.force,
                 "Move the remote head even if this store has not pulled it (replaces what "
                 "others pushed there)");
  push->add_flag("--host-by-reference", push_args.host_by_reference,
                 "A session on the host base: push its host files as references (path, size, "
                 "mtime, SHA-256), for machines that share one image; a read on another machine "
                 "whose file differs fails with EIO. Default: upload them as chunks");
  push->add_option("--parallel", push_args.parallel, "Concurrent uploads (default 8)")
      ->check(CLI::Range(1, 64));
  auto* pull = g.Add(app, "pull", "Bring session SESSION from a remote into this store",
                     [&g] { return Pull(g, pull_args); });
  pull->add_option("session", pull_args.session, "Session on the remote")->required();
  pull->add_option("remote", pull_args.remote, "Remote (default: the store's only one)");
  pull->add_option("--as", pull_args.as, "Local name (default: the same); it must not exist");
  pull->add_flag("--force", pull_args.force,
                 "Replace the local session even if it changed here since it was last pushed or "
                 "pulled (one that did not is replaced without it); its current state is kept as "
                 "a snapshot before-restore-N, as restore does");
  pull->add_flag("--eager", pull_args.eager,
                 "Fetch every chunk now (default: each is fetched when first read); on a session "
                 "already pulled, fetches the chunks not read yet");
  pull->add_option("--parallel", pull_args.parallel, "Concurrent downloads (default 8)")
      ->check(CLI::Range(1, 64));

  static AddArgs add_args;
  static std::string name;
  auto* remote = app.add_subcommand("remote", "Manage remotes (S3 locations for push and pull)");
  remote->require_subcommand(1);
  auto* add = g.Add(*remote, "add", "Add remote NAME at s3://BUCKET[/PREFIX]",
                    [&g] { return RemoteAdd(g, add_args); });
  add->add_option("name", add_args.name, "Remote name")->required();
  add->add_option("url", add_args.url, "s3://BUCKET[/PREFIX]")->required();
  add->add_option("--endpoint", add_args.endpoint,
                  "S3 endpoint URL, path-style (e.g. http://127.0.0.1:7480 for Ceph RGW or "
                  "MinIO); default: AWS S3 for the region");
  add->add_option("--region", add_args.region,
                  "Region for request signing; default: AWS_REGION, AWS_DEFAULT_REGION, "
                  "else us-east-1, read when the remote is used");
  g.Add(*remote, "ls", "List remotes", [&g] { return RemoteLs(g); });
  auto* rm = g.Add(*remote, "rm", "Remove remote NAME (deletes nothing on it)",
                   [&g] { return RemoteRm(g, name); });
  rm->add_option("name", name, "Remote name")->required();
  auto* check = g.Add(*remote, "check",
                      "Check that remote NAME is reachable with the credentials of the environment",
                      [&g] { return RemoteCheck(g, name); });
  check->add_option("name", name, "Remote name")->required();
  static UpkeepArgs upkeep;
  auto* gc = g.Add(*remote, "gc",
                   "Delete the objects of remote NAME that no session's head references",
                   [&g] { return RemoteGc(g, upkeep); });
  gc->add_option("name", upkeep.name, "Remote name")->required();
  gc->add_option("--grace", upkeep.grace_s,
                 "Keep unreferenced objects newer than this many seconds, for pushes in flight; "
                 "an older unreferenced pack is deleted by a gc this long after the one that "
                 "first found it (default 3600)")
      ->check(CLI::NonNegativeNumber);
  auto* fsck = g.Add(*remote, "fsck",
                     "Check that every object the heads of remote NAME reference is there",
                     [&g] { return RemoteFsck(g, upkeep); });
  fsck->add_option("name", upkeep.name, "Remote name")->required();
  fsck->add_flag("--verify-data", upkeep.verify_data,
                 "Also fetch every chunk and check it against its hash");
  remote->footer(
      "Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or AWS_PROFILE "
      "with ~/.aws/credentials and ~/.aws/config; they are never written into the store.");
}

}  // namespace strata::cli
