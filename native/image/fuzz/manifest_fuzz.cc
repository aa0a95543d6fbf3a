// Fuzzes the MANIFEST parser; accepted manifests must re-encode identically.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/errors.h"
#include "image/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto m = ckpt::image::parse_manifest(text, "fuzz");
    if (ckpt::image::encode_manifest(m) != text) std::abort();
  } catch (const ckpt::Error&) {
  }
  return 0;
}
