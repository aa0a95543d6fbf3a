// ImageWriter: cuts region data into page-aligned chunks (skipping all-zero
// pages), encodes and checksums them on worker threads (raw images: on the
// I/O threads) and writes them in large blocks from two I/O threads, then
// appends the region table and trailer.
#include "image/image_writer.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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

namespace {

// One chunk of the image.
struct Piece {
  size_t off = 0;  // where its logical bytes start in ChunkJob::in
  size_t len = 0;
  uint64_t region_offset = 0;
  uint32_t region = 0;
  ChunkDesc result;
  const uint8_t* stored = nullptr;  // points into `out` or `in`
};

// A pipeline job carries one or more chunks packed in one buffer. Elided
// zero pages cut chunks; in a fragmented heap that makes thousands of
// one- or two-page chunks, and a pipeline hand-off per chunk (two thread
// wake-ups) cost more than hashing and writing it. Cut chunks therefore
// stay in the same buffer as closed pieces, and the job travels once it
// is full (or at a region end / flush). The file layout is unchanged.
struct ChunkJob {
  AlignedBuffer in;
  AlignedBuffer out;
  std::vector<Piece> pieces;  // closed chunks, in order
  size_t base = 0;            // where the open chunk starts in `in` (page aligned)
  size_t len = 0;             // logical bytes of the open chunk
  uint64_t region_offset = 0;  // of the open chunk
  uint32_t region = 0;
  size_t cap = 0;              // bytes of `in` this job may fill (<= its capacity)
};

}  // namespace

struct ImageWriter::Impl {
  std::string path, tmp;
  WriterOptions opt;
  stream::File file;
  bool header_done = false, finished = false, failed = false, in_region = false;
  uint64_t header_size = 0;
  uint64_t header_xxh3 = 0;
  uint64_t cursor = 0;  // next file offset for chunk data (touched by the I/O side only)
  std::vector<RegionDesc> regions;
  std::vector<std::pair<uint32_t, ChunkDesc>> chunks;  // appended by the I/O side, in file order
  std::vector<std::unique_ptr<stream::Encoder>> encoders;
  std::unique_ptr<stream::OrderedPipeline<ChunkJob>> pipe;
  std::unique_ptr<ChunkJob> cur;  // chunk being filled
  uint64_t pos = 0;               // bytes of the current region accepted
  uint64_t region_len = 0;
  bool open_length = false;       // Blob region whose length is set by end_region()
  // Raw images with threads: a job buffer is written to the file as it is
  // (see submit_raw), so a job holds up to job_cap bytes (several chunks)
  // and is one large write. Otherwise job_cap == chunk_size.
  bool raw_jobs = false;
  std::unique_ptr<ChunkJob> raw_spare;  // the raw job object, kept between buffers
  size_t job_cap = 0;
  // Raw jobs ramp up from one chunk to job_cap (1, 2, 4, 8 MiB): the first
  // write then starts after 1 MiB was gathered, not 8, so the device is not
  // idle for the first few milliseconds of an image.
  //
  // Each raw write also ends on a multiple of its size in the file (the
  // first one at 1 MiB, after the header; then 2, 4, 8, 16 MiB, ...), so
  // every 8 MiB write covers one aligned 8 MiB range. ext4 sizes and aligns
  // its block allocations by the logical range written: writes that
  // straddled those ranges (8 MiB at 7 MiB + 4 KiB, 15 MiB + 4 KiB, ...)
  // got each range in two or three pieces placed out of order on the
  // device (24 extents for a 251 MiB image, the device stepping backwards
  // inside every write), and the device took 20-30% longer to absorb the
  // same bytes than a sequential file.
  size_t next_cap = 0;
  size_t take_cap() {
    size_t c = next_cap;
    next_cap = std::min(next_cap * 2, job_cap);
    if (raw_jobs) c -= static_cast<size_t>(cursor % c);  // c is a power of two; cursor page aligned
    return c;
  }
  uint64_t bytes_in = 0, zero_bytes = 0, stored_bytes = 0;

  void check_usable() const {
    if (failed) throw Error(Errc::State, tmp + ": the writer failed earlier; start a new image");
    if (finished) throw Error(Errc::State, path + ": the image is already finished");
  }

