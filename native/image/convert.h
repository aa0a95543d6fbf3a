// `ckpt image convert`: recompress images without changing what they
// restore to.
//
//  - DMTCP image (raw or gzip) -> ckpt container (default, zstd): the
//    logical DMTCP byte stream is stored as one Blob region of a ckpt image
//    whose header records wrapped_format "dmtcp" and a copy of the DMTCP
//    header, and whose region carries the XXH3-64 of the whole logical
//    stream. Indexers list it with the DMTCP images of its generation.
//  - ckpt container wrapping DMTCP -> raw DMTCP image (to_raw): the bytes
//    are written back exactly; the content checksum is verified, so the
//    result is byte-identical to the raw original (for a gzip original: to
//    its decompressed stream).
//  - gzip DMTCP image -> raw DMTCP image (to_raw).
//  - ckpt image -> ckpt image with another codec/level (raw or zstd).
//
// The destination is written under a temp name, synced and renamed; it is
// never the source.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace ckpt::image {

struct ConvertOptions {
  bool to_raw = false;          // raw output (DMTCP raw, or ckpt with Codec::Raw)
  int zstd_level = 3;
  unsigned threads = 0;         // 0 = hardware threads
  bool sync = true;
  std::function<void(uint64_t, uint64_t)> progress;  // (bytes done, bytes total) of the source
};

struct ConvertResult {
  std::string from;             // "dmtcp-raw" | "dmtcp-gzip" | "ckpt" | "ckpt-wrapped-dmtcp"
  std::string to;               // "dmtcp-raw" | "ckpt" | "ckpt-wrapped-dmtcp"
  uint64_t in_bytes = 0, out_bytes = 0, logical_bytes = 0;
  uint64_t content_xxh3 = 0;    // of the logical stream (wrapped DMTCP cases)
};

ConvertResult convert_image(const std::string& src, const std::string& dst, const ConvertOptions& options);

}  // namespace ckpt::image
