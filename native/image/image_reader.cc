// ImageReader: O(1) open checks (header, trailer, table), per-chunk
// verification before use, parallel region reads and full verification.
#include "image/image_reader.h"

#include <linux/aio_abi.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "common/errors.h"
#include "image/format_codec.h"

namespace ckpt::image {

using namespace detail;
using stream::AlignedBuffer;
using stream::align_up;

bool has_image_magic(const void* data, size_t len) noexcept {
  return len >= 8 && std::memcmp(data, kHeaderMagic, 8) == 0;
}

namespace {

struct Opened {
  stream::File file;
  uint64_t size = 0;
  ImageMeta meta;
  uint64_t header_xxh3 = 0;
  Trailer trailer;
};

Opened open_checked(const std::string& path) {
  Opened o;
  o.file = stream::File::open_read(path);
  o.size = o.file.size();
  if (o.size < kPageSize + kTrailerSize) {
    // Too short for even an empty image. Say what is there, to tell a
    // truncated image from a file of another kind.
    uint8_t head[kHeaderFixed] = {};
    size_t got = o.file.pread_some(head, sizeof head, 0);
    if (got >= 8 && !has_image_magic(head, got))
      throw Error(Errc::Corrupt, path + ": at offset 0: not a ckpt image (bad header magic)");
    throw Error(Errc::Truncated, path + ": at offset " + std::to_string(o.size) + ": file ends after " +
                                     std::to_string(o.size) + " bytes, before the end of the image header/trailer");
  }
  std::vector<uint8_t> h(kPageSize);
  o.file.pread_exact(h.data(), kPageSize, 0);
  uint32_t hsize = peek_header_size(h.data(), h.size());
  if (hsize > kPageSize && hsize <= kMaxHeaderSize && hsize % kPageSize == 0) {
    if (hsize > o.size) throw Error(Errc::Truncated, path + ": at offset " + std::to_string(o.size) + ": file ends inside the image header");
    h.resize(hsize);
    o.file.pread_exact(h.data() + kPageSize, hsize - kPageSize, kPageSize);
  }
  o.meta = decode_header(h.data(), h.size(), path, &o.header_xxh3);
  uint8_t t[kTrailerSize];
  o.file.pread_exact(t, kTrailerSize, o.size - kTrailerSize);
  o.trailer = decode_trailer(t, o.size, path);
  if (o.trailer.header_xxh3 != o.header_xxh3)
    throw Error(Errc::Corrupt, path + ": at offset " + std::to_string(o.size - kTrailerSize + 32) +
                                   ": trailer does not belong to this header (header checksum differs)");
  if (o.trailer.table_offset < o.meta.header_size)
    throw Error(Errc::Corrupt, path + ": at offset " + std::to_string(o.size - kTrailerSize + 8) + ": region table overlaps the header");
  return o;
}

}  // namespace

QuickInfo quick_check(const std::string& path) {
  Opened o = open_checked(path);
  QuickInfo q;
  q.meta = std::move(o.meta);
  q.file_size = o.size;
  q.root_xxh3 = o.trailer.root_xxh3;
  q.table_offset = o.trailer.table_offset;
  q.table_size = o.trailer.table_size;
  return q;
}

struct ImageReader::Impl {
  std::string path;
  ReaderOptions opt;
  stream::File file;
  stream::File direct;  // optional O_DIRECT descriptor for chunk reads
  uint64_t size = 0;
  uint64_t root = 0;
  ImageMeta meta;
  Table table;
  // read() cursor
  size_t cur_region = SIZE_MAX;
  uint64_t cur_pos = 0;
  uint64_t cached_chunk = UINT64_MAX;
  std::vector<uint8_t> cache;

  std::string chunk_where(const ChunkDesc& c) const {
    size_t k = static_cast<size_t>(&c - table.chunks.data());
    std::string idx = k < table.chunks.size() ? "chunk " + std::to_string(k) : "chunk";
    return path + ": at offset " + std::to_string(c.file_offset) + ": " + idx;
  }

  // Reads a chunk's stored bytes into buf (aligned, padded capacity).
  // Reads a chunk's stored bytes to the start of buf.
  void read_stored(const ChunkDesc& c, AlignedBuffer& buf) const {
    size_t k = static_cast<size_t>(&c - table.chunks.data());
    if (k < table.chunks.size() && direct.fd() >= 0 && direct.direct()) {
      uint64_t base = read_batch(k, 1, buf);
      if (c.file_offset != base) std::memmove(buf.data(), buf.data() + (c.file_offset - base), c.stored_len);
      return;
    }
    buf.reserve(c.stored_len);
    file.pread_exact(buf.data(), c.stored_len, c.file_offset);
  }

  void check_sum(const ChunkDesc& c, const uint8_t* p) const {
    uint64_t h = stream::xxh3(p, c.stored_len);
    if (h != c.xxh3)
      throw Error(Errc::Corrupt, chunk_where(c) + ": checksum mismatch (stored " + hex64(c.xxh3) + ", computed " + hex64(h) + ")");
  }

  void decode_into(const ChunkDesc& c, void* dst, AlignedBuffer& buf, stream::Decoder& dec) const {
    if (c.codec == Codec::Raw && !(direct.fd() >= 0 && direct.direct())) {
      file.pread_exact(dst, c.stored_len, c.file_offset);
      check_sum(c, static_cast<const uint8_t*>(dst));
      return;
    }
    read_stored(c, buf);
    check_sum(c, buf.data());
    if (!dec.decode(static_cast<int>(c.codec), buf.data(), c.stored_len, dst, c.logical_len))
      throw Error(Errc::Corrupt, chunk_where(c) + ": does not decode to " + std::to_string(c.logical_len) + " bytes");
  }

