// Behaviour of the storage measurement (no timing assertions: figures are
// only checked for being present and consistent).
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "bench/storage.h"
#include "common/errors.h"

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ckpt-bench-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path + "'";
    (void)!system(cmd.c_str());
  }
};

}  // namespace

TEST_CASE("buffered write then read transfers every byte") {
  TempDir d;
  ckpt::bench::SeqOptions o;
  o.path = d.path + "/f";
  o.bytes = 3 * 1024 * 1024 + 1;  // rounded up to whole blocks
  o.block_size = 1 << 20;
  auto w = ckpt::bench::write_sequential(o);
  CHECK(w.bytes == 4u << 20);
  CHECK(w.seconds > 0);
  CHECK(w.fsync_seconds >= 0);
  CHECK(w.fsync_seconds <= w.seconds);
  struct stat st{};
  REQUIRE(stat(o.path.c_str(), &st) == 0);
  CHECK(static_cast<uint64_t>(st.st_size) == w.bytes);
  auto r = ckpt::bench::read_sequential(o);
  CHECK(r.bytes == w.bytes);
  CHECK(r.resident_fraction >= 0);
  CHECK(r.resident_fraction <= 1);
}

TEST_CASE("parallel transfers cover the whole file") {
  TempDir d;
  ckpt::bench::SeqOptions o;
  o.path = d.path + "/f";
  o.bytes = 5u << 20;
  o.block_size = 1 << 20;
  o.queue_depth = 3;
  auto w = ckpt::bench::write_sequential(o);
  CHECK(w.bytes == 5u << 20);
  auto r = ckpt::bench::read_sequential(o);
  CHECK(r.bytes == 5u << 20);
}

TEST_CASE("O_DIRECT either works or reports Unsupported") {
  TempDir d;
  std::string why;
  bool ok = ckpt::bench::probe_direct(d.path, &why);
  ckpt::bench::SeqOptions o;
  o.path = d.path + "/f";
  o.bytes = 2u << 20;
  o.direct = true;
  if (ok) {
    CHECK(why.empty());
    CHECK(ckpt::bench::write_sequential(o).bytes == 2u << 20);
    CHECK(ckpt::bench::read_sequential(o).bytes == 2u << 20);
  } else {
    CHECK(why.find("O_DIRECT unsupported") == 0);
    try {
      ckpt::bench::write_sequential(o);
      FAIL("expected an error");
    } catch (const ckpt::Error& e) {
      CHECK(e.errc() == ckpt::Errc::Unsupported);
    }
  }
}

TEST_CASE("fsync latencies: one figure per round") {
  TempDir d;
  auto l = ckpt::bench::fsync_latencies(d.path + "/s", 5, 4096);
  REQUIRE(l.size() == 5);
  for (double x : l) CHECK(x > 0);
  struct stat st{};
  REQUIRE(stat((d.path + "/s").c_str(), &st) == 0);
  CHECK(st.st_size == 5 * 4096);
}

TEST_CASE("bad options are refused") {
  ckpt::bench::SeqOptions o;
  CHECK_THROWS_AS(ckpt::bench::write_sequential(o), ckpt::Error);  // empty path
  o.path = "/tmp/never-written";
  o.bytes = 1;
  o.block_size = 1000;  // not a multiple of 4096
  CHECK_THROWS_AS(ckpt::bench::write_sequential(o), ckpt::Error);
  o.block_size = 4096;
  o.queue_depth = 0;
  CHECK_THROWS_AS(ckpt::bench::write_sequential(o), ckpt::Error);
  o.queue_depth = 1;
  o.bytes = 0;
  CHECK_THROWS_AS(ckpt::bench::write_sequential(o), ckpt::Error);
  CHECK_THROWS_AS(ckpt::bench::read_sequential({.path = "/nonexistent/dir/file"}), ckpt::Error);
  CHECK_THROWS_AS(ckpt::bench::fsync_latencies("/tmp/x", 0, 4096), ckpt::Error);
}
