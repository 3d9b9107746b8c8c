// POSIX behaviour of file data in Filesystem: reads and writes across block
// boundaries, sparse files, truncation, fallocate, the write buffer,
// open-but-unlinked files, and read-only snapshot views.
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "testing/temp_store.h"

namespace strata {
namespace {

using testing::StoreTest;

constexpr uint64_t kGiB = 1ull << 30;

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// `n` bytes that differ from block to block and from byte to byte, so that a
// misplaced block or a shifted offset shows.
std::string Pattern(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    out[i] = static_cast<char>(x >> 24);
  }
  return out;
}

// Options for a store of 4 KiB blocks.
StoreOptions SmallBlocks() {
  StoreOptions options;
  options.block_size = 4096;
  return options;
}

class FileTest : public StoreTest {
 protected:
  // Creates `name` in the root and leaves it open.
  InodeId CreateOpen(const std::string& name) {
    auto attr = fs_->Create(kRootIno, name, 0644, Cred{});
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    return attr.ok() ? attr->ino : 0;
  }

  void Write(InodeId ino, uint64_t offset, const std::string& data) {
    auto n = fs_->Write(ino, offset, AsBytes(data));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_EQ(*n, data.size());
  }

  // Reads up to `len` bytes at `offset` from `fs` (fs_ by default).
  std::string Read(InodeId ino, uint64_t offset, size_t len, Filesystem* fs = nullptr) {
    if (fs == nullptr) fs = fs_.get();
    std::string out(len, '\x55');
    auto n = fs->Read(ino, offset, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok()) return "<error>";
    out.resize(*n);
    return out;
  }

  uint64_t Size(InodeId ino) {
    auto attr = fs_->GetAttr(ino);
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    return attr.ok() ? attr->size : ~0ull;
  }

  Status Truncate(InodeId ino, uint64_t size) {
    AttrChanges changes;
    changes.size = size;
    return fs_->SetAttr(ino, changes).status();
  }

  // Random writes, reads, flushes and truncations checked against a string
  // holding the expected content.
  void RandomReadWriteAgainstModel(uint32_t seed, uint64_t span, int steps) {
    InodeId ino = CreateOpen("model");
    std::string model;
    std::mt19937_64 rng(seed);
    auto uniform = [&](uint64_t lo, uint64_t hi) {
      return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
    };
    for (int step = 0; step < steps; ++step) {
      uint64_t op = uniform(0, 9);
      if (op < 6) {
        uint64_t offset = uniform(0, span);
        size_t len = static_cast<size_t>(uniform(1, span / 2));
        std::string data = Pattern(len, static_cast<uint32_t>(step) + seed);
        ASSERT_NO_FATAL_FAILURE(Write(ino, offset, data));
        if (model.size() < offset + len) model.resize(offset + len, '\0');
        model.replace(offset, len, data);
      } else if (op < 8) {
        ASSERT_OK(fs_->Flush(ino));
      } else {
        uint64_t size = uniform(0, span);
        ASSERT_OK(Truncate(ino, size));
        model.resize(size, '\0');
      }
      ASSERT_EQ(Size(ino), model.size()) << "step " << step;
      // A random window, possibly past the end.
      uint64_t offset = uniform(0, span);
      size_t len = static_cast<size_t>(uniform(1, span / 2));
      std::string want = offset < model.size() ? model.substr(offset, len) : "";
      ASSERT_EQ(Read(ino, offset, len), want) << "step " << step << " offset " << offset;
    }
    ASSERT_EQ(Read(ino, 0, model.size() + 10), model);
    ASSERT_OK(fs_->Release(ino));
    EXPECT_EQ(ReadAll(*fs_, ino), model);
    // And from disk, after the store is closed and opened again.
    OpenStore(StoreOptions{});
    EXPECT_EQ(ReadAll(*fs_, ino), model);
    auto problems = store_->CheckIntegrity();
    ASSERT_TRUE(problems.ok()) << problems.status().ToString();
    for (auto& p : *problems) ADD_FAILURE() << p.kind << ": " << p.detail;
  }
};

// A fresh store of 4 KiB blocks (the block size is fixed when a store is
// created, so it cannot be the fixture's default store reopened).
class SmallBlockFileTest : public FileTest {
 protected:
  void SetUp() override {
    OpenStore(SmallBlocks());
    ASSERT_EQ(store_->block_size(), 4096u);
  }
};

// --- Reads and writes

TEST_F(FileTest, WriteThenReadBack) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "hello, world");
  EXPECT_EQ(Read(ino, 0, 100), "hello, world");
  EXPECT_EQ(Read(ino, 7, 5), "world");
  EXPECT_EQ(Size(ino), 12u);
}

TEST_F(FileTest, ReadAtOrPastEndReturnsNothing) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "abc");
  EXPECT_EQ(Read(ino, 3, 10), "");
  EXPECT_EQ(Read(ino, 1000000, 10), "");
  EXPECT_EQ(Read(ino, 2, 10), "c");
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, 3, 10), "");
  EXPECT_EQ(Read(ino, 2, 10), "c");
}

TEST_F(FileTest, EmptyWriteAndReadDoNothing) {
  InodeId ino = CreateOpen("f");
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->Write(ino, 5000, {}));
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(Size(ino), 0u);
  ASSERT_OK_AND_ASSIGN(size_t r, fs_->Read(ino, 0, {}));
  EXPECT_EQ(r, 0u);
}

TEST_F(FileTest, OverwriteInTheMiddleKeepsTheRest) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "aaaaaaaaaa");
  ASSERT_OK(fs_->Flush(ino));
  Write(ino, 3, "BBB");
  EXPECT_EQ(Read(ino, 0, 20), "aaaBBBaaaa");
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, 0, 20), "aaaBBBaaaa");
  EXPECT_EQ(Size(ino), 10u);
}

TEST_F(FileTest, WriteStraddlingABlockBoundary) {
  const uint64_t bs = store_->block_size();
  ASSERT_EQ(bs, 64u * 1024);
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(10, 1);
  Write(ino, bs - 5, data);
  EXPECT_EQ(Size(ino), bs + 5);
  EXPECT_EQ(Read(ino, bs - 5, 10), data);
  EXPECT_EQ(Read(ino, 0, bs - 5), std::string(bs - 5, '\0'));
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, bs - 5, 10), data);
  EXPECT_EQ(Read(ino, bs - 6, 12), std::string(1, '\0') + data);
}

