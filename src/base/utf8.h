// Text checks shared by the core.
#ifndef STRATA_BASE_UTF8_H_
#define STRATA_BASE_UTF8_H_

#include <string_view>

namespace strata {

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF), so that it prints and serializes as JSON strings.
bool IsUtf8(std::string_view s);

}  // namespace strata

#endif  // STRATA_BASE_UTF8_H_
