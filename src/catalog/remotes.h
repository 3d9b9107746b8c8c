// Remotes: named S3 locations that sessions are pushed to and pulled from.
// Rows of `remotes`; credentials are never stored. Writing functions must
// run inside a write transaction.
#ifndef STRATA_CATALOG_REMOTES_H_
#define STRATA_CATALOG_REMOTES_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::catalog {

// Exists if the name is taken.
Status InsertRemote(sql::Connection& conn, const RemoteInfo& remote);
Result<RemoteInfo> GetRemote(sql::Connection& conn, std::string_view name);
Result<std::vector<RemoteInfo>> ListRemotes(sql::Connection& conn);
// NotFound if there is none of that name. Forgets its heads and what it
// holds (remote_chunks, remote_packs) too.
Status DeleteRemote(sql::Connection& conn, std::string_view name);

// What session `session` of remote `remote` was last pushed as or pulled
// from here (bundle "" if never).
Result<RemoteHeadInfo> GetRemoteHead(sql::Connection& conn, std::string_view remote,
                                     std::string_view session);
Status SetRemoteHead(sql::Connection& conn, std::string_view remote, std::string_view session,
                     const RemoteHeadInfo& head);

// What chunk_sha knows of a chunk: its SHA-256 (hex; empty if not known)
// and, for a host reference, the content key of its bytes (empty if not
// known, and for other chunks, whose key is chunks.hash).
struct ChunkDigests {
  std::string sha;
  std::string content_key;
};
Result<ChunkDigests> GetChunkSha(sql::Connection& conn, int64_t chunk);
Status PutChunkSha(sql::Connection& conn, int64_t chunk, const ChunkDigests& digests);

// Where remote `remote` holds the chunk of SHA-256 `sha`: an entry of a pack.
struct PackedChunk {
  std::string pack;  // the pack object's SHA-256 (hex)
  uint64_t offset = 0;
  uint32_t length = 0;
};
// nullopt if this store does not know of one.
Result<std::optional<PackedChunk>> GetRemoteChunk(sql::Connection& conn, std::string_view remote,
                                                  std::string_view sha);
Status PutRemoteChunk(sql::Connection& conn, std::string_view remote, std::string_view sha,
                      const PackedChunk& where);
// Whether the pack's index has been read (its chunks are in remote_chunks).
Result<bool> KnowsRemotePack(sql::Connection& conn, std::string_view remote,
                             std::string_view pack);
Status PutRemotePack(sql::Connection& conn, std::string_view remote, std::string_view pack);
// Forgets a pack that the remote no longer has, and the chunks it held.
Status ForgetRemotePack(sql::Connection& conn, std::string_view remote, std::string_view pack);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_REMOTES_H_
