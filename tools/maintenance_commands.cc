// gc, fsck.
#include <iostream>

#include "cli.h"

namespace strata::cli {

namespace {

Status Gc(Globals& g) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(GcStats stats, store->CollectGarbage());
  std::cout << "freed " << stats.chunks_freed << " chunks (" << FormatSize(stats.bytes_freed)
            << " stored)\n";
  return Status::Ok();
}

Status Fsck(Globals& g) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(auto problems, store->CheckIntegrity());
  for (const auto& p : problems) std::cout << p.kind << ": " << p.detail << "\n";
  if (!problems.empty()) {
    return Corruption(std::to_string(problems.size()) + " problem(s) found in " + store->path());
  }
  std::cout << store->path() << ": no problems found\n";
  return Status::Ok();
}

}  // namespace

void AddMaintenanceCommands(CLI::App& app, Globals& g) {
  g.Add(app, "gc", "Delete chunks that no file, snapshot or fork references",
        [&g] { return Gc(g); });
  g.Add(app, "fsck", "Check the store: chunks, references, trees and link counts",
        [&g] { return Fsck(g); });
}

}  // namespace strata::cli
