// libcurl and libcrypto (SHA-256), loaded on first use.
//
// As with libarchive (store/archive_api.h): linking libcurl makes every
// strata process load it and the thirty libraries it needs (TLS, HTTP/2,
// LDAP, ...), several milliseconds of each start that `strata run` and
// every snapshot would pay. Only the commands that talk to a remote need
// them, so they are opened with dlopen then. The declarations come from the
// libraries' own headers, so the compiler checks every call.
#ifndef STRATA_REMOTE_NET_API_H_
#define STRATA_REMOTE_NET_API_H_

#include <curl/curl.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "strata/status.h"

namespace strata::remote {

#define STRATA_CURL_FUNCTIONS(X)                                                              \
  X(curl_global_init) X(curl_easy_init) X(curl_easy_cleanup) X(curl_easy_setopt)            \
  X(curl_easy_perform) X(curl_easy_getinfo) X(curl_easy_strerror) X(curl_easy_reset)        \
  X(curl_easy_escape) X(curl_free) X(curl_slist_append) X(curl_slist_free_all)

#define STRATA_CRYPTO_FUNCTIONS(X) X(EVP_Digest) X(EVP_sha256)

struct NetApi {
#define STRATA_NET_POINTER(name) decltype(&::name) name = nullptr;
  STRATA_CURL_FUNCTIONS(STRATA_NET_POINTER)
  STRATA_CRYPTO_FUNCTIONS(STRATA_NET_POINTER)
#undef STRATA_NET_POINTER
};

// The loaded libraries, initialized (once per process; thread-safe).
// NotSupported, saying what to install, when either is missing.
Result<const NetApi*> LoadNetApi();

using Sha256 = std::array<uint8_t, 32>;
Sha256 Sha256Of(const NetApi& api, std::string_view bytes);
std::string Hex(const uint8_t* bytes, size_t n);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_NET_API_H_
