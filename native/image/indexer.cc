// Restart-file indexer (see indexer.h).
#include "image/indexer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <set>

#include "common/errors.h"
#include "image/dmtcp_image.h"
#include "image/format_codec.h"
#include "image/image_reader.h"
#include "image/restart_script.h"
#include "image/store.h"
#include "stream/stream.h"

namespace ckpt::image {

namespace {

enum class Kind { CkptImage, CkptTemp, Manifest, DmtcpImage, DmtcpTemp, Script };

struct Found {
  std::string path, dir, name;
  Kind kind;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

bool ends_with(const std::string& s, const char* suf) {
  size_t l = std::char_traits<char>::length(suf);
  return s.size() > l && s.compare(s.size() - l, l, suf) == 0;
}

bool classify(const std::string& name, Kind& k) {
  std::string comp;
  uint64_t gen;
  if (ends_with(name, ".ckpt")) k = Kind::CkptImage;
  else if (ends_with(name, ".ckpt.tmp")) k = Kind::CkptTemp;
  else if (name == kManifestName) k = Kind::Manifest;
  else if (ends_with(name, ".dmtcp")) k = Kind::DmtcpImage;
  else if (ends_with(name, ".dmtcp.temp")) k = Kind::DmtcpTemp;
  else if (parse_restart_script_name(name, comp, gen)) k = Kind::Script;
  else return false;
  return true;
}

std::string dirname_of(const std::string& p) {
  auto s = p.find_last_of('/');
  if (s == std::string::npos) return ".";
  return s == 0 ? "/" : p.substr(0, s);
}
std::string basename_of(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

void scan(const std::string& dir, unsigned depth, std::vector<Found>& out, std::set<std::pair<dev_t, ino_t>>& seen,
          uint64_t& scanned) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  int dfd = ::dirfd(d);
  struct stat dst{};
  if (::fstat(dfd, &dst) == 0 && !seen.insert({dst.st_dev, dst.st_ino}).second) {
    ::closedir(d);
    return;  // already visited (bind mounts, the same path given twice)
  }
  std::vector<std::string> subdirs;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    scanned++;
    Kind k;
    bool is_dir = e->d_type == DT_DIR;
    bool is_file = e->d_type == DT_REG;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st{};
      if (::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      is_dir = S_ISDIR(st.st_mode);
      is_file = S_ISREG(st.st_mode);
    }
    if (is_dir) {
      // DMTCP's per-image "_files" directories hold copies of files, never images.
      if (depth > 0 && !ends_with(n, "_files")) subdirs.push_back(dir + "/" + n);
      continue;
    }
    if (!is_file || !classify(n, k)) continue;
    struct stat st{};
    if (::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    Found f;
    f.dir = dir;
    f.name = n;
    f.path = dir + "/" + n;
    f.kind = k;
    f.size = static_cast<uint64_t>(st.st_size);
    f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    out.push_back(std::move(f));
  }
  ::closedir(d);
  std::sort(subdirs.begin(), subdirs.end());
  for (const std::string& s : subdirs) scan(s, depth - 1, out, seen, scanned);
}

struct Key {
  std::string format, computation;
  uint64_t generation;
  bool operator<(const Key& o) const {
    return std::tie(format, computation, generation) < std::tie(o.format, o.computation, o.generation);
  }
};

// Reads just the header of a ckpt image (for grouping an image whose trailer
// is damaged).
bool read_ckpt_header(const std::string& path, ImageMeta& meta) {
  try {
    stream::File f = stream::File::open_read(path);
    std::vector<uint8_t> h(kPageSize);
    size_t n = f.pread_some(h.data(), h.size(), 0);
    uint32_t hs = detail::peek_header_size(h.data(), n);
    if (hs > kPageSize && hs <= detail::kMaxHeaderSize) {
      h.resize(hs);
      n += f.pread_some(h.data() + kPageSize, hs - kPageSize, kPageSize);
    }
    meta = detail::decode_header(h.data(), n, path);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::string what_of(const std::exception& e) { return e.what(); }

// What reading one image found out (computed on a worker thread).
struct Pre {
  bool have = false;  // the header could be read (the image can be grouped)
  bool ok = true;
  std::string problem;
  std::string checked;
  ImageMeta meta;     // ckpt
  uint64_t root = 0;  // ckpt
  dmtcp::Probe probe; // DMTCP
  bool walk_ok = true;
  std::string walk_error;
  bool files_dir = false;
};

Pre probe_ckpt(const std::string& path, bool deep, unsigned threads) {
  Pre p;
  try {
    QuickInfo q = quick_check(path);
    p.meta = std::move(q.meta);
    p.root = q.root_xxh3;
    p.have = true;
    p.checked = "trailer";
    if (deep) {
      ImageReader r(path, ReaderOptions{.threads = threads, .o_direct = true});  // as `ckpt verify`
      r.verify();
      p.checked = "deep";
    }
  } catch (const std::exception& e) {
    p.ok = false;
    p.problem = what_of(e);
    if (!p.have) p.have = read_ckpt_header(path, p.meta);
  }
  return p;
}

Pre probe_dmtcp(const std::string& path, bool deep) {
  Pre p;
  try {
    p.probe = dmtcp::probe(path);
    p.have = true;
  } catch (const std::exception& e) {
    p.problem = what_of(e);
    return p;
  }
  bool intact = p.probe.encoding == dmtcp::Encoding::Gzip ||
                (p.probe.encoding == dmtcp::Encoding::Raw && p.probe.end_ok && p.probe.second_header_ok);
  if (deep && intact) {
    try {
      dmtcp::walk(path);
    } catch (const std::exception& e) {
      p.walk_ok = false;
      p.walk_error = what_of(e);
    }
  }
  std::string files_dir = path.substr(0, path.size() - 6) + "_files";
  struct stat fst{};
  p.files_dir = path.size() > 6 && ::stat(files_dir.c_str(), &fst) == 0 && S_ISDIR(fst.st_mode);
  return p;
}

}  // namespace

IndexResult index_paths(const std::vector<std::string>& paths, const IndexOptions& opt) {
  IndexResult res;
  std::vector<Found> found;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (std::string p : paths) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0) throw_errno("cannot access " + p, errno);
    if (S_ISDIR(st.st_mode)) {
      scan(p, opt.max_depth, found, seen, res.files_scanned);
    } else {
      Kind k;
      std::string n = basename_of(p);
      if (!classify(n, k)) {
        // An explicitly named file: sniff its content instead of its name.
        uint8_t head[32] = {};
        try {
          stream::File f = stream::File::open_read(p);
          f.pread_some(head, sizeof head, 0);
        } catch (const Error&) {
        }
        if (has_image_magic(head, sizeof head)) k = Kind::CkptImage;
        else if (dmtcp::sniff(head, sizeof head) != dmtcp::Encoding::NotDmtcp) k = Kind::DmtcpImage;
        else {
          res.unreadable.push_back({p, "not a checkpoint image or restart script"});
          continue;
        }
      }
      res.files_scanned++;
      Found f;
      f.dir = dirname_of(p);
      f.name = n;
      f.path = p;
      f.kind = k;
      f.size = static_cast<uint64_t>(st.st_size);
      f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      found.push_back(std::move(f));
    }
  }

