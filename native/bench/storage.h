// Raw storage measurement for `ckpt bench storage`: sequential write and read
// bandwidth through O_DIRECT and through the page cache, and the cost of one
// small write + fsync. These are the reference figures every other benchmark
// is divided by ("checkpoint wrote at 91% of storage write bandwidth"), so
// they measure the storage as directly as user space can:
//   - O_DIRECT with aligned buffers bypasses the page cache;
//   - buffered writes include the final fsync (data is on the device when the
//     clock stops), buffered reads start with the file evicted from the cache
//     (posix_fadvise DONTNEED after fsync) and report how much stayed resident;
//   - the data is pseudo-random and differs per block, so compressing or
//     deduplicating storage does not flatter the figures.
// All functions block; the addon runs them on a worker thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ckpt::bench {

struct SeqOptions {
  std::string path;          // file to create (write) or read
  uint64_t bytes = 0;        // total bytes (write); rounded up to block_size
  size_t block_size = 1 << 20;
  bool direct = false;       // O_DIRECT
  unsigned queue_depth = 1;  // writers/readers in flight (threads on disjoint blocks)
  bool fsync = true;         // write: fsync before the clock stops
  bool evict = true;         // write: drop the file from the page cache afterwards
};

struct SeqResult {
  uint64_t bytes = 0;
  double seconds = 0;        // whole operation, including fsync for writes
  double fsync_seconds = 0;  // the final fsync alone (writes)
  // Fraction of the file's pages in the page cache just before a read started
  // (0 = fully cold), or after the eviction of a write; -1 if unknown.
  double resident_fraction = -1;
};

// Creates/truncates `path` and writes it sequentially. Throws ckpt::Error with
// Errc::Unsupported when the filesystem refuses O_DIRECT (tmpfs, some FUSE).
SeqResult write_sequential(const SeqOptions& opt);

// Reads `path` sequentially to its end (O_DIRECT reads need a size that is a
// multiple of the alignment; files written by write_sequential are).
SeqResult read_sequential(const SeqOptions& opt);

// Latency of `count` rounds of "write `block_size` bytes at the end of `path`
// and fsync", in seconds each. Models the commit record (manifest) write.
std::vector<double> fsync_latencies(const std::string& path, unsigned count, size_t block_size);

// Whether `dir` accepts O_DIRECT opens; when it does not, `why` says why.
bool probe_direct(const std::string& dir, std::string* why);

// Alignment used for O_DIRECT buffers, offsets and sizes.
inline constexpr size_t kDirectAlign = 4096;

}  // namespace ckpt::bench
