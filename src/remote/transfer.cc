#include "remote/transfer.h"

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "catalog/remotes.h"
#include "chunks/chunk_store.h"
#include "fs/host_entries.h"
#include "remote/fetch.h"
#include "remote/layout.h"
#include "remote/manifest.h"
#include "remote/pack.h"
#include "remote/remote.h"
#include "sql/database.h"
#include "store/bundle.h"

namespace strata::remote {

namespace {

constexpr const char* kLoadStored = "SELECT codec, data, size FROM chunks WHERE id = ?1";
// What a push must know of a chunk row before it knows whether to send it:
// not its bytes (a push of a session the remote mostly has reads none), only
// a host or remote reference's text.
constexpr const char* kLoadShape =
    "SELECT codec, length(data), size, CASE WHEN codec IN (2, 3) THEN data END FROM chunks"
    " WHERE id = ?1";
// A chunk of this store with the given SHA-256 and its bytes here.
constexpr const char* kFindBySha =
    "SELECT c.codec, c.data FROM chunk_sha s JOIN chunks c ON c.id = s.chunk"
    " WHERE s.sha = ?1 AND c.size = ?2 AND c.codec IN (0, 1) LIMIT 1";

// Re-seals a bundle whose rows were changed (its checksum row).
Status Reseal(sql::Connection& bundle) {
  ASSIGN_OR_RETURN(std::string sum, BundleChecksum(bundle));
  ASSIGN_OR_RETURN(sql::Statement s,
                   bundle.PrepareUncached("UPDATE bundle SET value = ?1 WHERE key = 'checksum'"));
  return s.BindText(1, sum).Run();
}

// A chunk as this store keeps it.
struct Stored {
  int codec = 0;
  std::string data;
  uint64_t size = 0;
};

Result<Stored> LoadStored(sql::Connection& conn, int64_t id) {
  ASSIGN_OR_RETURN(sql::Statement s, conn.Prepare(kLoadStored));
  s.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return Corruption("chunk " + std::to_string(id) + " is missing");
  return Stored{static_cast<int>(s.Int(0)), s.BlobString(1), static_cast<uint64_t>(s.Int(2))};
}

// The digest of the state of a bundle's session (BundleStateDigest).
Result<std::string> DigestOfBundle(const std::string& bundle_path) {
  ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kQueryOnly));
  return BundleStateDigest(*conn);
}

// The digest of the state of local session `session` now (an export of its
// rows into `scratch`).
Result<std::string> LocalState(Store& store, std::string_view session, const ScratchDir& scratch) {
  const std::string path = scratch.File("state.bundle");
  std::remove(path.c_str());
  RETURN_IF_ERROR(store.ExportRows(session, path).status());
  auto digest = DigestOfBundle(path);
  std::remove(path.c_str());
  return digest;
}

// A host range of a session pushed by reference, as `bundle_key` names it:
// refused unless it names its SHA-256 and a file under `host_root` that a
// host base exposes (a bundle must not reach anything else of this host).
Status CheckPulledHostRange(const std::string& text, int64_t size, const std::string& host_root,
                            const std::string& bundle_key) {
  chunks::HostRange range;
  const std::string root = host_root.size() > 1 && host_root.back() == '/'
                               ? host_root.substr(0, host_root.size() - 1)
                               : host_root;
  const std::string under = root == "/" ? "/" : root + "/";
  if (size <= 0 || !chunks::DecodeHostRange(text, static_cast<uint32_t>(size), &range) ||
      range.sha.empty()) {
    return Corruption("remote object " + bundle_key + " names a host file malformed; nothing was "
                      "imported");
  }
  if (range.path.compare(0, under.size(), under) != 0 ||
      !fs::HostNameExposed(range.path.substr(under.size()))) {
    return Status(Code::kAccess, "remote object " + bundle_key + " names host file " + range.path +
                                     ", which is not a system file under " + root +
                                     " that a host base shows; nothing was imported");
  }
  return Status::Ok();
}

