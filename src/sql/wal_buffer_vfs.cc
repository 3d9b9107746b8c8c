#include "sql/wal_buffer_vfs.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace strata::sql {

namespace {

constexpr size_t kBufferBytes = 4 << 20;
constexpr int kFrameHeaderBytes = 24;
// The unix VFS writes at most 128 KiB - 1 per call (it masks the length), so
// buffered writes go out in pieces no larger than a maximal page.
constexpr size_t kMaxWriteBytes = 64 << 10;
// When the buffer fills up (a transaction of more than kBufferBytes), its
// block-aligned part goes out with O_DIRECT, on a background thread, while
// SQLite fills the other buffer: the bytes go from the buffer to the device
// without being copied into the page cache, which for a large write costs
// more CPU than everything SQLite does. Smaller transactions stay buffered,
// so that the pages readers look up next are in the page cache.
constexpr size_t kDirectAlign = 4096;
std::atomic<bool> g_direct_io{true};
std::atomic<WalDirectWriteHook> g_direct_write_hook{nullptr};

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<char, FreeDeleter>;

// pwrite(2) of all n bytes; returns 0 or the errno of the failure.
int PwriteAll(int fd, const char* p, size_t n, off_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = pwrite(fd, p + done, n - done, off + static_cast<off_t>(done));
    if (w > 0) {
      done += static_cast<size_t>(w);
    } else if (w < 0 && errno != EINTR) {
      return errno;
    } else if (w == 0) {
      return EIO;
    }
  }
  return 0;
}

// One O_DIRECT write of the WAL at `path`: through the test hook if one is
// set (see SetWalDirectWriteHook), else pwrite(2). Returns 0 or an errno.
int DirectWrite(const char* path, int fd, const char* p, size_t n, off_t off) {
  WalDirectWriteHook hook = g_direct_write_hook.load(std::memory_order_acquire);
  if (hook != nullptr) return hook(path, fd, p, n, static_cast<int64_t>(off));
  return PwriteAll(fd, p, n, off);
}

// Runs one write at a time on a thread of its own (started on first use), so
// that the device takes in one buffer while SQLite fills the next.
class BackgroundWriter {
 public:
  BackgroundWriter() = default;
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;
  ~BackgroundWriter() {
    if (!thread_.joinable()) return;
    {
      std::scoped_lock lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Starts writing; the caller keeps p alive and unchanged until Wait().
  // Returns false if no thread could be started (the caller writes itself).
  // `path` names the file for the test hook and must also stay alive.
  bool Start(const char* path, int fd, const char* p, size_t n, off_t off) {
    if (!thread_.joinable()) {
      try {
        thread_ = std::thread([this] { Run(); });
      } catch (const std::system_error&) {
        return false;
      }
    }
    {
      std::scoped_lock lock(mu_);
      job_ = Job{path, fd, p, n, off};
      busy_ = true;
    }
    cv_.notify_all();
    return true;
  }

  // Waits for the write started last; returns 0 or its errno.
  int Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !busy_; });
    return std::exchange(error_, 0);
  }

 private:
  struct Job {
    const char* path;
    int fd;
    const char* p;
    size_t n;
    off_t off;
  };

  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || busy_; });
      if (!busy_) return;  // stopping, nothing in flight
      Job job = job_;
      lock.unlock();
      int error = DirectWrite(job.path, job.fd, job.p, job.n, job.off);
      lock.lock();
      error_ = error;
      busy_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  Job job_{};          // guarded by mu_
  bool busy_ = false;  // guarded by mu_
  bool stop_ = false;  // guarded by mu_
  int error_ = 0;      // guarded by mu_
  std::thread thread_;
};

