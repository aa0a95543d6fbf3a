// DMTCP image reader (see dmtcp_image.h). Offsets follow the measured
// layout of the v4.0 header and area records.
#include "image/dmtcp_image.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "common/errors.h"
#include "image/format_codec.h"
#include "stream/stream.h"

namespace ckpt::image::dmtcp {

using detail::get32;
using detail::get64;

namespace {

constexpr char kSigPrefix[] = "DMTCP_CHECKPOINT_IMAGE_v";  // 24 bytes
constexpr char kSigV4[] = "DMTCP_CHECKPOINT_IMAGE_v4.0\n";  // + NUL: bytes 0..28
constexpr char kSigV5[] = "DMTCP_CHECKPOINT_IMAGE_v5.0\n";
constexpr uint64_t kPropZero = 0x1, kPropParent = 0x2, kPropChild = 0x4;
// Largest data length we accept for one record: 2^48 is beyond any x86_64
// user address range, so anything larger is corruption, and the bound keeps
// offset arithmetic far from overflow.
constexpr uint64_t kMaxRecordData = uint64_t(1) << 48;

std::string at(const std::string& path, uint64_t off) { return path + ": at offset " + std::to_string(off) + ": "; }

UniquePid read_upid(const uint8_t* p) {
  UniquePid u;
  u.hostid = get64(p);
  u.time = get64(p + 8);
  u.pid = static_cast<int32_t>(get32(p + 16));
  u.generation = get32(p + 20);
  return u;
}

std::string cstr(const uint8_t* p, size_t max) {
  size_t n = 0;
  while (n < max && p[n] != 0) n++;
  return std::string(reinterpret_cast<const char*>(p), n);
}

}  // namespace

std::string UniquePid::text() const {
  char b[64];
  std::snprintf(b, sizeof b, "%llx-%d-%llx", static_cast<unsigned long long>(hostid), pid, static_cast<unsigned long long>(time));
  return b;
}

Encoding sniff(const uint8_t* p, size_t len) {
  if (len >= 24 && std::memcmp(p, kSigPrefix, 24) == 0) return Encoding::Raw;
  if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b) return Encoding::Gzip;
  if (len >= 2 && p[0] == 0x1f && p[1] == 0x9d) return Encoding::ForeignCompressed;
  return Encoding::NotDmtcp;
}

Header parse_header(const uint8_t* p, size_t len, const std::string& path) {
  if (len < kHeaderSize)
    throw Error(Errc::Truncated, at(path, len) + "file ends inside the 4096-byte DMTCP header");
  if (std::memcmp(p, kSigPrefix, 24) != 0) throw Error(Errc::Corrupt, at(path, 0) + "not a DMTCP checkpoint image (bad magic)");
  Header h;
  size_t shift = 0;
  if (std::memcmp(p, kSigV4, 29) == 0) {
    h.version = "v4.0";
  } else if (std::memcmp(p, kSigV5, 29) == 0) {
    // Later header variant: 16 bootstrap bytes after the signature, every
    // later field moved by 16. Accept it only if the bootstrap checks out.
    if (get32(p + 32) != 4096 || get32(p + 36) != 1 || get32(p + 40) != 8 || get32(p + 44) != 0x01020304)
      throw Error(Errc::Unsupported, at(path, 32) + "DMTCP v5.0 image header with unknown layout");
    h.version = "v5.0";
    shift = 16;
  } else {
    std::string v = cstr(p + 24, 8);
    if (!v.empty() && v.back() == '\n') v.pop_back();
    throw Error(Errc::Unsupported, at(path, 24) + "DMTCP image version '" + v + "' is not supported (only v4.0 images, DMTCP 4.x/5.x)");
  }
  const uint8_t* b = p + shift;
  h.upid = read_upid(b + 32);
  h.uppid = read_upid(b + 56);
  h.comp_group = read_upid(b + 80);
  h.generation = h.comp_group.generation;
  h.pid = static_cast<int32_t>(get32(b + 104));
  h.ppid = static_cast<int32_t>(get32(b + 108));
  h.sid = static_cast<int32_t>(get32(b + 112));
  h.gid = static_cast<int32_t>(get32(b + 116));
  h.fgid = static_cast<int32_t>(get32(b + 120));
  h.is_root = get32(b + 124);
  h.num_peers = get32(b + 128);
  h.elf_type = get32(b + 132);
  for (int i = 0; i < 4; i++) h.vdso_offsets[i] = get64(b + 136 + 8 * i);
  h.saved_brk = get64(b + 232);
  h.end_of_stack = get64(b + 240);
  h.procname = cstr(b + 256, 1024);
  h.proc_self_exe = cstr(b + 1280, std::min<size_t>(1024, kHeaderSize - 1280 - shift));
  if (h.num_peers == 0 || h.num_peers > 10'000'000)
    throw Error(Errc::Corrupt, at(path, 128 + shift) + "implausible numPeers " + std::to_string(h.num_peers));
  if (h.elf_type > 1) throw Error(Errc::Corrupt, at(path, 132 + shift) + "invalid elfType " + std::to_string(h.elf_type));
  if (h.upid.pid <= 0) throw Error(Errc::Corrupt, at(path, 48 + shift) + "invalid process id in upid");
  return h;
}

