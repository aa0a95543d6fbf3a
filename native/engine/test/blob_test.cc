#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "common/errors.h"
#include "engine/blob.h"

using namespace ckpt::engine;

namespace {

std::vector<uint8_t> make_blob(int regions, int fds, const char* pipe = "") {
  ProcHeader h{};
  memcpy(h.magic, kProcMagic, 8);
  h.abi = kAbiVersion;
  h.header_size = sizeof h;
  h.pid = 2;
  h.n_regions = regions;
  h.n_fds = fds;
  std::vector<uint8_t> b(sizeof h);
  memcpy(b.data(), &h, sizeof h);
  for (int i = 0; i < regions; i++) {
    RegionDesc r{};
    r.start = 0x10000 + i * 0x2000;
    r.end = r.start + 0x1000;
    r.prot = 3;
    b.insert(b.end(), reinterpret_cast<uint8_t*>(&r), reinterpret_cast<uint8_t*>(&r) + sizeof r);
  }
  for (int i = 0; i < fds; i++) {
    FdDesc f{};
    f.fd = i;
    f.kind = kFdPipe;
    f.data_len = i == 0 ? (uint32_t)strlen(pipe) : 0;
    b.insert(b.end(), reinterpret_cast<uint8_t*>(&f), reinterpret_cast<uint8_t*>(&f) + sizeof f);
  }
  b.insert(b.end(), pipe, pipe + strlen(pipe));
  return b;
}

}  // namespace

TEST_CASE("a well-formed blob parses with its pipe data") {
  auto b = make_blob(2, 2, "hello");
  ParsedBlob p = parse_engine_blob(b.data(), b.size());
  CHECK(p.regions.size() == 2);
  CHECK(p.fds.size() == 2);
  CHECK(p.pipe_data[0] == "hello");
  CHECK(p.pipe_data[1].empty());
}

TEST_CASE("malformed blobs are rejected with Corrupt") {
  auto b = make_blob(2, 1, "abc");
  CHECK_THROWS_AS(parse_engine_blob(b.data(), b.size() - 1), ckpt::Error);  // pipe data cut
  CHECK_THROWS_AS(parse_engine_blob(b.data(), 10), ckpt::Error);
  auto bad_magic = b;
  bad_magic[0] = 'X';
  CHECK_THROWS_AS(parse_engine_blob(bad_magic.data(), bad_magic.size()), ckpt::Error);
  auto overlap = make_blob(2, 0);
  auto* r = reinterpret_cast<RegionDesc*>(overlap.data() + sizeof(ProcHeader) + sizeof(RegionDesc));
  r->start = 0x10000;  // overlaps the first
  r->end = 0x11000;
  CHECK_THROWS_AS(parse_engine_blob(overlap.data(), overlap.size()), ckpt::Error);
}

TEST_CASE("a blob of another version is Unsupported") {
  auto b = make_blob(0, 0);
  reinterpret_cast<ProcHeader*>(b.data())->abi = kAbiVersion + 1;
  try {
    parse_engine_blob(b.data(), b.size());
    FAIL("accepted");
  } catch (const ckpt::Error& e) {
    CHECK(e.errc() == ckpt::Errc::Unsupported);
  }
}
