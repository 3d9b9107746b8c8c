#include "control/control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <type_traits>

#include "base/unique_fd.h"

namespace strata::control {

namespace {

std::string RuntimeDir() {
  if (getuid() == 0) return "/run/strata";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/strata";
  }
  return "/tmp/strata-" + std::to_string(getuid());
}

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return InvalidArgument("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Connects to `path`; -1 with errno set on failure.
int Connect(const std::string& path) {
  auto addr = Address(path);
  if (!addr.ok()) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads one line (without the newline); false on error or EOF before it.
bool ReadLine(int fd, std::string* line) {
  line->clear();
  char c;
  for (;;) {
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (c == '\n') return true;
    if (line->size() > (1 << 20)) return false;
    line->push_back(c);
  }
}

// A field of a request or reply, or `otherwise` when it is missing or of
// another type (nlohmann's value() would throw, and nothing here may).
template <typename T>
T Field(const nlohmann::json& object, const char* name, T otherwise) {
  auto it = object.find(name);
  if (it == object.end()) return otherwise;
  if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->get<bool>() : otherwise;
  } else if constexpr (std::is_integral_v<T>) {
    return it->is_number_integer() ? it->get<T>() : otherwise;
  } else {
    return it->is_string() ? it->get<std::string>() : otherwise;
  }
}

nlohmann::json ErrorReply(const Status& s) {
  return {{"ok", false},
          {"error", s.message()},
          {"errno", s.ToErrno()},
          {"code", static_cast<int>(s.code())}};
}

}  // namespace

std::string SocketPath(const std::string& store_path, const std::string& session) {
  std::error_code ec;
  std::string canonical = std::filesystem::weakly_canonical(store_path, ec).string();
  if (ec) canonical = store_path;
  std::string key = canonical + '\0' + session;
  char hex[17];
  snprintf(hex, sizeof(hex), "%016llx",
           static_cast<unsigned long long>(XXH3_64bits(key.data(), key.size())));
  return RuntimeDir() + "/" + hex + ".sock";
}

std::string RunMountPath(const std::string& store_path, const std::string& session) {
  std::filesystem::path socket(SocketPath(store_path, session));
  return (socket.parent_path() / "mnt" / socket.stem()).string();
}

namespace {

// The file whose lock makes its holder the only daemon of a session, next
// to the session's socket.
std::string LockPath(const std::string& socket_path) {
  return std::filesystem::path(socket_path).replace_extension(".lock").string();
}

// Takes the lock at `path`. It is released when the descriptor closes, so
// also when the holder dies. The holder unlinks the file before it lets go;
// whoever locked the unlinked file in the meantime holds nothing and tries
// again on a new file.
Result<UniqueFd> LockSession(const std::string& path, const std::string& session) {
  for (;;) {
    UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
    while (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK) {
        return Status(Code::kBusy, "session '" + session + "' is already mounted by another daemon");
      }
      return IoError("cannot lock " + path + ": " + std::strerror(errno));
    }
    struct stat held, named;
    if (fstat(fd.get(), &held) == 0 && stat(path.c_str(), &named) == 0 &&
        held.st_ino == named.st_ino && held.st_dev == named.st_dev) {
      return fd;
    }
  }
}

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::Start(Store& store, Filesystem& fs,
                                                            const std::string& session,
                                                            ControlOptions options) {
  std::string path = SocketPath(store.path(), session);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  // Traversable, not listable: sockets are 0600, and run mounts below must
  // be reachable by a sandbox in a user namespace.
  chmod(std::filesystem::path(path).parent_path().c_str(), 0711);
  // Checking for a live socket and then replacing it would let two daemons
  // starting at once both listen (the second unlinking the first's socket)
  // and both mount: the lock decides which one serves.
  ASSIGN_OR_RETURN(UniqueFd lock, LockSession(LockPath(path), session));
  unlink(path.c_str());  // stale: its daemon is gone
  ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return IoError("socket: " + std::string(std::strerror(errno)));
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd.get(), 16) != 0) {
    return IoError("cannot listen on " + path + ": " + std::strerror(errno));
  }
  chmod(path.c_str(), 0600);
  auto server = std::unique_ptr<ControlServer>(
      new ControlServer(store, fs, session, path, fd.release(), std::move(options)));
  server->lock_ = std::move(lock);
  if (pipe2(server->wake_, O_CLOEXEC) != 0) return IoError("pipe failed");
  server->thread_ = std::thread([s = server.get()] { s->Serve(); });
  return server;
}