TEST_F(FileTest, WriteSpanningManyBlocksReadBackInPieces) {
  const uint64_t bs = store_->block_size();
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(3 * bs + 777, 2);
  Write(ino, 123, data);
  for (bool flushed : {false, true}) {
    EXPECT_EQ(Read(ino, 123, data.size()), data) << flushed;
    EXPECT_EQ(Read(ino, bs, bs), data.substr(bs - 123, bs)) << flushed;
    EXPECT_EQ(Read(ino, 2 * bs - 1, 2), data.substr(2 * bs - 1 - 123, 2)) << flushed;
    ASSERT_OK(fs_->Flush(ino));
  }
}

TEST_F(FileTest, RandomWritesAcrossBlockBoundaries) {
  RandomReadWriteAgainstModel(1, 5 * 64 * 1024, 80);
}

TEST_F(SmallBlockFileTest, RandomWritesAcrossBlockBoundaries) {
  RandomReadWriteAgainstModel(2, 9 * 4096 + 100, 150);
}

TEST_F(SmallBlockFileTest, WriteReadAcrossManyBlocks) {
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(100000, 3);
  Write(ino, 4095, data);
  EXPECT_EQ(Read(ino, 4095, data.size()), data);
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, 4095, data.size()), data);
  EXPECT_EQ(Read(ino, 8190, 3), data.substr(4095, 3));
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.size, 4095u + data.size());
  // Every block up to the end holds data (the first one its last byte only).
  EXPECT_EQ(attr.blocks, (4095u + 100000 + 511) / 512);
}

TEST_F(SmallBlockFileTest, PunchHoleAndTruncateAcrossBlocks) {
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(10 * 4096, 13);
  Write(ino, 0, data);
  ASSERT_OK(fs_->Flush(ino));
  // [4000, 16288): blocks 1 and 2 entirely, blocks 0 and 3 in part.
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4000, 3 * 4096));
  std::string want = data;
  std::fill(want.begin() + 4000, want.begin() + 4000 + 3 * 4096, '\0');
  EXPECT_EQ(Read(ino, 0, want.size()), want);
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.size, 10u * 4096);
  EXPECT_EQ(attr.blocks, 8u * 4096 / 512);
  ASSERT_OK(Truncate(ino, 5000));
  ASSERT_OK(Truncate(ino, 9000));
  EXPECT_EQ(Read(ino, 0, 20000), data.substr(0, 4000) + std::string(5000, '\0'));
}

TEST_F(FileTest, WritesLargerThanTheWriteBufferFlushOnTheirOwn) {
  StoreOptions options;
  options.write_buffer_bytes = 128 * 1024;
  OpenStore(std::move(options));
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(2 << 20, 4);
  for (size_t off = 0; off < data.size(); off += 50000) {
    Write(ino, off, data.substr(off, 50000));
  }
  EXPECT_EQ(Read(ino, 0, data.size()), data);
  ASSERT_OK(fs_->Release(ino));
  OpenStore(StoreOptions{});
  EXPECT_EQ(ReadAll(*fs_, ino), data);
}

TEST_F(FileTest, WriteUpdatesSizeMtimeAndCtime) {
  auto now = std::make_shared<std::atomic<int64_t>>(5'000'000'000'000'000'123);
  StoreOptions options;
  options.clock = [now]() { return now->load(); };
  OpenStore(std::move(options));
  InodeId ino = CreateOpen("f");
  now->store(5'000'000'000'000'999'999);
  Write(ino, 10, "xyz");
  ASSERT_OK_AND_ASSIGN(Attr buffered, fs_->GetAttr(ino));
  EXPECT_EQ(buffered.size, 13u);
  EXPECT_EQ(buffered.mtime_ns, 5'000'000'000'000'999'999);
  EXPECT_EQ(buffered.ctime_ns, 5'000'000'000'000'999'999);
  now->store(5'000'000'000'001'000'000);
  ASSERT_OK(fs_->Flush(ino));
  ASSERT_OK_AND_ASSIGN(Attr flushed, fs_->GetAttr(ino));
  EXPECT_EQ(flushed.size, 13u);
  EXPECT_EQ(flushed.mtime_ns, 5'000'000'000'000'999'999);
  EXPECT_EQ(flushed.ctime_ns, 5'000'000'000'000'999'999);
}

TEST_F(FileTest, WriteWithoutOpenHandleWorks) {
  Attr f = WriteFile(kRootIno, "f", "0123456789");
  // No handle is open now; writes by inode still land.
  Write(f.ino, 5, "XY");
  EXPECT_EQ(ReadAll(*fs_, f.ino), "01234XY789");
}

TEST_F(FileTest, WriteToUnknownInodeIsNotFound) {
  std::string data = "x";
  EXPECT_CODE(fs_->Write(123456789, 0, AsBytes(data)), Code::kNotFound);
  std::string out(4, '\0');
  EXPECT_CODE(fs_->Read(123456789, 0, {reinterpret_cast<uint8_t*>(out.data()), 4}),
              Code::kNotFound);
}

TEST_F(FileTest, WriteIntoDirectoryIsIsDir) {
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, "d", 0755, Cred{}));
  std::string data = "x";
  EXPECT_CODE(fs_->Write(dir.ino, 0, AsBytes(data)), Code::kIsDir);
  EXPECT_CODE(fs_->Write(kRootIno, 0, AsBytes(data)), Code::kIsDir);
  // Also through an open handle on the directory.
  ASSERT_OK(fs_->Open(dir.ino));
  EXPECT_CODE(fs_->Write(dir.ino, 0, AsBytes(data)), Code::kIsDir);
  ASSERT_OK(fs_->Release(dir.ino));
  ASSERT_OK_AND_ASSIGN(Attr after, fs_->GetAttr(dir.ino));
  EXPECT_EQ(after.mode, S_IFDIR | 0755u);
}

TEST_F(FileTest, ReadOfDirectoryIsIsDir) {
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, "d", 0755, Cred{}));
  std::string out(10, '\0');
  EXPECT_CODE(fs_->Read(dir.ino, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()}),
              Code::kIsDir);
  EXPECT_CODE(fs_->Read(kRootIno, 0, {reinterpret_cast<uint8_t*>(out.data()), out.size()}),
              Code::kIsDir);
}