uint64_t record_data_len(const uint8_t* rec, bool& end) {
  uint64_t addr = get64(rec), size = get64(rec + 16);
  end = addr == 0 && size == UINT64_MAX;
  if (end) return 0;
  uint64_t props = get64(rec + 80);
  if (props & (kPropParent | kPropZero)) return 0;
  auto mmap_file_size = static_cast<int64_t>(get64(rec + 72));
  if (mmap_file_size > 0 && rec[88] == '/') return static_cast<uint64_t>(mmap_file_size);
  return size;
}

// ---------------------------------------------------------------- walker

StreamWalker::StreamWalker(std::string path) : path_(std::move(path)) {}

void StreamWalker::feed(const uint8_t* p, size_t n) {
  while (n > 0) {
    if (state_ == State::Done) {
      throw Error(Errc::Corrupt, at(path_, off_) + "data after the end marker");
    }
    if (state_ == State::Data) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(skip_, n));
      skip_ -= k;
      off_ += k;
      p += k;
      n -= k;
      if (skip_ == 0) state_ = State::Record;
      continue;
    }
    size_t want = state_ == State::Header ? 2 * kHeaderSize : kRecordSize;
    size_t k = std::min(n, want - buf_.size());
    buf_.append(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    if (buf_.size() < want) continue;
    const auto* b = reinterpret_cast<const uint8_t*>(buf_.data());
    if (state_ == State::Header) {
      header_ = parse_header(b, kHeaderSize, path_);
      if (std::memcmp(b, b + kHeaderSize, kHeaderSize) != 0)
        throw Error(Errc::Corrupt, at(path_, kHeaderSize) + "the second header copy differs from the first");
      off_ += want;
      state_ = State::Record;
    } else {
      bool end = false;
      uint64_t len = record_data_len(b, end);
      uint64_t rec_off = off_;
      off_ += want;
      if (end) {
        state_ = State::Done;
      } else {
        if (len > kMaxRecordData) throw Error(Errc::Corrupt, at(path_, rec_off) + "area record with an impossible data length");
        w_.records++;
        if (!(get64(b + 80) & kPropChild)) w_.top_level++;
        w_.data_bytes += len;
        skip_ = len;
        state_ = len ? State::Data : State::Record;
      }
    }
    buf_.clear();
  }
  w_.logical_size = off_;
}

void StreamWalker::finish() {
  w_.logical_size = off_;
  if (state_ != State::Done)
    throw Error(Errc::Truncated, at(path_, off_) + "image ends before its end marker (truncated or still being written)");
}

// ---------------------------------------------------------------- files