// remote_heads.state: the digest of the session's rows when it was last
// pushed or pulled, marked when the remote's copy holds host references
// (pushed by reference), so that a push in the other form is not taken for
// a push of nothing new.
constexpr std::string_view kByReferenceMark = " host-by-reference";
std::string RecordedState(std::string digest, bool host_by_reference) {
  return host_by_reference ? digest + std::string(kByReferenceMark) : digest;
}
// The digest part of a recorded state.
std::string_view DigestOfState(std::string_view state) {
  if (state.ends_with(kByReferenceMark)) state.remove_suffix(kByReferenceMark.size());
  return state;
}

// One chunk of the session being pushed.
struct PushChunk {
  int64_t id = 0;
  std::string sha;
  bool computed = false;             // sha computed now (to record in chunk_sha)
  std::optional<catalog::PackedChunk> where;  // on the remote already, or once packed
  std::optional<chunks::HostRange> host;      // pushed as this host reference, not bytes
  std::string content_key;           // a host reference's bytes' key (pushed as bytes)
  uint64_t stored_size = 0;          // bytes it takes in a pack
};

// Reads the index objects of `remote` this store has not read yet into
// remote_chunks: what other stores pushed (but not the doomed packs').
Status LearnIndexes(S3Client& client, const RemoteInfo& remote, const DoomedPacks& doomed,
                    sql::Connection& writer) {
  std::vector<std::string> unknown;
  std::string after;
  do {
    ASSIGN_OR_RETURN(ListPage page, client.List(Prefix(remote) + "index/", after));
    for (const auto& [key, size] : page.keys) {
      const std::string pack = ShaOfKey(key);
      if (pack.empty() || doomed.count(pack) != 0) continue;
      ASSIGN_OR_RETURN(bool known, catalog::KnowsRemotePack(writer, remote.name, pack));
      if (!known) unknown.push_back(pack);
    }
    after = page.next;
  } while (!after.empty());
  for (const std::string& pack : unknown) {
    const std::string key = IndexKey(remote, pack);
    ASSIGN_OR_RETURN(std::string body, client.Get(key));
    ASSIGN_OR_RETURN(auto entries, ParsePackIndex(body, key));
    ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(writer));
    for (auto& [sha, where] : entries) {
      where.pack = pack;
      RETURN_IF_ERROR(catalog::PutRemoteChunk(writer, remote.name, sha, where));
    }
    RETURN_IF_ERROR(catalog::PutRemotePack(writer, remote.name, pack));
    RETURN_IF_ERROR(txn.Commit());
  }
  return Status::Ok();
}

// Sets each chunk's SHA-256 (computing the ones this store does not know)
// and where the remote holds it, if it does.
// With `host_by_reference`, a host reference is to be pushed as one (`host`).
Status Locate(std::vector<PushChunk>& chunks, const RemoteInfo& remote, const Store& store,
              bool host_by_reference, const NetApi& api, int parallel, const Getenv& env,
              S3Counters* counters) {
  chunks::ChunkStore reader(nullptr, 3, 0);
  return ForEachParallel(
      chunks.size(), parallel, remote, env, store.path(),
      [&](S3Client&, sql::Connection* conn, size_t i) -> Status {
        PushChunk& c = chunks[i];
        ASSIGN_OR_RETURN(sql::Statement shape, conn->Prepare(kLoadShape));
        shape.Bind(1, c.id);
        ASSIGN_OR_RETURN(bool row, shape.Step());
        if (!row) return Corruption("chunk " + std::to_string(c.id) + " is missing");
        const int64_t codec = shape.Int(0);
        // Bytes in a pack: as stored when raw or zstd, at most the plain size otherwise.
        const bool as_stored = codec == kStoredRaw || codec == kStoredZstd;
        c.stored_size = static_cast<uint64_t>(shape.Int(as_stored ? 1 : 2)) + kPackEntryHeader;
        chunks::RemoteRef ref;
        if (codec == kRemoteCodec && chunks::DecodeRemoteRef(shape.BlobString(3), &ref)) {
          c.sha = ref.sha;
          if (ref.remote == remote.name) {
            c.where = catalog::PackedChunk{ref.pack, ref.offset, ref.length};
            return Status::Ok();
          }
        } else {
          if (codec == kHostCodec && host_by_reference) {
            const std::string text = shape.BlobString(3);
            c.host.emplace();
            if (!chunks::DecodeHostRange(text, static_cast<uint32_t>(shape.Int(2)), &*c.host)) {
              return Corruption("chunk " + std::to_string(c.id) + " has a malformed host reference");
            }
          }
          ASSIGN_OR_RETURN(catalog::ChunkDigests known, catalog::GetChunkSha(*conn, c.id));
          c.sha = std::move(known.sha);
          c.content_key = std::move(known.content_key);
        }
        // A host reference sent as bytes takes their content key in the
        // bundle (its own, "host", says "no bytes here").
        const bool needs_key = codec == kHostCodec && !c.host;
        if (c.sha.empty() || (needs_key && c.content_key.size() != sizeof(ChunkHash))) {
          ASSIGN_OR_RETURN(auto plain, reader.Get(*conn, c.id));
          c.sha = ShaHex(api, std::string_view(reinterpret_cast<const char*>(plain->data()),
                                               plain->size()));
          if (needs_key) {
            const ChunkHash key = reader.Hash(*plain);
            c.content_key.assign(reinterpret_cast<const char*>(key.data()), key.size());
          }
          c.computed = true;
        }
        if (c.host) {
          c.host->sha = c.sha;
          return Status::Ok();
        }
        ASSIGN_OR_RETURN(c.where, catalog::GetRemoteChunk(*conn, remote.name, c.sha));
        return Status::Ok();
      },
      nullptr, counters);
}

