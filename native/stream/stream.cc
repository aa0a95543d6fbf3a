// Streaming core: buffers, files, codecs. See stream.h.
#include "stream/stream.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/errors.h"

namespace ckpt::stream {

size_t recommended_chunk_size() noexcept { return 1u << 20; }
size_t recommended_write_batch() noexcept { return 8u << 20; }
unsigned recommended_threads() noexcept {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

uint64_t xxh3(const void* data, size_t len) noexcept { return XXH3_64bits(data, len); }

Hasher::Hasher() : st_(XXH3_createState()) {
  if (!st_) throw Error(Errc::Io, "out of memory creating a hash state");
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(st_));
}
Hasher::~Hasher() { XXH3_freeState(static_cast<XXH3_state_t*>(st_)); }
void Hasher::update(const void* data, size_t len) noexcept { XXH3_64bits_update(static_cast<XXH3_state_t*>(st_), data, len); }
void Hasher::update_zeros(uint64_t len) noexcept {
  static const uint8_t zeros[65536] = {};
  while (len > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, sizeof zeros));
    update(zeros, n);
    len -= n;
  }
}
uint64_t Hasher::digest() const noexcept { return XXH3_64bits_digest(static_cast<XXH3_state_t*>(st_)); }
void Hasher::reset() noexcept { XXH3_64bits_reset(static_cast<XXH3_state_t*>(st_)); }

bool all_zero(const void* data, size_t len) noexcept {
  const auto* p = static_cast<const uint8_t*>(data);
  size_t i = 0;
  // Word-at-a-time OR over 64-byte blocks: the compiler vectorises this, and
  // a non-zero page usually exits within its first block.
  for (; i + 64 <= len; i += 64) {
    uint64_t w[8];
    std::memcpy(w, p + i, 64);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return false;
  }
  for (; i < len; i++)
    if (p[i] != 0) return false;
  return true;
}

// ---------------------------------------------------------------- buffers

AlignedBuffer::AlignedBuffer(size_t capacity) { reserve(capacity); }
AlignedBuffer::~AlignedBuffer() { std::free(p_); }
AlignedBuffer::AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), cap_(o.cap_) {
  o.p_ = nullptr;
  o.cap_ = 0;
}
AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(p_);
    p_ = o.p_;
    cap_ = o.cap_;
    o.p_ = nullptr;
    o.cap_ = 0;
  }
  return *this;
}
void AlignedBuffer::reserve(size_t capacity) {
  if (capacity <= cap_) return;
  size_t cap = align_up(capacity);
  // Buffers of 2 MiB or more (write stages, big chunks) are placed on huge
  // page boundaries and advised as huge pages: a fresh 8 MiB stage then
  // costs 4 page faults instead of 2048. With 4 KiB pages the faults of the
  // writer's first buffers took ~50 ms, a quarter of a 250 MiB image write.
  constexpr size_t kHuge = size_t(2) << 20;
  size_t align = cap >= kHuge / 2 ? kHuge : kAlign;
  if (align == kHuge) cap = align_up(cap, kHuge);
  void* p = nullptr;
  if (posix_memalign(&p, align, cap) != 0) throw Error(Errc::Io, "out of memory allocating " + std::to_string(cap) + " bytes");
#ifdef MADV_HUGEPAGE
  if (align == kHuge) (void)::madvise(p, cap, MADV_HUGEPAGE);  // advice only; failure is harmless
#endif
  std::free(p_);
  p_ = static_cast<uint8_t*>(p);
  cap_ = cap;
}

// ---------------------------------------------------------------- files

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}
File::File(File&& o) noexcept : fd_(o.fd_), direct_(o.direct_.load()), path_(std::move(o.path_)) { o.fd_ = -1; }
File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    direct_ = o.direct_.load();
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

