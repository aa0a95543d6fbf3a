// Parser of the engine blob (the built-in engine's private part of an image
// header: process header, mapping table, descriptor table, pipe contents).
// The restarter trusts nothing in it: every count, size, string and enum is
// checked here before any of it is used (fuzzed: fuzz/blob_fuzz.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine_abi.h"

namespace ckpt::engine {

struct ParsedBlob {
  ProcHeader hdr{};
  std::vector<RegionDesc> regions;
  std::vector<FdDesc> fds;
  std::vector<std::string> pipe_data;  // one per fd (empty when none)
};

// Limits a valid blob respects.
inline constexpr int32_t kMaxBlobRegions = 1 << 20;
inline constexpr int32_t kMaxBlobFds = 1024;

// Throws ckpt::Error: Unsupported for a blob of another engine version,
// Corrupt (with the reason) for anything malformed.
ParsedBlob parse_engine_blob(const uint8_t* data, size_t len);

}  // namespace ckpt::engine