// An entry for `bytes`, compressed when that makes it smaller.
void AddBytesToPack(const chunks::ChunkStore& reader, const std::string& sha,
                    std::string_view bytes, PackBuilder* pack) {
  std::span<const uint8_t> plain(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  chunks::Encoded e = reader.Encode(plain);
  const bool zstd = e.codec == chunks::Codec::kZstd;
  pack->Add(sha, zstd ? kStoredZstd : kStoredRaw, static_cast<uint32_t>(plain.size()),
            zstd ? std::span<const uint8_t>(e.compressed) : plain);
}

// The entry of chunk `id` as a pack holds it: its stored bytes when this
// store keeps them raw or as zstd, else its plain bytes compressed.
Status AddToPack(sql::Connection& conn, chunks::ChunkStore& reader, const PushChunk& c,
                 PackBuilder* pack) {
  ASSIGN_OR_RETURN(Stored stored, LoadStored(conn, c.id));
  if (stored.codec == kStoredRaw || stored.codec == kStoredZstd) {
    pack->Add(c.sha, stored.codec, static_cast<uint32_t>(stored.size),
              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(stored.data.data()),
                                       stored.data.size()));
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(auto plain, reader.Get(conn, c.id));
  AddBytesToPack(reader, c.sha, {reinterpret_cast<const char*>(plain->data()), plain->size()},
                 pack);
  return Status::Ok();
}

// Which of `packs` the remote no longer has (a HEAD of each).
Result<std::set<std::string>> MissingPacks(const std::set<std::string>& packs,
                                           const RemoteInfo& remote, const Getenv& env,
                                           int parallel, S3Counters* counters) {
  const std::vector<std::string> named(packs.begin(), packs.end());
  std::vector<char> gone(named.size(), 0);
  RETURN_IF_ERROR(ForEachParallel(
      named.size(), parallel, remote, env, "",
      [&](S3Client& c, sql::Connection*, size_t i) -> Status {
        auto there = c.Head(PackKey(remote, named[i]));
        if (there.ok()) return Status::Ok();
        if (there.status().code() != Code::kNotFound) return there.status();
        gone[i] = 1;
        return Status::Ok();
      },
      nullptr, counters));
  std::set<std::string> out;
  for (size_t i = 0; i < named.size(); ++i) {
    if (gone[i]) out.insert(named[i]);
  }
  return out;
}

// An entry a push may have to send.
struct Outgoing {
  std::string sha;
  uint64_t size = 0;   // bytes it takes in a pack
  bool there = false;  // the remote has it
};
using Sent = std::unordered_map<std::string, catalog::PackedChunk>;

// Sends the entries of `items` the remote lacks (each SHA-256 once, in their
// order), cut into packs of about kPackTarget bytes, each uploaded with its
// index, `parallel` at a time; `add(conn, i, pack)` appends item i to a pack
// (`conn` on `db_path`, null if that is empty). Returns where each went.
Result<Sent> UploadPacks(
    const std::vector<Outgoing>& items,
    const std::function<Status(sql::Connection*, size_t, PackBuilder*)>& add,
    const RemoteInfo& remote, const DoomedPacks& doomed, const Getenv& env,
    const std::string& db_path, const NetApi& api, int parallel, const Progress& progress,
    S3Counters* counters) {
  std::vector<std::vector<size_t>> packs;
  {
    std::unordered_set<std::string> first;
    size_t pack_bytes = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].there || !first.insert(items[i].sha).second) continue;
      if (packs.empty() || pack_bytes + items[i].size > kPackTarget) {
        packs.emplace_back();
        pack_bytes = 0;
      }
      packs.back().push_back(i);
      pack_bytes += items[i].size;
    }
  }
  Sent sent;  // guarded by mu
  std::mutex mu;
  uint64_t done = 0, total = 0;
  for (const auto& p : packs) total += p.size();
  RETURN_IF_ERROR(ForEachParallel(
      packs.size(), parallel, remote, env, db_path,
      [&](S3Client& c, sql::Connection* conn, size_t i) -> Status {
        PackBuilder pack;
        for (size_t k : packs[i]) RETURN_IF_ERROR(add(conn, k, &pack));
        const std::string name = ShaHex(api, pack.body());
        PutConditions absent;
        // A pack of this name that a gc doomed is written again, not relied
        // on: its new time tells the gc that would delete it (maintenance.h).
        absent.if_absent = doomed.count(name) == 0;
        // The pack, then its index: an index never names a pack that is not there.
        for (const auto& [key, body] : {std::pair{PackKey(remote, name), pack.body()},
                                        std::pair{IndexKey(remote, name), pack.IndexBody()}}) {
          auto put = c.Put(key, body, absent);
          if (!put.ok() && put.status().code() != Code::kExists) return put.status();
        }
        std::scoped_lock lock(mu);
        for (auto [sha, where] : pack.entries()) {
          where.pack = name;
          sent[sha] = where;
        }
        done += packs[i].size();
        if (progress) progress(done, total);
        return Status::Ok();
      },
      nullptr, counters));
  return sent;
}

}  // namespace

