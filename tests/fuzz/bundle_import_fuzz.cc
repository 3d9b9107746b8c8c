// Fuzz target: importing a bundle (Store::Import, src/store/bundle.cc).
//
// The first input byte picks a mode (mod 3), the rest is its payload:
//   0  the payload is the bundle file, imported as it is. Byte-wise
//      mutations of a SQLite file nearly always break the page structure or
//      the row checksum, so this mode mostly tests the refusals.
//   1  the payload is the bundle file, re-sealed first: if it opens as a
//      bundle, its checksum row is recomputed (BundleChecksum), so altered
//      rows reach the structure checks and the import itself.
//   2  the payload is a program of row edits (see ApplyEdits) applied to a
//      valid sample bundle made at start-up, which is then re-sealed. This
//      reaches the import's SQL with well-formed files whose rows disagree.
// The importing store already holds another copy of the sample session, so
// chunks are reused. Invariants:
//   - no crash, leak or undefined behaviour;
//   - a refused import fails with an ordinary error (never Internal), leaves
//     the sessions as they were and the store sound;
//   - an accepted import yields a session with a valid name, and leaves the
//     other session unchanged; in every mode (unless
//     STRATA_FUZZ_BUNDLE_STRICT=0, see StrictResealed) its head and
//     snapshots also read completely, its calls and key-value state list,
//     and CheckIntegrity finds nothing.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "samples.h"
#include "sql/database.h"
#include "store/bundle.h"

namespace strata::fuzz {
namespace {

constexpr uint32_t kBlockSize = 4096;

// Made once per process: the sample bundle, and a store file holding the
// same sample as session "other", with what that session's head reads as.
struct Fixture {
  Fixture() : bundle(SampleBundle(kBlockSize)), store_file(dir.File("pristine.db")) {
    auto store = OpenStoreOrDie(store_file, kBlockSize);
    FillSampleSession(*store, "other");
    SessionInfo info = MustOk(store->GetSession("other"), "get other");
    auto fs = MustOk(store->OpenFilesystem(View{info.branch, kHead}), "open other");
    other_tree = MustOk(ReadTree(*fs), "read other");
  }

  ScratchDir dir;
  std::string bundle;
  std::string store_file;
  std::map<std::string, NodeState> other_tree;
};

Fixture& GetFixture() {
  static Fixture fixture;
  return fixture;
}

// --- Re-sealing and row edits, straight through SQLite.

void Exec(sql::Connection& conn, const std::string& query) { (void)conn.Exec(query); }

// Recomputes the checksum row, if the file is a bundle at all.
void Reseal(const std::string& path) {
  auto conn = sql::Connection::Open(path, sql::OpenMode::kReadWriteCreate);
  if (!conn.ok()) return;
  auto sum = BundleChecksum(**conn);
  if (!sum.ok()) return;
  auto s = (*conn)->PrepareUncached("UPDATE bundle SET value = ?1 WHERE key = 'checksum'");
  if (!s.ok()) return;
  (void)s->BindText(1, *sum).Step();
}

// Whether a step of `s` succeeds with a row.
bool StepsToARow(sql::Statement& s) {
  Result<bool> row = s.Step();
  return row.ok() && *row;
}

std::string Quote(const std::string& name) { return "\"" + name + "\""; }

std::vector<std::string> Tables(sql::Connection& conn) {
  std::vector<std::string> out;
  auto s = conn.PrepareUncached(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
      "ORDER BY name");
  if (!s.ok()) return out;
  (void)s->ForEachRow([&](sql::Statement& row) {
    out.emplace_back(row.Text(0).c_str());
    return Status::Ok();
  });
  return out;
}

std::vector<std::string> Columns(sql::Connection& conn, const std::string& table) {
  std::vector<std::string> out;
  auto s = conn.PrepareUncached("SELECT name FROM pragma_table_info(?1) ORDER BY cid");
  if (!s.ok()) return out;
  (void)s->BindText(1, table).ForEachRow([&](sql::Statement& row) {
    out.emplace_back(row.Text(0).c_str());
    return Status::Ok();
  });
  return out;
}

// A WHERE clause naming the n-th row of `table` (in its natural order) by
// every column's value, which works with and without rowids.
std::string RowFilter(sql::Connection& conn, const std::string& table,
                      const std::vector<std::string>& columns, uint8_t n) {
  auto count = conn.PrepareUncached("SELECT count(*) FROM " + Quote(table));
  if (!count.ok() || !StepsToARow(*count)) return "";
  const int64_t rows = count->Int(0);
  if (rows == 0) return "";
  auto row =
      conn.PrepareUncached("SELECT quote(" + Quote(columns[0]) + ")" +
                           [&] {
                             std::string rest;
                             for (size_t i = 1; i < columns.size(); ++i) {
                               rest += ", quote(" + Quote(columns[i]) + ")";
                             }
                             return rest;
                           }() +
                           " FROM " + Quote(table) + " LIMIT 1 OFFSET " + std::to_string(n % rows));
  if (!row.ok() || !StepsToARow(*row)) return "";
  std::string where;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) where += " AND ";
    where += Quote(columns[i]) + " IS " + row->Text(static_cast<int>(i)).c_str();
  }
  return where;
}