// Pending WAL bytes: one contiguous extent [start, start + len), held at
// data() = buffers[cur] + base where base = start % kDirectAlign, so that a
// file offset and its byte in memory share their alignment (O_DIRECT needs
// both aligned). A direct write in flight holds the other buffer.
struct WalBuffer {
  AlignedBuffer buffers[2];  // allocated on first use, never zeroed
  int cur = 0;
  size_t base = 0;
  sqlite3_int64 start = 0;
  size_t len = 0;
  // Set by a commit frame's header: write through after its page.
  bool commit_frame_pending = false;
  // End of the furthest byte written in this generation of the log (the WAL
  // starts over from offset 0 after a checkpoint).
  sqlite3_int64 high_water = 0;
  // The same file opened with O_DIRECT, on the first full buffer (so the
  // readers' and checkpointer's handles, which never fill one, hold no
  // extra descriptor); -1 until then. `direct_path` is cleared when direct
  // I/O is off or the file system refused it, so it is not tried again.
  int direct_fd = -1;
  std::string direct_path;
  // The direct write in flight, if n > 0.
  struct {
    const char* p = nullptr;
    size_t n = 0;
    sqlite3_int64 off = 0;
  } in_flight;
  BackgroundWriter writer;  // destroyed (joined) before direct_fd is closed

  char* data() { return buffers[cur].get() + base; }
  sqlite3_int64 end() const { return start + static_cast<sqlite3_int64>(len); }
  ~WalBuffer() {
    (void)writer.Wait();
    if (direct_fd >= 0) close(direct_fd);
  }
};
constexpr size_t kCapacity = kBufferBytes + kDirectAlign;

// Our file object; the default VFS's file object follows it in memory.
struct ShimFile {
  sqlite3_file base;
  WalBuffer* wal;  // null unless this is a WAL file
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};
static_assert(sizeof(ShimFile) % 8 == 0, "the real file object must stay 8-byte aligned");

sqlite3_vfs* Root(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }
ShimFile* Shim(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Shim(f)->real(); }

AlignedBuffer NewBuffer() {
  return AlignedBuffer(static_cast<char*>(std::aligned_alloc(kDirectAlign, kCapacity)));
}

// Writes n buffered bytes from p at off through the real file.
int WriteBuffered(ShimFile* f, const char* p, size_t n, sqlite3_int64 off) {
  sqlite3_file* real = f->real();
  int rc = SQLITE_OK;
  for (size_t done = 0; done < n && rc == SQLITE_OK; done += kMaxWriteBytes) {
    size_t piece = std::min(kMaxWriteBytes, n - done);
    rc = real->pMethods->xWrite(real, p + done, static_cast<int>(piece),
                                off + static_cast<sqlite3_int64>(done));
  }
  return rc;
}

int WriteErrorCode(int error) { return error == ENOSPC ? SQLITE_FULL : SQLITE_IOERR_WRITE; }

