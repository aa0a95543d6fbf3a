// Fuzzes the region-table decoder with a geometry taken from the input.
#include <cstddef>
#include <cstdint>

#include "common/errors.h"
#include "image/format_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckpt::image::detail;
  if (size < 16) return 0;
  // First 16 bytes: table offset and chunk size exponent; the rest is the table.
  uint64_t table_offset = (get64(data) % (uint64_t(1) << 40)) & ~uint64_t(4095);
  uint64_t chunk = uint64_t(1) << (16 + data[8] % 11);
  try {
    Table t = decode_table(data + 16, size - 16, table_offset, 4096, chunk, "fuzz");
    auto again = encode_table(t);
    decode_table(again.data(), again.size(), table_offset, 4096, chunk, "re");
  } catch (const ckpt::Error&) {
  }
  return 0;
}
