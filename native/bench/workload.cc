// ckpt-bench-workload: the synthetic program `ckpt bench checkpoint` checkpoints.
//
//   ckpt-bench-workload hold RSS_BYTES LOGFILE
//       Allocates RSS_BYTES of process-like memory (bench/testdata.h: zero,
//       random and text-like pages), appends "ready <bytes> <monotonic ns>" to
//       LOGFILE, then ticks every millisecond, dirtying one page per tick.
//       Whenever two ticks are more than 2 ms apart (the process was stopped:
//       a checkpoint, or the time between a kill and a restart) it appends
//       "gap <ns> <monotonic ns at resume>". The harness reads the downtime of
//       a checkpoint and the moment a restart resumed from these lines;
//       CLOCK_MONOTONIC is shared with the harness (same boot, no time
//       namespace), so the timestamps compare directly.
//   ckpt-bench-workload spin ITERATIONS
//       A CPU-bound loop; prints "spin <wall s> <cpu s> <bit>" (runtime overhead).
//   ckpt-bench-workload data BYTES FILE
//       Writes BYTES of the same process-like test data to FILE (fsync'd): the
//       input image of `ckpt bench stream`, so both benchmarks measure the
//       same kind of bytes.
//
// LOGFILE is opened for each line (O_APPEND) and closed again, so no
// descriptor is open across a checkpoint except stdio.
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/testdata.h"

namespace {

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void log_line(const char* path, const char* line) {
  int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const size_t n = std::strlen(line);
  ssize_t w = ::write(fd, line, n);
  (void)w;
  ::close(fd);
}

int usage() {
  std::fputs("usage: ckpt-bench-workload hold RSS_BYTES LOGFILE | spin ITERATIONS | data BYTES FILE\n", stderr);
  return 2;
}

// A stop shorter than this is not reported (ticks are 1 ms apart, and a
// loaded 2-CPU machine delays a tick by a fraction of that); the harness
// then reports this as an upper bound of the downtime.
constexpr int64_t kGapNs = 2000000;

int hold(uint64_t bytes, const char* log) {
  bytes = (bytes + 4095) / 4096 * 4096;
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  auto* buf = static_cast<unsigned char*>(mem);
  ckpt::bench::testdata::generate(buf, bytes);
  // Zero pages were written too (memset), so every page is resident.
  char line[128];
  std::snprintf(line, sizeof line, "ready %" PRIu64 " %" PRId64 "\n", bytes, mono_ns());
  log_line(log, line);
  const uint64_t pages = bytes / 4096;
  int64_t last = mono_ns();
  for (uint64_t tick = 0;; ++tick) {
    timespec d{0, 1000000};
    nanosleep(&d, nullptr);
    const int64_t now = mono_ns();
    if (now - last > kGapNs) {
      std::snprintf(line, sizeof line, "gap %" PRId64 " %" PRId64 "\n", now - last, now);
      log_line(log, line);
    }
    last = now;
    // Dirty one byte of a non-zero page per tick, like a running program.
    const uint64_t pg = (tick * 2654435761u) % pages;
    if (ckpt::bench::testdata::page_kind(pg) != 0) buf[pg * 4096 + 64] ^= 1;
  }
}

int data(uint64_t bytes, const char* path) {
  bytes = (bytes + 4095) / 4096 * 4096;
  int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(path);
    return 1;
  }
  // In 64 MiB pieces so memory stays small for large files; page numbers
  // continue across pieces, so the file equals one generate() of BYTES.
  const uint64_t piece = 64u << 20;
  auto* buf = static_cast<unsigned char*>(std::malloc(piece));
  if (!buf) return 1;
  for (uint64_t off = 0; off < bytes; off += piece) {
    const uint64_t n = bytes - off < piece ? bytes - off : piece;
    for (uint64_t pg = 0; pg < n / 4096; ++pg) ckpt::bench::testdata::fill_page(buf + pg * 4096, off / 4096 + pg);
    for (uint64_t done = 0; done < n;) {
      const ssize_t w = ::write(fd, buf + done, n - done);
      if (w < 0) {
        std::perror(path);
        return 1;
      }
      done += static_cast<uint64_t>(w);
    }
  }
  std::free(buf);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    std::perror(path);
    return 1;
  }
  return 0;
}

int64_t cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// Prints "spin <wall seconds> <cpu seconds> <checksum bit>". CPU time of the
// whole process (all its threads, so an engine's helper threads count too)
// is what the overhead figure uses: on a shared machine wall time mostly
// measures the other load.
int spin(uint64_t iterations) {
  const int64_t t0 = mono_ns();
  const int64_t c0 = cpu_ns();
  uint64_t x = 88172645463325252ULL;
  for (uint64_t i = 0; i < iterations; ++i) x ^= ckpt::bench::testdata::xorshift(x) >> 7;
  const int64_t c1 = cpu_ns();
  const int64_t t1 = mono_ns();
  std::printf("spin %.6f %.6f %" PRIu64 "\n", static_cast<double>(t1 - t0) / 1e9, static_cast<double>(c1 - c0) / 1e9, x & 1);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "hold") == 0) {
    char* end = nullptr;
    const unsigned long long bytes = std::strtoull(argv[2], &end, 10);
    if (!end || *end || bytes < 4096) return usage();
    return hold(bytes, argv[3]);
  }
  if (argc == 4 && std::strcmp(argv[1], "data") == 0) {
    char* end = nullptr;
    const unsigned long long bytes = std::strtoull(argv[2], &end, 10);
    if (!end || *end || bytes == 0) return usage();
    return data(bytes, argv[3]);
  }
  if (argc == 3 && std::strcmp(argv[1], "spin") == 0) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(argv[2], &end, 10);
    if (!end || *end || n == 0) return usage();
    return spin(n);
  }
  return usage();
}
