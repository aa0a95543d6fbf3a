// Directory layout, MANIFEST and `latest` (see store.h and
// docs/image-format.md "Directory layout").
#include "image/store.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "common/errors.h"
#include "image/format_codec.h"
#include "image/image_reader.h"
#include "stream/stream.h"

namespace ckpt::image {

using detail::hex64;

void validate_computation_id(std::string_view id) {
  if (id.empty()) throw Error(Errc::InvalidArgument, "computation id must not be empty");
  if (id.size() > 255) throw Error(Errc::InvalidArgument, "computation id is longer than 255 bytes");
  if (id == "." || id == "..") throw Error(Errc::InvalidArgument, "computation id must not be '.' or '..'");
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f || c == '/')
      throw Error(Errc::InvalidArgument, "computation id must not contain '/' or control characters");
}

std::string generation_dir(const std::string& root, const std::string& computation, uint64_t generation) {
  validate_computation_id(computation);
  if (generation == 0) throw Error(Errc::InvalidArgument, "generation must be >= 1");
  std::string r = root.empty() ? "." : root;
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  return r + "/" + computation + "/" + kGenPrefix + std::to_string(generation);
}

bool parse_generation_name(std::string_view name, uint64_t& generation) {
  if (name.size() <= 4 || name.substr(0, 4) != kGenPrefix || name.size() > 4 + 19) return false;
  uint64_t v = 0;
  for (char c : name.substr(4)) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (name[4] == '0' || v == 0) return false;  // canonical: no leading zeros, >= 1
  generation = v;
  return true;
}

// ------------------------------------------------------------- MANIFEST

namespace {

// Names and ids are written percent-escaped so that a line always splits on
// single spaces: bytes <= 0x20, '%' and 0x7f become %XX.
std::string esc(std::string_view s) {
  std::string o;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == '%' || c >= 0x7f) {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

bool unesc(std::string_view s, std::string& out) {
  out.clear();
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return false;
    auto hexv = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int a = hexv(s[i + 1]), b = hexv(s[i + 2]);
    if (a < 0 || b < 0) return false;
    out += static_cast<char>(a * 16 + b);
    i += 2;
  }
  return true;
}

bool parse_u64(std::string_view s, uint64_t& v, int base = 10) {
  if (s.empty() || s.size() > (base == 16 ? 16u : 20u)) return false;
  if (base == 10 && s.size() > 1 && s[0] == '0') return false;
  unsigned __int128 acc = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return false;
    acc = acc * static_cast<unsigned>(base) + static_cast<unsigned>(d);
    if (acc > UINT64_MAX) return false;
  }
  v = static_cast<uint64_t>(acc);
  return true;
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> f;
  size_t i = 0;
  while (i <= line.size()) {
    size_t j = line.find(' ', i);
    if (j == std::string_view::npos) j = line.size();
    f.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return f;
}

}  // namespace

std::string encode_manifest(const Manifest& m) {
  std::ostringstream o;
  o << "ckpt-manifest " << m.version << "\n";
  o << "computation " << esc(m.computation) << "\n";
  o << "generation " << m.generation << "\n";
  o << "num-peers " << m.num_peers << "\n";
  o << "created " << m.created_unix_ns << "\n";
  for (const ManifestEntry& e : m.entries) {
    if (!e.process_id.empty())
      o << "image " << e.size << " " << hex64(e.xxh3) << " " << esc(e.process_id) << " " << esc(e.name) << "\n";
    else
      o << "file " << e.size << " " << hex64(e.xxh3) << " " << esc(e.name) << "\n";
  }
  std::string body = o.str();
  body += "checksum " + hex64(stream::xxh3(body.data(), body.size())) + "\n";
  return body;
}

