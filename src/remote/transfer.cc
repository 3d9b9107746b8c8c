#include "remote/transfer.h"

#include <atomic>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "chunks/chunk_store.h"
#include "remote/layout.h"
#include "remote/remote.h"
#include "sql/database.h"
#include "store/bundle.h"

namespace strata::remote {

namespace {

// Runs `work(client, conn, i)` for i in [0, n) on up to `parallel` threads,
// each with its own S3 client and its own connection to `db_path`, telling
// `progress` (if set) as items are done. The first error wins; the others
// stop at their next item.
Status ForEachParallel(size_t n, int parallel, const RemoteInfo& remote, const Getenv& env,
                       const std::string& db_path,
                       const std::function<Status(S3Client&, sql::Connection&, size_t)>& work,
                       const Progress& progress, S3Counters* counters) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  uint64_t done = 0;  // guarded by mu
  Status first = Status::Ok();
  auto worker = [&] {
    auto client = Connect(remote, env);
    auto conn = sql::Connection::Open(db_path, sql::OpenMode::kQueryOnly);
    Status s = !client.ok() ? client.status() : conn.status();
    for (size_t i; s.ok() && (i = next++) < n;) {
      {
        std::scoped_lock lock(mu);
        if (!first.ok()) break;
      }
      s = work(**client, **conn, i);
      if (s.ok() && progress) {
        std::scoped_lock lock(mu);
        progress(++done, n);
      }
    }
    std::scoped_lock lock(mu);
    if (!s.ok() && first.ok()) first = s;
    if (client.ok()) {
      counters->requests += (*client)->counters().requests;
      counters->bytes_sent += (*client)->counters().bytes_sent;
      counters->bytes_received += (*client)->counters().bytes_received;
    }
  };
  std::vector<std::thread> threads;
  const size_t count = std::min<size_t>(std::max(parallel, 1), std::max<size_t>(n, 1));
  for (size_t t = 0; t < count; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return first;
}

// Re-seals a bundle whose rows were changed (its checksum row).
Status Reseal(sql::Connection& bundle) {
  ASSIGN_OR_RETURN(std::string sum, BundleChecksum(bundle));
  ASSIGN_OR_RETURN(sql::Statement s,
                   bundle.PrepareUncached("UPDATE bundle SET value = ?1 WHERE key = 'checksum'"));
  return s.BindText(1, sum).Run();
}

}  // namespace

Result<TransferStats> Push(Store& store, const RemoteInfo& remote, std::string_view session,
                           const PushOptions& options, const Getenv& env) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  ASSIGN_OR_RETURN(auto client, Connect(remote, env));
  TransferStats stats;
  const std::string head_key = SessionKey(remote, session) + "HEAD";
  ASSIGN_OR_RETURN(RemoteHead head, ReadHead(*client, head_key));
  ASSIGN_OR_RETURN(std::string known, store.GetRemoteHead(remote.name, session));
  if (head.exists && head.bundle != known && !options.force) {
    return Exists("remote " + remote.name + " has session '" + std::string(session) + "' at " +
                  head.bundle + ", which this store has not pulled" +
                  (known.empty() ? "" : " (it last saw " + known + ")") +
                  ": pull it under another name (--as), or push --force to replace it");
  }
  ScratchDir scratch;
  if (!scratch.ok()) return IoError("cannot make a temporary directory");
  const std::string bundle_path = scratch.File("push.bundle");
  RETURN_IF_ERROR(store.Export(session, bundle_path).status());

