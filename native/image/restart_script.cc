// Restart-script parser (see restart_script.h). Only the assignment and
// comment lines described in the DMTCP image spec are read.
#include "image/restart_script.h"

#include <cstdlib>

#include "common/errors.h"

namespace ckpt::image {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> w;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') j++;
    if (j > i) w.push_back(s.substr(i, j - i));
    i = j;
  }
  return w;
}

bool to_int(std::string_view s, int& v) {
  if (s.empty() || s.size() > 9) return false;
  int r = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    r = r * 10 + (c - '0');
  }
  v = r;
  return true;
}

// Value of `name="..."` or `name=...` (unquoted), or nullopt-like false.
bool assignment(std::string_view line, std::string_view name, std::string& value) {
  if (line.size() <= name.size() || line.substr(0, name.size()) != name || line[name.size()] != '=') return false;
  std::string_view v = line.substr(name.size() + 1);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  value = std::string(v);
  return true;
}

}  // namespace

bool parse_restart_script_name(std::string_view name, std::string& comp_group, uint64_t& generation) {
  constexpr std::string_view pre = "dmtcp_restart_script_", suf = ".sh";
  if (name.size() <= pre.size() + suf.size() || name.substr(0, pre.size()) != pre ||
      name.substr(name.size() - suf.size()) != suf)
    return false;
  std::string_view mid = name.substr(pre.size(), name.size() - pre.size() - suf.size());
  generation = 0;
  // <hex>-<dec>-<hex>[_<gen, >= 5 digits>]
  size_t us = mid.find('_');
  if (us != std::string_view::npos) {
    std::string_view g = mid.substr(us + 1);
    if (g.size() < 5 || g.size() > 19) return false;
    uint64_t v = 0;
    for (char c : g) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + uint64_t(c - '0');
    }
    generation = v;
    mid = mid.substr(0, us);
  }
  size_t d1 = mid.find('-'), d2 = mid.rfind('-');
  if (d1 == std::string_view::npos || d1 == d2 || d1 == 0 || d2 + 1 >= mid.size()) return false;
  for (char c : mid)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-')) return false;
  comp_group = std::string(mid);
  return true;
}

RestartScript parse_restart_script(std::string_view text, const std::string& path) {
  auto bad = [&](size_t off, const std::string& what) {
    return Error(Errc::Corrupt, path + ": at offset " + std::to_string(off) + ": " + what);
  };
  if (text.size() > (16u << 20)) throw bad(0, "restart script larger than 16 MiB");
  if (text.substr(0, 2) != "#!") throw bad(0, "not a shell script");
  RestartScript s;
  bool saw_marker = false, in_workers = false, saw_files = false;
  size_t off = 0;
  while (off < text.size()) {
    size_t nl = text.find('\n', off);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view raw = text.substr(off, nl - off);
    std::string_view line = trim(raw);
    std::string v;
    if (in_workers) {
      if (line == "'") {
        in_workers = false;
      } else if (!line.empty()) {
        // " :: <host> :<mode>: <image>... : <shell>"
        auto w = words(line);
        if (w.size() < 6 || w[0] != "::" || w[2].size() < 2 || w[2].front() != ':' || w[2].back() != ':' ||
            w[w.size() - 2] != ":")
          throw bad(off, "malformed worker_ckpts line");
        for (size_t i = 3; i + 2 < w.size(); i++) s.images.push_back({std::string(w[1]), std::string(w[i])});
      }
    } else if (assignment(line, "ckpt_timestamp", v)) {
      s.timestamp = v;
      saw_marker = true;
    } else if (assignment(line, "coord_host", v) && v.find('$') == std::string::npos) {
      s.coord_host = v;
    } else if (assignment(line, "coord_port", v) && v.find('$') == std::string::npos) {
      if (!to_int(v, s.coord_port)) throw bad(off, "bad coord_port");
    } else if (line.substr(0, 39) == "# Number of hosts in the computation = ") {
      if (!to_int(trim(line.substr(39)), s.num_hosts)) throw bad(off, "bad host count");
    } else if (line.substr(0, 43) == "# Number of processes in the computation = ") {
      if (!to_int(trim(line.substr(43)), s.num_processes)) throw bad(off, "bad process count");
    } else if (assignment(line, "given_ckpt_files", v)) {
      if (saw_files) throw bad(off, "given_ckpt_files appears twice");
      saw_files = true;
      for (auto p : words(v)) s.images.push_back({"", std::string(p)});
    } else if (line == "worker_ckpts='") {
      if (saw_files) throw bad(off, "worker_ckpts appears twice");
      saw_files = true;
      in_workers = true;
    }
    off = nl + 1;
  }
  if (in_workers) throw bad(text.size(), "worker_ckpts is not terminated (truncated script?)");
  if (!saw_marker) throw bad(0, "not a DMTCP restart script (no ckpt_timestamp line)");
  if (!saw_files) throw bad(text.size(), "no image list (given_ckpt_files or worker_ckpts)");
  return s;
}

}  // namespace ckpt::image
