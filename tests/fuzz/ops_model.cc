#include "ops_model.h"

#include <linux/fs.h>
#include <sys/stat.h>

#include <algorithm>

namespace strata::fuzz {

TreeModel::TreeModel(uint32_t root_perm) {
  paths_["/"] = kRootIno;
  nodes_[kRootIno] = ModelNode{Kind::kDir, root_perm, "", {}, 0};
}

std::string TreeModel::Parent(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string TreeModel::Name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

std::string TreeModel::Join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

bool TreeModel::Inside(const std::string& path, const std::string& dir) {
  if (dir == "/") return path != "/";
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

bool TreeModel::IsEmptyDir(const std::string& path) const {
  auto next = paths_.upper_bound(path);
  return next == paths_.end() || !Inside(next->first, path);
}

std::vector<std::string> TreeModel::PathsOf(std::vector<Kind> kinds, bool with_root) const {
  std::vector<std::string> out;
  for (const auto& [path, id] : paths_) {
    if (path == "/" && !with_root) continue;
    if (std::find(kinds.begin(), kinds.end(), nodes_.at(id).kind) != kinds.end()) {
      out.push_back(path);
    }
  }
  return out;
}

Code TreeModel::CheckNew(const std::string& path) const {
  return Has(path) ? Code::kExists : Code::kOk;
}

Code TreeModel::CheckRename(const std::string& from, const std::string& to, unsigned flags) const {
  if (!Has(from)) return Code::kNotFound;
  const bool exchange = (flags & RENAME_EXCHANGE) != 0;
  if ((flags & RENAME_NOREPLACE) && Has(to)) return Code::kExists;
  if (exchange && !Has(to)) return Code::kNotFound;
  // A directory cannot move below itself (nor, exchanging, the other way).
  if (IsDir(from) && Inside(to, from)) return Code::kInvalid;
  if (exchange && IsDir(to) && Inside(from, to)) return Code::kInvalid;
  if (exchange || !Has(to) || Id(to) == Id(from)) return Code::kOk;
  if (IsDir(from) && !IsDir(to)) return Code::kNotDir;
  if (!IsDir(from) && IsDir(to)) return Code::kIsDir;
  if (IsDir(to) && !IsEmptyDir(to)) return Code::kNotEmpty;
  return Code::kOk;
}

Code TreeModel::CheckUnlink(const std::string& path) const {
  if (!Has(path)) return Code::kNotFound;
  return IsDir(path) ? Code::kIsDir : Code::kOk;
}

Code TreeModel::CheckRmDir(const std::string& path) const {
  if (!Has(path)) return Code::kNotFound;
  if (!IsDir(path)) return Code::kNotDir;
  return IsEmptyDir(path) ? Code::kOk : Code::kNotEmpty;
}

void TreeModel::Add(const std::string& path, InodeId id, Kind kind, uint32_t perm,
                    std::string data) {
  paths_[path] = id;
  nodes_[id] = ModelNode{kind, perm, std::move(data), {}, 1};
}

void TreeModel::AddLink(const std::string& path, InodeId id) {
  paths_[path] = id;
  nodes_.at(id).links++;
}

void TreeModel::Remove(const std::string& path) {
  const InodeId id = Id(path);
  paths_.erase(path);
  ModelNode& node = nodes_.at(id);
  if (node.kind == Kind::kDir || (--node.links == 0 && !open_.count(id))) nodes_.erase(id);
}

bool TreeModel::Release(InodeId id) {
  if (--open_.at(id) > 0) return false;
  open_.erase(id);
  if (nodes_.at(id).links > 0) return false;
  nodes_.erase(id);
  return true;
}

std::vector<InodeId> TreeModel::Orphans() const {
  std::vector<InodeId> out;
  for (const auto& [id, count] : open_) {
    if (nodes_.at(id).links == 0) out.push_back(id);
  }
  return out;
}

void TreeModel::DropHandles() {
  for (InodeId id : Orphans()) nodes_.erase(id);
  open_.clear();
}

std::map<std::string, InodeId> TreeModel::Take(const std::string& root) {
  std::map<std::string, InodeId> out;
  for (auto it = paths_.begin(); it != paths_.end();) {
    if (it->first == root || Inside(it->first, root)) {
      out[it->first.substr(root.size())] = it->second;
      it = paths_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void TreeModel::Rename(const std::string& from, const std::string& to, unsigned flags) {
  if (Has(to) && Id(to) == Id(from)) return;  // two names of one inode: nothing happens
  if (flags & RENAME_EXCHANGE) {
    auto a = Take(from);
    auto b = Take(to);
    for (auto& [rest, id] : a) paths_[to + rest] = id;
    for (auto& [rest, id] : b) paths_[from + rest] = id;
    return;
  }
  if (Has(to)) Remove(to);
  for (auto& [rest, id] : Take(from)) paths_[to + rest] = id;
}

std::map<std::string, NodeState> TreeModel::Expected() const {
  std::map<std::string, NodeState> out;
  for (const auto& [path, id] : paths_) {
    const ModelNode& n = nodes_.at(id);
    NodeState& s = out[path];
    s.ino = id;
    s.xattrs = n.xattrs;
    switch (n.kind) {
      case Kind::kDir: {
        s.mode = S_IFDIR | n.perm;
        s.nlink = 2;
        for (auto it = paths_.upper_bound(path); it != paths_.end() && Inside(it->first, path);
             ++it) {
          if (Parent(it->first) == path && nodes_.at(it->second).kind == Kind::kDir) s.nlink++;
        }
        break;
      }
      case Kind::kFile:
        s.mode = S_IFREG | n.perm;
        s.nlink = n.links;
        s.size = n.data.size();
        s.data = n.data.substr(0, kMaxCompared);
        break;
      case Kind::kSymlink:
        s.mode = S_IFLNK | n.perm;
        s.nlink = n.links;
        s.size = n.data.size();
        s.data = n.data;
        break;
    }
  }
  return out;
}

}  // namespace strata::fuzz