  // Groups chunks [first, first+count) into runs that are adjacent in the
  // file and at most kBatch bytes long, so that reads are large even when
  // chunks are small (data between zero pages, well-compressed chunks).
  static constexpr uint64_t kBatch = 8u << 20;
  std::vector<std::pair<uint64_t, uint64_t>> batches(uint64_t first, uint64_t count) const {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    uint64_t k = first, end = first + count;
    while (k < end) {
      uint64_t start = k;
      uint64_t begin_off = table.chunks[k].file_offset;
      uint64_t next_off = begin_off + table.chunks[k].stored_len;
      k++;
      // Chunks follow each other, at most a page of padding apart.
      // The region span is capped too: a batch of a fragmented heap (a few
      // MiB of small chunks between elided pages) also zeroes its gaps, and
      // batches spanning 30 MiB of the region left one thread working alone.
      const uint64_t begin_ro = table.chunks[start].region_offset;
      while (k < end && table.chunks[k].file_offset >= next_off && table.chunks[k].file_offset - next_off < kPageSize &&
             table.chunks[k].file_offset + table.chunks[k].stored_len - begin_off <= kBatch &&
             table.chunks[k].region_offset >= begin_ro && table.chunks[k].region_offset - begin_ro < kBatch) {
        next_off = table.chunks[k].file_offset + table.chunks[k].stored_len;
        k++;
      }
      out.emplace_back(start, k - start);
    }
    return out;
  }

  // The file range a batch's stored bytes are read from, as {offset,
  // length}: whole pages under O_DIRECT (the table starts on a page
  // boundary after the last chunk, so the rounded-up range is inside the
  // file).
  std::pair<uint64_t, uint64_t> direct_range(uint64_t first, uint64_t count) const {
    const ChunkDesc& a = table.chunks[first];
    const ChunkDesc& b = table.chunks[first + count - 1];
    uint64_t base = a.file_offset / kPageSize * kPageSize;
    return {base, align_up(b.file_offset + b.stored_len) - base};
  }

  // Reads the stored bytes of a batch into buf; returns the batch's first
  // file offset. Chunks of the batch are at (file_offset - base) in buf.
  uint64_t read_batch(uint64_t first, uint64_t count, AlignedBuffer& buf) const {
    const ChunkDesc& a = table.chunks[first];
    const ChunkDesc& b = table.chunks[first + count - 1];
    uint64_t end = b.file_offset + b.stored_len;
    if (direct.fd() >= 0 && direct.direct()) {
      auto [base, len] = direct_range(first, count);
      buf.reserve(len);
      size_t got = direct.pread_some(buf.data(), len, base);
      if (got < end - base) throw Error(Errc::Truncated, chunk_where(b) + ": file ends inside the chunk");
      return base;
    }
    buf.reserve(end - a.file_offset);
    file.pread_exact(buf.data(), end - a.file_offset, a.file_offset);
    return a.file_offset;
  }

  // Raw chunks large enough to be read straight into their places in the
  // destination (one scatter read, verified there: reading into a buffer
  // and copying out kept read+verify at about 0.75 of the device). Small
  // chunks (the pieces of a fragmented heap between zero pages) are not
  // read piece by piece: a scatter read of a thousand 4 KiB pieces ran at
  // about half the device's speed here; plan_batch() reads a run of them in
  // one piece. Under O_DIRECT a chunk must also be whole pages at a page
  // aligned place.
  static constexpr uint32_t kInPlaceMin = 64u << 10;
  bool in_place_ok(const ChunkDesc& c, const uint8_t* out) const {
    if (c.codec != Codec::Raw || c.stored_len != c.logical_len || c.stored_len < kInPlaceMin) return false;
    if (direct.fd() >= 0 && direct.direct())
      return c.stored_len % kPageSize == 0 && reinterpret_cast<uintptr_t>(out + c.region_offset) % kPageSize == 0;
    return true;
  }

