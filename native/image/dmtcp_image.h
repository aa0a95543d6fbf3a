// Reader for DMTCP 5.0 checkpoint images (format "v4.0"), as measured in the
// project's DMTCP image spec: the 4096-byte checkpoint header (written
// twice), 4096-byte area records with optional data, and a 4096-byte end
// marker; raw or as a gzip stream. Only facts about the layout are used.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace ckpt::image::dmtcp {

inline constexpr size_t kHeaderSize = 4096;
inline constexpr size_t kRecordSize = 4096;

struct UniquePid {
  uint64_t hostid = 0;
  uint64_t time = 0;
  int32_t pid = 0;
  uint32_t generation = 0;
  bool is_zero() const { return hostid == 0 && time == 0 && pid == 0; }
  std::string text() const;  // "%x-%d-%x" of hostid, pid, time
};

struct Header {
  std::string version;  // "v4.0" (or "v5.0" for the later header variant)
  UniquePid upid, uppid, comp_group;
  uint32_t generation = 0;
  int32_t pid = 0, ppid = 0, sid = 0, gid = 0, fgid = 0;
  uint32_t is_root = 0, num_peers = 0, elf_type = 0;
  uint64_t vdso_offsets[4] = {};
  uint64_t saved_brk = 0, end_of_stack = 0;
  std::string procname, proc_self_exe;
};

enum class Encoding { Raw, Gzip, ForeignCompressed, NotDmtcp };

// Classifies the first bytes of a file.
Encoding sniff(const uint8_t* p, size_t len);

// Parses a 4096-byte header. Throws Corrupt (bad magic or values),
// Unsupported (another image version), naming `path` and the offset.
Header parse_header(const uint8_t* p, size_t len, const std::string& path);

// Data bytes that follow an area record (the restorer's rule); sets
// end = true for the end marker.
uint64_t record_data_len(const uint8_t* rec, bool& end);

// O(1) facts about an image file: encoding, header (inflating only the first
// 4096 bytes of a gzip stream), and for raw images whether the last 4096
// bytes are the end marker.
struct Probe {
  Encoding encoding = Encoding::NotDmtcp;
  Header header;
  uint64_t file_size = 0;
  bool end_checked = false;  // raw only: the end-marker test was possible
  bool end_ok = false;       // raw only: the last record is the end marker
  bool second_header_ok = false;  // raw only: the two header copies are identical
};
Probe probe(const std::string& path);

// Full walk (O(records) for raw via pread; O(size) for gzip via zlib):
// header, header copy, every record, the end marker, and the byte count.
struct Walk {
  uint64_t logical_size = 0, records = 0, top_level = 0, data_bytes = 0;
  uint64_t content_xxh3 = 0;  // of the logical (uncompressed) stream; only when hashed
};
// Throws Corrupt / Truncated naming the file and the logical offset.
// `hash` also hashes the logical stream (reads all data of raw images).
Walk walk(const std::string& path, bool hash = false, const std::function<void(uint64_t, uint64_t)>& progress = {});

// Push parser over the logical stream (used for gzip images and fuzzing).
class StreamWalker {
 public:
  explicit StreamWalker(std::string path);
  void feed(const uint8_t* p, size_t n);  // throws on a malformed stream
  void finish();                           // throws Truncated if the end marker was not reached
  const Walk& result() const { return w_; }
  const Header& header() const { return header_; }
  bool done() const { return state_ == State::Done; }

 private:
  enum class State { Header, Record, Data, Done } state_ = State::Header;
  std::string path_;
  std::string buf_;
  uint64_t skip_ = 0;
  uint64_t off_ = 0;  // logical offset consumed
  Walk w_;
  Header header_;
  std::string first_header_;
  bool in_parent_ = false;
};

// Inflates the gzip file at `path` (all members; zero padding after the
// last one is ignored, as gzip does) and calls sink(out, n) with the output,
// stopping early when sink returns false; progress(compressed bytes read,
// file size). `block` is the size of the input and output buffers. Throws
// Corrupt / Truncated naming the file and the compressed offset.
void inflate_file(const std::string& path, const std::function<bool(const uint8_t*, size_t)>& sink,
                  const std::function<void(uint64_t, uint64_t)>& progress = {}, size_t block = size_t{1} << 18);

// Parses "ckpt_<prog>_<hostid>-<pid>-<time>.dmtcp" (split on the last '_').
bool parse_image_name(std::string_view name, std::string& prog, std::string& upid_text);

// The hostid DMTCP derives from a hostname (for checking a script's host).
uint64_t hostid_of(std::string_view hostname);

}  // namespace ckpt::image::dmtcp
