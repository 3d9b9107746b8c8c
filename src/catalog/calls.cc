#include "catalog/calls.h"

#include <string>

#include "strata/store.h"

namespace strata::catalog {

namespace {

#define CALL_COLUMNS                                                                    \
  "id, branch, parent, name, args, result, error, status, start_ns, end_ns, exit_status," \
  " stdout, stderr, version_before, version_after"

constexpr const char* kInsertCall =
    "INSERT INTO tool_calls(branch, parent, name, args, status, start_ns, version_before)"
    " VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6)";
constexpr const char* kFinishCall =
    "UPDATE tool_calls SET status = ?2, result = ?3, error = ?4, end_ns = ?5, exit_status = ?6,"
    " stdout = ?7, stderr = ?8, version_after = ?9 WHERE id = ?1";
constexpr const char* kGetCall = "SELECT " CALL_COLUMNS " FROM tool_calls WHERE id = ?1";
// One branch's part of a history, newest first; NULL filters match all.
constexpr const char* kListCalls =
    "SELECT " CALL_COLUMNS " FROM tool_calls WHERE branch = ?1 AND version_before < ?2"
    " AND (?3 IS NULL OR name = ?3) AND (?4 IS NULL OR status = ?4)"
    " AND (?5 IS NULL OR start_ns >= ?5) ORDER BY id DESC LIMIT ?6";

#undef CALL_COLUMNS

constexpr const char* kInsertOutput =
    "INSERT INTO call_output(call, stream, idx, chunk) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kOutputLength =
    "SELECT count(*) FROM call_output WHERE call = ?1 AND stream = ?2";
constexpr const char* kOutputChunks =
    "SELECT chunk FROM call_output WHERE call = ?1 AND stream = ?2 ORDER BY idx";

Result<ToolCall> ReadCall(const sql::Statement& s) {
  ToolCall c;
  c.id = s.Int(0);
  c.branch = s.Int(1);
  if (!s.IsNull(2)) c.parent = s.Int(2);
  c.name = s.Text(3);
  c.args = s.Text(4);
  if (!s.IsNull(5)) c.result = s.Text(5);
  if (!s.IsNull(6)) c.error = s.Text(6);
  ASSIGN_OR_RETURN(c.status, ParseCallStatus(s.Text(7)));
  c.start_ns = s.Int(8);
  if (!s.IsNull(9)) c.end_ns = s.Int(9);
  if (!s.IsNull(10)) c.exit_status = static_cast<int>(s.Int(10));
  if (!s.IsNull(11)) c.stdout_data = s.BlobString(11);
  if (!s.IsNull(12)) c.stderr_data = s.BlobString(12);
  c.version_before = s.Int(13);
  if (!s.IsNull(14)) c.version_after = s.Int(14);
  return c;
}

}  // namespace

Result<int64_t> InsertCall(sql::Connection& conn, const ToolCall& call) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInsertCall));
  s.Bind(1, call.branch);
  if (call.parent.has_value()) {
    s.Bind(2, *call.parent);
  } else {
    s.BindNull(2);
  }
  s.BindText(3, call.name).BindText(4, call.args).Bind(5, call.start_ns).Bind(6, call.version_before);
  RETURN_IF_ERROR(s.Run());
  return conn.LastInsertRowId();
}

Status FinishCall(sql::Connection& conn, const ToolCall& call) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kFinishCall));
  s.Bind(1, call.id).BindText(2, CallStatusName(call.status));
  auto text_or_null = [&](int index, const std::optional<std::string>& v) {
    if (v.has_value()) {
      s.BindText(index, *v);
    } else {
      s.BindNull(index);
    }
  };
  auto int_or_null = [&](int index, const auto& v) {
    if (v.has_value()) {
      s.Bind(index, static_cast<int64_t>(*v));
    } else {
      s.BindNull(index);
    }
  };
  text_or_null(3, call.result);
  text_or_null(4, call.error);
  int_or_null(5, call.end_ns);
  int_or_null(6, call.exit_status);
  // Output lives in call_output (see Store); the columns hold only that of
  // calls recorded before it did.
  auto bytes_or_null = [&](int index, const std::string& v) {
    if (v.empty()) {
      s.BindNull(index);
    } else {
      s.BindBytes(index, v);
    }
  };
  bytes_or_null(7, call.stdout_data);
  bytes_or_null(8, call.stderr_data);
  int_or_null(9, call.version_after);
  return s.Run();
}

Status InsertOutput(sql::Connection& conn, int64_t call, int stream,
                    const std::vector<int64_t>& chunks) {
  if (chunks.empty()) return Status::Ok();
  int64_t next = 0;
  {
    ASSIGN_OR_RETURN(sql::Statement count, conn.Prepare(kOutputLength));
    count.Bind(1, call).Bind(2, stream);
    ASSIGN_OR_RETURN(bool row, count.Step());
    if (row) next = count.Int(0);
  }
  for (int64_t chunk : chunks) {
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kInsertOutput));
    RETURN_IF_ERROR(s.Bind(1, call).Bind(2, stream).Bind(3, next++).Bind(4, chunk).Run());
  }
  return Status::Ok();
}

Result<std::vector<int64_t>> OutputChunks(sql::Connection& conn, int64_t call, int stream) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kOutputChunks));
  s.Bind(1, call).Bind(2, stream);
  std::vector<int64_t> out;
  for (;;) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(s.Int(0));
  }
  return out;
}

Result<ToolCall> GetCall(sql::Connection& conn, int64_t id) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kGetCall));
  s.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no tool call " + std::to_string(id));
  return ReadCall(s);
}

Result<std::vector<ToolCall>> ListCalls(sql::Connection& conn,
                                        const std::vector<std::pair<BranchId, Version>>& ancestry,
                                        const CallFilter& filter) {
  // Every call an ancestor shows was started before the fork that leads
  // here, so before every call of the branches below it: the branches'
  // parts, shallowest first, are already newest first as a whole.
  std::vector<ToolCall> out;
  for (const auto& [branch, limit] : ancestry) {
    if (filter.limit != 0 && out.size() >= filter.limit) break;
    ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kListCalls));
    s.Bind(1, branch).Bind(2, limit);
    if (filter.name.empty()) {
      s.BindNull(3);
    } else {
      s.BindText(3, filter.name);
    }
    if (filter.status.has_value()) {
      s.BindText(4, CallStatusName(*filter.status));
    } else {
      s.BindNull(4);
    }
    if (filter.since_ns.has_value()) {
      s.Bind(5, *filter.since_ns);
    } else {
      s.BindNull(5);
    }
    s.Bind(6, filter.limit == 0 ? int64_t{-1} : static_cast<int64_t>(filter.limit - out.size()));
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      ASSIGN_OR_RETURN(ToolCall call, ReadCall(s));
      out.push_back(std::move(call));
    }
  }
  return out;
}

}  // namespace strata::catalog

namespace strata {

std::string_view CallStatusName(CallStatus status) {
  switch (status) {
    case CallStatus::kPending: return "pending";
    case CallStatus::kOk: return "ok";
    case CallStatus::kError: return "error";
  }
  return "pending";
}

Result<CallStatus> ParseCallStatus(std::string_view name) {
  for (CallStatus s : {CallStatus::kPending, CallStatus::kOk, CallStatus::kError}) {
    if (CallStatusName(s) == name) return s;
  }
  return InvalidArgument("unknown call status '" + std::string(name) +
                         "' (pending, ok or error)");
}

}  // namespace strata
