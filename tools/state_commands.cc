// kv: a session's key-value state (JSON values under string keys).
#include <nlohmann/json.hpp>

#include <iostream>
#include <iterator>
#include <optional>
#include <vector>

#include "cli.h"

namespace strata::cli {

namespace {

// What the kv commands act on: the view an address names, and the session's
// head branch for updates.
struct KvTarget {
  std::unique_ptr<Store> store;
  Address addr;
  View view;
};

Result<KvTarget> OpenKv(Globals& g, const std::string& text, bool writable) {
  KvTarget t;
  ASSIGN_OR_RETURN(t.addr, ParseAddress(text));
  if (t.addr.has_path) return InvalidArgument("a key-value address has no path: '" + text + "'");
  if (writable && !t.addr.snapshot.empty()) {
    return ReadOnly("snapshot " + t.addr.snapshot + " is read-only; change the session head");
  }
  ASSIGN_OR_RETURN(t.store, OpenStore(g, false));
  ASSIGN_OR_RETURN(t.view, ResolveView(*t.store, t.addr));
  return t;
}

Status Get(Globals& g, const std::string& where, const std::string& key) {
  ASSIGN_OR_RETURN(KvTarget t, OpenKv(g, where, false));
  auto value = t.store->KvGet(t.view, key);
  if (!value.ok() && value.status().code() == Code::kNotFound) {
    return NotFound("no key '" + key + "' in " + where);
  }
  RETURN_IF_ERROR(value.status());
  std::cout << *value << "\n";
  return Status::Ok();
}

Status List(Globals& g, const std::string& where, const std::string& prefix) {
  ASSIGN_OR_RETURN(KvTarget t, OpenKv(g, where, false));
  ASSIGN_OR_RETURN(auto entries, t.store->KvList(t.view, prefix));
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : entries) out.push_back({{"key", e.key}, {"value", ParseStoredJson(e.value)}});
    PrintJson(out);
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows{{"KEY", "VALUE"}};
  for (const auto& e : entries) rows.push_back({e.key, e.value});
  PrintTable(rows);
  return Status::Ok();
}

Status Apply(Globals& g, const std::string& where, const std::vector<KvChange>& changes) {
  ASSIGN_OR_RETURN(KvTarget t, OpenKv(g, where, true));
  RETURN_IF_ERROR(t.store->KvUpdate(t.view.branch, changes));
  // The update is in the store's open batch: make it durable before exiting.
  return t.store->Sync();
}

// set KEY VALUE [KEY VALUE]...; a lone KEY takes its value from stdin.
Status Set(Globals& g, const std::string& where, const std::vector<std::string>& args) {
  std::vector<KvChange> changes;
  if (args.size() == 1) {
    changes.push_back({args[0], ReadStdin()});
  } else if (args.size() % 2 != 0) {
    return InvalidArgument("set takes KEY VALUE pairs, or one KEY with its value on stdin");
  } else {
    for (size_t i = 0; i < args.size(); i += 2) changes.push_back({args[i], args[i + 1]});
  }
  return Apply(g, where, changes);
}

Status Rm(Globals& g, const std::string& where, const std::vector<std::string>& keys) {
  std::vector<KvChange> changes;
  for (const auto& k : keys) changes.push_back({k, std::nullopt});
  return Apply(g, where, changes);
}

// update [JSON]: an object whose members are set, or removed when null.
Status Update(Globals& g, const std::string& where, const std::string& arg) {
  const std::string text = arg.empty() ? ReadStdin() : arg;
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgument("update takes a JSON object ({\"key\": value, \"gone\": null})");
  }
  std::vector<KvChange> changes;
  for (const auto& [key, value] : doc.items()) {
    if (value.is_null()) {
      changes.push_back({key, std::nullopt});
    } else {
      changes.push_back({key, value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
    }
  }
  return Apply(g, where, changes);
}

}  // namespace

void AddStateCommands(CLI::App& app, Globals& g) {
  static std::string where, key, prefix, update_json;
  static std::vector<std::string> args;
  CLI::App* kv = app.add_subcommand(
      "kv", "A session's key-value state: JSON values, versioned with its files");
  kv->add_option("address", where, "SESSION, or SESSION@SNAP to read a snapshot")->required();
  kv->require_subcommand(1);
  kv->fallthrough();

  auto* get = g.Add(*kv, "get", "Print a key's JSON value", [&g] { return Get(g, where, key); });
  get->add_option("key", key, "Key")->required();

  auto* list = g.Add(*kv, "list", "List keys and values", [&g] { return List(g, where, prefix); });
  list->add_option("--prefix", prefix, "Only keys starting with this");

  auto* set = g.Add(*kv, "set", "Set keys, all at once: KEY VALUE [KEY VALUE]... (one KEY: value from stdin)",
                    [&g] { return Set(g, where, args); });
  set->add_option("args", args, "KEY VALUE pairs; VALUE is JSON")->required();

  auto* rm = g.Add(*kv, "rm", "Remove keys, all at once", [&g] { return Rm(g, where, args); });
  rm->add_option("keys", args, "Keys")->required();

  auto* update = g.Add(*kv, "update",
                       "Set and remove keys at once from a JSON object (null removes)",
                       [&g] { return Update(g, where, update_json); });
  update->add_option("json", update_json, "The object (default: read from stdin)");
}

}  // namespace strata::cli
