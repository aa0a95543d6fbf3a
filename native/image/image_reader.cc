// ImageReader: O(1) open checks (header, trailer, table), per-chunk
// verification before use, parallel region reads and full verification.
#include "image/image_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
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

  // Reads the stored bytes of a batch into buf; returns the batch's first
  // file offset. Chunks of the batch are at (file_offset - base) in buf.
  uint64_t read_batch(uint64_t first, uint64_t count, AlignedBuffer& buf) const {
    const ChunkDesc& a = table.chunks[first];
    const ChunkDesc& b = table.chunks[first + count - 1];
    uint64_t end = b.file_offset + b.stored_len;
    if (direct.fd() >= 0 && direct.direct()) {
      // O_DIRECT: whole pages. The table starts on a page boundary after the
      // last chunk, so the rounded-up range is inside the file.
      uint64_t base = a.file_offset / kPageSize * kPageSize;
      uint64_t len = align_up(end) - base;
      buf.reserve(len);
      size_t got = direct.pread_some(buf.data(), len, base);
      if (got < end - base) throw Error(Errc::Truncated, chunk_where(b) + ": file ends inside the chunk");
      return base;
    }
    buf.reserve(end - a.file_offset);
    file.pread_exact(buf.data(), end - a.file_offset, a.file_offset);
    return a.file_offset;
  }

  // Raw chunks that follow each other in the file are read straight into
  // their places in the destination with one scatter read and verified
  // there: no bounce buffer and no copy. Reading into a buffer and copying
  // out kept read+verify at about 0.75 of the device's read bandwidth.
  // Handles a prefix of [first, first+count) and returns its length; a
  // chunk it cannot place (O_DIRECT: not whole pages or unaligned
  // destination) ends the prefix. Stored bytes outside the chunks (page
  // padding, not covered by checksums) are never read into dst.
  //
  // Small chunks (the pieces of a fragmented heap between zero pages) are
  // left to the bounce buffer: a scatter read of a thousand 4 KiB pieces
  // ran at about half the device's speed here, while one contiguous read
  // plus copying them out costs little.
  static constexpr uint32_t kInPlaceMin = 64u << 10;
  bool in_place_ok(const ChunkDesc& c, const uint8_t* out) const {
    if (c.codec != Codec::Raw || c.stored_len != c.logical_len || c.stored_len < kInPlaceMin) return false;
    if (direct.fd() >= 0 && direct.direct())
      return c.stored_len % kPageSize == 0 && reinterpret_cast<uintptr_t>(out + c.region_offset) % kPageSize == 0;
    return true;
  }

  uint64_t read_raw_in_place(uint64_t first, uint64_t count, uint8_t* out) const {
    const bool dio = direct.fd() >= 0 && direct.direct();
    const stream::File& f = dio ? direct : file;
    thread_local std::vector<struct iovec> iov;
    iov.clear();
    uint64_t k = first;
    const uint64_t start = table.chunks[first].file_offset;
    uint64_t next = start;
    for (; k < first + count; k++) {
      const ChunkDesc& c = table.chunks[k];
      if (c.file_offset != next || !in_place_ok(c, out)) break;
      iov.push_back({out + c.region_offset, c.stored_len});
      next += c.stored_len;
    }
    if (iov.empty()) return 0;
    size_t got = f.preadv_some(iov.data(), iov.size(), start);
    for (uint64_t j = first; j < k; j++) {
      const ChunkDesc& c = table.chunks[j];
      if (c.file_offset + c.stored_len > start + got) throw Error(Errc::Truncated, chunk_where(c) + ": file ends inside the chunk");
      check_sum(c, out + c.region_offset);
    }
    return k - first;
  }

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

