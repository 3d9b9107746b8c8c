// The in-memory model ops_fuzz checks the core against: a POSIX tree of
// directories, regular files and symlinks with hard links and xattrs, and a
// session's key-value state. It answers what POSIX (and the Store contract)
// says each operation must return, and applies the operations that succeed.
#ifndef STRATA_TESTS_FUZZ_OPS_MODEL_H_
#define STRATA_TESTS_FUZZ_OPS_MODEL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::fuzz {

enum class Kind { kDir, kFile, kSymlink };

struct ModelNode {
  Kind kind = Kind::kFile;
  uint32_t perm = 0;
  std::string data;  // file bytes, or a symlink's target
  std::map<std::string, std::string> xattrs;
  uint32_t links = 0;  // names of a non-directory
};

// Paths are absolute ("/" is the root, which always exists). Node ids are
// the core's inode numbers, so hard links are paths sharing an id. Names
// must sort after '/' (ops_fuzz uses lower-case letters), so that a
// directory's subtree is contiguous in path order.
class TreeModel {
 public:
  explicit TreeModel(uint32_t root_perm = 0755);

  static std::string Parent(const std::string& path);
  static std::string Name(const std::string& path);
  static std::string Join(const std::string& dir, const std::string& name);
  // True when `path` lies strictly below directory `dir`.
  static bool Inside(const std::string& path, const std::string& dir);

  size_t size() const { return paths_.size(); }
  bool Has(const std::string& path) const { return paths_.count(path) != 0; }
  InodeId Id(const std::string& path) const { return paths_.at(path); }
  const ModelNode& At(const std::string& path) const { return nodes_.at(Id(path)); }
  ModelNode& MutableAt(const std::string& path) { return nodes_.at(Id(path)); }
  bool IsDir(const std::string& path) const { return Has(path) && At(path).kind == Kind::kDir; }
  bool IsEmptyDir(const std::string& path) const;
  // Every path of one of `kinds`, sorted; the root only if `with_root`.
  std::vector<std::string> PathsOf(std::vector<Kind> kinds, bool with_root = false) const;

  // --- What the core must answer (kOk when the operation may proceed).
  Code CheckNew(const std::string& path) const;
  Code CheckRename(const std::string& from, const std::string& to, unsigned flags) const;
  Code CheckUnlink(const std::string& path) const;
  Code CheckRmDir(const std::string& path) const;

  // --- Mutations, after the check said kOk.
  void Add(const std::string& path, InodeId id, Kind kind, uint32_t perm, std::string data);
  void AddLink(const std::string& path, InodeId id);
  void Remove(const std::string& path);
  void Rename(const std::string& from, const std::string& to, unsigned flags);

  // --- Open handles (of the filesystem the model is compared with). A file
  // whose last name goes while it is open lives on, nameless, until its last
  // handle is released.
  void Open(InodeId id) { open_[id]++; }
  // Returns true when that was the last handle of a nameless file, now gone.
  bool Release(InodeId id);
  const std::map<InodeId, int>& open() const { return open_; }
  // Open files with no name left.
  std::vector<InodeId> Orphans() const;
  ModelNode& Node(InodeId id) { return nodes_.at(id); }
  const ModelNode& Node(InodeId id) const { return nodes_.at(id); }
  // The handles are gone (a new filesystem, or a copy for another one).
  void DropHandles();

  // What ReadTree must return for this tree (owners 0:0).
  std::map<std::string, NodeState> Expected() const;

 private:
  // Removes `root` and everything below it, keyed by the rest of the path.
  std::map<std::string, InodeId> Take(const std::string& root);

  std::map<std::string, InodeId> paths_;
  std::map<InodeId, ModelNode> nodes_;
  std::map<InodeId, int> open_;  // handles per inode
};

// A session's key-value state: key -> minified JSON.
using KvModel = std::map<std::string, std::string>;

}  // namespace strata::fuzz

#endif  // STRATA_TESTS_FUZZ_OPS_MODEL_H_
