#include "bench/storage.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "common/errors.h"

namespace ckpt::bench {
namespace {

double now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuf = std::unique_ptr<unsigned char, FreeDeleter>;

AlignedBuf aligned_alloc_buf(size_t size) {
  void* p = nullptr;
  // Page alignment satisfies O_DIRECT on every common device (logical block
  // sizes are 512 or 4096) and costs nothing for buffered I/O.
  if (int err = posix_memalign(&p, kDirectAlign, size); err != 0) throw_errno("allocating I/O buffer", err);
  return AlignedBuf(static_cast<unsigned char*>(p));
}

// Pseudo-random (incompressible) contents; xorshift64* is fast enough that
// filling the buffer once is negligible next to the I/O.
void fill_random(unsigned char* buf, size_t size, uint64_t seed) {
  uint64_t x = seed | 1;
  for (size_t i = 0; i + 8 <= size; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t v = x * 0x2545F4914F6CDD1DULL;
    std::memcpy(buf + i, &v, 8);
  }
}

// Makes every 4 KiB page of block `index` unique, so deduplicating storage
// cannot collapse the repeated buffer. A handful of stores per page.
void stamp_block(unsigned char* buf, size_t size, uint64_t index) {
  for (size_t off = 0; off + 16 <= size; off += 4096) {
    uint64_t page = off / 4096;
    std::memcpy(buf + off, &index, 8);
    std::memcpy(buf + off + 8, &page, 8);
  }
}

void validate(const SeqOptions& opt) {
  if (opt.path.empty()) throw Error(Errc::InvalidArgument, "path must not be empty");
  if (opt.block_size == 0 || opt.block_size % kDirectAlign != 0)
    throw Error(Errc::InvalidArgument, "block size must be a positive multiple of 4096");
  if (opt.queue_depth == 0 || opt.queue_depth > 64) throw Error(Errc::InvalidArgument, "queue depth must be 1..64");
}

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err, bool direct) {
  // EINVAL on an O_DIRECT open or transfer means the filesystem does not
  // support it (tmpfs, some FUSE and network filesystems).
  if (direct && err == EINVAL) throw Error(Errc::Unsupported, "O_DIRECT unsupported on " + path);
  throw_errno(what + " " + path, err);
}

double resident_fraction_of(int fd, uint64_t size) {
  if (size == 0) return 0;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return -1;
  const long page = ::sysconf(_SC_PAGESIZE);
  const size_t pages = (size + static_cast<uint64_t>(page) - 1) / static_cast<uint64_t>(page);
  std::vector<unsigned char> vec(pages);
  double out = -1;
  if (::mincore(map, size, vec.data()) == 0) {
    size_t resident = 0;
    for (unsigned char v : vec) resident += v & 1;
    out = static_cast<double>(resident) / static_cast<double>(pages);
  }
  ::munmap(map, size);
  return out;
}

// Runs `depth` threads; thread t transfers blocks t, t+depth, ... Each block is
// a positional transfer, so the device sees a nearly sequential stream with up
// to `depth` requests in flight. The first error wins.
template <typename Fn>
void run_blocks(uint64_t nblocks, unsigned depth, Fn&& per_block) {
  if (depth == 1) {
    for (uint64_t i = 0; i < nblocks; ++i)
      if (!per_block(0u, i)) return;
    return;
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  threads.reserve(depth);
  for (unsigned t = 0; t < depth; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = t; i < nblocks && !stop.load(std::memory_order_relaxed); i += depth)
        if (!per_block(t, i)) {
          stop = true;
          return;
        }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace

SeqResult write_sequential(const SeqOptions& opt) {
  validate(opt);
  const uint64_t nblocks = (opt.bytes + opt.block_size - 1) / opt.block_size;
  if (nblocks == 0) throw Error(Errc::InvalidArgument, "size must be positive");
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (opt.direct) flags |= O_DIRECT;
  Fd fd(::open(opt.path.c_str(), flags, 0600));
  if (fd.get() < 0) throw_io("creating", opt.path, errno, opt.direct);

  std::vector<AlignedBuf> bufs;
  for (unsigned t = 0; t < opt.queue_depth; ++t) {
    bufs.push_back(aligned_alloc_buf(opt.block_size));
    fill_random(bufs.back().get(), opt.block_size, 0x9E3779B97F4A7C15ULL * (t + 1));
  }
  std::atomic<int> first_err{0};
  const double t0 = now();
  run_blocks(nblocks, opt.queue_depth, [&](unsigned t, uint64_t i) {
    unsigned char* buf = bufs[t].get();
    stamp_block(buf, opt.block_size, i);
    size_t done = 0;
    const off_t base = static_cast<off_t>(i * opt.block_size);
    while (done < opt.block_size) {
      ssize_t n = ::pwrite(fd.get(), buf + done, opt.block_size - done, base + static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        int expected = 0;
        first_err.compare_exchange_strong(expected, errno);
        return false;
      }
      if (n == 0) {
        int expected = 0;
        first_err.compare_exchange_strong(expected, EIO);
        return false;
      }
      done += static_cast<size_t>(n);
    }
    return true;
  });
  if (int err = first_err.load(); err != 0) throw_io("writing", opt.path, err, opt.direct);
  const double t1 = now();
  if (opt.fsync && ::fsync(fd.get()) != 0) throw_errno("fsync " + opt.path, errno);
  const double t2 = now();

  SeqResult r;
  r.bytes = nblocks * opt.block_size;
  r.seconds = t2 - t0;
  r.fsync_seconds = t2 - t1;
  if (opt.evict) {
    // Outside the clock: leave the file cold for the read that follows.
    if (!opt.fsync) ::fdatasync(fd.get());
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
    Fd rfd(::open(opt.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (rfd.get() >= 0) r.resident_fraction = resident_fraction_of(rfd.get(), r.bytes);
  }
  return r;
}

SeqResult read_sequential(const SeqOptions& opt) {
  validate(opt);
  int flags = O_RDONLY | O_CLOEXEC;
  if (opt.direct) flags |= O_DIRECT;
  Fd fd(::open(opt.path.c_str(), flags));
  if (fd.get() < 0) throw_io("opening", opt.path, errno, opt.direct);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat " + opt.path, errno);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) throw Error(Errc::InvalidArgument, opt.path + " is empty");
  if (opt.direct && size % kDirectAlign != 0)
    throw Error(Errc::InvalidArgument, opt.path + ": size is not a multiple of 4096, cannot read with O_DIRECT");

  if (!opt.direct) {
    // Buffered reads must come from the device, not from the cache left by
    // the write; say how well the eviction worked.
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  SeqResult r;
  r.resident_fraction = resident_fraction_of(fd.get(), size);

  std::vector<AlignedBuf> bufs;
  for (unsigned t = 0; t < opt.queue_depth; ++t) bufs.push_back(aligned_alloc_buf(opt.block_size));
  const uint64_t nblocks = (size + opt.block_size - 1) / opt.block_size;
  std::atomic<int> first_err{0};
  std::atomic<uint64_t> total{0};
  // Touch one byte per page so the reads cannot be optimised into nothing
  // and the data is really delivered to memory, as a restart needs it.
  std::atomic<uint64_t> sink{0};
  const double t0 = now();
  run_blocks(nblocks, opt.queue_depth, [&](unsigned t, uint64_t i) {
    unsigned char* buf = bufs[t].get();
    const off_t base = static_cast<off_t>(i * opt.block_size);
    const size_t want = static_cast<size_t>(std::min<uint64_t>(opt.block_size, size - i * opt.block_size));
    size_t done = 0;
    while (done < want) {
      ssize_t n = ::pread(fd.get(), buf + done, want - done, base + static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        int expected = 0;
        first_err.compare_exchange_strong(expected, errno);
        return false;
      }
      if (n == 0) break;  // file shrank under us; count what we got
      done += static_cast<size_t>(n);
    }
    uint64_t acc = 0;
    for (size_t off = 0; off < done; off += 4096) acc += buf[off];
    sink.fetch_add(acc, std::memory_order_relaxed);
    total.fetch_add(done, std::memory_order_relaxed);
    return true;
  });
  if (int err = first_err.load(); err != 0) throw_io("reading", opt.path, err, opt.direct);
  r.seconds = now() - t0;
  r.bytes = total.load();
  (void)sink.load();
  return r;
}

std::vector<double> fsync_latencies(const std::string& path, unsigned count, size_t block_size) {
  if (path.empty()) throw Error(Errc::InvalidArgument, "path must not be empty");
  if (count == 0 || count > 100000) throw Error(Errc::InvalidArgument, "count must be 1..100000");
  if (block_size == 0 || block_size > (64u << 20)) throw Error(Errc::InvalidArgument, "block size must be 1 B..64 MiB");
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) throw_errno("creating " + path, errno);
  std::vector<unsigned char> buf(block_size);
  fill_random(buf.data(), buf.size(), 42);
  std::vector<double> out;
  out.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    std::memcpy(buf.data(), &i, sizeof i);
    const double t0 = now();
    size_t done = 0;
    while (done < buf.size()) {
      ssize_t n = ::write(fd.get(), buf.data() + done, buf.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("writing " + path, errno);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) throw_errno("fsync " + path, errno);
    out.push_back(now() - t0);
  }
  return out;
}

bool probe_direct(const std::string& dir, std::string* why) {
  std::string tmpl = dir + "/.ckpt-bench-probe-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) throw_errno("creating a file in " + dir, errno);
  ::close(fd);
  bool ok = true;
  int dfd = ::open(name.data(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (dfd < 0) {
    ok = false;
    if (why) *why = std::string("O_DIRECT unsupported: ") + std::strerror(errno);
  } else {
    // Some filesystems accept the flag at open and refuse the transfer.
    AlignedBuf buf = aligned_alloc_buf(kDirectAlign);
    std::memset(buf.get(), 0, kDirectAlign);
    if (::pwrite(dfd, buf.get(), kDirectAlign, 0) != static_cast<ssize_t>(kDirectAlign)) {
      ok = false;
      if (why) *why = std::string("O_DIRECT unsupported: ") + std::strerror(errno);
    }
    ::close(dfd);
  }
  ::unlink(name.data());
  return ok;
}

}  // namespace ckpt::bench
