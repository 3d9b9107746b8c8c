#include "remote/s3_client.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "remote/net_api.h"

namespace strata::remote {

namespace {

constexpr int kMaxAttempts = 5;

std::string Trim(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(a, b - a + 1));
}

// The keys of section `section` of an INI file such as ~/.aws/credentials.
std::map<std::string, std::string> IniSection(const std::string& path,
                                              const std::string& section) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    std::string t = Trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      inside = Trim(std::string_view(t).substr(1, t.size() - 2)) == section;
      continue;
    }
    size_t eq = t.find('=');
    if (inside && eq != std::string::npos) out[Trim(t.substr(0, eq))] = Trim(t.substr(eq + 1));
  }
  return out;
}

std::string EnvOr(const Getenv& env, const char* name, const std::string& fallback) {
  const char* v = env(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// What is between the first <tag> and its </tag> in an S3 XML answer (from
// *from on, which moves past it), as it is written.
std::string_view XmlRaw(std::string_view xml, std::string_view tag, size_t* from = nullptr) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  size_t start = xml.find(open, from != nullptr ? *from : 0);
  if (start == std::string_view::npos) return {};
  start += open.size();
  size_t end = xml.find(close, start);
  if (end == std::string_view::npos) return {};
  if (from != nullptr) *from = end + close.size();
  return xml.substr(start, end - start);
}

// The same, with XML's five entities unescaped.
std::string XmlText(std::string_view xml, std::string_view tag) {
  std::string_view raw = XmlRaw(xml, tag);
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    static const std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool matched = false;
    for (const auto& [entity, c] : kEntities) {
      if (raw.substr(i, entity.size()) == entity) {
        out += c;
        i += entity.size() - 1;
        matched = true;
        break;
      }
    }
    if (!matched) out += raw[i];
  }
  return out;
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

bool TransientCurlError(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<S3Credentials> LoadCredentials(const Getenv& env) {
  S3Credentials c;
  c.access_key = EnvOr(env, "AWS_ACCESS_KEY_ID", "");
  c.secret_key = EnvOr(env, "AWS_SECRET_ACCESS_KEY", "");
  c.session_token = EnvOr(env, "AWS_SESSION_TOKEN", "");
  if (!c.access_key.empty() && !c.secret_key.empty()) return c;
  const std::string home = EnvOr(env, "HOME", "/root");
  const std::string profile = EnvOr(env, "AWS_PROFILE", "default");
  const std::string credentials =
      EnvOr(env, "AWS_SHARED_CREDENTIALS_FILE", home + "/.aws/credentials");
  const std::string config = EnvOr(env, "AWS_CONFIG_FILE", home + "/.aws/config");
  for (const auto& [path, section] :
       {std::pair{credentials, profile},
        std::pair{config, profile == "default" ? profile : "profile " + profile}}) {
    auto keys = IniSection(path, section);
    if (!keys["aws_access_key_id"].empty() && !keys["aws_secret_access_key"].empty()) {
      c.access_key = keys["aws_access_key_id"];
      c.secret_key = keys["aws_secret_access_key"];
      c.session_token = keys["aws_session_token"];
      return c;
    }
  }
  return Status(Code::kAccess,
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                "with a profile '" + profile + "' in " + credentials + " or " + config);
}

std::string ResolveRegion(std::string_view explicit_region, const Getenv& env) {
  if (!explicit_region.empty()) return std::string(explicit_region);
  return EnvOr(env, "AWS_REGION", EnvOr(env, "AWS_DEFAULT_REGION", "us-east-1"));
}

struct S3Client::Request {
  const char* method = "GET";
  std::string key;                           // empty: the bucket itself
  std::map<std::string, std::string> query;  // sorted, as SigV4 wants
  std::string_view body;
  std::vector<std::string> headers;
  std::string What() const { return std::string(method) + " " + key; }
};

struct S3Client::Response {
  long status = 0;
  CURLcode curl = CURLE_OK;
  std::string curl_error;
  std::string body;
  std::string etag;
};

S3Client::S3Client(S3Location where, S3Credentials credentials)
    : where_(std::move(where)), credentials_(std::move(credentials)) {}

S3Client::~S3Client() {
  if (curl_ != nullptr) (*LoadNetApi())->curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<std::unique_ptr<S3Client>> S3Client::Create(S3Location where, S3Credentials credentials) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  while (!where.endpoint.empty() && where.endpoint.back() == '/') where.endpoint.pop_back();
  if (where.endpoint.rfind("http://", 0) != 0 && where.endpoint.rfind("https://", 0) != 0) {
    return InvalidArgument("endpoint '" + where.endpoint + "' is not an http:// or https:// URL");
  }
  if (where.bucket.empty()) return InvalidArgument("no bucket given");
  std::unique_ptr<S3Client> client(new S3Client(std::move(where), std::move(credentials)));
  client->curl_ = api->curl_easy_init();
  if (client->curl_ == nullptr) return Internal("curl_easy_init failed");
  return client;
}

Result<S3Client::Response> S3Client::SendOnce(const Request& request) {
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  CURL* curl = static_cast<CURL*>(curl_);
  api->curl_easy_reset(curl);  // keeps the connection
  auto escape = [&](std::string_view s) {
    char* e = api->curl_easy_escape(curl, s.data(), static_cast<int>(s.size()));
    std::string out = e != nullptr ? e : "";
    api->curl_free(e);
    return out;
  };
  // Path-style; each segment of the key escaped as SigV4's canonical URI
  // has it (every byte but A-Z a-z 0-9 - . _ ~), slashes kept.
  std::string url = where_.endpoint + "/" + escape(where_.bucket);
  if (!request.key.empty()) {
    url += "/";
    size_t start = 0;
    for (;;) {
      size_t slash = request.key.find('/', start);
      url += escape(std::string_view(request.key).substr(start, slash - start));
      if (slash == std::string::npos) break;
      url += "/";
      start = slash + 1;
    }
  }
  // Sorted, escaped, and every parameter with a value: what libcurl's
  // SigV4 signs is the query exactly as given.
  char sep = '?';
  for (const auto& [k, v] : request.query) {
    url += sep + escape(k) + "=" + escape(v);
    sep = '&';
  }
  Response response;
  struct curl_slist* headers = nullptr;
  auto add_header = [&](const std::string& h) { headers = api->curl_slist_append(headers, h.c_str()); };
  const Sha256 payload = Sha256Of(*api, request.body);
  add_header("x-amz-content-sha256: " + Hex(payload.data(), payload.size()));
  if (!credentials_.session_token.empty()) {
    add_header("x-amz-security-token: " + credentials_.session_token);
  }
  for (const std::string& h : request.headers) add_header(h);
  const std::string sigv4 = "aws:amz:" + where_.region + ":s3";
  const std::string userpwd = credentials_.access_key + ":" + credentials_.secret_key;
  struct Upload {
    std::string_view body;
    size_t at = 0;
  } upload{request.body, 0};
  auto read_body = +[](char* out, size_t size, size_t n, void* data) -> size_t {
    auto* u = static_cast<Upload*>(data);
    size_t take = std::min(size * n, u->body.size() - u->at);
    std::memcpy(out, u->body.data() + u->at, take);
    u->at += take;
    return take;
  };
  auto write_body = +[](char* in, size_t size, size_t n, void* data) -> size_t {
    static_cast<Response*>(data)->body.append(in, size * n);
    return size * n;
  };
  auto read_header = +[](char* in, size_t size, size_t n, void* data) -> size_t {
    std::string_view line(in, size * n);
    constexpr std::string_view kEtag = "etag:";
    if (line.size() > kEtag.size()) {
      std::string name(line.substr(0, kEtag.size()));
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      if (name == kEtag) static_cast<Response*>(data)->etag = Unquote(Trim(line.substr(kEtag.size())));
    }
    return size * n;
  };
  char error[CURL_ERROR_SIZE] = {};
  api->curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  api->curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4.c_str());
  api->curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd.c_str());
  api->curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  api->curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  api->curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  // A transfer slower than 1 KiB/s for 30 s is given up (and retried).
  api->curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  api->curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
  api->curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  api->curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_body);
  api->curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  api->curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, read_header);
  api->curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  if (std::strcmp(request.method, "PUT") == 0) {
    api->curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    api->curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_body);
    api->curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    api->curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                          static_cast<curl_off_t>(request.body.size()));
    // libcurl asks "Expect: 100-continue" before a large body; the header
    // cannot be removed (SigV4 would sign its empty value), so do not wait
    // long for the answer.
    api->curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 50L);
  } else if (std::strcmp(request.method, "HEAD") == 0) {
    api->curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    api->curl_easy_setopt(curl, CURLOPT_FILETIME, 1L);  // Last-Modified
  } else if (std::strcmp(request.method, "GET") != 0) {
    api->curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method);
  }
  response.curl = api->curl_easy_perform(curl);
  api->curl_slist_free_all(headers);
  counters_.requests++;
  counters_.bytes_sent += upload.at;
  counters_.bytes_received += response.body.size();
  if (response.curl != CURLE_OK) {
    response.curl_error = error[0] != '\0' ? error : api->curl_easy_strerror(response.curl);
    return response;
  }
  api->curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