// The O_DIRECT descriptor, opened on first use; -1 when there is none.
int DirectFd(WalBuffer* b) {
  if (b->direct_fd < 0 && !b->direct_path.empty()) {
    b->direct_fd = open(b->direct_path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (b->direct_fd < 0) b->direct_path.clear();
  }
  return b->direct_fd;
}

// Turns direct I/O off for this file for good.
void DropDirect(WalBuffer* b) {
  if (b->direct_fd >= 0) close(b->direct_fd);
  b->direct_fd = -1;
  b->direct_path.clear();
}

// Waits for the direct write in flight. A file system that refuses direct
// I/O (EINVAL) turns it off for this file, and the bytes go buffered.
int FinishDirect(ShimFile* f) {
  WalBuffer* b = f->wal;
  if (b->in_flight.n == 0) return SQLITE_OK;
  int error = b->writer.Wait();
  auto job = std::exchange(b->in_flight, {});
  if (error == 0) return SQLITE_OK;
  if (error != EINVAL) return WriteErrorCode(error);
  DropDirect(b);
  return WriteBuffered(f, job.p, job.n, job.off);
}

// Starts the direct write of the extent's whole blocks, after writing the
// partial block before them through the page cache; the partial block after
// them moves to the other buffer and stays pending.
int StartDirect(ShimFile* f) {
  WalBuffer* b = f->wal;
  int rc = FinishDirect(f);  // frees the other buffer
  if (rc != SQLITE_OK || b->direct_fd < 0) return rc;
  AlignedBuffer& next = b->buffers[1 - b->cur];
  if (next == nullptr) next = NewBuffer();
  if (next == nullptr) return SQLITE_NOMEM;
  const size_t head = (kDirectAlign - b->base) % kDirectAlign;  // up to the first aligned offset
  const size_t body = (b->len - head) / kDirectAlign * kDirectAlign;
  const size_t tail = b->len - head - body;
  rc = WriteBuffered(f, b->data(), head, b->start);
  if (rc != SQLITE_OK) return rc;
  const sqlite3_int64 body_off = b->start + static_cast<sqlite3_int64>(head);
  if (b->writer.Start(b->direct_path.c_str(), b->direct_fd, b->data() + head, body, body_off)) {
    b->in_flight = {b->data() + head, body, body_off};
  } else {  // no thread: this file stays buffered
    DropDirect(b);
    rc = WriteBuffered(f, b->data() + head, body, body_off);
    if (rc != SQLITE_OK) return rc;
  }
  std::memcpy(next.get(), b->data() + head + body, tail);
  b->cur = 1 - b->cur;
  b->base = 0;
  b->start = body_off + static_cast<sqlite3_int64>(body);
  b->len = tail;
  return SQLITE_OK;
}

enum class FlushMode {
  kAll,           // everything is in the file on return
  kAlignedPrefix  // the buffer is full: start writing most of it, keep appending
};

// Writes the pending extent to the file. On failure the extent is dropped:
// it holds only frames of the transaction now failing (committed frames are
// always written through), which SQLite discards when it rolls back.
int Flush(ShimFile* f, FlushMode mode = FlushMode::kAll) {
  WalBuffer* b = f->wal;
  if (b == nullptr) return SQLITE_OK;
  if (mode == FlushMode::kAlignedPrefix && DirectFd(b) >= 0) {
    int rc = StartDirect(f);
    if (rc != SQLITE_OK) b->len = 0;
    return rc;
  }
  int rc = FinishDirect(f);
  if (rc == SQLITE_OK && b->len > 0) rc = WriteBuffered(f, b->data(), b->len, b->start);
  b->len = 0;
  return rc;
}

bool IsCommitFrameHeader(const void* p, int n) {
  if (n != kFrameHeaderBytes) return false;
  const auto* h = static_cast<const unsigned char*>(p);
  return (h[4] | h[5] | h[6] | h[7]) != 0;  // big-endian database size: set on commit frames
}

// Buffers the write when it extends or overwrites the pending extent.
// Rewrites of frames already written out (SQLite rewrites frame headers to
// fix checksums after a commit that overwrote its own frames) go straight
// through: nothing may stay buffered behind a published commit.
int BufferedWrite(ShimFile* f, const void* p, int n, sqlite3_int64 off) {
  WalBuffer* b = f->wal;
  const bool write_through_after = b->commit_frame_pending;
  b->commit_frame_pending = IsCommitFrameHeader(p, n);
  const size_t size = static_cast<size_t>(n);
  const bool in_extent = b->len > 0 && off >= b->start && off + n <= b->end();
  if (off == 0) b->high_water = 0;  // a new log header: the WAL starts over
  if (!in_extent && off + n <= b->high_water) {
    int rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
    return f->real()->pMethods->xWrite(f->real(), p, n, off);
  }
  b->high_water = std::max(b->high_water, off + n);
  if (in_extent) {
    std::memcpy(b->data() + (off - b->start), p, size);
    return write_through_after ? Flush(f) : SQLITE_OK;
  }
  if (b->len > 0 && off == b->end() && b->base + b->len + size > kCapacity) {
    int rc = Flush(f, FlushMode::kAlignedPrefix);  // may keep a partial block to append to
    if (rc != SQLITE_OK) return rc;
  }
  if (b->len > 0 && off == b->end() && b->base + b->len + size <= kCapacity) {
    std::memcpy(b->data() + b->len, p, size);
    b->len += size;
  } else {
    int rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
    if (size > kMaxWriteBytes) return f->real()->pMethods->xWrite(f->real(), p, n, off);
    AlignedBuffer& mem = b->buffers[b->cur];
    if (mem == nullptr) mem = NewBuffer();
    if (mem == nullptr) return SQLITE_NOMEM;
    b->base = static_cast<size_t>(off) % kDirectAlign;
    std::memcpy(b->data(), p, size);
    b->start = off;
    b->len = size;
  }
  return write_through_after ? Flush(f) : SQLITE_OK;
}

int Close(sqlite3_file* f) {
  ShimFile* s = Shim(f);
  int flushed = Flush(s);
  int rc = Real(f)->pMethods->xClose(Real(f));
  delete s->wal;
  s->wal = nullptr;
  return flushed != SQLITE_OK ? flushed : rc;
}

// Reads inside the pending extent are answered from it; reads that overlap
// it only in part write it out first; any other waits for a direct write in
// flight.
int Read(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  ShimFile* s = Shim(f);
  WalBuffer* b = s->wal;
  if (b != nullptr) {
    if (b->len > 0 && off >= b->start && off + n <= b->end()) {
      std::memcpy(p, b->data() + (off - b->start), static_cast<size_t>(n));
      return SQLITE_OK;
    }
    // A direct write in flight may hold the bytes asked for.
    const bool overlaps = b->len > 0 && off < b->end() && off + n > b->start;
    int rc = overlaps ? Flush(s) : FinishDirect(s);
    if (rc != SQLITE_OK) return rc;
  }
  return Real(f)->pMethods->xRead(Real(f), p, n, off);
}

int Write(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  ShimFile* s = Shim(f);
  if (s->wal != nullptr) return BufferedWrite(s, p, n, off);
  return Real(f)->pMethods->xWrite(Real(f), p, n, off);
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  ShimFile* s = Shim(f);
  if (s->wal != nullptr) s->wal->high_water = std::min(s->wal->high_water, size);
  int rc = Flush(s);
  return rc != SQLITE_OK ? rc : Real(f)->pMethods->xTruncate(Real(f), size);
}

int Sync(sqlite3_file* f, int flags) {
  int rc = Flush(Shim(f));
  return rc != SQLITE_OK ? rc : Real(f)->pMethods->xSync(Real(f), flags);
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  int rc = Flush(Shim(f));
  return rc != SQLITE_OK ? rc : Real(f)->pMethods->xFileSize(Real(f), size);
}

int FileControl(sqlite3_file* f, int op, void* arg) {
  int rc = Flush(Shim(f));
  return rc != SQLITE_OK ? rc : Real(f)->pMethods->xFileControl(Real(f), op, arg);
}

// Pure forwards.
int Lock(sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); }
int Unlock(sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }
int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), off, n, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), off, p);
}