Manifest parse_manifest(std::string_view text, const std::string& path) {
  auto bad = [&](size_t off, const std::string& what) -> Error {
    return Error(Errc::Corrupt, path + ": at offset " + std::to_string(off) + ": " + what);
  };
  if (text.size() > (64u << 20)) throw bad(0, "MANIFEST larger than 64 MiB");
  Manifest m;
  size_t off = 0;
  int line_no = 0;
  bool have[5] = {};
  std::set<std::string> names;
  while (off < text.size()) {
    size_t nl = text.find('\n', off);
    if (nl == std::string_view::npos) throw bad(off, "last line has no newline (file truncated?)");
    std::string_view line = text.substr(off, nl - off);
    auto f = split(line);
    std::string_view key = f[0];
    uint64_t v = 0;
    if (line_no == 0) {
      if (key != "ckpt-manifest" || f.size() != 2) throw bad(off, "not a ckpt MANIFEST");
      if (!parse_u64(f[1], v)) throw bad(off, "bad version");
      if (v != kLayoutVersion)
        throw Error(Errc::Unsupported, path + ": at offset " + std::to_string(off) + ": MANIFEST version " + std::string(f[1]) + " is not supported");
      m.version = static_cast<uint32_t>(v);
    } else if (key == "checksum") {
      if (f.size() != 2 || !parse_u64(f[1], v, 16) || f[1].size() != 16) throw bad(off, "bad checksum line");
      uint64_t actual = stream::xxh3(text.data(), off);
      if (actual != v) throw bad(off, "MANIFEST checksum mismatch (stored " + std::string(f[1]) + ", computed " + hex64(actual) + ")");
      if (nl + 1 != text.size()) throw bad(nl + 1, "data after the checksum line");
      for (int i = 0; i < 4; i++)
        if (!have[i]) throw bad(0, "MANIFEST lacks a required line");
      return m;
    } else if (key == "computation") {
      if (f.size() != 2 || have[0] || !unesc(f[1], m.computation)) throw bad(off, "bad computation line");
      try {
        validate_computation_id(m.computation);
      } catch (const Error& e) {
        throw bad(off, e.what());
      }
      have[0] = true;
    } else if (key == "generation") {
      if (f.size() != 2 || have[1] || !parse_u64(f[1], m.generation) || m.generation == 0) throw bad(off, "bad generation line");
      have[1] = true;
    } else if (key == "num-peers") {
      if (f.size() != 2 || have[2] || !parse_u64(f[1], v) || v == 0 || v > UINT32_MAX) throw bad(off, "bad num-peers line");
      m.num_peers = static_cast<uint32_t>(v);
      have[2] = true;
    } else if (key == "created") {
      if (f.size() != 2 || have[3] || !parse_u64(f[1], m.created_unix_ns)) throw bad(off, "bad created line");
      have[3] = true;
    } else if (key == "image" || key == "file") {
      bool img = key == "image";
      if (f.size() != (img ? 5u : 4u)) throw bad(off, "bad " + std::string(key) + " line");
      ManifestEntry e;
      if (!parse_u64(f[1], e.size) || f[2].size() != 16 || !parse_u64(f[2], e.xxh3, 16)) throw bad(off, "bad size or checksum");
      if (img && (!unesc(f[3], e.process_id) || e.process_id.empty())) throw bad(off, "bad process id");
      if (!unesc(f[img ? 4 : 3], e.name) || e.name.empty() || e.name == "." || e.name == ".." ||
          e.name.find('/') != std::string::npos || e.name.find('\0') != std::string::npos)
        throw bad(off, "bad file name");
      if (!names.insert(e.name).second) throw bad(off, "file listed twice: " + e.name);
      m.entries.push_back(std::move(e));
    } else {
      throw bad(off, "unknown line '" + std::string(key.substr(0, 32)) + "'");
    }
    off = nl + 1;
    line_no++;
  }
  throw bad(text.size(), "MANIFEST has no checksum line (truncated?)");
}

static std::string read_small_file(const std::string& path, size_t limit) {
  stream::File f = stream::File::open_read(path);
  uint64_t size = f.size();
  if (size > limit) throw Error(Errc::Corrupt, path + ": at offset 0: file is too large (" + std::to_string(size) + " bytes)");
  std::string s(size, '\0');
  f.pread_exact(s.data(), size, 0);
  return s;
}

