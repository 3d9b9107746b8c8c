#include "sandbox/spec_codec.h"

#include <nlohmann/json.hpp>

namespace strata::sandbox {

std::string EncodeSpec(const SandboxSpec& s) {
  nlohmann::json binds = nlohmann::json::array();
  for (const BindMount& b : s.binds) {
    binds.push_back({{"host", b.host}, {"target", b.target}, {"ro", b.read_only}});
  }
  nlohmann::json rlimits = nlohmann::json::array();
  for (const ResourceLimit& r : s.rlimits) {
    rlimits.push_back({{"resource", r.resource}, {"soft", r.soft}, {"hard", r.hard}});
  }
  nlohmann::json j = {{"root", s.root},
                      {"argv", s.argv},
                      {"env", s.env},
                      {"cwd", s.cwd},
                      {"uid", s.uid},
                      {"gid", s.gid},
                      {"hostname", s.hostname},
                      {"net", s.network == Network::kHost ? "host" : "none"},
                      {"userns", s.user_namespace},
                      {"binds", binds},
                      {"rlimits", rlimits},
                      {"seccomp", s.seccomp_profile},
                      {"tty", s.tty}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<SandboxSpec> DecodeSpec(std::string_view line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InvalidArgument("malformed sandbox spec");
  SandboxSpec s;
  try {
    s.root = j.at("root").get<std::string>();
    s.argv = j.at("argv").get<std::vector<std::string>>();
    s.env = j.at("env").get<std::vector<std::string>>();
    s.cwd = j.at("cwd").get<std::string>();
    s.uid = j.at("uid").get<uid_t>();
    s.gid = j.at("gid").get<gid_t>();
    s.hostname = j.at("hostname").get<std::string>();
    s.network = j.at("net").get<std::string>() == "host" ? Network::kHost : Network::kNone;
    s.user_namespace = j.at("userns").get<bool>();
    for (const auto& b : j.at("binds")) {
      s.binds.push_back({b.at("host").get<std::string>(), b.at("target").get<std::string>(),
                         b.at("ro").get<bool>()});
    }
    for (const auto& r : j.at("rlimits")) {
      s.rlimits.push_back({r.at("resource").get<int>(), r.at("soft").get<rlim_t>(),
                           r.at("hard").get<rlim_t>()});
    }
    s.seccomp_profile = j.at("seccomp").get<std::string>();
    s.tty = j.at("tty").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("malformed sandbox spec: ") + e.what());
  }
  return s;
}

}  // namespace strata::sandbox