  void work(ChunkJob& j, unsigned worker) {
    if (opt.codec == Codec::Raw) {
      for (Piece& p : j.pieces) {
        // Raw chunks are written from the input buffer itself: no copy.
        // Only a buffer's last piece can end inside a page, and the
        // capacity is a whole number of pages, so the padding fits.
        std::memset(j.in.data() + p.off + p.len, 0, align_up(p.len) - p.len);
        p.stored = j.in.data() + p.off;
        p.result.region_offset = p.region_offset;
        p.result.logical_len = static_cast<uint32_t>(p.len);
        p.result.stored_len = static_cast<uint32_t>(p.len);
        p.result.codec = Codec::Raw;
        p.result.xxh3 = stream::xxh3(p.stored, p.len);
      }
      return;
    }
    size_t cap = 0;
    for (const Piece& p : j.pieces) cap += align_up(stream::Encoder::bound(p.len));
    j.out.reserve(cap);
    size_t at = 0;
    for (Piece& p : j.pieces) {
      size_t room = align_up(stream::Encoder::bound(p.len));
      int codec = 0;
      size_t n = encoders[worker]->encode(j.in.data() + p.off, p.len, j.out.data() + at, room, codec);
      std::memset(j.out.data() + at + n, 0, align_up(n) - n);
      p.stored = j.out.data() + at;
      p.result.region_offset = p.region_offset;
      p.result.logical_len = static_cast<uint32_t>(p.len);
      p.result.stored_len = static_cast<uint32_t>(n);
      p.result.codec = static_cast<Codec>(codec);
      p.result.xxh3 = stream::xxh3(p.stored, n);
      at += room;
    }
  }

  // Chunks are gathered in a staging buffer and written in large, page
  // aligned blocks: small writes would each cost a device round trip under
  // O_DIRECT. zstd chunks are packed back to back (no padding: alignment
  // only matters for raw chunks, which a restarter may mmap); raw chunks
  // start on a page boundary.
  //
  // With threads > 0 a full stage is handed to kWriters I/O threads and the
  // delivery thread goes on filling another buffer, so up to kWriters 8 MiB
  // pwrites (at distinct offsets) are in flight while the next one is being
  // gathered. With one synchronous write at a time the device idled during
  // every copy and checksum and raw images reached about 0.74 of the
  // device's bandwidth under O_DIRECT and 0.35 buffered. Memory stays bounded:
  // at most kStageBufs stage buffers exist.
  static constexpr size_t kStage = 8u << 20;
  static constexpr unsigned kWriters = 2;
  static constexpr size_t kStageBufs = kWriters + 1;
  // Raw images: kRawWriters I/O threads and kRawBufs buffers of job_cap
  // bytes in all (one being filled, up to three written at once, one
  // queued). With preallocated blocks the writes run concurrently, so a
  // third write in flight keeps the device busy while an I/O thread waits
  // for a CPU on a loaded machine (A/B on 2 vCPUs: 0.98-1.02 of the device
  // against 0.90-0.92 with two). Each buffer costs first-touch page faults
  // inside the write, so no more than that. WriterOptions::max_in_flight
  // can lower the number of buffers (at least 2).
  static constexpr unsigned kRawWriters = 3;
  static constexpr size_t kRawBufs = 5;
  size_t raw_bufs = kRawBufs;
  AlignedBuffer stage;
  size_t stage_len = 0;
  uint64_t stage_off = 0;  // file offset of stage[0]; always page aligned

  struct StageWrite {
    AlignedBuffer buf;
    size_t len = 0;
    uint64_t off = 0;
    bool recycle = true;  // false: a one-off buffer (the header), freed after the write
  };
  std::mutex wmu;
  std::condition_variable wcv_work, wcv_done;
  std::deque<StageWrite> wqueue;
  std::vector<AlignedBuffer> wfree;
  size_t wbuffers = 0;  // stage buffers allocated (the current one included)
  size_t wbusy = 0;     // writes taken by an I/O thread and not finished
  bool wstop = false;
  std::exception_ptr werr;
  std::vector<std::thread> writers;

  // Raw images: I/O threads other than the first fault in one buffer each
  // before their first write, while the caller gathers the first data and
  // the first thread writes it. Fresh memory is expensive on a VM (the
  // host backs a page at its first touch); faulted by the caller, the
  // buffers of the first 40 MiB left the device idle for 2-4 ms early in
  // every image. One slot is always left to the caller, which never waits
  // for this (it takes a fresh buffer while slots are free).
  void prefault_buffer() {
    {
      std::lock_guard lk(wmu);
      if (wbuffers + 1 >= raw_bufs) return;
      wbuffers++;
    }
    AlignedBuffer b;
    try {
      b.reserve(job_cap);
      for (size_t i = 0; i < b.capacity(); i += kPageSize) b.data()[i] = 0;
    } catch (...) {
      std::lock_guard lk(wmu);
      wbuffers--;
      wcv_done.notify_all();
      return;
    }
    std::lock_guard lk(wmu);
    wfree.push_back(std::move(b));
    wcv_done.notify_all();
  }

