// Fuzzes the ckpt image header decoder (and re-encodes what it accepts).
#include <cstddef>
#include <cstdint>

#include "common/errors.h"
#include "image/format_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckpt::image::detail;
  try {
    auto m = decode_header(data, size, "fuzz");
    m.created_unix_ns = 1;
    try {
      auto h = encode_header(m, m.chunk_size);
      decode_header(h.data(), h.size(), "re");
    } catch (const ckpt::Error&) {
      // Decoded headers may hold values the writer refuses (e.g. long ids).
    }
  } catch (const ckpt::Error&) {
  }
  return 0;
}