// An SQL expression for a new value of column `column`.
std::string NewValue(FuzzedDataProvider& in, const std::string& column) {
  switch (in.ConsumeIntegralInRange(0, 6)) {
    case 0:
      return "NULL";
    case 1:
      return std::to_string(in.ConsumeIntegralInRange<int64_t>(-2, 300));
    case 2:
      return std::to_string(in.ConsumeIntegral<int64_t>());
    case 3:
      return Quote(column) + " + 1";
    case 4:
      return Quote(column) + " - 1";
    case 5: {
      std::string text = in.ConsumeRandomLengthString(40);
      std::string quoted = "'";
      for (char c : text) quoted += c == '\'' ? std::string("''") : std::string(1, c);
      return "CAST(" + quoted + "' AS TEXT)";
    }
    default: {
      std::string hex;
      for (uint8_t b : in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(0, 32))) {
        static const char kHex[] = "0123456789abcdef";
        hex += kHex[b >> 4];
        hex += kHex[b & 15];
      }
      return "x'" + hex + "'";
    }
  }
}

// Edits rows of the bundle at `path`: each step picks a table, a row and an
// edit (change one column, delete the row, or insert a copy with one column
// changed). Edits that SQLite refuses (constraints) are skipped.
void ApplyEdits(const std::string& path, FuzzedDataProvider& in) {
  auto opened = sql::Connection::Open(path, sql::OpenMode::kReadWriteCreate);
  if (!opened.ok()) return;
  sql::Connection& conn = **opened;
  const std::vector<std::string> tables = Tables(conn);
  if (tables.empty()) return;
  for (int step = 0; step < 16 && in.remaining_bytes() > 0; ++step) {
    const std::string& table = tables[in.ConsumeIntegralInRange<size_t>(0, tables.size() - 1)];
    const std::vector<std::string> columns = Columns(conn, table);
    if (columns.empty()) continue;
    const int edit = in.ConsumeIntegralInRange(0, 2);
    const std::string where = RowFilter(conn, table, columns, in.ConsumeIntegral<uint8_t>());
    if (where.empty()) continue;
    const size_t c = in.ConsumeIntegralInRange<size_t>(0, columns.size() - 1);
    const std::string value = NewValue(in, columns[c]);
    if (edit == 0) {
      Exec(conn, "UPDATE " + Quote(table) + " SET " + Quote(columns[c]) + " = " + value +
                     " WHERE " + where);
    } else if (edit == 1) {
      Exec(conn, "DELETE FROM " + Quote(table) + " WHERE " + where);
    } else {
      std::string select;
      for (size_t i = 0; i < columns.size(); ++i) {
        if (i > 0) select += ", ";
        select += i == c ? value : Quote(columns[i]);
      }
      Exec(conn, "INSERT INTO " + Quote(table) + " SELECT " + select + " FROM " + Quote(table) +
                     " WHERE " + where);
    }
  }
}

// --- The checks after an import.

