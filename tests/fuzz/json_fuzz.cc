// Fuzz target: the places that take JSON (or keys) from users. The first
// input byte picks the parser (mod 4), the rest is the text:
//   0  a key-value value (Store::KvUpdate, validated and minified by SQLite's
//      json_valid/json in tree::NormalizeJson);
//   1  a key-value key (non-empty UTF-8 of at most 1,024 bytes);
//   2  a tool call's arguments and result (StartCall/EndCall, RecordCall);
//   3  a Docker-format seccomp profile (sandbox::SeccompFilter::FromProfile,
//      nlohmann::json). The filter is built, never loaded.
// Invariants:
//   - no crash, leak or undefined behaviour; refusals are InvalidArgument;
//   - an accepted value reads back minified: storing what was read back
//     again gives the same text; the same text is accepted alike as a value
//     and as call arguments, and normalized alike;
//   - what the store accepts, the CLI can parse (nlohmann::json, as
//     `strata kv get` and `strata show` do), except numbers past the range
//     of a double (see NumberOverflow), and the reverse (for text without
//     NUL bytes);
//   - a key is accepted exactly when it is non-empty, at most 1,024 bytes
//     and valid UTF-8, and then lists under its own prefix;
//   - a profile nlohmann refuses is refused (InvalidArgument).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "sandbox/seccomp_policy.h"

namespace strata::fuzz {
namespace {

// One store for the whole run, replaced now and then so that the history
// every call adds does not grow without bound.
class StoreHolder {
 public:
  Store& store() {
    if (store_ == nullptr || ++uses_ > 2000) Reset();
    return *store_;
  }
  BranchId branch() const { return branch_; }

 private:
  void Reset() {
    store_.reset();
    dir_ = std::make_unique<ScratchDir>();
    store_ = OpenStoreOrDie(dir_->File("store.db"));
    branch_ = MustOk(store_->CreateSession("json"), "create session").branch;
    uses_ = 0;
  }

  std::unique_ptr<ScratchDir> dir_;
  std::unique_ptr<Store> store_;
  BranchId branch_ = 0;
  int uses_ = 0;
};

StoreHolder& Holder() {
  static StoreHolder holder;
  return holder;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool CliParses(const std::string& text) {
  return !nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false).is_discarded();
}

// Known and reported: SQLite accepts numbers beyond the range of a double
// ("1e999") and json() keeps their text; nlohmann::json refuses them
// ("number overflow", out_of_range 406), so the CLI prints such a value as
// null. The exception only tells this case apart (the core never throws).
bool NumberOverflow(const std::string& text) {
  try {
    (void)nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return e.id == 406;
  }
  return false;
}

void FuzzKvValue(const std::string& text) {
  StoreHolder& h = Holder();
  Store& store = h.store();
  Status put = store.KvUpdate(h.branch(), {{"k", text}});
  // nlohmann::json stops at a NUL byte (taking it for the end of a C
  // string) and ignores what follows, so only NUL-free text is compared.
  FUZZ_CHECK(put.ok() || !CliParses(text) || text.find('\0') != std::string::npos,
             "the store refuses JSON the CLI accepts: " + put.ToString());
  if (!put.ok()) {
    FUZZ_CHECK(put.code() == Code::kInvalid, "KvUpdate: " + put.ToString());
    return;
  }
  const std::string stored = MustOk(store.KvGet(View{h.branch(), kHead}, "k"), "KvGet");
  FUZZ_CHECK(CliParses(stored) || NumberOverflow(stored),
             "the CLI cannot parse a stored value: " + stored);
  MustOk(store.KvUpdate(h.branch(), {{"k", stored}}), "storing a stored value again");
  const std::string again = MustOk(store.KvGet(View{h.branch(), kHead}, "k"), "KvGet");
  FUZZ_CHECK(again == stored, "normalizing is not idempotent: '" + stored + "' -> '" + again + "'");
  FUZZ_CHECK(stored.size() <= text.size() || text.find_first_of("eE") != std::string::npos,
             "minified text grew: '" + stored + "'");
}

void FuzzKvKey(const std::string& key) {
  StoreHolder& h = Holder();
  Store& store = h.store();
  const bool valid = !key.empty() && key.size() <= 1024 && ValidUtf8(key);
  Status put = store.KvUpdate(h.branch(), {{key, "1"}});
  FUZZ_CHECK(put.ok() == valid, std::string("key validity: store says ") + put.ToString() +
                                    ", expected " + (valid ? "OK" : "refusal"));
  if (!valid) {
    FUZZ_CHECK(put.code() == Code::kInvalid, "bad key: " + put.ToString());
    return;
  }
  FUZZ_CHECK(MustOk(store.KvGet(View{h.branch(), kHead}, key), "KvGet") == "1", "KvGet value");
  bool listed = false;
  for (const KvEntry& e : MustOk(store.KvList(View{h.branch(), kHead}, key), "KvList")) {
    FUZZ_CHECK(e.key.compare(0, key.size(), key) == 0, "KvList returned a key outside the prefix");
    listed = listed || e.key == key;
  }
  FUZZ_CHECK(listed, "KvList does not list the key under its own prefix");
  MustOk(store.KvUpdate(h.branch(), {{key, std::nullopt}}), "removing the key");
}

void FuzzCall(const std::string& text) {
  StoreHolder& h = Holder();
  Store& store = h.store();
  Status as_value = store.KvUpdate(h.branch(), {{"v", text}});
  auto id = store.StartCall(h.branch(), CallStart{.name = "fuzz", .args = text});
  FUZZ_CHECK(id.ok() == as_value.ok(), "a text is valid as a value (" + as_value.ToString() +
                                           ") but not as arguments, or the reverse (" +
                                           (id.ok() ? "OK" : id.status().ToString()) + ")");
  if (!id.ok()) {
    FUZZ_CHECK(id.status().code() == Code::kInvalid, "StartCall: " + id.status().ToString());
    auto recorded =
        store.RecordCall(h.branch(), CallStart{.name = "fuzz"}, CallOutcome{.result = text});
    FUZZ_CHECK(!recorded.ok() && recorded.status().code() == Code::kInvalid,
               "RecordCall took a result StartCall refused as arguments");
    return;
  }
  const std::string value = MustOk(store.KvGet(View{h.branch(), kHead}, "v"), "KvGet");
  MustOk(store.EndCall(*id, CallOutcome{.result = text}).status(), "EndCall");
  ToolCall call = MustOk(store.GetCall(*id), "GetCall");
  FUZZ_CHECK(call.args == value,
             "arguments normalized as '" + call.args + "', value as '" + value + "'");
  FUZZ_CHECK(call.result == value, "result normalized differently from the arguments");
  FUZZ_CHECK(call.status == CallStatus::kOk, "an ended call is not ok");
}

void FuzzSeccompProfile(const std::string& text) {
  auto filter = sandbox::SeccompFilter::FromProfile(text);
  if (!CliParses(text)) {
    FUZZ_CHECK(!filter.ok(), "a profile that is not JSON was accepted");
  }
  if (!filter.ok()) {
    FUZZ_CHECK(filter.status().code() == Code::kInvalid,
               "FromProfile: " + filter.status().ToString());
  }
}

}  // namespace

int FuzzOne(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      FuzzKvValue(text);
      break;
    case 1:
      FuzzKvKey(text);
      break;
    case 2:
      FuzzCall(text);
      break;
    default:
      FuzzSeccompProfile(text);
  }
  return 0;
}

}  // namespace strata::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return strata::fuzz::FuzzOne(data, size);
}
