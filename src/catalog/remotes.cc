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
    "SELECT bundle FROM remote_heads WHERE remote = ?1 AND session = ?2";
constexpr const char* kSetRemoteHead =
    "INSERT OR REPLACE INTO remote_heads(remote, session, bundle) VALUES (?1, ?2, ?3)";

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
  ASSIGN_OR_RETURN(sql::Statement heads, conn.Prepare(kDeleteRemoteHeads));
  RETURN_IF_ERROR(heads.BindText(1, name).Run());
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kDeleteRemote));
  return s.BindText(1, name).Run();
}

Result<std::string> GetRemoteHead(sql::Connection& conn, std::string_view remote,
                                  std::string_view session) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetRemoteHead));
  s.BindText(1, remote).BindText(2, session);
  ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Text(0) : std::string();
}

Status SetRemoteHead(sql::Connection& conn, std::string_view remote, std::string_view session,
                     std::string_view bundle) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kSetRemoteHead));
  return s.BindText(1, remote).BindText(2, session).BindText(3, bundle).Run();
}

}  // namespace strata::catalog