Result<TransferStats> Push(Store& store, const RemoteInfo& remote, std::string_view session,
                           const PushOptions& options, const Getenv& env) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  ASSIGN_OR_RETURN(auto client, Connect(remote, env));
  TransferStats stats;
  S3Counters counters;
  const std::string head_key = SessionKey(remote, session) + "HEAD";
  ASSIGN_OR_RETURN(RemoteHead head, ReadHead(*client, head_key));
  ASSIGN_OR_RETURN(RemoteHeadInfo known, store.GetRemoteHead(remote.name, session));
  if (head.exists && head.bundle != known.bundle && !options.force) {
    return Exists("remote " + remote.name + " has session '" + std::string(session) + "' at " +
                  head.bundle + ", which this store has not pulled" +
                  (known.bundle.empty() ? "" : " (it last saw " + known.bundle + ")") +
                  ": pull it (or under another name, with --as), or push --force to replace it");
  }
  ScratchDir scratch;
  if (!scratch.ok()) return IoError("cannot make a temporary directory");
  const std::string bundle_path = scratch.File("push.bundle");
  // A session on the host base is pushed whole: the host files it can see
  // are read into its base's rows first (as chunks or references below).
  if (Status expanded = store.ExpandHostBase(session); !expanded.ok()) {
    if (expanded.code() != Code::kIoError) return expanded;
    return expanded.WithContext(
        "the session is on the host base, which stands for the host as it was when the base was "
        "taken, and a push takes every host file the session can see; the host changed since");
  }
  RETURN_IF_ERROR(store.ExportRows(session, bundle_path).status());
  ASSIGN_OR_RETURN(std::string digest, DigestOfBundle(bundle_path));
  const std::string state = RecordedState(std::move(digest), options.host_by_reference);
  if (head.exists && head.bundle == known.bundle && state == known.state) {
    stats.head = head.bundle;
    stats.up_to_date = true;  // nothing changed here since the last push or pull
    stats.requests = client->counters().requests;
    return stats;
  }
  ASSIGN_OR_RETURN(auto writer, sql::Connection::Open(store.path(), sql::OpenMode::kReadWriteCreate));

  std::vector<PushChunk> chunks;
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kQueryOnly));
    ASSIGN_OR_RETURN(sql::Statement s, conn->PrepareUncached("SELECT id FROM chunks ORDER BY id"));
    RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) {
      chunks.emplace_back().id = row.Int(0);
      return Status::Ok();
    }));
  }
  // What the remote holds: from this store's own pushes and pulls, and the
  // index objects of other stores' packs.
  ASSIGN_OR_RETURN(const DoomedPacks doomed, ReadDoomedPacks(*client, remote));
  RETURN_IF_ERROR(LearnIndexes(*client, remote, doomed, *writer));
  RETURN_IF_ERROR(Locate(chunks, remote, store, options.host_by_reference, *api, options.parallel,
                         env, &counters));

  // A pack this store knows of may have been removed since, or doomed, by
  // a remote gc: check each one named, and forget those that are gone or
  // doomed, so their chunks are sent.
  std::set<std::string> checked;
  auto check_packs = [&](std::vector<std::optional<catalog::PackedChunk>*> places) -> Status {
    std::set<std::string> named, gone;
    for (auto* where : places) {
      if (!*where || checked.count((*where)->pack) != 0) continue;
      (doomed.count((*where)->pack) != 0 ? gone : named).insert((*where)->pack);
    }
    ASSIGN_OR_RETURN(std::set<std::string> missing,
                     MissingPacks(named, remote, env, options.parallel, &counters));
    gone.merge(missing);
    for (const std::string& pack : gone) {
      RETURN_IF_ERROR(catalog::ForgetRemotePack(*writer, remote.name, pack));
    }
    for (auto* where : places) {
      if (*where && gone.count((*where)->pack) != 0) where->reset();
    }
    checked.insert(named.begin(), named.end());
    checked.insert(gone.begin(), gone.end());
    return Status::Ok();
  };
  std::vector<std::optional<catalog::PackedChunk>*> chunk_places;
  for (PushChunk& c : chunks) chunk_places.push_back(&c.where);
  RETURN_IF_ERROR(check_packs(chunk_places));

  // The chunks to send (each SHA-256 once, in the order of their ids, which
  // is about the order they were written), cut into packs.
  std::vector<Outgoing> outgoing;
  for (const PushChunk& c : chunks) {
    outgoing.push_back(Outgoing{c.sha, c.stored_size, c.where.has_value() || c.host.has_value()});
  }
  chunks::ChunkStore reader(nullptr, 3, 0);
  ASSIGN_OR_RETURN(
      Sent sent,
      UploadPacks(outgoing,
                  [&](sql::Connection* conn, size_t i, PackBuilder* pack) {
                    return AddToPack(*conn, reader, chunks[i], pack);
                  },
                  remote, doomed, env, store.path(), *api, options.parallel, options.progress,
                  &counters));
  stats.chunks = chunks.size();
  stats.sent = sent.size();

  // The metadata: the bundle with each chunk row naming its pack entry.
  std::string rows;
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kReadWriteCreate));
    RETURN_IF_ERROR(conn->Exec("BEGIN"));
    ASSIGN_OR_RETURN(sql::Statement update,
                     conn->PrepareUncached("UPDATE chunks SET codec = ?1, data = ?2 WHERE id = ?3"));
    ASSIGN_OR_RETURN(sql::Statement rekey,
                     conn->PrepareUncached("UPDATE chunks SET hash = ?1 WHERE id = ?2"));
    for (PushChunk& c : chunks) {
      if (c.host) {
        RETURN_IF_ERROR(update.Bind(1, kHostCodec)
                            .BindBytes(2, chunks::EncodeHostRange(*c.host))
                            .Bind(3, c.id)
                            .Run());
        continue;
      }
      if (!c.content_key.empty()) {  // a host reference sent as bytes
        RETURN_IF_ERROR(rekey.BindBytes(1, c.content_key).Bind(2, c.id).Run());
      }
      if (!c.where) c.where = sent.at(c.sha);
      chunks::RemoteRef ref{c.sha, c.where->pack, c.where->offset, c.where->length, ""};
      RETURN_IF_ERROR(
          update.Bind(1, kRemoteCodec).BindBytes(2, chunks::EncodeRemoteRef(ref)).Bind(3, c.id).Run());
    }
    RETURN_IF_ERROR(Reseal(*conn));
    RETURN_IF_ERROR(conn->Exec("COMMIT"));
    ASSIGN_OR_RETURN(rows, BundleRows(*conn));
  }
  // ... sent as pieces, which the remote mostly has from the last push.
  std::vector<std::string_view> cut = CutPieces(rows);
  std::vector<std::string> piece_shas;
  std::vector<std::optional<catalog::PackedChunk>> piece_places(cut.size());
  std::vector<std::optional<catalog::PackedChunk>*> piece_place_ptrs;
  for (size_t i = 0; i < cut.size(); ++i) {
    piece_shas.push_back(ShaHex(*api, cut[i]));
    ASSIGN_OR_RETURN(piece_places[i], catalog::GetRemoteChunk(*writer, remote.name, piece_shas[i]));
    piece_place_ptrs.push_back(&piece_places[i]);
  }
  RETURN_IF_ERROR(check_packs(piece_place_ptrs));
  std::vector<Outgoing> pieces_out;
  for (size_t i = 0; i < cut.size(); ++i) {
    pieces_out.push_back(Outgoing{piece_shas[i], cut[i].size() + kPackEntryHeader,
                                  piece_places[i].has_value()});
  }
  ASSIGN_OR_RETURN(
      Sent sent_pieces,
      UploadPacks(pieces_out,
                  [&](sql::Connection*, size_t i, PackBuilder* pack) {
                    AddBytesToPack(reader, piece_shas[i], cut[i], pack);
                    return Status::Ok();
                  },
                  remote, doomed, env, "", *api, options.parallel, nullptr, &counters));
  std::vector<chunks::RemoteRef> manifest;
  for (size_t i = 0; i < cut.size(); ++i) {
    const catalog::PackedChunk where =
        piece_places[i] ? *piece_places[i] : sent_pieces.at(piece_shas[i]);
    manifest.push_back(chunks::RemoteRef{piece_shas[i], where.pack, where.offset, where.length, ""});
  }

  // This store now knows these chunks' SHA-256 and where the remote has
  // them and the pieces.
  {
    ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(*writer));
    for (const PushChunk& c : chunks) {
      if (c.computed) {
        RETURN_IF_ERROR(catalog::PutChunkSha(*writer, c.id, {c.sha, c.content_key}));
      }
    }
    for (const Sent* m : {&sent, &sent_pieces}) {
      for (const auto& [sha, where] : *m) {
        RETURN_IF_ERROR(catalog::PutRemoteChunk(*writer, remote.name, sha, where));
        RETURN_IF_ERROR(catalog::PutRemotePack(*writer, remote.name, where.pack));
      }
    }
    RETURN_IF_ERROR(txn.Commit());
  }
  const std::string manifest_body = EncodeManifest(manifest);
  const std::string bundle_key =
      SessionKey(remote, session) + "bundles/" + ShaHex(*api, manifest_body);
  PutConditions absent;
  absent.if_absent = true;
  auto put = client->Put(bundle_key, manifest_body, absent);
  if (!put.ok() && put.status().code() != Code::kExists) return put.status();

  // Last, the head moves: only from what was read above.
  nlohmann::json head_json = {{"format", kHeadFormat},
                              {"bundle", bundle_key},
                              {"previous", head.exists ? head.bundle : ""}};
  PutConditions moved;
  if (head.exists) {
    moved.if_etag = head.etag;
  } else {
    moved.if_absent = true;
  }
  auto moved_head = client->Put(head_key, head_json.dump(), moved);
  if (!moved_head.ok()) {
    if (moved_head.status().code() == Code::kExists) {
      // The condition failed, but perhaps on this very write: a try that
      // landed but whose answer was lost is retried and meets itself. The
      // head is ours if it names this bundle, moved from the one read above.
      auto now = ReadHead(*client, head_key);
      const bool ours = now.ok() && now->exists && now->bundle == bundle_key &&
                        now->previous == (head.exists ? head.bundle : "");
      if (!ours) {
        return Exists("another push moved the head of '" + std::string(session) + "' on remote " +
                      remote.name + " meanwhile; pull it, or push again");
      }
    } else {
      return moved_head.status();
    }
  }
  RETURN_IF_ERROR(store.SetRemoteHead(remote.name, session, RemoteHeadInfo{bundle_key, state}));
  counters.Add(client->counters());
  stats.head = bundle_key;
  stats.requests = counters.requests;
  stats.bytes = counters.bytes_sent;
  return stats;
}

