// Fuzzes the DMTCP checkpoint-header parser and the image-name parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/errors.h"
#include "image/dmtcp_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckpt::image::dmtcp;
  try {
    Header h = parse_header(data, size, "fuzz");
    (void)h.upid.text();
  } catch (const ckpt::Error&) {
  }
  std::string prog, up;
  parse_image_name(std::string_view(reinterpret_cast<const char*>(data), size < 300 ? size : 300), prog, up);
  return 0;
}