File File::create(const std::string& path, mode_t mode, bool o_direct) {
  File f;
  f.path_ = path;
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (o_direct) {
    f.fd_ = ::open(path.c_str(), flags | O_DIRECT, mode);
    // tmpfs and some FUSE filesystems refuse O_DIRECT with EINVAL: fall back
    // to buffered I/O rather than fail the checkpoint.
    if (f.fd_ >= 0) f.direct_ = true;
    else if (errno != EINVAL) throw_errno("cannot create " + path, errno);
  }
  if (f.fd_ < 0) {
    f.fd_ = ::open(path.c_str(), flags, mode);
    if (f.fd_ < 0) throw_errno("cannot create " + path, errno);
  }
  return f;
}

File File::open_read(const std::string& path, bool o_direct) {
  File f;
  f.path_ = path;
  int flags = O_RDONLY | O_CLOEXEC;
  if (o_direct) {
    f.fd_ = ::open(path.c_str(), flags | O_DIRECT);
    if (f.fd_ >= 0) f.direct_ = true;
    else if (errno != EINVAL) throw_errno("cannot open " + path, errno);
  }
  if (f.fd_ < 0) {
    f.fd_ = ::open(path.c_str(), flags);
    if (f.fd_ < 0) throw_errno("cannot open " + path, errno);
  }
  return f;
}

namespace {
// Skips `n` transferred bytes of the iovec array from element `idx` on
// (partial transfers of pwritev/preadv).
void advance_iov(std::vector<struct iovec>& iov, size_t& idx, size_t n) {
  while (n > 0 && idx < iov.size()) {
    if (n >= iov[idx].iov_len) {
      n -= iov[idx].iov_len;
      idx++;
    } else {
      iov[idx].iov_base = static_cast<uint8_t*>(iov[idx].iov_base) + n;
      iov[idx].iov_len -= n;
      n = 0;
    }
  }
}
}  // namespace

void File::pwritev_all(const struct iovec* iov_in, int iovcnt, uint64_t offset) {
  std::vector<struct iovec> iov(iov_in, iov_in + iovcnt);
  size_t idx = 0;
  while (idx < iov.size()) {
    int n = static_cast<int>(std::min<size_t>(iov.size() - idx, IOV_MAX));
    ssize_t w = ::pwritev(fd_, iov.data() + idx, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && direct_) {
        // The filesystem accepted O_DIRECT at open but not this request:
        // continue buffered.
        int fl = ::fcntl(fd_, F_GETFL);
        if (fl >= 0 && ::fcntl(fd_, F_SETFL, fl & ~O_DIRECT) == 0) {
          direct_ = false;
          continue;
        }
      }
      throw_errno("write to " + path_ + " at offset " + std::to_string(offset) + " failed", errno);
    }
    if (w == 0) throw Error(Errc::Io, "write to " + path_ + " at offset " + std::to_string(offset) + " made no progress");
    offset += static_cast<uint64_t>(w);
    advance_iov(iov, idx, static_cast<size_t>(w));
  }
}

void File::pwrite_all(const void* data, size_t len, uint64_t offset) {
  struct iovec v{const_cast<void*>(data), len};
  pwritev_all(&v, 1, offset);
}