TEST_F(FileTest, WriteToSpecialFileIsInvalid) {
  ASSERT_OK_AND_ASSIGN(Attr fifo, fs_->MkNod(kRootIno, "p", S_IFIFO | 0644, 0, Cred{}));
  ASSERT_OK_AND_ASSIGN(Attr link, fs_->Symlink(kRootIno, "l", "p", Cred{}));
  std::string data = "x";
  EXPECT_CODE(fs_->Write(fifo.ino, 0, AsBytes(data)), Code::kInvalid);
  EXPECT_CODE(fs_->Write(link.ino, 0, AsBytes(data)), Code::kInvalid);
}

TEST_F(FileTest, FilesWithEqualContentStayIndependent) {
  std::string data = Pattern(200000, 5);
  Attr a = WriteFile(kRootIno, "a", data);
  Attr b = WriteFile(kRootIno, "b", data);
  ASSERT_OK(fs_->Open(a.ino));
  Write(a.ino, 70000, "CHANGED");
  ASSERT_OK(fs_->Release(a.ino));
  std::string changed = data;
  changed.replace(70000, 7, "CHANGED");
  EXPECT_EQ(ReadAll(*fs_, a.ino), changed);
  EXPECT_EQ(ReadAll(*fs_, b.ino), data);
}

// --- Buffered data

TEST_F(FileTest, DataIsReadableBeforeFlushAfterFlushAndAfterReopen) {
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(150000, 6);
  Write(ino, 1000, data);
  EXPECT_EQ(Size(ino), 151000u);
  EXPECT_EQ(Read(ino, 1000, data.size()), data);
  EXPECT_EQ(Read(ino, 0, 1000), std::string(1000, '\0'));
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Size(ino), 151000u);
  EXPECT_EQ(Read(ino, 1000, data.size()), data);
  // Unflushed data on top of flushed data.
  Write(ino, 500, "top");
  ASSERT_OK(fs_->Fsync(ino));
  Write(ino, 151000, "tail");
  OpenStore(StoreOptions{});
  EXPECT_EQ(Size(ino), 151004u);
  std::string want = std::string(500, '\0') + "top" + std::string(497, '\0') + data + "tail";
  EXPECT_EQ(ReadAll(*fs_, ino), want);
}

TEST_F(FileTest, BufferedDataCountsInBlocksBeforeFlush) {
  // As on Linux (ext4 counts delayed-allocation blocks): a file whose data is
  // not yet on disk does not look empty to stat. Tools such as tar --sparse
  // take st_blocks == 0 for a file made of holes only.
  InodeId ino = CreateOpen("f");
  Write(ino, 0, Pattern(10000, 14));
  ASSERT_OK_AND_ASSIGN(Attr buffered, fs_->GetAttr(ino));
  EXPECT_EQ(buffered.blocks, (10000u + 511) / 512);
  ASSERT_OK_AND_ASSIGN(Attr looked_up, fs_->Lookup(kRootIno, "f"));
  EXPECT_EQ(looked_up.blocks, (10000u + 511) / 512);
  ASSERT_OK(fs_->Flush(ino));
  ASSERT_OK_AND_ASSIGN(Attr flushed, fs_->GetAttr(ino));
  EXPECT_EQ(flushed.blocks, (10000u + 511) / 512);
}

TEST_F(FileTest, SetAttrTimesAfterBufferedWriteWin) {
  // The order of `cp -p` or `tar x`: write the data, then set the times.
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "data");
  AttrChanges changes;
  changes.atime_ns = 111'222'333'444'555'666;
  changes.mtime_ns = 222'333'444'555'666'777;
  ASSERT_OK_AND_ASSIGN(Attr set, fs_->SetAttr(ino, changes));
  EXPECT_EQ(set.mtime_ns, 222'333'444'555'666'777);
  EXPECT_EQ(set.atime_ns, 111'222'333'444'555'666);
  EXPECT_EQ(set.size, 4u);
  ASSERT_OK(fs_->Release(ino));
  ASSERT_OK_AND_ASSIGN(Attr later, fs_->GetAttr(ino));
  EXPECT_EQ(later.mtime_ns, 222'333'444'555'666'777);
  EXPECT_EQ(ReadAll(*fs_, ino), "data");
}

TEST_F(FileTest, TimesWrittenBackWithBufferedDataAreKeptWithIt) {
  // What the kernel's writeback cache sends after a file's pages: mtime and
  // ctime, equal, and nothing else; the data may still be buffered here.
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "buffered");
  AttrChanges times;
  times.mtime_ns = times.ctime_ns = 4'000'000'000'000'000'004;
  ASSERT_OK_AND_ASSIGN(Attr set, fs_->SetAttr(ino, times));
  EXPECT_EQ(set.mtime_ns, 4'000'000'000'000'000'004);
  EXPECT_EQ(set.ctime_ns, 4'000'000'000'000'000'004);
  EXPECT_EQ(set.size, 8u);
  // And with nothing buffered, the same.
  ASSERT_OK(fs_->Flush(ino));
  times.mtime_ns = times.ctime_ns = 4'000'000'000'000'000'005;
  ASSERT_OK_AND_ASSIGN(Attr again, fs_->SetAttr(ino, times));
  EXPECT_EQ(again.mtime_ns, 4'000'000'000'000'000'005);
  EXPECT_EQ(again.ctime_ns, 4'000'000'000'000'000'005);
  Write(ino, 8, "+more");
  times.mtime_ns = times.ctime_ns = 4'000'000'000'000'000'006;
  ASSERT_OK(fs_->SetAttr(ino, times).status());
  ASSERT_OK(fs_->Release(ino));
  OpenStore(StoreOptions{});
  ASSERT_OK_AND_ASSIGN(Attr stored, fs_->GetAttr(ino));
  EXPECT_EQ(stored.mtime_ns, 4'000'000'000'000'000'006);
  EXPECT_EQ(stored.ctime_ns, 4'000'000'000'000'000'006);
  EXPECT_EQ(ReadAll(*fs_, ino), "buffered+more");
}

TEST_F(FileTest, FlushAllCommitsEveryFile) {
  InodeId a = CreateOpen("a");
  InodeId b = CreateOpen("b");
  Write(a, 0, "first");
  Write(b, 70000, "second");
  ASSERT_OK(fs_->FlushAll());
  // A second filesystem over the same head reads only committed data.
  ASSERT_OK_AND_ASSIGN(auto other, store_->OpenFilesystem(View{branch_, kHead}));
  EXPECT_EQ(Read(a, 0, 10, other.get()), "first");
  EXPECT_EQ(Read(b, 70000, 10, other.get()), "second");
}

TEST_F(FileTest, StoreSyncCommitsBufferedData) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "synced");
  ASSERT_OK(store_->Sync());
  ASSERT_OK_AND_ASSIGN(auto other, store_->OpenFilesystem(View{branch_, kHead}));
  EXPECT_EQ(Read(ino, 0, 10, other.get()), "synced");
}

