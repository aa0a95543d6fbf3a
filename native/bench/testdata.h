// Test data that looks like process memory, shared by the stream benchmark
// and the checkpoint workload so both measure the same kind of bytes.
// Pages come in runs of 16 of one kind, in a fixed pseudo-random order:
// 1/4 zero pages, 1/4 incompressible (random) pages, 1/2 low-entropy pages of
// words and pointer-like values (as in heaps and stacks; zstd -1 compresses
// them ~3-5x). Deterministic: the same size always gives the same bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace ckpt::bench::testdata {

inline constexpr size_t kPage = 4096;

inline uint64_t xorshift(uint64_t& x) {
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return x * 0x2545F4914F6CDD1DULL;
}

inline void fill_random_page(unsigned char* p, uint64_t seed) {
  uint64_t x = seed * 0xD1B54A32D192ED03ULL + 7;
  for (size_t i = 0; i < kPage; i += 8) {
    const uint64_t v = xorshift(x);
    std::memcpy(p + i, &v, 8);
  }
}

inline void fill_text_page(unsigned char* p, uint64_t seed) {
  static const char* const words[] = {"the ", "checkpoint ", "process ", "memory ", "region ", "value ", "= ",
                                      "0x7f", "; ", "\n", "int ", "return ", "NULL", "buffer ", "size ", "(i) "};
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  size_t off = 0;
  while (off < kPage) {
    const uint64_t r = xorshift(x);
    if ((r & 7) == 0 && off + 8 <= kPage) {
      // A pointer into a 1 MiB heap window, 16-byte aligned.
      const uint64_t ptr = 0x00007f3a12000000ULL + ((r >> 8) & 0xFFFF0);
      std::memcpy(p + off, &ptr, 8);
      off += 8;
    } else {
      const char* w = words[(r >> 4) & 15];
      const size_t n = std::min(std::strlen(w), kPage - off);
      std::memcpy(p + off, w, n);
      off += n;
    }
  }
}

// Kind of page `pg`: 0 zero, 1 random, 2-3 text-like.
inline unsigned page_kind(uint64_t pg) { return static_cast<unsigned>(((pg / 16) * 0x9E3779B97F4A7C15ULL >> 61) & 3); }

inline void fill_page(unsigned char* p, uint64_t pg) {
  switch (page_kind(pg)) {
    case 0:
      std::memset(p, 0, kPage);
      break;
    case 1:
      fill_random_page(p, pg);
      break;
    default:
      fill_text_page(p, pg);
  }
}

// Fills [buf, buf + bytes) (bytes a multiple of kPage) on `threads` threads
// (0 = all hardware threads).
inline void generate(unsigned char* buf, uint64_t bytes, unsigned threads = 0) {
  const uint64_t pages = bytes / kPage;
  const unsigned n = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
  if (n == 1) {
    for (uint64_t pg = 0; pg < pages; ++pg) fill_page(buf + pg * kPage, pg);
    return;
  }
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < n; ++t)
    ts.emplace_back([=] {
      for (uint64_t pg = pages * t / n; pg < pages * (t + 1) / n; ++pg) fill_page(buf + pg * kPage, pg);
    });
  for (auto& t : ts) t.join();
}

}  // namespace ckpt::bench::testdata
