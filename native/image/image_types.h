// Types shared by the image writer and reader: process metadata, region
// descriptors, chunk descriptors and writer/reader options. The byte layout
// these map to is specified normatively in docs/image-format.md; this header
// is the in-memory view of it.
//
// Everything in native/image and native/stream is plain C++20 with no Node
// dependency (only libzstd and header-only xxHash), built as static -fPIC
// libraries so the engine can link it into its preloaded library and its
// static restarter.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ckpt::image {

// Format version written by this code. Readers accept any minor version of a
// major version they know (unknown header tags are skipped); a different
// major version is rejected with Errc::Unsupported.
inline constexpr uint16_t kFormatMajor = 1;
inline constexpr uint16_t kFormatMinor = 1;  // 1.1: header record 11 (stopped_ns)

// The unit of alignment of everything in an image file: the header size,
// every chunk's file offset and the file size are multiples of it, so raw
// chunks can be mmap'ed by a restarter and files can be written with O_DIRECT.
inline constexpr size_t kPageSize = 4096;

// Suffix of finished images and of the temporary file an image is written
// under until finish() renames it.
inline constexpr const char* kImageSuffix = ".ckpt";
inline constexpr const char* kTempSuffix = ".tmp";

enum class Codec : uint8_t {
  Raw = 0,   // stored bytes == logical bytes
  Zstd = 1,  // one zstd frame holding exactly the chunk's logical bytes
};

// What a region is. The engine decides; the format only records it.
enum class RegionKind : uint32_t {
  Anonymous = 0,  // private or shared anonymous memory
  File = 1,       // a mapping of a file (path in RegionDesc::name)
  Heap = 2,
  Stack = 3,
  Special = 4,    // [vdso], [vvar] and similar; usually no data
  Blob = 5,       // not memory: an opaque byte stream (e.g. a wrapped DMTCP image)
  Other = 6,
};

// Region flags (RegionDesc::region_flags).
inline constexpr uint32_t kRegionHasContentHash = 1u << 0;  // content_xxh3 is valid
inline constexpr uint32_t kRegionNoData = 1u << 1;          // no bytes saved (placeholder / restore as zero)

// Header flags (ImageMeta::flags).
inline constexpr uint32_t kImageWrapsForeign = 1u << 0;  // the image wraps a foreign image (see wrapped_format)

// Identity and metadata of one process image (the header).
struct ImageMeta {
  // Identity of the computation and of this checkpoint.
  std::string computation;      // computation id text, e.g. "c-5f1e2a..." (non-empty, no '/', <= 255 bytes)
  uint64_t generation = 0;      // 1 = first checkpoint of the computation
  uint32_t num_peers = 1;       // number of processes in this generation (all hosts)

  // Process identity and tree links. "virtual" ids are the ones the engine
  // presents to the application and keeps across restarts; the real ones are
  // what the kernel used when the image was written.
  std::string process_id;       // stable unique id of this process within the computation (non-empty)
  std::string parent_id;        // process_id of the parent inside the computation; empty for a root
  int32_t pid = 0, ppid = 0, pgid = 0, sid = 0;  // real ids at checkpoint time
  int32_t vpid = 0, vppid = 0;                   // virtual ids (0 if the engine does not virtualise)

  std::string hostname;         // uname nodename of the host that wrote the image
  std::string kernel_release;   // uname release
  std::string program;          // executable path or name (for display)
  std::string engine;           // engine name and version, e.g. "ckpt-builtin 0.1.0"
  std::array<uint64_t, 4> cpu_features{};  // CPU feature bits the image needs to restore (engine-defined)
  uint64_t created_unix_ns = 0; // wall-clock creation time (0 = filled in by the writer)
  uint32_t flags = 0;           // kImage* flags
  // How long the process's threads were stopped for this checkpoint, in ns,
  // when the engine knows it before the header is written (0: not recorded;
  // an engine that writes while the process is stopped cannot know it yet).
  uint64_t stopped_ns = 0;

  // Opaque engine-private data (registers, fds, signal state...). Stored in
  // the header and covered by the header checksum; keep it small (<= 16 MiB).
  std::vector<uint8_t> engine_blob;

