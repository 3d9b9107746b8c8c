// call start|end|record, log, show: the tool-call log; sql: the query tool.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <iostream>
#include <optional>

#include "cli.h"

namespace strata::cli {

namespace {

// The session whose head is `branch`, if any (to reach its daemon).
Result<std::optional<std::string>> SessionOfBranch(Store& store, BranchId branch) {
  ASSIGN_OR_RETURN(auto sessions, store.ListSessions());
  for (const auto& s : sessions) {
    if (s.branch == branch) return std::optional<std::string>(s.name);
  }
  return std::optional<std::string>();
}

// T as nanoseconds since the epoch: an integer, or a duration ago (90s, 10m,
// 2h, 3d).
Result<int64_t> ParseSince(const std::string& text, int64_t now_ns) {
  char* end = nullptr;
  const long long n = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || n < 0) {
    return InvalidArgument("--since takes nanoseconds since the epoch or a duration (90s, 10m, 2h, 3d)");
  }
  const std::string unit(end);
  if (unit.empty()) return static_cast<int64_t>(n);
  const int64_t seconds = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (seconds == 0) return InvalidArgument("unknown unit '" + unit + "' in --since (s, m, h or d)");
  return now_ns - static_cast<int64_t>(n) * seconds * 1'000'000'000;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What a call changed: the paths between its before and after states.
Result<std::vector<Change>> CallChanges(Store& store, const ToolCall& c) {
  if (!c.version_after.has_value()) return std::vector<Change>();
  return store.Diff(View{c.branch, c.version_before}, View{c.branch, *c.version_after});
}

struct ChangeCounts {
  size_t added = 0, modified = 0, removed = 0;
};
ChangeCounts Count(const std::vector<Change>& changes) {
  ChangeCounts n;
  for (const auto& ch : changes) {
    (ch.kind == ChangeKind::kAdded ? n.added : ch.kind == ChangeKind::kRemoved ? n.removed : n.modified)++;
  }
  return n;
}

nlohmann::json CallJson(const ToolCall& c, const ChangeCounts& n) {
  nlohmann::json j = {{"id", c.id},
                      {"parent", c.parent.has_value() ? nlohmann::json(*c.parent) : nullptr},
                      {"name", c.name},
                      {"status", CallStatusName(c.status)},
                      {"args", ParseStoredJson(c.args)},
                      {"result", ParseStoredJson(c.result)},
                      {"error", c.error.has_value() ? nlohmann::json(*c.error) : nullptr},
                      {"exit_status", c.exit_status.has_value() ? nlohmann::json(*c.exit_status) : nullptr},
                      {"start_ns", c.start_ns},
                      {"end_ns", c.end_ns.has_value() ? nlohmann::json(*c.end_ns) : nullptr},
                      {"branch", c.branch},
                      {"version_before", c.version_before},
                      {"version_after", c.version_after.has_value() ? nlohmann::json(*c.version_after) : nullptr},
                      {"changes", {{"added", n.added}, {"modified", n.modified}, {"removed", n.removed}}}};
  return j;
}

struct CallArgs {
  std::string session, name, args = "{}", result, error, stdout_file, stderr_file;
  int64_t parent = 0;
  int exit_status = 0;
  bool has_exit = false;
  int64_t id = 0;
};

Result<CallOutcome> Outcome(const CallArgs& a, CLI::App* cmd) {
  CallOutcome out;
  if (cmd->count("--result") && cmd->count("--error")) {
    return InvalidArgument("give --result or --error, not both");
  }
  if (cmd->count("--result")) out.result = a.result;
  if (cmd->count("--error")) out.error = a.error;
  if (a.has_exit) out.exit_status = a.exit_status;
  // Captured output, from files (- is standard input).
  for (auto [file, data] : {std::pair{&a.stdout_file, &out.stdout_data},
                            std::pair{&a.stderr_file, &out.stderr_data}}) {
    if (file->empty()) continue;
    if (*file == "-") {
      *data = ReadStdin();
      continue;
    }
    std::ifstream in(*file, std::ios::binary);
    if (!in) return NotFound("cannot read " + *file);
    *data = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

CallStart Start(const CallArgs& a) {
  CallStart s;
  s.name = a.name;
  s.args = a.args;
  if (a.parent != 0) s.parent = a.parent;
  return s;
}

Status PrintId(Globals& g, const ToolCall& c) {
  if (g.json) {
    PrintJson(CallJson(c, {}), -1);
  } else {
    std::cout << c.id << "\n";
  }
  return Status::Ok();
}

Status CallStartCmd(Globals& g, const CallArgs& a) {
  RETURN_IF_ERROR(FlushIfMounted(g, a.session));  // the "before" state holds every write so far
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(SessionInfo s, store->GetSession(a.session));
  ASSIGN_OR_RETURN(int64_t id, store->StartCall(s.branch, Start(a)));
  RETURN_IF_ERROR(store->Sync());
  ASSIGN_OR_RETURN(ToolCall c, store->GetCall(id));
  return PrintId(g, c);
}

Status CallEndCmd(Globals& g, const CallArgs& a, CLI::App* cmd) {
  ASSIGN_OR_RETURN(CallOutcome outcome, Outcome(a, cmd));
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(ToolCall pending, store->GetCall(a.id));
  ASSIGN_OR_RETURN(auto session, SessionOfBranch(*store, pending.branch));
  if (session.has_value()) RETURN_IF_ERROR(FlushIfMounted(g, *session));
  ASSIGN_OR_RETURN(ToolCall c, store->EndCall(a.id, outcome));
  RETURN_IF_ERROR(store->Sync());
  if (g.json) {
    PrintJson(CallJson(c, {}), -1);
  } else {
    std::cout << "call " << c.id << " " << CallStatusName(c.status) << " ("
              << FormatDuration(c.end_ns.value_or(c.start_ns) - c.start_ns) << ")\n";
  }
  return Status::Ok();
}

Status CallRecordCmd(Globals& g, const CallArgs& a, CLI::App* cmd) {
  ASSIGN_OR_RETURN(CallOutcome outcome, Outcome(a, cmd));
  RETURN_IF_ERROR(FlushIfMounted(g, a.session));
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(SessionInfo s, store->GetSession(a.session));
  ASSIGN_OR_RETURN(ToolCall c, store->RecordCall(s.branch, Start(a), outcome));
  RETURN_IF_ERROR(store->Sync());
  return PrintId(g, c);
}

struct LogArgs {
  std::string where, name, status, since;
  size_t limit = 0;
};

Status LogCmd(Globals& g, const LogArgs& a) {
  ASSIGN_OR_RETURN(Address addr, ParseAddress(a.where));
  if (addr.has_path) return InvalidArgument("a log address has no path: '" + a.where + "'");
  if (addr.snapshot.empty()) RETURN_IF_ERROR(FlushIfMounted(g, addr.session));
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(View view, ResolveView(*store, addr));
  CallFilter filter;
  filter.name = a.name;
  filter.limit = a.limit;
  if (!a.status.empty()) {
    ASSIGN_OR_RETURN(filter.status, ParseCallStatus(a.status));
  }
  if (!a.since.empty()) {
    ASSIGN_OR_RETURN(filter.since_ns, ParseSince(a.since, NowNs()));
  }
  ASSIGN_OR_RETURN(auto calls, store->ListCalls(view, filter));
  nlohmann::json out = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{
      {"ID", "STARTED", "DURATION", "STATUS", "NAME", "CHANGES"}};
  for (const ToolCall& c : calls) {
    ASSIGN_OR_RETURN(auto changes, CallChanges(*store, c));
    ChangeCounts n = Count(changes);
    if (g.json) {
      out.push_back(CallJson(c, n));
      continue;
    }
    std::string name = c.parent.has_value() ? "  " + c.name : c.name;  // nested: indented
    rows.push_back({std::to_string(c.id), FormatTime(c.start_ns),
                    c.end_ns.has_value() ? FormatDuration(*c.end_ns - c.start_ns) : "-",
                    std::string(CallStatusName(c.status)), name,
                    "+" + std::to_string(n.added) + " ~" + std::to_string(n.modified) + " -" +
                        std::to_string(n.removed)});
  }
  if (g.json) {
    PrintJson(out);
  } else {
    PrintTable(rows);
  }
  return Status::Ok();
}

Status ShowCmd(Globals& g, const std::string& session, int64_t id) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  // The call must be in the session's history: resolve its address.
  Address addr;
  addr.session = session;
  addr.snapshot = "call:" + std::to_string(id);
  auto view = ResolveView(*store, addr);
  if (!view.ok() && view.status().code() == Code::kNotFound) return view.status();
  ASSIGN_OR_RETURN(ToolCall c, store->GetCall(id));
  ASSIGN_OR_RETURN(auto changes, CallChanges(*store, c));
  if (g.json) {
    nlohmann::json j = CallJson(c, Count(changes));
    j["stdout"] = c.stdout_data;
    j["stderr"] = c.stderr_data;
    nlohmann::json paths = nlohmann::json::array();
    for (const auto& ch : changes) {
      paths.push_back({{"kind", KindName(ch.kind)}, {"path", ch.path},
                       {"old_size", ch.old_size}, {"new_size", ch.new_size}});
    }
    j["paths"] = paths;
    PrintJson(j);
    return Status::Ok();
  }
  std::cout << "call " << c.id << ": " << c.name << " (" << CallStatusName(c.status) << ")\n";
  if (c.parent.has_value()) std::cout << "parent:   " << *c.parent << "\n";
  std::cout << "started:  " << FormatTime(c.start_ns) << "\n";
  if (c.end_ns.has_value()) std::cout << "duration: " << FormatDuration(*c.end_ns - c.start_ns) << "\n";
  std::cout << "args:     " << c.args << "\n";
  if (c.result.has_value()) std::cout << "result:   " << *c.result << "\n";
  if (c.error.has_value()) std::cout << "error:    " << *c.error << "\n";
  if (c.exit_status.has_value()) std::cout << "exit:     " << *c.exit_status << "\n";
  if (!c.stdout_data.empty()) std::cout << "--- stdout\n" << c.stdout_data << "\n";
  if (!c.stderr_data.empty()) std::cout << "--- stderr\n" << c.stderr_data << "\n";
  std::cout << "changes:  " << changes.size() << (c.version_after ? "" : " (still running)") << "\n";
  for (const auto& ch : changes) {
    std::cout << "  " << KindMark(ch.kind) << " " << ch.path;
    if (ch.kind == ChangeKind::kAdded) std::cout << "  (" << FormatSize(ch.new_size) << ")";
    if (ch.kind == ChangeKind::kModified) {
      std::cout << "  (" << FormatSize(ch.old_size) << " -> " << FormatSize(ch.new_size) << ")";
    }
    std::cout << "\n";
  }
  return Status::Ok();
}

std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

Status SqlCmd(Globals& g, const std::string& statement) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(QueryResult result, store->Query(statement));
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& row : result.rows) {
      nlohmann::json obj = nlohmann::json::object();
      for (size_t i = 0; i < row.size(); ++i) {
        const QueryCell& c = row[i];
        nlohmann::json v;
        switch (c.type) {
          case QueryCell::Type::kNull: v = nullptr; break;
          case QueryCell::Type::kInteger: v = c.integer; break;
          case QueryCell::Type::kReal: v = c.real; break;
          case QueryCell::Type::kText: v = c.bytes; break;
          case QueryCell::Type::kBlob: v = {{"hex", Hex(c.bytes)}}; break;
        }
        obj[result.columns[i]] = v;
      }
      out.push_back(obj);
    }
    PrintJson(out);
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows{result.columns};
  for (const auto& row : result.rows) {
    std::vector<std::string> cells;
    for (const QueryCell& c : row) {
      switch (c.type) {
        case QueryCell::Type::kNull: cells.push_back("NULL"); break;
        case QueryCell::Type::kInteger: cells.push_back(std::to_string(c.integer)); break;
        case QueryCell::Type::kReal: cells.push_back(std::to_string(c.real)); break;
        case QueryCell::Type::kText: cells.push_back(c.bytes); break;
        case QueryCell::Type::kBlob: cells.push_back("x'" + Hex(c.bytes) + "'"); break;
      }
    }
    rows.push_back(std::move(cells));
  }
  PrintTable(rows);
  return Status::Ok();
}

// The options that say how a call ended (call end, call record).
void AddOutcomeOptions(CLI::App* cmd, CallArgs& a) {
  cmd->add_option("--result", a.result, "Result (JSON)");
  cmd->add_option("--error", a.error, "Error message (the call failed)");
  cmd->add_option("--exit", a.exit_status, "Exit status")
      ->each([&a](const std::string&) { a.has_exit = true; });
  cmd->add_option("--stdout", a.stdout_file, "File holding the tool's output (- for stdin)");
  cmd->add_option("--stderr", a.stderr_file, "File holding its error output");
}

}  // namespace

