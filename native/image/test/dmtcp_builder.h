// Builds small DMTCP v4.0 images from the documented layout (header twice,
// area records, end marker), for tests and fuzz seeds. No DMTCP bytes are
// copied: every field is written from the layout description.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace ckpt::test {

struct DmtcpProc {
  uint64_t hostid = 0x98ff, time = 0x1000;
  int32_t vpid = 40000;
  uint64_t parent_time = 0;
  int32_t parent_vpid = 0;
  uint64_t comp_time = 0x500;
  int32_t comp_pid = 40000;
  uint32_t generation = 1;
  uint32_t num_peers = 1;
  std::string procname = "prog";
};

inline void le(std::vector<uint8_t>& b, size_t off, uint64_t v, int n) {
  for (int i = 0; i < n; i++) b[off + size_t(i)] = uint8_t(v >> (8 * i));
}

inline std::vector<uint8_t> dmtcp_header(const DmtcpProc& p) {
  std::vector<uint8_t> h(4096, 0);
  const char sig[] = "DMTCP_CHECKPOINT_IMAGE_v4.0\n";
  std::memcpy(h.data(), sig, sizeof sig - 1);
  le(h, 32, p.hostid, 8);
  le(h, 40, p.time, 8);
  le(h, 48, uint32_t(p.vpid), 4);
  if (p.parent_vpid) {
    le(h, 56, p.hostid, 8);
    le(h, 64, p.parent_time, 8);
    le(h, 72, uint32_t(p.parent_vpid), 4);
  }
  le(h, 80, p.hostid, 8);
  le(h, 88, p.comp_time, 8);
  le(h, 96, uint32_t(p.comp_pid), 4);
  le(h, 100, p.generation, 4);
  le(h, 104, uint32_t(p.vpid), 4);
  le(h, 108, uint32_t(p.parent_vpid ? p.parent_vpid : 999), 4);
  le(h, 120, 0xffffffffu, 4);
  le(h, 124, p.parent_vpid ? 0 : 1, 4);
  le(h, 128, p.num_peers, 4);
  le(h, 132, 1, 4);
  std::memcpy(h.data() + 256, p.procname.data(), p.procname.size());
  return h;
}

inline std::vector<uint8_t> dmtcp_record(uint64_t addr, uint64_t size, uint64_t props, int64_t mmap_file_size,
                                         const std::string& name) {
  std::vector<uint8_t> r(4096, 0);
  le(r, 0, addr, 8);
  le(r, 8, addr + size, 8);
  le(r, 16, size, 8);
  le(r, 32, 3, 4);
  le(r, 40, 0x32, 4);
  le(r, 72, uint64_t(mmap_file_size), 8);
  le(r, 80, props, 8);
  std::memcpy(r.data() + 88, name.data(), name.size());
  return r;
}

// A complete small image: a file mapping with a 100-byte tail, an anonymous
// parent with a data child and a zero child, then the end marker.
inline std::vector<uint8_t> dmtcp_image(const DmtcpProc& p, uint64_t seed = 1) {
  std::vector<uint8_t> img = dmtcp_header(p);
  img.insert(img.end(), img.begin(), img.begin() + 4096);
  auto add = [&](const std::vector<uint8_t>& v) { img.insert(img.end(), v.begin(), v.end()); };
  add(dmtcp_record(0x400000, 4096, 0, 100, "/bin/prog"));
  for (int i = 0; i < 100; i++) img.push_back(uint8_t(seed + i));
  add(dmtcp_record(0x600000, 3 * 4096, 0x2, -1, "[heap]"));
  add(dmtcp_record(0x600000, 2 * 4096, 0x4, -1, "[heap]"));
  for (int i = 0; i < 2 * 4096; i++) img.push_back(uint8_t((i * 7 + seed) & 0xff));
  add(dmtcp_record(0x602000, 4096, 0x5, -1, "[heap]"));
  auto end = dmtcp_record(0, UINT64_MAX, 0, -1, "[vsyscall]");
  add(end);
  return img;
}

inline std::string dmtcp_name(const DmtcpProc& p) {
  char b[128];
  std::snprintf(b, sizeof b, "ckpt_%s_%llx-%d-%llx.dmtcp", p.procname.c_str(), (unsigned long long)p.hostid, p.vpid,
                (unsigned long long)p.time);
  return b;
}

}  // namespace ckpt::test
