#include "sandbox/seccomp_policy.h"

#include <linux/sched.h>
#include <seccomp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

namespace strata::sandbox {

namespace {

// Denied with EPERM by the default policy.
constexpr const char* kDenied[] = {
    // Mounts, namespaces and the root.
    "mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    // Kernel attack surface and host control.
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "create_module",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "reboot", "swapon",
    "swapoff", "syslog", "acct", "quotactl", "quotactl_fd", "lookup_dcookie", "iopl", "ioperm",
    "nfsservctl", "uselib", "vm86", "vm86old", "_sysctl", "sysfs", "ustat",
    "fanotify_init", "name_to_handle_at", "open_by_handle_at",
    // Clocks.
    "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", "settimeofday",
    "stime", "adjtimex",
};

// clone with any of these flags is denied.
constexpr unsigned long kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,
                                             CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                             CLONE_NEWCGROUP, 0x00000080 /* CLONE_NEWTIME */};
constexpr int kDeniedFamilies[] = {AF_ALG, AF_VSOCK};

Status Check(int rc, const std::string& what) {
  if (rc == 0) return Status::Ok();
  return Internal("seccomp: " + what + ": " + std::strerror(-rc));
}

// A rule for each ABI of the filter; names unknown to this kernel are skipped.
Status AddRule(scmp_filter_ctx ctx, uint32_t action, const char* name, unsigned count = 0,
               const scmp_arg_cmp* args = nullptr) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return Status::Ok();
  return Check(seccomp_rule_add_array(ctx, action, nr, count, args), std::string("rule for ") + name);
}

Result<scmp_filter_ctx> NewContext(uint32_t default_action) {
  scmp_filter_ctx ctx = seccomp_init(default_action);
  if (ctx == nullptr) return Internal("seccomp_init failed");
  // Docker's profile covers the same three ABIs: an x86-64 process can make
  // i386 (int 0x80) and x32 system calls, which must meet the same rules.
  for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
    if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
      int rc = seccomp_arch_add(ctx, arch);
      if (rc != 0 && rc != -EEXIST) {
        seccomp_release(ctx);
        return Internal("seccomp_arch_add failed");
      }
    }
  }
  // no_new_privs is set by the launcher itself, explicitly, before loading.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  return ctx;
}

Result<uint32_t> ParseAction(const std::string& name, int64_t errno_ret) {
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") {
    // The kernel returns -errno_ret; libseccomp refuses anything past 4095.
    if (errno_ret < 0 || errno_ret > 4095) {
      return InvalidArgument("errno " + std::to_string(errno_ret) + " is not between 0 and 4095");
    }
    return SCMP_ACT_ERRNO(static_cast<uint32_t>(errno_ret));
  }
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return InvalidArgument("unknown seccomp action '" + name + "'");
}

Result<scmp_compare> ParseOp(const std::string& op) {
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  return InvalidArgument("unknown seccomp comparison '" + op + "'");
}

}  // namespace

SeccompFilter::~SeccompFilter() { seccomp_release(static_cast<scmp_filter_ctx>(ctx_)); }

Result<std::unique_ptr<SeccompFilter>> SeccompFilter::Default() {
  ASSIGN_OR_RETURN(scmp_filter_ctx ctx, NewContext(SCMP_ACT_ALLOW));
  std::unique_ptr<SeccompFilter> filter(new SeccompFilter(ctx));
  const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDenied) RETURN_IF_ERROR(AddRule(ctx, eperm, name));
  for (unsigned long flag : kNamespaceFlags) {
    // Spelled out: libseccomp's SCMP_A0 macro is a C compound literal.
    const scmp_arg_cmp arg{0, SCMP_CMP_MASKED_EQ, flag, flag};
    RETURN_IF_ERROR(AddRule(ctx, eperm, "clone", 1, &arg));
  }
  RETURN_IF_ERROR(AddRule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3"));
  for (int family : kDeniedFamilies) {
    const scmp_arg_cmp arg{0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(family), 0};
    RETURN_IF_ERROR(AddRule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, &arg));
  }
  return filter;
}

Result<std::unique_ptr<SeccompFilter>> SeccompFilter::FromProfile(const std::string& json_text) {
  nlohmann::json profile = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!profile.is_object()) return InvalidArgument("the seccomp profile is not a JSON object");
  auto text = [](const nlohmann::json& j, const char* key) -> std::string {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
  };
  auto number = [](const nlohmann::json& j, const char* key, int64_t fallback) -> int64_t {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : fallback;
  };
  const int64_t default_errno = number(profile, "defaultErrnoRet", EPERM);
  ASSIGN_OR_RETURN(uint32_t default_action,
                   ParseAction(text(profile, "defaultAction"), default_errno));
  ASSIGN_OR_RETURN(scmp_filter_ctx ctx, NewContext(default_action));
  std::unique_ptr<SeccompFilter> filter(new SeccompFilter(ctx));
  if (!profile.contains("syscalls")) return filter;
  if (!profile["syscalls"].is_array()) return InvalidArgument("\"syscalls\" must be an array");
  for (const auto& rule : profile["syscalls"]) {
    if (!rule.is_object()) return InvalidArgument("each entry of \"syscalls\" must be an object");
    ASSIGN_OR_RETURN(uint32_t action,
                     ParseAction(text(rule, "action"), number(rule, "errnoRet", EPERM)));
    if (action == default_action) continue;  // libseccomp refuses such rules
    std::vector<scmp_arg_cmp> args;
    if (rule.contains("args") && rule["args"].is_array()) {
      for (const auto& a : rule["args"]) {
        if (!a.is_object()) return InvalidArgument("each \"args\" entry must be an object");
        ASSIGN_OR_RETURN(scmp_compare op, ParseOp(text(a, "op")));
        int64_t index = number(a, "index", -1);
        if (index < 0 || index > 5) return InvalidArgument("argument index must be 0 to 5");
        args.push_back({static_cast<unsigned>(index), op,
                        static_cast<scmp_datum_t>(number(a, "value", 0)),
                        static_cast<scmp_datum_t>(number(a, "valueTwo", 0))});
      }
    }
    std::vector<std::string> names;
    if (rule.contains("names") && rule["names"].is_array()) {
      for (const auto& n : rule["names"]) {
        if (n.is_string()) names.push_back(n.get<std::string>());
      }
    }
    if (!text(rule, "name").empty()) names.push_back(text(rule, "name"));
    for (const std::string& name : names) {
      // What libseccomp refuses here comes from the profile (say, two
      // conditions on one argument), so it is the profile's error.
      Status added = AddRule(ctx, action, name.c_str(), static_cast<unsigned>(args.size()),
                             args.empty() ? nullptr : args.data());
      if (!added.ok()) return InvalidArgument("rule for '" + name + "': " + added.message());
    }
  }
  return filter;
}

Status SeccompFilter::Load() {
  return Check(seccomp_load(static_cast<scmp_filter_ctx>(ctx_)), "load");
}

}  // namespace strata::sandbox