size_t File::pread_some(void* data, size_t len, uint64_t offset) const {
  size_t got = 0;
  auto* p = static_cast<uint8_t*>(data);
  while (got < len) {
    ssize_t r = ::pread(fd_, p + got, len - got, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("read of " + path_ + " at offset " + std::to_string(offset + got) + " failed", errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

size_t File::preadv_some(const struct iovec* iov_in, size_t iovcnt, uint64_t offset) const {
  std::vector<struct iovec> iov(iov_in, iov_in + iovcnt);
  size_t idx = 0, got = 0;
  while (idx < iov.size()) {
    int n = static_cast<int>(std::min<size_t>(iov.size() - idx, IOV_MAX));
    size_t want = 0;
    for (int i = 0; i < n; i++) want += iov[idx + i].iov_len;
    ssize_t r = ::preadv(fd_, iov.data() + idx, n, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("read of " + path_ + " at offset " + std::to_string(offset + got) + " failed", errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
    // A short read of a regular file is its end (and with O_DIRECT the next
    // offset would not be aligned).
    if (static_cast<size_t>(r) < want) break;
    advance_iov(iov, idx, static_cast<size_t>(r));
  }
  return got;
}

void File::pread_exact(void* data, size_t len, uint64_t offset) const {
  size_t got = pread_some(data, len, offset);
  if (got != len)
    throw Error(Errc::Truncated, path_ + ": file ends at offset " + std::to_string(offset + got) + ", expected " +
                                     std::to_string(len) + " bytes at offset " + std::to_string(offset));
}

uint64_t File::size() const {
  struct stat st{};
  if (::fstat(fd_, &st) != 0) throw_errno("stat " + path_, errno);
  return static_cast<uint64_t>(st.st_size);
}

void File::sync() {
  if (::fdatasync(fd_) != 0) throw_errno("fsync " + path_, errno);
}

void File::close() {
  if (fd_ >= 0) {
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0 && errno != EINTR) throw_errno("close " + path_, errno);
  }
}

static std::string parent_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void sync_parent_dir(const std::string& path) {
  std::string dir = parent_of(path);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory " + dir, errno);
  // Some filesystems (e.g. certain FUSE mounts) cannot fsync a directory;
  // EINVAL there means "nothing to do", not data loss.
  if (::fsync(fd) != 0 && errno != EINVAL) {
    int e = errno;
    ::close(fd);
    throw_errno("fsync directory " + dir, e);
  }
  ::close(fd);
}

void rename_durable(const std::string& from, const std::string& to, bool sync) {
  if (::rename(from.c_str(), to.c_str()) != 0) throw_errno("rename " + from + " to " + to, errno);
  if (sync) sync_parent_dir(to);
}

void write_file_atomic(const std::string& path, const void* data, size_t len, mode_t mode, bool sync) {
  std::string tmp = path + ".tmp";
  {
    File f = File::create(tmp, mode, false);
    try {
      f.pwrite_all(data, len, 0);
      if (sync && ::fsync(f.fd()) != 0) throw_errno("fsync " + tmp, errno);
      f.close();
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  rename_durable(tmp, path, sync);
}

// ---------------------------------------------------------------- codecs

Encoder::Encoder(int codec, int level) : codec_(codec), level_(level) {
  if (codec_ == 1) {
    cctx_ = ZSTD_createCCtx();
    if (!cctx_) throw Error(Errc::Io, "out of memory creating a zstd context");
    ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_compressionLevel, level_);
    // The chunk's length is known; recording it lets a reader check it and
    // makes the frame self-describing. No zstd checksum: XXH3 covers it.
    ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(static_cast<ZSTD_CCtx*>(cctx_), ZSTD_c_checksumFlag, 0);
  }
}
Encoder::~Encoder() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

size_t Encoder::bound(size_t len) noexcept { return std::max(len, ZSTD_compressBound(len)); }

size_t Encoder::encode(const void* src, size_t len, void* dst, size_t cap, int& codec_out) {
  if (codec_ == 1) {
    size_t n = ZSTD_compress2(static_cast<ZSTD_CCtx*>(cctx_), dst, cap, src, len);
    if (ZSTD_isError(n)) throw Error(Errc::Internal, std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
    if (n < len) {
      codec_out = 1;
      return n;
    }
  }
  if (cap < len) throw Error(Errc::Internal, "encode: output buffer too small");
  std::memcpy(dst, src, len);
  codec_out = 0;
  return len;
}

Decoder::Decoder() {
  dctx_ = ZSTD_createDCtx();
  if (!dctx_) throw Error(Errc::Io, "out of memory creating a zstd context");
}
Decoder::~Decoder() { ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_)); }

bool Decoder::decode(int codec, const void* src, size_t len, void* dst, size_t expected_len) {
  if (codec == 0) {
    if (len != expected_len) return false;
    std::memcpy(dst, src, len);
    return true;
  }
  if (codec != 1) return false;
  unsigned long long content = ZSTD_getFrameContentSize(src, len);
  if (content != expected_len) return false;
  size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), dst, expected_len, src, len);
  return !ZSTD_isError(n) && n == expected_len;
}

}  // namespace ckpt::stream
