// Streaming core: codecs, hashing, ordered pipeline, files.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>

#include "common/errors.h"
#include "stream/stream.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::stream;

TEST_CASE("encoder round-trips and falls back to raw for incompressible data") {
  for (int codec : {0, 1}) {
    Encoder enc(codec, 3);
    Decoder dec;
    for (auto data : {test::random_bytes(100000, 1), test::mixed_bytes(300000, 2), std::vector<uint8_t>(65536, 7)}) {
      std::vector<uint8_t> out(Encoder::bound(data.size()));
      int used = -1;
      size_t n = enc.encode(data.data(), data.size(), out.data(), out.size(), used);
      if (codec == 0) CHECK(used == 0);
      if (used == 0) CHECK(n == data.size());
      else CHECK(n < data.size());
      std::vector<uint8_t> back(data.size());
      CHECK(dec.decode(used, out.data(), n, back.data(), back.size()));
      CHECK(back == data);
      // A wrong expected length is refused rather than silently accepted.
      std::vector<uint8_t> big(data.size() + 1);
      CHECK_FALSE(dec.decode(used, out.data(), n, big.data(), big.size()));
    }
  }
}

TEST_CASE("Hasher equals one-shot xxh3, zeros included") {
  auto d = test::random_bytes(200000, 9);
  std::vector<uint8_t> z(70000, 0);
  std::vector<uint8_t> all = d;
  all.insert(all.end(), z.begin(), z.end());
  Hasher h;
  h.update(d.data(), 1234);
  h.update(d.data() + 1234, d.size() - 1234);
  h.update_zeros(z.size());
  CHECK(h.digest() == xxh3(all.data(), all.size()));
  CHECK(all_zero(z.data(), z.size()));
  CHECK_FALSE(all_zero(d.data(), d.size()));
}

TEST_CASE("ordered pipeline delivers in submission order with bounded jobs") {
  struct Job {
    int seq = 0;
    int value = 0;
  };
  for (unsigned threads : {0u, 1u, 3u}) {
    std::vector<int> got;
    OrderedPipeline<Job> p(
        threads, 4,
        [&](Job& j, unsigned) {
          j.value = j.seq * 2;
          if (j.seq % 7 == 0) std::this_thread::yield();
        },
        [&](Job& j) { got.push_back(j.value); });
    for (int i = 0; i < 200; i++) {
      auto j = p.acquire();
      CHECK(p.in_flight() <= 4);
      j->seq = i;
      p.submit(std::move(j));
    }
    p.drain();
    REQUIRE(got.size() == 200);
    for (int i = 0; i < 200; i++) CHECK(got[size_t(i)] == i * 2);
  }
}

TEST_CASE("pipeline reports the first error from drain and acquire") {
  struct Job {
    int seq = 0;
  };
  for (unsigned threads : {0u, 2u}) {
    OrderedPipeline<Job> p(
        threads, 3, [](Job& j, unsigned) { if (j.seq == 5) throw Error(Errc::Io, "boom"); }, [](Job&) {});
    bool threw = false;
    try {
      for (int i = 0; i < 50; i++) {
        auto j = p.acquire();
        j->seq = i;
        p.submit(std::move(j));
      }
      p.drain();
    } catch (const Error& e) {
      threw = true;
      CHECK(e.errc() == Errc::Io);
    }
    CHECK(threw);
  }
}

TEST_CASE("File writes aligned blocks with O_DIRECT or falls back") {
  test::TempDir d;
  for (bool direct : {false, true}) {
    std::string p = d / (direct ? "direct" : "buffered");
    File f = File::create(p, 0600, direct);
    AlignedBuffer b(1 << 20);
    std::memset(b.data(), 0xab, 1 << 20);
    struct iovec v[2] = {{b.data(), 4096}, {b.data() + 4096, (1 << 20) - 4096}};
    f.pwritev_all(v, 2, 0);
    f.sync();
    f.close();
    CHECK(test::file_size(p) == (1u << 20));
    File r = File::open_read(p);
    std::vector<uint8_t> back(1 << 20);
    r.pread_exact(back.data(), back.size(), 0);
    CHECK(back[12345] == 0xab);
    CHECK_THROWS_AS(r.pread_exact(back.data(), 10, (1 << 20) - 5), Error);
  }
}

TEST_CASE("write_file_atomic replaces a file and leaves no temp") {
  test::TempDir d;
  std::string p = d / "f";
  write_file_atomic(p, "one", 3);
  write_file_atomic(p, "second", 6);
  CHECK(test::file_size(p) == 6);
  CHECK_FALSE(test::exists(p + ".tmp"));
}

TEST_CASE("O_DIRECT falls back to buffered I/O when a request is refused") {
  // Whether open(O_DIRECT) succeeds depends on the filesystem (tmpfs accepts
  // it on recent kernels); an unaligned write is refused with EINVAL by every
  // O_DIRECT implementation, which exercises the fallback.
  test::TempDir d;
  for (const std::string& dir : {d.path, std::string("/dev/shm")}) {
    struct stat st{};
    if (stat(dir.c_str(), &st) != 0) continue;
    std::string p = dir + "/ckpt-odirect-test-" + std::to_string(getpid());
    {
      File f = File::create(p, 0600, true);
      AlignedBuffer b(8192);
      std::memset(b.data(), 7, 8192);
      f.pwrite_all(b.data(), 8192, 0);          // aligned: fine either way
      bool was_direct = f.direct();
      f.pwrite_all(b.data() + 1, 100, 8192);    // unaligned: EINVAL under O_DIRECT -> buffered
      // ext4/xfs refuse the unaligned request, so the file must have switched
      // to buffered I/O; tmpfs may accept it and stay "direct".
      if (was_direct && dir == d.path) CHECK_FALSE(f.direct());
      f.sync();
    }
    CHECK(test::file_size(p) == 8292);
    unlink(p.c_str());
  }
}
