// The restart-file indexer: finds checkpoint images (ours and DMTCP's, raw,
// gzip or wrapped) and restart scripts under the given paths, groups them by
// computation and generation, decides which sets are complete and picks the
// newest complete generation of each computation.
//
// Cost: per image, one open + one header read + one small tail read (O(1),
// independent of image size); gzip DMTCP images additionally inflate their
// first 4096 bytes. With `deep`, every image is read in full (ckpt: every
// chunk checksum; DMTCP: a full record walk / gzip decompression).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ckpt::image {

struct IndexOptions {
  bool deep = false;
  unsigned max_depth = 4;        // directory levels below each given path
  unsigned threads = 0;          // deep verification threads (0 = hardware)
  // Called from the calling thread: (images done, images total).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct IndexedImage {
  std::string path;
  uint64_t bytes = 0;
  std::string encoding;          // "ckpt-raw" | "ckpt-zstd" | "ckpt-mixed" | "raw" | "gzip" | "wrapped"
  std::string process_id;        // ckpt: header process id; DMTCP: upid text
  std::string parent_id;
  int32_t pid = 0;               // virtual pid if known, else real pid
  std::string host;              // ckpt: header hostname; DMTCP: from the restart script ("" if unknown)
  std::string program;
  int64_t mtime_ns = 0;
  bool ok = true;                // intact as far as checked
  std::string problem;           // why not ok ("" if ok)
  std::string checked;           // "header" | "end-marker" | "trailer" | "deep"
  std::string files_dir;         // DMTCP: the image's _files directory, if present
  uint64_t root_xxh3 = 0;        // ckpt: the root checksum from the trailer (0 if unknown)
  uint64_t stopped_ns = 0;       // ckpt 1.1: how long the checkpoint stopped the process (0 if not recorded)
};

struct IndexedGeneration {
  std::string format;            // "ckpt" | "dmtcp"
  std::string computation;
  uint64_t generation = 0;
  uint32_t num_peers = 0;
  std::vector<IndexedImage> processes;
  bool complete = false;
  std::string reason;            // why not complete ("" if complete)
  std::vector<std::string> warnings;
  std::vector<std::string> hosts;
  uint64_t bytes = 0;
  int64_t newest_mtime_ns = 0;
  std::string dir;               // directory of the images (first image's, if they differ)
  std::string manifest;          // ckpt: MANIFEST path if present
  std::string restart_script;    // DMTCP: matching restart script, if found
  std::string script_timestamp;
  bool newest_complete = false;  // the generation a restart should use
  bool latest = false;           // ckpt: <computation>/latest points here
  std::vector<std::string> temp_files;  // temp files that make it incomplete or belong to it
};

// A file that looks like an image but could not be classified (unreadable
// header) or a stray temp file.
struct IndexProblem {
  std::string path;
  std::string problem;
};

struct IndexResult {
  std::vector<IndexedGeneration> generations;  // by computation, then generation descending
  std::vector<IndexProblem> unreadable;
  uint64_t files_scanned = 0;
};

IndexResult index_paths(const std::vector<std::string>& paths, const IndexOptions& options = {});

}  // namespace ckpt::image
