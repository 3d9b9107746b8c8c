#include "tree/kv.h"

#include "base/utf8.h"
#include "tree/versioned.h"

namespace strata::tree {

namespace {

constexpr const char* kGetKv =
    "SELECT r.value" STRATA_VISIBLE("kv", "r.key = ?3") "ORDER BY a.depth, r.vfrom DESC LIMIT 1";
constexpr const char* kListKv =
    "SELECT r.key, r.value" STRATA_VISIBLE("kv", "r.key >= ?3")
    "ORDER BY r.key, a.depth, r.vfrom DESC";
constexpr const char* kListKvRange =
    "SELECT r.key, r.value" STRATA_VISIBLE("kv", "r.key >= ?3 AND r.key < ?4")
    "ORDER BY r.key, a.depth, r.vfrom DESC";
constexpr const char* kPutKv =
    "INSERT OR REPLACE INTO kv(branch, key, vfrom, value) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kDeleteHeadKv = "DELETE FROM kv WHERE branch = ?1 AND key = ?2 AND vfrom = ?3";
constexpr const char* kNormalizeJson = "SELECT CASE WHEN json_valid(?1) THEN json(?1) END";

// The least string greater than every string starting with `prefix`, or
// nullopt when there is none (empty prefix, or only 0xFF bytes).
std::optional<std::string> PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xFF) end.pop_back();
  if (end.empty()) return std::nullopt;
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

// The value of the 4 hex digits at text[at..], or -1.
int Hex4(std::string_view text, size_t at) {
  if (at + 4 > text.size()) return -1;
  int v = 0;
  for (size_t i = at; i < at + 4; ++i) {
    const char c = text[i];
    const int d = c >= '0' && c <= '9' ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// Whether a string of the JSON `text` holds a \u escape of a UTF-16
// surrogate that is not part of a pair. SQLite's json_valid accepts one;
// JSON parsers that decode strings (nlohmann::json, which the CLI uses)
// refuse the whole text.
bool HasLoneSurrogate(std::string_view text) {
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!in_string || c == '"') {
      if (c == '"') in_string = !in_string;
      continue;
    }
    if (c != '\\' || i + 1 >= text.size()) continue;
    if (text[i + 1] != 'u') {
      ++i;  // a one-character escape, possibly of '"' or '\\'
      continue;
    }
    const int unit = Hex4(text, i + 2);
    if (unit < 0) continue;  // json_valid refuses it
    i += 5;
    if (unit >= 0xDC00 && unit <= 0xDFFF) return true;
    if (unit < 0xD800 || unit > 0xDBFF) continue;
    if (i + 2 >= text.size() || text[i + 1] != '\\' || text[i + 2] != 'u') return true;
    const int low = Hex4(text, i + 3);
    if (low < 0xDC00 || low > 0xDFFF) return true;
    i += 6;
  }
  return false;
}

}  // namespace

Result<std::optional<std::string>> GetKv(sql::Connection& conn, Scope scope, std::string_view key) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetKv));
  internal::BindScope(s, scope).BindText(3, key);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row || s.IsNull(0)) return std::optional<std::string>();
  return std::optional<std::string>(s.Text(0));
}

Result<std::vector<std::pair<std::string, std::string>>> ListKv(sql::Connection& conn, Scope scope,
                                                                std::string_view prefix) {
  std::optional<std::string> end = PrefixEnd(prefix);
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(end ? kListKvRange : kListKv));
  internal::BindScope(s, scope).BindText(3, prefix);
  if (end) s.BindText(4, *end);
  std::vector<std::pair<std::string, std::string>> out;
  RETURN_IF_ERROR(internal::ForEachWinner(
      s, [](const sql::Statement& st) { return st.Text(0); },
      [&](const sql::Statement& st) -> Result<bool> {
        if (!st.IsNull(1)) out.emplace_back(st.Text(0), st.Text(1));
        return true;
      }));
  return out;
}

Status PutKv(sql::Connection& conn, Head head, std::string_view key, std::string_view value) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutKv));
  return s.Bind(1, head.branch).BindText(2, key).Bind(3, head.version).BindText(4, value).Run();
}

Status DeleteKv(sql::Connection& conn, Head head, std::string_view key) {
  ASSIGN_OR_RETURN(auto now, GetKv(conn, head.scope(), key));
  if (!now.has_value()) return NotFound("no key '" + std::string(key) + "'");
  ASSIGN_OR_RETURN(auto below, GetKv(conn, head.below(), key));
  if (below.has_value()) {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutKv));
    return s.Bind(1, head.branch).BindText(2, key).Bind(3, head.version).BindNull(4).Run();
  }
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kDeleteHeadKv));
  return s.Bind(1, head.branch).BindText(2, key).Bind(3, head.version).Run();
}

Result<std::string> NormalizeJson(sql::Connection& conn, std::string_view text) {
  // JSON text is UTF-8 (RFC 8259); SQLite does not check, and what it lets
  // through could be stored but not read back by a strict parser.
  if (!IsUtf8(text)) return InvalidArgument("not valid JSON: not UTF-8 text");
  if (HasLoneSurrogate(text)) {
    return InvalidArgument("not valid JSON: a \\u escape of an unpaired UTF-16 surrogate");
  }
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kNormalizeJson));
  s.BindText(1, text);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row || s.IsNull(0)) return InvalidArgument("not valid JSON: " + std::string(text.substr(0, 80)));
  return s.Text(0);
}

}  // namespace strata::tree
