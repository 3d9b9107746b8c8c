#include "remote/net_api.h"

#include <dlfcn.h>

#include <string>

namespace strata::remote {

namespace {

Status Open(const char* soname, const char* package, void** lib) {
  *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (*lib == nullptr) {
    return Status(Code::kNotSupported, std::string("cannot load ") + soname + " (" + dlerror() +
                                           "); install it: apt-get install " + package);
  }
  return Status::Ok();
}

}  // namespace

Result<const NetApi*> LoadNetApi() {
  static NetApi api;
  static Status loaded = [] {
    void* curl = nullptr;
    void* crypto = nullptr;
    RETURN_IF_ERROR(Open("libcurl.so.4", "libcurl4", &curl));
    RETURN_IF_ERROR(Open("libcrypto.so.3", "libssl3", &crypto));
#define STRATA_NET_RESOLVE(lib, name)                                                  \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(lib, #name));                \
  if (api.name == nullptr) {                                                           \
    return Status(Code::kNotSupported, "no " #name " in " #lib "; upgrade it");      \
  }
#define STRATA_CURL_RESOLVE(name) STRATA_NET_RESOLVE(curl, name)
#define STRATA_CRYPTO_RESOLVE(name) STRATA_NET_RESOLVE(crypto, name)
    STRATA_CURL_FUNCTIONS(STRATA_CURL_RESOLVE)
    STRATA_CRYPTO_FUNCTIONS(STRATA_CRYPTO_RESOLVE)
#undef STRATA_CRYPTO_RESOLVE
#undef STRATA_CURL_RESOLVE
#undef STRATA_NET_RESOLVE
    if (api.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      return Status(Code::kInternal, "curl_global_init failed");
    }
    return Status::Ok();
  }();
  RETURN_IF_ERROR(loaded);
  return &api;
}

Sha256 Sha256Of(const NetApi& api, std::string_view bytes) {
  Sha256 out{};
  unsigned int n = 0;
  api.EVP_Digest(bytes.data(), bytes.size(), out.data(), &n, api.EVP_sha256(), nullptr);
  return out;
}

std::string Hex(const uint8_t* bytes, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

}  // namespace strata::remote
