// S3Client: the S3 requests Strata's remotes need, over libcurl, signed
// with SigV4 (libcurl's CURLOPT_AWS_SIGV4), path-style: PUT (optionally
// conditional), GET, HEAD and DELETE of an object, a bucket's listing by
// prefix, and bucket creation.
//
// Transient failures (connection errors, timeouts, 5xx answers, 503
// SlowDown) are retried with exponential backoff; the error that remains is
// one line that says what to fix. Codes: NotFound (no such key or bucket),
// Exists (a condition failed: If-None-Match or If-Match, HTTP 412), Access
// (credentials refused, access denied, clock skew), IoError (unreachable,
// or still failing after the retries), Invalid (a request the server could
// not accept).
//
// One client runs one request at a time (it keeps one connection alive);
// use one per thread.
#ifndef STRATA_REMOTE_S3_CLIENT_H_
#define STRATA_REMOTE_S3_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/status.h"

namespace strata::remote {

struct S3Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // empty: none
};

// Where credentials come from, as every S3 tool reads them: the environment
// (`env`, normally the process's) AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN; else the profile AWS_PROFILE (default "default")
// in AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials), then in
// AWS_CONFIG_FILE (default ~/.aws/config, section "[profile NAME]"). Access
// with a message naming what was looked at when none is found.
using Getenv = std::function<const char*(const char*)>;
Result<S3Credentials> LoadCredentials(const Getenv& env);

// The region: `explicit_region` if set, else AWS_REGION, else
// AWS_DEFAULT_REGION, else "us-east-1".
std::string ResolveRegion(std::string_view explicit_region, const Getenv& env);

struct S3Location {
  std::string endpoint;  // "http://127.0.0.1:7480", "https://s3.eu-west-1.amazonaws.com"
  std::string region;
  std::string bucket;
};

struct PutConditions {
  bool if_absent = false;               // If-None-Match: *
  std::optional<std::string> if_etag;   // If-Match: the object's current ETag
};

struct ObjectInfo {
  uint64_t size = 0;
  std::string etag;  // without quotes
  int64_t modified_s = -1;  // Last-Modified, seconds since the epoch (Head only; -1 unknown)
};

struct ListPage {
  std::vector<std::pair<std::string, uint64_t>> keys;  // key, size; in key order
  std::vector<int64_t> modified_s;                      // each key's LastModified (Unix time)
  std::string next;                                     // empty: the last page
};

// How many requests and bytes a client sent and received (for reports).
struct S3Counters {
  uint64_t requests = 0;
  uint64_t retries = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;

  // Adds another client's counts (a transfer's threads each have one).
  void Add(const S3Counters& other) {
    requests += other.requests;
    retries += other.retries;
    bytes_sent += other.bytes_sent;
    bytes_received += other.bytes_received;
  }
};

class S3Client {
 public:
  // Loads libcurl (see net_api.h). Invalid for a malformed endpoint.
  static Result<std::unique_ptr<S3Client>> Create(S3Location where, S3Credentials credentials);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Creates the bucket; OK if it exists and is ours already.
  Status CreateBucket();
  // Stores `body` under `key`; returns its ETag.
  Result<std::string> Put(std::string_view key, std::string_view body,
                          const PutConditions& conditions = {});
  // The object's bytes; its size and ETag too, if `info` is given.
  Result<std::string> Get(std::string_view key, ObjectInfo* info = nullptr);
  // `length` bytes of the object from `offset` (fewer at its end).
  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length);
  Result<ObjectInfo> Head(std::string_view key);
  // OK if the key did not exist.
  Status Delete(std::string_view key);
  // Keys starting with `prefix`, a page of at most `max_keys` at a time from
  // `after` (a page's `next`; empty for the first).
  Result<ListPage> List(std::string_view prefix, std::string_view after = "",
                        int max_keys = 1000);

  const S3Counters& counters() const { return counters_; }
  const S3Location& location() const { return where_; }

  // Backoff between retries; tests shorten it.
  void set_retry_delay_ms(int first_delay_ms) { first_delay_ms_ = first_delay_ms; }

 private:
  struct Request;
  struct Response;
  S3Client(S3Location where, S3Credentials credentials);
  // Sends `request`, retrying transient failures; the last response.
  Result<Response> Send(const Request& request);
  Result<Response> SendOnce(const Request& request);
  // The Status for a response that is not a success.
  Status ErrorOf(const Request& request, const Response& response) const;

  S3Location where_;
  S3Credentials credentials_;
  void* curl_ = nullptr;  // CURL*, reused for its connection
  S3Counters counters_;
  int first_delay_ms_ = 200;
};

}  // namespace strata::remote

#endif  // STRATA_REMOTE_S3_CLIENT_H_
