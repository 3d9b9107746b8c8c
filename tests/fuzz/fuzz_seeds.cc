// Writes the binary seed inputs of the fuzz targets to DIR/<target>/:
// tarballs (WriteTar of the sample session, and hand-made ustar/GNU/pax
// archives reaching the importer's special cases), the sample bundle in each
// mode of bundle_import_fuzz, and pseudo-random operation programs for
// ops_fuzz. Deterministic, so CTest runs start from the same seeds.
//
// Usage: fuzz_seeds DIR
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "samples.h"

namespace strata::fuzz {
namespace {

void Put(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(dir);
  WriteFileOrDie(dir + "/" + name, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// One tar entry, written as a ustar header (typeflag as given) and its data.
struct TarEntry {
  std::string name;
  char type = '0';
  std::string data;  // file contents, or a pax/GNU long-name payload
  std::string link;  // symlink target or hard link name
  unsigned mode = 0644;
};

TarEntry E(std::string name, char type, std::string data = "", std::string link = "",
           unsigned mode = 0644) {
  return TarEntry{std::move(name), type, std::move(data), std::move(link), mode};
}

void Octal(char* field, size_t width, uint64_t value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}

std::string Ustar(const std::vector<TarEntry>& entries) {
  std::string out;
  for (const TarEntry& e : entries) {
    char h[512] = {};
    std::strncpy(h, e.name.c_str(), 100);
    Octal(h + 100, 8, e.mode);
    Octal(h + 108, 8, 1000);
    Octal(h + 116, 8, 1000);
    Octal(h + 124, 12, e.data.size());
    Octal(h + 136, 12, 1700000000);
    std::memset(h + 148, ' ', 8);
    h[156] = e.type;
    std::strncpy(h + 157, e.link.c_str(), 100);
    std::memcpy(h + 257,
                "ustar\0"
                "00",
                8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    out.append(h, 512);
    out += e.data;
    out.append((512 - e.data.size() % 512) % 512, '\0');
  }
  out.append(1024, '\0');
  return out;
}

// A pax record "LEN key=value\n" (LEN counts the whole record).
std::string Pax(const std::string& key, const std::string& value) {
  std::string body = " " + key + "=" + value + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) ++len;
  return std::to_string(len) + body;
}

void TarSeeds(const std::string& dir) {
  Put(dir, "sample.tar", SampleTar());
  Put(dir, "basic.tar",
      Ustar({E("./", '5', "", "", 0755), E("./d/", '5', "", "", 0700), E("./d/f", '0', "hello\n"),
             E("./d/l", '2', "", "f"), E("./h", '1', "", "d/f"), E("./p", '6', "", "", 0600),
             E("./dev", '3', "", "")}));
  Put(dir, "escape.tar", Ustar({E("a/../../x", '0', "x")}));
  Put(dir, "replace.tar", Ustar({E("a", '0', "1"), E("a", '2', "", "b"), E("a/", '5')}));
  Put(dir, "gnu-longname.tar",
      Ustar({E("././@LongLink", 'L', std::string(150, 'n') + '\0'), E("x", '0', "long")}));
  Put(dir, "pax.tar",
      Ustar({E("pax", 'x',
               Pax("path", "dir/pax-file") + Pax("mtime", "1700000000.5") +
                   Pax("SCHILY.xattr.user.k", "v") + Pax("uid", "4000000000")),
             E("ignored", '0', "pax data")}));
  Put(dir, "pax-sparse.tar",
      Ustar({E("pax", 'x',
               Pax("GNU.sparse.size", "1000000") + Pax("GNU.sparse.numblocks", "1") +
                   Pax("GNU.sparse.offset", "65536") + Pax("GNU.sparse.numbytes", "4") +
                   Pax("GNU.sparse.name", "sparse")),
             E("sparse", '0', "data")}));
}

void BundleSeeds(const std::string& dir) {
  const std::string bundle = SampleBundle(4096);
  Put(dir, "raw.bundle", std::string(1, '\0') + bundle);
  Put(dir, "resealed.bundle", std::string(1, '\1') + bundle);
  std::mt19937 rng(7);
  for (int i = 0; i < 8; ++i) {
    std::string program(1, '\2');
    for (int k = 0; k < 24; ++k) program += static_cast<char>(rng());
    Put(dir, "edits-" + std::to_string(i), program);
  }
}

void OpsSeeds(const std::string& dir) {
  std::mt19937 rng(11);
  for (size_t size : {32, 128, 512, 2048}) {
    std::string program;
    for (size_t k = 0; k < size; ++k) program += static_cast<char>(rng());
    Put(dir, "random-" + std::to_string(size), program);
  }
}

}  // namespace
}  // namespace strata::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  strata::fuzz::TarSeeds(dir + "/tar_import_fuzz");
  strata::fuzz::BundleSeeds(dir + "/bundle_import_fuzz");
  strata::fuzz::OpsSeeds(dir + "/ops_fuzz");
  return 0;
}
