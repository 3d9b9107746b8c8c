#include "testing/fault_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <string>

#include "sql/wal_buffer_vfs.h"

namespace strata::testing {

namespace {

constexpr int64_t kNoTruncation = INT64_MAX;

// Bytes written to one file but not synced: disjoint extents by offset.
class Extents {
 public:
  void Write(int64_t off, const char* p, size_t n) {
    const int64_t end = off + static_cast<int64_t>(n);
    Cut(off, end);
    map_.emplace(off, std::string(p, n));
  }
  // Drops everything at or after `size`.
  void TruncateAt(int64_t size) { Cut(size, INT64_MAX); }
  // Copies the extents' bytes that fall in [off, off + n) over out.
  void Overlay(int64_t off, char* out, size_t n) const {
    const int64_t end = off + static_cast<int64_t>(n);
    auto it = map_.upper_bound(off);
    if (it != map_.begin()) --it;
    for (; it != map_.end() && it->first < end; ++it) {
      const int64_t s = std::max(off, it->first);
      const int64_t e = std::min(end, it->first + static_cast<int64_t>(it->second.size()));
      if (s < e) std::memcpy(out + (s - off), it->second.data() + (s - it->first), e - s);
    }
  }
  const std::map<int64_t, std::string>& map() const { return map_; }
  void Clear() { map_.clear(); }

 private:
  // Removes [start, end) from every extent, keeping the pieces outside it.
  void Cut(int64_t start, int64_t end) {
    auto it = map_.upper_bound(start);
    if (it != map_.begin()) --it;
    while (it != map_.end() && it->first < end) {
      const int64_t s = it->first;
      const int64_t e = s + static_cast<int64_t>(it->second.size());
      if (e <= start) {
        ++it;
        continue;
      }
      std::string bytes = std::move(it->second);
      it = map_.erase(it);
      if (s < start) map_.emplace(s, bytes.substr(0, start - s));
      if (e > end) it = map_.emplace(end, bytes.substr(end - s)).first;
    }
  }
  std::map<int64_t, std::string> map_;
};

// What the "page cache" holds for one tracked file in power-loss mode.
struct Node {
  int64_t size = 0;                   // the file's size as the process sees it
  int64_t min_size = kNoTruncation;   // smallest truncation since the last sync
  Extents pending;                    // unsynced writes
};

struct FaultFile {
  sqlite3_file base;
  bool tracked;
  FileKind kind;
  std::unique_ptr<std::string> path;  // null for nameless (temporary) files
  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};
static_assert(sizeof(FaultFile) % 8 == 0);

}  // namespace

struct FaultVfs::State {
  std::mutex mu;
  sqlite3_vfs* root = nullptr;
  std::string prefix;        // guarded by mu; empty tracks nothing
  bool power_loss = false;   // guarded by mu
  bool real_syncs = false;   // guarded by mu
  bool crashed = false;      // guarded by mu
  std::optional<Fault> fault;  // guarded by mu
  uint64_t fault_count = 0;  // guarded by mu: matching operations so far
  bool fired = false;        // guarded by mu
  IoCounters counters;       // guarded by mu
  std::map<std::string, Node> nodes;  // guarded by mu: power-loss mode only