// One method table per version of the real file's table, so that SQLite
// never calls a method the real file lacks.
sqlite3_io_methods MakeMethods(int version) {
  sqlite3_io_methods m{};
  m.iVersion = version;
  m.xClose = Close;
  m.xRead = Read;
  m.xWrite = Write;
  m.xTruncate = Truncate;
  m.xSync = Sync;
  m.xFileSize = FileSize;
  m.xLock = Lock;
  m.xUnlock = Unlock;
  m.xCheckReservedLock = CheckReservedLock;
  m.xFileControl = FileControl;
  m.xSectorSize = SectorSize;
  m.xDeviceCharacteristics = DeviceCharacteristics;
  if (version >= 2) {
    m.xShmMap = ShmMap;
    m.xShmLock = ShmLock;
    m.xShmBarrier = ShmBarrier;
    m.xShmUnmap = ShmUnmap;
  }
  if (version >= 3) {
    m.xFetch = Fetch;
    m.xUnfetch = Unfetch;
  }
  return m;
}
const sqlite3_io_methods kMethods[3] = {MakeMethods(1), MakeMethods(2), MakeMethods(3)};

int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  ShimFile* s = new (f) ShimFile{};
  sqlite3_vfs* root = Root(vfs);
  int rc = root->xOpen(root, name, s->real(), flags, out_flags);
  const sqlite3_io_methods* real_methods = s->real()->pMethods;
  if (real_methods == nullptr) return rc;  // SQLite will not call xClose
  int version = real_methods->iVersion < 1 ? 1 : (real_methods->iVersion > 3 ? 3 : real_methods->iVersion);
  s->base.pMethods = &kMethods[version - 1];
  if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) != 0) {
    s->wal = new (std::nothrow) WalBuffer;
    if (s->wal != nullptr && name != nullptr && g_direct_io.load(std::memory_order_relaxed)) {
      s->wal->direct_path = name;
    }
  }
  return rc;
}

