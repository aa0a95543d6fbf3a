// Stable error codes shared by every native component and mirrored in
// src/errors.ts. The string codes are part of the public API: never change or
// reuse one, only add new ones at the end.
#pragma once

#include <stdexcept>
#include <string>

namespace ckpt {

// X-macro: CKPT_ERR(Enum, "STRING_CODE", "what it means")
#define CKPT_ERRNO_MAP(CKPT_ERR)                                                      \
  CKPT_ERR(Ok, "OK", "no error")                                                      \
  CKPT_ERR(InvalidArgument, "ERR_CKPT_INVALID_ARGUMENT", "an argument is invalid")    \
  CKPT_ERR(Io, "ERR_CKPT_IO", "an I/O operation failed")                              \
  CKPT_ERR(NotFound, "ERR_CKPT_NOT_FOUND", "a file or object does not exist")         \
  CKPT_ERR(Corrupt, "ERR_CKPT_CORRUPT", "data failed verification")                   \
  CKPT_ERR(Truncated, "ERR_CKPT_TRUNCATED", "data ends early")                        \
  CKPT_ERR(Unsupported, "ERR_CKPT_UNSUPPORTED", "not supported on this system")       \
  CKPT_ERR(Busy, "ERR_CKPT_BUSY", "a resource is in use")                             \
  CKPT_ERR(AddrInUse, "ERR_CKPT_ADDR_IN_USE", "a network address is already in use")  \
  CKPT_ERR(Protocol, "ERR_CKPT_PROTOCOL", "a peer violated the wire protocol")         \
  CKPT_ERR(State, "ERR_CKPT_STATE", "the operation is not valid in the current state")\
  CKPT_ERR(Timeout, "ERR_CKPT_TIMEOUT", "an operation timed out")                     \
  CKPT_ERR(Internal, "ERR_CKPT_INTERNAL", "an internal error (a bug)")                 \
  CKPT_ERR(Incomplete, "ERR_CKPT_INCOMPLETE", "a checkpoint is incomplete")

enum class Errc : int {
#define CKPT_ERR_ENUM(name, code, msg) name,
  CKPT_ERRNO_MAP(CKPT_ERR_ENUM)
#undef CKPT_ERR_ENUM
};

// The stable string code of `e`, e.g. "ERR_CKPT_IO".
const char* errc_code(Errc e) noexcept;
// A short English description of `e`.
const char* errc_message(Errc e) noexcept;

// The one exception type native code throws across module boundaries. The
// addon converts it into a JS Error whose `code` is errc_code(errc()).
class Error : public std::runtime_error {
 public:
  Error(Errc errc, const std::string& what) : std::runtime_error(what), errc_(errc) {}
  Errc errc() const noexcept { return errc_; }

 private:
  Errc errc_;
};

// Throws Error(Errc::Io, "<what>: <strerror(err)>").
[[noreturn]] void throw_errno(const std::string& what, int err);

}  // namespace ckpt