void ImageReader::read_regions(const RegionTarget* targets, size_t n) const {
  const Impl& m = *impl_;
  // One parallel pass over the batches of every region: the threads do not
  // stop and start again at each region's end (with 64 MiB regions that
  // idled the device for the tail batch of each region).
  struct Work {
    const RegionInfo* r;
    uint8_t* out;
    uint64_t first, count;
  };
  std::vector<Work> work;
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
  unsigned threads = m.opt.threads;
  // Buffered reads of raw chunks are a copy out of the page cache and a
  // checksum; the kernel's readahead already keeps the device busy while
  // one thread verifies, and several threads reading different parts of
  // the file at once defeat it (251 MiB raw image, evicted: 1 thread
  // 0.10-0.11 s, 2 threads 0.14-0.15 s, 3 threads 0.19-0.26 s; the dd-like
  // baseline 0.11-0.13 s). So they are read in order on one thread.
  //
  // O_DIRECT reads of raw chunks have no readahead: each thread waits for
  // its read, then verifies. One reader more than `threads` keeps a read in
  // flight while the others checksum.
  if (threads > 1 && all_raw) threads = m.direct.fd() >= 0 && m.direct.direct() ? threads + 1 : 1;
  std::vector<AlignedBuffer> bufs(std::max(1u, threads));
  std::vector<std::unique_ptr<stream::Decoder>> decs;
  for (unsigned w = 0; w < std::max(1u, threads); w++) decs.push_back(std::make_unique<stream::Decoder>());
  m.parallel(work.size(), threads, [&](size_t b, unsigned w) {
    const RegionInfo& r = *work[b].r;
    uint8_t* out = work[b].out;
    const uint64_t first = work[b].first, count = work[b].count;
    const uint64_t end_chunk = r.first_chunk + r.chunk_count;
    // Each batch zeroes the gaps (elided pages) before its chunks, and the
    // last one the region's tail: done in parallel, between reads, rather
    // than in one pass while the device idles. Chunks never overlap gaps.
    uint64_t at = first == r.first_chunk ? 0 : m.table.chunks[first - 1].region_offset + m.table.chunks[first - 1].logical_len;
    bool batch_raw = true;
    for (uint64_t k = first; k < first + count; k++) {
      const ChunkDesc& c = m.table.chunks[k];
      if (c.region_offset > at) std::memset(out + at, 0, c.region_offset - at);
      at = c.region_offset + c.logical_len;
      batch_raw = batch_raw && c.codec == Codec::Raw;
    }
    if (first + count == end_chunk && r.desc.length > at) std::memset(out + at, 0, r.desc.length - at);
    if (batch_raw) {
      for (uint64_t k = first; k < first + count;) {
        uint64_t got = m.read_raw_in_place(k, first + count - k, out);
        if (got == 0) {
          // The run of chunks that cannot be read in place goes through the
          // buffer in one read (they are adjacent in the file: one batch).
          got = 1;
          while (k + got < first + count && !m.in_place_ok(m.table.chunks[k + got], out)) got++;
          uint64_t base = m.read_batch(k, got, bufs[w]);
          for (uint64_t j = k; j < k + got; j++) {
            const ChunkDesc& c = m.table.chunks[j];
            m.decode_from(c, bufs[w].data() + (c.file_offset - base), out + c.region_offset, *decs[w]);
          }
        }
        k += got;
      }
      return;
    }
    uint64_t base = m.read_batch(first, count, bufs[w]);
    for (uint64_t k = first; k < first + count; k++) {
      const ChunkDesc& c = m.table.chunks[k];
      m.decode_from(c, bufs[w].data() + (c.file_offset - base), out + c.region_offset, *decs[w]);
    }
  });
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
  m.parallel(
      bs.size(), threads,
      [&](size_t b, unsigned w) {
        auto [first, count] = bs[b];
        uint64_t base = m.read_batch(first, count, bufs[w]);
        for (uint64_t k = first; k < first + count; k++) {
          const ChunkDesc& c = chunks[k];
          m.decode_from(c, bufs[w].data() + (c.file_offset - base), nullptr, *decs[w]);
          done += c.stored_len;
        }
      },
      [&] {
        if (progress) progress(done.load(), total);
      });
  // Content hashes (wrapped images) need the logical bytes in order.
  for (size_t i = 0; i < m.table.regions.size(); i++) {
    const RegionInfo& r = m.table.regions[i];
    if (!(r.desc.region_flags & kRegionHasContentHash)) continue;
    uint64_t h = content_hash(i);
    if (h != r.desc.content_xxh3)
      throw Error(Errc::Corrupt, m.path + ": region " + std::to_string(i) + ": content checksum mismatch (stored " +
                                     hex64(r.desc.content_xxh3) + ", computed " + hex64(h) + ")");
  }
  if (progress) progress(total, total);
}

}  // namespace ckpt::image
