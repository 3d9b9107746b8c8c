// The control socket of a mounted session. The daemon serving a session
// listens on a Unix socket so that other processes (the CLI) can ask it for
// what only it can do correctly while it holds buffered writes: a snapshot
// that includes them, or a flush before reading the live head.
//
// Protocol: one request per connection, one JSON object per line each way:
//   {"op":"snapshot","name":"..."}  -> {"ok":true,"branch":B,"version":V}
//   {"op":"flush"}                  -> {"ok":true}
//   {"op":"status"}                 -> {"ok":true,"pid":P,"session":S,"branch":B}
// Errors: {"ok":false,"error":"...","errno":E}.
#ifndef STRATA_CONTROL_CONTROL_H_
#define STRATA_CONTROL_CONTROL_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "strata/filesystem.h"
#include "strata/status.h"
#include "strata/store.h"

namespace strata::control {

// Where the daemon of (store, session) listens: a name derived from both, in
// /run/strata (root) or $XDG_RUNTIME_DIR/strata, else /tmp/strata-UID.
std::string SocketPath(const std::string& store_path, const std::string& session);

class ControlServer {
 public:
  // Listens at SocketPath(store, session). Fails with Busy if a live daemon
  // already serves this session; a stale socket left by a dead one is replaced.
  //
  // `drain`, if set, runs before every snapshot and flush: the FUSE daemon
  // passes one that makes the kernel send the writes still in its page cache
  // (writeback cache), so a snapshot holds every write() that had returned.
  static Result<std::unique_ptr<ControlServer>> Start(Store& store, Filesystem& fs,
                                                      const std::string& session,
                                                      std::function<Status()> drain = nullptr);
  ~ControlServer();  // stops the thread, removes the socket
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }

 private:
  ControlServer(Store& store, Filesystem& fs, std::string session, std::string path, int fd,
                std::function<Status()> drain);
  void Serve();
  nlohmann::json Handle(const nlohmann::json& request);

  Store& store_;
  Filesystem& fs_;
  const std::string session_;
  const std::string path_;
  const int listen_fd_;
  const std::function<Status()> drain_;
  int wake_[2] = {-1, -1};  // written to stop Serve()
  std::thread thread_;
};

// Sends one request to the daemon of (store, session). NotFound when no daemon
// serves the session (no socket, or a stale one).
Result<nlohmann::json> Call(const std::string& store_path, const std::string& session,
                            const nlohmann::json& request);

}  // namespace strata::control

#endif  // STRATA_CONTROL_CONTROL_H_
