// ImageReader: opens, verifies and reads one image in the ckpt image format
// (docs/image-format.md).
//
// HowTo:
//
//   #include "image/image_reader.h"
//   using namespace ckpt::image;
//
//   ImageReader r("/ckpt/c1/gen-3/p40000.ckpt", ReaderOptions{.threads = 2});
//   // The constructor has checked: header magic, version and checksum;
//   // trailer magic and checksum; file size; region table checksum and
//   // consistency (chunks in bounds, aligned, sorted, non-overlapping).
//   const ImageMeta& m = r.meta();
//   for (size_t i = 0; i < r.regions().size(); i++) {
//     const RegionInfo& reg = r.regions()[i];
//     // (a) read everything at once into caller memory (gaps are zeroed),
//     //     verifying and decompressing chunks in parallel:
//     r.read_region(i, dst, reg.data_length());
//     // (b) or stream it through a caller buffer (like ZSTD_decompressStream):
//     //     OutBuffer out{buf, sizeof buf, 0};
//     //     size_t left; do { out.pos = 0; left = r.read(i, out); use(buf, out.pos); } while (left);
//     // (c) or, in a restarter, map raw chunks straight from the file:
//     for (const ChunkDesc& c : r.chunks_of(i)) {
//       if (c.codec == Codec::Raw) {
//         // c.file_offset and the destination (start + c.region_offset) are
//         // page aligned: mmap(start + c.region_offset, round_up(c.logical_len),
//         //   prot, MAP_PRIVATE | MAP_FIXED, r.fd(), c.file_offset)
//         // (checksum not verified by mmap: call r.verify_chunk() first if wanted)
//       } else {
//         r.read_chunk(c, dst + c.region_offset);   // verify + decompress
//       }
//     }
//   }
//
// Verification: read_chunk/read_region/read always verify each chunk's
// XXH3-64 before using its bytes and check the decoded length. verify()
// checks every chunk of the image without keeping the data.
//
// Threads: ReaderOptions::threads <= 1 runs everything on the calling
// thread; more threads split read_region() and verify() across workers.
// Const methods may be called from several threads at once; read() keeps a
// cursor and is not thread-safe.
//
// Errors: ckpt::Error with a message "<path>: <what> at offset <n>":
// NotFound, Truncated (file shorter than its trailer says, or no trailer),
// Corrupt (bad magic or checksum, inconsistent table), Unsupported (other
// major version), Io.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "image/image_types.h"
#include "stream/stream.h"

namespace ckpt::image {

using stream::OutBuffer;

// Cheap facts about a file, read in O(1) (header + trailer only).
struct QuickInfo {
  ImageMeta meta;
  uint64_t file_size = 0;
  uint64_t root_xxh3 = 0;
  uint64_t table_offset = 0;
  uint64_t table_size = 0;
};

// Reads and checks the header and trailer only (two small preads). Throws
// like ImageReader's constructor; does not read the region table.
QuickInfo quick_check(const std::string& path);

// True when the first bytes of `data` are the ckpt image magic.
bool has_image_magic(const void* data, size_t len) noexcept;

class ImageReader {
 public:
  explicit ImageReader(std::string path, const ReaderOptions& options = {});
  ~ImageReader();
  ImageReader(const ImageReader&) = delete;
  ImageReader& operator=(const ImageReader&) = delete;

  const std::string& path() const noexcept;
  const ImageMeta& meta() const noexcept;
  uint64_t file_size() const noexcept;
  uint64_t root_xxh3() const noexcept;
  const std::vector<RegionInfo>& regions() const noexcept;
  const std::vector<ChunkDesc>& chunks() const noexcept;
  std::span<const ChunkDesc> chunks_of(size_t region) const;

  // The open file (read-only), for mmap of raw chunks. Owned by the reader.
  int fd() const noexcept;

  // Verifies one chunk's checksum and decodes it into dst (room for
  // c.logical_len bytes).
  void read_chunk(const ChunkDesc& c, void* dst) const;
  // Verifies a chunk without decoding (reads its stored bytes).
  void verify_chunk(const ChunkDesc& c) const;

  // Reads region `i` into dst (dst_len must be >= its length); bytes no chunk
  // covers are zero-filled. Parallel when threads > 1 (raw regions: one
  // thread in file order for buffered reads; under O_DIRECT, where nothing
  // reads ahead, the calling thread keeps three batch reads in flight with
  // Linux AIO and `threads` workers verify them). Raw chunks are read
  // straight into dst and verified there (small ones land in the gaps of
  // their stretch of dst and are moved into place: no bounce buffer), so
  // after an error dst holds unspecified bytes (never use a region whose
  // read threw).
  void read_region(size_t i, void* dst, size_t dst_len) const;

  // Reads several regions as read_region() does, in one parallel pass over
  // all of their chunks (no pause at region boundaries): the way to restore
  // a whole image.
  struct RegionTarget {
    size_t index;
    void* dst;
    size_t dst_len;
  };
  void read_regions(const RegionTarget* targets, size_t n) const;

  // Streams region `i` into `out` from an internal cursor (starts at 0 for
  // each region; switching regions restarts). Returns bytes of the region
  // still to come (0 = done).
  size_t read(size_t i, OutBuffer& out);

  // XXH3-64 of region `i`'s logical bytes (zeros included), reading and
  // verifying its chunks in order. Compare with RegionDesc::content_xxh3.
  uint64_t content_hash(size_t i) const;

  // Verifies every chunk (checksum and, for zstd chunks, full decoding to the
  // right length). `progress(done_bytes, total_bytes)` is called now and then
  // from the calling thread. Throws on the first bad chunk (lowest offset).
  void verify(const std::function<void(uint64_t, uint64_t)>& progress = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ckpt::image