  void writer_loop(unsigned index) {
    if (raw_jobs && index > 0) prefault_buffer();
    std::unique_lock lk(wmu);
    for (;;) {
      wcv_work.wait(lk, [&] { return wstop || !wqueue.empty(); });
      if (wqueue.empty()) return;
      StageWrite w = std::move(wqueue.front());
      wqueue.pop_front();
      wbusy++;
      bool skip = static_cast<bool>(werr);
      lk.unlock();
      std::exception_ptr e;
      if (!skip) {
        try {
          preallocate(w.off + w.len);
          file.pwrite_all(w.buf.data(), w.len, w.off);
          start_writeback(w.off, w.len);
        } catch (...) {
          e = std::current_exception();
        }
      }
      lk.lock();
      if (e && !werr) werr = e;
      wbusy--;
      if (w.recycle) wfree.push_back(std::move(w.buf));
      wcv_done.notify_all();
    }
  }

  // A buffer for the next write: a recycled one, or a new one while fewer
  // than `limit` exist; otherwise waits until an I/O thread returns one.
  // Rethrows an I/O thread's error.
  AlignedBuffer take_write_buffer(size_t limit) {
    std::unique_lock lk(wmu);
    wcv_done.wait(lk, [&] { return werr || !wfree.empty() || wbuffers < limit; });
    if (werr) std::rethrow_exception(werr);
    if (wfree.empty()) {
      wbuffers++;
      return AlignedBuffer();
    }
    AlignedBuffer b = std::move(wfree.back());
    wfree.pop_back();
    return b;
  }

  // Hands `len` bytes of `buf` to the I/O threads, to be written at `off`.
  void queue_write(AlignedBuffer buf, size_t len, uint64_t off) {
    {
      std::lock_guard lk(wmu);
      wqueue.push_back(StageWrite{std::move(buf), len, off, true});
    }
    wcv_work.notify_one();
  }

  // The file's blocks are allocated ahead of the writes, in steps that
  // double (64 MiB, then the file's size so far) up to 256 MiB, with
  // fallocate(). The cap bounds what a temporary file holds beyond its data
  // while it is written (or after a crash): many processes of one job
  // checkpoint to the same filesystem at once, and space they reserve but
  // do not use must not make another one's image fail. With
  // O_DIRECT, ext4 serialises writes that extend a file or allocate blocks
  // (inode lock held until the write completes), so two I/O threads issued
  // one write after the other, the device idling for the hand-off between
  // them (0.5-1 ms per 8 MiB write, measured), and the blocks were
  // allocated in whatever order the threads got the lock. Writes into
  // allocated (unwritten) blocks below the file size run concurrently and
  // land in one contiguous allocation. Buffered, writeback started from
  // several threads allocated ranges out of order too (12-20 extents for a
  // 251 MiB image; 3 with preallocation, 0.91 -> 1.02 of the device in a
  // rotated A/B). finish() cuts the file to its real size. Advice only:
  // where fallocate is unsupported or the space is short, writes allocate
  // as they go.
  static constexpr uint64_t kPreallocMin = 64u << 20;
  static constexpr uint64_t kPreallocMaxStep = 256u << 20;
  std::mutex amu;
  uint64_t alloc_end = 0;      // file size set by preallocation (0: none)
  bool prealloc_off = false;
  void preallocate(uint64_t need) {
    std::lock_guard lk(amu);
    if (prealloc_off || need <= alloc_end) return;
    uint64_t step = std::min(std::max(alloc_end, kPreallocMin), kPreallocMaxStep);
    uint64_t to = std::max(need, alloc_end + step);
    to = align_up(to, kStage);
    if (::fallocate(file.fd(), 0, static_cast<off_t>(alloc_end), static_cast<off_t>(to - alloc_end)) != 0) {
      prealloc_off = true;
      return;
    }
    alloc_end = to;
  }

  // Writes still queued or in progress on the I/O threads.
  size_t writes_pending() {
    std::lock_guard lk(wmu);
    return wqueue.size() + wbusy;
  }

  // Buffered and durable: start writeback of what was just written, so the
  // device works while later stages are still being copied into the page
  // cache and finish()'s fdatasync has little left to wait for. Advice only.
  void start_writeback(uint64_t off, size_t len) {
    if (!opt.sync || file.direct()) return;
    (void)::sync_file_range(file.fd(), static_cast<off_t>(off), static_cast<off_t>(len), SYNC_FILE_RANGE_WRITE);
  }

  void start_writers() {
    if (opt.threads == 0 || !writers.empty()) return;
    unsigned n = raw_jobs ? kRawWriters : kWriters;
    for (unsigned i = 0; i < n; i++) writers.emplace_back([this, i] { writer_loop(i); });
  }

  // Joins the I/O threads; queued writes are still done unless an error
  // stopped them (abort() removes the file anyway).
  void stop_writers() noexcept {
    {
      std::lock_guard lk(wmu);
      wstop = true;
    }
    wcv_work.notify_all();
    for (auto& t : writers) t.join();
    writers.clear();
  }

  // Waits until every handed-off stage is on the file; rethrows a write error.
  void wait_writes() {
    if (writers.empty()) return;
    std::unique_lock lk(wmu);
    wcv_done.wait(lk, [&] { return wqueue.empty() && wbusy == 0; });
    if (werr) std::rethrow_exception(werr);
  }