  // A batch of raw chunks read with one scatter read into the destination
  // itself, then verified there (plan_batch, then finish_batch):
  //  - large chunks (in_place_ok) go straight to their places;
  //  - each run of small chunks between them lands in one piece inside the
  //    part of the region the run covers, ending where the run ends, and
  //    its chunks are then moved down to their places. That part is never
  //    shorter than the run's file range (the run's elided zero pages are
  //    in the region but not in the file), every chunk lands at or after
  //    its place, and moving them down in region order never overwrites
  //    one not yet moved. The caller zeroes the gaps afterwards.
  // Stored bytes outside the chunks (page padding) never land where a
  // chunk's bytes stay. So a restore uses the pages it must fill anyway as
  // its buffer. Bounce
  // buffers (up to 8 MiB per reader thread) were fresh memory in every
  // read, which on a VM that hands freed memory back to its host cost
  // 15-20 ms of page faults at the start of a 251 MiB image, the device
  // idle meanwhile; and reading run by run took a dozen synchronous reads
  // in a row for one batch of a fragmented heap.
  struct Landing {
    uint64_t first, count;
    uint8_t* at;  // where the run's file range lands (nullptr: one large chunk, in place)
  };
  struct BatchPlan {
    uint8_t* out = nullptr;  // the region's destination
    uint64_t start = 0;  // file offset of the read
    uint64_t len = 0;    // bytes asked for
    std::vector<struct iovec> iov;
    std::vector<Landing> runs;
  };
  // False where the layout does not allow it (O_DIRECT needs every piece
  // page-aligned, so an unaligned destination or a blob's last chunk ending
  // inside a page); the caller then reads the batch through a buffer.
  bool plan_batch(uint64_t first, uint64_t count, uint8_t* out, BatchPlan& p) const {
    const bool dio = direct.fd() >= 0 && direct.direct();
    p.iov.clear();
    p.runs.clear();
    p.out = out;
    p.start = table.chunks[first].file_offset;
    uint64_t next = p.start;  // file offset the pieces reach so far
    auto add = [&](uint8_t* at, size_t n) {
      if (!p.iov.empty() && static_cast<uint8_t*>(p.iov.back().iov_base) + p.iov.back().iov_len == at) p.iov.back().iov_len += n;
      else p.iov.push_back({at, n});
      next += n;
    };
    for (uint64_t k = first; k < first + count;) {
      const ChunkDesc& c = table.chunks[k];
      if (c.file_offset != next) return false;
      if (in_place_ok(c, out)) {
        add(out + c.region_offset, c.stored_len);
        p.runs.push_back({k, 1, nullptr});
        k++;
        continue;
      }
      uint64_t n = 1;
      while (k + n < first + count && !in_place_ok(table.chunks[k + n], out)) n++;
      const ChunkDesc& b = table.chunks[k + n - 1];
      const uint64_t fend = b.file_offset + b.stored_len;
      // With O_DIRECT a chunk that ends inside a page is read whole: only
      // the last chunk of a blob can, and the next chunk (or the table)
      // starts on the next page.
      const uint64_t flen = (dio ? align_up(fend) : fend) - c.file_offset;
      const uint64_t span_end = b.region_offset + b.logical_len;
      if (span_end < c.region_offset || span_end - c.region_offset < flen) return false;
      const uint64_t place = span_end - flen;
      if (dio && (reinterpret_cast<uintptr_t>(out + place) % kPageSize != 0 || flen % kPageSize != 0)) return false;
      uint64_t prev_end = c.region_offset;
      for (uint64_t j = k; j < k + n; j++) {
        const ChunkDesc& d = table.chunks[j];
        if (d.codec != Codec::Raw || d.stored_len != d.logical_len || d.region_offset < prev_end ||
            place + (d.file_offset - c.file_offset) < d.region_offset)
          return false;
        prev_end = d.region_offset + d.logical_len;
      }
      if (k + n < first + count && table.chunks[k + n].file_offset != c.file_offset + flen) return false;
      add(out + place, flen);
      p.runs.push_back({k, n, out + place});
      k += n;
    }
    p.len = next - p.start;
    return p.iov.size() <= IOV_MAX;
  }

  // The read of a planned batch, synchronously; returns the bytes read.
  uint64_t read_planned(const BatchPlan& p, uint64_t already = 0) const {
    const stream::File& f = direct.fd() >= 0 && direct.direct() ? direct : file;
    if (already == 0) return f.preadv_some(p.iov.data(), p.iov.size(), p.start);
    // The rest of a short read.
    std::vector<struct iovec> rest;
    uint64_t skip = already;
    for (const struct iovec& v : p.iov) {
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      rest.push_back({static_cast<uint8_t*>(v.iov_base) + skip, v.iov_len - skip});
      skip = 0;
    }
    return already + f.preadv_some(rest.data(), rest.size(), p.start + already);
  }

  // Verifies a planned batch once `got` bytes of it were read (completing
  // a short read first) and moves its small chunks into place.
  void finish_batch(const BatchPlan& p, uint64_t got) const {
    // (A short O_DIRECT read can only be continued from a page boundary;
    // one that ends elsewhere ended at the end of the file.)
    const bool dio = direct.fd() >= 0 && direct.direct();
    if (got < p.len && got > 0 && (!dio || got % kPageSize == 0)) got = read_planned(p, got);
    for (const Landing& run : p.runs) {
      const uint64_t base = table.chunks[run.first].file_offset;
      for (uint64_t j = run.first; j < run.first + run.count; j++) {
        const ChunkDesc& c = table.chunks[j];
        if (c.file_offset + c.stored_len > p.start + got) throw Error(Errc::Truncated, chunk_where(c) + ": file ends inside the chunk");
        uint8_t* dst = p.out + c.region_offset;
        const uint8_t* at = run.at ? run.at + (c.file_offset - base) : dst;
        check_sum(c, at);
        if (at != dst) std::memmove(dst, at, c.logical_len);
      }
    }
  }

  // Zeroes the gaps (elided pages) before the chunks of a batch, and after
  // the last one the region's tail. Chunks never overlap gaps.
  void zero_gaps(const RegionInfo& r, uint8_t* out, uint64_t first, uint64_t count) const {
    uint64_t at = first == r.first_chunk ? 0 : table.chunks[first - 1].region_offset + table.chunks[first - 1].logical_len;
    for (uint64_t k = first; k < first + count; k++) {
      const ChunkDesc& c = table.chunks[k];
      if (c.region_offset > at) std::memset(out + at, 0, c.region_offset - at);
      at = c.region_offset + c.logical_len;
    }
    if (first + count == r.first_chunk + r.chunk_count && r.desc.length > at) std::memset(out + at, 0, r.desc.length - at);
  }