ControlServer::ControlServer(Store& store, Filesystem& fs, std::string session, std::string path,
                             int fd, ControlOptions options)
    : store_(store),
      fs_(fs),
      session_(std::move(session)),
      path_(std::move(path)),
      listen_fd_(fd),
      options_(std::move(options)) {}

ControlServer::~ControlServer() {
  if (thread_.joinable()) {
    (void)!write(wake_[1], "x", 1);
    thread_.join();
  }
  unlink(path_.c_str());
  unlink(LockPath(path_).c_str());  // before lock_ is released: see LockSession
  close(listen_fd_);
  for (int fd : leases_) close(fd);
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

void ControlServer::Serve() {
  // The wait for a first lease starts once the session is mounted: leases
  // are refused before, and unmounting before the mount is up would leave a
  // mount that nobody can lease or unmount.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  for (;;) {
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (int fd : leases_) fds.push_back({fd, POLLIN, 0});
    int timeout = -1;
    const bool awaiting_first_lease = options_.on_idle && !leased_ && !idle_;
    const bool unmount_pending = idle_ && options_.mounted && options_.mounted();
    if (unmount_pending) timeout = 200;
    if (awaiting_first_lease) {
      if (!deadline && (!options_.mounted || options_.mounted())) {
        deadline = std::chrono::steady_clock::now() + options_.first_lease_timeout;
      }
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            *deadline - std::chrono::steady_clock::now());
        timeout = static_cast<int>(std::max<int64_t>(0, left.count()));
      } else {
        timeout = 10;  // ms until `mounted` is asked again
      }
    }
    int ready = poll(fds.data(), fds.size(), timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (ready == 0) {
      if (unmount_pending) {
        options_.on_idle();  // the mount is still up: unmount again
        continue;
      }
      if (!deadline) continue;  // not mounted yet
      // Nobody came for the mount this daemon was started for.
      idle_ = true;
      options_.on_idle();
      continue;
    }
    if (fds[0].revents != 0) return;
    // A lease ends when its client closes the connection (or dies).
    for (size_t i = fds.size(); i-- > 2;) {
      if (fds[i].revents == 0) continue;
      close(fds[i].fd);
      leases_.erase(leases_.begin() + static_cast<ptrdiff_t>(i - 2));
      if (leases_.empty() && options_.on_idle && !idle_) {
        idle_ = true;
        options_.on_idle();
      }
    }
    if (fds[1].revents != 0) Accept();
  }
}

void ControlServer::Accept() {
  UniqueFd conn(accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC));
  if (conn.get() < 0) return;
  // One request at a time: requests are short and this keeps them ordered.
  std::string line;
  if (!ReadLine(conn.get(), &line)) return;
  nlohmann::json request = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_object() && Field<std::string>(request, "op", "") == "lease") {
    nlohmann::json reply =
        idle_ ? ErrorReply(Status(Code::kBusy, "the daemon is unmounting the session"))
        : options_.mounted && !options_.mounted()
            ? ErrorReply(Status(Code::kBusy, "the session's mount is not up (its daemon is starting or stopping)"))
            : nlohmann::json{{"ok", true}, {"mountpoint", options_.mountpoint}};
    if (WriteAll(conn.get(), reply.dump() + "\n") && !idle_) {
      leases_.push_back(conn.release());
      leased_ = true;
    }
    return;
  }
  nlohmann::json reply = request.is_object()
                             ? Handle(request)
                             : ErrorReply(InvalidArgument("request is not a JSON object"));
  (void)WriteAll(conn.get(), reply.dump() + "\n");
}