  std::map<Key, IndexedGeneration> groups;
  std::map<std::string, std::vector<const Found*>> temps_by_dir;  // ckpt temps
  std::map<std::string, const Found*> manifests;                  // dir -> MANIFEST
  std::map<std::string, std::vector<std::pair<const Found*, RestartScript>>> scripts;  // compGroup -> scripts
  std::map<std::string, const Found*> dmtcp_temps;                // final path -> temp
  uint64_t total_images = 0, done = 0;
  for (const Found& f : found)
    if (f.kind == Kind::CkptImage || f.kind == Kind::DmtcpImage) total_images++;
  if (opt.progress) opt.progress(0, total_images);
  unsigned threads = opt.threads ? opt.threads : stream::recommended_threads();

  // Reading the images is the expensive part (and I/O latency bound when
  // the cache is cold), so it runs on several threads; grouping below is
  // sequential and deterministic.
  std::vector<Pre> pres(found.size());
  {
    std::vector<size_t> todo;
    for (size_t i = 0; i < found.size(); i++)
      if (found[i].kind == Kind::CkptImage || found[i].kind == Kind::DmtcpImage) todo.push_back(i);
    unsigned io_threads = static_cast<unsigned>(std::min<size_t>(todo.size() / 64 + 1, opt.deep ? threads : 8));
    unsigned inner = opt.deep ? std::max(1u, threads / io_threads) : 1;
    std::atomic<size_t> next{0};
    auto body = [&] {
      for (size_t k; (k = next.fetch_add(1)) < todo.size();) {
        const Found& f = found[todo[k]];
        pres[todo[k]] = f.kind == Kind::CkptImage ? probe_ckpt(f.path, opt.deep, inner) : probe_dmtcp(f.path, opt.deep);
      }
    };
    std::vector<std::thread> ts;
    for (unsigned t = 1; t < io_threads; t++) ts.emplace_back(body);
    body();
    for (auto& t : ts) t.join();
  }

