// Reproducer (not built; found while writing the fuzz samples): RecordCall
// on a branch that was never frozen (here the new branch of a Restore; a
// fresh Fork is the same) records version_before = 0, which does not open
// ("branch N has no frozen version 0") and CheckIntegrity reports as
// missing-version. Build against build-fuzz's libraries, e.g.:
//   clang++ -std=c++20 -fsanitize=address,undefined,fuzzer-no-link -Iinclude -Isrc \
//     -Itests/fuzz THIS.cc build-fuzz/tests/fuzz/libstrata_fuzz_util.a \
//     build-fuzz/src/libstrata.a build-fuzz/src/libstrata_{fs,tree,catalog,chunks,sql,base}.a \
//     -lsqlite3 -lzstd -lxxhash -ldl -lpthread
#include "fuzz_util.h"
#include <cstdio>
using namespace strata;
using namespace strata::fuzz;
int main() {
  ScratchDir dir;
  auto store = OpenStoreOrDie(dir.File("s.db"));
  SessionInfo a = MustOk(store->CreateSession("a"), "create");
  Version v = MustOk(store->Snapshot(a.branch, "one"), "snap");
  MustOk(store->Restore("a", View{a.branch, v}).status(), "restore");
  SessionInfo now = MustOk(store->GetSession("a"), "get");
  ToolCall c = MustOk(store->RecordCall(now.branch, CallStart{.name = "x"}, CallOutcome{.result = "1"}), "record");
  std::printf("version_before %lld after %lld\n", (long long)c.version_before, (long long)*c.version_after);
  auto fs = store->OpenFilesystem(View{now.branch, c.version_before});
  std::printf("open before: %s\n", fs.ok() ? "ok" : fs.status().ToString().c_str());
  for (auto& p : MustOk(store->CheckIntegrity(), "check")) std::printf("%s: %s\n", p.kind.c_str(), p.detail.c_str());
}