Result<TransferStats> Pull(Store& store, const RemoteInfo& remote, std::string_view session,
                           const PullOptions& options, const Getenv& env) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  ASSIGN_OR_RETURN(auto client, Connect(remote, env));
  const std::string name(options.as.empty() ? session : options.as);
  TransferStats stats;
  ASSIGN_OR_RETURN(RemoteHead head, ReadHead(*client, SessionKey(remote, session) + "HEAD"));
  if (!head.exists) {
    return NotFound("remote " + remote.name + " has no session '" + std::string(session) + "'");
  }
  stats.head = head.bundle;
  // The chunks left on the remote name it: this store must know it by name.
  auto here = store.GetRemote(remote.name);
  if (!here.ok()) {
    if (here.status().code() != Code::kNotFound) return here.status();
    RETURN_IF_ERROR(store.AddRemote(remote));
  } else if (here->bucket != remote.bucket || here->prefix != remote.prefix ||
             here->endpoint != remote.endpoint) {
    return InvalidArgument("this store's remote '" + remote.name + "' is " + S3Url(*here) +
                           ", not " + S3Url(remote));
  }
  auto fetch_rest = [&]() -> Status {
    if (!options.eager) return Status::Ok();
    ASSIGN_OR_RETURN(TransferStats fetched,
                     FetchMissing(store.path(), remote, options.parallel, options.progress, env));
    stats.sent += fetched.sent;
    stats.requests += fetched.requests;
    stats.bytes += fetched.bytes;
    return Status::Ok();
  };
  ScratchDir scratch;
  if (!scratch.ok()) return IoError("cannot make a temporary directory");
  const bool replace = store.GetSession(name).ok();
  if (replace) {
    ASSIGN_OR_RETURN(RemoteHeadInfo known, store.GetRemoteHead(remote.name, session));
    if (name == session && known.bundle == head.bundle) {
      stats.up_to_date = true;
      RETURN_IF_ERROR(fetch_rest());
      stats.requests += client->counters().requests;
      stats.bytes += client->counters().bytes_received;
      return stats;
    }
    // A session that did not change here since it was last pushed or
    // pulled is replaced (a fast-forward); one that did is kept unless forced.
    bool unchanged = false;
    if (name == session && !known.bundle.empty()) {
      ASSIGN_OR_RETURN(std::string now, LocalState(store, name, scratch));
      unchanged = now == DigestOfState(known.state);
    }
    if (!unchanged && !options.force) {
      return Exists("session '" + name + "' exists in this store" +
                    (name == session && !known.bundle.empty()
                         ? " and changed here since it was last pushed or pulled"
                         : "") +
                    ": pull into a new one with --as NAME, or replace it with --force (its "
                    "current state is kept as a snapshot)");
    }
  }
  const std::string bundle_path = scratch.File("pull.bundle");
  uint64_t host_references = 0;  // pushed by reference (kept as host references)
  {
    Status fetched = FetchBundle(*client, *api, remote, head.bundle, bundle_path);
    if (!fetched.ok()) return fetched.WithContext("nothing was imported");
  }

  // A session on the host base comes whole: a host directory or file its
  // pusher never read would be read from this host, which is not that one.
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kQueryOnly));
    ASSIGN_OR_RETURN(sql::Statement unread,
                     conn->PrepareUncached("SELECT rel FROM host_entries WHERE expanded = 0 LIMIT 1"));
    ASSIGN_OR_RETURN(bool any, unread.Step());
    if (any) {
      return Status(Code::kNotSupported,
                    "remote object " + head.bundle + " names host path /" + unread.Text(0) +
                        " without its contents (pushed by an older strata?): push it again with "
                        "this version; nothing was imported");
    }
  }
  // Each chunk row becomes this store's copy of the chunk when it has one
  // (found by SHA-256: pulling again fetches only what is new), else a
  // reference to the remote's, fetched when first read.
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kReadWriteCreate));
    ASSIGN_OR_RETURN(auto local, sql::Connection::Open(store.path(), sql::OpenMode::kReadWriteCreate));
    ASSIGN_OR_RETURN(sql::Statement find, local->PrepareUncached(kFindBySha));
    struct Row {
      int64_t id = 0;
      int codec = 0;
      std::string data;
    };
    std::vector<Row> rows;
    std::vector<chunks::RemoteRef> refs;
    ASSIGN_OR_RETURN(sql::Statement s,
                     conn->PrepareUncached("SELECT id, data, size, codec FROM chunks ORDER BY id"));
    RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) -> Status {
      if (row.Int(3) == kHostCodec) {
        // Pushed by reference: kept as it is, checked when read.
        RETURN_IF_ERROR(CheckPulledHostRange(row.BlobString(1), row.Int(2), options.host_root,
                                             head.bundle));
        stats.chunks++;
        host_references++;
        return Status::Ok();
      }
      chunks::RemoteRef ref;
      if (row.Int(3) != kRemoteCodec || !chunks::DecodeRemoteRef(row.BlobString(1), &ref) ||
          !ref.remote.empty()) {
        return Corruption("remote object " + head.bundle + " names a chunk malformed; nothing was imported");
      }
      ref.remote = remote.name;
      stats.chunks++;
      ASSIGN_OR_RETURN(bool have, find.BindText(1, ref.sha).Bind(2, row.Int(2)).Step());
      if (have) {
        rows.push_back(Row{row.Int(0), static_cast<int>(find.Int(0)), find.BlobString(1)});
      } else {
        rows.push_back(Row{row.Int(0), kRemoteCodec, chunks::EncodeRemoteRef(ref)});
        stats.left++;
      }
      refs.push_back(std::move(ref));
      return find.Run();  // resets it
    }));
    RETURN_IF_ERROR(conn->Exec("BEGIN"));
    ASSIGN_OR_RETURN(sql::Statement update,
                     conn->PrepareUncached("UPDATE chunks SET codec = ?1, data = ?2 WHERE id = ?3"));
    for (const Row& r : rows) {
      RETURN_IF_ERROR(update.Bind(1, r.codec).BindBytes(2, r.data).Bind(3, r.id).Run());
    }
    RETURN_IF_ERROR(Reseal(*conn));
    RETURN_IF_ERROR(conn->Exec("COMMIT"));
    // A later push need not send what the remote has.
    ASSIGN_OR_RETURN(sql::Transaction txn, sql::Transaction::Begin(*local));
    for (const chunks::RemoteRef& ref : refs) {
      RETURN_IF_ERROR(catalog::PutRemoteChunk(*local, remote.name, ref.sha,
                                              catalog::PackedChunk{ref.pack, ref.offset, ref.length}));
    }
    RETURN_IF_ERROR(txn.Commit());
  }
  if (!replace) {
    RETURN_IF_ERROR(store.Import(bundle_path, name).status());
  } else {
    // Imported under a name of its own, then the session is restored to it:
    // one transaction each, and the old state stays a snapshot.
    const std::string incoming = name.substr(0, 100) + "-pulling-" +
                                 std::to_string(std::random_device{}() % 1'000'000'000u);
    RETURN_IF_ERROR(store.Import(bundle_path, incoming).status());
    Status moved = [&]() -> Status {
      ASSIGN_OR_RETURN(SessionInfo pulled, store.GetSession(incoming));
      return store.Restore(name, View{pulled.branch, kHead}).status();
    }();
    Status removed = store.RemoveSession(incoming);
    RETURN_IF_ERROR(moved);
    RETURN_IF_ERROR(removed);
  }
  if (name == session) {
    ASSIGN_OR_RETURN(std::string state, LocalState(store, name, scratch));
    RETURN_IF_ERROR(store.SetRemoteHead(
        remote.name, session,
        RemoteHeadInfo{head.bundle, RecordedState(std::move(state), host_references > 0)}));
  }
  stats.requests = client->counters().requests;
  stats.bytes = client->counters().bytes_received;
  RETURN_IF_ERROR(fetch_rest());
  return stats;
}

}  // namespace strata::remote
