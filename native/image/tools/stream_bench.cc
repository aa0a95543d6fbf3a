// ckpt_stream_bench: the native half of benchmarks/stream. Each subcommand
// does one timed operation and prints one JSON object, so the runner
// (benchmarks/stream/run.mjs) can put ImageWriter/ImageReader side by side
// with the device's raw bandwidth and with gzip, zstd and cp in one run.
//
//   devwrite PATH BYTES [--direct] [--block N] [--plain] [--spread]
//                                                 sequential write + fdatasync; buffered, each block's
//                                                 writeback starts at once unless --plain (dd-like)
//   devread  PATH [--direct] [--block N] [--spread]
//                                                 dd-like sequential read (cache evicted first); --spread reads
//                                                 each block into its own place of a file-sized buffer
//   write    INPUT OUT [--codec raw|zstd] [--level L] [--threads T] [--direct] [--chunk N]
//   read     IMAGE [--threads T] [--direct] [--per-region]
//                                                 read + verify every region into memory (cache evicted first)
//   evict    PATH...                              drop the files from the page cache
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/errors.h"
#include "image/image_reader.h"
#include "image/image_writer.h"
#include "stream/stream.h"

using namespace ckpt;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::vector<std::string> pos;
  bool direct = false;
  bool plain = false;  // devwrite: no early writeback (dd conv=fdatasync)
  bool per_region = false;  // read: one read_region() call per region instead of read_regions()
  bool spread = false;      // devread/devwrite: each block at its own place of a file-sized buffer, not one reused block
  size_t block = 8u << 20;
  std::string codec = "raw";
  int level = 1;
  unsigned threads = 0;
  size_t chunk = 1u << 20;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 2; i < argc; i++) {
    std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(Errc::InvalidArgument, s + " needs a value");
      return argv[++i];
    };
    if (s == "--direct") a.direct = true;
    else if (s == "--per-region") a.per_region = true;
    else if (s == "--plain") a.plain = true;
    else if (s == "--spread") a.spread = true;
    else if (s == "--block") a.block = std::stoull(next());
    else if (s == "--codec") a.codec = next();
    else if (s == "--level") a.level = std::stoi(next());
    else if (s == "--threads") a.threads = static_cast<unsigned>(std::stoul(next()));
    else if (s == "--chunk") a.chunk = std::stoull(next());
    else a.pos.push_back(s);
  }
  return a;
}

void evict(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw_errno("open " + path, errno);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

// Both the device baseline and the image writer write a new file, as a
// checkpoint does (each generation has its own files). Replacing the
// previous run's file instead would put the freeing of its blocks (40-60 ms
// for 250 MiB on ext4, in open(O_TRUNC) or in rename()) inside the timing.
//
// On a filesystem mounted with online discard (this VM's ext4 is), the
// freed blocks are discarded after the journal commit, by a kernel worker,
// and those discards landed inside the next trial's timing: 4 discard
// requests after the device baseline's file, 30 after an image file (it is
// freed in more pieces), each slowing the writes around it. So the device
// is also left to finish its discards (and every other request) before the
// clock starts.
void settle_device(const std::string& path) {
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  struct stat st{};
  if (::stat(dir.empty() ? "." : dir.c_str(), &st) != 0) return;
  char sys[96];
  std::snprintf(sys, sizeof sys, "/sys/dev/block/%u:%u/stat", major(st.st_dev), minor(st.st_dev));
  // Fields of the block stat file: [8] requests in flight, [11] discards completed.
  auto sample = [&](uint64_t& inflight, uint64_t& discards) {
    FILE* f = std::fopen(sys, "r");
    if (!f) return false;
    unsigned long long v[15] = {};
    int n = std::fscanf(f, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                        &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13], &v[14]);
    std::fclose(f);
    if (n < 9) return false;
    inflight = v[8];
    discards = n >= 12 ? v[11] : 0;
    return true;
  };
  uint64_t inflight = 0, discards = 0, last = UINT64_MAX;
  int quiet = 0;
  // Quiet = nothing in flight and no new discard for 30 ms; at most 3 s.
  for (int i = 0; i < 300 && quiet < 3; i++) {
    if (!sample(inflight, discards)) return;  // not a block device (tmpfs, overlay): nothing to wait for
    quiet = inflight == 0 && discards == last ? quiet + 1 : 0;
    last = discards;
    ::usleep(10000);
  }
}

void remove_old(const std::string& path) {
  ::unlink(path.c_str());
  ::unlink((path + ".tmp").c_str());
  stream::sync_parent_dir(path);
  settle_device(path);
}

void fill_random(uint8_t* p, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t x = rng();
    std::memcpy(p + i, &x, 8);
  }
}

int devwrite(const Args& a) {
  const std::string& path = a.pos.at(0);
  uint64_t bytes = std::stoull(a.pos.at(1));
  // --spread: every block comes from its own place of a buffer as large as
  // the file (filled before the clock), as a checkpoint writes memory;
  // otherwise one block-sized buffer is written again and again.
  stream::AlignedBuffer buf(a.spread ? stream::align_up(bytes) + a.block : a.block);
  fill_random(buf.data(), buf.capacity(), 1);
  remove_old(path);
  auto t0 = Clock::now();
  stream::File f = stream::File::create(path, 0600, a.direct);
  for (uint64_t off = 0; off < bytes; off += a.block) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(a.block, bytes - off));
    f.pwrite_all(buf.data() + (a.spread ? off : 0), n, off);
    // Buffered: start writeback of each block at once, as the image writer
    // does, so the baseline does not wait for the whole file in its final
    // fdatasync (plain dd-style writes measured 10-25% slower here).
    if (!f.direct() && !a.plain) (void)::sync_file_range(f.fd(), static_cast<off_t>(off), static_cast<off_t>(n), SYNC_FILE_RANGE_WRITE);
  }
  f.sync();
  bool direct = f.direct();
  f.close();
  double s = secs(t0);
  std::printf("{\"op\":\"devwrite\",\"bytes\":%llu,\"seconds\":%.6f,\"direct\":%s}\n", (unsigned long long)bytes, s, direct ? "true" : "false");
  return 0;
}

