// demo: the main job in miniature. Writes a small project through the core,
// snapshots it, forks it, changes the fork, and shows both side by side.
#include <sys/stat.h>

#include <iostream>
#include <map>

#include "cli.h"
#include "strata/import.h"

namespace strata::cli {

namespace {

Status WriteText(Filesystem& fs, const std::string& path, const std::string& text) {
  size_t slash = path.rfind('/');
  ASSIGN_OR_RETURN(Attr dir, MakeDirs(fs, path.substr(0, slash)));
  std::string name = path.substr(slash + 1);
  ASSIGN_OR_RETURN(Attr file, CreateOrTruncate(fs, dir.ino, name, 0644, Cred{}));
  InodeId ino = file.ino;
  auto written = fs.Write(ino, 0, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  Status released = fs.Release(ino);
  RETURN_IF_ERROR(written.status());
  return released;
}

// path -> one-line summary of every file under `dir`.
Status Summarize(Filesystem& fs, InodeId dir, const std::string& prefix,
                 std::map<std::string, std::string>* out) {
  ASSIGN_OR_RETURN(auto entries, fs.ReadDir(dir));
  for (const auto& e : entries) {
    if (e.name == "." || e.name == "..") continue;
    std::string path = prefix + "/" + e.name;
    ASSIGN_OR_RETURN(Attr a, fs.GetAttr(e.ino));
    if (S_ISDIR(a.mode)) {
      RETURN_IF_ERROR(Summarize(fs, e.ino, path, out));
      continue;
    }
    std::string first(std::min<uint64_t>(a.size, 44), '\0');
    ASSIGN_OR_RETURN(size_t n, fs.Read(e.ino, 0, {reinterpret_cast<uint8_t*>(first.data()),
                                                  first.size()}));
    first.resize(n);
    if (size_t nl = first.find('\n'); nl != std::string::npos) first.resize(nl);
    (*out)[path] = std::to_string(a.size) + " B  \"" + first + "\"";
  }
  return Status::Ok();
}

std::string FreeName(Store& store, const std::string& base) {
  for (int n = 1;; ++n) {
    std::string name = base + "-" + std::to_string(n);
    if (!store.GetSession(name).ok()) return name;
  }
}

Status Demo(Globals& g) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, /*create=*/true));
  std::string base_name = FreeName(*store, "demo");
  std::string fork_name = base_name + "-fork";
  ASSIGN_OR_RETURN(SessionInfo base, store->CreateSession(base_name));
  {
    ASSIGN_OR_RETURN(auto fs, store->OpenFilesystem(View{base.branch, kHead}));
    RETURN_IF_ERROR(WriteText(*fs, "/README.md", "# Demo project\nWritten through the core.\n"));
    RETURN_IF_ERROR(WriteText(*fs, "/src/main.c",
                              "int main(void) { return greet(); }\n"));
    RETURN_IF_ERROR(WriteText(*fs, "/src/greet.c",
                              "int greet(void) { return puts(\"hello\"); }\n"));
    RETURN_IF_ERROR(WriteText(*fs, "/notes.txt", "todo: add tests\n"));
  }
  ASSIGN_OR_RETURN(Version v, store->Snapshot(base.branch, "base"));
  ASSIGN_OR_RETURN(BranchId fork, store->Fork(View{base.branch, v}, fork_name));
  {
    ASSIGN_OR_RETURN(auto fs, store->OpenFilesystem(View{fork, kHead}));
    RETURN_IF_ERROR(WriteText(*fs, "/src/greet.c",
                              "int greet(void) { return puts(\"hello, fork\"); }\n"));
    RETURN_IF_ERROR(WriteText(*fs, "/tests/greet_test.c", "assert(greet() > 0);\n"));
    ASSIGN_OR_RETURN(Attr root, fs->GetAttr(kRootIno));
    RETURN_IF_ERROR(fs->Unlink(root.ino, "notes.txt"));
  }

  std::map<std::string, std::string> left, right;
  {
    ASSIGN_OR_RETURN(auto fs, store->OpenFilesystem(View{base.branch, v}));
    RETURN_IF_ERROR(Summarize(*fs, kRootIno, "", &left));
  }
  {
    ASSIGN_OR_RETURN(auto fs, store->OpenFilesystem(View{fork, kHead}));
    RETURN_IF_ERROR(Summarize(*fs, kRootIno, "", &right));
  }
  std::cout << "store: " << store->path() << "\n"
            << "session " << base_name << ": wrote 4 files, snapshot '" << base_name
            << "@base' (version " << v << ")\n"
            << "session " << fork_name << ": forked from " << base_name
            << "@base, changed /src/greet.c, added /tests/greet_test.c, removed /notes.txt\n\n";
  std::map<std::string, bool> paths;
  for (const auto& [p, s] : left) paths[p] = true;
  for (const auto& [p, s] : right) paths[p] = true;
  std::vector<std::vector<std::string>> rows{{"", "PATH", base_name + "@base", fork_name}};
  for (const auto& [p, unused] : paths) {
    auto l = left.find(p);
    auto r = right.find(p);
    std::string mark = l == left.end() ? "+" : r == right.end() ? "-"
                                           : l->second != r->second ? "~" : " ";
    rows.push_back({mark, p, l == left.end() ? "(absent)" : l->second,
                    r == right.end() ? "(absent)" : r->second});
  }
  PrintTable(rows);
  std::cout << "\nInspect it yourself:\n"
            << "  strata diff " << base_name << "@base " << fork_name << "\n"
            << "  strata cat " << fork_name << ":/src/greet.c\n";
  return Status::Ok();
}

}  // namespace

void AddDemoCommand(CLI::App& app, Globals& g) {
  g.Add(app, "demo", "Write a small tree, snapshot, fork, change the fork, compare both",
        [&g] { return Demo(g); });
}

}  // namespace strata::cli
