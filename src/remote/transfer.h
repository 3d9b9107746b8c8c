// Push and pull of one session through a remote (an S3 bucket and prefix).
//
// Objects under the remote's prefix P (docs/FORMAT.md, "Remote objects"):
//   P/packs/<sha256>              chunks, many to an object (remote/pack.h),
//                                 each named by its plain bytes' SHA-256.
//                                 Shared by every session and store that
//                                 pushes to the bucket.
//   P/index/<sha256>              the entries of the pack of that name.
//   P/sessions/<name>/bundles/<sha256>
//                                 the session's metadata: a bundle (see
//                                 store/bundle.h) whose chunk rows name a
//                                 pack entry instead of holding bytes
//                                 (codec 3); named by the file's SHA-256.
//   P/sessions/<name>/HEAD        JSON naming the current bundle (and the
//                                 one before); the only object ever rewritten.
// A push sends the chunks the remote lacks (as this store knows from its own
// pushes and pulls and from the index objects of others'), in packs, then the
// bundle, then moves HEAD last, with a conditional PUT (If-None-Match: * for
// the first push, else If-Match on the ETag read at the start), so a push
// killed at any point leaves the old head, and of two pushes racing, one
// fails. A push is refused unless the remote head is the one this store last
// pushed or pulled for the session (a fast-forward), or `force` is set; it
// does nothing if, besides, the session did not change here since.
// A session on the host base is pushed whole: every host file it can see is
// read into its base's rows first (Store::ExpandHostBase), then sent as
// chunks, or with `host_by_reference` as host references that name their
// SHA-256, which the pulling machine's reads check against its own files.
// A pull fetches HEAD and the bundle and imports it as a local session whose
// chunks are this store's where it has them (same SHA-256) and references to
// the remote's pack entries otherwise, fetched on first read (remote/fetch.h)
// or all at once with `eager`.
#ifndef STRATA_REMOTE_TRANSFER_H_
#define STRATA_REMOTE_TRANSFER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "remote/s3_client.h"
#include "strata/store.h"

namespace strata::remote {

struct TransferStats {
  std::string head;         // the bundle's key now at the remote head
  uint64_t chunks = 0;      // chunks the session needs
  uint64_t sent = 0;        // chunks uploaded (push) or fetched (pull)
  uint64_t left = 0;        // pull: chunks left on the remote, fetched when read
  uint64_t bytes = 0;       // object bytes uploaded or fetched, bundle included
  uint64_t requests = 0;    // S3 requests made
  bool up_to_date = false;  // nothing to do
};

// Called from the transfer's threads, one call at a time, as chunks are
// done: how many of how many.
using Progress = std::function<void(uint64_t done, uint64_t total)>;

struct PushOptions {
  bool force = false;  // move the head even if it is not a fast-forward
  // A session on the host base: its host files are pushed as references
  // (path, size, mtime and SHA-256), not as chunks, for fleets whose
  // machines share one image. Default: as chunks, like any other.
  bool host_by_reference = false;
  int parallel = 8;    // concurrent uploads
  Progress progress;   // optional
};

Result<TransferStats> Push(Store& store, const RemoteInfo& remote, std::string_view session,
                           const PushOptions& options, const Getenv& env);

struct PullOptions {
  std::string as;      // the local name; empty: the remote session's name
  bool force = false;  // replace an existing local session (Store::Restore:
                       // its state is kept as snapshot before-restore-N)
  int parallel = 8;    // concurrent downloads
  bool eager = false;  // fetch every chunk now, not on first read
  // A session pushed with host_by_reference names host files: only files
  // under this root, in the trees a host base exposes, are accepted.
  std::string host_root = "/";
  Progress progress;   // optional (eager fetches)
};

// Pulls `session` of `remote` into this store. Without `force` the local
// session must not exist, be at the remote head already (then nothing is
// done), or be unchanged here since this store last pushed or pulled it
// (then it is replaced, its state kept as a snapshot, as with `force`);
// Exists otherwise, saying to use --as or --force.
Result<TransferStats> Pull(Store& store, const RemoteInfo& remote, std::string_view session,
                           const PullOptions& options, const Getenv& env);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_TRANSFER_H_
