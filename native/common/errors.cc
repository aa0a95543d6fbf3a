#include "common/errors.h"

#include <cerrno>
#include <cstring>

namespace ckpt {

const char* errc_code(Errc e) noexcept {
  switch (e) {
#define CKPT_ERR_CASE(name, code, msg) \
  case Errc::name:                     \
    return code;
    CKPT_ERRNO_MAP(CKPT_ERR_CASE)
#undef CKPT_ERR_CASE
  }
  return "ERR_CKPT_INTERNAL";
}

const char* errc_message(Errc e) noexcept {
  switch (e) {
#define CKPT_ERR_CASE(name, code, msg) \
  case Errc::name:                     \
    return msg;
    CKPT_ERRNO_MAP(CKPT_ERR_CASE)
#undef CKPT_ERR_CASE
  }
  return "internal error";
}

void throw_errno(const std::string& what, int err) {
  Errc e = Errc::Io;
  if (err == ENOENT) e = Errc::NotFound;
  if (err == EADDRINUSE) e = Errc::AddrInUse;
  if (err == EBUSY) e = Errc::Busy;
  if (err == EINVAL) e = Errc::InvalidArgument;
  throw Error(e, what + ": " + std::strerror(err));
}

}  // namespace ckpt