  // Writes the whole pages of the stage (all of it with `all`, which needs
  // cursor to be page aligned) and keeps a partial last page for later.
  void flush_stage(bool all) {
    size_t n = all ? stage_len : stage_len / kPageSize * kPageSize;
    if (n == 0) return;
    size_t tail = stage_len - n;
    if (writers.empty()) {
      file.pwrite_all(stage.data(), align_up(n), stage_off);
      if (tail) std::memmove(stage.data(), stage.data() + n, tail);
    } else {
      AlignedBuffer next = take_write_buffer(kStageBufs);
      next.reserve(kStage);
      if (tail) std::memcpy(next.data(), stage.data() + n, tail);
      queue_write(std::move(stage), align_up(n), stage_off);
      stage = std::move(next);
    }
    stage_len = tail;
    stage_off += n;
  }

  void stage_append(const uint8_t* p, size_t n) {
    if (stage.capacity() < kStage) {
      stage.reserve(kStage);
      std::lock_guard lk(wmu);
      if (wbuffers == 0) wbuffers = 1;
    }
    if (stage_len == 0) stage_off = cursor - (cursor % kPageSize);
    while (n > 0) {
      if (stage_len == kStage) flush_stage(false);
      size_t k = std::min(n, kStage - stage_len);
      std::memcpy(stage.data() + stage_len, p, k);
      stage_len += k;
      cursor += k;
      p += k;
      n -= k;
    }
  }

  void align_cursor() {
    static const uint8_t zeros[kPageSize] = {};
    size_t pad = align_up(cursor) - cursor;
    if (pad) stage_append(zeros, pad);
  }

  void sink(ChunkJob& j) {
    for (Piece& p : j.pieces) {
      size_t n = p.result.stored_len;
      if (p.result.codec == Codec::Raw) {
        align_cursor();
        p.result.file_offset = cursor;
        stage_append(p.stored, align_up(n));
      } else {
        p.result.file_offset = cursor;
        stage_append(p.stored, n);
      }
      stored_bytes += n;
      chunks.emplace_back(p.region, p.result);
    }
  }

  // Raw images with threads: a job's pieces lie back to back in its buffer,
  // each padded to a page, exactly as they are laid out in the file (raw
  // chunks start on page boundaries and the cursor is always page aligned
  // here), and were checksummed as they were copied in (hash_open). So the
  // job buffer itself goes to an I/O thread as one write, straight from
  // the calling thread: no worker or delivery thread in between, no second
  // copy. The job continues with a recycled buffer (taken in new_job()).
  void submit_raw() {
    ChunkJob& j = *cur;
    if (cursor % kPageSize != 0) throw Error(Errc::State, tmp + ": internal error: unaligned raw chunk offset");
    StageWrite w;
    w.off = cursor;
    size_t end = 0;
    for (Piece& p : j.pieces) {
      if (p.off != end) throw Error(Errc::State, tmp + ": internal error: raw chunks not contiguous in their job");
      // Only a buffer's last piece can end inside a page, and the capacity
      // is a whole number of pages, so the padding fits.
      std::memset(j.in.data() + p.off + p.len, 0, align_up(p.len) - p.len);
      p.result.file_offset = cursor + p.off;
      p.result.region_offset = p.region_offset;
      p.result.logical_len = static_cast<uint32_t>(p.len);
      p.result.stored_len = static_cast<uint32_t>(p.len);
      p.result.codec = Codec::Raw;
      stored_bytes += p.len;
      end = p.off + align_up(p.len);
    }
    if (end == 0) {
      // Nothing to write (not reached: jobs are submitted with chunks);
      // the buffer goes back so the count of buffers stays right.
      std::lock_guard lk(wmu);
      wfree.push_back(std::move(j.in));
      wcv_done.notify_all();
      return;
    }
    w.len = end;
    w.buf = std::move(j.in);
    for (const Piece& p : j.pieces) chunks.emplace_back(p.region, p.result);
    {
      std::lock_guard lk(wmu);
      wqueue.push_back(std::move(w));
    }
    wcv_work.notify_one();
    cursor += end;
    raw_spare = std::move(cur);
  }

  // Ends the open chunk (at a zero page): it becomes a closed piece and the
  // next chunk starts after it in the same buffer. The job is submitted
  // only once its buffer is full.
  // Raw images with threads: the open chunk's XXH3 is computed on the
  // calling thread while its bytes are still in the cache from the copy
  // (whole pages as they arrive, the rest when the chunk ends). A separate
  // pass on the I/O threads read every byte back from memory and, with
  // both threads' writes in flight at once, left the device idle while
  // they hashed (0.5-1 ms per pair of 8 MiB writes); on worker threads it
  // cost two thread hand-offs per buffer.
  std::unique_ptr<stream::Hasher> hasher;
  size_t hashed = 0;  // bytes of the open chunk fed to hasher
  void hash_open(size_t upto) {
    if (!raw_jobs || !cur || upto <= hashed) return;
    hasher->update(cur->in.data() + cur->base + hashed, upto - hashed);
    hashed = upto;
  }

