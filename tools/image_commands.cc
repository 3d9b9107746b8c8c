// image import|rm, images: trees that sessions start from.
#include <sys/stat.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "strata/archive.h"
#include "strata/host_base.h"
#include "strata/import.h"

namespace strata::cli {

namespace {

struct ImportArgs {
  std::string name;
  std::string source;
  bool replace = false;
};

Status ImageImport(Globals& g, const ImportArgs& a) {
  if (a.name == kHostImage) {
    return InvalidArgument("'host' is the host base's name; choose another image name");
  }
  RETURN_IF_ERROR(CheckSessionName(a.name).WithContext("image"));
  struct stat st;
  if (stat(a.source.c_str(), &st) != 0) return NotFound("cannot find " + a.source);
  ASSIGN_OR_RETURN(auto store, OpenStore(g, /*create=*/true));
  ImageInfo spec;
  spec.name = a.name;
  spec.source = a.source;
  uint64_t files = 0, bytes = 0, skipped = 0;
  std::function<Status(Filesystem&)> fill;
  if (S_ISDIR(st.st_mode)) {
    spec.kind = "dir";
    fill = [&](Filesystem& fs) {
      ImportStats stats;
      Status s = ImportTree(fs, a.source, &stats);
      files = stats.files, bytes = stats.bytes, skipped = stats.skipped;
      return s;
    };
  } else {
    spec.kind = "tar";
    fill = [&](Filesystem& fs) {
      UnpackStats stats;
      Status s = UnpackTar(fs, a.source, &stats);
      files = stats.files, bytes = stats.bytes, skipped = stats.skipped;
      return s;
    };
  }
  ASSIGN_OR_RETURN(ImageInfo image, store->CreateImage(spec, fill, a.replace));
  if (g.json) {
    PrintJson({{"name", image.name}, {"kind", image.kind}, {"source", image.source},
               {"files", files}, {"bytes", bytes}, {"skipped", skipped}},
              -1);
  } else {
    std::cout << "imported image " << image.name << " from " << image.source << ": " << files
              << " files, " << FormatSize(bytes);
    if (skipped > 0) std::cout << " (" << skipped << " device nodes, sockets or unreadable entries skipped)";
    std::cout << "\n";
  }
  return Status::Ok();
}

Status Images(Globals& g) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(auto images, store->ListImages());
  nlohmann::json out = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"IMAGE", "KIND", "SOURCE", "CREATED"}};
  for (const ImageInfo& i : images) {
    out.push_back({{"name", i.name}, {"kind", i.kind}, {"source", i.source},
                   {"branch", i.branch}, {"version", i.version}, {"created_ns", i.created_ns}});
    rows.push_back({i.name, i.kind, i.source, FormatTime(i.created_ns)});
  }
  if (g.json) {
    PrintJson(out);
  } else {
    PrintTable(rows);
  }
  return Status::Ok();
}

Status ImageRm(Globals& g, const std::string& name) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  RETURN_IF_ERROR(store->RemoveImage(name));
  std::cout << "removed image " << name
            << " (sessions made from it keep it; 'strata gc' reclaims it once none is left)\n";
  return Status::Ok();
}

}  // namespace

void AddImageCommands(CLI::App& app, Globals& g) {
  static ImportArgs import_args;
  static std::string rm_name;
  auto* image = app.add_subcommand("image", "Manage images (trees that sessions start from)");
  image->require_subcommand(1);
  auto* import = g.Add(*image, "import", "Import a directory or a tarball as image NAME",
                       [&g] { return ImageImport(g, import_args); });
  import->add_option("name", import_args.name, "Image name")->required();
  import->add_option("source", import_args.source,
                     "A directory (e.g. made by debootstrap) or a tar archive (e.g. from "
                     "'docker export'; compressed too)")
      ->required();
  import->add_flag("--replace", import_args.replace,
                   "Replace an existing image of that name (its sessions keep the old one)");
  auto* rm = g.Add(*image, "rm", "Remove an image", [&g] { return ImageRm(g, rm_name); });
  rm->add_option("name", rm_name, "Image name")->required();
  g.Add(*image, "ls", "List images", [&g] { return Images(g); });
  g.Add(app, "images", "List images", [&g] { return Images(g); });
}

}  // namespace strata::cli
