// Chunks of a pulled session that are still on the remote (codec kRemote
// rows): fetched, checked against their SHA-256, and written into the store
// in place of the references. Lazily, one read at a time (LazyFetcher, the
// process's chunks::RemoteChunkSource), or all at once (FetchMissing, for
// `pull --eager`).
#ifndef STRATA_REMOTE_FETCH_H_
#define STRATA_REMOTE_FETCH_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "remote/net_api.h"
#include "remote/s3_client.h"
#include "remote/transfer.h"
#include "sql/database.h"
#include "strata/store.h"

namespace strata::remote {

// One chunk read from a pack and checked.
struct FetchedChunk {
  std::string sha;
  uint64_t end = 0;    // where its entry ends in the pack
  int codec = 0;       // how `stored` holds it (pack.h: kStoredRaw, kStoredZstd)
  std::string stored;  // as the pack stores it, which is as a store does
  std::shared_ptr<const std::vector<uint8_t>> plain;
};

// The whole entries within `length` bytes at `offset` of pack `pack` of
// `remote`, each checked. Corruption naming the object for damage, NotFound
// for a pack that is not there.
Result<std::vector<FetchedChunk>> FetchEntries(S3Client& client, const NetApi& api,
                                               const RemoteInfo& remote, const std::string& pack,
                                               uint64_t offset, uint64_t length);

// Writes `chunks` into the store in place of the remote references to the
// same SHA-256 (and records those chunks' SHA-256 in chunk_sha), inside the
// caller's write transaction on `writer`. Returns how many rows it filled.
Result<uint64_t> FillChunks(sql::Connection& writer, std::span<const FetchedChunk> chunks);

// Fetches every chunk of the store at `store_path` that is still on
// `remote`, `parallel` ranges at a time. `progress` counts chunks.
Result<TransferStats> FetchMissing(const std::string& store_path, const RemoteInfo& remote,
                                   int parallel, const Progress& progress, const Getenv& env);

// Makes this process able to read chunks still on a remote: installs a
// chunks::RemoteChunkSource that fetches them with the credentials `env`
// gives (normally the process's environment; kept, so it must stay valid),
// reads ahead (doubling up to 8 MiB) while reads of
// a pack go forward, and writes what it fetched into the store from a
// thread of its own. Idempotent.
void InstallLazyFetcher(Getenv env);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_FETCH_H_
