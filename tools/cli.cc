#include "cli.h"

#include "control/control.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <set>

namespace strata::cli {

std::string StorePath(const Globals& g) {
  if (!g.store_flag.empty()) return g.store_flag;
  if (const char* env = std::getenv("STRATA_STORE"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : "/root") + "/.strata/store.db";
}

Result<std::unique_ptr<Store>> OpenStore(const Globals& g, bool create, bool read_only) {
  std::string path = StorePath(g);
  std::error_code ec;
  if (!create && !std::filesystem::exists(path, ec)) {
    return NotFound("no store at " + path + " (create one with 'strata init')");
  }
  if (create) {
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  }
  StoreOptions options;
  options.path = path;
  options.read_only = read_only;
  return Store::Open(std::move(options));
}

Result<Address> ParseAddress(std::string_view text) {
  Address a;
  // SESSION ends at the first '@' or ':'. SNAP (after '@') ends at the next
  // ':', except the one of "call:ID". Everything after that ':' is the path,
  // which may hold '@' and ':' (even "@call:").
  size_t end = text.find_first_of("@:");
  a.session = std::string(text.substr(0, end));
  if (end != std::string_view::npos && text[end] == '@') {
    const size_t snap = end + 1;
    end = text.find(':', text.substr(snap, 5) == "call:" ? snap + 5 : snap);
    a.snapshot = std::string(text.substr(snap, end == std::string_view::npos ? end : end - snap));
    if (a.snapshot.empty()) return InvalidArgument("empty snapshot after '@' in '" +
                                                   std::string(text) + "'");
  }
  if (end != std::string_view::npos) {
    a.has_path = true;
    a.path = std::string(text.substr(end + 1));
  }
  if (a.session.empty()) return InvalidArgument("no session in address '" + std::string(text) + "'");
  return a;
}

Result<std::vector<SnapshotInfo>> SessionSnapshots(Store& store, const std::string& session) {
  ASSIGN_OR_RETURN(auto branches, store.SessionBranches(session));
  std::vector<SnapshotInfo> out;
  std::set<int64_t> seen;
  for (BranchId start : branches) {
    // Each branch with its ancestors: a fork sees its parent's snapshots too.
    std::optional<BranchId> branch = start;
    while (branch.has_value()) {
      ASSIGN_OR_RETURN(auto snaps, store.ListSnapshots(*branch));
      for (const auto& s : snaps) {
        if (seen.insert(s.id).second) out.push_back(s);
      }
      ASSIGN_OR_RETURN(BranchInfo info, store.GetBranch(*branch));
      branch = info.parent;
    }
  }
  std::sort(out.begin(), out.end(),
            [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.id < b.id; });
  return out;
}

// Every branch whose state `session` can reach: those it pointed at and
// their ancestors.
Result<std::set<BranchId>> SessionLineage(Store& store, const std::string& session) {
  ASSIGN_OR_RETURN(auto branches, store.SessionBranches(session));
  std::set<BranchId> out;
  for (BranchId start : branches) {
    std::optional<BranchId> branch = start;
    while (branch.has_value() && out.insert(*branch).second) {
      ASSIGN_OR_RETURN(BranchInfo info, store.GetBranch(*branch));
      branch = info.parent;
    }
  }
  return out;
}

Result<View> ResolveCall(Store& store, const Address& addr) {
  const std::string id_text = addr.snapshot.substr(5);
  char* end = nullptr;
  const long long id = std::strtoll(id_text.c_str(), &end, 10);
  if (id_text.empty() || *end != '\0' || id <= 0) {
    return InvalidArgument("'" + addr.snapshot + "' is not a call address (call:ID)");
  }
  auto call = store.GetCall(id);
  ASSIGN_OR_RETURN(auto lineage, SessionLineage(store, addr.session));
  if (!call.ok() || lineage.count(call->branch) == 0) {
    return NotFound("session '" + addr.session + "' has no tool call " + id_text);
  }
  if (!call->version_after.has_value()) {
    return InvalidArgument("tool call " + id_text + " has not ended yet");
  }
  return View{call->branch, *call->version_after};
}

Result<View> ResolveView(Store& store, const Address& addr) {
  ASSIGN_OR_RETURN(SessionInfo session, store.GetSession(addr.session));
  if (addr.snapshot.empty()) return View{session.branch, kHead};
  if (addr.snapshot.rfind("call:", 0) == 0) return ResolveCall(store, addr);
  ASSIGN_OR_RETURN(auto snaps, SessionSnapshots(store, addr.session));
  // By name, the newest wins; digits may also be a snapshot id.
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    if (it->name == addr.snapshot) return View{it->branch, it->version};
  }
  for (const auto& s : snaps) {
    if (std::to_string(s.id) == addr.snapshot) return View{s.branch, s.version};
  }
  return NotFound("session '" + addr.session + "' has no snapshot '" + addr.snapshot + "'");
}

bool IsMounted(const Globals& g, const std::string& session) {
  return control::Call(StorePath(g), session, {{"op", "status"}}).ok();
}

Status FlushIfMounted(const Globals& g, const std::string& session) {
  auto reply = control::Call(StorePath(g), session, {{"op", "flush"}});
  if (!reply.ok() && reply.status().code() != Code::kNotFound) return reply.status();
  return Status::Ok();
}

Result<int64_t> ReplyNumber(const nlohmann::json& reply, const char* field) {
  auto it = reply.find(field);
  if (it == reply.end() || !it->is_number_integer()) {
    return IoError(std::string("the daemon's reply has no '") + field +
                   "' (a daemon older than this strata? remount the session)");
  }
  return it->get<int64_t>();
}

Result<std::optional<nlohmann::json>> AskDaemon(const Globals& g, const std::string& session,
                                                const nlohmann::json& request) {
  auto reply = control::Call(StorePath(g), session, request);
  if (reply.ok()) return std::optional<nlohmann::json>(std::move(*reply));
  if (reply.status().code() == Code::kNotFound) return std::optional<nlohmann::json>();
  return reply.status();
}

Status RequireUnmounted(const Globals& g, const std::string& session, std::string_view advice) {
  if (!IsMounted(g, session)) return Status::Ok();
  return Status(Code::kBusy, "session '" + session + "' is mounted; " + std::string(advice));
}

const char* KindMark(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdded: return "+";
    case ChangeKind::kRemoved: return "-";
    case ChangeKind::kModified: return "~";
  }
  return "?";
}

