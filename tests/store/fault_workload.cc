#include "store/fault_workload.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

namespace strata::fault_test {

namespace {

std::string Parent(const std::string& path) { return path.substr(0, path.rfind('/')); }
std::string Base(const std::string& path) { return path.substr(path.rfind('/') + 1); }

}  // namespace

std::string Bytes(uint64_t seed, size_t n, bool random) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (random) {
      out[i] = static_cast<char>(x);
    } else {
      out[i] = x % 8 == 0 ? '\n' : static_cast<char>('a' + x % 26);
    }
  }
  return out;
}

std::span<const uint8_t> Span(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}


std::string TreeDiff(const Tree& want, const Tree& got) {
  std::string out;
  for (const auto& d : want.dirs) if (!got.dirs.count(d)) out += " missing dir " + d + ";";
  for (const auto& d : got.dirs) if (!want.dirs.count(d)) out += " extra dir " + d + ";";
  for (const auto& [p, c] : want.files) {
    auto it = got.files.find(p);
    if (it == got.files.end()) {
      out += " missing file " + p + ";";
    } else if (it->second != c) {
      out += " file " + p + " has " + std::to_string(it->second.size()) + " bytes, not the " +
             std::to_string(c.size()) + " logged;";
    }
  }
  for (const auto& [p, c] : got.files) if (!want.files.count(p)) out += " extra file " + p + ";";
  if (want.kv != got.kv) out += " key-value state differs;";
  return out;
}

Result<Tree> ReadTree(Store& store, View view) {
  Tree tree;
  ASSIGN_OR_RETURN(auto fs, store.OpenFilesystem(view));
  std::vector<std::pair<InodeId, std::string>> todo = {{kRootIno, ""}};
  while (!todo.empty()) {
    auto [dir, prefix] = todo.back();
    todo.pop_back();
    ASSIGN_OR_RETURN(auto entries, fs->ReadDir(dir));
    for (const DirEntry& e : entries) {
      if (e.name == "." || e.name == "..") continue;
      std::string path = prefix + "/" + e.name;
      if (S_ISDIR(e.mode)) {
        tree.dirs.insert(path);
        todo.emplace_back(e.ino, path);
        continue;
      }
      ASSIGN_OR_RETURN(Attr attr, fs->GetAttr(e.ino));
      std::string content(attr.size, '\0');
      ASSIGN_OR_RETURN(size_t n, fs->Read(e.ino, 0, {reinterpret_cast<uint8_t*>(content.data()),
                                                     content.size()}));
      content.resize(n);
      tree.files[path] = std::move(content);
    }
  }
  ASSIGN_OR_RETURN(auto kv, store.KvList(view));
  for (auto& e : kv) tree.kv[e.key] = e.value;
  return tree;
}

Result<InodeId> Workload::Lookup(const std::string& s, const std::string& path) {
  auto it = open_.find({s, path});
  if (it != open_.end()) return it->second;
  ASSIGN_OR_RETURN(Attr a, fs_.at(s)->Resolve(path));
  return a.ino;
}

Status Workload::MkDir(const std::string& s, const std::string& path) {
  attempted_paths.insert({s, path});
  ASSIGN_OR_RETURN(InodeId parent, Lookup(s, Parent(path)));
  RETURN_IF_ERROR(fs_.at(s)->MkDir(parent, Base(path), 0755, {}).status());
  heads[s].dirs.insert(path);
  used_paths_.insert({s, path});
  return Status::Ok();
}

Status Workload::Create(const std::string& s, const std::string& path) {
  attempted_paths.insert({s, path});
  ASSIGN_OR_RETURN(InodeId parent, Lookup(s, Parent(path)));
  ASSIGN_OR_RETURN(Attr a, fs_.at(s)->Create(parent, Base(path), 0644, {}));
  open_[{s, path}] = a.ino;
  heads[s].files[path] = "";
  Touch(s, path);
  return Status::Ok();
}

