#include "engine/blob.h"

#include <cstring>

#include "common/errors.h"

namespace ckpt::engine {
namespace {

[[noreturn]] void bad(const std::string& why) { throw Error(Errc::Corrupt, "engine data: " + why); }

template <size_t N>
void require_cstr(const char (&s)[N], const char* what) {
  if (memchr(s, 0, N) == nullptr) bad(std::string(what) + " is not NUL-terminated");
}

}  // namespace

ParsedBlob parse_engine_blob(const uint8_t* data, size_t len) {
  ParsedBlob p;
  if (len < sizeof(ProcHeader)) bad("shorter than its header");
  memcpy(&p.hdr, data, sizeof p.hdr);
  const ProcHeader& h = p.hdr;
  if (memcmp(h.magic, kProcMagic, 8) != 0) bad("not written by the built-in engine");
  if (h.abi != kAbiVersion || h.header_size != sizeof(ProcHeader))
    throw Error(Errc::Unsupported, "engine data of version " + std::to_string(h.abi) + ", this build reads version " +
                                       std::to_string(kAbiVersion) + ": restart with the ckpt version that wrote it");
  if (h.n_regions < 0 || h.n_regions > kMaxBlobRegions) bad("bad region count");
  if (h.n_fds < 0 || h.n_fds > kMaxBlobFds) bad("bad descriptor count");
  if (h.pid <= 0) bad("bad pid");
  if (h.auxv_size > sizeof h.auxv || h.auxv_size % 16) bad("bad auxv size");
  require_cstr(h.progname, "program name");
  require_cstr(h.hostname, "host name");
  require_cstr(h.exe, "executable path");
  require_cstr(h.cwd, "working directory");
  require_cstr(h.kernel_release, "kernel release");
  if (h.vvar_start > h.vvar_end || h.vclock_start > h.vclock_end || h.vdso_start > h.vdso_end) bad("bad vDSO layout");
  size_t off = sizeof(ProcHeader);
  size_t need = off + size_t(h.n_regions) * sizeof(RegionDesc) + size_t(h.n_fds) * sizeof(FdDesc);
  if (len < need) bad("tables truncated");
  p.regions.resize(h.n_regions);
  if (h.n_regions) memcpy(p.regions.data(), data + off, size_t(h.n_regions) * sizeof(RegionDesc));
  off += size_t(h.n_regions) * sizeof(RegionDesc);
  uint64_t prev_end = 0;
  for (auto& r : p.regions) {
    require_cstr(r.path, "mapping path");
    if (r.start >= r.end || r.start % 4096 || r.end % 4096 || r.end > 0x800000000000ull) bad("bad mapping range");
    if (r.start < prev_end) bad("mappings overlap or are out of order");
    prev_end = r.end;
    if (r.kind > kRegHeap) bad("bad mapping kind");
    if (r.prot & ~7u) bad("bad protection bits");
    if (r.file_offset % 4096) bad("unaligned file offset");
  }
  p.fds.resize(h.n_fds);
  if (h.n_fds) memcpy(p.fds.data(), data + off, size_t(h.n_fds) * sizeof(FdDesc));
  off += size_t(h.n_fds) * sizeof(FdDesc);
  for (size_t i = 0; i < p.fds.size(); i++) {
    const FdDesc& f = p.fds[i];
    require_cstr(f.path, "descriptor path");
    if (f.fd < 0 || f.fd >= (1 << 20)) bad("bad descriptor number");
    for (size_t j = 0; j < i; j++)
      if (p.fds[j].fd == f.fd) bad("descriptor listed twice");
    if (f.kind > kFdOther) bad("bad descriptor kind");
    if (f.n_epoll > kMaxEpollTargets) bad("bad epoll count");
    if (f.addr_len > sizeof f.addr) bad("bad socket address length");
    if (f.data_len > len - off) bad("pipe data truncated");
    p.pipe_data.emplace_back(reinterpret_cast<const char*>(data + off), f.data_len);
    off += f.data_len;
  }
  return p;
}

}  // namespace ckpt::engine
