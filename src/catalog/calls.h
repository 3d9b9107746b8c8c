// The tool-call log: rows of `tool_calls`. A call belongs to the branch it
// was recorded on; the history seen from a view is the calls of each branch
// of its ancestry whose "before" version lies below the limit through which
// that branch is seen (a call is part of the state after version_before).
//
// Every function takes a connection; the writing ones must run inside a
// write transaction.
#ifndef STRATA_CATALOG_CALLS_H_
#define STRATA_CATALOG_CALLS_H_

#include <string_view>
#include <utility>
#include <vector>

#include "sql/database.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::catalog {

// Inserts a pending call (name, args, parent, start_ns, branch and
// version_before are taken from `call`) and returns its id.
Result<int64_t> InsertCall(sql::Connection& conn, const ToolCall& call);
// Stores how the call ended (status, result, error, exit status, output,
// end_ns, version_after are taken from `call`).
Status FinishCall(sql::Connection& conn, const ToolCall& call);
Result<ToolCall> GetCall(sql::Connection& conn, int64_t id);
// A call's output: `stream` 1 (stdout) or 2 (stderr) as chunks, in order.
// InsertOutput appends after the chunks the stream already has.
Status InsertOutput(sql::Connection& conn, int64_t call, int stream,
                    const std::vector<int64_t>& chunks);
Result<std::vector<int64_t>> OutputChunks(sql::Connection& conn, int64_t call, int stream);
// The calls visible through `ancestry` ((branch, limit) pairs, shallowest
// first, as catalog::Ancestry returns them), newest first.
Result<std::vector<ToolCall>> ListCalls(sql::Connection& conn,
                                        const std::vector<std::pair<BranchId, Version>>& ancestry,
                                        const CallFilter& filter);

}  // namespace strata::catalog

#endif  // STRATA_CATALOG_CALLS_H_