Result<S3Client::Response> S3Client::Send(const Request& request) {
  std::mt19937 rng(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(Response r, SendOnce(request));
    const bool transient =
        r.curl != CURLE_OK ? TransientCurlError(r.curl)
                           : (r.status >= 500 || r.status == 429 ||
                              (r.status == 400 && XmlText(r.body, "Code") == "RequestTimeout"));
    if (!transient || attempt == kMaxAttempts) return r;
    // Exponential backoff with full jitter, as S3's own clients do.
    int64_t cap = int64_t{first_delay_ms_} << (attempt - 1);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(cap / 2, cap)(rng)));
    counters_.retries++;
  }
}

Status S3Client::ErrorOf(const Request& request, const Response& r) const {
  const std::string where = where_.endpoint + "/" + where_.bucket;
  if (r.curl != CURLE_OK) {
    return IoError("cannot reach " + where_.endpoint + " (" + r.curl_error +
                   "): check the remote's --endpoint and that the server is running");
  }
  const std::string code = XmlText(r.body, "Code");
  const std::string what = request.What() + " at " + where + ": ";
  if (code == "InvalidAccessKeyId") {
    return Status(Code::kAccess, what + "the server does not know access key '" +
                                     credentials_.access_key + "': check AWS_ACCESS_KEY_ID or the profile");
  }
  if (code == "SignatureDoesNotMatch") {
    return Status(Code::kAccess, what + "the server refused the request's signature: check "
                                        "AWS_SECRET_ACCESS_KEY (or the profile) and the region ('" +
                                        where_.region + "')");
  }
  if (code == "RequestTimeTooSkewed") {
    return Status(Code::kAccess, what + "this machine's clock is too far from the server's: "
                                        "set the clock (for example with NTP)");
  }
  if (code == "NoSuchBucket") {
    return NotFound(what + "bucket '" + where_.bucket +
                    "' does not exist: create it, or check the remote's URL and --endpoint");
  }
  if (code == "NoSuchKey" || (r.status == 404 && code.empty())) {
    return NotFound(what + "no such object");
  }
  if (r.status == 412) return Exists(what + "the object changed or exists (precondition failed)");
  if (code == "AccessDenied" || r.status == 403) {
    return Status(Code::kAccess, what + "access denied" +
                                     (code.empty() ? "" : " (" + XmlText(r.body, "Message") + ")"));
  }
  std::string detail = code.empty() ? "HTTP " + std::to_string(r.status)
                                    : code + ": " + XmlText(r.body, "Message");
  if (r.status >= 500 || r.status == 429) {
    return IoError(what + detail + " (still failing after " + std::to_string(kMaxAttempts) +
                   " attempts)");
  }
  return InvalidArgument(what + detail);
}

