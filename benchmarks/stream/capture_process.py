"""Builds a realistic process image for benchmarks/stream.

A Python 3 process allocates a few hundred MiB of the kinds of data long
jobs hold (numbers in lists and arrays, strings, dicts, random bytes, zeroed
buffers), then copies every readable region of its own address space from
/proc/self/mem into OUT, page by page, like a checkpoint would. Usage:

    python3 capture_process.py OUT [SCALE]

SCALE (default 1.0) multiplies the amount of data (~400 MiB at 1.0).
"""
import array
import os
import random
import sys

out = sys.argv[1]
scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
rng = random.Random(42)
n = int(2_000_000 * scale)

floats = array.array("d", (rng.random() * 1000 for _ in range(n)))           # simulation state
ints = [i * 7 for i in range(n)]                                              # boxed ints in a list
names = {f"key-{i}": f"value {i} {rng.random():.6f}" for i in range(n // 4)}  # text in dicts
noise = os.urandom(int(48 * 1024 * 1024 * scale))                             # incompressible data
zeros = bytearray(int(64 * 1024 * 1024 * scale))                              # allocated, never written
counts = array.array("q", [0]) * int(4_000_000 * scale)                        # sparse counters
for i in range(0, len(counts), 1000):
    counts[i] = i

written = 0
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem, open(out, "wb") as dst:
    for line in maps:
        parts = line.split()
        start, end = (int(x, 16) for x in parts[0].split("-"))
        perms = parts[1]
        name = parts[5] if len(parts) > 5 else ""
        if "r" not in perms or name in ("[vvar]", "[vvar_vclock]", "[vsyscall]", "[vdso]"):
            continue
        addr = start
        while addr < end:
            size = min(end - addr, 1 << 24)
            try:
                mem.seek(addr)
                chunk = mem.read(size)
            except OSError:
                chunk = bytes(size)
            dst.write(chunk)
            written += len(chunk)
            addr += size
print(written)
