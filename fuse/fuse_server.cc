#include "fuse/fuse_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "fuse/server_state.h"

namespace strata::fuse {

namespace {

std::chrono::milliseconds MillisecondsUntil(std::chrono::steady_clock::time_point deadline) {
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()));
}

// Refuses a mount point that is missing, not a directory, or already a mount
// (a dead FUSE mount answers ENOTCONN).
Status CheckMountpoint(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return Status(Code::kBusy, "mount point " + path +
                                     " is a disconnected mount; run 'strata umount " + path + "'");
    }
    return Status(errno == ENOENT ? Code::kNotFound : Code::kIoError,
                  "mount point " + path + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return NotDir("mount point " + path + " is not a directory");
  std::string parent = std::filesystem::path(path).lexically_normal().parent_path().string();
  struct stat pst;
  if (!parent.empty() && stat(parent.c_str(), &pst) == 0 &&
      (pst.st_dev != st.st_dev || pst.st_ino == st.st_ino)) {
    return Status(Code::kBusy, "mount point " + path + " is already a mount");
  }
  return Status::Ok();
}

// Whether the kernel has ended the connection of `fd`, the session's
// /dev/fuse descriptor: from then on its poll answers POLLERR
// (fs/fuse/dev.c, fuse_dev_poll: !fiq->connected). fuse_abort_conn clears
// that a moment after the per-reader state a failed read saw, so this
// waits up to a second for it; a live connection answers POLLIN or
// nothing, and is not ended.
bool ConnectionEnded(int fd) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int rc = poll(&p, 1, 1000);
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0 && (p.revents & POLLERR) != 0;
  }
}

}  // namespace

Result<std::unique_ptr<FuseServer>> FuseServer::Mount(Filesystem& fs, const MountOptions& options,
                                                      std::unique_ptr<KernelDrainer> drainer) {
  std::string mountpoint = std::filesystem::absolute(options.mountpoint).lexically_normal();
  RETURN_IF_ERROR(CheckMountpoint(mountpoint));
  // Before the mount: the helper must never hold the /dev/fuse descriptor.
  if (drainer == nullptr) {
    ASSIGN_OR_RETURN(drainer, KernelDrainer::Start(mountpoint));
  }
  auto server = std::unique_ptr<FuseServer>(new FuseServer());
  server->state_ = std::make_unique<ServerState>();
  server->state_->fs = &fs;
  server->state_->timeout = options.timeout_seconds;
  server->max_threads_ = options.max_threads;
  server->mountpoint_ = mountpoint;
  server->drainer_ = std::move(drainer);

  // The kernel checks permissions against the modes and owners we report,
  // so a sandbox running as another uid is held to them.
  std::string opts = "fsname=" + options.fsname + ",subtype=strata,default_permissions";
  for (const auto& o : options.options) opts += "," + o;
  std::vector<std::string> argv_storage = {"strata", "-o", opts};
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  server->session_ = fuse_session_new(&args, &Operations(), sizeof(fuse_lowlevel_ops),
                                      server->state_.get());
  fuse_opt_free_args(&args);  // libfuse may have copied them
  if (server->session_ == nullptr) {
    return InvalidArgument("cannot start a FUSE session with options '" + opts + "'");
  }
  if (fuse_session_mount(server->session_, mountpoint.c_str()) != 0) {
    return IoError("cannot mount on " + mountpoint +
                   " (is /dev/fuse available and fusermount3 installed?)");
  }
  server->mounted_ = true;
  return server;
}

FuseServer::~FuseServer() {
  if (session_ == nullptr) return;
  if (signals_) fuse_remove_signal_handlers(session_);
  if (mounted_) fuse_session_unmount(session_);
  state_->cut.JoinResumer();  // it answers requests of the session
  fuse_session_destroy(session_);
}

Status FuseServer::InstallSignalHandlers() {
  if (fuse_set_signal_handlers(session_) != 0) return IoError("cannot install signal handlers");
  signals_ = true;
  return Status::Ok();
}

Status FuseServer::Run() {
  fuse_loop_config* config = fuse_loop_cfg_create();
  if (config == nullptr) return Internal("out of memory");
  // Only the total: libfuse's idle-thread limit makes workers exit and
  // restart, and is not meant to be set with the 3.12 API.
  fuse_loop_cfg_set_max_threads(config, max_threads_);
  int rc = fuse_session_loop_mt(session_, config);
  fuse_loop_cfg_destroy(config);
  // An unmount ends the connection (fuse_conn_destroy calls
  // fuse_abort_conn), and a read then fails with ENODEV, which libfuse
  // takes for the end. But a read that had just taken a request off the
  // queue (at a fresh mount, FUSE_INIT) when the unmount came fails with
  // ECONNABORTED instead (fs/fuse/dev.c, fuse_dev_do_read: "Must not put
  // request on fpq->io queue after having been shut down"), even though
  // libfuse 3 never asks for FUSE_ABORT_ERROR, the only case the kernel
  // means it for; libfuse reports it as a failure. It is the same end when
  // the connection is indeed over; otherwise it stays a failure.
  if (rc == -ECONNABORTED && ConnectionEnded(fuse_session_fd(session_))) return Status::Ok();
  // A signal value (SIGINT, SIGTERM) is a requested stop, not a failure.
  if (rc < 0) return IoError(std::string("FUSE loop failed: ") + std::strerror(-rc));
  return Status::Ok();
}

