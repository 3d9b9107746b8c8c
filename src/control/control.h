// The control socket of a mounted session. The daemon serving a session
// listens on a Unix socket so that other processes (the CLI) can ask it for
// what only it can do correctly while it holds buffered writes: a snapshot
// that includes them, or a flush before reading the live head.
//
// Protocol: one request per connection, one JSON object per line each way:
//   {"op":"snapshot","name":"..."}  -> {"ok":true,"id":I,"branch":B,"version":V}
//   {"op":"fork","session":"..."}   -> {"ok":true,"branch":C}: a new session
//       whose branch C starts from this session's state at one instant;
//       with "branch":B,"version":V, from that frozen view instead
//   {"op":"flush"}                  -> {"ok":true}
//   {"op":"status"}                 -> {"ok":true,"pid":P,"session":S,"branch":B,
//                                       "mountpoint":M}
//   {"op":"quota","bytes":N|null}  -> {"ok":true}: Filesystem::SetGrowthLimit
//   {"op":"lease"}                  -> {"ok":true,"mountpoint":M}, and the
//       connection stays open: the client uses the mount until it closes it.
//       A daemon started for `strata run` unmounts and exits when its last
//       lease ends; once it has decided to, it refuses leases (Busy).
// Errors: {"ok":false,"error":"...","errno":E,"code":C} (C: the Status code).
#ifndef STRATA_CONTROL_CONTROL_H_
#define STRATA_CONTROL_CONTROL_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"
#include "strata/filesystem.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::control {

// Where the daemon of (store, session) listens: a name derived from both, in
// /run/strata (root) or $XDG_RUNTIME_DIR/strata, else /tmp/strata-UID.
std::string SocketPath(const std::string& store_path, const std::string& session);

// Where `strata run` mounts a session that no one has mounted: a directory
// named like the socket, under <runtime dir>/mnt.
std::string RunMountPath(const std::string& store_path, const std::string& session);

struct ControlOptions {
  // If set, snapshot, fork and flush run their commit through it: the FUSE
  // daemon passes FuseServer::Cut, which makes the kernel send the writes
  // still in its page cache and holds new ones while the commit runs, so
  // that a snapshot holds every write() that had returned and is one
  // instant of the whole session.
  std::function<Status(const std::function<Status()>& commit)> cut;
  // Where the session is mounted (reported by status and lease).
  std::string mountpoint;
  // If set, leases are refused (Busy) while it returns false: the server
  // starts before the mount does, and a lease promises a mounted session.
  std::function<bool()> mounted;
  // If set, called (on the server's thread) when the last lease ends, or
  // when no lease came within `first_lease_timeout` of the mount (its client
  // died before taking one); after that, leases are refused. Never called
  // before `mounted` returns true; called again every 200 ms while `mounted`
  // still returns true (an unmount that failed is retried, never left half
  // done with every lease refused).
  std::function<void()> on_idle;
  std::chrono::milliseconds first_lease_timeout{10'000};
};

class ControlServer {
 public:
  // Listens at SocketPath(store, session). Fails with Busy if a live daemon
  // already serves this session; a stale socket left by a dead one is
  // replaced. Of servers started at once for one session, exactly one
  // succeeds, and no other can start until it is destroyed: whoever holds
  // one may use the session's mount point.
  static Result<std::unique_ptr<ControlServer>> Start(Store& store, Filesystem& fs,
                                                      const std::string& session,
                                                      ControlOptions options = {});
  ~ControlServer();  // stops the thread, removes the socket
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }

 private:
  ControlServer(Store& store, Filesystem& fs, std::string session, std::string path, int fd,
                ControlOptions options);
  void Serve();
  void Accept();
  nlohmann::json Handle(const nlohmann::json& request);

  Store& store_;
  Filesystem& fs_;
  const std::string session_;
  const std::string path_;
  const int listen_fd_;
  const ControlOptions options_;
  int wake_[2] = {-1, -1};  // written to stop Serve()
  std::vector<int> leases_;  // open lease connections; only Serve's thread
  bool idle_ = false;        // on_idle has run; only Serve's thread
  bool leased_ = false;      // a lease was ever taken; only Serve's thread
  std::thread thread_;
  UniqueFd lock_;  // the session's lock (last member: released last)
};

// Sends one request to the daemon of (store, session). NotFound when no daemon
// serves the session (no socket, or a stale one).
Result<nlohmann::json> Call(const std::string& store_path, const std::string& session,
                            const nlohmann::json& request);

// A lease on a mounted session (see "lease" above): the mount stays up while
// the lease is held. Closing the connection ends it.
class Lease {
 public:
  Lease(int fd, std::string mountpoint) : fd_(fd), mountpoint_(std::move(mountpoint)) {}
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  const std::string& mountpoint() const { return mountpoint_; }

 private:
  int fd_;
  std::string mountpoint_;
};

// Takes a lease from the daemon of (store, session). NotFound when no daemon
// serves the session; Busy when its daemon is unmounting.
Result<std::unique_ptr<Lease>> TakeLease(const std::string& store_path,
                                         const std::string& session);

}  // namespace strata::control

#endif  // STRATA_CONTROL_CONTROL_H_
