// SandboxSpec to and from one line of JSON: how the supervisor hands the
// spec to the sandbox's init, which is a fresh process.
#ifndef STRATA_SANDBOX_SPEC_CODEC_H_
#define STRATA_SANDBOX_SPEC_CODEC_H_

#include <string>
#include <string_view>

#include "sandbox/sandbox.h"

namespace strata::sandbox {

std::string EncodeSpec(const SandboxSpec& spec);
Result<SandboxSpec> DecodeSpec(std::string_view line);

}  // namespace strata::sandbox

#endif  // STRATA_SANDBOX_SPEC_CODEC_H_
