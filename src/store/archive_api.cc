#include "store/archive_api.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace strata {

Result<const ArchiveApi*> LoadArchiveApi() {
  static ArchiveApi api;
  static Status loaded = [] {
    void* lib = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      return Status(Code::kNotSupported, std::string("cannot load libarchive (") + dlerror() +
                                             "); install it: apt-get install libarchive13");
    }
#define STRATA_ARCHIVE_RESOLVE(name)                                                  \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(lib, #name));               \
  if (api.name == nullptr) {                                                          \
    return Status(Code::kNotSupported, "libarchive has no " #name "; upgrade it");  \
  }
    STRATA_ARCHIVE_FUNCTIONS(STRATA_ARCHIVE_RESOLVE)
#undef STRATA_ARCHIVE_RESOLVE
    return Status::Ok();
  }();
  RETURN_IF_ERROR(loaded);
  return &api;
}

}  // namespace strata