  for (const Found& f : found) {
    switch (f.kind) {
      case Kind::CkptTemp: temps_by_dir[f.dir].push_back(&f); break;
      case Kind::Manifest: manifests[f.dir] = &f; break;
      case Kind::DmtcpTemp: dmtcp_temps[f.path.substr(0, f.path.size() - 5)] = &f; break;
      case Kind::Script: {
        std::string comp;
        uint64_t gen = 0;
        parse_restart_script_name(f.name, comp, gen);
        try {
          if (f.size > (16u << 20)) throw Error(Errc::Corrupt, f.path + ": too large for a restart script");
          stream::File file = stream::File::open_read(f.path);
          std::string text(f.size, '\0');
          size_t n = file.pread_some(text.data(), text.size(), 0);
          text.resize(n);
          RestartScript s = parse_restart_script(text, f.path);
          s.comp_group = comp;
          s.generation = gen;
          scripts[comp].emplace_back(&f, std::move(s));
        } catch (const std::exception& e) {
          res.unreadable.push_back({f.path, what_of(e)});
        }
        break;
      }
      case Kind::CkptImage: {
        IndexedImage im;
        im.path = f.path;
        im.bytes = f.size;
        im.mtime_ns = f.mtime_ns;
        Pre& pre = pres[static_cast<size_t>(&f - found.data())];
        ImageMeta meta = std::move(pre.meta);
        bool have = pre.have;
        im.root_xxh3 = pre.root;
        im.checked = pre.checked;
        im.ok = pre.ok;
        im.problem = pre.problem;
        done++;
        if (opt.progress) opt.progress(done, total_images);
        if (!have) {
          res.unreadable.push_back({f.path, im.problem});
          break;
        }
        bool wrapped = meta.wrapped_format == "dmtcp" && meta.wrapped_header.size() >= dmtcp::kHeaderSize;
        Key key{"ckpt", meta.computation, meta.generation};
        if (wrapped) {
          try {
            dmtcp::Header h = dmtcp::parse_header(meta.wrapped_header.data(), meta.wrapped_header.size(), f.path);
            key = Key{"dmtcp", h.comp_group.text(), h.generation};
            im.encoding = "wrapped";
            im.process_id = h.upid.text();
            im.parent_id = h.uppid.is_zero() ? "" : h.uppid.text();
            im.pid = h.pid;
            im.program = h.procname;
            meta.num_peers = h.num_peers;
          } catch (const std::exception& e) {
            res.unreadable.push_back({f.path, what_of(e)});
            break;
          }
        } else {
          im.encoding = "ckpt";
          im.process_id = meta.process_id;
          im.parent_id = meta.parent_id;
          im.pid = meta.vpid ? meta.vpid : meta.pid;
          im.host = meta.hostname;
          im.program = meta.program;
          im.stopped_ns = meta.stopped_ns;
        }
        IndexedGeneration& g = groups[key];
        if (g.processes.empty()) {
          g.format = key.format;
          g.computation = key.computation;
          g.generation = key.generation;
          g.num_peers = meta.num_peers;
          g.dir = f.dir;
        } else if (g.num_peers != meta.num_peers) {
          g.warnings.push_back(f.path + ": numPeers " + std::to_string(meta.num_peers) + " differs from " + std::to_string(g.num_peers));
          g.num_peers = std::max(g.num_peers, meta.num_peers);
          g.reason = "images disagree on numPeers";
        }
        g.processes.push_back(std::move(im));
        break;
      }
      case Kind::DmtcpImage: {
        IndexedImage im;
        im.path = f.path;
        im.bytes = f.size;
        im.mtime_ns = f.mtime_ns;
        Pre& pre = pres[static_cast<size_t>(&f - found.data())];
        dmtcp::Probe pr = std::move(pre.probe);
        if (!pre.have) {
          done++;
          if (opt.progress) opt.progress(done, total_images);
          res.unreadable.push_back({f.path, pre.problem});
          break;
        }
        if (pr.encoding == dmtcp::Encoding::NotDmtcp || pr.encoding == dmtcp::Encoding::ForeignCompressed) {
          done++;
          if (opt.progress) opt.progress(done, total_images);
          res.unreadable.push_back({f.path, pr.encoding == dmtcp::Encoding::NotDmtcp
                                                ? "not a DMTCP image (unknown magic)"
                                                : "compressed with compress(1) (.Z): not indexed; decompress it"});
          break;
        }
        const dmtcp::Header& h = pr.header;
        im.encoding = pr.encoding == dmtcp::Encoding::Raw ? "raw" : "gzip";
        im.process_id = h.upid.text();
        im.parent_id = h.uppid.is_zero() ? "" : h.uppid.text();
        im.pid = h.pid;
        im.program = h.procname;
        if (pr.encoding == dmtcp::Encoding::Raw) {
          im.checked = "end-marker";
          if (!pr.end_ok) {
            im.ok = false;
            im.problem = f.path + ": at offset " + std::to_string(f.size >= 4096 ? f.size - 4096 : 0) +
                         ": the last 4096 bytes are not the end marker (image truncated or still being written)";
          } else if (!pr.second_header_ok) {
            im.ok = false;
            im.problem = f.path + ": at offset 4096: the second header copy differs from the first";
          }
        } else {
          im.checked = "header";
        }
        if (opt.deep && im.ok) {
          if (pre.walk_ok) {
            im.checked = "deep";
          } else {
            im.ok = false;
            im.problem = pre.walk_error;
          }
        }
        std::string prog, upid_text;
        if (dmtcp::parse_image_name(f.name, prog, upid_text) && upid_text != im.process_id) {
          im.ok = false;
          im.problem = f.path + ": file name says process " + upid_text + " but the header says " + im.process_id;
        }
        std::string files_dir = f.path.substr(0, f.path.size() - 6) + "_files";
        if (pre.files_dir) im.files_dir = files_dir;
        done++;
        if (opt.progress) opt.progress(done, total_images);
        Key key{"dmtcp", h.comp_group.text(), h.generation};
        IndexedGeneration& g = groups[key];
        if (g.processes.empty()) {
          g.format = "dmtcp";
          g.computation = key.computation;
          g.generation = key.generation;
          g.num_peers = h.num_peers;
          g.dir = f.dir;
        } else if (g.num_peers != h.num_peers) {
          g.warnings.push_back(f.path + ": numPeers " + std::to_string(h.num_peers) + " differs from " + std::to_string(g.num_peers));
          g.num_peers = std::max(g.num_peers, h.num_peers);
          g.reason = "images disagree on numPeers";
        }
        g.processes.push_back(std::move(im));
        break;
      }
    }
  }