int devread(const Args& a) {
  const std::string& path = a.pos.at(0);
  evict(path);
  // --spread: every block goes to its own place in one buffer as large as
  // the file (faulted in before the clock), as a restore fills memory;
  // otherwise one block-sized buffer is reused (dd).
  uint64_t fsize = 0;
  {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) throw_errno("stat " + path, errno);
    fsize = static_cast<uint64_t>(st.st_size);
  }
  stream::AlignedBuffer buf(a.spread ? stream::align_up(fsize) + a.block : a.block);
  if (a.spread) std::memset(buf.data(), 1, buf.capacity());
  auto t0 = Clock::now();
  stream::File f = stream::File::open_read(path, a.direct);
  uint64_t off = 0;
  for (;;) {
    size_t n = f.pread_some(buf.data() + (a.spread ? off : 0), a.block, off);
    off += n;
    if (n < a.block) break;
  }
  double s = secs(t0);
  std::printf("{\"op\":\"devread\",\"bytes\":%llu,\"seconds\":%.6f,\"direct\":%s}\n", (unsigned long long)off, s, f.direct() ? "true" : "false");
  return 0;
}

int write_image(const Args& a) {
  const std::string& in = a.pos.at(0);
  const std::string& out = a.pos.at(1);
  stream::File src = stream::File::open_read(in);
  uint64_t size = src.size() / 4096 * 4096;
  stream::AlignedBuffer data(size);
  src.pread_exact(data.data(), size, 0);  // not timed: the "process memory"
  // Drop the input from the page cache so it does not compete with the
  // image's dirty pages (the device baseline has no input file either).
  evict(in);
  image::WriterOptions o;
  o.threads = a.threads ? a.threads : stream::recommended_threads();
  o.codec = a.codec == "zstd" ? image::Codec::Zstd : image::Codec::Raw;
  o.zstd_level = a.level;
  o.o_direct = a.direct;
  o.chunk_size = a.chunk;
  image::ImageMeta m;
  m.computation = "bench";
  m.process_id = "p0";
  m.generation = 1;
  remove_old(out);
  auto t0 = Clock::now();
  image::ImageWriter w(out, o);
  w.set_header(m);
  // Memory-like regions of 64 MiB.
  const uint64_t region = 64u << 20;
  for (uint64_t off = 0; off < size; off += region) {
    uint64_t len = std::min(region, size - off);
    w.add_region(image::RegionDesc{.start = 0x7f0000000000 + off, .end = 0x7f0000000000 + off + len}, data.data() + off, len);
  }
  double fed = secs(t0);
  image::WriteSummary s = w.finish();
  double t = secs(t0);
  // feedSeconds: until the last region was handed over; the rest is
  // finish() (last writes, table, fsync, rename).
  std::printf("{\"op\":\"write\",\"bytes\":%llu,\"fileBytes\":%llu,\"zeroBytes\":%llu,\"seconds\":%.6f,\"feedSeconds\":%.6f}\n",
              (unsigned long long)s.logical_bytes, (unsigned long long)s.file_size, (unsigned long long)s.zero_bytes, t, fed);
  return 0;
}

int read_image(const Args& a) {
  const std::string& path = a.pos.at(0);
  evict(path);
  // Every region gets its own destination, as in a restore.
  std::vector<uint64_t> offsets;
  uint64_t total_len = 0;
  {
    image::ImageReader probe(path);
    for (const auto& r : probe.regions()) {
      offsets.push_back(total_len);
      total_len += (r.desc.length + 4095) & ~uint64_t(4095);
    }
  }
  evict(path);
  stream::AlignedBuffer dst(std::max<uint64_t>(total_len, 4096));
  std::memset(dst.data(), 1, dst.capacity());  // fault the pages in before timing
  auto t0 = Clock::now();
  image::ImageReader r(path, image::ReaderOptions{.threads = a.threads ? a.threads : stream::recommended_threads(), .o_direct = a.direct});
  uint64_t total = 0;
  std::vector<image::ImageReader::RegionTarget> targets;
  for (size_t i = 0; i < r.regions().size(); i++) {
    targets.push_back({i, dst.data() + offsets[i], static_cast<size_t>(r.regions()[i].desc.length)});
    total += r.regions()[i].desc.length;
  }
  if (a.per_region) {
    for (const auto& t : targets) r.read_region(t.index, t.dst, t.dst_len);
  } else {
    r.read_regions(targets.data(), targets.size());
  }
  double t = secs(t0);
  std::printf("{\"op\":\"read\",\"bytes\":%llu,\"fileBytes\":%llu,\"seconds\":%.6f}\n", (unsigned long long)total,
              (unsigned long long)r.file_size(), t);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ckpt_stream_bench devwrite|devread|write|read|evict ...\n");
    return 2;
  }
  try {
    std::string cmd = argv[1];
    Args a = parse(argc, argv);
    if (cmd == "devwrite") return devwrite(a);
    if (cmd == "devread") return devread(a);
    if (cmd == "write") return write_image(a);
    if (cmd == "read") return read_image(a);
    if (cmd == "evict") {
      for (const std::string& p : a.pos) evict(p);
      return 0;
    }
    std::fprintf(stderr, "unknown subcommand %s\n", cmd.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ckpt_stream_bench: %s\n", e.what());
    return 1;
  }
}