  void cut_current() {
    if (!cur || cur->len == 0) return;
    cur->pieces.push_back(Piece{cur->base, cur->len, cur->region_offset, cur->region, {}, nullptr});
    if (raw_jobs) {
      hash_open(cur->len);
      cur->pieces.back().result.xxh3 = hasher->digest();
      hasher->reset();
      hashed = 0;
    }
    cur->base += align_up(cur->len);
    cur->len = 0;
    if (cur->base >= cur->cap) submit_job();
  }

  void submit_job() {
    if (raw_jobs) {
      submit_raw();
      cur.reset();
      return;
    }
    pipe->submit(std::move(cur));
    cur.reset();
  }

  // An empty job with a buffer of job_cap bytes. Raw images: the buffers
  // are the I/O threads' (kRawBufs of them at most, the one being filled
  // included; blocks while all are queued or being written).
  std::unique_ptr<ChunkJob> new_job() {
    std::unique_ptr<ChunkJob> j;
    if (raw_jobs) {
      j = raw_spare ? std::move(raw_spare) : std::make_unique<ChunkJob>();
      j->in = take_write_buffer(raw_bufs);
    } else {
      j = pipe->acquire();
    }
    j->in.reserve(job_cap);
    j->cap = take_cap();
    j->pieces.clear();
    j->base = 0;
    j->len = 0;
    return j;
  }

  // Ends the open chunk and sends the job (if it holds any chunk).
  void submit_current() {
    if (!cur) return;
    cut_current();
    if (cur && !cur->pieces.empty()) submit_job();
  }

  uint8_t* cur_end() { return cur->in.data() + cur->base + cur->len; }
  // Room left in the open chunk: it ends at chunk_size bytes or at the end
  // of the job buffer, whichever comes first.
  size_t cur_room() const { return std::min(opt.chunk_size - cur->len, cur->cap - cur->base - cur->len); }
  // Closes the open chunk once it is full (the job travels when its buffer is).
  void cut_if_full() {
    if (cur_room() == 0) cut_current();
  }

  void ensure_job() {
    if (cur) {
      // An empty job left over (after a zero page or a previous region) is
      // reused rather than returned: it still counts against max_in_flight.
      if (cur->len == 0) {
        cur->region_offset = pos;
        cur->region = static_cast<uint32_t>(regions.size() - 1);
      }
      return;
    }
    cur = new_job();
    cur->region_offset = pos;
    cur->region = static_cast<uint32_t>(regions.size() - 1);
  }

  // Flush: push out every complete page; a partial trailing page stays
  // buffered because chunks must start on page boundaries.
  void flush_whole_pages() {
    if (!cur) return;
    size_t whole = cur->len / kPageSize * kPageSize;
    if (whole == cur->len || pos == region_len) {
      submit_current();
      return;
    }
    if (whole == 0 && cur->pieces.empty()) return;
    // The partial page moves to the next job, which is taken after this
    // one is submitted (its size depends on where this one ends).
    size_t tail = cur->len - whole;
    uint8_t keep[kPageSize];
    std::memcpy(keep, cur->in.data() + cur->base + whole, tail);
    uint64_t tail_offset = cur->region_offset + whole;
    uint32_t tail_region = cur->region;
    cur->len = whole;
    submit_current();
    if (!cur) cur = new_job();
    std::memcpy(cur->in.data() + cur->base, keep, tail);
    cur->len = tail;
    cur->region_offset = tail_offset;
    cur->region = tail_region;
  }

  size_t pending() {
    size_t queued = raw_jobs ? writes_pending() : pipe->in_flight();
    return (cur ? cur->base + cur->len : 0) + queued * job_cap;
  }

  ~Impl() {
    pipe.reset();  // the delivery thread may still hand stages to the writers
    stop_writers();
  }
};

