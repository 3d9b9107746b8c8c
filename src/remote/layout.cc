#include "remote/layout.h"

#include <zstd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sql/database.h"

namespace strata::remote {

std::string Prefix(const RemoteInfo& remote) {
  return remote.prefix.empty() ? "" : remote.prefix + "/";
}

std::string ChunkKey(const RemoteInfo& remote, const std::string& sha_hex) {
  return Prefix(remote) + "chunks/" + sha_hex;
}

std::string SessionKey(const RemoteInfo& remote, std::string_view session) {
  return Prefix(remote) + "sessions/" + std::string(session) + "/";
}

std::string ShaOfKey(std::string_view key) {
  size_t slash = key.rfind('/');
  std::string_view last = slash == std::string_view::npos ? key : key.substr(slash + 1);
  if (last.size() != 64 || last.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
    return "";
  }
  return std::string(last);
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
  head.exists = true;
  head.etag = info.etag;
  head.bundle = json["bundle"].get<std::string>();
  if (json.contains("previous") && json["previous"].is_string()) {
    head.previous = json["previous"].get<std::string>();
  }
  return head;
}

std::string EncodeChunkObject(std::span<const uint8_t> plain, const chunks::Encoded& encoded) {
  const bool zstd = encoded.codec == chunks::Codec::kZstd;
  std::span<const uint8_t> bytes = zstd ? std::span<const uint8_t>(encoded.compressed) : plain;
  std::string body(1, zstd ? kZstdObject : kRawObject);
  body.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return body;
}

Result<std::vector<uint8_t>> DecodeChunkObject(const NetApi& api, const std::string& key,
                                               std::string_view body, const std::string& sha_hex) {
  auto corrupt = [&] {
    return Corruption("remote object " + key + " is damaged (its bytes do not hash to its name)");
  };
  if (body.empty()) return corrupt();
  std::vector<uint8_t> plain;
  if (body[0] == kRawObject) {
    plain.assign(body.begin() + 1, body.end());
  } else if (body[0] == kZstdObject) {
    unsigned long long size = ZSTD_getFrameContentSize(body.data() + 1, body.size() - 1);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > (64u << 20)) {
      return corrupt();
    }
    plain.resize(size);
    size_t n = ZSTD_decompress(plain.data(), plain.size(), body.data() + 1, body.size() - 1);
    if (ZSTD_isError(n) || n != size) return corrupt();
  } else {
    return corrupt();
  }
  std::string_view bytes(reinterpret_cast<const char*>(plain.data()), plain.size());
  if (plain.empty() || ShaHex(api, bytes) != sha_hex) return corrupt();
  return plain;
}

ScratchDir::ScratchDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "strata-remote-XXXXXX").string();
  if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Status WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  return out ? Status::Ok() : IoError("cannot write " + path);
}

Result<std::string> FetchBundle(S3Client& client, const NetApi& api, const std::string& key) {
  ASSIGN_OR_RETURN(std::string bundle, client.Get(key));
  if (ShaOfKey(key).empty() || ShaHex(api, bundle) != ShaOfKey(key)) {
    return Corruption("remote object " + key + " does not hash to its name");
  }
  return bundle;
}

Result<std::unordered_set<std::string>> ChunksOfBundle(S3Client& client, const NetApi& api,
                                                       const std::string& key,
                                                       const ScratchDir& scratch) {
  ASSIGN_OR_RETURN(std::string bundle, FetchBundle(client, api, key));
  const std::string path = scratch.File("bundle-" + ShaOfKey(key));
  RETURN_IF_ERROR(WriteFile(path, bundle));
  std::unordered_set<std::string> shas;
  auto conn = sql::Connection::Open(path, sql::OpenMode::kQueryOnly);
  if (!conn.ok()) return Corruption("remote object " + key + " is not a bundle");
  auto s = (*conn)->PrepareUncached("SELECT data FROM chunks WHERE codec = 3");
  if (!s.ok()) return Corruption("remote object " + key + " is not a bundle");
  RETURN_IF_ERROR(s->ForEachRow([&](sql::Statement& row) {
    shas.insert(row.Text(0));
    return Status::Ok();
  }));
  std::filesystem::remove(path);
  return shas;
}

}  // namespace strata::remote