const char* KindName(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdded: return "added";
    case ChangeKind::kRemoved: return "removed";
    case ChangeKind::kModified: return "modified";
  }
  return "?";
}

std::string ReadStdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

void PrintJson(const nlohmann::json& j, int indent) {
  std::cout << j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

nlohmann::json ParseStoredJson(const std::optional<std::string>& text) {
  if (!text.has_value()) return nullptr;
  return nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  // On a terminal, lines are cut to its width (the last column gives way);
  // output to a pipe or file keeps every byte.
  size_t columns = 0;
  struct winsize ws;
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) columns = ws.ws_col;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    if (columns > 3 && line.size() > columns) line = line.substr(0, columns - 3) + "...";
    std::cout << line << "\n";
  }
}

std::string FormatTime(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  struct tm tm;
  localtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string FormatDuration(int64_t ns) {
  char buf[32];
  if (ns < 1'000'000) {
    snprintf(buf, sizeof(buf), "%lld us", static_cast<long long>(ns / 1000));
  } else if (ns < 10'000'000'000) {
    snprintf(buf, sizeof(buf), "%lld ms", static_cast<long long>(ns / 1'000'000));
  } else {
    snprintf(buf, sizeof(buf), "%.1f s", static_cast<double>(ns) / 1e9);
  }
  return buf;
}

std::string FormatSize(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string ModeString(uint32_t mode) {
  std::string s(10, '-');
  switch (mode & S_IFMT) {
    case S_IFDIR: s[0] = 'd'; break;
    case S_IFLNK: s[0] = 'l'; break;
    case S_IFIFO: s[0] = 'p'; break;
    case S_IFSOCK: s[0] = 's'; break;
    case S_IFCHR: s[0] = 'c'; break;
    case S_IFBLK: s[0] = 'b'; break;
    default: break;
  }
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (mode & (1u << (8 - i))) s[i + 1] = rwx[i];
  }
  return s;
}

}  // namespace strata::cli