namespace {

// inflate_file() over an open file of `size` bytes.
void inflate_open_file(const stream::File& f, uint64_t size, const std::function<bool(const uint8_t*, size_t)>& sink,
                       const std::function<void(uint64_t)>& progress = {}, size_t block = size_t{1} << 18) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) throw Error(Errc::Io, "zlib initialisation failed");
  struct Guard {
    z_stream* z;
    ~Guard() { inflateEnd(z); }
  } guard{&zs};
  std::vector<uint8_t> in(block), out(block);
  uint64_t off = 0;
  bool member_done = false;
  for (;;) {
    if (zs.avail_in == 0) {
      if (off >= size) break;
      size_t n = f.pread_some(in.data(), in.size(), off);
      if (n == 0) break;
      off += n;
      zs.next_in = in.data();
      zs.avail_in = static_cast<uInt>(n);
      if (progress) progress(off);
    }
    if (member_done) {
      // Another member may follow (gzip -d accepts concatenations); zero
      // padding after the last member is ignored like gzip does.
      if (zs.next_in[0] == 0) {
        for (uInt i = 0; i < zs.avail_in; i++)
          if (zs.next_in[i] != 0)
            throw Error(Errc::Corrupt, at(f.path(), off - zs.avail_in + i) + "garbage after the gzip stream");
        zs.avail_in = 0;
        continue;
      }
      inflateReset(&zs);
      member_done = false;
    }
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    int rc = inflate(&zs, Z_NO_FLUSH);
    size_t produced = out.size() - zs.avail_out;
    if (produced && !sink(out.data(), produced)) return;
    if (rc == Z_STREAM_END) {
      member_done = true;
      continue;
    }
    if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs.avail_in == 0))
      throw Error(Errc::Corrupt, at(f.path(), off - zs.avail_in) + "gzip data is corrupt (" + (zs.msg ? zs.msg : "inflate error") + ")");
  }
  if (!member_done)
    throw Error(Errc::Truncated, at(f.path(), size) + "gzip stream ends early (the image is truncated)");
}

}  // namespace

void inflate_file(const std::string& path, const std::function<bool(const uint8_t*, size_t)>& sink,
                  const std::function<void(uint64_t, uint64_t)>& progress, size_t block) {
  stream::File f = stream::File::open_read(path);
  uint64_t size = f.size();
  inflate_open_file(f, size, sink, progress ? std::function<void(uint64_t)>([&](uint64_t off) { progress(off, size); }) : nullptr, block);
}

Probe probe(const std::string& path) {
  Probe pr;
  stream::File f = stream::File::open_read(path);
  pr.file_size = f.size();
  uint8_t head[2 * kHeaderSize];
  size_t got = f.pread_some(head, sizeof head, 0);
  pr.encoding = sniff(head, got);
  if (pr.encoding == Encoding::Raw) {
    pr.header = parse_header(head, got, path);
    pr.second_header_ok = got == sizeof head && std::memcmp(head, head + kHeaderSize, kHeaderSize) == 0;
    if (pr.file_size >= 3 * kRecordSize) {
      uint8_t tail[kRecordSize];
      f.pread_exact(tail, kRecordSize, pr.file_size - kRecordSize);
      bool end = false;
      record_data_len(tail, end);
      pr.end_checked = true;
      pr.end_ok = end;
    } else {
      pr.end_checked = true;
      pr.end_ok = false;
    }
  } else if (pr.encoding == Encoding::Gzip) {
    std::string h;
    try {
      inflate_open_file(f, pr.file_size, [&](const uint8_t* p, size_t n) {
        h.append(reinterpret_cast<const char*>(p), std::min(n, kHeaderSize - h.size()));
        return h.size() < kHeaderSize;
      });
    } catch (const Error& e) {
      if (h.size() < kHeaderSize) throw;
    }
    if (h.size() < kHeaderSize)
      throw Error(Errc::Truncated, at(path, h.size()) + "gzip stream ends inside the DMTCP header");
    pr.header = parse_header(reinterpret_cast<const uint8_t*>(h.data()), h.size(), path);
  }
  return pr;
}

