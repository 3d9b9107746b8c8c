// Test helpers: a temporary directory removed at the end of the test, and a
// real store file inside it.
#ifndef STRATA_TESTS_TESTING_TEMP_STORE_H_
#define STRATA_TESTS_TESTING_TEMP_STORE_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "strata/filesystem.h"
#include "strata/store.h"

namespace strata::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "strata-test-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Unwraps a Result in a test, failing the test (and aborting it) on error.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                   \
  ASSERT_OK_AND_ASSIGN_IMPL_(STRATA_CONCAT_(test_result_, __COUNTER__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)                        \
  auto tmp = (expr);                                                      \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();                       \
  lhs = std::move(tmp).value()
#define ASSERT_OK(expr)                                                   \
  do {                                                                    \
    ::strata::Status s_ = (expr);                                         \
    ASSERT_TRUE(s_.ok()) << s_.ToString();                                \
  } while (0)
#define EXPECT_OK(expr)                                                   \
  do {                                                                    \
    ::strata::Status s_ = (expr);                                         \
    EXPECT_TRUE(s_.ok()) << s_.ToString();                                \
  } while (0)
// Expects `expr` (a Status or Result) to fail with `code`.
#define EXPECT_CODE(expr, code_value)                                     \
  do {                                                                    \
    auto&& r_ = (expr);                                                   \
    EXPECT_EQ(::strata::testing::CodeOf(r_), code_value)                  \
        << #expr;                                                         \
  } while (0)

inline Code CodeOf(const Status& s) { return s.code(); }
template <typename T>
Code CodeOf(const Result<T>& r) {
  return r.ok() ? Code::kOk : r.status().code();
}

// Creates `name` under `parent`, or truncates it if it exists, and writes
// `content` into it; closes it again unless `keep_open`.
inline void ReplaceFile(Filesystem& fs, InodeId parent, const std::string& name,
                        const std::string& content, bool keep_open = false) {
  auto existing = fs.Lookup(parent, name);
  InodeId ino = 0;
  if (existing.ok()) {
    ino = existing->ino;
    ASSERT_OK(fs.Open(ino));
    AttrChanges truncate;
    truncate.size = 0;
    ASSERT_OK(fs.SetAttr(ino, truncate).status());
  } else {
    ASSERT_EQ(existing.status().code(), Code::kNotFound);
    ASSERT_OK_AND_ASSIGN(Attr a, fs.Create(parent, name, 0644, Cred{}));
    ino = a.ino;
  }
  auto n = fs.Write(ino, 0, {reinterpret_cast<const uint8_t*>(content.data()), content.size()});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, content.size());
  if (!keep_open) ASSERT_OK(fs.Release(ino));
}

// A store in a fresh temporary directory with one session, "main", open as a
// writable filesystem.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { OpenStore(StoreOptions{}); }

  void OpenStore(StoreOptions options) {
    fs_.reset();
    store_.reset();
    options.path = dir_.File("store.db");
    auto store = Store::Open(std::move(options));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto session = store_->GetSession("main");
    if (!session.ok()) session = store_->CreateSession("main");
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    branch_ = session->branch;
    auto fs = store_->OpenFilesystem(View{branch_, kHead});
    ASSERT_TRUE(fs.ok()) << fs.status().ToString();
    fs_ = std::move(fs).value();
  }

  // Creates (or truncates) a file under `parent` holding `content`.
  Attr WriteFile(InodeId parent, const std::string& name, const std::string& content) {
    auto attr = fs_->Create(parent, name, 0644, Cred{});
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    if (!attr.ok()) return {};
    auto n = fs_->Write(attr->ino,
                        0, {reinterpret_cast<const uint8_t*>(content.data()), content.size()});
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    EXPECT_TRUE(fs_->Flush(attr->ino).ok());  // committed, for tests that read the file raw
    EXPECT_TRUE(fs_->Release(attr->ino).ok());
    return *fs_->GetAttr(attr->ino);
  }

  std::string ReadAll(Filesystem& fs, InodeId ino) {
    auto attr = fs.GetAttr(ino);
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    if (!attr.ok()) return "";
    std::string out(attr->size, '\0');
    auto n = fs.Read(ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok()) return "";
    out.resize(*n);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Filesystem> fs_;
  BranchId branch_ = 0;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_TESTING_TEMP_STORE_H_