ImageWriter::ImageWriter(std::string final_path, const WriterOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.opt = options;
  if (final_path.empty()) throw Error(Errc::InvalidArgument, "image path must not be empty");
  if (m.opt.chunk_size < kMinChunk || m.opt.chunk_size > kMaxChunk || (m.opt.chunk_size & (m.opt.chunk_size - 1)) != 0)
    throw Error(Errc::InvalidArgument, "chunk size must be a power of two between 64 KiB and 64 MiB");
  if (m.opt.codec == Codec::Zstd && (m.opt.zstd_level < -7 || m.opt.zstd_level > 19))
    throw Error(Errc::InvalidArgument, "zstd level must be between -7 and 19");
  if (m.opt.threads > 256) throw Error(Errc::InvalidArgument, "at most 256 threads");
  m.path = std::move(final_path);
  m.tmp = m.path + kTempSuffix;
  m.file = stream::File::create(m.tmp, m.opt.mode, m.opt.o_direct);
  unsigned nenc = std::max(1u, m.opt.threads);
  for (unsigned i = 0; i < nenc; i++)
    m.encoders.push_back(std::make_unique<stream::Encoder>(m.opt.codec == Codec::Zstd ? 1 : 0, m.opt.zstd_level));
  m.raw_jobs = m.opt.codec == Codec::Raw && m.opt.threads > 0;
  if (m.raw_jobs) m.hasher = std::make_unique<stream::Hasher>();
  m.job_cap = m.raw_jobs ? std::max(m.opt.chunk_size, Impl::kStage) : m.opt.chunk_size;
  m.next_cap = m.opt.chunk_size;
  size_t inflight = m.opt.max_in_flight ? m.opt.max_in_flight : 2 * size_t(m.opt.threads) + 4;
  if (m.raw_jobs && m.opt.max_in_flight) {
    // max_in_flight counts chunks; a raw buffer holds job_cap / chunk_size of them.
    m.raw_bufs = std::max<size_t>(2, m.opt.max_in_flight * m.opt.chunk_size / m.job_cap);
  }
  // Raw images with threads bypass the pipeline (submit_raw): it gets no
  // threads of its own then.
  m.pipe = std::make_unique<stream::OrderedPipeline<ChunkJob>>(
      m.raw_jobs ? 0 : m.opt.threads, inflight, [&m](ChunkJob& j, unsigned w) { m.work(j, w); },
      [&m](ChunkJob& j) { m.sink(j); });
  m.start_writers();
}

ImageWriter::~ImageWriter() { abort(); }

void ImageWriter::abort() noexcept {
  if (!impl_) return;
  Impl& m = *impl_;
  if (m.finished) return;
  try {
    m.pipe.reset();  // joins threads; pending writes are dropped
  } catch (...) {
  }
  {
    std::lock_guard lk(m.wmu);
    m.wqueue.clear();  // the file is removed anyway
  }
  m.stop_writers();
  m.file = stream::File();
  if (!m.tmp.empty()) ::unlink(m.tmp.c_str());
  m.failed = true;
  m.finished = true;
}

void ImageWriter::set_header(const ImageMeta& meta_in) {
  Impl& m = *impl_;
  m.check_usable();
  if (m.header_done) throw Error(Errc::State, m.tmp + ": set_header called twice");
  ImageMeta meta = meta_in;
  if (meta.created_unix_ns == 0)
    meta.created_unix_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  try {
    std::vector<uint8_t> h = encode_header(meta, m.opt.chunk_size);
    AlignedBuffer buf(h.size());
    std::memcpy(buf.data(), h.data(), h.size());
    if (m.writers.empty()) {
      m.file.pwrite_all(buf.data(), h.size(), 0);
    } else {
      // The I/O threads write it while the caller gathers the first data
      // (an error surfaces from the next write() or finish()).
      {
        std::lock_guard lk(m.wmu);
        m.wqueue.push_back(Impl::StageWrite{std::move(buf), h.size(), 0, false});
      }
      m.wcv_work.notify_one();
    }
    m.header_size = h.size();
    m.header_xxh3 = get64(&h[kHeaderChecksumOff]);
    m.cursor = h.size();
    m.header_done = true;
  } catch (const Error& e) {
    if (e.errc() != Errc::InvalidArgument) m.failed = true;
    throw;
  }
}

void ImageWriter::begin_region(const RegionDesc& r_in) {
  Impl& m = *impl_;
  m.check_usable();
  if (!m.header_done) throw Error(Errc::State, m.tmp + ": set_header must be called before begin_region");
  if (m.in_region) throw Error(Errc::State, m.tmp + ": begin_region called while region " + std::to_string(m.regions.size() - 1) + " is open");
  RegionDesc r = r_in;
  if (r.end < r.start) throw Error(Errc::InvalidArgument, "region end is below its start");
  m.open_length = r.kind == RegionKind::Blob && r.start == 0 && r.end == 0 && r.length == 0 && !(r.region_flags & kRegionNoData);
  if (m.open_length) r.length = UINT64_MAX;
  else if (r.region_flags & kRegionNoData) r.length = 0;
  else if (r.length == 0) r.length = r.end - r.start;
  if (r.kind != RegionKind::Blob) {
    if (r.start % kPageSize != 0) throw Error(Errc::InvalidArgument, "memory region start must be page aligned");
    if (r.length > r.end - r.start) throw Error(Errc::InvalidArgument, "region length exceeds its address range");
  }
  if (r.name.size() > kMaxStringLen) throw Error(Errc::InvalidArgument, "region name longer than 4095 bytes");
  if (m.regions.size() >= 0xffffffffu) throw Error(Errc::InvalidArgument, "too many regions");
  m.regions.push_back(r);
  m.in_region = true;
  m.pos = 0;
  m.region_len = r.length;
}

