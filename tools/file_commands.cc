// ls, cat, put, copy-in, diff: reading and writing files without mounting.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include <iostream>
#include <vector>

#include "cli.h"
#include "strata/import.h"

namespace strata::cli {

namespace {

struct Target {
  std::unique_ptr<Store> store;
  std::unique_ptr<Filesystem> fs;
  Address addr;
};

Result<Target> OpenTarget(Globals& g, const std::string& text, bool writable) {
  Target t;
  ASSIGN_OR_RETURN(t.addr, ParseAddress(text));
  if (writable && !t.addr.snapshot.empty()) {
    return ReadOnly("snapshot " + t.addr.snapshot + " is read-only; write to the session head");
  }
  if (writable) {
    RETURN_IF_ERROR(RequireUnmounted(g, t.addr.session, "write through the mount, or unmount it first"));
  } else if (t.addr.snapshot.empty()) {
    RETURN_IF_ERROR(FlushIfMounted(g, t.addr.session));
  }
  ASSIGN_OR_RETURN(t.store, OpenStore(g, false));
  ASSIGN_OR_RETURN(View view, ResolveView(*t.store, t.addr));
  ASSIGN_OR_RETURN(t.fs, t.store->OpenFilesystem(view));
  return t;
}

// Splits "dir/sub/name" into ("dir/sub", "name").
std::pair<std::string, std::string> SplitParent(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return {"", p};
  return {p.substr(0, slash), p.substr(slash + 1)};
}

Status Ls(Globals& g, const std::string& where) {
  ASSIGN_OR_RETURN(Target t, OpenTarget(g, where, false));
  ASSIGN_OR_RETURN(Attr attr, t.fs->Resolve(t.addr.path, true));
  std::vector<std::pair<std::string, Attr>> entries;
  if (S_ISDIR(attr.mode)) {
    ASSIGN_OR_RETURN(auto list, t.fs->ReadDir(attr.ino));
    for (const auto& e : list) {
      if (e.name == "." || e.name == "..") continue;
      ASSIGN_OR_RETURN(Attr a, t.fs->GetAttr(e.ino));
      entries.emplace_back(e.name, a);
    }
  } else {
    entries.emplace_back(t.addr.path, attr);
  }
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [name, a] : entries) {
      out.push_back({{"name", name}, {"mode", a.mode}, {"size", a.size}, {"ino", a.ino},
                     {"nlink", a.nlink}, {"uid", a.uid}, {"gid", a.gid},
                     {"mtime_ns", a.mtime_ns}});
    }
    PrintJson(out);
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, a] : entries) {
    std::string shown = name;
    if (S_ISLNK(a.mode)) {
      ASSIGN_OR_RETURN(std::string target, t.fs->ReadLink(a.ino));
      shown += " -> " + target;
    }
    rows.push_back({ModeString(a.mode), std::to_string(a.uid) + ":" + std::to_string(a.gid),
                    std::to_string(a.size), FormatTime(a.mtime_ns), shown});
  }
  PrintTable(rows);
  return Status::Ok();
}

Status Cat(Globals& g, const std::string& where) {
  ASSIGN_OR_RETURN(Target t, OpenTarget(g, where, false));
  if (!t.addr.has_path) return InvalidArgument("cat takes ADDR:PATH");
  ASSIGN_OR_RETURN(Attr attr, t.fs->Resolve(t.addr.path, true));
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0;;) {
    ASSIGN_OR_RETURN(size_t n, t.fs->Read(attr.ino, off, buf));
    if (n == 0) break;
    std::cout.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(n));
    off += n;
  }
  std::cout.flush();
  return Status::Ok();
}

Status Put(Globals& g, const std::string& where, const std::string& source) {
  ASSIGN_OR_RETURN(Target t, OpenTarget(g, where, true));
  if (!t.addr.has_path || t.addr.path.empty()) return InvalidArgument("put takes SESSION:PATH");
  auto [dir, name] = SplitParent(t.addr.path);
  ASSIGN_OR_RETURN(Attr parent, MakeDirs(*t.fs, dir));
  if (source != "-") {
    ImportStats stats;
    return ImportPath(*t.fs, source, parent.ino, name, &stats);
  }
  ASSIGN_OR_RETURN(Attr file,
                   CreateOrTruncate(*t.fs, parent.ino, name, 0644, Cred{getuid(), getgid()}));
  std::vector<uint8_t> buf(1 << 20);
  uint64_t off = 0;
  Status s;
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = IoError("reading standard input failed");
      break;
    }
    if (n == 0) break;
    auto w = t.fs->Write(file.ino, off, {buf.data(), static_cast<size_t>(n)});
    if (!w.ok()) {
      s = w.status();
      break;
    }
    off += static_cast<uint64_t>(n);
  }
  Status released = t.fs->Release(file.ino);
  return s.ok() ? released : s;
}