  bool Tracked(const char* name) const {
    return name != nullptr && !prefix.empty() && std::strncmp(name, prefix.c_str(), prefix.size()) == 0;
  }
};

namespace {

FaultVfs::State* g_state = nullptr;
sqlite3_vfs g_vfs;

FaultFile* Ff(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Ff(f)->real(); }
sqlite3_vfs* Root() { return g_state->root; }

int ErrorCode(IoOp op, IoError error) {
  if (error == IoError::kNoSpace) return SQLITE_FULL;
  return op == IoOp::kWrite ? SQLITE_IOERR_WRITE : SQLITE_IOERR_FSYNC;
}

void CrashLocked(FaultVfs::State& st, bool torn, uint64_t seed);

// Counts one operation on a tracked file; returns the SQLite error to fail
// it with, or SQLITE_OK. With mu held.
int Account(FaultVfs::State& st, IoOp op, FileKind kind) {
  if (st.crashed) {
    ++st.counters.failed;
    return ErrorCode(op, IoError::kEio);
  }
  (op == IoOp::kWrite ? st.counters.writes : st.counters.syncs)[static_cast<int>(kind)]++;
  if (!st.fault.has_value()) return SQLITE_OK;
  const Fault& f = *st.fault;
  if (f.op != op || (f.kind.has_value() && *f.kind != kind)) return SQLITE_OK;
  ++st.fault_count;
  const bool hit = st.fault_count == f.nth || (f.sticky && st.fault_count > f.nth);
  if (!hit) return SQLITE_OK;
  st.fired = true;
  ++st.counters.failed;
  if (f.crash) {
    CrashLocked(st, f.torn, f.torn_seed);
    return ErrorCode(op, IoError::kEio);
  }
  return ErrorCode(op, f.error);
}

// As the power goes out: lets a random part of the file's unsynced
// changes reach it, with plain POSIX calls (no SQLite handle is at hand).
void ApplyRandomPart(const std::string& path, const Node& node, std::mt19937_64& rng) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (node.min_size != kNoTruncation && (rng() & 1)) (void)::ftruncate(fd, node.min_size);
  for (const auto& [off, bytes] : node.pending.map()) {
    if (rng() & 1) (void)::pwrite(fd, bytes.data(), bytes.size(), off);
  }
  ::close(fd);
}

void CrashLocked(FaultVfs::State& st, bool torn, uint64_t seed) {
  if (st.crashed) return;
  st.crashed = true;
  std::mt19937_64 rng(seed);
  // Unsynced data is gone, except what a torn crash lets through.
  if (torn) {
    for (auto& [path, node] : st.nodes) ApplyRandomPart(path, node, rng);
  }
  st.nodes.clear();
}

// --- Power-loss mode: the pending state of a file.

// Applies `node` to the real file and clears it (the file is synced).
int ApplyPending(sqlite3_file* real, Node& node) {
  int rc = SQLITE_OK;
  if (node.min_size != kNoTruncation) rc = real->pMethods->xTruncate(real, node.min_size);
  for (const auto& [off, bytes] : node.pending.map()) {
    if (rc != SQLITE_OK) break;
    // The unix VFS writes at most 128 KiB - 1 per call.
    for (size_t done = 0; done < bytes.size() && rc == SQLITE_OK; done += 65536) {
      size_t piece = std::min<size_t>(65536, bytes.size() - done);
      rc = real->pMethods->xWrite(real, bytes.data() + done, static_cast<int>(piece),
                                  off + static_cast<int64_t>(done));
    }
  }
  sqlite3_int64 real_size = 0;
  if (rc == SQLITE_OK) rc = real->pMethods->xFileSize(real, &real_size);
  if (rc == SQLITE_OK && real_size != node.size) rc = real->pMethods->xTruncate(real, node.size);
  if (rc != SQLITE_OK) return rc;
  node.pending.Clear();
  node.min_size = kNoTruncation;
  return SQLITE_OK;
}

int ReadThrough(sqlite3_file* real, Node& node, void* p, int n, sqlite3_int64 off) {
  char* out = static_cast<char*>(p);
  std::memset(out, 0, static_cast<size_t>(n));
  if (off >= node.size) return SQLITE_IOERR_SHORT_READ;
  const int64_t avail = std::min<int64_t>(n, node.size - off);
  // Real bytes, except those a pending truncation removed.
  const int64_t real_end = std::min<int64_t>(off + avail, node.min_size);
  if (real_end > off) {
    int rc = real->pMethods->xRead(real, out, static_cast<int>(real_end - off), off);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
  }
  node.pending.Overlay(off, out, static_cast<size_t>(avail));
  return avail < n ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

Node* NodeOf(FaultVfs::State& st, FaultFile* f) {
  if (!st.power_loss || !f->tracked || f->path == nullptr) return nullptr;
  auto it = st.nodes.find(*f->path);
  if (it != st.nodes.end()) return &it->second;
  // First touch since the last crash or reset: the real file is the truth.
  sqlite3_int64 size = 0;
  if (f->real()->pMethods->xFileSize(f->real(), &size) != SQLITE_OK) size = 0;
  Node& node = st.nodes[*f->path];
  node.size = size;
  return &node;
}

// --- I/O methods.

int Close(sqlite3_file* f) {
  int rc = Real(f)->pMethods->xClose(Real(f));
  Ff(f)->~FaultFile();  // SQLite frees the memory
  return rc;
}

int Read(sqlite3_file* f, void* p, int n, sqlite3_int64 off) {
  FaultFile* ff = Ff(f);
  if (!ff->tracked) return Real(f)->pMethods->xRead(Real(f), p, n, off);
  std::scoped_lock lock(g_state->mu);
  if (g_state->crashed) {
    ++g_state->counters.failed;
    return SQLITE_IOERR_READ;
  }
  if (Node* node = NodeOf(*g_state, ff)) return ReadThrough(Real(f), *node, p, n, off);
  return Real(f)->pMethods->xRead(Real(f), p, n, off);
}

int Write(sqlite3_file* f, const void* p, int n, sqlite3_int64 off) {
  FaultFile* ff = Ff(f);
  if (!ff->tracked) return Real(f)->pMethods->xWrite(Real(f), p, n, off);
  std::scoped_lock lock(g_state->mu);
  int rc = Account(*g_state, IoOp::kWrite, ff->kind);
  if (rc != SQLITE_OK) return rc;
  if (Node* node = NodeOf(*g_state, ff)) {
    node->pending.Write(off, static_cast<const char*>(p), static_cast<size_t>(n));
    node->size = std::max<int64_t>(node->size, off + n);
    return SQLITE_OK;
  }
  return Real(f)->pMethods->xWrite(Real(f), p, n, off);
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  FaultFile* ff = Ff(f);
  if (!ff->tracked) return Real(f)->pMethods->xTruncate(Real(f), size);
  std::scoped_lock lock(g_state->mu);
  if (g_state->crashed) {
    ++g_state->counters.failed;
    return SQLITE_IOERR_TRUNCATE;
  }
  if (Node* node = NodeOf(*g_state, ff)) {
    node->pending.TruncateAt(size);
    node->size = size;
    node->min_size = std::min<int64_t>(node->min_size, size);
    return SQLITE_OK;
  }
  return Real(f)->pMethods->xTruncate(Real(f), size);
}

int Sync(sqlite3_file* f, int flags) {
  FaultFile* ff = Ff(f);
  if (!ff->tracked) return Real(f)->pMethods->xSync(Real(f), flags);
  std::scoped_lock lock(g_state->mu);
  int rc = Account(*g_state, IoOp::kSync, ff->kind);
  if (rc != SQLITE_OK) return rc;
  if (Node* node = NodeOf(*g_state, ff)) {
    rc = ApplyPending(Real(f), *node);
    if (rc != SQLITE_OK) return rc;
  }
  return g_state->real_syncs ? Real(f)->pMethods->xSync(Real(f), flags) : SQLITE_OK;
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  FaultFile* ff = Ff(f);
  if (!ff->tracked) return Real(f)->pMethods->xFileSize(Real(f), size);
  std::scoped_lock lock(g_state->mu);
  if (g_state->crashed) {
    ++g_state->counters.failed;
    return SQLITE_IOERR_FSTAT;
  }
  if (Node* node = NodeOf(*g_state, ff)) {
    *size = node->size;
    return SQLITE_OK;
  }
  return Real(f)->pMethods->xFileSize(Real(f), size);
}

int FileControl(sqlite3_file* f, int op, void* arg) {
  // A size hint may extend the real file behind our back; it is only a hint.
  if (op == SQLITE_FCNTL_SIZE_HINT && Ff(f)->tracked) return SQLITE_OK;
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}

int Lock(sqlite3_file* f, int l) { return Real(f)->pMethods->xLock(Real(f), l); }
int Unlock(sqlite3_file* f, int l) { return Real(f)->pMethods->xUnlock(Real(f), l); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
// The WAL index is shared memory, never durable: straight through.
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }

// Version 2: no xFetch, so SQLite never memory-maps a file and every read
// comes through Read (which overlays pending writes).
const sqlite3_io_methods kMethods = [] {
  sqlite3_io_methods m{};
  m.iVersion = 2;
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
  m.xShmMap = ShmMap;
  m.xShmLock = ShmLock;
  m.xShmBarrier = ShmBarrier;
  m.xShmUnmap = ShmUnmap;
  return m;
}();

FileKind KindOf(int flags) {
  if (flags & SQLITE_OPEN_MAIN_DB) return FileKind::kMainDb;
  if (flags & SQLITE_OPEN_WAL) return FileKind::kWal;
  if (flags & SQLITE_OPEN_MAIN_JOURNAL) return FileKind::kJournal;
  return FileKind::kOther;
}

int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  FaultFile* ff = new (f) FaultFile{};
  {
    std::scoped_lock lock(g_state->mu);
    ff->tracked = g_state->Tracked(name);
    if (ff->tracked && g_state->crashed) return SQLITE_CANTOPEN;
  }
  ff->kind = KindOf(flags);
  int rc = Root()->xOpen(Root(), name, ff->real(), flags, out_flags);
  if (ff->real()->pMethods == nullptr) return rc;
  ff->base.pMethods = &kMethods;
  if (name != nullptr) ff->path = std::make_unique<std::string>(name);
  return rc;
}

int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
  {
    std::scoped_lock lock(g_state->mu);
    if (g_state->Tracked(name)) {
      if (g_state->crashed) {
        ++g_state->counters.failed;
        return SQLITE_IOERR_DELETE;
      }
      g_state->nodes.erase(name);
    }
  }
  return Root()->xDelete(Root(), name, sync_dir);
}