// --- Sparse files

TEST_F(FileTest, SparseFileAtOneGibibyte) {
  InodeId ino = CreateOpen("sparse");
  Write(ino, kGiB, "end");
  for (bool flushed : {false, true}) {
    ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
    EXPECT_EQ(attr.size, kGiB + 3) << flushed;
    // At most the one block holding "end" is stored: 64 KiB = 128 sectors.
    EXPECT_LE(attr.blocks, 128u) << flushed;
    EXPECT_EQ(Read(ino, 0, 4096), std::string(4096, '\0')) << flushed;
    EXPECT_EQ(Read(ino, kGiB / 2, 100000), std::string(100000, '\0')) << flushed;
    EXPECT_EQ(Read(ino, kGiB - 4, 10), std::string(4, '\0') + "end") << flushed;
    ASSERT_OK(fs_->Flush(ino));
  }
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.blocks, 128u);
}

TEST_F(SmallBlockFileTest, SparseFileCountsOnlyStoredBlocks) {
  InodeId ino = CreateOpen("sparse");
  Write(ino, kGiB - 2, "abcd");  // straddles two blocks
  ASSERT_OK(fs_->Flush(ino));
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.size, kGiB + 2);
  EXPECT_EQ(attr.blocks, 16u);
  EXPECT_EQ(Read(ino, kGiB - 3, 10), std::string(1, '\0') + "abcd");
}

TEST_F(FileTest, ZeroFilledWritesAreStoredAsHoles) {
  InodeId ino = CreateOpen("zeros");
  Write(ino, 0, std::string(4 * 64 * 1024, '\0'));
  ASSERT_OK(fs_->Flush(ino));
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.size, 4u * 64 * 1024);
  EXPECT_EQ(attr.blocks, 0u);
  EXPECT_EQ(Read(ino, 0, 10), std::string(10, '\0'));
}

TEST_F(FileTest, ExtendingWithSetAttrLeavesAHole) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "abc");
  ASSERT_OK(Truncate(ino, 10 * kGiB));
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.size, 10 * kGiB);
  EXPECT_EQ(attr.blocks, 64u * 1024 / 512);  // one stored block
  EXPECT_EQ(Read(ino, 0, 6), std::string("abc\0\0\0", 6));
  EXPECT_EQ(Read(ino, 10 * kGiB - 5, 10), std::string(5, '\0'));
}

// --- Size limits

TEST_F(FileTest, SizeUpToTwoToTheSixtyThreeMinusOne) {
  InodeId ino = CreateOpen("huge");
  ASSERT_OK(Truncate(ino, kMaxFileSize));
  EXPECT_EQ(Size(ino), kMaxFileSize);
  EXPECT_EQ(Read(ino, kMaxFileSize - 4, 100), std::string(4, '\0'));
  EXPECT_EQ(Read(ino, kMaxFileSize, 100), "");
  // The last byte can be written.
  Write(ino, kMaxFileSize - 1, "Z");
  EXPECT_EQ(Read(ino, kMaxFileSize - 2, 10), std::string("\0Z", 2));
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, kMaxFileSize - 2, 10), std::string("\0Z", 2));
  EXPECT_EQ(Size(ino), kMaxFileSize);
  ASSERT_OK(fs_->Release(ino));
  OpenStore(StoreOptions{});
  EXPECT_EQ(Size(ino), kMaxFileSize);
  EXPECT_EQ(Read(ino, kMaxFileSize - 1, 10), "Z");
}

TEST_F(FileTest, WritesPastTheMaximumSizeAreFileTooBig) {
  InodeId ino = CreateOpen("f");
  std::string one = "x";
  std::string two = "xy";
  EXPECT_CODE(fs_->Write(ino, kMaxFileSize, AsBytes(one)), Code::kFileTooBig);
  EXPECT_CODE(fs_->Write(ino, kMaxFileSize - 1, AsBytes(two)), Code::kFileTooBig);
  EXPECT_CODE(fs_->Write(ino, ~0ull, AsBytes(one)), Code::kFileTooBig);
  EXPECT_EQ(Size(ino), 0u);
  AttrChanges changes;
  changes.size = kMaxFileSize + 1;
  EXPECT_CODE(fs_->SetAttr(ino, changes), Code::kFileTooBig);
  EXPECT_CODE(fs_->Fallocate(ino, 0, kMaxFileSize, 1), Code::kFileTooBig);
  EXPECT_EQ(Size(ino), 0u);
}

// --- Truncation

TEST_F(FileTest, TruncateDownThenUpReadsZerosBeforeFlush) {
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(200000, 7);
  Write(ino, 0, data);  // still buffered
  ASSERT_OK(Truncate(ino, 1000));
  EXPECT_EQ(Size(ino), 1000u);
  EXPECT_EQ(Read(ino, 0, 5000), data.substr(0, 1000));
  ASSERT_OK(Truncate(ino, 200000));
  std::string want = data.substr(0, 1000) + std::string(199000, '\0');
  EXPECT_EQ(Read(ino, 0, 200000), want);
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, 0, 200000), want);
}

TEST_F(FileTest, TruncateDownThenUpReadsZerosAfterFlush) {
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(200000, 8);
  Write(ino, 0, data);
  ASSERT_OK(fs_->Flush(ino));
  ASSERT_OK(Truncate(ino, 70000));  // inside the second block
  ASSERT_OK(Truncate(ino, 300000));
  std::string want = data.substr(0, 70000) + std::string(230000, '\0');
  EXPECT_EQ(Read(ino, 0, 300000), want);
  ASSERT_OK(fs_->Release(ino));
  OpenStore(StoreOptions{});
  EXPECT_EQ(ReadAll(*fs_, ino), want);
}

