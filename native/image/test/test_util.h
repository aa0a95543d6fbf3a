// Helpers shared by the image tests.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace ckpt::test {

// A fresh temporary directory, removed (recursively) at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ckpt-image-test-XXXXXX";
    char* p = mkdtemp(tmpl);
    if (!p) std::abort();
    path = p;
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }
  std::string operator/(const std::string& n) const { return path + "/" + n; }
};

inline std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x = rng();
    for (int k = 0; k < 8; k++) v[i + k] = uint8_t(x >> (8 * k));
  }
  for (; i < n; i++) v[i] = uint8_t(rng());
  return v;
}

// Compressible, partly zero, partly random data resembling process memory.
inline std::vector<uint8_t> mixed_bytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n, 0);
  std::mt19937_64 rng(seed);
  for (size_t page = 0; page * 4096 < n; page++) {
    size_t off = page * 4096, len = std::min<size_t>(4096, n - off);
    switch (rng() % 4) {
      case 0: break;  // zero page
      case 1:
        for (size_t i = 0; i < len; i++) v[off + i] = uint8_t(rng());
        break;
      case 2:
        for (size_t i = 0; i < len; i++) v[off + i] = uint8_t("the quick brown fox "[i % 20]);
        break;
      default:
        for (size_t i = 0; i < len; i += 8) v[off + i] = uint8_t(i / 8);
    }
  }
  return v;
}

inline uint64_t file_size(const std::string& p) {
  struct stat st{};
  if (stat(p.c_str(), &st) != 0) return 0;
  return uint64_t(st.st_size);
}

inline bool exists(const std::string& p) {
  struct stat st{};
  return lstat(p.c_str(), &st) == 0;
}

inline void flip_byte(const std::string& p, uint64_t off) {
  FILE* f = fopen(p.c_str(), "r+b");
  if (!f) std::abort();
  fseeko(f, off_t(off), SEEK_SET);
  int c = fgetc(f);
  fseeko(f, off_t(off), SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

inline void truncate_to(const std::string& p, uint64_t size) {
  if (truncate(p.c_str(), off_t(size)) != 0) std::abort();
}

}  // namespace ckpt::test