Status FuseServer::Cut(const std::function<Status()>& commit, std::chrono::milliseconds timeout) {
  std::scoped_lock one_at_a_time(cut_mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  CutGate& gate = state_->cut;
  // A process can hold one open file's inode lock while it waits for
  // another's, which a held fsync may hold (rename over an open file locks
  // both): then the first file's fsync can never arrive. A round that stops
  // making progress is abandoned (nothing committed, every lock released,
  // the rename goes through) and tried again, waiting longer each time.
  // Stuck means no fsync held or returned and no page of any file received
  // for `stall`: a large file's pages can take long, but keep coming.
  std::chrono::milliseconds stall(10);
  for (;;) {
    RETURN_IF_ERROR(FinishFsyncBatch(deadline));
    // No new open file from here on, and an fsync of every open file (only
    // those can have dirty pages: the kernel writes a file back before it
    // sends FLUSH on close), each held unanswered once it arrives: from
    // then until the end of the cut, each file is locked against writes.
    gate.Begin(drainer_->pid());
    Result<Round> round = HoldOpenFiles(deadline, stall);
    if (round.ok() && *round != Round::kHeld) {
      gate.End(0);  // nothing committed; every lock released
      if (*round == Round::kStalled) stall *= 2;
      continue;
    }
    Status s = round.status();
    if (s.ok()) s = commit();
    // The held fsyncs succeed when the commit made their data durable.
    gate.End(s.ok() ? 0 : s.ToErrno());
    return s;
  }
}

Result<FuseServer::Round> FuseServer::HoldOpenFiles(
    std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds stall) {
  // The files open now are drained while OPENs and CREATEs that came
  // before the cut finish; the files they open are drained next.
  CutGate& gate = state_->cut;
  std::set<InodeId> waiting;
  for (bool last : {false, true}) {
    if (last) gate.WaitForRunning();
    std::vector<InodeId> start;
    for (InodeId ino : state_->fs->OpenInodes()) {
      if (waiting.insert(ino).second) start.push_back(ino);
    }
    if (start.empty()) continue;
    RETURN_IF_ERROR(drainer_->StartFsyncs(start));
    fsync_batch_ = true;
  }
  if (!fsync_batch_) return Round::kHeld;
  RETURN_IF_ERROR(drainer_->EndBatch());
  std::vector<InodeId> unreachable;  // no handle (not root): drained below
  uint64_t writes = gate.writes();
  while (!waiting.empty()) {
    for (InodeId ino : gate.Held()) waiting.erase(ino);
    if (waiting.empty()) break;
    pollfd fds[2] = {{drainer_->fd(), POLLIN, 0}, {gate.wake_fd(), POLLIN, 0}};
    const auto left = MillisecondsUntil(deadline);
    int rc = poll(fds, 2, static_cast<int>(std::min(stall, left).count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) {
      if (left <= stall) {
        return Status(Code::kBusy, "timed out draining the kernel's cache of " + mountpoint_ +
                                       " (" + std::to_string(waiting.size()) + " files)");
      }
      if (gate.writes() != writes) {  // slow, not stuck
        writes = gate.writes();
        continue;
      }
      return Round::kStalled;
    }
    if (fds[0].revents == 0) continue;
    ASSIGN_OR_RETURN(KernelDrainer::Event event, drainer_->Next(std::chrono::milliseconds(0)));
    if (event.kind != KernelDrainer::Event::kFinished) continue;
    // An fsync that returned without being held: the file went away, or the
    // kernel could not write its pages (it then sends no FSYNC). But a file
    // just created is open here before the kernel, which gets our answer to
    // CREATE, has made its inode: the handle is stale for a moment, and the
    // file, unlocked, could take writes that are not in the cut while later
    // ones to other files are. Still open here: try the round again.
    if (event.error == ESTALE && IsOpen(event.ino)) return Round::kRaced;
    waiting.erase(event.ino);
    if (event.error == EPERM) unreachable.push_back(event.ino);
  }
  for (InodeId ino : unreachable) {
    // Invalidating the inode's pages at least writes the dirty ones and
    // waits for those under write-back (not ordered by the inode's lock).
    int r = fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
    if (r != 0 && r != -ENOENT) {
      return IoError("cannot drain the kernel's cache of inode " + std::to_string(ino) + ": " +
                     std::strerror(-r));
    }
  }
  return Round::kHeld;
}

bool FuseServer::IsOpen(InodeId ino) {
  const std::vector<InodeId> open = state_->fs->OpenInodes();
  return std::find(open.begin(), open.end(), ino) != open.end();
}

Status FuseServer::FinishFsyncBatch(std::chrono::steady_clock::time_point deadline) {
  while (fsync_batch_) {
    ASSIGN_OR_RETURN(KernelDrainer::Event event, drainer_->Next(MillisecondsUntil(deadline)));
    if (event.kind == KernelDrainer::Event::kDone) fsync_batch_ = false;
  }
  return Status::Ok();
}

void FuseServer::Exit() {
  if (session_ != nullptr) fuse_session_exit(session_);
}

}  // namespace strata::fuse
