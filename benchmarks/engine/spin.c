// CPU-bound loop for the runtime-overhead measurement: STEPS rounds of
// integer hashing, no system calls; prints the result so the work is kept.
//   spin STEPS
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  long steps = argc > 1 ? atol(argv[1]) : 1000;
  uint64_t s = 1469598103934665603ull;
  for (long i = 0; i < steps; i++)
    for (int k = 0; k < 100000; k++) s = (s ^ (uint64_t)(i * 100000 + k)) * 1099511628211ull;
  printf("%016llx\n", (unsigned long long)s);
  return 0;
}