// Whether a re-sealed bundle (modes 1 and 2) must also import soundly.
// Import runs the whole integrity check on the bundle, so rows that disagree
// with each other (ancestry, versions, entries) are refused, and an accepted
// import must be sound. STRATA_FUZZ_BUNDLE_STRICT=0 relaxes those modes to
// "nothing crashes and nothing else is touched".
bool StrictResealed() {
  static const bool strict = [] {
    const char* env = std::getenv("STRATA_FUZZ_BUNDLE_STRICT");
    return env == nullptr || std::string(env) != "0";
  }();
  return strict;
}

// The imported session must be usable. `strict`: it must also read
// completely and leave the store sound (for bundles made by Export).
void CheckImported(Store& store, const BundleStats& stats, bool strict) {
  MustOk(CheckSessionName(stats.session), "imported session name");
  SessionInfo info = MustOk(store.GetSession(stats.session), "get imported session");
  if (strict) RequireSound(store, "after an accepted import");
  auto fs = store.OpenFilesystem(View{info.branch, kHead});
  if (strict) MustOk(fs.status(), "open imported head");
  if (fs.ok()) {
    auto tree = ReadTree(**fs);
    if (strict) MustOk(tree.status(), "reading the imported head");
  }
  auto branches = store.SessionBranches(stats.session);
  if (strict) MustOk(branches.status(), "session branches");
  for (BranchId branch : branches.ok() ? *branches : std::vector<BranchId>{}) {
    auto snaps = store.ListSnapshots(branch);
    if (strict) MustOk(snaps.status(), "list snapshots");
    for (const SnapshotInfo& snap : snaps.ok() ? *snaps : std::vector<SnapshotInfo>{}) {
      auto snap_fs = store.OpenFilesystem(View{branch, snap.version});
      if (strict) MustOk(snap_fs.status(), "open snapshot");
      if (!snap_fs.ok()) continue;
      auto tree = ReadTree(**snap_fs);
      if (strict) MustOk(tree.status(), "reading snapshot '" + snap.name + "'");
    }
  }
  auto calls = store.ListCalls(View{info.branch, kHead}, CallFilter{});
  if (strict) MustOk(calls.status(), "list calls");
  auto kv = store.KvList(View{info.branch, kHead});
  if (strict) MustOk(kv.status(), "list kv");
}

void CheckOtherUnchanged(Store& store) {
  Fixture& f = GetFixture();
  SessionInfo info = MustOk(store.GetSession("other"), "get other");
  auto fs = MustOk(store.OpenFilesystem(View{info.branch, kHead}), "open other");
  auto tree = MustOk(ReadTree(*fs), "read other");
  std::string diff = CompareTrees(f.other_tree, tree, CompareOptions{.same_inodes = true});
  FUZZ_CHECK(diff.empty(), "the import changed another session: " + diff);
}

}  // namespace

int FuzzOne(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& f = GetFixture();
  ScratchDir dir;
  const std::string bundle = dir.File("in.bundle");
  const std::string store_path = dir.File("store.db");
  std::filesystem::copy_file(f.store_file, store_path);
  if (std::filesystem::exists(f.store_file + "-wal")) {
    std::filesystem::copy_file(f.store_file + "-wal", store_path + "-wal");
  }
  const int mode = data[0] % 3;
  if (mode == 2) {
    WriteFileOrDie(bundle, reinterpret_cast<const uint8_t*>(f.bundle.data()), f.bundle.size());
    FuzzedDataProvider in(data + 1, size - 1);
    ApplyEdits(bundle, in);
  } else {
    WriteFileOrDie(bundle, data + 1, size - 1);
  }
  if (mode != 0) Reseal(bundle);

  auto store = OpenStoreOrDie(store_path, kBlockSize);
  const size_t sessions_before = MustOk(store->ListSessions(), "list sessions").size();
  auto imported = store->Import(bundle);
  if (imported.ok()) {
    CheckImported(*store, *imported, mode == 0 || StrictResealed());
  } else {
    FUZZ_CHECK(imported.status().code() != Code::kInternal,
               "bundle refused with an internal error: " + imported.status().ToString());
    FUZZ_CHECK(MustOk(store->ListSessions(), "list sessions").size() == sessions_before,
               "a refused import added a session");
    RequireSound(*store, "after a refused import");
  }
  CheckOtherUnchanged(*store);
  return 0;
}

}  // namespace strata::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  strata::fuzz::GetFixture();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return strata::fuzz::FuzzOne(data, size);
}
