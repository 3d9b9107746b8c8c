// Fuzz target: the CLI's address parser (tools/cli.h: ParseAddress, and
// ResolveView on what it returns).
//
// Invariants, for any input text T:
//   - no crash or undefined behaviour;
//   - when ParseAddress(T) succeeds: the session is not empty and holds no
//     '@' or ':'; printing the parts back (SESSION[@SNAP][:PATH]) gives T
//     exactly; a snapshot part holds no ':' unless it is "call:ID" (and
//     then only that one);
//   - ResolveView of the result, against a small store, never fails with
//     Internal or Corruption, and a view it returns opens;
// and for names built from the input: whenever S is a valid session name,
// N a valid snapshot name other than "call" (CheckSessionName rules) and P
// any text, S, S:P, S@N, S@N:P and S@call:ID:P parse into exactly S, N (or
// call:ID) and P.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "cli.h"
#include "fuzz_util.h"
#include "samples.h"

namespace strata::fuzz {
namespace {

// A store holding the sample session (snapshots "filled", "after-call" and
// an undo snapshot, two tool calls), opened once.
Store& SampleStore() {
  static ScratchDir dir;
  static std::unique_ptr<Store> store = [] {
    auto s = OpenStoreOrDie(dir.File("store.db"));
    FillSampleSession(*s, "s");
    return s;
  }();
  return *store;
}

std::string Print(const cli::Address& a) {
  std::string out = a.session;
  if (!a.snapshot.empty()) out += "@" + a.snapshot;
  if (a.has_path) out += ":" + a.path;
  return out;
}

void CheckParse(std::string_view text) {
  auto parsed = cli::ParseAddress(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == Code::kInvalid,
               "ParseAddress failed with " + parsed.status().ToString());
    return;
  }
  const cli::Address& a = *parsed;
  const std::string shown = "'" + std::string(text) + "'";
  FUZZ_CHECK(!a.session.empty(), "empty session from " + shown);
  FUZZ_CHECK(a.session.find_first_of("@:") == std::string::npos,
             "session '" + a.session + "' from " + shown + " holds '@' or ':'");
  FUZZ_CHECK(Print(a) == text, "printing " + shown + " back gives '" + Print(a) + "'");
  FUZZ_CHECK(a.has_path || a.path.empty(), "a path without ':' from " + shown);
  if (a.snapshot.rfind("call:", 0) == 0) {
    FUZZ_CHECK(a.snapshot.find(':', 5) == std::string::npos,
               "call snapshot '" + a.snapshot + "' from " + shown + " holds another ':'");
  } else {
    FUZZ_CHECK(a.snapshot.find(':') == std::string::npos,
               "snapshot '" + a.snapshot + "' from " + shown + " holds ':'");
  }

  Store& store = SampleStore();
  auto view = cli::ResolveView(store, a);
  if (!view.ok()) {
    const Code code = view.status().code();
    FUZZ_CHECK(code != Code::kInternal && code != Code::kCorruption && code != Code::kIoError,
               "ResolveView of " + shown + ": " + view.status().ToString());
    return;
  }
  MustOk(store.OpenFilesystem(*view), "opening the view of " + shown);
}

void CheckBuilt(FuzzedDataProvider& in) {
  const std::string session = in.ConsumeRandomLengthString(20);
  const std::string snapshot = in.ConsumeRandomLengthString(20);
  const int64_t call = in.ConsumeIntegral<int64_t>();
  const std::string path = in.ConsumeRandomLengthString(40);
  if (!CheckSessionName(session).ok()) return;
  auto expect = [&](const std::string& text, const std::string& snap, bool has_path) {
    auto a = cli::ParseAddress(text);
    FUZZ_CHECK(a.ok(), "'" + text + "' refused: " + a.status().ToString());
    FUZZ_CHECK(a->session == session && a->snapshot == snap && a->has_path == has_path &&
                   a->path == (has_path ? path : ""),
               "'" + text + "' parsed as session '" + a->session + "' snapshot '" + a->snapshot +
                   "' path '" + a->path + "'");
  };
  expect(session, "", false);
  expect(session + ":" + path, "", true);
  const std::string call_snap = "call:" + std::to_string(call);
  expect(session + "@" + call_snap + ":" + path, call_snap, true);
  if (!CheckSessionName(snapshot).ok() || snapshot == "call") return;
  expect(session + "@" + snapshot, snapshot, false);
  expect(session + "@" + snapshot + ":" + path, snapshot, true);
}

}  // namespace

int FuzzOne(const uint8_t* data, size_t size) {
  CheckParse(std::string_view(reinterpret_cast<const char*>(data), size));
  FuzzedDataProvider in(data, size);
  CheckBuilt(in);
  return 0;
}

}  // namespace strata::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  strata::fuzz::SampleStore();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return strata::fuzz::FuzzOne(data, size);
}
