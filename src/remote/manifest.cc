#include "remote/manifest.h"

#include <array>
#include <cstdint>
#include <sstream>

namespace strata::remote {

namespace {

constexpr size_t kMinPiece = 4u << 10;
constexpr size_t kMaxPiece = 64u << 10;
// 14 bits (16 KiB on average past the minimum), taken from the top of the
// hash, where the shifts have mixed the most bytes in.
constexpr uint64_t kCutMask = ((uint64_t{1} << 14) - 1) << 50;
constexpr std::string_view kManifestHeader = "strata-manifest 1";

// A fixed table of random values for the gear hash (splitmix64 of 0..255):
// the cut points, and so the pieces' names, depend on it.
const std::array<uint64_t, 256>& Gear() {
  static const std::array<uint64_t, 256> table = [] {
    std::array<uint64_t, 256> t{};
    uint64_t x = 0;
    for (uint64_t& v : t) {
      uint64_t z = (x += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      v = z ^ (z >> 31);
    }
    return t;
  }();
  return table;
}

}  // namespace

std::vector<std::string_view> CutPieces(std::string_view bytes) {
  const auto& gear = Gear();
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (start < bytes.size()) {
    const size_t limit = std::min(bytes.size(), start + kMaxPiece);
    size_t end = limit;
    uint64_t h = 0;
    for (size_t i = start; i < limit; ++i) {
      h = (h << 1) + gear[static_cast<uint8_t>(bytes[i])];
      if (i + 1 - start >= kMinPiece && (h & kCutMask) == 0) {
        end = i + 1;
        break;
      }
    }
    pieces.push_back(bytes.substr(start, end - start));
    start = end;
  }
  return pieces;
}

std::string EncodeManifest(const std::vector<chunks::RemoteRef>& pieces) {
  std::string out(kManifestHeader);
  out += '\n';
  for (const chunks::RemoteRef& p : pieces) out += chunks::EncodeRemoteRef(p) + "\n";
  return out;
}

Result<std::vector<chunks::RemoteRef>> DecodeManifest(std::string_view body,
                                                      const std::string& what) {
  auto bad = [&] { return Corruption("remote object " + what + " is not a Strata manifest"); };
  std::istringstream in{std::string(body)};
  std::string line;
  if (!std::getline(in, line) || line != kManifestHeader) return bad();
  std::vector<chunks::RemoteRef> pieces;
  while (std::getline(in, line)) {
    chunks::RemoteRef ref;
    if (!chunks::DecodeRemoteRef(line, &ref) || !ref.remote.empty()) return bad();
    pieces.push_back(std::move(ref));
  }
  if (pieces.empty()) return bad();
  return pieces;
}

}  // namespace strata::remote
