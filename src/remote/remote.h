// Remotes as users name them (`s3://BUCKET[/PREFIX]`) and the S3 client
// that reaches one.
#ifndef STRATA_REMOTE_REMOTE_H_
#define STRATA_REMOTE_REMOTE_H_

#include <memory>
#include <string>
#include <string_view>

#include "remote/s3_client.h"
#include "strata/status.h"
#include "strata/types.h"

namespace strata::remote {

// Fills remote->bucket and remote->prefix from `s3://BUCKET[/PREFIX]`.
// Invalid, saying why, for anything else: another scheme, a bucket name
// S3 does not allow (3-63 of a-z 0-9 . -, starting and ending with a letter
// or digit), or a prefix with an empty, "." or ".." part.
Status ParseS3Url(std::string_view url, RemoteInfo* remote);
std::string S3Url(const RemoteInfo& remote);

// Where `remote` is: its endpoint (AWS S3's for its region when it has
// none) and region (see ResolveRegion).
S3Location LocationOf(const RemoteInfo& remote, const Getenv& env);

// A client for `remote` with the credentials of the environment `env`.
Result<std::unique_ptr<S3Client>> Connect(const RemoteInfo& remote, const Getenv& env);

}  // namespace strata::remote

#endif  // STRATA_REMOTE_REMOTE_H_