Status Workload::Write(const std::string& s, const std::string& path, uint64_t off,
                       const std::string& data) {
  attempted_paths.insert({s, path});
  if (!open_.count({s, path})) {
    ASSIGN_OR_RETURN(InodeId ino, Lookup(s, path));
    RETURN_IF_ERROR(fs_.at(s)->Open(ino));
    open_[{s, path}] = ino;
  }
  const InodeId ino = open_.at({s, path});
  // In pieces of at most 1 MiB, as the kernel sends them.
  for (size_t done = 0; done < data.size();) {
    size_t piece = std::min<size_t>(data.size() - done, 1 << 20);
    ASSIGN_OR_RETURN(size_t n, fs_.at(s)->Write(ino, off + done, Span(data).subspan(done, piece)));
    if (n != piece) return ::strata::IoError("short write");
    done += piece;
  }
  std::string& content = heads[s].files[path];
  if (content.size() < off + data.size()) content.resize(off + data.size(), '\0');
  content.replace(off, data.size(), data);
  Touch(s, path);
  return Status::Ok();
}

Status Workload::Close(const std::string& s, const std::string& path) {
  auto it = open_.find({s, path});
  if (it == open_.end()) return Status::Ok();
  InodeId ino = it->second;
  open_.erase(it);
  return fs_.at(s)->Release(ino);
}

Status Workload::Fsync(const std::string& s, const std::string& path) {
  attempted_paths.insert({s, path});
  ASSIGN_OR_RETURN(InodeId ino, Lookup(s, path));
  Status synced = fs_.at(s)->Fsync(ino);
  failed_durable = !synced.ok();
  RETURN_IF_ERROR(synced);
  Durable(Key{s, path});
  return Status::Ok();
}

Status Workload::Sync() {
  Status synced = store_.Sync();
  failed_durable = !synced.ok();
  RETURN_IF_ERROR(synced);
  Durable(std::nullopt);
  return Status::Ok();
}

Status Workload::Rename(const std::string& s, const std::string& from, const std::string& to) {
  attempted_paths.insert({s, from});
  attempted_paths.insert({s, to});
  ASSIGN_OR_RETURN(InodeId p1, Lookup(s, Parent(from)));
  ASSIGN_OR_RETURN(InodeId p2, Lookup(s, Parent(to)));
  RETURN_IF_ERROR(fs_.at(s)->Rename(p1, Base(from), p2, Base(to), 0));
  Tree& t = heads[s];
  t.files[to] = std::move(t.files.at(from));
  t.files.erase(from);
  auto it = open_.find({s, from});
  if (it != open_.end()) {
    open_[{s, to}] = it->second;
    open_.erase(it);
  }
  Touch(s, from);
  Touch(s, to);
  return Status::Ok();
}

Status Workload::Unlink(const std::string& s, const std::string& path) {
  attempted_paths.insert({s, path});
  RETURN_IF_ERROR(Close(s, path));
  ASSIGN_OR_RETURN(InodeId parent, Lookup(s, Parent(path)));
  RETURN_IF_ERROR(fs_.at(s)->Unlink(parent, Base(path)));
  heads[s].files.erase(path);
  Touch(s, path);
  return Status::Ok();
}

Status Workload::Truncate(const std::string& s, const std::string& path, uint64_t size) {
  attempted_paths.insert({s, path});
  ASSIGN_OR_RETURN(InodeId ino, Lookup(s, path));
  AttrChanges c;
  c.size = size;
  RETURN_IF_ERROR(fs_.at(s)->SetAttr(ino, c).status());
  heads[s].files[path].resize(size, '\0');
  Touch(s, path);
  return Status::Ok();
}

