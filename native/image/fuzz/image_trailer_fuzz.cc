// Fuzzes the trailer decoder (64 bytes) for every plausible file size.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/errors.h"
#include "image/format_codec.h"
#include "stream/stream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckpt::image::detail;
  if (size < kTrailerSize + 8) return 0;
  uint64_t file_size = get64(data) | kTrailerSize;
  uint8_t t[kTrailerSize];
  std::memcpy(t, data + 8, kTrailerSize);
  try {
    decode_trailer(t, file_size, "fuzz");
  } catch (const ckpt::Error&) {
  }
  // Also with a valid checksum, to get past the first check.
  put64(t + 56, ckpt::stream::xxh3(t, 56));
  try {
    decode_trailer(t, file_size, "fuzz");
  } catch (const ckpt::Error&) {
  }
  return 0;
}