  // Every chunk the bundle holds, by its plain bytes' SHA-256.
  chunks::ChunkStore chunk_store(nullptr, 3);
  std::vector<int64_t> ids;
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kQueryOnly));
    ASSIGN_OR_RETURN(sql::Statement s, conn->PrepareUncached("SELECT id FROM chunks ORDER BY id"));
    RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) {
      ids.push_back(row.Int(0));
      return Status::Ok();
    }));
  }
  // The chunks the remote head's bundle names are there (a push writes
  // them before the head): no need to ask for them one by one.
  std::unordered_set<std::string> present;
  if (head.exists) {
    ASSIGN_OR_RETURN(present, ChunksOfBundle(*client, *api, head.bundle, scratch));
  }
  std::vector<std::string> shas(ids.size());
  std::atomic<uint64_t> uploaded{0};
  S3Counters counters;
  RETURN_IF_ERROR(ForEachParallel(
      ids.size(), options.parallel, remote, env, bundle_path,
      [&](S3Client& c, sql::Connection& conn, size_t i) -> Status {
        ASSIGN_OR_RETURN(auto plain, chunk_store.Get(conn, ids[i]));
        std::string_view bytes(reinterpret_cast<const char*>(plain->data()), plain->size());
        shas[i] = ShaHex(*api, bytes);
        if (present.count(shas[i]) != 0) return Status::Ok();
        const std::string key = ChunkKey(remote, shas[i]);
        auto there = c.Head(key);
        if (there.ok()) return Status::Ok();  // content-addressed: already there
        if (there.status().code() != Code::kNotFound) return there.status();
        const std::string body = EncodeChunkObject(*plain, chunk_store.Encode(*plain));
        PutConditions absent;
        absent.if_absent = true;
        auto put = c.Put(key, body, absent);
        if (!put.ok() && put.status().code() != Code::kExists) return put.status();
        uploaded++;
        return Status::Ok();
      },
      options.progress, &counters));
  stats.chunks = ids.size();
  stats.sent = uploaded.load();

  // The metadata: the bundle with each chunk's bytes replaced by its SHA-256.
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kReadWriteCreate));
    RETURN_IF_ERROR(conn->Exec("BEGIN"));
    ASSIGN_OR_RETURN(sql::Statement update,
                     conn->PrepareUncached("UPDATE chunks SET codec = ?1, data = ?2 WHERE id = ?3"));
    for (size_t i = 0; i < ids.size(); ++i) {
      RETURN_IF_ERROR(update.Bind(1, kRemoteCodec).BindText(2, shas[i]).Bind(3, ids[i]).Run());
    }
    RETURN_IF_ERROR(Reseal(*conn));
    RETURN_IF_ERROR(conn->Exec("COMMIT"));
    RETURN_IF_ERROR(conn->Exec("VACUUM"));
  }
  ASSIGN_OR_RETURN(std::string bundle, ReadFile(bundle_path));
  const std::string bundle_key = SessionKey(remote, session) + "bundles/" + ShaHex(*api, bundle);
  PutConditions absent;
  absent.if_absent = true;
  auto put = client->Put(bundle_key, bundle, absent);
  if (!put.ok() && put.status().code() != Code::kExists) return put.status();

  // Last, the head moves: only from what was read above.
  nlohmann::json head_json = {{"format", 1},
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
      return Exists("another push moved the head of '" + std::string(session) + "' on remote " +
                    remote.name + " meanwhile; pull it, or push again");
    }
    return moved_head.status();
  }
  RETURN_IF_ERROR(store.SetRemoteHead(remote.name, session, bundle_key));
  stats.head = bundle_key;
  stats.requests = counters.requests + client->counters().requests;
  stats.bytes = counters.bytes_sent + client->counters().bytes_sent;
  return stats;
}

