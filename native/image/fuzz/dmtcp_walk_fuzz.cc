// Fuzzes the DMTCP logical-stream walker (records, data lengths, end marker),
// feeding the input in pieces whose sizes come from the input itself.
#include <cstddef>
#include <cstdint>

#include "common/errors.h"
#include "image/dmtcp_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ckpt::image::dmtcp;
  if (size < 1) return 0;
  size_t piece = 1 + data[0] * 97u;
  StreamWalker w("fuzz");
  try {
    for (size_t off = 1; off < size; off += piece) w.feed(data + off, off + piece <= size ? piece : size - off);
    w.finish();
  } catch (const ckpt::Error&) {
  }
  return 0;
}