Manifest read_manifest(const std::string& path) { return parse_manifest(read_small_file(path, 64u << 20), path); }

// --------------------------------------------------------------- commit

namespace {

struct DirScan {
  std::vector<std::string> images, temps, others;
};

DirScan scan_dir(const std::string& dir) {
  DirScan s;
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw_errno("cannot open directory " + dir, errno);
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    auto ends = [&](const char* suf) {
      size_t l = std::strlen(suf);
      return n.size() > l && n.compare(n.size() - l, l, suf) == 0;
    };
    if (ends(kTempSuffix)) s.temps.push_back(n);
    else if (ends(kImageSuffix)) s.images.push_back(n);
    else s.others.push_back(n);
  }
  ::closedir(d);
  std::sort(s.images.begin(), s.images.end());
  std::sort(s.temps.begin(), s.temps.end());
  return s;
}

std::string dir_name_of(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  auto slash = d.find_last_of('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

std::string parent_of(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  auto slash = d.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : d.substr(0, slash);
}

}  // namespace

Manifest commit_generation(const std::string& gen_dir, const CommitOptions& options) {
  DirScan s = scan_dir(gen_dir);
  if (!s.temps.empty())
    throw Error(Errc::Incomplete, gen_dir + "/" + s.temps.front() +
                                      ": unfinished temporary file (a writer is still running or died); wait for it or remove it");
  if (s.images.empty()) throw Error(Errc::Incomplete, gen_dir + ": no *.ckpt images to commit");
  Manifest m;
  std::set<std::string> pids;
  for (const std::string& n : s.images) {
    std::string p = gen_dir + "/" + n;
    QuickInfo q = quick_check(p);
    if (m.entries.empty()) {
      m.computation = q.meta.computation;
      m.generation = q.meta.generation;
      m.num_peers = q.meta.num_peers;
    } else if (q.meta.computation != m.computation || q.meta.generation != m.generation) {
      throw Error(Errc::Incomplete, p + ": belongs to computation " + q.meta.computation + " generation " +
                                        std::to_string(q.meta.generation) + ", not " + m.computation + " generation " +
                                        std::to_string(m.generation) + " (mixed generations)");
    } else if (q.meta.num_peers != m.num_peers) {
      throw Error(Errc::Corrupt, p + ": numPeers " + std::to_string(q.meta.num_peers) + " differs from the other images (" +
                                     std::to_string(m.num_peers) + ")");
    }
    if (!pids.insert(q.meta.process_id).second)
      throw Error(Errc::Corrupt, p + ": process id " + q.meta.process_id + " appears in two images");
    m.entries.push_back(ManifestEntry{n, q.file_size, q.root_xxh3, q.meta.process_id});
  }
  uint64_t dir_gen = 0;
  if (parse_generation_name(dir_name_of(gen_dir), dir_gen) && dir_gen != m.generation)
    throw Error(Errc::Corrupt, gen_dir + ": directory is generation " + std::to_string(dir_gen) + " but its images are generation " +
                                   std::to_string(m.generation));
  if (m.entries.size() != m.num_peers)
    throw Error(Errc::Incomplete, gen_dir + ": " + std::to_string(m.entries.size()) + " of " + std::to_string(m.num_peers) +
                                      " process images present");
  if (options.expect_peers && options.expect_peers != m.num_peers)
    throw Error(Errc::Incomplete, gen_dir + ": expected " + std::to_string(options.expect_peers) + " processes, images say " +
                                      std::to_string(m.num_peers));
  m.created_unix_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  std::string text = encode_manifest(m);
  stream::write_file_atomic(gen_dir + "/" + kManifestName, text.data(), text.size(), 0644, options.sync);
  if (options.switch_latest) switch_latest(parent_of(gen_dir), dir_name_of(gen_dir), options.sync);
  return m;
}

void switch_latest(const std::string& computation_dir, const std::string& target, bool sync) {
  uint64_t g;
  if (!parse_generation_name(target, g)) throw Error(Errc::InvalidArgument, "latest must point at a gen-<N> directory, not '" + target + "'");
  std::string tmp = computation_dir + "/." + kLatestName + ".tmp-" + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  if (::symlink(target.c_str(), tmp.c_str()) != 0) throw_errno("cannot create symlink " + tmp, errno);
  try {
    stream::rename_durable(tmp, computation_dir + "/" + kLatestName, sync);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

std::string read_latest(const std::string& computation_dir) {
  std::string p = computation_dir + "/" + kLatestName;
  char buf[256];
  ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
  std::string t;
  if (n >= 0) {
    t.assign(buf, static_cast<size_t>(n));
  } else if (errno == EINVAL) {
    // A regular file holding the name (filesystems without symlinks).
    try {
      t = read_small_file(p, 255);
    } catch (const Error&) {
      return "";
    }
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  } else {
    return "";
  }
  uint64_t g;
  return parse_generation_name(t, g) ? t : "";
}

void verify_generation(const std::string& gen_dir, bool deep) {
  std::string mp = gen_dir + "/" + kManifestName;
  struct stat st{};
  if (::stat(mp.c_str(), &st) != 0)
    throw Error(Errc::Incomplete, mp + ": missing: the generation was never committed (writer died or is still running)");
  Manifest m = read_manifest(mp);
  uint64_t dir_gen = 0;
  if (parse_generation_name(dir_name_of(gen_dir), dir_gen) && dir_gen != m.generation)
    throw Error(Errc::Corrupt, mp + ": at offset 0: MANIFEST is for generation " + std::to_string(m.generation) +
                                   ", directory is " + dir_name_of(gen_dir) + " (stale MANIFEST)");
  DirScan s = scan_dir(gen_dir);
  if (!s.temps.empty())
    throw Error(Errc::Incomplete, gen_dir + "/" + s.temps.front() + ": leftover temporary file next to a committed generation");
  std::set<std::string> listed;
  size_t images = 0;
  for (const ManifestEntry& e : m.entries) {
    listed.insert(e.name);
    std::string p = gen_dir + "/" + e.name;
    if (!e.process_id.empty()) {
      images++;
      struct stat ist{};
      if (::stat(p.c_str(), &ist) != 0) throw Error(Errc::NotFound, p + ": listed in MANIFEST but missing");
      QuickInfo q = quick_check(p);
      if (q.file_size != e.size) throw Error(Errc::Corrupt, p + ": size " + std::to_string(q.file_size) + " differs from MANIFEST (" + std::to_string(e.size) + ")");
      if (q.root_xxh3 != e.xxh3)
        throw Error(Errc::Corrupt, p + ": at offset " + std::to_string(q.file_size - detail::kTrailerSize) + ": root checksum " +
                                       hex64(q.root_xxh3) + " differs from MANIFEST (" + hex64(e.xxh3) + "): stale or replaced image");
      if (q.meta.computation != m.computation || q.meta.generation != m.generation || q.meta.process_id != e.process_id)
        throw Error(Errc::Corrupt, p + ": header identity differs from MANIFEST");
      if (deep) {
        ImageReader r(p, ReaderOptions{.threads = stream::recommended_threads(), .o_direct = true});  // as `ckpt verify`
        r.verify();
      }
    } else {
      std::string data = read_small_file(p, UINT64_MAX);
      if (data.size() != e.size || stream::xxh3(data.data(), data.size()) != e.xxh3)
        throw Error(Errc::Corrupt, p + ": contents differ from MANIFEST");
    }
  }
  if (images != m.num_peers)
    throw Error(Errc::Incomplete, mp + ": lists " + std::to_string(images) + " images for " + std::to_string(m.num_peers) + " processes");
  for (const std::string& n : s.images)
    if (!listed.count(n)) throw Error(Errc::Corrupt, gen_dir + "/" + n + ": image not listed in MANIFEST (stale MANIFEST?)");
}

}  // namespace ckpt::image
