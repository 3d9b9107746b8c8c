// The fault-injection test's workload (tests/store/fault_injection_test.cc):
// a fixed sequence of operations through the public API, the model of what
// each one acknowledged, which of it a durable commit made safe, what each
// snapshot held; and the check of a reopened store against that model.
#ifndef STRATA_TESTS_STORE_FAULT_WORKLOAD_H_
#define STRATA_TESTS_STORE_FAULT_WORKLOAD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "strata/filesystem.h"
#include "strata/store.h"

namespace strata::fault_test {

// Deterministic bytes: text-like (compressible) or random (not).
std::string Bytes(uint64_t seed, size_t n, bool random = false);
std::span<const uint8_t> Span(const std::string& s);

// A session's state as the workload made it.
struct Tree {
  std::set<std::string> dirs;
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> kv;  // minified JSON
  bool operator==(const Tree&) const = default;
};

// Describes how `got` differs from `want`, or "" when equal.
std::string TreeDiff(const Tree& want, const Tree& got);
// Reads a whole view (files, directories, key-value state).
Result<Tree> ReadTree(Store& store, View view);

// What a path must be after a reopen.
struct PathFact {
  enum Kind { kAbsent, kExists, kContent } kind;
  std::string content;
};

using Key = std::pair<std::string, std::string>;  // (session, path or key)

// Runs the workload and keeps the model of what it did, what was durable
// and what each snapshot held.
class Workload {
 public:
  explicit Workload(Store& store) : store_(store) {}
  ~Workload() { CloseFilesystems(); }

  // Runs the steps up to the first failure, which it returns.
  Status Run();
  void CloseFilesystems() { fs_.clear(); }

  struct SnapshotLog {
    std::string session;
    std::string name;
    Tree state;
    bool ok = false;
  };
  struct CallLog {
    int64_t id = 0;
    std::string name;
    CallStatus status = CallStatus::kPending;
    std::string stdout_data;
  };

  std::string failed_step;                       // the step that failed
  std::vector<SnapshotLog> snapshots;            // every attempt
  std::vector<CallLog> calls;                    // calls that succeeded
  std::set<std::string> sessions_ok;             // sessions created or forked
  std::map<Key, PathFact> path_facts;            // durable and not changed since
  std::set<Key> dir_facts;
  std::map<Key, std::optional<std::string>> kv_facts;
  std::set<std::string> durable_snapshots;
  std::set<int64_t> durable_calls;
  std::set<std::string> durable_sessions;
  std::map<std::string, Tree> heads;  // by session
  std::map<std::string, BranchId> branches;
  // What the current (after a failure: the failed) step changes or tried to.
  std::set<Key> attempted_paths;
  std::set<Key> attempted_keys;
  bool failed_durable = false;  // the failure was an Fsync's or a Sync's

 private:
  Result<InodeId> Lookup(const std::string& session, const std::string& path);
  Status MkDir(const std::string& s, const std::string& path);
  Status Create(const std::string& s, const std::string& path);
  Status Write(const std::string& s, const std::string& path, uint64_t off, const std::string& data);
  Status Close(const std::string& s, const std::string& path);
  Status Fsync(const std::string& s, const std::string& path);
  Status Sync();
  Status Rename(const std::string& s, const std::string& from, const std::string& to);
  Status Unlink(const std::string& s, const std::string& path);
  Status Truncate(const std::string& s, const std::string& path, uint64_t size);
  Status Kv(const std::string& s, const std::vector<KvChange>& changes);
  Status Snapshot(const std::string& s, const std::string& name);
  Status ForkSession(const std::string& s, const std::string& name);
  Status Call(const std::string& s, const std::string& name, const std::string& out);
  Status RecordCall(const std::string& s, const std::string& name);

  // The path (or key) changed: what was durable about it may be gone.
  void Touch(const std::string& s, const std::string& path) {
    path_facts.erase({s, path});
    used_paths_.insert({s, path});
  }
  // Everything committed so far is durable (a successful Store::Sync);
  // or, with `fsynced`, the names, key-value state and that file's data (a
  // successful Fsync).
  void Durable(const std::optional<Key>& fsynced);

  Store& store_;
  std::map<std::string, std::unique_ptr<Filesystem>> fs_;
  std::map<Key, InodeId> open_;
  std::set<Key> used_paths_;
  std::set<Key> used_keys_;
};

// Checks the reopened store against what the workload was promised, with
// GoogleTest assertions.
// `committed_survives`: no power was lost, so every commit survives.
// `batch_lost`: a batch of acknowledged changes was lost (a failed commit,
// reported by a durable commit); a snapshot taken after that (any not
// followed by a successful durable commit) may lack them: such differences
// are counted in `*gaps` and printed instead of failing (a known gap of
// the contract).
// `exact`: a Sync succeeded after everything the workload did and no loss
// was reported, so every session's head must be exactly the model, except
// what the failed step touched.
void Verify(Store& store, const Workload& w, bool committed_survives, bool batch_lost, bool exact,
            int* gaps, const std::string& label);

}  // namespace strata::fault_test

#endif  // STRATA_TESTS_STORE_FAULT_WORKLOAD_H_