size_t ImageWriter::write(InBuffer& in, Directive d) {
  Impl& m = *impl_;
  m.check_usable();
  if (!m.in_region) throw Error(Errc::State, m.tmp + ": write called outside a region");
  if (in.pos > in.size) throw Error(Errc::InvalidArgument, "input buffer pos is beyond its size");
  try {
    const auto* base = static_cast<const uint8_t*>(in.src);
    while (in.pos < in.size) {
      // Checksums what the previous step copied (whole pages only: a page
      // still being assembled may turn out to be zero and be dropped).
      if (m.cur) m.hash_open(m.cur->len / kPageSize * kPageSize);
      if (m.pos == m.region_len)
        throw Error(Errc::InvalidArgument, m.tmp + ": more data than the length of region " +
                                               std::to_string(m.regions.size() - 1) + " (" + std::to_string(m.region_len) + " bytes)");
      size_t avail = in.size - in.pos;
      const uint8_t* src = base + in.pos;
      if (!m.opt.elide_zero_pages) {
        m.ensure_job();
        size_t n = std::min<uint64_t>({avail, m.cur_room(), m.region_len - m.pos});
        std::memcpy(m.cur_end(), src, n);
        m.cur->len += n;
        m.pos += n;
        in.pos += n;
        m.bytes_in += n;
        m.cut_if_full();
        continue;
      }
      size_t in_page = m.pos % kPageSize;
      size_t page_left = static_cast<size_t>(std::min<uint64_t>(kPageSize - in_page, m.region_len - m.pos));
      if (in_page == 0 && avail >= page_left) {
        // Fast path: a whole page is in the caller's buffer; test it there
        // and skip it without copying if it is all zero.
        bool zero = stream::all_zero(src, page_left);
        if (zero && m.opt.codec == Codec::Zstd && m.cur && m.cur->len > 0) {
          // zstd stores a zero page in a few bytes; cutting the chunk costs
          // more (a new frame, a table entry). Only zero runs of 8 pages or
          // more (as far as the input shows) end a compressed chunk.
          size_t run = 1;
          while (run < 8 && (run + 1) * kPageSize <= avail && m.pos + (run + 1) * kPageSize <= m.region_len &&
                 stream::all_zero(src + run * kPageSize, kPageSize))
            run++;
          bool more_input = (run + 1) * kPageSize <= avail && m.pos + (run + 1) * kPageSize <= m.region_len;
          if (run < 8 && more_input) zero = false;
        }
        if (zero) {
          m.cut_current();
          m.pos += page_left;
          in.pos += page_left;
          m.bytes_in += page_left;
          m.zero_bytes += page_left;
          continue;
        }
        m.ensure_job();
        std::memcpy(m.cur_end(), src, page_left);
        m.cur->len += page_left;
        m.pos += page_left;
        in.pos += page_left;
        m.bytes_in += page_left;
        m.cut_if_full();
        continue;
      }
      // Slow path: the page arrives in pieces; assemble it in the chunk
      // buffer and test it once it is complete.
      m.ensure_job();
      size_t n = std::min(avail, page_left);
      std::memcpy(m.cur_end(), src, n);
      m.cur->len += n;
      m.pos += n;
      in.pos += n;
      m.bytes_in += n;
      if (n == page_left) {
        size_t page_bytes = in_page + n;
        size_t page_start = m.cur->len - page_bytes;
        if (stream::all_zero(m.cur->in.data() + m.cur->base + page_start, page_bytes)) {
          m.cur->len = page_start;
          m.zero_bytes += page_bytes;
          m.cut_current();  // an empty open chunk stays; ensure_job() moves its start
        } else {
          m.cut_if_full();
        }
      }
    }
    if (d == Directive::Continue) return m.pending();
    if (d == Directive::End) {
      end_region();
      return 0;
    }
    m.flush_whole_pages();
    m.pipe->drain();
    m.flush_stage(false);  // the I/O side is idle after drain(); a partial page stays
    m.wait_writes();
    return m.pending();
  } catch (const Error& e) {
    if (e.errc() != Errc::InvalidArgument) m.failed = true;
    throw;
  } catch (...) {
    m.failed = true;
    throw;
  }
}