Walk walk(const std::string& path, bool hash, const std::function<void(uint64_t, uint64_t)>& progress) {
  stream::File f = stream::File::open_read(path);
  uint64_t size = f.size();
  uint8_t head[2];
  size_t got = f.pread_some(head, 2, 0);
  Encoding e = sniff(head, got);
  if (got >= 2 && e == Encoding::NotDmtcp) {
    uint8_t h24[24] = {};
    f.pread_some(h24, 24, 0);
    e = sniff(h24, 24);
  }
  if (e == Encoding::Gzip || (e == Encoding::Raw && hash)) {
    StreamWalker w(path);
    stream::Hasher hasher;
    if (e == Encoding::Gzip) {
      inflate_open_file(
          f, size,
          [&](const uint8_t* p, size_t n) {
            w.feed(p, n);
            if (hash) hasher.update(p, n);
            return true;
          },
          [&](uint64_t off) {
            if (progress) progress(off, size);
          });
    } else {
      std::vector<uint8_t> buf(1 << 20);
      for (uint64_t off = 0; off < size;) {
        size_t n = f.pread_some(buf.data(), buf.size(), off);
        if (n == 0) break;
        w.feed(buf.data(), n);
        hasher.update(buf.data(), n);
        off += n;
        if (progress) progress(off, size);
      }
    }
    w.finish();
    Walk r = w.result();
    if (hash) r.content_xxh3 = hasher.digest();
    return r;
  }
  if (e != Encoding::Raw) throw Error(Errc::Corrupt, at(path, 0) + "not a DMTCP checkpoint image (bad magic)");
  // Raw: jump from record to record with pread; data is never read.
  std::vector<uint8_t> h(2 * kHeaderSize);
  size_t n = f.pread_some(h.data(), h.size(), 0);
  parse_header(h.data(), n, path);
  if (n < h.size()) throw Error(Errc::Truncated, at(path, n) + "file ends inside the second header copy");
  if (std::memcmp(h.data(), h.data() + kHeaderSize, kHeaderSize) != 0)
    throw Error(Errc::Corrupt, at(path, kHeaderSize) + "the second header copy differs from the first");
  Walk w;
  uint64_t off = 2 * kHeaderSize;
  uint8_t rec[kRecordSize];
  uint64_t steps = 0;
  for (;;) {
    if (size - off < kRecordSize)
      throw Error(Errc::Truncated, at(path, off) + "image ends before its end marker (truncated or still being written)");
    f.pread_exact(rec, kRecordSize, off);
    bool end = false;
    uint64_t len = record_data_len(rec, end);
    if (end) {
      off += kRecordSize;
      if (off != size) throw Error(Errc::Corrupt, at(path, off) + "data after the end marker");
      break;
    }
    if (len > kMaxRecordData) throw Error(Errc::Corrupt, at(path, off) + "area record with an impossible data length");
    w.records++;
    if (!(get64(rec + 80) & kPropChild)) w.top_level++;
    w.data_bytes += len;
    off += kRecordSize;
    if (len > size - off)
      throw Error(Errc::Truncated, at(path, size) + "file ends inside the data of the area record at offset " + std::to_string(off - kRecordSize));
    off += len;
    if (progress && (++steps & 255) == 0) progress(off, size);
  }
  w.logical_size = off;
  if (progress) progress(size, size);
  return w;
}

bool parse_image_name(std::string_view name, std::string& prog, std::string& upid_text) {
  constexpr std::string_view pre = "ckpt_", suf = ".dmtcp";
  if (name.size() <= pre.size() + suf.size() || name.substr(0, pre.size()) != pre ||
      name.substr(name.size() - suf.size()) != suf)
    return false;
  std::string_view mid = name.substr(pre.size(), name.size() - pre.size() - suf.size());
  size_t us = mid.rfind('_');
  if (us == std::string_view::npos || us == 0) return false;
  std::string_view up = mid.substr(us + 1);
  // <hex>-<dec>-<hex>
  size_t d1 = up.find('-'), d2 = up.rfind('-');
  if (d1 == std::string_view::npos || d1 == d2 || d1 == 0 || d2 + 1 >= up.size()) return false;
  auto all = [](std::string_view s, bool hex) {
    if (s.empty()) return false;
    for (char c : s)
      if (!((c >= '0' && c <= '9') || (hex && c >= 'a' && c <= 'f'))) return false;
    return true;
  };
  if (!all(up.substr(0, d1), true) || !all(up.substr(d1 + 1, d2 - d1 - 1), false) || !all(up.substr(d2 + 1), true))
    return false;
  prog = std::string(mid.substr(0, us));
  upid_text = std::string(up);
  return true;
}

uint64_t hostid_of(std::string_view hostname) {
  // Signed 64-bit arithmetic with two's-complement wrap, done in unsigned to
  // avoid undefined behaviour; each byte is taken as a signed char.
  uint64_t h = 0;
  for (char c : hostname) h = static_cast<uint64_t>(static_cast<int64_t>(static_cast<signed char>(c))) + 331 * h;
  auto s = static_cast<int64_t>(h);
  return s < 0 ? static_cast<uint64_t>(0) - h : h;
}

}  // namespace ckpt::image::dmtcp
