// strata: the command-line tool. Every subcommand takes --store FILE (else
// $STRATA_STORE, else ~/.strata/store.db).
#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
  using strata::cli::Globals;
  CLI::App app{"Strata: versioned, deduplicated filesystems for AI-agent sandboxes"};
  app.require_subcommand(1);
  Globals g;
  app.add_option("--store", g.store_flag,
                 "Store file (default: $STRATA_STORE, else ~/.strata/store.db)");
  app.add_flag("--json", g.json, "Machine-readable JSON output where supported");
  app.set_version_flag("--version", "strata 0.1.0");
  strata::cli::AddSessionCommands(app, g);
  strata::cli::AddFileCommands(app, g);
  strata::cli::AddMaintenanceCommands(app, g);
  strata::cli::AddDemoCommand(app, g);
  strata::cli::AddMountCommands(app, g);
  strata::cli::AddStateCommands(app, g);
  strata::cli::AddHistoryCommands(app, g);
  strata::cli::AddImageCommands(app, g);
  int exit_code = 0;
  strata::cli::AddRunCommand(app, g, &exit_code);
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
