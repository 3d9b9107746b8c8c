// Whole files at a session's head, through the Store API (no mount), and
// stores that know a remote: what the S3 tests (tests/remote/s3_*_test.cc)
// do to every session they push and pull.
#ifndef STRATA_TESTS_TESTING_SESSION_FILES_H_
#define STRATA_TESTS_TESTING_SESSION_FILES_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "strata/store.h"
#include "testing/temp_store.h"

namespace strata::testing {

// The store at `path` (created if missing), knowing `remote` (added unless
// it is there already); null, with a test failure, if it cannot be opened.
inline std::unique_ptr<Store> OpenStoreWithRemote(const std::string& path,
                                                  const RemoteInfo& remote) {
  StoreOptions options;
  options.path = path;
  auto store = Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return nullptr;
  Status added = (*store)->AddRemote(remote);
  EXPECT_TRUE(added.ok() || added.code() == Code::kExists) << added.ToString();
  return std::move(store).value();
}

// The head of `session`; null, with a test failure, if there is none.
inline std::unique_ptr<Filesystem> OpenHead(Store& store, const std::string& session) {
  auto info = store.GetSession(session);
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return nullptr;
  auto fs = store.OpenFilesystem(View{info->branch, kHead});
  EXPECT_TRUE(fs.ok()) << fs.status().ToString();
  return fs.ok() ? std::move(fs).value() : nullptr;
}

// Replaces file `name` in the root of `session`'s head, committed.
inline void WriteHeadFile(Store& store, const std::string& session, const std::string& name,
                          const std::string& content) {
  auto fs = OpenHead(store, session);
  ASSERT_NE(fs, nullptr);
  ReplaceFile(*fs, kRootIno, name, content);
  ASSERT_OK(fs->FlushAll());
}

// The bytes of `path` at `session`'s head; "<missing>" if there is no such
// file, "<no session>" if there is no such session.
inline std::string ReadHeadFile(Store& store, const std::string& session,
                                const std::string& path) {
  auto fs = OpenHead(store, session);
  if (fs == nullptr) return "<no session>";
  auto attr = fs->Resolve(path);
  if (!attr.ok() && attr.status().code() == Code::kNotFound) return "<missing>";
  EXPECT_TRUE(attr.ok()) << path << ": " << attr.status().ToString();
  if (!attr.ok()) return "";
  std::string out(attr->size, '\0');
  auto n = fs->Read(attr->ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? out.substr(0, *n) : "";
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_TESTING_SESSION_FILES_H_
