#include "samples.h"

#include <sys/stat.h>

#include <memory>
#include <string>

#include "fuzz_util.h"
#include "strata/archive.h"
#include "strata/filesystem.h"

namespace strata::fuzz {

namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

InodeId PutFile(Filesystem& fs, InodeId parent, const std::string& name, const std::string& data) {
  Attr a = MustOk(fs.Create(parent, name, 0644, Cred{1000, 1000}), "create " + name);
  MustOk(fs.Write(a.ino, 0, Bytes(data)), "write " + name);
  MustOk(fs.Release(a.ino), "release " + name);
  return a.ino;
}

void FillTree(Filesystem& fs) {
  Attr dir = MustOk(fs.MkDir(kRootIno, "dir", 0755, Cred{}), "mkdir dir");
  Attr sub = MustOk(fs.MkDir(dir.ino, "sub", 0700, Cred{1, 2}), "mkdir sub");
  std::string big;
  for (int i = 0; i < 2500; ++i) big += "line " + std::to_string(i) + "\n";  // several blocks
  InodeId file = PutFile(fs, dir.ino, "file", big);
  PutFile(fs, sub.ino, "empty", "");
  PutFile(fs, kRootIno, "small", "hello\n");
  MustOk(fs.Symlink(kRootIno, "link", "dir/file", Cred{}).status(), "symlink");
  MustOk(fs.Link(file, kRootIno, "hard").status(), "link");
  MustOk(fs.MkNod(kRootIno, "fifo", S_IFIFO | 0600, 0, Cred{}).status(), "mknod");
  MustOk(fs.SetXattr(file, "user.note", "a value", 0), "setxattr");
  MustOk(fs.SetXattr(dir.ino, "user.empty", "", 0), "setxattr");
  MustOk(fs.FlushAll(), "flush");
}

}  // namespace

void FillSampleSession(Store& store, const std::string& name) {
  const std::string base = name + "-base";
  SessionInfo info = MustOk(store.CreateSession(base), "create session");
  {
    auto fs = MustOk(store.OpenFilesystem(View{info.branch, kHead}), "open fs");
    FillTree(*fs);
  }
  MustOk(store.KvUpdate(info.branch, {{"plan", R"({"next": "fork", "n": [1, 2.5, null]})"}}), "kv");
  MustOk(store.Snapshot(info.branch, "filled").status(), "snapshot");
  BranchId branch = MustOk(store.Fork(View{info.branch, kHead}, name), "fork");
  CallStart start{.name = "write_file", .args = R"({"path": "/dir/new"})"};
  int64_t call = MustOk(store.StartCall(branch, start), "start call");
  {
    auto fs = MustOk(store.OpenFilesystem(View{branch, kHead}), "open fork fs");
    Attr dir = MustOk(fs->Resolve("/dir"), "resolve");
    PutFile(*fs, dir.ino, "new", std::string(5000, 'x'));
    MustOk(fs->Unlink(kRootIno, "small"), "unlink");
    MustOk(fs->FlushAll(), "flush");
  }
  CallOutcome outcome{.result = R"({"bytes": 5000})",
                      .exit_status = 0,
                      .stdout_data = "done\n",
                      .stderr_data = "warning\n"};
  MustOk(store.EndCall(call, outcome).status(), "end call");
  // A restore to a snapshot gives the session a second branch of its own.
  View target{branch, MustOk(store.Snapshot(branch, "after-call"), "snapshot")};
  MustOk(store.Restore(name, target).status(), "restore");
  SessionInfo now = MustOk(store.GetSession(name), "get session");
  MustOk(store.KvUpdate(now.branch, {{"done", "true"}, {"plan", std::nullopt}}), "kv update");
  // (Not right after the restore: a call recorded on a branch never frozen
  // names version 0 as its "before", which CheckIntegrity reports.)
  MustOk(store.Snapshot(now.branch, "restored").status(), "snapshot");
  MustOk(store
             .RecordCall(now.branch, CallStart{.name = "note", .args = "[]"},
                         CallOutcome{.error = "failed on purpose"})
             .status(),
         "record call");
  MustOk(store.Sync(), "sync");
  RequireSound(store, "the sample session");
}

std::string SampleBundle(uint32_t block_size) {
  ScratchDir dir;
  auto store = OpenStoreOrDie(dir.File("store.db"), block_size);
  FillSampleSession(*store, "sample");
  MustOk(store->Export("sample", dir.File("sample.bundle")).status(), "export");
  return ReadFileBytes(dir.File("sample.bundle"));
}

std::string SampleTar() {
  ScratchDir dir;
  auto store = OpenStoreOrDie(dir.File("store.db"));
  FillSampleSession(*store, "sample");
  SessionInfo info = MustOk(store->GetSession("sample"), "get session");
  auto fs = MustOk(store->OpenFilesystem(View{info.branch, kHead}), "open fs");
  TarStats stats;
  MustOk(WriteTar(*fs, dir.File("sample.tar"), &stats), "WriteTar");
  return ReadFileBytes(dir.File("sample.tar"));
}

}  // namespace strata::fuzz