int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
  {
    std::scoped_lock lock(g_state->mu);
    if (g_state->Tracked(name) && g_state->crashed) return SQLITE_IOERR_ACCESS;
  }
  return Root()->xAccess(Root(), name, flags, out);
}

int FullPathname(sqlite3_vfs*, const char* n, int size, char* out) {
  return Root()->xFullPathname(Root(), n, size, out);
}
void* DlOpen(sqlite3_vfs*, const char* n) { return Root()->xDlOpen(Root(), n); }
void DlError(sqlite3_vfs*, int n, char* out) { Root()->xDlError(Root(), n, out); }
void (*DlSym(sqlite3_vfs*, void* h, const char* n))(void) { return Root()->xDlSym(Root(), h, n); }
void DlClose(sqlite3_vfs*, void* h) { Root()->xDlClose(Root(), h); }
int Randomness(sqlite3_vfs*, int n, char* out) { return Root()->xRandomness(Root(), n, out); }
int Sleep(sqlite3_vfs*, int us) { return Root()->xSleep(Root(), us); }
int CurrentTime(sqlite3_vfs*, double* out) { return Root()->xCurrentTime(Root(), out); }
int GetLastError(sqlite3_vfs*, int n, char* out) { return Root()->xGetLastError(Root(), n, out); }
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return Root()->xCurrentTimeInt64(Root(), out);
}

