// ImageWriter: writes one process image in the ckpt image format
// (docs/image-format.md) through the streaming core.
//
// HowTo (modelled on zstd.h's streaming HowTo):
//
//   #include "image/image_writer.h"
//   using namespace ckpt::image;
//
//   ImageWriter w("/ckpt/c1/gen-3/p40000.ckpt",
//                 WriterOptions{.threads = 2, .codec = Codec::Zstd, .zstd_level = 1});
//   ImageMeta meta;                        // computation, generation, numPeers, ids, ...
//   ...
//   w.set_header(meta);                    // once, before the first region
//   for (each memory area) {
//     w.begin_region(RegionDesc{.start = a, .end = b, .prot = ..., .kind = RegionKind::Anonymous});
//     InBuffer in{ptr, len, 0};            // caller-owned input; pos advances
//     while (in.pos < in.size) w.write(in, Directive::Continue);
//     w.end_region();                      // same as write(empty, Directive::End)
//   }
//   WriteSummary s = w.finish();           // region table + trailer, fsync, rename, fsync dir
//
// The image is written to "<path>.tmp" and only renamed to <path> by
// finish(), after everything is on stable storage. If the writer is destroyed
// without finish() (or abort() is called), the temp file is removed; if the
// process dies, the temp file stays behind and indexers report it.
//
// Streaming rules (as in ZSTD_compressStream2):
//  - write() consumes as much of `in` as it can (always > 0 bytes unless the
//    region is full), advances in.pos, and returns the number of bytes still
//    held inside the writer (partial chunk + chunks not yet on disk). The
//    caller may reuse its buffer as soon as write() returns.
//  - Directive::Continue lets the writer buffer; Flush ends the current chunk
//    and waits until everything submitted so far is written (return 0);
//    End also closes the region (its data must then be complete: exactly
//    RegionDesc::length bytes) and returns 0.
//  - A region's data must be supplied in order and in full; giving more bytes
//    than its length throws InvalidArgument, fewer makes end_region() throw.
//    Exception: a Blob region with start == end == length == 0 is "open":
//    its length becomes the number of bytes given before end_region().
//  - All-zero pages (page-aligned 4 KiB runs of the region) are not stored
//    when elide_zero_pages is set; chunks never span them.
//  - Memory is bounded by max_in_flight chunks; write() blocks while that
//    many chunks are being compressed or written (back-pressure).
//
// Threads: with WriterOptions::threads == 0 everything happens on the calling
// thread inside write()/finish(). Otherwise `threads` workers compress and
// checksum zstd chunks, and two I/O threads write them with large writes (up
// to 8 MiB, two in flight). Raw images (threads >= 1) use no workers: write()
// copies the data into an 8 MiB buffer and checksums each page while it is
// still in the cache, and that buffer itself is written to the file by three
// I/O threads (up to three 8 MiB writes in flight, each ending on a multiple
// of its size in the file). With threads the file's blocks are allocated
// ahead of the writes in doubling steps of at most 256 MiB (fallocate; the file is cut to its
// size in finish()), so O_DIRECT writes run concurrently and the file is one
// contiguous allocation where the filesystem allows.
// An ImageWriter itself must be used from one thread at a time.
//
// Errors: every method throws ckpt::Error (native/common/errors.h) with a
// message naming the file (and offset where there is one): Io for failed
// system calls, InvalidArgument for misuse, State for calls out of order.
// After an error the writer is unusable; destroy it (the temp file is removed).
// No exception escapes a destructor.
#pragma once

#include <memory>
#include <string>

#include "image/image_types.h"
#include "stream/stream.h"

namespace ckpt::image {

using stream::Directive;
using stream::InBuffer;

class ImageWriter {
 public:
  // Creates "<final_path>.tmp" (truncating a leftover one). Throws on error.
  ImageWriter(std::string final_path, const WriterOptions& options);
  ~ImageWriter();
  ImageWriter(const ImageWriter&) = delete;
  ImageWriter& operator=(const ImageWriter&) = delete;

  // Validates and writes the header. Must be called exactly once, first.
  void set_header(const ImageMeta& meta);

  // Starts a region. The previous region must have been ended.
  void begin_region(const RegionDesc& region);

  // Feeds region bytes; see the streaming rules above. Returns bytes pending.
  size_t write(InBuffer& in, Directive directive = Directive::Continue);

  // Ends the current region (equivalent to write(empty, Directive::End)).
  void end_region();

  // Records the XXH3-64 of the current (or, after end_region, the last)
  // region's logical bytes and sets kRegionHasContentHash. Used for blobs
  // that must convert back byte for byte.
  void set_content_hash(uint64_t xxh3);

  // Convenience: begin_region + write all of [data, data+len) + end_region.
  // len must equal the region's length.
  void add_region(const RegionDesc& region, const void* data, size_t len);

  // Writes the region table and trailer, syncs, renames the temp file to the
  // final path and syncs the directory. Returns what was written.
  WriteSummary finish();

  // Stops and removes the temp file. Safe to call more than once.
  void abort() noexcept;

  // Bytes of logical data accepted so far (for progress reports).
  uint64_t bytes_in() const noexcept;

  const std::string& path() const noexcept;       // final path
  const std::string& temp_path() const noexcept;  // "<path>.tmp"

  // Recommended size of the input pieces handed to write() (one chunk), in
  // the spirit of ZSTD_CStreamInSize().
  static size_t recommended_input_size(const WriterOptions& options) noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ckpt::image