Status Workload::Kv(const std::string& s, const std::vector<KvChange>& changes) {
  for (const KvChange& c : changes) attempted_keys.insert({s, c.key});
  RETURN_IF_ERROR(store_.KvUpdate(branches.at(s), changes));
  for (const KvChange& c : changes) {
    kv_facts.erase({s, c.key});
    used_keys_.insert({s, c.key});
    if (c.value.has_value()) {
      // The values used here are already minified.
      heads[s].kv[c.key] = *c.value;
    } else {
      heads[s].kv.erase(c.key);
    }
  }
  return Status::Ok();
}

Status Workload::Snapshot(const std::string& s, const std::string& name) {
  snapshots.push_back({s, name, heads[s], false});
  // A snapshot is a durable commit: it reports a lost batch as Sync does,
  // and what it froze is on disk when it returns.
  Status made = store_.Snapshot(branches.at(s), name).status();
  failed_durable = !made.ok();
  RETURN_IF_ERROR(made);
  snapshots.back().ok = true;
  durable_snapshots.insert(name);
  return Status::Ok();
}

Status Workload::ForkSession(const std::string& s, const std::string& name) {
  auto forked = store_.Fork(View{branches.at(s), kHead}, name);  // durable, like Snapshot
  failed_durable = !forked.ok();
  ASSIGN_OR_RETURN(BranchId b, std::move(forked));
  branches[name] = b;
  heads[name] = heads[s];
  for (const auto& [path, content] : heads[name].files) used_paths_.insert({name, path});
  for (const auto& d : heads[name].dirs) used_paths_.insert({name, d});
  for (const auto& [k, v] : heads[name].kv) used_keys_.insert({name, k});
  sessions_ok.insert(name);
  ASSIGN_OR_RETURN(fs_[name], store_.OpenFilesystem(View{b, kHead}));
  return Status::Ok();
}

Status Workload::Call(const std::string& s, const std::string& name, const std::string& out) {
  CallStart start;
  start.name = name;
  start.args = R"({"path":"/d2/c"})";
  ASSIGN_OR_RETURN(int64_t id, store_.StartCall(branches.at(s), start));
  RETURN_IF_ERROR(Create(s, "/d2/c"));
  RETURN_IF_ERROR(Write(s, "/d2/c", 0, Bytes(5, 3000)));
  RETURN_IF_ERROR(Close(s, "/d2/c"));
  CallOutcome outcome;
  outcome.result = R"({"ok":true})";
  outcome.exit_status = 0;
  outcome.stdout_data = out;
  ASSIGN_OR_RETURN(ToolCall call, store_.EndCall(id, outcome));
  calls.push_back({id, name, call.status, out});
  return Status::Ok();
}

Status Workload::RecordCall(const std::string& s, const std::string& name) {
  CallOutcome outcome;
  outcome.error = "3 warnings";
  CallStart start;
  start.name = name;
  ASSIGN_OR_RETURN(ToolCall call, store_.RecordCall(branches.at(s), start, outcome));
  calls.push_back({call.id, name, call.status, ""});
  return Status::Ok();
}