void ImageWriter::end_region() {
  Impl& m = *impl_;
  m.check_usable();
  if (!m.in_region) throw Error(Errc::State, m.tmp + ": end_region called without an open region");
  if (m.open_length) {
    m.regions.back().length = m.pos;
    m.region_len = m.pos;
    m.open_length = false;
  }
  if (m.pos != m.region_len)
    throw Error(Errc::InvalidArgument, m.tmp + ": region " + std::to_string(m.regions.size() - 1) + " got " +
                                           std::to_string(m.pos) + " of its " + std::to_string(m.region_len) + " bytes");
  try {
    // Raw jobs keep filling across region ends (pieces carry their region),
    // so the many small mappings of a process still make large writes.
    if (m.raw_jobs) m.cut_current();
    else m.submit_current();
  } catch (...) {
    m.failed = true;
    throw;
  }
  m.in_region = false;
}

void ImageWriter::set_content_hash(uint64_t h) {
  Impl& m = *impl_;
  m.check_usable();
  if (m.regions.empty()) throw Error(Errc::State, m.tmp + ": set_content_hash called before any region");
  m.regions.back().content_xxh3 = h;
  m.regions.back().region_flags |= kRegionHasContentHash;
}

void ImageWriter::add_region(const RegionDesc& region, const void* data, size_t len) {
  begin_region(region);
  InBuffer in{data, len, 0};
  write(in, Directive::Continue);
  end_region();
}

WriteSummary ImageWriter::finish() {
  Impl& m = *impl_;
  m.check_usable();
  if (!m.header_done) throw Error(Errc::State, m.tmp + ": finish called before set_header");
  if (m.in_region) throw Error(Errc::State, m.tmp + ": finish called while a region is open");
  try {
    m.submit_current();
    m.pipe->drain();
    m.align_cursor();
    m.flush_stage(true);
    // Every chunk is queued and the cursor is final: the table and trailer
    // can go out while the last data writes are still in flight (waiting
    // first cost a device round trip per image).
    Table t;
    t.regions.resize(m.regions.size());
    for (size_t i = 0; i < m.regions.size(); i++) t.regions[i].desc = m.regions[i];
    t.chunks.reserve(m.chunks.size());
    for (size_t k = 0; k < m.chunks.size(); k++) {
      auto& [ri, c] = m.chunks[k];
      RegionInfo& r = t.regions[ri];
      if (r.chunk_count == 0) r.first_chunk = k;
      r.chunk_count++;
      t.chunks.push_back(c);
    }
    // Regions without chunks still need a consistent first_chunk.
    uint64_t next = 0;
    for (RegionInfo& r : t.regions) {
      if (r.chunk_count == 0) r.first_chunk = next;
      next = r.first_chunk + r.chunk_count;
    }
    std::vector<uint8_t> table = encode_table(t);
    uint64_t table_off = m.cursor;
    uint64_t end = align_up(table_off + table.size() + kTrailerSize);
    uint64_t logical = 0;
    for (const RegionDesc& r : m.regions) logical += r.length;
    Trailer tr;
    tr.table_offset = table_off;
    tr.table_size = table.size();
    tr.table_xxh3 = stream::xxh3(table.data(), table.size());
    tr.header_xxh3 = m.header_xxh3;
    tr.logical_bytes = logical;
    tr.file_size = end;
    AlignedBuffer tail(end - table_off);
    std::memset(tail.data(), 0, end - table_off);
    std::memcpy(tail.data(), table.data(), table.size());
    encode_trailer(tr, tail.data() + (end - table_off - kTrailerSize));
    if (m.writers.empty()) {
      m.file.pwrite_all(tail.data(), end - table_off, table_off);
    } else {
      {
        std::lock_guard lk(m.wmu);
        m.wqueue.push_back(Impl::StageWrite{std::move(tail), end - table_off, table_off, false});
      }
      m.wcv_work.notify_one();
    }
    m.wait_writes();
    if (m.alloc_end > end && ::ftruncate(m.file.fd(), static_cast<off_t>(end)) != 0)
      throw_errno("cannot truncate " + m.tmp + " to " + std::to_string(end) + " bytes", errno);
    if (m.opt.sync) m.file.sync();
    m.file.close();
    stream::rename_durable(m.tmp, m.path, m.opt.sync);
    m.finished = true;
    m.pipe.reset();
    WriteSummary s;
    s.path = m.path;
    s.file_size = end;
    uint8_t tb[kTrailerSize];
    encode_trailer(tr, tb);
    s.root_xxh3 = get64(tb + 56);
    s.logical_bytes = logical;
    s.stored_bytes = m.stored_bytes;
    s.zero_bytes = m.zero_bytes;
    s.regions = m.regions.size();
    s.chunks = m.chunks.size();
    return s;
  } catch (...) {
    m.failed = true;
    throw;
  }
}

uint64_t ImageWriter::bytes_in() const noexcept { return impl_->bytes_in; }
const std::string& ImageWriter::path() const noexcept { return impl_->path; }
const std::string& ImageWriter::temp_path() const noexcept { return impl_->tmp; }
size_t ImageWriter::recommended_input_size(const WriterOptions& options) noexcept { return options.chunk_size; }

}  // namespace ckpt::image