// The shim's O_DIRECT writes of a WAL, seen as writes of that WAL.
int DirectWriteHook(const char* path, int fd, const void* data, size_t n, int64_t offset) {
  std::scoped_lock lock(g_state->mu);
  if (g_state->Tracked(path)) {
    int rc = Account(*g_state, IoOp::kWrite, FileKind::kWal);
    if (rc != SQLITE_OK) return rc == SQLITE_FULL ? ENOSPC : EIO;
    ++g_state->counters.direct_writes;
    if (g_state->power_loss) {
      auto it = g_state->nodes.find(path);
      if (it == g_state->nodes.end()) return EIO;  // the shim's handle made the node
      it->second.pending.Write(offset, static_cast<const char*>(data), n);
      it->second.size = std::max<int64_t>(it->second.size, offset + static_cast<int64_t>(n));
      return 0;
    }
  }
  const char* p = static_cast<const char*>(data);
  for (size_t done = 0; done < n;) {
    ssize_t w = ::pwrite(fd, p + done, n - done, offset + static_cast<off_t>(done));
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

void Register() {
  sqlite3_initialize();
  sqlite3_vfs* root = sqlite3_vfs_find(nullptr);
  if (root == nullptr || std::strcmp(root->zName, "strata-walbuf") == 0) std::abort();
  g_state = new FaultVfs::State;
  g_state->root = root;
  g_vfs = sqlite3_vfs{};
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + root->szOsFile;
  g_vfs.mxPathname = root->mxPathname;
  g_vfs.zName = "strata-fault";
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
  if (sqlite3_vfs_register(&g_vfs, /*makeDflt=*/1) != SQLITE_OK) std::abort();
  sql::SetWalDirectWriteHook(&DirectWriteHook);
  // The shim registers now, over us; later stores open through both.
  if (sql::WalBufferVfsName() == nullptr) std::abort();
  if (sqlite3_vfs_find("strata-walbuf")->pAppData != &g_vfs) {
    fprintf(stderr, "fault_vfs: the WAL shim was registered before the fault VFS\n");
    std::abort();
  }
}

}  // namespace

FaultVfs& FaultVfs::Install() {
  static FaultVfs* vfs = [] {
    Register();
    return new FaultVfs;
  }();
  return *vfs;
}

void FaultVfs::Reset(std::string prefix, bool power_loss_mode, bool real_syncs) {
  std::scoped_lock lock(g_state->mu);
  g_state->prefix = std::move(prefix);
  g_state->power_loss = power_loss_mode;
  g_state->real_syncs = real_syncs;
  g_state->crashed = false;
  g_state->fault.reset();
  g_state->fault_count = 0;
  g_state->fired = false;
  g_state->counters = IoCounters{};
  g_state->nodes.clear();
}

void FaultVfs::SetFault(const Fault& fault) {
  std::scoped_lock lock(g_state->mu);
  g_state->fault = fault;
  g_state->fault_count = 0;
  g_state->fired = false;
}

void FaultVfs::ClearFault() {
  std::scoped_lock lock(g_state->mu);
  g_state->fault.reset();
}

void FaultVfs::Crash(bool torn, uint64_t seed) {
  std::scoped_lock lock(g_state->mu);
  CrashLocked(*g_state, torn, seed);
}

IoCounters FaultVfs::counters() const {
  std::scoped_lock lock(g_state->mu);
  return g_state->counters;
}

bool FaultVfs::fault_fired() const {
  std::scoped_lock lock(g_state->mu);
  return g_state->fired;
}

bool FaultVfs::crashed() const {
  std::scoped_lock lock(g_state->mu);
  return g_state->crashed;
}

const char* FileKindName(FileKind kind) {
  switch (kind) {
    case FileKind::kMainDb: return "db";
    case FileKind::kWal: return "wal";
    case FileKind::kJournal: return "journal";
    case FileKind::kOther: return "other";
  }
  return "?";
}

}  // namespace strata::testing
