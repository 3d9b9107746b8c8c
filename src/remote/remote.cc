#include "remote/remote.h"

#include <cctype>

namespace strata::remote {

namespace {

bool ValidBucket(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
          c == '.' || c == '-')) {
      return false;
    }
  }
  auto alnum = [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c));
  };
  return alnum(b.front()) && alnum(b.back()) && b.find("..") == std::string_view::npos;
}

}  // namespace

Status ParseS3Url(std::string_view url, RemoteInfo* remote) {
  constexpr std::string_view kScheme = "s3://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("'" + std::string(url) + "' is not an s3://BUCKET[/PREFIX] URL");
  }
  std::string_view rest = url.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  size_t slash = rest.find('/');
  std::string_view bucket = rest.substr(0, slash);
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (!ValidBucket(bucket)) {
    return InvalidArgument("'" + std::string(bucket) +
                           "' is not a valid S3 bucket name (3-63 characters of a-z, 0-9, '.' and "
                           "'-', starting and ending with a letter or digit)");
  }
  if (!prefix.empty()) {
    size_t start = 0;
    for (;;) {
      size_t end = prefix.find('/', start);
      std::string_view part = prefix.substr(start, end - start);
      if (part.empty() || part == "." || part == "..") {
        return InvalidArgument("prefix '" + std::string(prefix) +
                               "' has an empty, '.' or '..' part");
      }
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
  }
  remote->bucket = std::string(bucket);
  remote->prefix = std::string(prefix);
  return Status::Ok();
}

std::string S3Url(const RemoteInfo& remote) {
  return "s3://" + remote.bucket + (remote.prefix.empty() ? "" : "/" + remote.prefix);
}

S3Location LocationOf(const RemoteInfo& remote, const Getenv& env) {
  S3Location where;
  where.region = ResolveRegion(remote.region, env);
  where.endpoint =
      remote.endpoint.empty() ? "https://s3." + where.region + ".amazonaws.com" : remote.endpoint;
  where.bucket = remote.bucket;
  return where;
}

Result<std::unique_ptr<S3Client>> Connect(const RemoteInfo& remote, const Getenv& env) {
  ASSIGN_OR_RETURN(S3Credentials credentials, LoadCredentials(env));
  return S3Client::Create(LocationOf(remote, env), std::move(credentials));
}

}  // namespace strata::remote
