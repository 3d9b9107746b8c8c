#include "remote/pack.h"

#include <zstd.h>

#include <cstring>
#include <sstream>

#include "chunks/chunk_store.h"

namespace strata::remote {

namespace {

void PutLe32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void PackBuilder::Add(const std::string& sha_hex, int codec, uint32_t plain_size,
                      std::span<const uint8_t> stored) {
  const uint64_t offset = body_.size();
  for (size_t i = 0; i + 1 < sha_hex.size(); i += 2) {
    body_.push_back(static_cast<char>(std::stoi(sha_hex.substr(i, 2), nullptr, 16)));
  }
  body_.push_back(static_cast<char>(codec));
  PutLe32(&body_, plain_size);
  PutLe32(&body_, static_cast<uint32_t>(stored.size()));
  body_.append(reinterpret_cast<const char*>(stored.data()), stored.size());
  entries_.emplace_back(sha_hex, catalog::PackedChunk{"", offset,
                                                      static_cast<uint32_t>(body_.size() - offset)});
}

std::string PackBuilder::IndexBody() const {
  std::string out;
  for (const auto& [sha, where] : entries_) {
    out += sha + " " + std::to_string(where.offset) + " " + std::to_string(where.length) + "\n";
  }
  return out;
}

Result<std::vector<PackEntry>> ParsePackEntries(std::string_view bytes, uint64_t offset,
                                                const std::string& what) {
  std::vector<PackEntry> out;
  size_t at = 0;
  while (bytes.size() - at >= kPackEntryHeader) {
    const char* h = bytes.data() + at;
    PackEntry e;
    e.sha = Hex(reinterpret_cast<const uint8_t*>(h), 32);
    e.codec = static_cast<uint8_t>(h[32]);
    e.plain_size = GetLe32(h + 33);
    const uint32_t stored = GetLe32(h + 37);
    if ((e.codec != kStoredRaw && e.codec != kStoredZstd) || e.plain_size == 0 ||
        e.plain_size > (64u << 20) || stored > (65u << 20)) {
      return Corruption("remote object " + what + " is damaged (a malformed entry at offset " +
                        std::to_string(offset + at) + ")");
    }
    if (bytes.size() - at - kPackEntryHeader < stored) break;  // cut short by the range
    e.offset = offset + at;
    e.length = static_cast<uint32_t>(kPackEntryHeader + stored);
    e.stored = bytes.substr(at + kPackEntryHeader, stored);
    at += e.length;
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<uint8_t>> DecodePackEntry(const NetApi& api, const PackEntry& entry,
                                             const std::string& what) {
  auto corrupt = [&] {
    return Corruption("remote object " + what + " is damaged (the chunk at offset " +
                      std::to_string(entry.offset) + " does not hash to its SHA-256 " +
                      entry.sha + ")");
  };
  std::vector<uint8_t> plain(entry.plain_size);
  if (entry.codec == kStoredRaw) {
    if (entry.stored.size() != plain.size()) return corrupt();
    std::memcpy(plain.data(), entry.stored.data(), plain.size());
  } else {
    size_t n = ZSTD_decompress(plain.data(), plain.size(), entry.stored.data(), entry.stored.size());
    if (ZSTD_isError(n) || n != plain.size()) return corrupt();
  }
  Sha256 sha = Sha256Of(api, std::string_view(reinterpret_cast<const char*>(plain.data()),
                                               plain.size()));
  if (Hex(sha.data(), sha.size()) != entry.sha) return corrupt();
  return plain;
}

Result<std::vector<std::pair<std::string, catalog::PackedChunk>>> ParsePackIndex(
    std::string_view body, const std::string& what) {
  std::vector<std::pair<std::string, catalog::PackedChunk>> out;
  std::istringstream in{std::string(body)};
  std::string sha;
  catalog::PackedChunk where;
  while (in >> sha >> where.offset >> where.length) {
    if (!chunks::IsShaHex(sha) || where.length <= kPackEntryHeader) {
      return Corruption("remote object " + what + " is not a pack index");
    }
    out.emplace_back(sha, where);
  }
  if (!in.eof()) return Corruption("remote object " + what + " is not a pack index");
  return out;
}

}  // namespace strata::remote