  // Linux AIO for O_DIRECT reads (read_regions). A context is taken from a
  // pool kept for the life of the process and given back afterwards, never
  // destroyed: io_destroy() waits for RCU grace periods (25 ms measured in
  // the restarter), longer than reading a small image takes.
  static constexpr unsigned kAioDepth = 3;  // batch reads in flight (each up to 8 MiB)
  class AioContext {
   public:
    AioContext();
    ~AioContext();
    AioContext(const AioContext&) = delete;
    AioContext& operator=(const AioContext&) = delete;
    bool ok() const noexcept { return ctx_ != 0; }
    bool submit(struct iocb** one) noexcept { return ::syscall(SYS_io_submit, ctx_, 1, one) == 1; }
    // Waits for at least one completion. Returns the number of events, or
    // -1 if the context failed: it is then destroyed, which waits for every
    // read still in flight, so nothing writes into memory any more.
    int wait(struct io_event* ev, unsigned n) noexcept;

   private:
    aio_context_t ctx_ = 0;
  };

  // One batch of read_regions(): chunks [first, first+count) of region r,
  // adjacent in the file, read into `out` (the region's destination).
  struct BatchWork {
    const RegionInfo* r;
    uint8_t* out;
    uint64_t first, count;
  };
  void read_batch_sync(const BatchWork& wk, AlignedBuffer& buf, stream::Decoder& dec) const;
  bool read_batches_aio(const std::vector<BatchWork>& work, unsigned threads) const;

  // One read of aio_pass(): iovecs (in memory that stays put until the
  // batch's work is done) and the file offset.
  struct AioRead {
    const struct iovec* iov = nullptr;
    size_t iovcnt = 0;
    uint64_t offset = 0;
  };
  static constexpr int64_t kReadHere = INT64_MIN;  // aio_pass(): no read was made for this batch
  void verify_content_hashes(const ImageReader& r) const;
  bool aio_pass(size_t nb, unsigned threads, size_t slots, const std::function<bool(size_t, size_t, AioRead&)>& prepare,
                const std::function<void(size_t, size_t, int64_t, unsigned)>& work,
                const std::function<void()>& tick = {}) const;

  // Verifies and decodes one chunk whose stored bytes are at `p`.
  void decode_from(const ChunkDesc& c, const uint8_t* p, void* dst, stream::Decoder& dec) const {
    check_sum(c, p);
    if (dst == nullptr) {
      if (c.codec == Codec::Zstd) {
        thread_local std::vector<uint8_t> scratch;
        scratch.resize(c.logical_len);
        if (!dec.decode(1, p, c.stored_len, scratch.data(), c.logical_len))
          throw Error(Errc::Corrupt, chunk_where(c) + ": does not decode to " + std::to_string(c.logical_len) + " bytes");
      }
      return;
    }
    if (!dec.decode(static_cast<int>(c.codec), p, c.stored_len, dst, c.logical_len))
      throw Error(Errc::Corrupt, chunk_where(c) + ": does not decode to " + std::to_string(c.logical_len) + " bytes");
  }