Status CopyIn(Globals& g, const std::string& host, const std::string& where) {
  ASSIGN_OR_RETURN(Target t, OpenTarget(g, where, true));
  std::string dest = t.addr.has_path ? t.addr.path : "";
  auto [dir, name] = SplitParent(dest);
  if (name.empty()) {
    // Copy into the root under the host entry's own name.
    name = SplitParent(host).second;
  }
  ASSIGN_OR_RETURN(Attr parent, MakeDirs(*t.fs, dir));
  ImportStats stats;
  RETURN_IF_ERROR(ImportPath(*t.fs, host, parent.ino, name, &stats));
  std::cout << "copied " << stats.files << " files, " << stats.directories << " directories, "
            << stats.symlinks << " symlinks, " << FormatSize(stats.bytes);
  if (stats.skipped > 0) std::cout << " (" << stats.skipped << " skipped)";
  std::cout << "\n";
  return Status::Ok();
}

constexpr uint64_t kMaxContentDiffBytes = 8 << 20;

// The whole content of the regular file at `path`, or nullopt when there is
// none (absent, or not a regular file). Files past kMaxContentDiffBytes are
// not read: *too_large is set instead.
Result<std::optional<std::string>> ReadRegular(Filesystem& fs, const std::string& path,
                                               bool* too_large) {
  auto attr = fs.Resolve(path, false);
  if (!attr.ok() || !S_ISREG(attr->mode)) return std::optional<std::string>();
  if (attr->size > kMaxContentDiffBytes) {
    *too_large = true;
    return std::optional<std::string>();
  }
  std::string out(attr->size, '\0');
  size_t done = 0;
  while (done < out.size()) {
    ASSIGN_OR_RETURN(size_t n, fs.Read(attr->ino, done,
                                       {reinterpret_cast<uint8_t*>(out.data()) + done, out.size() - done}));
    if (n == 0) break;
    done += n;
  }
  out.resize(done);
  return std::optional<std::string>(std::move(out));
}

// `diff -u` of two texts (the system's diffutils), labelled a/PATH and b/PATH
// (/dev/null for a missing side).
Result<std::string> UnifiedDiff(const std::optional<std::string>& before,
                                const std::optional<std::string>& after, const std::string& path) {
  char dir_template[] = "/tmp/strata-diff-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return IoError("cannot create a temporary directory");
  const std::string dir = dir_template;
  const std::string old_file = dir + "/a", new_file = dir + "/b";
  std::ofstream(old_file, std::ios::binary) << before.value_or("");
  std::ofstream(new_file, std::ios::binary) << after.value_or("");
  const std::string old_label = before ? "a" + path : "/dev/null";
  const std::string new_label = after ? "b" + path : "/dev/null";
  int fds[2];
  if (pipe(fds) != 0) return IoError("pipe failed");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execlp("diff", "diff", "-u", "--label", old_label.c_str(), "--label", new_label.c_str(),
           old_file.c_str(), new_file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);
  // diff exits 0 (same) or 1 (different); anything else is trouble.
  if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) > 1) {
    return IoError("running diff(1) failed (is diffutils installed?)");
  }
  return out;
}

// The content part of `diff --content` for one change: a unified diff, or a
// line saying why there is none.
Result<std::string> ContentDiff(Filesystem& from, Filesystem& to, const Change& c) {
  bool too_large = false;
  ASSIGN_OR_RETURN(auto before, ReadRegular(from, c.path, &too_large));
  ASSIGN_OR_RETURN(auto after, ReadRegular(to, c.path, &too_large));
  if (too_large) return std::string("(larger than 8 MiB: content not compared)\n");
  if (!before && !after) return std::string();
  auto binary = [](const std::optional<std::string>& s) {
    return s && s->find('\0', 0) != std::string::npos;
  };
  if (binary(before) || binary(after)) return std::string("Binary files differ\n");
  return UnifiedDiff(before, after, c.path);
}