// VFS-level calls go to the default VFS, which expects itself as argument.
int Delete(sqlite3_vfs* v, const char* n, int sync) { return Root(v)->xDelete(Root(v), n, sync); }
int Access(sqlite3_vfs* v, const char* n, int flags, int* out) {
  return Root(v)->xAccess(Root(v), n, flags, out);
}
int FullPathname(sqlite3_vfs* v, const char* n, int size, char* out) {
  return Root(v)->xFullPathname(Root(v), n, size, out);
}
void* DlOpen(sqlite3_vfs* v, const char* n) { return Root(v)->xDlOpen(Root(v), n); }
void DlError(sqlite3_vfs* v, int n, char* out) { Root(v)->xDlError(Root(v), n, out); }
void (*DlSym(sqlite3_vfs* v, void* h, const char* n))(void) { return Root(v)->xDlSym(Root(v), h, n); }
void DlClose(sqlite3_vfs* v, void* h) { Root(v)->xDlClose(Root(v), h); }
int Randomness(sqlite3_vfs* v, int n, char* out) { return Root(v)->xRandomness(Root(v), n, out); }
int Sleep(sqlite3_vfs* v, int us) { return Root(v)->xSleep(Root(v), us); }
int CurrentTime(sqlite3_vfs* v, double* out) { return Root(v)->xCurrentTime(Root(v), out); }
int GetLastError(sqlite3_vfs* v, int n, char* out) {
  return Root(v)->xGetLastError(Root(v), n, out);
}
int CurrentTimeInt64(sqlite3_vfs* v, sqlite3_int64* out) {
  return Root(v)->xCurrentTimeInt64(Root(v), out);
}

sqlite3_vfs g_vfs;

void Register() {
  sqlite3_vfs* root = sqlite3_vfs_find(nullptr);
  if (root == nullptr || root->iVersion < 2) return;
  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(sizeof(ShimFile)) + root->szOsFile;
  g_vfs.mxPathname = root->mxPathname;
  g_vfs.zName = "strata-walbuf";
  g_vfs.pAppData = root;
  g_vfs.xOpen = Open;
  g_vfs.xDelete = Delete;
  g_vfs.xAccess = Access;
  g_vfs.xFullPathname = FullPathname;
  g_vfs.xDlOpen = DlOpen;
  g_vfs.xDlError = DlError;
  g_vfs.xDlSym = DlSym;
  g_vfs.xDlClose = DlClose;
  g_vfs.xRandomness = Randomness;
  g_vfs.xSleep = Sleep;
  g_vfs.xCurrentTime = CurrentTime;
  g_vfs.xGetLastError = GetLastError;
  g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
  if (sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0) != SQLITE_OK) g_vfs.zName = nullptr;
}

}  // namespace

void SetWalDirectIo(bool enabled) { g_direct_io.store(enabled, std::memory_order_relaxed); }

void SetWalDirectWriteHook(WalDirectWriteHook hook) {
  g_direct_write_hook.store(hook, std::memory_order_release);
}

const char* WalBufferVfsName() {
  static std::once_flag once;
  std::call_once(once, Register);
  return g_vfs.zName;
}

}  // namespace strata::sql