  // Runs fn(chunk index, worker) over [0, n) on `threads` threads; rethrows
  // the error of the lowest failing index so reports are deterministic.
  void parallel(size_t n, unsigned threads, const std::function<void(size_t, unsigned)>& fn,
                const std::function<void()>& tick = {}) const {
    if (threads <= 1 || n <= 1) {
      for (size_t i = 0; i < n; i++) {
        fn(i, 0);
        if (tick) tick();
      }
      return;
    }
    std::atomic<size_t> next{0};
    std::atomic<size_t> stop_at{SIZE_MAX};
    std::mutex mu;
    size_t err_idx = SIZE_MAX;
    std::exception_ptr err;
    auto body = [&](unsigned w) {
      for (;;) {
        size_t i = next.fetch_add(1);
        if (i >= n || i > stop_at.load()) return;
        try {
          fn(i, w);
        } catch (...) {
          std::lock_guard lk(mu);
          if (i < err_idx) {
            err_idx = i;
            err = std::current_exception();
            stop_at = i;
          }
        }
        if (w == 0 && tick) tick();
      }
    };
    std::vector<std::thread> ts;
    unsigned nt = static_cast<unsigned>(std::min<size_t>(threads, n));
    for (unsigned w = 1; w < nt; w++) ts.emplace_back(body, w);
    body(0);
    for (auto& t : ts) t.join();
    if (err) std::rethrow_exception(err);
  }
};

namespace {
std::mutex g_aio_mu;
std::vector<aio_context_t> g_aio_pool;  // idle contexts, kept for the life of the process
pid_t g_aio_pid = 0;                    // the process they belong to (a forked child has none of them)
constexpr unsigned kAioEvents = 8;
}  // namespace

ImageReader::Impl::AioContext::AioContext() {
  {
    std::lock_guard lk(g_aio_mu);
    if (g_aio_pid != ::getpid()) {
      g_aio_pool.clear();
      g_aio_pid = ::getpid();
    }
    if (!g_aio_pool.empty()) {
      ctx_ = g_aio_pool.back();
      g_aio_pool.pop_back();
      return;
    }
  }
  aio_context_t c = 0;
  if (::syscall(SYS_io_setup, kAioEvents, &c) == 0) ctx_ = c;  // else: no AIO (limits, seccomp); threads read instead
}

ImageReader::Impl::AioContext::~AioContext() {
  if (ctx_ == 0) return;
  std::lock_guard lk(g_aio_mu);
  if (g_aio_pid == ::getpid()) g_aio_pool.push_back(ctx_);
}

int ImageReader::Impl::AioContext::wait(struct io_event* ev, unsigned n) noexcept {
  for (;;) {
    long got = ::syscall(SYS_io_getevents, ctx_, 1, static_cast<long>(n), ev, nullptr);
    if (got > 0) return static_cast<int>(got);
    if (got < 0 && errno == EINTR) continue;
    ::syscall(SYS_io_destroy, ctx_);
    ctx_ = 0;
    return -1;
  }
}

ImageReader::ImageReader(std::string path, const ReaderOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = std::move(path);
  m.opt = options;
  Opened o = open_checked(m.path);
  m.file = std::move(o.file);
  m.size = o.size;
  m.root = o.trailer.root_xxh3;
  m.meta = std::move(o.meta);
  std::vector<uint8_t> tb(o.trailer.table_size);
  m.file.pread_exact(tb.data(), tb.size(), o.trailer.table_offset);
  uint64_t th = stream::xxh3(tb.data(), tb.size());
  if (th != o.trailer.table_xxh3)
    throw Error(Errc::Corrupt, m.path + ": at offset " + std::to_string(o.trailer.table_offset) +
                                   ": region table checksum mismatch (stored " + hex64(o.trailer.table_xxh3) +
                                   ", computed " + hex64(th) + ")");
  m.table = decode_table(tb.data(), tb.size(), o.trailer.table_offset, m.meta.header_size, m.meta.chunk_size, m.path);
  uint64_t logical = 0;
  for (const RegionInfo& r : m.table.regions) logical += r.desc.length;
  if (logical != o.trailer.logical_bytes)
    throw Error(Errc::Corrupt, m.path + ": at offset " + std::to_string(m.size - kTrailerSize + 40) +
                                   ": trailer's data size does not match the region table");
  if (m.opt.o_direct) m.direct = stream::File::open_read(m.path, true);
}

ImageReader::~ImageReader() = default;

const std::string& ImageReader::path() const noexcept { return impl_->path; }
const ImageMeta& ImageReader::meta() const noexcept { return impl_->meta; }
uint64_t ImageReader::file_size() const noexcept { return impl_->size; }
uint64_t ImageReader::root_xxh3() const noexcept { return impl_->root; }
const std::vector<RegionInfo>& ImageReader::regions() const noexcept { return impl_->table.regions; }
const std::vector<ChunkDesc>& ImageReader::chunks() const noexcept { return impl_->table.chunks; }
int ImageReader::fd() const noexcept { return impl_->file.fd(); }

std::span<const ChunkDesc> ImageReader::chunks_of(size_t region) const {
  const auto& t = impl_->table;
  if (region >= t.regions.size()) throw Error(Errc::InvalidArgument, "region index out of range");
  const RegionInfo& r = t.regions[region];
  return std::span<const ChunkDesc>(t.chunks.data() + r.first_chunk, r.chunk_count);
}

void ImageReader::read_chunk(const ChunkDesc& c, void* dst) const {
  AlignedBuffer buf;
  stream::Decoder dec;
  impl_->decode_into(c, dst, buf, dec);
}

void ImageReader::verify_chunk(const ChunkDesc& c) const {
  AlignedBuffer buf;
  impl_->read_stored(c, buf);
  impl_->check_sum(c, buf.data());
}

void ImageReader::read_region(size_t i, void* dst, size_t dst_len) const {
  RegionTarget t{i, dst, dst_len};
  read_regions(&t, 1);
}

// ---------------------------------------------------------------- batches

// Reads one batch the synchronous way: raw batches into the destination
// itself where plan_batch() can place them; anything else through `buf`,
// verified and decoded (or copied) into place.
void ImageReader::Impl::read_batch_sync(const BatchWork& wk, AlignedBuffer& buf, stream::Decoder& dec) const {
  thread_local BatchPlan plan;
  if (plan_batch(wk.first, wk.count, wk.out, plan)) {
    finish_batch(plan, read_planned(plan));
    zero_gaps(*wk.r, wk.out, wk.first, wk.count);  // after the read: small chunks land in the gaps first
    return;
  }
  zero_gaps(*wk.r, wk.out, wk.first, wk.count);
  uint64_t base = read_batch(wk.first, wk.count, buf);
  for (uint64_t k = wk.first; k < wk.first + wk.count; k++) {
    const ChunkDesc& c = table.chunks[k];
    decode_from(c, buf.data() + (c.file_offset - base), wk.out + c.region_offset, dec);
  }
}

// Runs `nb` batches through Linux AIO: the calling thread submits their
// reads in batch order, kAioDepth in flight, and up to `threads` workers
// run work(b, slot, res, worker) for each batch as its read completes
// (res: the bytes read, -errno, or kReadHere: no read was made, the worker
// reads the batch itself). prepare(b, slot, read), on the calling thread,
// says what batch b reads into `slot` and returns false for a batch that
// is to be worked without a read. `slots` bounds how many batches are
// between their prepare() and the end of their work() (0: no bound; slot is
// then always 0), for readers that reuse a few buffers. tick() runs on the
// calling thread now and then. Returns false, having done nothing, when no
// AIO context can be had.
//
// Errors: the lowest failing batch's error is rethrown (as parallel()
// does): reads are submitted in batch order and stop at the first error, so
// every batch below a failed one was read and is still worked. Every read
// submitted is waited for before this returns: the kernel writes into the
// caller's memory until it completes.
bool ImageReader::Impl::aio_pass(size_t nb, unsigned threads, size_t slots,
                                 const std::function<bool(size_t, size_t, AioRead&)>& prepare,
                                 const std::function<void(size_t, size_t, int64_t, unsigned)>& work,
                                 const std::function<void()>& tick) const {
  AioContext ctx;
  if (!ctx.ok()) return false;
  std::mutex mu;  // guards queue, closed, free_slots
  std::condition_variable work_cv, slot_cv;
  std::deque<std::pair<size_t, int64_t>> queue;  // (batch, res)
  bool closed = false;
  std::vector<size_t> free_slots;
  for (size_t s = slots; s-- > 0;) free_slots.push_back(s);
  std::vector<size_t> slot_of(nb, 0);
  std::atomic<size_t> err_at{SIZE_MAX};
  std::exception_ptr err;
  auto push = [&](size_t b, int64_t res) {
    {
      std::lock_guard lk(mu);
      queue.emplace_back(b, res);
    }
    work_cv.notify_one();
  };
  auto worker = [&](unsigned w) {
    for (;;) {
      std::pair<size_t, int64_t> item;
      {
        std::unique_lock lk(mu);
        work_cv.wait(lk, [&] { return closed || !queue.empty(); });
        if (queue.empty()) return;
        item = queue.front();
        queue.pop_front();
      }
      const auto [b, res] = item;
      if (b < err_at.load()) {  // else: an earlier batch failed, the call fails with its error
        try {
          work(b, slot_of[b], res, w);
        } catch (...) {
          std::lock_guard lk(mu);
          if (b < err_at.load()) {
            err_at = b;
            err = std::current_exception();
          }
        }
      }
      if (slots) {
        {
          std::lock_guard lk(mu);
          free_slots.push_back(slot_of[b]);
        }
        slot_cv.notify_one();
      }
    }
  };
  std::vector<std::thread> ts;
  auto stop_workers = [&] {
    {
      std::lock_guard lk(mu);
      closed = true;
    }
    work_cv.notify_all();
    for (auto& t : ts) t.join();
  };

  std::vector<struct iocb> cbs(nb);
  std::vector<char> flying(nb);
  size_t inflight = 0;
  try {
    for (size_t i = 0; i < std::min<size_t>(std::max(1u, threads), nb); i++) ts.emplace_back(worker, static_cast<unsigned>(i));
    size_t next = 0;
    for (;;) {
      while (inflight < kAioDepth && next < nb && err_at.load() == SIZE_MAX) {
        size_t slot = 0;
        if (slots) {
          std::lock_guard lk(mu);
          if (free_slots.empty()) break;
          slot = free_slots.back();
          free_slots.pop_back();
        }
        const size_t b = next++;
        slot_of[b] = slot;
        AioRead rd;
        if (!prepare(b, slot, rd)) {
          push(b, kReadHere);
          continue;
        }
        struct iocb& cb = cbs[b];
        std::memset(&cb, 0, sizeof cb);
        cb.aio_lio_opcode = IOCB_CMD_PREADV;
        cb.aio_fildes = static_cast<uint32_t>(direct.fd());
        cb.aio_buf = reinterpret_cast<uintptr_t>(rd.iov);
        cb.aio_nbytes = rd.iovcnt;
        cb.aio_offset = static_cast<int64_t>(rd.offset);
        cb.aio_data = b;
        struct iocb* one[1] = {&cb};
        if (ctx.ok() && ctx.submit(one)) {
          inflight++;
          flying[b] = 1;
        } else {
          push(b, kReadHere);  // e.g. EAGAIN, or the context failed: the worker reads it
        }
      }
      if (tick) tick();
      if (inflight > 0) {
        struct io_event ev[kAioDepth];
        int got = ctx.wait(ev, kAioDepth);
        if (got < 0) {
          // The context failed and was destroyed, which ended every read
          // in flight: the workers read those batches themselves.
          for (size_t b = 0; b < nb; b++)
            if (flying[b]) push(b, kReadHere);
          std::fill(flying.begin(), flying.end(), 0);
          inflight = 0;
          continue;
        }
        for (int i = 0; i < got; i++) {
          const auto b = static_cast<size_t>(ev[i].data);
          inflight--;
          flying[b] = 0;
          push(b, ev[i].res);
        }
        continue;
      }
      if (next >= nb || err_at.load() != SIZE_MAX) break;
      // Nothing in flight and no free slot: wait for a worker to give one back.
      std::unique_lock lk(mu);
      slot_cv.wait(lk, [&] { return !free_slots.empty(); });
    }
  } catch (...) {
    // Out of memory or threads: wait for the reads in flight first.
    struct io_event ev[kAioDepth];
    while (inflight > 0 && ctx.ok()) {
      int got = ctx.wait(ev, kAioDepth);
      inflight = got < 0 ? 0 : inflight - static_cast<size_t>(got);
    }
    stop_workers();
    throw;
  }
  stop_workers();
  if (err) std::rethrow_exception(err);
  return true;
}

// O_DIRECT reads of raw batches (read_regions) through aio_pass(): each
// planned batch is read straight into the destination (plan_batch) and
// verified by finish_batch; batches plan_batch() cannot place are read by
// the workers through a buffer.
//
// Reads issued by the worker threads themselves (one reader more than
// `threads`, each reading, then verifying) left the device idle whenever
// every thread was checksumming at once or the thread whose turn it was
// waited for one of the two CPUs: a block-layer trace of a 960 MiB image
// showed 16-22 ms of 340 ms with no request at the device, the requests
// themselves taking as long as the sequential baseline's.
bool ImageReader::Impl::read_batches_aio(const std::vector<BatchWork>& work, unsigned threads) const {
  const size_t nb = work.size();
  std::vector<BatchPlan> plans(nb);
  std::vector<char> planned(nb);
  for (size_t b = 0; b < nb; b++) planned[b] = plan_batch(work[b].first, work[b].count, work[b].out, plans[b]);
  std::vector<AlignedBuffer> bufs(std::max(1u, threads));
  std::vector<std::unique_ptr<stream::Decoder>> decs;
  for (unsigned w = 0; w < std::max(1u, threads); w++) decs.push_back(std::make_unique<stream::Decoder>());
  return aio_pass(
      nb, threads, 0,
      [&](size_t b, size_t, AioRead& rd) {
        if (!planned[b]) return false;
        rd = AioRead{plans[b].iov.data(), plans[b].iov.size(), plans[b].start};
        return true;
      },
      [&](size_t b, size_t, int64_t res, unsigned w) {
        const BatchWork& wk = work[b];
        if (!planned[b]) {
          read_batch_sync(wk, bufs[w], *decs[w]);
          return;
        }
        if (res < 0 && res != kReadHere)
          throw_errno("read of " + path + " at offset " + std::to_string(plans[b].start) + " failed", static_cast<int>(-res));
        finish_batch(plans[b], res == kReadHere ? read_planned(plans[b]) : static_cast<uint64_t>(res));
        zero_gaps(*wk.r, wk.out, wk.first, wk.count);
      });
}

void ImageReader::read_regions(const RegionTarget* targets, size_t n) const {
  const Impl& m = *impl_;
  // One pass over the batches of every region: the threads do not stop and
  // start again at each region's end (with 64 MiB regions that idled the
  // device for the tail batch of each region).
  std::vector<Impl::BatchWork> work;
  bool all_raw = true;
  for (size_t t = 0; t < n; t++) {
    const RegionTarget& tg = targets[t];
    if (tg.index >= m.table.regions.size()) throw Error(Errc::InvalidArgument, "region index out of range");
    const RegionInfo& r = m.table.regions[tg.index];
    if (tg.dst_len < r.desc.length) throw Error(Errc::InvalidArgument, "destination smaller than the region");
    auto* out = static_cast<uint8_t*>(tg.dst);
    if (r.chunk_count == 0) {
      if (r.desc.length > 0) std::memset(out, 0, r.desc.length);
      continue;
    }
    for (uint64_t k = r.first_chunk; k < r.first_chunk + r.chunk_count && all_raw; k++) all_raw = m.table.chunks[k].codec == Codec::Raw;
    for (auto [first, count] : m.batches(r.first_chunk, r.chunk_count)) work.push_back({&r, out, first, count});
  }
  if (work.empty()) return;
  const bool dio = m.direct.fd() >= 0 && m.direct.direct();
  unsigned threads = m.opt.threads;
  if (dio && all_raw && threads >= 2 && m.read_batches_aio(work, threads)) return;
  // Buffered reads of raw chunks are a copy out of the page cache and a
  // checksum; the kernel's readahead already keeps the device busy while
  // one thread verifies, and several threads reading different parts of
  // the file at once defeat it (251 MiB raw image, evicted: 1 thread
  // 0.10-0.11 s, 2 threads 0.14-0.15 s, 3 threads 0.19-0.26 s; the dd-like
  // baseline 0.11-0.13 s). So they are read in order on one thread.
  // O_DIRECT without AIO: one reader more than `threads`, each reading and
  // then verifying its batch.
  if (threads > 1 && all_raw) threads = dio ? threads + 1 : 1;
  std::vector<AlignedBuffer> bufs(std::max(1u, threads));
  std::vector<std::unique_ptr<stream::Decoder>> decs;
  for (unsigned w = 0; w < std::max(1u, threads); w++) decs.push_back(std::make_unique<stream::Decoder>());
  m.parallel(work.size(), threads, [&](size_t b, unsigned w) { m.read_batch_sync(work[b], bufs[w], *decs[w]); });
}

size_t ImageReader::read(size_t i, OutBuffer& out) {
  Impl& m = *impl_;
  if (i >= m.table.regions.size()) throw Error(Errc::InvalidArgument, "region index out of range");
  if (out.pos > out.size) throw Error(Errc::InvalidArgument, "output buffer pos is beyond its size");
  if (m.cur_region != i) {
    m.cur_region = i;
    m.cur_pos = 0;
  }
  const RegionInfo& r = m.table.regions[i];
  auto chunks = chunks_of(i);
  auto* dst = static_cast<uint8_t*>(out.dst);
  while (out.pos < out.size && m.cur_pos < r.desc.length) {
    // The chunk containing cur_pos, or the first chunk after it.
    auto it = std::upper_bound(chunks.begin(), chunks.end(), m.cur_pos,
                               [](uint64_t p, const ChunkDesc& c) { return p < c.region_offset; });
    size_t room = out.size - out.pos;
    if (it != chunks.begin()) {
      const ChunkDesc& c = *(it - 1);
      if (m.cur_pos < c.region_offset + c.logical_len) {
        uint64_t k = static_cast<uint64_t>(&c - m.table.chunks.data());
        if (m.cached_chunk != k) {
          m.cache.resize(c.logical_len);
          read_chunk(c, m.cache.data());
          m.cached_chunk = k;
        }
        size_t off = static_cast<size_t>(m.cur_pos - c.region_offset);
        size_t n = std::min<size_t>(room, c.logical_len - off);
        std::memcpy(dst + out.pos, m.cache.data() + off, n);
        out.pos += n;
        m.cur_pos += n;
        continue;
      }
    }
    uint64_t gap_end = it == chunks.end() ? r.desc.length : it->region_offset;
    size_t n = static_cast<size_t>(std::min<uint64_t>(room, gap_end - m.cur_pos));
    std::memset(dst + out.pos, 0, n);
    out.pos += n;
    m.cur_pos += n;
  }
  return static_cast<size_t>(r.desc.length - m.cur_pos);
}

uint64_t ImageReader::content_hash(size_t i) const {
  const Impl& m = *impl_;
  if (i >= m.table.regions.size()) throw Error(Errc::InvalidArgument, "region index out of range");
  const RegionInfo& r = m.table.regions[i];
  stream::Hasher h;
  std::vector<uint8_t> buf;
  AlignedBuffer sbuf;
  stream::Decoder dec;
  uint64_t at = 0;
  for (const ChunkDesc& c : chunks_of(i)) {
    h.update_zeros(c.region_offset - at);
    buf.resize(c.logical_len);
    m.decode_into(c, buf.data(), sbuf, dec);
    h.update(buf.data(), buf.size());
    at = c.region_offset + c.logical_len;
  }
  h.update_zeros(r.desc.length - at);
  return h.digest();
}

void ImageReader::verify(const std::function<void(uint64_t, uint64_t)>& progress) const {
  const Impl& m = *impl_;
  const auto& chunks = m.table.chunks;
  uint64_t total = 0;
  for (const ChunkDesc& c : chunks) total += c.stored_len;
  unsigned threads = m.opt.threads;
  unsigned nw = std::max(1u, threads);
  std::vector<AlignedBuffer> bufs(nw);
  std::vector<std::unique_ptr<stream::Decoder>> decs;
  for (unsigned w = 0; w < nw; w++) decs.push_back(std::make_unique<stream::Decoder>());
  std::atomic<uint64_t> done{0};
  if (progress) progress(0, total);
  auto bs = m.batches(0, chunks.size());
  auto check_batch = [&](uint64_t first, uint64_t count, const uint8_t* data, uint64_t base, unsigned w) {
    for (uint64_t k = first; k < first + count; k++) {
      const ChunkDesc& c = chunks[k];
      m.decode_from(c, data + (c.file_offset - base), nullptr, *decs[w]);
      done += c.stored_len;
    }
  };
  // O_DIRECT with threads: the calling thread keeps kAioDepth batch reads in
  // flight (Linux AIO) into a few reused buffers while the workers check
  // the batches already read, as read_regions() does. With every worker
  // reading its own batch and then checking it, `ckpt verify` of a 960 MiB
  // raw image took 2-3 times as long as reading it.
  const bool dio = m.direct.fd() >= 0 && m.direct.direct();
  if (dio && threads >= 2) {
    const size_t slots = Impl::kAioDepth + threads;
    std::vector<AlignedBuffer> ring(slots);
    std::vector<struct iovec> ring_iov(slots);
    std::vector<uint64_t> base_of(bs.size());
    auto range = [&](size_t b) { return m.direct_range(bs[b].first, bs[b].second); };
    bool ran = m.aio_pass(
        bs.size(), threads, slots,
        [&](size_t b, size_t slot, Impl::AioRead& rd) {
          auto [base, len] = range(b);
          ring[slot].reserve(len);
          ring_iov[slot] = {ring[slot].data(), len};
          base_of[b] = base;
          rd = Impl::AioRead{&ring_iov[slot], 1, base};
          return true;
        },
        [&](size_t b, size_t slot, int64_t res, unsigned w) {
          auto [first, count] = bs[b];
          uint64_t base = base_of[b];
          if (res == Impl::kReadHere) {
            base = m.read_batch(first, count, ring[slot]);
          } else {
            if (res < 0) throw_errno("read of " + m.path + " at offset " + std::to_string(base) + " failed", static_cast<int>(-res));
            const ChunkDesc& z = chunks[first + count - 1];
            uint64_t got = static_cast<uint64_t>(res);
            if (got < z.file_offset + z.stored_len - base) {
              // A short read: the rest synchronously, from a page boundary
              // (elsewhere it ended at the end of the file).
              if (got % kPageSize == 0) got += m.direct.pread_some(ring[slot].data() + got, range(b).second - got, base + got);
              for (uint64_t k = first; k < first + count; k++)
                if (chunks[k].file_offset + chunks[k].stored_len > base + got)
                  throw Error(Errc::Truncated, m.chunk_where(chunks[k]) + ": file ends inside the chunk");
            }
          }
          check_batch(first, count, ring[slot].data(), base, w);
        },
        [&] {
          if (progress) progress(done.load(), total);
        });
    if (ran) {
      m.verify_content_hashes(*this);
      if (progress) progress(total, total);
      return;
    }
  }
  m.parallel(
      bs.size(), threads,
      [&](size_t b, unsigned w) {
        auto [first, count] = bs[b];
        uint64_t base = m.read_batch(first, count, bufs[w]);
        check_batch(first, count, bufs[w].data(), base, w);
      },
      [&] {
        if (progress) progress(done.load(), total);
      });
  m.verify_content_hashes(*this);
  if (progress) progress(total, total);
}

// Content hashes (wrapped images) need the logical bytes in order.
void ImageReader::Impl::verify_content_hashes(const ImageReader& r) const {
  for (size_t i = 0; i < table.regions.size(); i++) {
    const RegionInfo& ri = table.regions[i];
    if (!(ri.desc.region_flags & kRegionHasContentHash)) continue;
    uint64_t h = r.content_hash(i);
    if (h != ri.desc.content_xxh3)
      throw Error(Errc::Corrupt, path + ": region " + std::to_string(i) + ": content checksum mismatch (stored " +
                                     hex64(ri.desc.content_xxh3) + ", computed " + hex64(h) + ")");
  }
}

}  // namespace ckpt::image