nlohmann::json ControlServer::Handle(const nlohmann::json& request) {
  const std::string op = Field<std::string>(request, "op", "");
  View view = fs_.view();
  auto at_one_instant = [&](const std::function<Status()>& commit) {
    return options_.cut ? options_.cut(commit) : commit();
  };
  if (op == "snapshot") {
    std::string name;
    if (request.contains("name") && request["name"].is_string()) name = request["name"];
    // TakeSnapshot commits this daemon's buffered writes in the same
    // transaction that freezes the version.
    SnapshotInfo snap;
    Status s = at_one_instant([&]() -> Status {
      ASSIGN_OR_RETURN(snap, store_.TakeSnapshot(view.branch, name));
      return Status::Ok();
    });
    if (!s.ok()) return ErrorReply(s);
    return {{"ok", true}, {"id", snap.id}, {"branch", snap.branch}, {"version", snap.version}};
  }
  if (op == "fork") {
    if (!request.contains("session") || !request["session"].is_string()) {
      return ErrorReply(InvalidArgument("fork needs the new session's name"));
    }
    const std::string name = request["session"];
    BranchId child = 0;
    if (request.contains("version")) {  // a frozen view: no cut needed
      if (!request["branch"].is_number_unsigned() || !request["version"].is_number_unsigned()) {
        return ErrorReply(InvalidArgument("fork: branch and version must be numbers"));
      }
      auto forked = store_.Fork(
          View{request["branch"].get<BranchId>(), request["version"].get<Version>()}, name);
      if (!forked.ok()) return ErrorReply(forked.status());
      return {{"ok", true}, {"branch", *forked}};
    }
    Status s = at_one_instant([&]() -> Status {
      ASSIGN_OR_RETURN(child, store_.Fork(View{view.branch, kHead}, name));
      return Status::Ok();
    });
    if (!s.ok()) return ErrorReply(s);
    return {{"ok", true}, {"branch", child}};
  }
  if (op == "flush") {
    Status s = at_one_instant([&] { return fs_.FlushAll(); });
    if (!s.ok()) return ErrorReply(s);
    return {{"ok", true}};
  }
  if (op == "quota") {
    // The growth the session's files may still have, from now (null: none).
    if (request.contains("bytes") && request["bytes"].is_number_unsigned()) {
      fs_.SetGrowthLimit(request["bytes"].get<uint64_t>());
    } else {
      fs_.SetGrowthLimit(std::nullopt);
    }
    return {{"ok", true}};
  }
  if (op == "status") {
    return {{"ok", true},          {"pid", getpid()},
            {"session", session_}, {"branch", view.branch},
            {"mountpoint", options_.mountpoint}};
  }
  return ErrorReply(InvalidArgument("unknown op '" + op + "'"));
}

namespace {

// Sends one request and reads its reply, leaving the connection open in `fd`.
Result<nlohmann::json> Exchange(const std::string& store_path, const std::string& session,
                                const nlohmann::json& request, UniqueFd* fd) {
  std::string path = SocketPath(store_path, session);
  fd->reset(Connect(path));
  if (fd->get() < 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) {
      return NotFound("session '" + session + "' is not mounted");
    }
    return IoError("cannot reach the daemon at " + path + ": " + std::strerror(errno));
  }
  // A daemon closes its connections unanswered only when it exits, after it
  // has committed every write: the session is then as good as not mounted.
  auto exiting = [&] {
    return NotFound("session '" + session + "' is not mounted (its daemon is exiting)");
  };
  if (!WriteAll(fd->get(), request.dump() + "\n")) return exiting();
  std::string line;
  if (!ReadLine(fd->get(), &line)) return exiting();
  nlohmann::json reply = nlohmann::json::parse(line, nullptr, false);
  if (!reply.is_object()) return IoError("the daemon sent a malformed reply");
  if (!Field(reply, "ok", false)) {
    // The daemon's Status code; an older daemon sent only an errno.
    const int err = Field(reply, "errno", EIO);
    const int sent = Field(reply, "code", 0);
    Code code = sent > 0 && sent <= static_cast<int>(Code::kInternal) ? static_cast<Code>(sent)
                : err == EROFS                                        ? Code::kReadOnly
                : err == ENOSPC                                       ? Code::kNoSpace
                : err == EBUSY                                        ? Code::kBusy
                                                                      : Code::kIoError;
    return Status(code, Field<std::string>(reply, "error", "daemon error"));
  }
  return reply;
}

}  // namespace

Result<nlohmann::json> Call(const std::string& store_path, const std::string& session,
                            const nlohmann::json& request) {
  UniqueFd fd;
  return Exchange(store_path, session, request, &fd);
}

Lease::~Lease() { close(fd_); }

Result<std::unique_ptr<Lease>> TakeLease(const std::string& store_path,
                                         const std::string& session) {
  UniqueFd fd;
  ASSIGN_OR_RETURN(nlohmann::json reply, Exchange(store_path, session, {{"op", "lease"}}, &fd));
  std::string mountpoint = Field<std::string>(reply, "mountpoint", "");
  if (mountpoint.empty()) return IoError("the daemon of session '" + session + "' has no mount");
  return std::make_unique<Lease>(fd.release(), std::move(mountpoint));
}

}  // namespace strata::control
