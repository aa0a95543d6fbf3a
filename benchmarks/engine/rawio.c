// Raw device baselines for the engine benchmark, next to the buffered ones
// run.mjs measures itself:
//   rawio write FILE BYTES   O_DIRECT writes of 8 MiB from one aligned buffer, then fsync
//   rawio read FILE          O_DIRECT reads of 8 MiB into one reused buffer
//   rawio fresh FILE         O_DIRECT reads into newly mapped memory (advised
//                            MADV_HUGEPAGE), as a restart must: every page is new
// Prints the seconds taken. Falls back to buffered I/O where O_DIRECT is refused.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int open_direct(const char* p, int flags) {
  int fd = open(p, flags | O_DIRECT, 0600);
  if (fd < 0) fd = open(p, flags, 0600);
  if (fd < 0) {
    perror(p);
    exit(1);
  }
  return fd;
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const size_t kBuf = 8u << 20;
  uint8_t* buf = mmap(NULL, kBuf, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return 1;
  if (strcmp(argv[1], "write") == 0) {
    size_t bytes = strtoull(argv[3], NULL, 10) & ~(size_t)4095;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < kBuf; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      memcpy(buf + i, &x, 8);
    }
    double t = now();
    int fd = open_direct(argv[2], O_WRONLY | O_CREAT | O_TRUNC);
    for (size_t done = 0; done < bytes;) {
      size_t n = bytes - done < kBuf ? bytes - done : kBuf;
      ssize_t w = pwrite(fd, buf, n, (off_t)done);
      if (w <= 0) {
        perror("write");
        return 1;
      }
      done += (size_t)w;
    }
    if (fsync(fd) != 0) return 1;
    close(fd);
    printf("%.6f\n", now() - t);
    return 0;
  }
  int fresh = strcmp(argv[1], "fresh") == 0;
  double t = now();
  int fd = open_direct(argv[2], O_RDONLY);
  struct stat st;
  fstat(fd, &st);
  size_t bytes = (size_t)st.st_size & ~(size_t)4095;
  uint8_t* dst = buf;
  if (fresh) {
    dst = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (dst == MAP_FAILED) return 1;
    madvise(dst, bytes, MADV_HUGEPAGE);
  }
  for (size_t done = 0; done < bytes;) {
    size_t n = bytes - done < kBuf ? bytes - done : kBuf;
    ssize_t r = pread(fd, fresh ? dst + done : dst, n, (off_t)done);
    if (r <= 0) {
      perror("read");
      return 1;
    }
    done += (size_t)r;
  }
  close(fd);
  printf("%.6f\n", now() - t);
  return 0;
}
