// Shared pieces of the libFuzzer targets: failing loudly, scratch
// directories, fresh stores, and a whole-tree reader used to compare trees.
//
// A fuzz target must never crash, and must abort (so that libFuzzer saves
// the input) when an invariant breaks: Die() prints what broke and aborts.
#ifndef STRATA_TESTS_FUZZ_FUZZ_UTIL_H_
#define STRATA_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "strata/filesystem.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::fuzz {

// Prints "fuzz invariant broken: <what>" and aborts.
[[noreturn]] void Die(const std::string& what);

// Aborts unless `cond`; `what` is only built on failure.
#define FUZZ_CHECK(cond, what)              \
  do {                                      \
    if (!(cond)) ::strata::fuzz::Die(what); \
  } while (0)

// The value of `r`, or Die with `context` and its status.
template <typename T>
T MustOk(Result<T> r, std::string_view context) {
  if (!r.ok()) Die(std::string(context) + ": " + r.status().ToString());
  return std::move(r).value();
}
void MustOk(const Status& s, std::string_view context);

// A fresh directory, removed with everything in it on destruction. Made under
// $STRATA_FUZZ_TMPDIR, else /dev/shm (a store per input is cheap on tmpfs),
// else the system temporary directory.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// Writes `size` bytes to a new file at `path` (Die on failure).
void WriteFileOrDie(const std::string& path, const uint8_t* data, size_t size);
// The whole file, or an empty string if it cannot be read.
std::string ReadFileBytes(const std::string& path);

// Opens a new store at `path` (Die on failure). Small blocks reach block
// boundaries with small inputs.
std::unique_ptr<Store> OpenStoreOrDie(const std::string& path, uint32_t block_size = 4096);

// Dies, listing the first problems, unless CheckIntegrity finds none.
void RequireSound(Store& store, std::string_view context);

// What the core says about one name of a tree, for comparisons.
struct NodeState {
  uint32_t mode = 0;  // type and permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  InodeId ino = 0;
  // A regular file's first kMaxCompared bytes, or a symlink's target.
  std::string data;
  std::map<std::string, std::string> xattrs;
};
inline constexpr uint64_t kMaxCompared = 1 << 20;

// Every path of the tree of `fs` ("/" included), walked from the root. Fails
// (rather than dying) when the core reports an error, so each caller decides
// whether that is a bug; checks "." and ".." of every directory.
Result<std::map<std::string, NodeState>> ReadTree(Filesystem& fs);

// "" when the trees are equal in type, permissions, size, contents, symlink
// targets and xattrs (and, with `same_owners`, uid and gid, and with
// `same_links`, nlink and which names share an inode), else the first
// difference.
struct CompareOptions {
  bool same_owners = true;
  bool same_links = true;
  bool same_inodes = false;  // equal inode numbers (a snapshot of the same tree)
};
std::string CompareTrees(const std::map<std::string, NodeState>& want,
                         const std::map<std::string, NodeState>& got, CompareOptions options);

}  // namespace strata::fuzz

#endif  // STRATA_TESTS_FUZZ_FUZZ_UTIL_H_
