#include "catalog/remotes.h"

#include <string>

namespace strata::catalog {

namespace {

constexpr const char* kInsertRemote =
    "INSERT INTO remotes(name, bucket, prefix, endpoint, region, created_ns)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
#define REMOTE_COLUMNS "SELECT name, bucket, prefix, endpoint, region, created_ns FROM remotes"
constexpr const char* kListRemotes = REMOTE_COLUMNS " ORDER BY name";
constexpr const char* kSelectRemote = REMOTE_COLUMNS " WHERE name = ?1";
#undef REMOTE_COLUMNS
constexpr const char* kDeleteRemote = "DELETE FROM remotes WHERE name = ?1";
constexpr const char* kDeleteRemoteHeads = "DELETE FROM remote_heads WHERE remote = ?1";
constexpr const char* kGetRemoteHead =
    "SELECT bundle, state FROM remote_heads WHERE remote = ?1 AND session = ?2";
constexpr const char* kSetRemoteHead =
    "INSERT OR REPLACE INTO remote_heads(remote, session, bundle, state) VALUES (?1, ?2, ?3, ?4)";

constexpr const char* kForgetRemoteChunks = "DELETE FROM remote_chunks WHERE remote = ?1";
constexpr const char* kForgetRemotePacks = "DELETE FROM remote_packs WHERE remote = ?1";
constexpr const char* kGetChunkSha = "SELECT sha, content_key FROM chunk_sha WHERE chunk = ?1";
constexpr const char* kPutChunkSha =
    "INSERT OR REPLACE INTO chunk_sha(chunk, sha, content_key) VALUES (?1, ?2, ?3)";
constexpr const char* kGetRemoteChunk =
    "SELECT pack, offset, length FROM remote_chunks WHERE remote = ?1 AND sha = ?2";
constexpr const char* kPutRemoteChunk =
    "INSERT OR REPLACE INTO remote_chunks(remote, sha, pack, offset, length)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char* kKnowsRemotePack =
    "SELECT 1 FROM remote_packs WHERE remote = ?1 AND pack = ?2";
constexpr const char* kPutRemotePack =
    "INSERT OR IGNORE INTO remote_packs(remote, pack) VALUES (?1, ?2)";
constexpr const char* kForgetPackChunks =
    "DELETE FROM remote_chunks WHERE remote = ?1 AND pack = ?2";
constexpr const char* kForgetPack = "DELETE FROM remote_packs WHERE remote = ?1 AND pack = ?2";

// Runs `sql` (a cached statement) with the remote's name as ?1 and `more`
// as ?2 when given.
Status RunForRemote(sql::Connection& conn, const char* sql, std::string_view remote,
                    std::optional<std::string_view> more = std::nullopt) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(sql));
  s.BindText(1, remote);
  if (more) s.BindText(2, *more);
  return s.Run();
}

RemoteInfo RemoteFromRow(sql::Statement& s) {
  RemoteInfo r;
  r.name = s.Text(0);
  r.bucket = s.Text(1);
  r.prefix = s.Text(2);
  r.endpoint = s.Text(3);
  r.region = s.Text(4);
  r.created_ns = s.Int(5);
  return r;
}

}  // namespace

Status InsertRemote(sql::Connection& conn, const RemoteInfo& remote) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInsertRemote));
  s.BindText(1, remote.name)
      .BindText(2, remote.bucket)
      .BindText(3, remote.prefix)
      .BindText(4, remote.endpoint)
      .BindText(5, remote.region)
      .Bind(6, remote.created_ns);
  Status st = s.Run();
  if (st.code() == Code::kExists) return Exists("remote '" + remote.name + "' already exists");
  return st;
}

Result<RemoteInfo> GetRemote(sql::Connection& conn, std::string_view name) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSelectRemote));
  s.BindText(1, name);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no remote named '" + std::string(name) + "' (see 'strata remote ls')");
  return RemoteFromRow(s);
}

Result<std::vector<RemoteInfo>> ListRemotes(sql::Connection& conn) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kListRemotes));
  std::vector<RemoteInfo> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(RemoteFromRow(s));
  }
  return out;
}

Status DeleteRemote(sql::Connection& conn, std::string_view name) {
  RETURN_IF_ERROR(GetRemote(conn, name).status());
  for (const char* sql : {kDeleteRemoteHeads, kForgetRemoteChunks, kForgetRemotePacks}) {
    RETURN_IF_ERROR(RunForRemote(conn, sql, name));
  }
  return RunForRemote(conn, kDeleteRemote, name);
}

Result<RemoteHeadInfo> GetRemoteHead(sql::Connection& conn, std::string_view remote,
                                     std::string_view session) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetRemoteHead));
  s.BindText(1, remote).BindText(2, session);
  ASSIGN_OR_RETURN(bool row, s.Step());
  RemoteHeadInfo head;
  if (row) {
    head.bundle = s.Text(0);
    head.state = s.Text(1);
  }
  return head;
}

Status SetRemoteHead(sql::Connection& conn, std::string_view remote, std::string_view session,
                     const RemoteHeadInfo& head) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSetRemoteHead));
  return s.BindText(1, remote)
      .BindText(2, session)
      .BindText(3, head.bundle)
      .BindText(4, head.state)
      .Run();
}

Result<ChunkDigests> GetChunkSha(sql::Connection& conn, int64_t chunk) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetChunkSha));
  s.Bind(1, chunk);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return ChunkDigests{};
  return ChunkDigests{s.Text(0), s.BlobString(1)};
}

Status PutChunkSha(sql::Connection& conn, int64_t chunk, const ChunkDigests& digests) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutChunkSha));
  s.Bind(1, chunk).BindText(2, digests.sha);
  if (digests.content_key.empty()) {
    s.BindNull(3);
  } else {
    s.BindBytes(3, digests.content_key);
  }
  return s.Run();
}

Result<std::optional<PackedChunk>> GetRemoteChunk(sql::Connection& conn, std::string_view remote,
                                                  std::string_view sha) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetRemoteChunk));
  s.BindText(1, remote).BindText(2, sha);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<PackedChunk>();
  return std::optional<PackedChunk>(PackedChunk{s.Text(0), static_cast<uint64_t>(s.Int(1)),
                                                static_cast<uint32_t>(s.Int(2))});
}

Status PutRemoteChunk(sql::Connection& conn, std::string_view remote, std::string_view sha,
                      const PackedChunk& where) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kPutRemoteChunk));
  return s.BindText(1, remote)
      .BindText(2, sha)
      .BindText(3, where.pack)
      .Bind(4, static_cast<int64_t>(where.offset))
      .Bind(5, static_cast<int64_t>(where.length))
      .Run();
}

Result<bool> KnowsRemotePack(sql::Connection& conn, std::string_view remote,
                             std::string_view pack) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kKnowsRemotePack));
  s.BindText(1, remote).BindText(2, pack);
  return s.Step();
}

Status PutRemotePack(sql::Connection& conn, std::string_view remote, std::string_view pack) {
  return RunForRemote(conn, kPutRemotePack, remote, pack);
}

Status ForgetRemotePack(sql::Connection& conn, std::string_view remote, std::string_view pack) {
  RETURN_IF_ERROR(RunForRemote(conn, kForgetPackChunks, remote, pack));
  return RunForRemote(conn, kForgetPack, remote, pack);
}

}  // namespace strata::catalog