Status Diff(Globals& g, const std::string& a, const std::string& b, bool content) {
  ASSIGN_OR_RETURN(auto store, OpenStore(g, false));
  ASSIGN_OR_RETURN(Address aa, ParseAddress(a));
  ASSIGN_OR_RETURN(Address ab, ParseAddress(b));
  for (const Address* addr : {&aa, &ab}) {
    if (addr->snapshot.empty()) RETURN_IF_ERROR(FlushIfMounted(g, addr->session));
  }
  ASSIGN_OR_RETURN(View va, ResolveView(*store, aa));
  ASSIGN_OR_RETURN(View vb, ResolveView(*store, ab));
  ASSIGN_OR_RETURN(auto changes, store->Diff(va, vb));
  std::unique_ptr<Filesystem> fa, fb;
  if (content) {
    ASSIGN_OR_RETURN(fa, store->OpenFilesystem(va));
    ASSIGN_OR_RETURN(fb, store->OpenFilesystem(vb));
  }
  if (g.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : changes) {
      out.push_back({{"kind", KindName(c.kind)}, {"path", c.path},
                     {"old_mode", c.old_mode}, {"new_mode", c.new_mode},
                     {"old_size", c.old_size}, {"new_size", c.new_size}});
      if (content) {
        ASSIGN_OR_RETURN(out.back()["content_diff"], ContentDiff(*fa, *fb, c));
      }
    }
    PrintJson(out);
    return Status::Ok();
  }
  for (const auto& c : changes) {
    std::cout << KindMark(c.kind) << " " << c.path;
    if (c.kind == ChangeKind::kModified && c.old_size != c.new_size) {
      std::cout << "  (" << c.old_size << " -> " << c.new_size << " bytes)";
    }
    if (c.kind == ChangeKind::kModified && c.old_mode != c.new_mode) {
      std::cout << "  (" << ModeString(c.old_mode) << " -> " << ModeString(c.new_mode) << ")";
    }
    std::cout << "\n";
    if (content) {
      ASSIGN_OR_RETURN(std::string text, ContentDiff(*fa, *fb, c));
      std::cout << text;
    }
  }
  return Status::Ok();
}

}  // namespace

void AddFileCommands(CLI::App& app, Globals& g) {
  static std::string ls_addr, cat_addr, put_addr, put_source = "-", copy_host, copy_addr, diff_a,
                                                    diff_b;
  static bool diff_content = false;
  auto* ls = g.Add(app, "ls", "List a directory of any session or snapshot",
                   [&g] { return Ls(g, ls_addr); });
  ls->add_option("address", ls_addr, "SESSION[@SNAP][:PATH]")->required();

  auto* cat = g.Add(app, "cat", "Print a file of any session or snapshot",
                    [&g] { return Cat(g, cat_addr); });
  cat->add_option("address", cat_addr, "SESSION[@SNAP]:PATH")->required();

  auto* put = g.Add(app, "put", "Write a file into a session from stdin or a host file",
                    [&g] { return Put(g, put_addr, put_source); });
  put->add_option("address", put_addr, "SESSION:PATH")->required();
  put->add_option("source", put_source, "Host file, or - for standard input (default)");

  auto* copy = g.Add(app, "copy-in", "Copy a host file or directory tree into a session",
                     [&g] { return CopyIn(g, copy_host, copy_addr); });
  copy->add_option("host_path", copy_host, "Host file or directory")->required();
  copy->add_option("address", copy_addr, "SESSION[:PATH] (default: the root, same name)")
      ->required();

  auto* diff = g.Add(app, "diff", "Paths added (+), removed (-) and modified (~) from A to B",
                     [&g] { return Diff(g, diff_a, diff_b, diff_content); });
  diff->add_option("a", diff_a, "SESSION[@SNAP]")->required();
  diff->add_option("b", diff_b, "SESSION[@SNAP]")->required();
  diff->add_flag("--content", diff_content, "Also show a unified diff of each changed text file");
}

}  // namespace strata::cli
