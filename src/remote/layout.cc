#include "remote/layout.h"

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "remote/fetch.h"
#include "remote/manifest.h"
#include "remote/remote.h"
#include "store/bundle.h"

namespace strata::remote {

std::string Prefix(const RemoteInfo& remote) {
  return remote.prefix.empty() ? "" : remote.prefix + "/";
}

std::string PackKey(const RemoteInfo& remote, const std::string& pack) {
  return Prefix(remote) + "packs/" + pack;
}

std::string IndexKey(const RemoteInfo& remote, const std::string& pack) {
  return Prefix(remote) + "index/" + pack;
}

std::string SessionKey(const RemoteInfo& remote, std::string_view session) {
  return Prefix(remote) + "sessions/" + std::string(session) + "/";
}

std::string ShaOfKey(std::string_view key) {
  size_t slash = key.rfind('/');
  std::string_view last = slash == std::string_view::npos ? key : key.substr(slash + 1);
  return chunks::IsShaHex(last) ? std::string(last) : "";
}

std::string ShaHex(const NetApi& api, std::string_view bytes) {
  Sha256 sha = Sha256Of(api, bytes);
  return Hex(sha.data(), sha.size());
}

Result<RemoteHead> ReadHead(S3Client& client, const std::string& key) {
  RemoteHead head;
  ObjectInfo info;
  auto body = client.Get(key, &info);
  if (!body.ok()) {
    if (body.status().code() == Code::kNotFound) return head;
    return body.status();
  }
  auto json = nlohmann::json::parse(*body, nullptr, false);
  if (!json.is_object() || !json.contains("bundle") || !json["bundle"].is_string()) {
    return Corruption("remote head " + key + " is not a Strata head");
  }
  if (!json.contains("format") || json["format"] != kHeadFormat) {
    return Status(Code::kNotSupported,
                  "remote head " + key + " is of another format (" +
                      (json.contains("format") ? json["format"].dump() : "none") + ", this strata reads " +
                      std::to_string(kHeadFormat) + "): push the session again with this strata");
  }
  head.exists = true;
  head.etag = info.etag;
  head.bundle = json["bundle"].get<std::string>();
  if (json.contains("previous") && json["previous"].is_string()) {
    head.previous = json["previous"].get<std::string>();
  }
  return head;
}

std::string DoomedKey(const RemoteInfo& remote) { return Prefix(remote) + "gc/doomed"; }

Result<DoomedPacks> ReadDoomedPacks(S3Client& client, const RemoteInfo& remote) {
  const std::string key = DoomedKey(remote);
  DoomedPacks packs;
  auto body = client.Get(key);
  if (!body.ok()) {
    if (body.status().code() == Code::kNotFound) return packs;
    return body.status();
  }
  auto json = nlohmann::json::parse(*body, nullptr, false);
  if (!json.is_object() || json.value("format", 0) != 1 || !json.contains("packs") ||
      !json["packs"].is_object()) {
    return Corruption("remote object " + key + " is not a Strata gc list");
  }
  for (const auto& [sha, since] : json["packs"].items()) {
    if (!chunks::IsShaHex(sha) || !since.is_number_integer()) {
      return Corruption("remote object " + key + " names a pack malformed");
    }
    packs[sha] = since.get<int64_t>();
  }
  return packs;
}

Status WriteDoomedPacks(S3Client& client, const RemoteInfo& remote, const DoomedPacks& packs) {
  const std::string key = DoomedKey(remote);
  if (packs.empty()) {
    Status deleted = client.Delete(key);
    return deleted.code() == Code::kNotFound ? Status::Ok() : deleted;
  }
  nlohmann::json json = {{"format", 1}, {"packs", packs}};
  return client.Put(key, json.dump(), PutConditions{}).status();
}

Status ForEachParallel(size_t n, int parallel, const RemoteInfo& remote, const Getenv& env,
                       const std::string& db_path,
                       const std::function<Status(S3Client&, sql::Connection*, size_t)>& work,
                       const Progress& progress, S3Counters* counters) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  uint64_t done = 0;  // guarded by mu
  Status first = Status::Ok();
  auto worker = [&] {
    auto client = Connect(remote, env);
    Status s = client.status();
    std::unique_ptr<sql::Connection> conn;
    if (s.ok() && !db_path.empty()) {
      auto opened = sql::Connection::Open(db_path, sql::OpenMode::kQueryOnly);
      s = opened.status();
      if (opened.ok()) conn = std::move(opened).value();
    }
    for (size_t i; s.ok() && (i = next++) < n;) {
      {
        std::scoped_lock lock(mu);
        if (!first.ok()) break;
      }
      s = work(**client, conn.get(), i);
      if (s.ok() && progress) {
        std::scoped_lock lock(mu);
        progress(++done, n);
      }
    }
    std::scoped_lock lock(mu);
    if (!s.ok() && first.ok()) first = s;
    if (client.ok()) counters->Add((*client)->counters());
  };
  std::vector<std::thread> threads;
  const size_t count = std::min<size_t>(std::max(parallel, 1), std::max<size_t>(n, 1));
  for (size_t t = 0; t < count; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return first;
}

ScratchDir::ScratchDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "strata-remote-XXXXXX").string();
  if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

