#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include "common/errors.h"

TEST_CASE("error codes are unique and prefixed") {
  std::set<std::string> seen;
#define CHECK_CODE(name, code, msg)                                          \
  CHECK(std::string(ckpt::errc_code(ckpt::Errc::name)) == code);             \
  CHECK((std::string(code) == "OK" || std::string(code).rfind("ERR_CKPT_", 0) == 0)); \
  CHECK(seen.insert(code).second);
  CKPT_ERRNO_MAP(CHECK_CODE)
#undef CHECK_CODE
}

TEST_CASE("throw_errno maps errno to a code") {
  try {
    ckpt::throw_errno("open /x", ENOENT);
    FAIL("did not throw");
  } catch (const ckpt::Error& e) {
    CHECK(e.errc() == ckpt::Errc::NotFound);
    CHECK(std::string(e.what()).find("open /x") == 0);
  }
}
