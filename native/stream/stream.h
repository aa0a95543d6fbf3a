// The streaming core: caller-owned buffer views, aligned buffers, a file
// that writes large aligned blocks (optionally O_DIRECT, with a clean
// fallback), chunk codecs (raw / zstd + XXH3-64), and an ordered,
// multi-threaded chunk pipeline with bounded memory.
//
// The image writer and reader (native/image) are built on these; other
// code normally uses ImageWriter/ImageReader rather than this header.
//
// The buffer views follow zstd's streaming API (ZSTD_inBuffer /
// ZSTD_outBuffer): the caller owns the memory, the callee advances `pos`.
//
// No Node dependency; only libzstd and header-only xxHash. Errors are thrown
// as ckpt::Error.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ckpt::stream {

// Input view: bytes [src + pos, src + size) are still to be consumed.
struct InBuffer {
  const void* src = nullptr;
  size_t size = 0;
  size_t pos = 0;
};

// Output view: bytes are produced into [dst + pos, dst + size).
struct OutBuffer {
  void* dst = nullptr;
  size_t size = 0;
  size_t pos = 0;
};

// What the caller wants done with buffered data (ZSTD_EndDirective).
enum class Directive {
  Continue,  // buffer as needed for efficiency
  Flush,     // push out everything given so far
  End,       // flush and close the current unit (region / frame)
};

inline constexpr size_t kAlign = 4096;
inline constexpr size_t align_up(size_t n, size_t a = kAlign) { return (n + a - 1) / a * a; }

// Recommended sizes (ZSTD_CStreamInSize() style).
size_t recommended_chunk_size() noexcept;       // logical bytes per chunk (1 MiB)
size_t recommended_write_batch() noexcept;      // bytes per pwritev (8 MiB)
unsigned recommended_threads() noexcept;        // hardware threads, at least 1

// XXH3-64 with seed 0 (the only checksum the format uses).
uint64_t xxh3(const void* data, size_t len) noexcept;

// Streaming XXH3-64 (seed 0) over a sequence of pieces; equals xxh3() of
// their concatenation.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* data, size_t len) noexcept;
  void update_zeros(uint64_t len) noexcept;  // as if `len` zero bytes were given
  uint64_t digest() const noexcept;
  void reset() noexcept;  // starts over (as if newly constructed)

 private:
  void* st_;
};

// True when all `len` bytes are zero (len a multiple of 8 is fastest).
bool all_zero(const void* data, size_t len) noexcept;

// A heap buffer aligned to kAlign whose capacity is a multiple of kAlign.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t capacity);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& o) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint8_t* data() noexcept { return p_; }
  const uint8_t* data() const noexcept { return p_; }
  size_t capacity() const noexcept { return cap_; }
  void reserve(size_t capacity);  // grows (contents not kept)

 private:
  uint8_t* p_ = nullptr;
  size_t cap_ = 0;
};

// A file opened for sequential aligned writing or random reading.
class File {
 public:
  File() = default;
  ~File();
  File(File&& o) noexcept;
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Creates/truncates `path` for writing. With o_direct, tries O_DIRECT and
  // silently falls back to buffered I/O where the filesystem refuses it.
  static File create(const std::string& path, mode_t mode, bool o_direct);
  static File open_read(const std::string& path, bool o_direct = false);

  int fd() const noexcept { return fd_; }
  bool direct() const noexcept { return direct_; }
  const std::string& path() const noexcept { return path_; }

  // Writes every byte (retrying short writes and EINTR). With O_DIRECT the
  // offsets, lengths and buffers must be kAlign-aligned; if the kernel still
  // says EINVAL, O_DIRECT is turned off for this file and the write retried.
  void pwritev_all(const struct iovec* iov, int iovcnt, uint64_t offset);
  void pwrite_all(const void* data, size_t len, uint64_t offset);
  // Reads exactly len bytes or throws Truncated naming the offset.
  void pread_exact(void* data, size_t len, uint64_t offset) const;
  // Reads up to len bytes; returns how many (short only at end of file).
  size_t pread_some(void* data, size_t len, uint64_t offset) const;
  // Scatter read of one contiguous file range (any number of pieces);
  // returns the bytes read (short only at end of file).
  size_t preadv_some(const struct iovec* iov, size_t iovcnt, uint64_t offset) const;
  uint64_t size() const;
  void sync();  // fdatasync; throws Io
  void close();

 private:
  int fd_ = -1;
  // Atomic: several I/O threads may write one file at distinct offsets, and
  // any of them may turn O_DIRECT off (see pwritev_all).
  std::atomic<bool> direct_{false};
  std::string path_;
};

// fsync() of the directory holding `path` (makes a rename durable).
void sync_parent_dir(const std::string& path);
// rename() + sync_parent_dir(); throws Io naming both paths.
void rename_durable(const std::string& from, const std::string& to, bool sync = true);
// Writes `data` to `path` atomically: "<path>.tmp", fsync, rename, fsync dir.
void write_file_atomic(const std::string& path, const void* data, size_t len, mode_t mode = 0644,
                       bool sync = true);

// Chunk codec: encodes one chunk as raw or zstd. An Encoder keeps its zstd
// context between chunks (reuse it; like ZSTD_CCtx).
class Encoder {
 public:
  Encoder(int codec /* 0 raw, 1 zstd */, int level);
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;
  // Worst-case stored size for `len` logical bytes.
  static size_t bound(size_t len) noexcept;
  // Encodes src into dst (capacity >= bound(len)). Returns stored length and
  // sets codec_out to the codec actually used: zstd output that is not
  // smaller than the input is stored raw instead.
  size_t encode(const void* src, size_t len, void* dst, size_t cap, int& codec_out);

 private:
  int codec_;
  int level_;
  void* cctx_ = nullptr;
};

class Decoder {
 public:
  Decoder();
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  // Decodes exactly expected_len bytes; returns false if the stored bytes do
  // not decode to exactly that many bytes.
  bool decode(int codec, const void* src, size_t len, void* dst, size_t expected_len);

 private:
  void* dctx_ = nullptr;
};

// Ordered parallel pipeline: jobs are submitted in sequence, processed by
// `threads` workers in any order, and delivered to `sink` strictly in
// submission order on one delivery thread. With threads == 0 a job is
// processed and delivered inside submit(). At most `max_in_flight` jobs
// exist at once; submit() blocks beyond that (bounded memory).
template <class Job>
class OrderedPipeline {
 public:
  using Work = std::function<void(Job&, unsigned worker)>;
  using Sink = std::function<void(Job&)>;

  OrderedPipeline(unsigned threads, size_t max_in_flight, Work work, Sink sink);
  ~OrderedPipeline();  // drains (errors are dropped; call drain() to see them)

  // Takes a job slot (blocks while max_in_flight are busy). Recycled jobs keep
  // their buffers, so steady state allocates nothing.
  std::unique_ptr<Job> acquire();
  void submit(std::unique_ptr<Job> job);
  // Waits until every submitted job was delivered; rethrows the first error
  // raised by work or sink.
  void drain();
  size_t in_flight() const;

 private:
  struct State;
  std::shared_ptr<State> st_;
};

}  // namespace ckpt::stream

#include "stream/pipeline_impl.h"