TEST_F(FileTest, TruncateDownThenWritePastTheEndLeavesZerosInBetween) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, std::string(100, 'a'));
  ASSERT_OK(fs_->Flush(ino));
  ASSERT_OK(Truncate(ino, 10));
  Write(ino, 50, "b");  // same block, still buffered
  std::string want = std::string(10, 'a') + std::string(40, '\0') + "b";
  EXPECT_EQ(Read(ino, 0, 100), want);
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, 0, 100), want);
}

TEST_F(FileTest, TruncateToZeroDropsEverything) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, Pattern(300000, 9));
  ASSERT_OK(Truncate(ino, 0));
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.size, 0u);
  EXPECT_EQ(attr.blocks, 0u);
  EXPECT_EQ(Read(ino, 0, 10), "");
  ASSERT_OK(Truncate(ino, 300000));
  EXPECT_EQ(Read(ino, 0, 300000), std::string(300000, '\0'));
}

TEST_F(FileTest, TruncateOfSpecialFileIsInvalid) {
  ASSERT_OK_AND_ASSIGN(Attr fifo, fs_->MkNod(kRootIno, "p", S_IFIFO | 0644, 0, Cred{}));
  EXPECT_CODE(Truncate(fifo.ino, 10), Code::kInvalid);
}

TEST_F(FileTest, TruncateUpdatesMtime) {
  auto now = std::make_shared<std::atomic<int64_t>>(1'000'000'000'000'000'000);
  StoreOptions options;
  options.clock = [now]() { return now->load(); };
  OpenStore(std::move(options));
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "abcdef");
  ASSERT_OK(fs_->Flush(ino));
  now->store(1'000'000'000'000'777'000);
  ASSERT_OK(Truncate(ino, 3));
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.mtime_ns, 1'000'000'000'000'777'000);
  EXPECT_EQ(attr.ctime_ns, 1'000'000'000'000'777'000);
}

// --- Fallocate

TEST_F(FileTest, FallocateExtendsTheSize) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "abc");
  ASSERT_OK(fs_->Fallocate(ino, 0, 100, 1000));
  EXPECT_EQ(Size(ino), 1100u);
  EXPECT_EQ(Read(ino, 0, 2000), std::string("abc") + std::string(1097, '\0'));
  // A range inside the file changes nothing.
  ASSERT_OK(fs_->Fallocate(ino, 0, 0, 10));
  EXPECT_EQ(Size(ino), 1100u);
  EXPECT_EQ(Read(ino, 0, 3), "abc");
}

TEST_F(FileTest, FallocateKeepSizeDoesNotChangeTheSize) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "abc");
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_KEEP_SIZE, 0, 1 << 20));
  EXPECT_EQ(Size(ino), 3u);
  EXPECT_EQ(Read(ino, 0, 10), "abc");
}

TEST_F(FileTest, PunchHoleZeroesPartialAndWholeBlocksKeepingSize) {
  const uint64_t bs = store_->block_size();
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(4 * bs, 10);
  Write(ino, 0, data);
  ASSERT_OK(fs_->Flush(ino));
  ASSERT_OK_AND_ASSIGN(Attr before, fs_->GetAttr(ino));
  EXPECT_EQ(before.blocks, 4 * bs / 512);
  // From inside block 0 to inside block 3: blocks 1 and 2 go entirely.
  const uint64_t from = bs - 100;
  const uint64_t len = 2 * bs + 300;
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, from, len));
  std::string want = data;
  std::fill(want.begin() + from, want.begin() + from + len, '\0');
  ASSERT_OK_AND_ASSIGN(Attr after, fs_->GetAttr(ino));
  EXPECT_EQ(after.size, 4 * bs);
  EXPECT_EQ(after.blocks, 2 * bs / 512);
  EXPECT_EQ(Read(ino, 0, 4 * bs), want);
  ASSERT_OK(fs_->Release(ino));
  OpenStore(StoreOptions{});
  EXPECT_EQ(ReadAll(*fs_, ino), want);
}

TEST_F(FileTest, PunchHoleWithinOneBlock) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "0123456789");
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2, 3));
  EXPECT_EQ(Read(ino, 0, 20), std::string("01\0\0\0" "56789", 10));
  EXPECT_EQ(Size(ino), 10u);
}

TEST_F(FileTest, PunchHoleCoversBufferedData) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, std::string(1000, 'q'));  // not flushed
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 500));
  EXPECT_EQ(Read(ino, 0, 1000), std::string(500, '\0') + std::string(500, 'q'));
}

TEST_F(FileTest, PunchHolePastTheEndDoesNotGrowTheFile) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "abcdef");
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 3, 1 << 20));
  EXPECT_EQ(Size(ino), 6u);
  EXPECT_EQ(Read(ino, 0, 10), std::string("abc\0\0\0", 6));
}

TEST_F(FileTest, PunchHoleWithoutKeepSizeIsNotSupported) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "abcdef");
  EXPECT_CODE(fs_->Fallocate(ino, FALLOC_FL_PUNCH_HOLE, 0, 3), Code::kNotSupported);
  EXPECT_EQ(Read(ino, 0, 10), "abcdef");
}

TEST_F(FileTest, UnsupportedFallocateModesAreNotSupported) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, std::string(8192, 'a'));
  EXPECT_CODE(fs_->Fallocate(ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), Code::kNotSupported);
  EXPECT_CODE(fs_->Fallocate(ino, FALLOC_FL_INSERT_RANGE, 0, 4096), Code::kNotSupported);
  EXPECT_EQ(Size(ino), 8192u);
}

TEST_F(FileTest, FallocateWithZeroLengthIsInvalid) {
  InodeId ino = CreateOpen("f");
  EXPECT_CODE(fs_->Fallocate(ino, 0, 0, 0), Code::kInvalid);
}

TEST_F(FileTest, FallocateOnDirectoryIsIsDir) {
  ASSERT_OK_AND_ASSIGN(Attr dir, fs_->MkDir(kRootIno, "d", 0755, Cred{}));
  EXPECT_CODE(fs_->Fallocate(dir.ino, 0, 0, 10), Code::kIsDir);
}

