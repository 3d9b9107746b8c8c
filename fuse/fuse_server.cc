#include "fuse/fuse_server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "fuse/server_state.h"

namespace strata::fuse {

namespace {

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

}  // namespace

Result<std::unique_ptr<FuseServer>> FuseServer::Mount(Filesystem& fs,
                                                      const MountOptions& options) {
  std::string mountpoint = std::filesystem::absolute(options.mountpoint).lexically_normal();
  RETURN_IF_ERROR(CheckMountpoint(mountpoint));
  auto server = std::unique_ptr<FuseServer>(new FuseServer());
  server->state_ = std::make_unique<ServerState>();
  server->state_->fs = &fs;
  server->state_->timeout = options.timeout_seconds;
  server->max_threads_ = options.max_threads;
  server->mountpoint_ = mountpoint;

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
  // A signal value (SIGINT, SIGTERM) is a requested stop, not a failure.
  if (rc < 0) return IoError(std::string("FUSE loop failed: ") + std::strerror(-rc));
  return Status::Ok();
}

namespace {

// A handle of the inode `ino` on a FUSE mount, in the kernel's encoding
// (fs/fuse/inode.c, fuse_encode_fh: type 0x81, node id high and low words,
// generation), for open_by_handle_at(2).
struct FuseHandle {
  struct file_handle header;
  uint32_t words[3];
};

FuseHandle HandleOf(InodeId ino) {
  FuseHandle h{};
  h.header.handle_bytes = sizeof(h.words);
  h.header.handle_type = 0x81;
  h.words[0] = static_cast<uint32_t>(ino >> 32);
  h.words[1] = static_cast<uint32_t>(ino);
  h.words[2] = kGeneration;
  return h;
}

}  // namespace

Status FuseServer::DrainKernelCache() {
  int mount_fd = open(mountpoint_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mount_fd < 0) return IoError("cannot open " + mountpoint_ + ": " + std::strerror(errno));
  auto close_mount = [&] { close(mount_fd); };
  if (syncfs(mount_fd) != 0) {
    int err = errno;
    close_mount();
    return IoError("syncfs " + mountpoint_ + ": " + std::strerror(err));
  }
  // syncfs starts the write-back of every dirty page, but on current kernels
  // it does not wait for a FUSE server to answer the WRITEs it sent (so that
  // a stuck server cannot hang sync(2)), and a file still being written can
  // have a later page sent before an earlier one. So each open file (only
  // those can have dirty pages: the kernel writes a file back before it
  // sends FLUSH on close) is fsync'ed through a handle: fsync holds the
  // inode's lock, so the pages it writes and waits for are one cut of the
  // file's writes, never a later page without an earlier one.
  for (InodeId ino : state_->fs->OpenInodes()) {
    FuseHandle handle = HandleOf(ino);
    int fd = open_by_handle_at(mount_fd, &handle.header, O_RDONLY | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM) {
      fd = open_by_handle_at(mount_fd, &handle.header, O_RDONLY | O_CLOEXEC);
    }
    if (fd >= 0) {
      int rc = fsync(fd);
      int err = errno;
      close(fd);
      if (rc != 0) {
        close_mount();
        return IoError("fsync of inode " + std::to_string(ino) + ": " + std::strerror(err));
      }
      continue;
    }
    // No handle (not root, or gone meanwhile): invalidating the inode's pages
    // at least waits for those under write-back and writes the dirty ones.
    int r = fuse_lowlevel_notify_inval_inode(session_, ino, 0, 0);
    if (r != 0 && r != -ENOENT) {
      close_mount();
      return IoError("cannot drain the kernel's cache of inode " + std::to_string(ino) + ": " +
                     std::strerror(-r));
    }
  }
  close_mount();
  return Status::Ok();
}

void FuseServer::Exit() {
  if (session_ != nullptr) fuse_session_exit(session_);
}

}  // namespace strata::fuse