  // For images that wrap a foreign image byte for byte (ckpt image convert):
  // the foreign format name ("dmtcp") and a copy of its first bytes (DMTCP:
  // the 4096-byte header), so indexers can read identity in O(1).
  std::string wrapped_format;
  std::vector<uint8_t> wrapped_header;

  // Filled in by the reader (ignored by the writer).
  uint16_t format_major = 0, format_minor = 0;
  uint32_t header_size = 0;
  uint64_t chunk_size = 0;
};

// One region of the image: a memory range (or a blob) and how to restore it.
struct RegionDesc {
  uint64_t start = 0;           // start address (page aligned for memory regions)
  uint64_t end = 0;             // end address, exclusive
  uint64_t length = 0;          // bytes of data that follow (0 = end - start); may be < end - start
  uint64_t file_offset = 0;     // offset of the mapping in its file (File regions)
  uint32_t prot = 0;            // PROT_* bits
  uint32_t map_flags = 0;       // MAP_* bits
  RegionKind kind = RegionKind::Anonymous;
  uint32_t region_flags = 0;    // kRegion* bits
  uint64_t content_xxh3 = 0;    // XXH3-64 of all `length` logical bytes (if kRegionHasContentHash)
  std::string name;             // path or label ("[heap]"), may be empty; <= 4095 bytes
};

// One chunk: a run of logical bytes of one region stored at a file offset.
// Bytes of a region that no chunk covers are zero (elided all-zero pages).
struct ChunkDesc {
  uint64_t region_offset = 0;   // offset of the first byte within the region (multiple of kPageSize)
  uint64_t file_offset = 0;     // where the stored bytes start in the file (raw chunks: a multiple of kPageSize)
  uint32_t logical_len = 0;     // bytes after decoding
  uint32_t stored_len = 0;      // bytes in the file (padding to kPageSize follows)
  Codec codec = Codec::Raw;
  uint64_t xxh3 = 0;            // XXH3-64 (seed 0) of the stored bytes
};

// A region as read back: its descriptor plus the range of its chunks in
// ImageReader::chunks().
struct RegionInfo {
  RegionDesc desc;
  uint64_t first_chunk = 0;
  uint64_t chunk_count = 0;
  uint64_t data_length() const { return desc.length; }
};

struct WriterOptions {
  // Worker threads that compress and checksum chunks. 0 = do everything on
  // the calling thread, synchronously (no threads are created at all: fine
  // for a restarter or a signal-constrained context). With threads >= 1
  // separate I/O threads also keep two (raw images: three) large writes in
  // flight; raw images need no workers (see image_writer.h).
  unsigned threads = 0;
  Codec codec = Codec::Zstd;
  int zstd_level = 1;           // zstd level (-7..19); ignored for Codec::Raw
  size_t chunk_size = 1u << 20; // logical bytes per chunk: power of two, 64 KiB..64 MiB
  // Upper bound on chunks buffered at once (memory ~ 2 * chunk_size each).
  // 0 = 2 * threads + 4; raw images with threads use five 8 MiB buffers in
  // all instead (one being filled, the others queued or being written).
  size_t max_in_flight = 0;
  bool elide_zero_pages = true; // skip all-zero pages (they read back as zero)
  bool o_direct = false;        // try O_DIRECT; falls back to buffered I/O where unsupported (tmpfs)
  bool sync = true;             // fsync file and directory (turn off only for tests/benchmarks)
  mode_t mode = 0600;
};

struct ReaderOptions {
  // Threads that verify and decompress in read_region()/verify(). 0 or 1 =
  // on the calling thread (static restarter).
  unsigned threads = 0;
  bool o_direct = false;        // read data with O_DIRECT where supported
};

// What finish() reports.
struct WriteSummary {
  std::string path;             // final path
  uint64_t file_size = 0;
  uint64_t root_xxh3 = 0;       // the image's root checksum (trailer); goes into the MANIFEST
  uint64_t logical_bytes = 0;   // sum of region lengths
  uint64_t stored_bytes = 0;    // chunk bytes in the file (without padding)
  uint64_t zero_bytes = 0;      // logical bytes elided as zero
  uint64_t regions = 0;
  uint64_t chunks = 0;
};

}  // namespace ckpt::image