TEST_F(FileTest, ZeroRangeZeroesAndExtends) {
  const uint64_t bs = store_->block_size();
  InodeId ino = CreateOpen("f");
  std::string data = Pattern(2 * bs, 11);
  Write(ino, 0, data);
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_ZERO_RANGE, bs - 10, 20));
  std::string want = data;
  std::fill(want.begin() + bs - 10, want.begin() + bs + 10, '\0');
  EXPECT_EQ(Size(ino), 2 * bs);
  EXPECT_EQ(Read(ino, 0, 2 * bs), want);
  // Past the end it grows the file with zeros.
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_ZERO_RANGE, 2 * bs - 5, 105));
  want.replace(2 * bs - 5, 5, std::string(5, '\0'));
  want.append(100, '\0');
  EXPECT_EQ(Size(ino), 2 * bs + 100);
  EXPECT_EQ(Read(ino, 0, 3 * bs), want);
  // With KEEP_SIZE it does not.
  ASSERT_OK(fs_->Fallocate(ino, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, 3 * bs));
  EXPECT_EQ(Size(ino), 2 * bs + 100);
  EXPECT_EQ(Read(ino, 0, 3 * bs), std::string(2 * bs + 100, '\0'));
}

// --- Open but unlinked

TEST_F(FileTest, UnlinkedOpenFileStaysReadableAndWritableUntilRelease) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "before");
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_CODE(fs_->Lookup(kRootIno, "f"), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto entries, fs_->ReadDir(kRootIno));
  EXPECT_EQ(entries.size(), 2u);
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->GetAttr(ino));
  EXPECT_EQ(attr.nlink, 0u);
  EXPECT_EQ(attr.size, 6u);
  EXPECT_EQ(Read(ino, 0, 100), "before");
  Write(ino, 6, "+after");
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, 0, 100), "before+after");
  ASSERT_OK(fs_->Release(ino));
  EXPECT_CODE(fs_->GetAttr(ino), Code::kNotFound);
  std::string out(4, '\0');
  EXPECT_CODE(fs_->Read(ino, 0, {reinterpret_cast<uint8_t*>(out.data()), 4}), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  for (auto& p : problems) ADD_FAILURE() << p.kind << ": " << p.detail;
}

TEST_F(FileTest, UnlinkedFileLivesUntilTheLastOfSeveralReleases) {
  InodeId ino = CreateOpen("f");
  ASSERT_OK(fs_->Open(ino));
  Write(ino, 0, "two handles");
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  ASSERT_OK(fs_->Release(ino));
  EXPECT_EQ(Read(ino, 0, 100), "two handles");
  ASSERT_OK(fs_->Release(ino));
  EXPECT_CODE(fs_->GetAttr(ino), Code::kNotFound);
}

TEST_F(FileTest, OpenFileReplacedByRenameStaysReadable) {
  Attr victim = WriteFile(kRootIno, "victim", "old data");
  WriteFile(kRootIno, "new", "new data");
  ASSERT_OK(fs_->Open(victim.ino));
  ASSERT_OK(fs_->Rename(kRootIno, "new", kRootIno, "victim", 0));
  EXPECT_EQ(Read(victim.ino, 0, 100), "old data");
  ASSERT_OK_AND_ASSIGN(Attr named, fs_->Lookup(kRootIno, "victim"));
  EXPECT_EQ(ReadAll(*fs_, named.ino), "new data");
  ASSERT_OK(fs_->Release(victim.ino));
  EXPECT_CODE(fs_->GetAttr(victim.ino), Code::kNotFound);
}

TEST_F(FileTest, UnlinkedOpenFileCanBeLinkedBack) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "saved");
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  ASSERT_OK_AND_ASSIGN(Attr linked, fs_->Link(ino, kRootIno, "g"));
  EXPECT_EQ(linked.nlink, 1u);
  ASSERT_OK(fs_->Release(ino));
  ASSERT_OK_AND_ASSIGN(Attr attr, fs_->Lookup(kRootIno, "g"));
  EXPECT_EQ(attr.ino, ino);
  EXPECT_EQ(ReadAll(*fs_, ino), "saved");
  OpenStore(StoreOptions{});
  EXPECT_EQ(ReadAll(*fs_, ino), "saved");
}

TEST_F(FileTest, UnlinkedOpenFileIsGoneAfterReopeningTheStore) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "orphan data");
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_EQ(Read(ino, 0, 100), "orphan data");
  // Closed without Release, as if the process had died.
  OpenStore(StoreOptions{});
  EXPECT_CODE(fs_->GetAttr(ino), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  for (auto& p : problems) ADD_FAILURE() << p.kind << ": " << p.detail;
}

TEST_F(FileTest, UnlinkOfClosedFileRemovesItAtOnce) {
  Attr f = WriteFile(kRootIno, "f", "x");
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_CODE(fs_->GetAttr(f.ino), Code::kNotFound);
  EXPECT_CODE(fs_->Open(f.ino), Code::kNotFound);
}

TEST_F(FileTest, ReleaseWithoutOpenIsInvalid) {
  Attr f = WriteFile(kRootIno, "f", "x");
  EXPECT_CODE(fs_->Release(f.ino), Code::kInvalid);
}

// --- Snapshots

