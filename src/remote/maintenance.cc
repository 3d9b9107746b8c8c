#include "remote/maintenance.h"

#include <algorithm>
#include <ctime>
#include <unordered_set>

#include "remote/layout.h"

namespace strata::remote {

namespace {

struct Listed {
  std::string key;
  uint64_t size = 0;
  int64_t modified_s = 0;
};

Result<std::vector<Listed>> ListAll(S3Client& client, const std::string& prefix) {
  std::vector<Listed> out;
  std::string after;
  do {
    ASSIGN_OR_RETURN(ListPage page, client.List(prefix, after));
    for (size_t i = 0; i < page.keys.size(); ++i) {
      out.push_back(Listed{page.keys[i].first, page.keys[i].second,
                           i < page.modified_s.size() ? page.modified_s[i] : 0});
    }
    after = page.next;
  } while (!after.empty());
  return out;
}

// Every session's head under the remote: HEAD keys.
std::vector<std::string> HeadKeys(const std::vector<Listed>& session_objects) {
  std::vector<std::string> heads;
  for (const Listed& o : session_objects) {
    if (o.key.size() > 5 && o.key.compare(o.key.size() - 5, 5, "/HEAD") == 0) heads.push_back(o.key);
  }
  return heads;
}

}  // namespace

Result<RemoteGcStats> CollectRemoteGarbage(S3Client& client, const RemoteInfo& remote,
                                           int64_t grace_s) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  RemoteGcStats stats;
  ScratchDir scratch;
  if (!scratch.ok()) return IoError("cannot make a temporary directory");
  // Listed before the heads are read: an object a push writes after this
  // listing is not seen, so not deleted; one written before it is either
  // named by a head read below or young.
  ASSIGN_OR_RETURN(std::vector<Listed> chunks, ListAll(client, Prefix(remote) + "chunks/"));
  ASSIGN_OR_RETURN(std::vector<Listed> session_objects,
                   ListAll(client, Prefix(remote) + "sessions/"));
  std::unordered_set<std::string> kept_bundles, kept_chunks;
  for (const std::string& head_key : HeadKeys(session_objects)) {
    ASSIGN_OR_RETURN(RemoteHead head, ReadHead(client, head_key));
    if (!head.exists) continue;  // removed meanwhile
    stats.sessions++;
    for (const std::string& bundle : {head.bundle, head.previous}) {
      if (bundle.empty()) continue;
      kept_bundles.insert(bundle);
      auto shas = ChunksOfBundle(client, *api, bundle, scratch);
      if (!shas.ok()) {
        // A head whose bundle is gone or damaged: deleting anything could
        // make it worse; fsck says what is wrong.
        return shas.status().WithContext("remote gc stopped, nothing deleted");
      }
      kept_chunks.insert(shas->begin(), shas->end());
    }
  }
  const int64_t young_after = static_cast<int64_t>(std::time(nullptr)) - grace_s;
  auto doomed = [&](const Listed& o, bool referenced) {
    if (referenced) return false;
    if (o.modified_s > young_after) {
      stats.young_kept++;
      return false;
    }
    return true;
  };
  for (const Listed& o : chunks) {
    bool referenced = kept_chunks.count(ShaOfKey(o.key)) != 0;
    if (referenced) stats.chunks_kept++;
    if (!doomed(o, referenced)) continue;
    RETURN_IF_ERROR(client.Delete(o.key));
    stats.chunks_deleted++;
    stats.bytes_deleted += o.size;
  }
  for (const Listed& o : session_objects) {
    if (o.key.find("/bundles/") == std::string::npos) continue;
    if (!doomed(o, kept_bundles.count(o.key) != 0)) continue;
    RETURN_IF_ERROR(client.Delete(o.key));
    stats.bundles_deleted++;
    stats.bytes_deleted += o.size;
  }
  return stats;
}

Result<std::vector<RemoteProblem>> CheckRemote(S3Client& client, const RemoteInfo& remote,
                                               bool verify_data, uint64_t* sessions_checked) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  ScratchDir scratch;
  if (!scratch.ok()) return IoError("cannot make a temporary directory");
  ASSIGN_OR_RETURN(std::vector<Listed> session_objects,
                   ListAll(client, Prefix(remote) + "sessions/"));
  ASSIGN_OR_RETURN(std::vector<Listed> chunks, ListAll(client, Prefix(remote) + "chunks/"));
  std::unordered_set<std::string> stored;
  for (const Listed& o : chunks) stored.insert(ShaOfKey(o.key));
  std::vector<RemoteProblem> problems;
  std::unordered_set<std::string> checked;
  *sessions_checked = 0;
  for (const std::string& head_key : HeadKeys(session_objects)) {
    auto head = ReadHead(client, head_key);
    if (!head.ok()) {
      problems.push_back({head_key, head.status().message()});
      continue;
    }
    if (!head->exists) continue;
    (*sessions_checked)++;
    auto shas = ChunksOfBundle(client, *api, head->bundle, scratch);
    if (!shas.ok()) {
      problems.push_back({head->bundle, "the head " + head_key + " names it: " +
                                            shas.status().message()});
      continue;
    }
    for (const std::string& sha : *shas) {
      if (!checked.insert(sha).second) continue;
      const std::string key = ChunkKey(remote, sha);
      if (stored.count(sha) == 0) {
        problems.push_back({key, "missing (named by " + head->bundle + ")"});
        continue;
      }
      if (!verify_data) continue;
      auto body = client.Get(key);
      Status s = body.ok() ? DecodeChunkObject(*api, key, *body, sha).status() : body.status();
      if (!s.ok()) problems.push_back({key, s.message()});
    }
  }
  std::sort(problems.begin(), problems.end(),
            [](const RemoteProblem& a, const RemoteProblem& b) { return a.key < b.key; });
  return problems;
}

}  // namespace strata::remote
