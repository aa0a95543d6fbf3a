// Fuzzes the restart-script parser and script-name parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/errors.h"
#include "image/restart_script.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ckpt::image::parse_restart_script(text, "fuzz");
  } catch (const ckpt::Error&) {
  }
  std::string comp;
  uint64_t gen;
  ckpt::image::parse_restart_script_name(text.substr(0, 200), comp, gen);
  return 0;
}