TEST_F(FileTest, SnapshotFilesystemIsReadOnly) {
  Attr dir = *fs_->MkDir(kRootIno, "d", 0755, Cred{});
  Attr file = WriteFile(kRootIno, "f", "data");
  ASSERT_OK(fs_->SetXattr(file.ino, "user.a", "1", 0));
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_, "snap"));
  ASSERT_OK_AND_ASSIGN(auto snap, store_->OpenFilesystem(View{branch_, v}));
  EXPECT_TRUE(snap->read_only());
  EXPECT_EQ(snap->view().branch, branch_);
  EXPECT_EQ(snap->view().version, v);
  std::string bytes = "x";
  AttrChanges chmod;
  chmod.mode = 0600;
  EXPECT_CODE(snap->SetAttr(file.ino, chmod), Code::kReadOnly);
  EXPECT_CODE(snap->MkNod(kRootIno, "n", S_IFREG | 0644, 0, Cred{}), Code::kReadOnly);
  EXPECT_CODE(snap->MkDir(kRootIno, "n", 0755, Cred{}), Code::kReadOnly);
  EXPECT_CODE(snap->Symlink(kRootIno, "n", "t", Cred{}), Code::kReadOnly);
  EXPECT_CODE(snap->Link(file.ino, kRootIno, "n"), Code::kReadOnly);
  EXPECT_CODE(snap->Unlink(kRootIno, "f"), Code::kReadOnly);
  EXPECT_CODE(snap->RmDir(kRootIno, "d"), Code::kReadOnly);
  EXPECT_CODE(snap->Rename(kRootIno, "f", kRootIno, "g", 0), Code::kReadOnly);
  EXPECT_CODE(snap->Rename(kRootIno, "f", kRootIno, "d", RENAME_EXCHANGE), Code::kReadOnly);
  EXPECT_CODE(snap->Create(kRootIno, "n", 0644, Cred{}), Code::kReadOnly);
  EXPECT_CODE(snap->Write(file.ino, 0, AsBytes(bytes)), Code::kReadOnly);
  EXPECT_CODE(snap->Fallocate(file.ino, 0, 0, 100), Code::kReadOnly);
  EXPECT_CODE(snap->Fallocate(file.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1),
              Code::kReadOnly);
  EXPECT_CODE(snap->SetXattr(file.ino, "user.b", "2", 0), Code::kReadOnly);
  EXPECT_CODE(snap->RemoveXattr(file.ino, "user.a"), Code::kReadOnly);
  // Nothing changed, in the snapshot or in the head.
  for (Filesystem* f : {snap.get(), fs_.get()}) {
    ASSERT_OK_AND_ASSIGN(auto entries, f->ReadDir(kRootIno));
    ASSERT_EQ(entries.size(), 4u);
    EXPECT_EQ(entries[2].name, "d");
    EXPECT_EQ(entries[3].name, "f");
    EXPECT_EQ(ReadAll(*f, file.ino), "data");
    ASSERT_OK_AND_ASSIGN(Attr a, f->GetAttr(file.ino));
    EXPECT_EQ(a.mode, S_IFREG | 0644u);
    ASSERT_OK_AND_ASSIGN(auto names, f->ListXattr(file.ino));
    EXPECT_EQ(names, std::vector<std::string>{"user.a"});
  }
  EXPECT_EQ(dir.nlink, 2u);
  // Reading through an open handle works.
  ASSERT_OK(snap->Open(file.ino));
  EXPECT_EQ(Read(file.ino, 0, 10, snap.get()), "data");
  ASSERT_OK(snap->Release(file.ino));
}

TEST_F(FileTest, SnapshotSeesDataAsOfTheSnapshot) {
  const uint64_t bs = store_->block_size();
  std::string data = Pattern(3 * bs, 12);
  Attr f = WriteFile(kRootIno, "f", data);
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_));
  // Change the head in every way: overwrite, extend, truncate, punch, rename.
  ASSERT_OK(fs_->Open(f.ino));
  Write(f.ino, 10, "changed");
  Write(f.ino, 5 * bs, "extended");
  ASSERT_OK(fs_->Flush(f.ino));
  ASSERT_OK(fs_->Fallocate(f.ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, bs, bs));
  ASSERT_OK(Truncate(f.ino, 2 * bs + 1));
  ASSERT_OK(fs_->Release(f.ino));
  ASSERT_OK(fs_->Rename(kRootIno, "f", kRootIno, "g", 0));
  ASSERT_OK_AND_ASSIGN(auto snap, store_->OpenFilesystem(View{branch_, v}));
  ASSERT_OK_AND_ASSIGN(Attr at_v, snap->Lookup(kRootIno, "f"));
  EXPECT_EQ(at_v.size, 3 * bs);
  EXPECT_EQ(ReadAll(*snap, f.ino), data);
  EXPECT_CODE(snap->Lookup(kRootIno, "g"), Code::kNotFound);
  // The head has its own content.
  std::string head = data.substr(0, 2 * bs + 1);
  head.replace(10, 7, "changed");
  std::fill(head.begin() + bs, head.begin() + 2 * bs, '\0');
  EXPECT_EQ(ReadAll(*fs_, f.ino), head);
}

TEST_F(FileTest, SnapshotIncludesDataStillBufferedWhenTaken) {
  InodeId ino = CreateOpen("f");
  Write(ino, 0, "first version");
  Write(ino, 100000, "far");
  // Nothing flushed: Snapshot must commit the buffer first.
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_));
  Write(ino, 0, "FIRST");
  Write(ino, 200000, "later");
  ASSERT_OK_AND_ASSIGN(auto snap, store_->OpenFilesystem(View{branch_, v}));
  ASSERT_OK_AND_ASSIGN(Attr attr, snap->GetAttr(ino));
  EXPECT_EQ(attr.size, 100003u);
  EXPECT_EQ(Read(ino, 0, 13, snap.get()), "first version");
  EXPECT_EQ(Read(ino, 100000, 10, snap.get()), "far");
  // Still so after the head flushes its newer data.
  ASSERT_OK(fs_->Flush(ino));
  EXPECT_EQ(Read(ino, 0, 13, snap.get()), "first version");
  EXPECT_EQ(Read(ino, 199990, 100, snap.get()), "");
  EXPECT_EQ(Read(ino, 0, 13), "FIRST version");
  EXPECT_EQ(Size(ino), 200005u);
}

TEST_F(FileTest, SnapshotKeepsFilesRemovedFromTheHead) {
  Attr f = WriteFile(kRootIno, "f", "gone from head");
  ASSERT_OK_AND_ASSIGN(Version v, store_->Snapshot(branch_));
  ASSERT_OK(fs_->Unlink(kRootIno, "f"));
  EXPECT_CODE(fs_->GetAttr(f.ino), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto snap, store_->OpenFilesystem(View{branch_, v}));
  EXPECT_EQ(ReadAll(*snap, f.ino), "gone from head");
  ASSERT_OK_AND_ASSIGN(Attr attr, snap->Lookup(kRootIno, "f"));
  EXPECT_EQ(attr.nlink, 1u);
}