  // Completeness of every group.
  for (auto& entry : groups) {
    IndexedGeneration& g = entry.second;
    std::sort(g.processes.begin(), g.processes.end(), [](const IndexedImage& a, const IndexedImage& b) { return a.path < b.path; });
    std::set<std::string> ids, dirs, hosts;
    std::string dup;
    std::set<std::string> plain;
    for (const IndexedImage& im : g.processes)
      if (im.encoding != "wrapped") plain.insert(im.process_id);
    for (const IndexedImage& im : g.processes) {
      if (im.encoding == "wrapped" && plain.count(im.process_id)) {
        // A compressed copy made by `ckpt image convert` next to its source
        // is the same process, not a second one.
        g.warnings.push_back(im.path + " is a compressed copy of another image of this set");
      } else if (!ids.insert(im.process_id).second && dup.empty()) {
        dup = im.process_id;
      }
      dirs.insert(dirname_of(im.path));
      g.bytes += im.bytes;
      g.newest_mtime_ns = std::max(g.newest_mtime_ns, im.mtime_ns);
    }
    auto fail = [&](const std::string& why) {
      if (g.reason.empty()) g.reason = why;
    };
    for (const IndexedImage& im : g.processes)
      if (!im.ok) fail("damaged image: " + im.problem);
    if (!dup.empty()) fail("process " + dup + " appears in more than one image");
    if (ids.size() < g.num_peers)
      fail(std::to_string(ids.size()) + " of " + std::to_string(g.num_peers) + " process images present");
    else if (ids.size() > g.num_peers)
      fail(std::to_string(ids.size()) + " process images but numPeers is " + std::to_string(g.num_peers));

    if (g.format == "ckpt") {
      for (const std::string& d : dirs) {
        auto t = temps_by_dir.find(d);
        if (t != temps_by_dir.end())
          for (const Found* tf : t->second) {
            g.temp_files.push_back(tf->path);
            fail("unfinished temporary file " + tf->path + " (a writer died or is still running)");
          }
        auto m = manifests.find(d);
        if (m == manifests.end()) {
          fail("not committed: no MANIFEST in " + d + " (the checkpoint was interrupted or is still being written)");
          continue;
        }
        g.manifest = m->second->path;
        try {
          Manifest man = read_manifest(m->second->path);
          if (man.computation != g.computation || man.generation != g.generation)
            throw Error(Errc::Corrupt, m->second->path + ": stale MANIFEST (for " + man.computation + " generation " +
                                           std::to_string(man.generation) + ")");
          std::map<std::string, const ManifestEntry*> listed;
          for (const ManifestEntry& e : man.entries) listed[e.name] = &e;
          for (const IndexedImage& im : g.processes) {
            if (dirname_of(im.path) != d) continue;
            auto it = listed.find(basename_of(im.path));
            if (it == listed.end()) throw Error(Errc::Corrupt, im.path + ": not listed in MANIFEST (stale MANIFEST)");
            if (it->second->size != im.bytes)
              throw Error(Errc::Corrupt, im.path + ": size " + std::to_string(im.bytes) + " differs from MANIFEST (" +
                                             std::to_string(it->second->size) + ")");
            if (im.ok) {
              if (im.root_xxh3 != it->second->xxh3)
                throw Error(Errc::Corrupt, im.path + ": root checksum differs from MANIFEST (stale MANIFEST or replaced image)");
            }
            listed.erase(it);
          }
          for (auto& [name, e] : listed)
            if (!e->process_id.empty()) throw Error(Errc::Incomplete, d + "/" + name + ": listed in MANIFEST but missing");
          if (man.num_peers != g.num_peers)
            throw Error(Errc::Corrupt, m->second->path + ": MANIFEST says " + std::to_string(man.num_peers) + " processes");
        } catch (const std::exception& e) {
          fail(what_of(e));
        }
      }
      std::string comp_dir = dirname_of(g.dir);
      g.latest = read_latest(comp_dir) == basename_of(g.dir) && dirs.size() == 1;
      for (const IndexedImage& im : g.processes)
        if (!im.host.empty()) hosts.insert(im.host);
    } else {
      // Temp files of a newer checkpoint next to members.
      for (const IndexedImage& im : g.processes) {
        std::string final_path = im.path;
        if (im.encoding == "wrapped") continue;
        auto t = dmtcp_temps.find(final_path);
        if (t != dmtcp_temps.end() && t->second->mtime_ns >= im.mtime_ns) {
          g.temp_files.push_back(t->second->path);
          fail("a newer checkpoint was interrupted or is in progress: " + t->second->path +
               " (remove it if no checkpoint is running)");
        }
      }
      // Restart script: unique-mode script of this generation, else the
      // computation's script.
      auto s = scripts.find(g.computation);
      if (s != scripts.end()) {
        const std::pair<const Found*, RestartScript>* best = nullptr;
        for (const auto& cand : s->second)
          if (cand.second.generation == g.generation) best = &cand;
        if (!best)
          for (const auto& cand : s->second)
            if (cand.second.generation == 0) best = &cand;
        if (best) {
          g.restart_script = best->first->path;
          g.script_timestamp = best->second.timestamp;
          std::map<std::string, std::string> host_of;
          for (const auto& img : best->second.images) host_of[basename_of(img.path)] = img.host;
          for (IndexedImage& im : g.processes) {
            auto h = host_of.find(basename_of(im.path));
            if (h != host_of.end()) im.host = h->second;
            if (im.host.empty() && !best->second.coord_host.empty()) {
              // Single-host scripts do not name the worker host; the
              // coordinator's host is right when the hostid matches.
              uint64_t hid = 0;
              std::string text = im.process_id;
              hid = std::strtoull(text.substr(0, text.find('-')).c_str(), nullptr, 16);
              if (dmtcp::hostid_of(best->second.coord_host) == hid) im.host = best->second.coord_host;
            }
          }
          if (best->second.num_processes && static_cast<uint32_t>(best->second.num_processes) != g.num_peers)
            g.warnings.push_back(best->first->path + " lists " + std::to_string(best->second.num_processes) +
                                 " processes (it belongs to another generation)");
        }
      }
      for (const IndexedImage& im : g.processes) {
        if (!im.host.empty()) hosts.insert(im.host);
        if (im.encoding == "wrapped")
          g.warnings.push_back(im.path + " is compressed by ckpt: run `ckpt image convert --raw` before dmtcp_restart");
      }
    }
    g.hosts.assign(hosts.begin(), hosts.end());
    g.complete = g.reason.empty();
  }

  // Newest complete generation per computation.
  std::map<std::pair<std::string, std::string>, IndexedGeneration*> best;
  for (auto& [key, g] : groups) {
    if (!g.complete) continue;
    auto& b = best[{g.format, g.computation}];
    if (!b || g.generation > b->generation || (g.generation == b->generation && g.newest_mtime_ns > b->newest_mtime_ns))
      b = &g;
  }
  for (auto& [k, g] : best) g->newest_complete = true;
  for (auto& [key, g] : groups) res.generations.push_back(std::move(g));
  std::stable_sort(res.generations.begin(), res.generations.end(), [](const IndexedGeneration& a, const IndexedGeneration& b) {
    if (a.computation != b.computation) return a.computation < b.computation;
    if (a.format != b.format) return a.format < b.format;
    return a.generation > b.generation;
  });
  return res;
}

}  // namespace ckpt::image
