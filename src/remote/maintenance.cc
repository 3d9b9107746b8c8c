#include "remote/maintenance.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "remote/fetch.h"
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
  ASSIGN_OR_RETURN(std::vector<Listed> packs, ListAll(client, Prefix(remote) + "packs/"));
  ASSIGN_OR_RETURN(std::vector<Listed> indexes, ListAll(client, Prefix(remote) + "index/"));
  ASSIGN_OR_RETURN(std::vector<Listed> session_objects,
                   ListAll(client, Prefix(remote) + "sessions/"));
  // Before the heads are read: a push that relied on a pack doomed earlier
  // and finished in time is seen below.
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  ASSIGN_OR_RETURN(const DoomedPacks doomed_before, ReadDoomedPacks(client, remote));
  std::unordered_set<std::string> kept_bundles, kept_packs;
  for (const std::string& head_key : HeadKeys(session_objects)) {
    ASSIGN_OR_RETURN(RemoteHead head, ReadHead(client, head_key));
    if (!head.exists) continue;  // removed meanwhile
    stats.sessions++;
    for (const std::string& bundle : {head.bundle, head.previous}) {
      if (bundle.empty()) continue;
      kept_bundles.insert(bundle);
      auto refs = ChunksOfBundle(client, *api, remote, bundle, scratch);
      if (!refs.ok()) {
        // A head whose bundle is gone or damaged: deleting anything could
        // make it worse; fsck says what is wrong.
        return refs.status().WithContext("remote gc stopped, nothing deleted");
      }
      for (const chunks::RemoteRef& ref : *refs) kept_packs.insert(ref.pack);
    }
  }
  const int64_t young_after = now - grace_s;
  // Unreferenced and older than the grace period.
  auto garbage = [&](const Listed& o, bool referenced) {
    if (referenced) return false;
    if (o.modified_s > young_after) {
      stats.young_kept++;
      return false;
    }
    return true;
  };
  // Unreferenced packs are listed as doomed first, and deleted only once
  // they were doomed a grace period ago (layout.h, DoomedPacks).
  DoomedPacks doomed_now;
  std::vector<std::pair<const Listed*, int64_t>> expired;  // with when doomed
  for (const Listed& o : packs) {
    const std::string pack = ShaOfKey(o.key);
    bool referenced = kept_packs.count(pack) != 0;
    if (referenced) stats.packs_kept++;
    if (!garbage(o, referenced)) continue;
    auto before = doomed_before.find(pack);
    const int64_t since = before == doomed_before.end() ? now : before->second;
    if (now - since >= grace_s) {
      expired.emplace_back(&o, since);
    } else {
      doomed_now[pack] = since;
      stats.packs_doomed++;
    }
  }
  RETURN_IF_ERROR(WriteDoomedPacks(client, remote, doomed_now));
  std::unordered_map<std::string, uint64_t> index_size;
  for (const Listed& o : indexes) index_size[ShaOfKey(o.key)] = o.size;
  for (const auto& [o, since] : expired) {
    const std::string pack = ShaOfKey(o->key);
    // A push that made a pack of the same bytes since wrote it again (it
    // does not rely on a doomed one): then it is not garbage. (Times are
    // whole seconds: one in the second of the doom counts as after it.)
    auto now_there = client.Head(o->key);
    if (!now_there.ok() && now_there.status().code() != Code::kNotFound) {
      return now_there.status();
    }
    if (now_there.ok() && (now_there->modified_s < 0 || now_there->modified_s >= since)) continue;
    // The index first: an index never names a pack that is not there.
    RETURN_IF_ERROR(client.Delete(IndexKey(remote, pack)));
    RETURN_IF_ERROR(client.Delete(o->key));
    stats.packs_deleted++;
    stats.bytes_deleted += o->size + index_size[pack];
  }
  for (const Listed& o : session_objects) {
    if (o.key.find("/bundles/") == std::string::npos) continue;
    if (!garbage(o, kept_bundles.count(o.key) != 0)) continue;
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
  ASSIGN_OR_RETURN(std::vector<Listed> packs, ListAll(client, Prefix(remote) + "packs/"));
  std::unordered_set<std::string> stored;
  for (const Listed& o : packs) stored.insert(ShaOfKey(o.key));
  std::vector<RemoteProblem> problems;
  std::unordered_set<std::string> checked;
  std::map<std::string, std::map<uint64_t, std::string>> named;  // pack -> offset -> SHA-256
  std::map<std::string, uint64_t> named_end;  // pack -> where the last entry named ends
  *sessions_checked = 0;
  for (const std::string& head_key : HeadKeys(session_objects)) {
    auto head = ReadHead(client, head_key);
    if (!head.ok()) {
      problems.push_back({head_key, head.status().message()});
      continue;
    }
    if (!head->exists) continue;
    (*sessions_checked)++;
    auto refs = ChunksOfBundle(client, *api, remote, head->bundle, scratch);
    if (!refs.ok()) {
      problems.push_back({head->bundle, "the head " + head_key + " names it: " +
                                            refs.status().message()});
      continue;
    }
    for (const chunks::RemoteRef& ref : *refs) {
      if (stored.count(ref.pack) == 0) {
        const std::string key = PackKey(remote, ref.pack);
        if (checked.insert(key).second) {
          problems.push_back({key, "missing (named by " + head->bundle + ")"});
        }
        continue;
      }
      if (!verify_data) continue;
      named[ref.pack][ref.offset] = ref.sha;
      uint64_t& end = named_end[ref.pack];
      end = std::max<uint64_t>(end, ref.offset + ref.length);
    }
  }
  // Each pack read once, every entry named checked against its SHA-256.
  for (const auto& [pack, entries] : named) {
    const std::string key = PackKey(remote, pack);
    const uint64_t start = entries.begin()->first;
    auto fetched = FetchEntries(client, *api, remote, pack, start, named_end[pack] - start);
    if (!fetched.ok()) {
      problems.push_back({key, fetched.status().message()});
      continue;
    }
    std::map<uint64_t, std::string> found;  // entry offset -> SHA-256
    uint64_t at = start;
    for (const FetchedChunk& c : *fetched) {
      found[at] = c.sha;
      at = c.end;
    }
    for (const auto& [offset, sha] : entries) {
      auto it = found.find(offset);
      if (it == found.end() || it->second != sha) {
        problems.push_back({key, "damaged: no chunk " + sha + " at offset " + std::to_string(offset)});
        break;
      }
    }
  }
  std::sort(problems.begin(), problems.end(),
            [](const RemoteProblem& a, const RemoteProblem& b) { return a.key < b.key; });
  return problems;
}

}  // namespace strata::remote
