// Checkpoint directory layout, per-generation MANIFEST (the commit record)
// and the `latest` pointer. Normative description: docs/image-format.md,
// "Directory layout" (layout version 1).
//
//   <root>/<computation>/gen-<N>/<process>.ckpt   images of generation N
//   <root>/<computation>/gen-<N>/MANIFEST          commit record, written last
//   <root>/<computation>/latest -> gen-<N>         symlink, switched atomically
//
// HowTo (engine or CLI, after every process of generation N has finished its
// ImageWriter):
//
//   std::string dir = ckpt::image::generation_dir(root, "c1", 3);   // mkdir -p before writing
//   ... write images into dir ...
//   Manifest m = ckpt::image::commit_generation(dir);   // verify, MANIFEST, latest
//
// commit_generation() checks every *.ckpt in the directory in O(1) (header +
// trailer), requires that they all carry the same computation and
// generation, that there are exactly numPeers of them with distinct
// process ids and that no "*.tmp" file is left, then writes MANIFEST
// (temp, fsync, rename, fsync dir) and switches `latest`. Throws
// ckpt::Error: Incomplete (wrong count / leftover temp), Corrupt, Io.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::image {

inline constexpr const char* kManifestName = "MANIFEST";
inline constexpr const char* kLatestName = "latest";
inline constexpr const char* kGenPrefix = "gen-";
inline constexpr uint32_t kLayoutVersion = 1;

struct ManifestEntry {
  std::string name;       // file name inside the generation directory (no '/')
  uint64_t size = 0;      // file size in bytes
  uint64_t xxh3 = 0;      // .ckpt: the image's root checksum (trailer); other files: XXH3-64 of the contents
  std::string process_id; // .ckpt: the process id from its header; else empty
};

struct Manifest {
  uint32_t version = kLayoutVersion;
  std::string computation;
  uint64_t generation = 0;
  uint32_t num_peers = 0;
  uint64_t created_unix_ns = 0;
  std::vector<ManifestEntry> entries;
};

// "<root>/<computation>/gen-<generation>". Validates the computation id
// (non-empty, <= 255 bytes, no '/', not "." or "..", no control characters).
std::string generation_dir(const std::string& root, const std::string& computation, uint64_t generation);
// Checks a computation id; throws InvalidArgument with the reason.
void validate_computation_id(std::string_view id);
// Parses "gen-<N>"; returns false if `name` is not a generation directory name.
bool parse_generation_name(std::string_view name, uint64_t& generation);

// MANIFEST text encoding (see docs/image-format.md). encode is canonical;
// parse checks the trailing checksum line and every field, throwing Corrupt
// with "<path_for_errors>: ... at offset N".
std::string encode_manifest(const Manifest& m);
Manifest parse_manifest(std::string_view text, const std::string& path_for_errors);
Manifest read_manifest(const std::string& path);

struct CommitOptions {
  bool sync = true;             // fsync MANIFEST and directories
  bool switch_latest = true;    // update <computation dir>/latest
  uint32_t expect_peers = 0;    // if non-zero, also require this many images
};

// Verifies the generation directory and commits it (see above).
Manifest commit_generation(const std::string& gen_dir, const CommitOptions& options = {});

// Atomically points <computation_dir>/latest at `target` (a gen-<N> name):
// symlink to a temp name, rename over `latest`, fsync the directory.
void switch_latest(const std::string& computation_dir, const std::string& target, bool sync = true);
// The target of <computation_dir>/latest ("" if absent or not a gen-<N> name).
std::string read_latest(const std::string& computation_dir);

// Checks a committed generation: MANIFEST parses, matches the directory name,
// lists numPeers images, every listed file exists with the listed size and
// root checksum (O(1) per image), and no unlisted *.ckpt or *.tmp is present.
// With deep = true every chunk of every image is verified too. Throws the
// first problem (Incomplete / Corrupt / Truncated / NotFound) naming the file.
void verify_generation(const std::string& gen_dir, bool deep);

}  // namespace ckpt::image