Status S3Client::CreateBucket() {
  Request request;
  request.method = "PUT";
  ASSIGN_OR_RETURN(Response r, Send(request));
  if (r.curl == CURLE_OK && r.status / 100 == 2) return Status::Ok();
  if (r.curl == CURLE_OK && XmlText(r.body, "Code") == "BucketAlreadyOwnedByYou") {
    return Status::Ok();
  }
  return ErrorOf(request, r);
}

Result<std::string> S3Client::Put(std::string_view key, std::string_view body,
                                  const PutConditions& conditions) {
  Request request;
  request.method = "PUT";
  request.key = std::string(key);
  request.body = body;
  if (conditions.if_absent) request.headers.push_back("If-None-Match: *");
  // Unquoted: radosgw honours If-Match only so; S3 takes either.
  if (conditions.if_etag) request.headers.push_back("If-Match: " + *conditions.if_etag);
  ASSIGN_OR_RETURN(Response r, Send(request));
  if (r.curl == CURLE_OK && r.status / 100 == 2) return r.etag;
  return ErrorOf(request, r);
}

Result<std::string> S3Client::Get(std::string_view key, ObjectInfo* info) {
  Request request;
  request.key = std::string(key);
  ASSIGN_OR_RETURN(Response r, Send(request));
  if (r.curl == CURLE_OK && r.status / 100 == 2) {
    if (info != nullptr) *info = ObjectInfo{r.body.size(), r.etag};
    return std::move(r.body);
  }
  return ErrorOf(request, r);
}

