// Shared plumbing of the `strata` command: the store location, opening the
// store, addresses, error reporting and table output.
#ifndef STRATA_TOOLS_CLI_H_
#define STRATA_TOOLS_CLI_H_

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/control.h"
#include "strata/filesystem.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::cli {

// A subcommand's action, run by main() after parsing. Actions return a Status
// (never throw); main() prints "strata: <error>" and exits non-zero on failure.
using Action = std::function<Status()>;

// Options every subcommand shares, and the registered actions.
struct Globals {
  std::string store_flag;  // --store
  bool json = false;       // --json
  std::vector<std::pair<CLI::App*, Action>> actions;

  // Adds subcommand `name` to `app` with `action` run when it is chosen.
  CLI::App* Add(CLI::App& app, const std::string& name, const std::string& description,
                Action action) {
    CLI::App* sub = app.add_subcommand(name, description);
    actions.emplace_back(sub, std::move(action));
    return sub;
  }
};

// --store, else $STRATA_STORE, else ~/.strata/store.db.
std::string StorePath(const Globals& g);

// Opens the store. Without `create`, a missing store is an error that says how
// to make one. `read_only` opens it without ever writing.
Result<std::unique_ptr<Store>> OpenStore(const Globals& g, bool create, bool read_only = false);

// SESSION[@SNAP][:PATH]. SNAP is a snapshot name, a snapshot id (digits), or
// call:ID (the state right after that tool call).
struct Address {
  std::string session;
  std::string snapshot;  // empty: the session's head
  std::string path;      // empty when no ':' was given
  bool has_path = false;
};
Result<Address> ParseAddress(std::string_view text);

// Every snapshot a session can address: those of each branch it has pointed
// at (restore moves it) and of their ancestors, ordered by id.
Result<std::vector<SnapshotInfo>> SessionSnapshots(Store& store, const std::string& session);

// The view an address names: the session's head, one of its snapshots, or
// the state right after one of its tool calls.
Result<View> ResolveView(Store& store, const Address& addr);

// --- Live sessions: a mounted session's daemon holds buffered writes, so
// commands reach it through its control socket (src/control).
// Whether a daemon serves `session` now.
bool IsMounted(const Globals& g, const std::string& session);
// Asks the daemon of `session`, if any, to commit its buffered writes, so that
// reading the live head sees every write that returned.
Status FlushIfMounted(const Globals& g, const std::string& session);
// Sends `request` to the daemon of `session` if one serves it: its reply,
// nullopt when the session is not mounted, or the daemon's error.
Result<std::optional<nlohmann::json>> AskDaemon(const Globals& g, const std::string& session,
                                                const nlohmann::json& request);
// The integer `field` of a daemon's reply, or an error saying it is missing.
Result<int64_t> ReplyNumber(const nlohmann::json& reply, const char* field);
// Refuses to change a mounted session's head from outside its daemon; `advice`
// completes "session 'S' is mounted; ...".
Status RequireUnmounted(const Globals& g, const std::string& session, std::string_view advice);

// Prints `j` and a newline: indented (the default) or on one line
// (indent -1). Bytes that are not UTF-8 (a file name may hold any) print as
// U+FFFD instead of aborting the command.
void PrintJson(const nlohmann::json& j, int indent = 2);
// Parses stored JSON text (a KV value, call arguments); null when absent.
nlohmann::json ParseStoredJson(const std::optional<std::string>& text);

// A change's kind as a mark for people (+, -, ~) and as a JSON field value
// (added, removed, modified).
const char* KindMark(ChangeKind kind);
const char* KindName(ChangeKind kind);
// Everything on standard input.
std::string ReadStdin();

// Prints rows as columns padded to the widest cell; the last column is not
// padded.
void PrintTable(const std::vector<std::vector<std::string>>& rows);
std::string FormatTime(int64_t ns);
std::string FormatSize(uint64_t bytes);
// "850 us", "12 ms", "3.4 s".
std::string FormatDuration(int64_t ns);
std::string ModeString(uint32_t mode);

// A lease on a mount of `session`: the daemon that serves it if there is one,
// else one started now at control::RunMountPath, which unmounts when its last
// lease ends.
Result<std::unique_ptr<control::Lease>> LeaseMount(Globals& g, const std::string& session);

// Registration of each group of subcommands.
void AddSessionCommands(CLI::App& app, Globals& g);
void AddFileCommands(CLI::App& app, Globals& g);
void AddMaintenanceCommands(CLI::App& app, Globals& g);
void AddDemoCommand(CLI::App& app, Globals& g);
void AddMountCommands(CLI::App& app, Globals& g);
void AddStateCommands(CLI::App& app, Globals& g);
void AddHistoryCommands(CLI::App& app, Globals& g);
void AddImageCommands(CLI::App& app, Globals& g);
void AddRemoteCommands(CLI::App& app, Globals& g);
// `run` sets *exit_code to the command's exit status.
void AddRunCommand(CLI::App& app, Globals& g, int* exit_code);

}  // namespace strata::cli

#endif  // STRATA_TOOLS_CLI_H_
