// libFuzzer entry: the engine blob parser must reject any input with a
// ckpt::Error and never read out of bounds.
#include <cstddef>
#include <cstdint>

#include "common/errors.h"
#include "engine/blob.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    ckpt::engine::ParsedBlob p = ckpt::engine::parse_engine_blob(data, size);
    (void)p;
  } catch (const ckpt::Error&) {
  }
  return 0;
}