void Workload::Durable(const std::optional<Key>& fsynced) {
  for (const Key& k : used_paths_) {
    const Tree& t = heads[k.first];
    if (t.dirs.count(k.second)) {
      dir_facts.insert(k);
      continue;
    }
    auto f = t.files.find(k.second);
    if (f == t.files.end()) {
      path_facts[k] = PathFact{PathFact::kAbsent, ""};
    } else if (!fsynced.has_value() || k == *fsynced) {
      path_facts[k] = PathFact{PathFact::kContent, f->second};
    } else if (!path_facts.count(k)) {
      // Named durably; its data only if an earlier durable commit had it
      // (then the fact is still there).
      path_facts[k] = PathFact{PathFact::kExists, ""};
    }
  }
  for (const Key& k : used_keys_) {
    const auto& kv = heads[k.first].kv;
    auto it = kv.find(k.second);
    kv_facts[k] = it == kv.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  for (const auto& snap : snapshots) if (snap.ok) durable_snapshots.insert(snap.name);
  for (const auto& call : calls) durable_calls.insert(call.id);
  durable_sessions.insert(sessions_ok.begin(), sessions_ok.end());
}

// The workload. A step that fails ends it; `failed_step` names it.
Status Workload::Run() {
  int step = 0;
  auto run = [&](const char* what, auto&& fn) -> Status {
    ++step;
    attempted_paths.clear();
    attempted_keys.clear();
    Status s = fn();
    if (!s.ok()) failed_step = std::to_string(step) + " (" + what + ")";
    return s;
  };
#define STEP(what, body) RETURN_IF_ERROR(run(what, [&]() -> Status { body; return Status::Ok(); }))
  STEP("session", {
    ASSIGN_OR_RETURN(SessionInfo info, store_.CreateSession("main"));
    branches["main"] = info.branch;
    heads["main"];
    sessions_ok.insert("main");
    ASSIGN_OR_RETURN(fs_["main"], store_.OpenFilesystem(View{info.branch, kHead}));
  });
  const std::string m = "main";
  STEP("mkdir", { RETURN_IF_ERROR(MkDir(m, "/d1")); RETURN_IF_ERROR(MkDir(m, "/d2")); });
  STEP("write a", {
    RETURN_IF_ERROR(Create(m, "/d1/a"));
    RETURN_IF_ERROR(Write(m, "/d1/a", 0, Bytes(1, 10000)));
    RETURN_IF_ERROR(Close(m, "/d1/a"));
  });
  STEP("write b", {
    RETURN_IF_ERROR(Create(m, "/d1/b"));
    RETURN_IF_ERROR(Write(m, "/d1/b", 0, Bytes(2, 150000)));
  });
  STEP("fsync b", { RETURN_IF_ERROR(Fsync(m, "/d1/b")); });
  STEP("kv 1", {
    RETURN_IF_ERROR(Kv(m, {{"plan", R"({"step":1})"}, {"owner", R"("me")"}}));
  });
  STEP("snapshot s1", { RETURN_IF_ERROR(Snapshot(m, "s1")); });
  STEP("append b", {
    RETURN_IF_ERROR(Write(m, "/d1/b", 150000, Bytes(3, 5000)));
    RETURN_IF_ERROR(Close(m, "/d1/b"));
  });
  STEP("rename a", { RETURN_IF_ERROR(Rename(m, "/d1/a", "/d2/a2")); });
  STEP("sync 1", { RETURN_IF_ERROR(Sync()); });
  STEP("write big", {
    RETURN_IF_ERROR(Create(m, "/big"));
    RETURN_IF_ERROR(Write(m, "/big", 0, Bytes(4, 6 << 20, /*random=*/true)));
  });
  STEP("fsync big", {
    RETURN_IF_ERROR(Fsync(m, "/big"));
    RETURN_IF_ERROR(Close(m, "/big"));
  });
  STEP("call edit", { RETURN_IF_ERROR(Call(m, "edit", Bytes(6, 70000))); });
  STEP("unlink b", { RETURN_IF_ERROR(Unlink(m, "/d1/b")); });
  STEP("kv 2", {
    RETURN_IF_ERROR(Kv(m, {{"plan", R"({"step":2})"}, {"owner", std::nullopt}}));
  });
  STEP("fork", { RETURN_IF_ERROR(ForkSession(m, "fork1")); });
  const std::string f = "fork1";
  STEP("write f", {
    RETURN_IF_ERROR(Create(f, "/f"));
    RETURN_IF_ERROR(Write(f, "/f", 0, Bytes(7, 20000)));
  });
  STEP("fsync f", { RETURN_IF_ERROR(Fsync(f, "/f")); });
  STEP("overwrite a2", {
    RETURN_IF_ERROR(Write(m, "/d2/a2", 100, Bytes(8, 500)));
    RETURN_IF_ERROR(Close(m, "/d2/a2"));
  });
  STEP("truncate c", { RETURN_IF_ERROR(Truncate(m, "/d2/c", 1000)); });
  STEP("snapshot s2", { RETURN_IF_ERROR(Snapshot(m, "s2")); });
  STEP("snapshot f1", { RETURN_IF_ERROR(Snapshot(f, "f1")); });
  STEP("sync 2", { RETURN_IF_ERROR(Sync()); });
  STEP("record call", { RETURN_IF_ERROR(RecordCall(f, "lint")); });
  STEP("rename over", { RETURN_IF_ERROR(Rename(m, "/d2/c", "/d2/a2")); });
  STEP("write g", {
    RETURN_IF_ERROR(Create(m, "/d1/g"));
    RETURN_IF_ERROR(Write(m, "/d1/g", 0, Bytes(9, (64 << 10) + 10, true)));
    RETURN_IF_ERROR(Fsync(m, "/d1/g"));
    RETURN_IF_ERROR(Close(m, "/d1/g"));
  });
  STEP("kv fork", { RETURN_IF_ERROR(Kv(f, {{"x", "1"}})); });
  STEP("append f", {
    RETURN_IF_ERROR(Write(f, "/f", 20000, Bytes(10, 3000)));
    RETURN_IF_ERROR(Close(f, "/f"));
  });
  STEP("snapshot s3", { RETURN_IF_ERROR(Snapshot(m, "s3")); });
  STEP("write h", {  // left unsynced: a power cut may take it
    RETURN_IF_ERROR(Create(m, "/d1/h"));
    RETURN_IF_ERROR(Write(m, "/d1/h", 0, Bytes(11, 5000)));
    RETURN_IF_ERROR(Close(m, "/d1/h"));
  });
#undef STEP
  return Status::Ok();
}

void Verify(Store& store, const Workload& w, bool committed_survives, bool batch_lost, bool exact,
            int* gaps, const std::string& label) {
  SCOPED_TRACE(label);
  auto problems = store.CheckIntegrity();
  ASSERT_TRUE(problems.ok()) << problems.status().ToString();
  for (const auto& p : *problems) ADD_FAILURE() << "integrity: " << p.kind << ": " << p.detail;

  std::map<std::string, BranchId> branches;
  std::set<std::string> must_exist = w.durable_sessions;
  if (committed_survives) must_exist.insert(w.sessions_ok.begin(), w.sessions_ok.end());
  for (const auto& [name, ignored] : w.heads) {
    auto info = store.GetSession(name);
    if (info.ok()) {
      branches[name] = info->branch;
    } else {
      EXPECT_FALSE(must_exist.count(name)) << "session " << name << " lost: "
                                           << info.status().ToString();
    }
  }

  // Durable paths, directories and keys.
  std::map<std::string, std::unique_ptr<Filesystem>> fs;
  auto open = [&](const std::string& s) -> Filesystem* {
    if (!branches.count(s)) return nullptr;
    if (!fs.count(s)) {
      auto f = store.OpenFilesystem(View{branches[s], kHead});
      if (!f.ok()) {
        ADD_FAILURE() << "cannot open " << s << ": " << f.status().ToString();
        return nullptr;
      }
      fs[s] = std::move(f).value();
    }
    return fs[s].get();
  };
  for (const auto& [key, fact] : w.path_facts) {
    Filesystem* f = open(key.first);
    if (f == nullptr) continue;
    auto attr = f->Resolve(key.second);
    const std::string where = key.first + ":" + key.second;
    if (fact.kind == PathFact::kAbsent) {
      EXPECT_FALSE(attr.ok()) << where << " was durably removed but is back";
      continue;
    }
    if (!attr.ok()) {
      ADD_FAILURE() << where << " was durable but is gone: " << attr.status().ToString();
      continue;
    }
    if (fact.kind != PathFact::kContent) continue;
    std::string got(attr->size, '\0');
    auto n = f->Read(attr->ino, 0, {reinterpret_cast<uint8_t*>(got.data()), got.size()});
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    got.resize(*n);
    EXPECT_TRUE(got == fact.content) << where << ": " << got.size() << " bytes, "
                                     << fact.content.size() << " were durable, or different";
  }
  for (const auto& key : w.dir_facts) {
    Filesystem* f = open(key.first);
    if (f == nullptr) continue;
    auto attr = f->Resolve(key.second);
    EXPECT_TRUE(attr.ok() && S_ISDIR(attr->mode)) << key.first << ":" << key.second
                                                  << " durable directory lost";
  }
  for (const auto& [key, value] : w.kv_facts) {
    if (!branches.count(key.first)) continue;
    auto got = store.KvGet(View{branches[key.first], kHead}, key.second);
    if (value.has_value()) {
      EXPECT_TRUE(got.ok() && *got == *value) << "durable key " << key.second << " of "
                                              << key.first << " lost or changed";
    } else {
      EXPECT_FALSE(got.ok()) << "durably removed key " << key.second << " is back";
    }
  }
  fs.clear();

  if (exact) {
    for (const auto& [session, want] : w.heads) {
      if (!branches.count(session)) continue;
      auto got = ReadTree(store, View{branches[session], kHead});
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      Tree a = want, b = *got;
      for (const Key& k : w.attempted_paths) {
        if (k.first != session) continue;
        for (Tree* t : {&a, &b}) {
          t->files.erase(k.second);
          t->dirs.erase(k.second);
        }
      }
      for (const Key& k : w.attempted_keys) {
        if (k.first != session) continue;
        a.kv.erase(k.second);
        b.kv.erase(k.second);
      }
      EXPECT_EQ(TreeDiff(a, b), "") << "head of " << session
                                    << " after a successful Sync (nothing reported lost)";
    }
  }

  // Snapshots: present when promised, and exactly as logged when present.
  for (const auto& snap : w.snapshots) {
    if (!branches.count(snap.session)) continue;
    auto found = store.FindSnapshot(branches[snap.session], snap.name);
    const bool promised =
        w.durable_snapshots.count(snap.name) || (committed_survives && snap.ok);
    if (!found.ok()) {
      EXPECT_FALSE(promised) << "snapshot " << snap.name << " lost: "
                             << found.status().ToString();
      continue;
    }
    auto tree = ReadTree(store, View{found->branch, found->version});
    ASSERT_TRUE(tree.ok()) << "snapshot " << snap.name << ": " << tree.status().ToString();
    const std::string diff = TreeDiff(snap.state, *tree);
    if (!diff.empty() && batch_lost && !w.durable_snapshots.count(snap.name)) {
      ++*gaps;
      printf("note (%s): snapshot %s succeeded without the changes of a lost batch:%s\n",
             label.c_str(), snap.name.c_str(), diff.c_str());
      continue;
    }
    EXPECT_EQ(diff, "") << "snapshot " << snap.name << (snap.ok ? "" : " (reported failed)");
  }

  // Tool calls: as ended when made durable; otherwise their end (or all of
  // them) may be lost, but what is there is what the workload recorded.
  for (const auto& call : w.calls) {
    const bool durable = w.durable_calls.count(call.id) != 0;
    auto got = store.GetCall(call.id);
    if (!got.ok()) {
      EXPECT_FALSE(durable) << "call " << call.id << " lost";
      continue;
    }
    EXPECT_EQ(got->name, call.name);
    if (!durable && got->status == CallStatus::kPending) {
      EXPECT_EQ(got->stdout_data, "") << "call " << call.id << ": output without its end";
      continue;
    }
    EXPECT_EQ(got->status, call.status) << "call " << call.id << (durable ? " (durable)" : "");
    EXPECT_TRUE(got->stdout_data == call.stdout_data) << "call " << call.id << " output";
  }
}

}  // namespace strata::fault_test
