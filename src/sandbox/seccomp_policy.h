// The sandbox's seccomp filter, built with libseccomp.
//
// The default policy follows Docker's default profile where it matters for
// escaping or attacking the host: it denies (EPERM) the mount API, namespace
// creation and entry, pivot_root, chroot, bpf, perf_event_open, the kernel
// keyring, kexec, module loading, userfaultfd, io_uring, reboot, swap, clock
// setting, file handles, and sockets of families AF_ALG and AF_VSOCK; clone3
// gets ENOSYS (its flags cannot be inspected; libc falls back to clone).
// Everything else is allowed. The rules apply to the x86-64, x32 and i386
// system call ABIs alike; any other ABI kills the process.
//
// A profile in Docker's JSON format replaces the default (--seccomp=FILE).
#ifndef STRATA_SANDBOX_SECCOMP_POLICY_H_
#define STRATA_SANDBOX_SECCOMP_POLICY_H_

#include <memory>
#include <string>

#include "strata/status.h"

namespace strata::sandbox {

// A filter ready to load (libseccomp's context, owned).
class SeccompFilter {
 public:
  ~SeccompFilter();
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;

  // The default policy described above.
  static Result<std::unique_ptr<SeccompFilter>> Default();
  // A Docker-format profile: "defaultAction", optional "defaultErrnoRet",
  // "syscalls": [{"names": [...], "action": ..., "errnoRet": N,
  // "args": [{"index", "value", "valueTwo", "op"}]}]. Actions: SCMP_ACT_ALLOW,
  // SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP,
  // SCMP_ACT_LOG. Names this kernel does not know are skipped, like Docker.
  static Result<std::unique_ptr<SeccompFilter>> FromProfile(const std::string& json_text);

  // Installs the filter in the calling thread (after no_new_privs). Async-
  // signal-safe enough for the child of a clone: no allocation.
  Status Load();

 private:
  explicit SeccompFilter(void* ctx) : ctx_(ctx) {}
  void* ctx_;  // scmp_filter_ctx
};

}  // namespace strata::sandbox

#endif  // STRATA_SANDBOX_SECCOMP_POLICY_H_