void AddHistoryCommands(CLI::App& app, Globals& g) {
  static CallArgs start_args, end_args, record_args;
  static LogArgs log_args;
  static std::string show_session;
  static int64_t show_id = 0;

  CLI::App* call = app.add_subcommand("call", "Record tool calls in a session's history");
  call->require_subcommand(1);
  call->fallthrough();

  auto* start = g.Add(*call, "start", "Start a call; prints its id",
                      [&g] { return CallStartCmd(g, start_args); });
  start->add_option("session", start_args.session, "Session")->required();
  start->add_option("name", start_args.name, "Tool name")->required();
  start->add_option("--args", start_args.args, "Arguments (JSON, default {})");
  start->add_option("--parent", start_args.parent, "Id of the enclosing call");

  static CLI::App* end = nullptr;
  end = g.Add(*call, "end", "End a pending call with a result or an error",
              [&g] { return CallEndCmd(g, end_args, end); });
  end->add_option("id", end_args.id, "Call id")->required();
  AddOutcomeOptions(end, end_args);

  static CLI::App* record = nullptr;
  record = g.Add(*call, "record", "Record a finished call in one step; prints its id",
                 [&g] { return CallRecordCmd(g, record_args, record); });
  record->add_option("session", record_args.session, "Session")->required();
  record->add_option("name", record_args.name, "Tool name")->required();
  record->add_option("--args", record_args.args, "Arguments (JSON, default {})");
  record->add_option("--parent", record_args.parent, "Id of the enclosing call");
  AddOutcomeOptions(record, record_args);

  auto* log = g.Add(app, "log", "A session's tool calls, newest first, with what each changed",
                    [&g] { return LogCmd(g, log_args); });
  log->add_option("address", log_args.where, "SESSION[@SNAP]")->required();
  log->add_option("--name", log_args.name, "Only calls of this tool");
  log->add_option("--status", log_args.status, "Only pending, ok or error calls");
  log->add_option("--since", log_args.since, "Only calls started since (ns since epoch, or 90s, 10m, 2h, 3d ago)");
  log->add_option("--limit", log_args.limit, "At most this many calls");

  static std::string statement;
  auto* sql = g.Add(app, "sql",
                    "Read-only SQL over the views sessions, snapshots, tool_calls, kv, files",
                    [&g] { return SqlCmd(g, statement); });
  sql->add_option("statement", statement, "One SELECT statement")->required();

  auto* show = g.Add(app, "show", "One call: arguments, result, output and changed paths",
                     [&g] { return ShowCmd(g, show_session, show_id); });
  show->add_option("session", show_session, "Session")->required();
  show->add_option("call", show_id, "Call id")->required();
}

}  // namespace strata::cli
