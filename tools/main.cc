// strata: the command-line tool. Every subcommand takes --store FILE (else
// $STRATA_STORE, else ~/.strata/store.db).
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>

#include "chunks/chunk_store.h"
#include "cli.h"
#include "remote/fetch.h"

namespace {

// The subcommand the command line names: its first argument that is neither
// a global option nor --store's value ("" when there is none).
std::string NamedSubcommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--store") {
      ++i;
    } else if (!arg.starts_with("-")) {
      return std::string(arg);
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using strata::cli::Globals;
  CLI::App app{"Strata: versioned, deduplicated filesystems for AI-agent sandboxes"};
  app.require_subcommand(1);
  Globals g;
  app.add_option("--store", g.store_flag,
                 "Store file (default: $STRATA_STORE, else ~/.strata/store.db)");
  app.add_flag("--json", g.json, "Machine-readable JSON output where supported");
  app.set_version_flag("--version", "strata 0.1.0");
  int exit_code = 0;
  // Chunks of a lazily pulled session are fetched when read, by any command
  // (and by a daemon this process becomes).
  strata::remote::InstallLazyFetcher([](const char* name) { return std::getenv(name); });
  // Defining every subcommand costs more CPU than most commands' own work
  // (about 0.75 ms), and agents run many short commands: groups are added
  // until the named subcommand is defined. Help, no name or a mistyped one
  // get them all.
  const std::function<void()> groups[] = {
      [&] { strata::cli::AddSessionCommands(app, g); },
      [&] { strata::cli::AddFileCommands(app, g); },
      [&] { strata::cli::AddStateCommands(app, g); },
      [&] { strata::cli::AddHistoryCommands(app, g); },
      [&] { strata::cli::AddRunCommand(app, g, &exit_code); },
      [&] { strata::cli::AddMountCommands(app, g); },
      [&] { strata::cli::AddMaintenanceCommands(app, g); },
      [&] { strata::cli::AddImageCommands(app, g); },
      [&] { strata::cli::AddRemoteCommands(app, g); },
      [&] { strata::cli::AddDemoCommand(app, g); },
  };
  const std::string wanted = NamedSubcommand(argc, argv);
  auto defined = [&] {
    return !app.get_subcommands([&](CLI::App* sub) { return sub->check_name(wanted); }).empty();
  };
  for (const auto& add : groups) {
    add();
    if (!wanted.empty() && defined()) break;
  }
  // Global options are accepted after the subcommand too.
  for (auto& [sub, action] : g.actions) sub->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, action] : g.actions) {
    if (!sub->parsed()) continue;
    strata::Status s = action();
    strata::chunks::GetRemoteChunkSource()->Flush();  // keep what was fetched
    if (!s.ok()) {
      std::string name = sub->get_name();
      for (CLI::App* p = sub->get_parent(); p != nullptr && p != &app; p = p->get_parent()) {
        name = p->get_name() + " " + name;
      }
      std::cerr << "strata " << name << ": " << s.message() << "\n";
      return exit_code != 0 ? exit_code : 1;
    }
    return exit_code;
  }
  return 2;
}
