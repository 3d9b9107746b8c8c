#include "sql/wal_buffer_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>

namespace strata::sql {

namespace {

constexpr size_t kBufferBytes = 2 << 20;
constexpr int kFrameHeaderBytes = 24;
// The unix VFS writes at most 128 KiB - 1 per call (it masks the length), so
// the buffer goes out in pieces no larger than a maximal page.
constexpr size_t kMaxWriteBytes = 64 << 10;

// Pending WAL bytes: one contiguous extent [start, start + len).
struct WalBuffer {
  std::unique_ptr<char[]> data;  // allocated on first write, never zeroed
  sqlite3_int64 start = 0;
  size_t len = 0;
  // Set by a commit frame's header: write through after its page.
  bool commit_frame_pending = false;
  // End of the furthest byte written in this generation of the log (the WAL
  // starts over from offset 0 after a checkpoint).
  sqlite3_int64 high_water = 0;
};

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

// Writes the pending extent to the file. On failure the extent is dropped:
// it holds only frames of the transaction now failing (committed frames are
// always written through), which SQLite discards when it rolls back.
int Flush(ShimFile* f) {
  WalBuffer* b = f->wal;
  if (b == nullptr || b->len == 0) return SQLITE_OK;
  sqlite3_file* real = f->real();
  int rc = SQLITE_OK;
  for (size_t done = 0; done < b->len && rc == SQLITE_OK; done += kMaxWriteBytes) {
    size_t n = std::min(kMaxWriteBytes, b->len - done);
    rc = real->pMethods->xWrite(real, b->data.get() + done, static_cast<int>(n),
                                b->start + static_cast<sqlite3_int64>(done));
  }
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
  const sqlite3_int64 end = b->start + static_cast<sqlite3_int64>(b->len);
  const bool in_extent = b->len > 0 && off >= b->start && off + n <= end;
  if (off == 0) b->high_water = 0;  // a new log header: the WAL starts over
  if (!in_extent && off + n <= b->high_water) {
    int rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
    return f->real()->pMethods->xWrite(f->real(), p, n, off);
  }
  b->high_water = std::max(b->high_water, off + n);
  if (in_extent) {
    std::memcpy(b->data.get() + (off - b->start), p, size);
  } else if (b->len > 0 && off == end && b->len + size <= kBufferBytes) {
    std::memcpy(b->data.get() + b->len, p, size);
    b->len += size;
  } else {
    int rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
    if (size > kMaxWriteBytes) return f->real()->pMethods->xWrite(f->real(), p, n, off);
    if (b->data == nullptr) b->data.reset(new char[kBufferBytes]);
    std::memcpy(b->data.get(), p, size);
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

int Read(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  ShimFile* s = Shim(f);
  if (s->wal != nullptr && s->wal->len > 0 && off < s->wal->start + sqlite3_int64(s->wal->len) &&
      off + n > s->wal->start) {
    int rc = Flush(s);
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
  if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) != 0) s->wal = new (std::nothrow) WalBuffer;
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

const char* WalBufferVfsName() {
  static std::once_flag once;
  std::call_once(once, Register);
  return g_vfs.zName;
}

}  // namespace strata::sql
