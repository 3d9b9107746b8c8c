#include "strata/status.h"

#include <cerrno>

namespace strata {

int CodeToErrno(Code code) {
  switch (code) {
    case Code::kOk: return 0;
    case Code::kNotFound: return ENOENT;
    case Code::kExists: return EEXIST;
    case Code::kNotDir: return ENOTDIR;
    case Code::kIsDir: return EISDIR;
    case Code::kNotEmpty: return ENOTEMPTY;
    case Code::kNoSpace: return ENOSPC;
    case Code::kReadOnly: return EROFS;
    case Code::kBusy: return EBUSY;
    case Code::kNameTooLong: return ENAMETOOLONG;
    case Code::kInvalid: return EINVAL;
    case Code::kLoop: return ELOOP;
    case Code::kNotPermitted: return EPERM;
    case Code::kAccess: return EACCES;
    case Code::kNoData: return ENODATA;
    case Code::kRange: return ERANGE;
    case Code::kTooBig: return E2BIG;
    case Code::kFileTooBig: return EFBIG;
    case Code::kTooManyLinks: return EMLINK;
    case Code::kNotSupported: return EOPNOTSUPP;
    case Code::kCrossDevice: return EXDEV;
    case Code::kCorruption:
    case Code::kIoError:
    case Code::kInternal: return EIO;
  }
  return EIO;
}

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kNotFound: return "NotFound";
    case Code::kExists: return "Exists";
    case Code::kNotDir: return "NotDir";
    case Code::kIsDir: return "IsDir";
    case Code::kNotEmpty: return "NotEmpty";
    case Code::kNoSpace: return "NoSpace";
    case Code::kReadOnly: return "ReadOnly";
    case Code::kBusy: return "Busy";
    case Code::kNameTooLong: return "NameTooLong";
    case Code::kInvalid: return "InvalidArgument";
    case Code::kLoop: return "Loop";
    case Code::kNotPermitted: return "NotPermitted";
    case Code::kAccess: return "AccessDenied";
    case Code::kNoData: return "NoData";
    case Code::kRange: return "Range";
    case Code::kTooBig: return "TooBig";
    case Code::kFileTooBig: return "FileTooBig";
    case Code::kTooManyLinks: return "TooManyLinks";
    case Code::kNotSupported: return "NotSupported";
    case Code::kCrossDevice: return "CrossDevice";
    case Code::kCorruption: return "Corruption";
    case Code::kIoError: return "IoError";
    case Code::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(CodeName(code_));
  if (!message_.empty()) s += ": " + message_;
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

}  // namespace strata
