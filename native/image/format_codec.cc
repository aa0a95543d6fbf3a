// Encoding and decoding of header, region table and trailer. Every decoder
// treats its input as hostile: each length and offset is bounds-checked
// before use, and every error names the file and the byte offset.
#include "image/format_codec.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/errors.h"
#include "stream/stream.h"

namespace ckpt::image::detail {

using stream::align_up;
using stream::xxh3;

std::string hex64(uint64_t v) {
  char b[19];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

static std::string at(const std::string& path, uint64_t off) { return path + ": at offset " + std::to_string(off) + ": "; }

[[noreturn]] static void corrupt(const std::string& path, uint64_t off, const std::string& what) {
  throw Error(Errc::Corrupt, at(path, off) + what);
}

static void check_id(const std::string& v, const char* what, bool allow_empty) {
  if (v.empty() && !allow_empty) throw Error(Errc::InvalidArgument, std::string(what) + " must not be empty");
  if (v.size() > kMaxIdLen) throw Error(Errc::InvalidArgument, std::string(what) + " is longer than 255 bytes");
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f || c == '/')
      throw Error(Errc::InvalidArgument, std::string(what) + " must not contain '/' or control characters");
}

void validate_meta(const ImageMeta& m) {
  check_id(m.computation, "computation id", false);
  if (m.computation == "." || m.computation == "..") throw Error(Errc::InvalidArgument, "computation id must not be '.' or '..'");
  check_id(m.process_id, "process id", false);
  check_id(m.parent_id, "parent id", true);
  if (m.generation == 0) throw Error(Errc::InvalidArgument, "generation must be >= 1");
  if (m.num_peers == 0) throw Error(Errc::InvalidArgument, "numPeers must be >= 1");
  for (const std::string* s : {&m.hostname, &m.kernel_release, &m.program, &m.engine, &m.wrapped_format})
    if (s->size() > kMaxStringLen) throw Error(Errc::InvalidArgument, "header string longer than 4095 bytes");
  if (m.engine_blob.size() > kMaxBlob) throw Error(Errc::InvalidArgument, "engine blob larger than 16 MiB");
  if (m.wrapped_header.size() > 65536) throw Error(Errc::InvalidArgument, "wrapped header larger than 64 KiB");
}

std::vector<uint8_t> encode_header(const ImageMeta& m, uint64_t chunk_size) {
  validate_meta(m);
  std::vector<uint8_t> tlv;
  auto add = [&](uint16_t tag, const void* p, size_t n) {
    if (n == 0) return;
    size_t o = tlv.size();
    tlv.resize(o + 8 + align_up(n, 8), 0);
    put16(&tlv[o], tag);
    put16(&tlv[o + 2], 0);
    put32(&tlv[o + 4], static_cast<uint32_t>(n));
    std::memcpy(&tlv[o + 8], p, n);
  };
  add(kTagComputation, m.computation.data(), m.computation.size());
  add(kTagProcessId, m.process_id.data(), m.process_id.size());
  add(kTagParentId, m.parent_id.data(), m.parent_id.size());
  add(kTagHostname, m.hostname.data(), m.hostname.size());
  add(kTagKernelRelease, m.kernel_release.data(), m.kernel_release.size());
  add(kTagProgram, m.program.data(), m.program.size());
  add(kTagEngine, m.engine.data(), m.engine.size());
  add(kTagEngineBlob, m.engine_blob.data(), m.engine_blob.size());
  add(kTagWrappedFormat, m.wrapped_format.data(), m.wrapped_format.size());
  add(kTagWrappedHeader, m.wrapped_header.data(), m.wrapped_header.size());
  if (m.stopped_ns) {
    uint8_t v[8];
    put64(v, m.stopped_ns);
    add(kTagStoppedNs, v, sizeof v);
  }

  size_t hsize = align_up(kHeaderFixed + tlv.size(), kPageSize);
  std::vector<uint8_t> h(hsize, 0);
  std::memcpy(&h[0], kHeaderMagic, 8);
  put16(&h[8], kFormatMajor);
  put16(&h[10], kFormatMinor);
  put32(&h[12], static_cast<uint32_t>(hsize));
  put32(&h[16], kPageSize);
  put32(&h[20], m.flags);
  put64(&h[24], m.generation);
  put32(&h[32], m.num_peers);
  put32(&h[36], static_cast<uint32_t>(m.pid));
  put32(&h[40], static_cast<uint32_t>(m.ppid));
  put32(&h[44], static_cast<uint32_t>(m.pgid));
  put32(&h[48], static_cast<uint32_t>(m.sid));
  put32(&h[52], static_cast<uint32_t>(m.vpid));
  put32(&h[56], static_cast<uint32_t>(m.vppid));
  put32(&h[60], static_cast<uint32_t>(tlv.size()));
  put64(&h[64], m.created_unix_ns);
  for (int i = 0; i < 4; i++) put64(&h[72 + 8 * i], m.cpu_features[static_cast<size_t>(i)]);
  put64(&h[104], chunk_size);
  put64(&h[112], 0);
  if (!tlv.empty()) std::memcpy(&h[kHeaderFixed], tlv.data(), tlv.size());
  put64(&h[kHeaderChecksumOff], xxh3(h.data(), h.size()));
  return h;
}

uint32_t peek_header_size(const uint8_t* p, size_t len) {
  if (len < kHeaderFixed || std::memcmp(p, kHeaderMagic, 8) != 0) return 0;
  return get32(p + 12);
}

ImageMeta decode_header(const uint8_t* p, size_t len, const std::string& path, uint64_t* header_xxh3) {
  if (len < kHeaderFixed)
    throw Error(Errc::Truncated, at(path, len) + "file ends inside the image header (" + std::to_string(len) + " bytes)");
  if (std::memcmp(p, kHeaderMagic, 8) != 0) corrupt(path, 0, "not a ckpt image (bad header magic)");
  ImageMeta m;
  m.format_major = get16(p + 8);
  m.format_minor = get16(p + 10);
  if (m.format_major != kFormatMajor)
    throw Error(Errc::Unsupported, at(path, 8) + "image format version " + std::to_string(m.format_major) + "." +
                                       std::to_string(m.format_minor) + " is not supported (this build reads " +
                                       std::to_string(kFormatMajor) + ".x); upgrade ckpt");
  m.header_size = get32(p + 12);
  if (m.header_size < kPageSize || m.header_size % kPageSize != 0 || m.header_size > kMaxHeaderSize)
    corrupt(path, 12, "invalid header size " + std::to_string(m.header_size));
  if (len < m.header_size)
    throw Error(Errc::Truncated, at(path, len) + "file ends inside the image header (header is " +
                                     std::to_string(m.header_size) + " bytes)");
  uint64_t stored = get64(p + kHeaderChecksumOff);
  {
    // The checksum covers the whole header block with its own field zeroed.
    std::vector<uint8_t> copy(p, p + m.header_size);
    put64(&copy[kHeaderChecksumOff], 0);
    uint64_t actual = xxh3(copy.data(), copy.size());
    if (actual != stored)
      corrupt(path, 0, "header checksum mismatch (stored " + hex64(stored) + ", computed " + hex64(actual) + ")");
  }
  if (header_xxh3) *header_xxh3 = stored;
  if (get32(p + 16) != kPageSize) corrupt(path, 16, "unsupported page size " + std::to_string(get32(p + 16)));
  m.flags = get32(p + 20);
  m.generation = get64(p + 24);
  m.num_peers = get32(p + 32);
  m.pid = static_cast<int32_t>(get32(p + 36));
  m.ppid = static_cast<int32_t>(get32(p + 40));
  m.pgid = static_cast<int32_t>(get32(p + 44));
  m.sid = static_cast<int32_t>(get32(p + 48));
  m.vpid = static_cast<int32_t>(get32(p + 52));
  m.vppid = static_cast<int32_t>(get32(p + 56));
  uint32_t tlv_bytes = get32(p + 60);
  m.created_unix_ns = get64(p + 64);
  for (int i = 0; i < 4; i++) m.cpu_features[static_cast<size_t>(i)] = get64(p + 72 + 8 * i);
  m.chunk_size = get64(p + 104);
  if (m.chunk_size < kMinChunk || m.chunk_size > kMaxChunk || (m.chunk_size & (m.chunk_size - 1)) != 0)
    corrupt(path, 104, "invalid chunk size " + std::to_string(m.chunk_size));
  if (tlv_bytes > m.header_size - kHeaderFixed) corrupt(path, 60, "header records overflow the header");
  uint64_t seen = 0;
  size_t off = kHeaderFixed, end = kHeaderFixed + tlv_bytes;
  while (off < end) {
    if (end - off < 8) corrupt(path, off, "truncated header record");
    uint16_t tag = get16(p + off);
    uint32_t n = get32(p + off + 4);
    if (n > end - off - 8) corrupt(path, off, "header record of " + std::to_string(n) + " bytes overflows the header");
    const char* v = reinterpret_cast<const char*>(p + off + 8);
    if (tag < 64) {
      if (seen & (1ull << tag)) corrupt(path, off, "duplicate header record " + std::to_string(tag));
      seen |= 1ull << tag;
    }
    switch (tag) {
      case kTagComputation: m.computation.assign(v, n); break;
      case kTagProcessId: m.process_id.assign(v, n); break;
      case kTagParentId: m.parent_id.assign(v, n); break;
      case kTagHostname: m.hostname.assign(v, n); break;
      case kTagKernelRelease: m.kernel_release.assign(v, n); break;
      case kTagProgram: m.program.assign(v, n); break;
      case kTagEngine: m.engine.assign(v, n); break;
      case kTagEngineBlob: m.engine_blob.assign(p + off + 8, p + off + 8 + n); break;
      case kTagWrappedFormat: m.wrapped_format.assign(v, n); break;
      case kTagWrappedHeader: m.wrapped_header.assign(p + off + 8, p + off + 8 + n); break;
      case kTagStoppedNs:
        if (n != 8) corrupt(path, off, "header record 11 (stopped time) has " + std::to_string(n) + " bytes, not 8");
        m.stopped_ns = get64(p + off + 8);
        break;
      default: break;  // unknown: skipped (added by a later minor version)
    }
    off += 8 + align_up(n, 8);
  }
  if (m.computation.empty()) corrupt(path, kHeaderFixed, "header has no computation id");
  if (m.process_id.empty()) corrupt(path, kHeaderFixed, "header has no process id");
  if (m.generation == 0) corrupt(path, 24, "generation 0 is invalid");
  if (m.num_peers == 0) corrupt(path, 32, "numPeers 0 is invalid");
  return m;
}

std::vector<uint8_t> encode_table(const Table& t) {
  std::string strings;
  std::vector<uint8_t> out(kTableFixed + kRegionEntrySize * t.regions.size() + kChunkEntrySize * t.chunks.size());
  std::memcpy(&out[0], kTableMagic, 8);
  put32(&out[8], static_cast<uint32_t>(t.regions.size()));
  put32(&out[12], 0);
  put64(&out[16], t.chunks.size());
  uint8_t* r = &out[kTableFixed];
  for (const RegionInfo& ri : t.regions) {
    const RegionDesc& d = ri.desc;
    put64(r + 0, d.start);
    put64(r + 8, d.end);
    put64(r + 16, d.length);
    put64(r + 24, d.file_offset);
    put32(r + 32, d.prot);
    put32(r + 36, d.map_flags);
    put32(r + 40, static_cast<uint32_t>(d.kind));
    put32(r + 44, d.region_flags);
    put64(r + 48, d.content_xxh3);
    put64(r + 56, ri.first_chunk);
    put64(r + 64, ri.chunk_count);
    put32(r + 72, static_cast<uint32_t>(strings.size()));
    put32(r + 76, static_cast<uint32_t>(d.name.size()));
    strings += d.name;
    r += kRegionEntrySize;
  }
  for (const ChunkDesc& c : t.chunks) {
    put64(r + 0, c.region_offset);
    put64(r + 8, c.file_offset);
    put32(r + 16, c.logical_len);
    put32(r + 20, c.stored_len);
    r[24] = static_cast<uint8_t>(c.codec);
    std::memset(r + 25, 0, 7);
    put64(r + 32, c.xxh3);
    r += kChunkEntrySize;
  }
  put64(&out[24], strings.size());
  out.insert(out.end(), strings.begin(), strings.end());
  return out;
}

Table decode_table(const uint8_t* p, size_t len, uint64_t table_offset, uint64_t header_size, uint64_t chunk_size,
                   const std::string& path) {
  auto bad = [&](uint64_t rel, const std::string& what) { corrupt(path, table_offset + rel, "region table: " + what); };
  if (len < kTableFixed) bad(0, "too short");
  if (std::memcmp(p, kTableMagic, 8) != 0) bad(0, "bad magic");
  uint64_t nreg = get32(p + 8);
  uint64_t nchunk = get64(p + 16);
  uint64_t nstr = get64(p + 24);
  // Check the declared sizes against the actual table length before any
  // allocation, so a hostile count cannot make us allocate gigabytes.
  if (nreg > len / kRegionEntrySize || nchunk > len / kChunkEntrySize) bad(8, "entry counts exceed the table size");
  uint64_t need = kTableFixed + kRegionEntrySize * nreg + kChunkEntrySize * nchunk;
  if (nstr > len || need + nstr != len) bad(8, "entry counts do not match the table size");
  Table t;
  t.regions.resize(nreg);
  t.chunks.resize(nchunk);
  const uint8_t* strings = p + need;
  const uint8_t* r = p + kTableFixed;
  uint64_t next_chunk = 0;
  for (uint64_t i = 0; i < nreg; i++, r += kRegionEntrySize) {
    uint64_t rel = kTableFixed + i * kRegionEntrySize;
    RegionInfo& ri = t.regions[i];
    RegionDesc& d = ri.desc;
    d.start = get64(r);
    d.end = get64(r + 8);
    d.length = get64(r + 16);
    d.file_offset = get64(r + 24);
    d.prot = get32(r + 32);
    d.map_flags = get32(r + 36);
    uint32_t kind = get32(r + 40);
    if (kind > static_cast<uint32_t>(RegionKind::Other)) bad(rel + 40, "region " + std::to_string(i) + " has unknown kind " + std::to_string(kind));
    d.kind = static_cast<RegionKind>(kind);
    d.region_flags = get32(r + 44);
    d.content_xxh3 = get64(r + 48);
    ri.first_chunk = get64(r + 56);
    ri.chunk_count = get64(r + 64);
    uint32_t so = get32(r + 72), sl = get32(r + 76);
    if (d.end < d.start) bad(rel, "region " + std::to_string(i) + " ends before it starts");
    if (d.kind != RegionKind::Blob && d.length > d.end - d.start) bad(rel + 16, "region " + std::to_string(i) + " holds more data than its address range");
    if (static_cast<uint64_t>(so) + sl > nstr) bad(rel + 72, "region " + std::to_string(i) + " name outside the string table");
    d.name.assign(reinterpret_cast<const char*>(strings + so), sl);
    if (ri.first_chunk != next_chunk || ri.chunk_count > nchunk - next_chunk)
      bad(rel + 56, "region " + std::to_string(i) + " chunk range is inconsistent");
    next_chunk += ri.chunk_count;
  }
  if (next_chunk != nchunk) bad(16, "chunks not assigned to any region");
  uint64_t prev_file_end = header_size;
  for (uint64_t i = 0; i < nchunk; i++, r += kChunkEntrySize) {
    ChunkDesc& c = t.chunks[i];
    c.region_offset = get64(r);
    c.file_offset = get64(r + 8);
    c.logical_len = get32(r + 16);
    c.stored_len = get32(r + 20);
    c.codec = static_cast<Codec>(r[24]);
    c.xxh3 = get64(r + 32);
    uint64_t rel = kTableFixed + nreg * kRegionEntrySize + i * kChunkEntrySize;
    std::string cn = "chunk " + std::to_string(i);
    if (r[24] > 1) bad(rel + 24, cn + " has unknown codec " + std::to_string(r[24]));
    if (c.logical_len == 0 || c.logical_len > chunk_size) bad(rel + 16, cn + " has invalid length");
    if (c.stored_len == 0 || (c.codec == Codec::Raw && c.stored_len != c.logical_len) ||
        (c.codec == Codec::Zstd && c.stored_len >= c.logical_len))
      bad(rel + 20, cn + " has invalid stored length");
    if (c.region_offset % kPageSize != 0) bad(rel, cn + " is not page aligned in its region");
    if ((c.codec == Codec::Raw && c.file_offset % kPageSize != 0) || c.file_offset < prev_file_end)
      bad(rel + 8, cn + " has an invalid file offset");
    if (c.file_offset > table_offset || c.stored_len > table_offset - c.file_offset)
      bad(rel + 8, cn + " extends into the region table");
    prev_file_end = c.file_offset + c.stored_len;
  }
  for (uint64_t i = 0; i < nreg; i++) {
    const RegionInfo& ri = t.regions[i];
    uint64_t prev_end = 0;
    for (uint64_t k = ri.first_chunk; k < ri.first_chunk + ri.chunk_count; k++) {
      const ChunkDesc& c = t.chunks[k];
      if (c.region_offset < prev_end || c.region_offset > ri.desc.length || c.logical_len > ri.desc.length - c.region_offset)
        bad(kTableFixed + nreg * kRegionEntrySize + k * kChunkEntrySize, "chunk " + std::to_string(k) + " lies outside region " + std::to_string(i) + " or overlaps its predecessor");
      prev_end = c.region_offset + c.logical_len;
    }
  }
  return t;
}

void encode_trailer(const Trailer& t, uint8_t out[kTrailerSize]) {
  std::memcpy(out, kTrailerMagic, 8);
  put64(out + 8, t.table_offset);
  put64(out + 16, t.table_size);
  put64(out + 24, t.table_xxh3);
  put64(out + 32, t.header_xxh3);
  put64(out + 40, t.logical_bytes);
  put64(out + 48, t.file_size);
  put64(out + 56, xxh3(out, 56));
}

Trailer decode_trailer(const uint8_t* p, uint64_t file_size, const std::string& path) {
  uint64_t base = file_size - kTrailerSize;
  if (std::memcmp(p, kTrailerMagic, 8) != 0)
    throw Error(Errc::Truncated, at(path, base) + "no image trailer at the end of the file (the image is truncated or was not finished)");
  Trailer t;
  t.table_offset = get64(p + 8);
  t.table_size = get64(p + 16);
  t.table_xxh3 = get64(p + 24);
  t.header_xxh3 = get64(p + 32);
  t.logical_bytes = get64(p + 40);
  t.file_size = get64(p + 48);
  t.root_xxh3 = get64(p + 56);
  uint64_t actual = xxh3(p, 56);
  if (actual != t.root_xxh3)
    corrupt(path, base, "trailer checksum mismatch (stored " + hex64(t.root_xxh3) + ", computed " + hex64(actual) + ")");
  if (t.file_size != file_size) {
    if (t.file_size > file_size)
      throw Error(Errc::Truncated, at(path, file_size) + "file is " + std::to_string(file_size) + " bytes, trailer says " + std::to_string(t.file_size));
    corrupt(path, base + 48, "file is " + std::to_string(file_size) + " bytes, trailer says " + std::to_string(t.file_size));
  }
  if (t.table_offset % kPageSize != 0 || t.table_offset > base || t.table_size > base - t.table_offset || t.table_size < kTableFixed)
    corrupt(path, base + 8, "region table location is invalid");
  return t;
}

}  // namespace ckpt::image::detail