Status FetchBundle(S3Client& client, const NetApi& api, const RemoteInfo& remote,
                   const std::string& key, const std::string& path,
                   std::vector<chunks::RemoteRef>* pieces_out) {
  ASSIGN_OR_RETURN(std::string manifest, client.Get(key));
  if (ShaOfKey(key).empty() || ShaHex(api, manifest) != ShaOfKey(key)) {
    return Corruption("remote object " + key + " does not hash to its name");
  }
  ASSIGN_OR_RETURN(std::vector<chunks::RemoteRef> pieces, DecodeManifest(manifest, key));
  // The pieces, a ranged read for each run of them that lies end to end in
  // one pack (a first push writes them so).
  std::string rows;
  for (size_t i = 0; i < pieces.size();) {
    size_t j = i + 1;
    while (j < pieces.size() && pieces[j].pack == pieces[i].pack &&
           pieces[j].offset == pieces[j - 1].offset + pieces[j - 1].length) {
      ++j;
    }
    const uint64_t end = pieces[j - 1].offset + pieces[j - 1].length;
    ASSIGN_OR_RETURN(std::vector<FetchedChunk> fetched,
                     FetchEntries(client, api, remote, pieces[i].pack, pieces[i].offset,
                                  end - pieces[i].offset));
    for (size_t k = i; k < j; ++k) {
      const size_t n = k - i;
      if (n >= fetched.size() || fetched[n].sha != pieces[k].sha) {
        return Corruption("remote object " + PackKey(remote, pieces[k].pack) + " has no piece " +
                          pieces[k].sha + " at offset " + std::to_string(pieces[k].offset));
      }
      rows.append(reinterpret_cast<const char*>(fetched[n].plain->data()), fetched[n].plain->size());
    }
    i = j;
  }
  Status made = BundleFromRows(rows, path);
  if (!made.ok()) return made.WithContext("remote object " + key);
  if (pieces_out != nullptr) *pieces_out = std::move(pieces);
  return Status::Ok();
}

Result<std::vector<chunks::RemoteRef>> ChunksOfBundle(S3Client& client, const NetApi& api,
                                                      const RemoteInfo& remote,
                                                      const std::string& key,
                                                      const ScratchDir& scratch) {
  const std::string path = scratch.File("bundle-" + ShaOfKey(key));
  std::filesystem::remove(path);
  std::vector<chunks::RemoteRef> refs;
  RETURN_IF_ERROR(FetchBundle(client, api, remote, key, path, &refs));
  auto conn = sql::Connection::Open(path, sql::OpenMode::kQueryOnly);
  if (!conn.ok()) return Corruption("remote object " + key + " is not a bundle");
  auto s = (*conn)->PrepareUncached("SELECT data FROM chunks WHERE codec = 3");
  if (!s.ok()) return Corruption("remote object " + key + " is not a bundle");
  RETURN_IF_ERROR(s->ForEachRow([&](sql::Statement& row) -> Status {
    chunks::RemoteRef ref;
    if (!chunks::DecodeRemoteRef(row.BlobString(0), &ref)) {
      return Corruption("remote object " + key + " names a chunk malformed");
    }
    refs.push_back(std::move(ref));
    return Status::Ok();
  }));
  conn->reset();
  std::filesystem::remove(path);
  return refs;
}

}  // namespace strata::remote