Result<TransferStats> Pull(Store& store, const RemoteInfo& remote, std::string_view session,
                           const PullOptions& options, const Getenv& env) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  ASSIGN_OR_RETURN(auto client, Connect(remote, env));
  const std::string name(options.as.empty() ? session : options.as);
  const int parallel = options.parallel;
  TransferStats stats;
  ASSIGN_OR_RETURN(RemoteHead head, ReadHead(*client, SessionKey(remote, session) + "HEAD"));
  if (!head.exists) {
    return NotFound("remote " + remote.name + " has no session '" + std::string(session) + "'");
  }
  stats.head = head.bundle;
  const bool replace = store.GetSession(name).ok();
  if (replace) {
    ASSIGN_OR_RETURN(std::string known, store.GetRemoteHead(remote.name, session));
    if (name == session && known == head.bundle) {
      stats.up_to_date = true;
      return stats;
    }
    if (!options.force) {
      return Exists("session '" + name + "' exists in this store" +
                    (name == session && !known.empty() ? " and the remote head moved since" : "") +
                    ": pull into a new one with --as NAME, or replace it with --force (its "
                    "current state is kept as a snapshot)");
    }
  }
  ScratchDir scratch;
  if (!scratch.ok()) return IoError("cannot make a temporary directory");
  const std::string bundle_path = scratch.File("pull.bundle");
  {
    auto bundle = FetchBundle(*client, *api, head.bundle);
    if (!bundle.ok()) return bundle.status().WithContext("nothing was imported");
    RETURN_IF_ERROR(WriteFile(bundle_path, *bundle));
  }

  struct Fetched {
    int64_t id = 0;
    std::string sha;
    chunks::Encoded encoded;
  };
  std::vector<Fetched> rows;
  // Chunks this store already holds (same key and size, as the bundle's row
  // says) are taken from it, not fetched: pulling again fetches what is new.
  // Import checks each against its key, as it does every chunk.
  struct Local {
    int64_t id = 0;
    int codec = 0;
    std::vector<uint8_t> data;
  };
  std::vector<Local> reused;
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kQueryOnly));
    ASSIGN_OR_RETURN(auto local, sql::Connection::Open(store.path(), sql::OpenMode::kQueryOnly));
    ASSIGN_OR_RETURN(sql::Statement find,
                     local->PrepareUncached("SELECT codec, data FROM chunks WHERE hash = ?1 AND"
                                            " size = ?2 AND codec IN (0, 1) LIMIT 1"));
    ASSIGN_OR_RETURN(sql::Statement s, conn->PrepareUncached(
                                           "SELECT id, data, hash, size FROM chunks"
                                           " WHERE codec = 3 ORDER BY id"));
    RETURN_IF_ERROR(s.ForEachRow([&](sql::Statement& row) -> Status {
      std::span<const uint8_t> hash = row.Blob(2);
      ASSIGN_OR_RETURN(bool have,
                       find.BindBlob(1, hash).Bind(2, row.Int(3)).Step("looking up a chunk"));
      if (have) {
        std::span<const uint8_t> data = find.Blob(1);
        reused.push_back(Local{row.Int(0), static_cast<int>(find.Int(0)),
                               std::vector<uint8_t>(data.begin(), data.end())});
      } else {
        rows.push_back(Fetched{row.Int(0), row.Text(1), {}});
      }
      return find.Run();  // resets it
    }));
  }
  chunks::ChunkStore chunk_store(nullptr, 3);
  std::vector<std::vector<uint8_t>> plains(rows.size());
  S3Counters counters;
  RETURN_IF_ERROR(ForEachParallel(
      rows.size(), parallel, remote, env, bundle_path,
      [&](S3Client& c, sql::Connection&, size_t i) -> Status {
        const std::string key = ChunkKey(remote, rows[i].sha);
        ASSIGN_OR_RETURN(std::string body, c.Get(key));
        auto decoded = DecodeChunkObject(*api, key, body, rows[i].sha);
        if (!decoded.ok()) return decoded.status().WithContext("nothing was imported");
        std::vector<uint8_t>& plain = plains[i] = std::move(decoded).value();
        rows[i].encoded = chunk_store.Encode(plain);
        return Status::Ok();
      },
      options.progress, &counters));
  {
    ASSIGN_OR_RETURN(auto conn, sql::Connection::Open(bundle_path, sql::OpenMode::kReadWriteCreate));
    RETURN_IF_ERROR(conn->Exec("BEGIN"));
    ASSIGN_OR_RETURN(sql::Statement update,
                     conn->PrepareUncached("UPDATE chunks SET hash = ?1, codec = ?2, data = ?3 WHERE id = ?4"));
    for (size_t i = 0; i < rows.size(); ++i) {
      const chunks::Encoded& e = rows[i].encoded;
      const bool zstd = e.codec == chunks::Codec::kZstd;
      std::span<const uint8_t> data = zstd ? std::span<const uint8_t>(e.compressed)
                                           : std::span<const uint8_t>(plains[i]);
      RETURN_IF_ERROR(update.BindBlob(1, e.key)
                          .Bind(2, static_cast<int>(e.codec))
                          .BindBlob(3, data)
                          .Bind(4, rows[i].id)
                          .Run());
    }
    ASSIGN_OR_RETURN(sql::Statement reuse,
                     conn->PrepareUncached("UPDATE chunks SET codec = ?1, data = ?2 WHERE id = ?3"));
    for (const Local& l : reused) {
      RETURN_IF_ERROR(reuse.Bind(1, l.codec).BindBlob(2, l.data).Bind(3, l.id).Run());
    }
    RETURN_IF_ERROR(Reseal(*conn));
    RETURN_IF_ERROR(conn->Exec("COMMIT"));
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
  if (name == session) RETURN_IF_ERROR(store.SetRemoteHead(remote.name, session, head.bundle));
  stats.chunks = rows.size() + reused.size();
  stats.sent = rows.size();
  stats.requests = counters.requests + client->counters().requests;
  stats.bytes = counters.bytes_received + client->counters().bytes_received;
  return stats;
}

}  // namespace strata::remote