TEST_F(FileTest, OpeningAVersionThatIsNotFrozenIsNotFound) {
  ASSERT_OK_AND_ASSIGN(BranchInfo info, store_->GetBranch(branch_));
  EXPECT_CODE(store_->OpenFilesystem(View{branch_, info.head_version}), Code::kNotFound);
  EXPECT_CODE(store_->OpenFilesystem(View{branch_, 0}), Code::kNotFound);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// --- copy_file_range

// Random copies between two files (aligned and unaligned offsets, holes,
// data still buffered, ranges past either end) checked against models.
TEST_F(SmallBlockFileTest, CopyRangeMatchesAModel) {
  InodeId a = CreateOpen("a");
  InodeId b = CreateOpen("b");
  std::string ma, mb;
  std::mt19937_64 rng(7);
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  auto write = [&](InodeId ino, std::string& model, uint64_t offset, const std::string& data) {
    ASSERT_NO_FATAL_FAILURE(Write(ino, offset, data));
    if (model.size() < offset + data.size()) model.resize(offset + data.size(), '\0');
    model.replace(offset, data.size(), data);
  };
  ASSERT_NO_FATAL_FAILURE(write(a, ma, 0, Pattern(100000, 1)));
  ASSERT_NO_FATAL_FAILURE(write(a, ma, 200000, Pattern(30000, 2)));  // a hole before it
  ASSERT_OK(fs_->Flush(a));
  for (int step = 0; step < 300; ++step) {
    const bool to_b = uniform(0, 1) == 0;
    InodeId in = to_b ? a : b, out = to_b ? b : a;
    std::string& min = to_b ? ma : mb;
    std::string& mout = to_b ? mb : ma;
    uint64_t in_offset = uniform(0, 240000);
    // Half the time at the same offset within a block, so blocks are shared.
    uint64_t out_offset = uniform(0, 1) == 0 ? in_offset % 4096 + 4096 * uniform(0, 60)
                                             : uniform(0, 240000);
    uint64_t length = uniform(1, 60000);
    ASSERT_OK_AND_ASSIGN(size_t n, fs_->CopyRange(in, in_offset, out, out_offset, length));
    uint64_t want = in_offset >= min.size() ? 0 : std::min<uint64_t>(length, min.size() - in_offset);
    ASSERT_EQ(n, want) << "step " << step;
    if (n > 0) {
      std::string piece = min.substr(in_offset, n);
      if (mout.size() < out_offset + n) mout.resize(out_offset + n, '\0');
      mout.replace(out_offset, n, piece);
    }
    if (step % 7 == 0) {
      ASSERT_NO_FATAL_FAILURE(write(out, mout, uniform(0, 200000), Pattern(uniform(1, 9000), step)));
    }
    if (step % 11 == 0) {
      ASSERT_OK(fs_->Flush(out));
    }
    ASSERT_EQ(Size(a), ma.size()) << "step " << step;
    ASSERT_EQ(Size(b), mb.size()) << "step " << step;
  }
  EXPECT_EQ(Read(a, 0, ma.size() + 10), ma);
  EXPECT_EQ(Read(b, 0, mb.size() + 10), mb);
  ASSERT_OK(fs_->Release(a));
  ASSERT_OK(fs_->Release(b));
  OpenStore(StoreOptions{});
  EXPECT_EQ(ReadAll(*fs_, a), ma);
  EXPECT_EQ(ReadAll(*fs_, b), mb);
  ASSERT_OK_AND_ASSIGN(auto problems, store_->CheckIntegrity());
  for (auto& p : problems) ADD_FAILURE() << p.kind << ": " << p.detail;
}

// Aligned whole blocks are shared, not copied: no byte of them is hashed again.
TEST_F(FileTest, CopyRangeSharesAlignedBlocksWithoutRehashing) {
  auto hashed = std::make_shared<std::atomic<uint64_t>>(0);
  StoreOptions options;
  options.hash = [hashed](std::span<const uint8_t> bytes) {
    *hashed += bytes.size();
    return Xxh3Hash(bytes);
  };
  OpenStore(options);
  const uint64_t block = store_->block_size();
  InodeId in = CreateOpen("in");
  const std::string data = Pattern(8 * block + 100, 3);
  ASSERT_NO_FATAL_FAILURE(Write(in, 0, data));
  ASSERT_OK(fs_->Flush(in));
  InodeId out = CreateOpen("out");
  const uint64_t before = hashed->load();
  ASSERT_OK_AND_ASSIGN(size_t n, fs_->CopyRange(in, block, out, 3 * block, 6 * block + 50));
  EXPECT_EQ(n, 6 * block + 50);
  ASSERT_OK(fs_->Flush(out));
  EXPECT_LT(hashed->load() - before, block) << "only the 50-byte tail may be hashed";
  EXPECT_EQ(Read(out, 0, 10 * block), std::string(3 * block, '\0') + data.substr(block, n));
  // Overlapping ranges of one file are refused; past the end copies nothing.
  EXPECT_CODE(fs_->CopyRange(in, 0, in, 100, 1000), Code::kInvalid);
  ASSERT_OK_AND_ASSIGN(n, fs_->CopyRange(in, data.size(), out, 0, 10));
  EXPECT_EQ(n, 0u);
}

}  // namespace
}  // namespace strata

namespace strata {
namespace {

// A lookup that starts after a write returned sees at least that write's
// size, even while background flushes move the data from the buffer into
// batched commits (a lookup's buffer view is taken after its read begins).
TEST_F(FileTest, LookupNeverSeesASizeOlderThanAReturnedWrite) {
  // The window is narrow: 30 rounds, each with a writer, a thread completing
  // flushes as fast as it can, and lookups (without the fix, about one round
  // in 50 caught a stale size).
  uint64_t lookups = 0, stale = 0;
  for (int round = 0; round < 30; ++round) {
    const std::string name = "grow" + std::to_string(round);
    ASSERT_OK_AND_ASSIGN(Attr f, fs_->Create(kRootIno, name, 0644, Cred{}));
    std::atomic<uint64_t> written{0};
    std::atomic<bool> done{false};
    std::thread writer([&] {
      const std::string piece(100, 'x');
      for (uint64_t i = 0; i < 3000; ++i) {
        auto n = fs_->Write(f.ino, i * piece.size(),
                            {reinterpret_cast<const uint8_t*>(piece.data()), piece.size()});
        if (!n.ok()) break;
        written.store((i + 1) * piece.size());
        fs_->FlushLater(f.ino);  // background flushes race the lookups too
      }
      done = true;
    });
    std::thread flusher([&] {
      while (!done.load()) (void)fs_->FlushAll();
    });
    while (!done.load()) {
      const uint64_t before = written.load();
      auto attr = fs_->Lookup(kRootIno, name);
      ASSERT_TRUE(attr.ok()) << attr.status().ToString();
      ++lookups;
      if (attr->size < before) ++stale;
    }
    writer.join();
    flusher.join();
    ASSERT_OK(fs_->Release(f.ino));
  }
  EXPECT_GT(lookups, 0u);
  EXPECT_EQ(stale, 0u) << "of " << lookups << " lookups";
}

}  // namespace
}  // namespace strata
