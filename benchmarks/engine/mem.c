// Benchmark subject: holds MIB mebibytes of resident, incompressible memory
// and runs a tight loop that records the longest gap between two
// iterations (the application's downtime). On SIGUSR1 it prints
// "gap_us=<max gap since the previous report>" and resets the maximum.
//   mem MIB [write|read]
// write (default): the loop adds to one word every iteration, striding over
// the whole buffer, so during a forked checkpoint every page it reaches is
// copied on write. read: the loop only reads the buffer (a CPU-bound phase
// that leaves memory unchanged).
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t report = 0;
static void on_usr1(int s) { (void)s; report = 1; }

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
  size_t n = mib << 17;  // 8-byte words
  int writer = !(argc > 2 && strcmp(argv[2], "read") == 0);
  uint64_t* mem = malloc(n * sizeof *mem);
  if (!mem) return 1;
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < n; i++) {  // xorshift: incompressible
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    mem[i] = x;
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  printf("ready %zu\n", mib);
  fflush(stdout);
  uint64_t last = now_us(), maxgap = 0, iter = 0;
  volatile uint64_t sink = 0;
  for (;;) {
    if (writer)
      mem[(iter * 4099) % n] += iter;  // keep touching memory
    else
      sink += mem[(iter * 4099) % n];
    iter++;
    uint64_t t = now_us();
    if (t - last > maxgap) maxgap = t - last;
    last = t;
    if (report) {
      report = 0;
      printf("gap_us=%llu\n", (unsigned long long)maxgap);
      fflush(stdout);
      maxgap = 0;
      last = now_us();
    }
  }
}
