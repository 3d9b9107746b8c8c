// Status and Result<T>: how every fallible call in Strata reports failure.
//
// The core never throws. Each Code maps to exactly one errno value so that the
// FUSE adapter can reply without guessing; Corruption and IoError both surface
// as EIO but stay distinct inside Strata so that callers and logs can tell a
// damaged store from a failing disk.
#ifndef STRATA_STATUS_H_
#define STRATA_STATUS_H_

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace strata {

enum class Code {
  kOk = 0,
  kNotFound,      // ENOENT
  kExists,        // EEXIST
  kNotDir,        // ENOTDIR
  kIsDir,         // EISDIR
  kNotEmpty,      // ENOTEMPTY
  kNoSpace,       // ENOSPC
  kReadOnly,      // EROFS
  kBusy,          // EBUSY
  kNameTooLong,   // ENAMETOOLONG
  kInvalid,       // EINVAL
  kLoop,          // ELOOP
  kNotPermitted,  // EPERM
  kAccess,        // EACCES
  kNoData,        // ENODATA (missing xattr)
  kRange,         // ERANGE
  kTooBig,        // E2BIG (xattr value too large)
  kFileTooBig,    // EFBIG
  kTooManyLinks,  // EMLINK
  kNotSupported,  // EOPNOTSUPP
  kCrossDevice,   // EXDEV
  kCorruption,    // EIO: the store's contents are damaged or not a Strata store
  kIoError,       // EIO: the operating system or SQLite failed to read or write
  kInternal,      // EIO: a bug; logged
};

// The errno value for `code` (0 for kOk).
int CodeToErrno(Code code);
// The canonical name of `code`, e.g. "NotFound".
std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  int ToErrno() const { return CodeToErrno(code_); }
  // "NotFound: no entry 'x' in directory 1", or "OK".
  std::string ToString() const;

  // Prepends context: "opening store /x: <message>".
  Status WithContext(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status Exists(std::string m) { return {Code::kExists, std::move(m)}; }
inline Status NotDir(std::string m) { return {Code::kNotDir, std::move(m)}; }
inline Status IsDir(std::string m) { return {Code::kIsDir, std::move(m)}; }
inline Status NotEmpty(std::string m) { return {Code::kNotEmpty, std::move(m)}; }
inline Status InvalidArgument(std::string m) { return {Code::kInvalid, std::move(m)}; }
inline Status ReadOnly(std::string m) { return {Code::kReadOnly, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

// Either a value of type T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "a Result built from a Status must carry an error");
    if (status_.ok()) status_ = Internal("Result built from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;  // OK when value_ is set
};

}  // namespace strata

#define STRATA_CONCAT_INNER_(a, b) a##b
#define STRATA_CONCAT_(a, b) STRATA_CONCAT_INNER_(a, b)

// Returns the Status of `expr` from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr) RETURN_IF_ERROR_IMPL_(STRATA_CONCAT_(strata_status_, __COUNTER__), expr)
#define RETURN_IF_ERROR_IMPL_(tmp, expr) \
  do {                                   \
    ::strata::Status tmp = (expr);       \
    if (!tmp.ok()) return tmp;           \
  } while (0)

// `lhs = value of expr`, or returns its Status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(STRATA_CONCAT_(strata_result_, __COUNTER__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // STRATA_STATUS_H_
