// On-disk encoding of the ckpt image format: header, region table and
// trailer (docs/image-format.md). Pure functions over byte buffers, so they
// can be fuzzed directly. Internal to native/image.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "image/image_types.h"

namespace ckpt::image::detail {

inline constexpr char kHeaderMagic[8] = {'C', 'K', 'P', 'T', 'I', 'M', 'G', '\0'};
inline constexpr char kTableMagic[8] = {'C', 'K', 'P', 'T', 'T', 'B', 'L', '\0'};
inline constexpr char kTrailerMagic[8] = {'C', 'K', 'P', 'T', 'E', 'N', 'D', '\0'};

inline constexpr size_t kHeaderFixed = 128;        // fixed part; TLV records follow
inline constexpr size_t kHeaderChecksumOff = 120;  // header_xxh3 field
inline constexpr size_t kTableFixed = 32;
inline constexpr size_t kRegionEntrySize = 80;
inline constexpr size_t kChunkEntrySize = 40;
inline constexpr size_t kTrailerSize = 64;
inline constexpr uint32_t kMaxHeaderSize = 32u << 20;  // 16 MiB blob + strings, rounded up
inline constexpr size_t kMaxBlob = 16u << 20;
inline constexpr size_t kMaxIdLen = 255;
inline constexpr size_t kMaxStringLen = 4095;
inline constexpr uint64_t kMinChunk = 64u << 10, kMaxChunk = 64u << 20;

// Header TLV tags. Unknown tags are skipped by readers (minor versions may add
// tags); a known tag may appear at most once.
enum Tag : uint16_t {
  kTagComputation = 1,
  kTagProcessId = 2,
  kTagParentId = 3,
  kTagHostname = 4,
  kTagKernelRelease = 5,
  kTagProgram = 6,
  kTagEngine = 7,
  kTagEngineBlob = 8,
  kTagWrappedFormat = 9,
  kTagWrappedHeader = 10,
  kTagStoppedNs = 11,  // format 1.1
};

struct Trailer {
  uint64_t table_offset = 0;
  uint64_t table_size = 0;
  uint64_t table_xxh3 = 0;
  uint64_t header_xxh3 = 0;
  uint64_t logical_bytes = 0;
  uint64_t file_size = 0;
  uint64_t root_xxh3 = 0;
};

struct Table {
  std::vector<RegionInfo> regions;
  std::vector<ChunkDesc> chunks;
};

// Validates meta for writing (throws InvalidArgument).
void validate_meta(const ImageMeta& m);
// Encodes the header block (size a multiple of kPageSize), checksum filled.
std::vector<uint8_t> encode_header(const ImageMeta& m, uint64_t chunk_size);
// Size of the header block given its first kHeaderFixed bytes (0 if the
// magic is wrong). Used to know how much more to read.
uint32_t peek_header_size(const uint8_t* p, size_t len);
// Decodes and verifies a whole header block; errors name `path` and offsets.
ImageMeta decode_header(const uint8_t* p, size_t len, const std::string& path, uint64_t* header_xxh3 = nullptr);

std::vector<uint8_t> encode_table(const Table& t);
// Decodes and checks a table against the file geometry.
Table decode_table(const uint8_t* p, size_t len, uint64_t table_offset, uint64_t header_size, uint64_t chunk_size,
                   const std::string& path);

void encode_trailer(const Trailer& t, uint8_t out[kTrailerSize]);  // computes root_xxh3
Trailer decode_trailer(const uint8_t* p, uint64_t file_size, const std::string& path);

// Little-endian helpers.
inline void put16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v); p[1] = uint8_t(v >> 8); }
inline void put32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i)); }
inline void put64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (8 * i)); }
inline uint16_t get16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t get32(const uint8_t* p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = (v << 8) | p[i]; return v; }
inline uint64_t get64(const uint8_t* p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = (v << 8) | p[i]; return v; }

std::string hex64(uint64_t v);

}  // namespace ckpt::image::detail