Result<std::string> S3Client::GetRange(std::string_view key, uint64_t offset, uint64_t length) {
  if (length == 0) return std::string();
  Request request;
  request.key = std::string(key);
  request.headers.push_back("Range: bytes=" + std::to_string(offset) + "-" +
                            std::to_string(offset + length - 1));
  ASSIGN_OR_RETURN(Response r, Send(request));
  if (r.curl == CURLE_OK && r.status / 100 == 2) {
    // A server that ignores Range answers 200 with the whole object.
    if (r.status == 200) r.body = offset < r.body.size() ? r.body.substr(offset, length) : "";
    return std::move(r.body);
  }
  return ErrorOf(request, r);
}

Result<ObjectInfo> S3Client::Head(std::string_view key) {
  Request request;
  request.method = "HEAD";
  request.key = std::string(key);
  ASSIGN_OR_RETURN(Response r, Send(request));
  if (r.curl != CURLE_OK || r.status / 100 != 2) return ErrorOf(request, r);
  ASSIGN_OR_RETURN(const NetApi* api, LoadNetApi());
  curl_off_t length = 0, modified = -1;
  api->curl_easy_getinfo(static_cast<CURL*>(curl_), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  api->curl_easy_getinfo(static_cast<CURL*>(curl_), CURLINFO_FILETIME_T, &modified);
  return ObjectInfo{static_cast<uint64_t>(std::max<curl_off_t>(length, 0)), r.etag,
                    static_cast<int64_t>(modified)};
}

Status S3Client::Delete(std::string_view key) {
  Request request;
  request.method = "DELETE";
  request.key = std::string(key);
  ASSIGN_OR_RETURN(Response r, Send(request));
  if (r.curl == CURLE_OK && (r.status / 100 == 2 || r.status == 404)) return Status::Ok();
  return ErrorOf(request, r);
}

Result<ListPage> S3Client::List(std::string_view prefix, std::string_view after,
                                int max_keys) {
  Request request;
  request.query["list-type"] = "2";
  request.query["max-keys"] = std::to_string(max_keys);
  request.query["prefix"] = std::string(prefix);
  if (!after.empty()) request.query["continuation-token"] = std::string(after);
  ASSIGN_OR_RETURN(Response r, Send(request));
  if (r.curl != CURLE_OK || r.status / 100 != 2) return ErrorOf(request, r);
  ListPage page;
  size_t at = 0;
  for (;;) {
    std::string_view contents = XmlRaw(r.body, "Contents", &at);
    if (contents.empty()) break;
    page.keys.emplace_back(XmlText(contents, "Key"),
                           std::strtoull(XmlText(contents, "Size").c_str(), nullptr, 10));
    // "2026-12-07T19:40:53.123Z"
    struct tm tm {};
    const std::string modified = XmlText(contents, "LastModified");
    page.modified_s.push_back(strptime(modified.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr
                                  ? static_cast<int64_t>(timegm(&tm))
                                  : 0);
  }
  if (XmlText(r.body, "IsTruncated") == "true") page.next = XmlText(r.body, "NextContinuationToken");
  return page;
}

}  // namespace strata::remote
