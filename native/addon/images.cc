// Binding of the image format, indexer and store (native/image) for
// src/images.ts.
//
//   exports.images = {
//     index(paths[], {deep, maxDepth, threads}, progress?)  -> Promise<IndexResult>
//     inspect(path, {walk})                                 -> Promise<Inspection>
//     verifyImage(path, {threads}, progress?)               -> Promise<{format, logicalBytes}>
//     verifyGeneration(dir, deep)                           -> Promise<void>
//     commitGeneration(dir, {sync, switchLatest, expectPeers}) -> Promise<Manifest>
//     readManifest(path)                                    -> Promise<Manifest>
//     readLatest(computationDir)                            -> string
//     convert(src, dst, {toRaw, level, threads, sync}, progress?) -> Promise<ConvertResult>
//     writeImage(path, meta, regions[], options)            -> Promise<WriteSummary>
//   }
//
// `progress` is an optional Float64Array of length 2 that the worker thread
// fills with (done, total); the TypeScript side polls it to draw a progress
// bar. The array is referenced by the worker so it stays alive, and its
// memory never moves (plain, non-resizable ArrayBuffer).
//
// Options are validated in src/images.ts; the checks here are last-line
// guards. Every call that touches files runs on a libuv worker thread with
// its inputs copied into plain structs; the worker never touches napi_env.
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "addon/registry.h"
#include "common/errors.h"
#include "image/convert.h"
#include "image/dmtcp_image.h"
#include "image/format_codec.h"
#include "image/image_reader.h"
#include "image/image_writer.h"
#include "image/indexer.h"
#include "addon/promise_worker.h"
#include "image/store.h"
#include "stream/stream.h"

namespace ckpt::addon {
namespace {

using namespace ckpt::image;

std::string str_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw Error(Errc::InvalidArgument, std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}
Napi::Object obj_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() > i && info[i].IsObject()) return info[i].As<Napi::Object>();
  return Napi::Object::New(info.Env());
}
// The progress array (if any) as a raw pointer the worker writes to.
double* progress_slot(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsTypedArray()) return nullptr;
  auto ta = info[i].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array || ta.ElementLength() < 2) return nullptr;
  return reinterpret_cast<double*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
}
std::function<void(uint64_t, uint64_t)> progress_fn(double* slot) {
  if (!slot) return {};
  return [slot](uint64_t done, uint64_t total) {
    // Aligned 8-byte stores are single accesses on the supported platforms;
    // the JS side only reads these for display.
    reinterpret_cast<std::atomic<double>*>(slot + 1)->store(static_cast<double>(total), std::memory_order_relaxed);
    reinterpret_cast<std::atomic<double>*>(slot)->store(static_cast<double>(done), std::memory_order_relaxed);
  };
}

// A file named *.ckpt whose magic is damaged is still reported as a damaged
// ckpt image (not as "not a DMTCP image").
bool looks_like_ckpt(const std::string& path, const uint8_t* head) {
  bool named = path.size() > 5 && path.compare(path.size() - 5, 5, ".ckpt") == 0;
  return named && dmtcp::sniff(head, 32) == dmtcp::Encoding::NotDmtcp;
}

Napi::Value num(Napi::Env env, double v) { return Napi::Number::New(env, v); }
Napi::Value str_or_null(Napi::Env env, const std::string& s) { return s.empty() ? env.Null() : Napi::String::New(env, s); }

Napi::Object meta_js(Napi::Env env, const ImageMeta& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("formatVersion", Napi::String::New(env, std::to_string(m.format_major) + "." + std::to_string(m.format_minor)));
  o.Set("computation", m.computation);
  o.Set("generation", num(env, double(m.generation)));
  o.Set("numPeers", num(env, m.num_peers));
  o.Set("processId", m.process_id);
  o.Set("parentId", str_or_null(env, m.parent_id));
  o.Set("pid", num(env, m.pid));
  o.Set("ppid", num(env, m.ppid));
  o.Set("pgid", num(env, m.pgid));
  o.Set("sid", num(env, m.sid));
  o.Set("vpid", num(env, m.vpid));
  o.Set("vppid", num(env, m.vppid));
  o.Set("hostname", m.hostname);
  o.Set("kernelRelease", m.kernel_release);
  o.Set("program", m.program);
  o.Set("engine", m.engine);
  Napi::Array cf = Napi::Array::New(env, 4);
  for (uint32_t i = 0; i < 4; i++) cf.Set(i, Napi::String::New(env, detail::hex64(m.cpu_features[i])));
  o.Set("cpuFeatures", cf);
  o.Set("createdMs", num(env, double(m.created_unix_ns) / 1e6));
  o.Set("flags", num(env, m.flags));
  o.Set("stoppedMs", m.stopped_ns ? num(env, double(m.stopped_ns) / 1e6) : env.Null());
  o.Set("engineBlobBytes", num(env, double(m.engine_blob.size())));
  o.Set("wrappedFormat", str_or_null(env, m.wrapped_format));
  o.Set("headerSize", num(env, m.header_size));
  o.Set("chunkSize", num(env, double(m.chunk_size)));
  return o;
}

const char* kind_name(RegionKind k) {
  switch (k) {
    case RegionKind::Anonymous: return "anonymous";
    case RegionKind::File: return "file";
    case RegionKind::Heap: return "heap";
    case RegionKind::Stack: return "stack";
    case RegionKind::Special: return "special";
    case RegionKind::Blob: return "blob";
    case RegionKind::Other: return "other";
  }
  return "other";
}

Napi::Object manifest_js(Napi::Env env, const Manifest& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("version", num(env, m.version));
  o.Set("computation", m.computation);
  o.Set("generation", num(env, double(m.generation)));
  o.Set("numPeers", num(env, m.num_peers));
  o.Set("createdMs", num(env, double(m.created_unix_ns) / 1e6));
  Napi::Array a = Napi::Array::New(env, m.entries.size());
  for (uint32_t i = 0; i < m.entries.size(); i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", m.entries[i].name);
    e.Set("bytes", num(env, double(m.entries[i].size)));
    e.Set("checksum", detail::hex64(m.entries[i].xxh3));
    e.Set("processId", str_or_null(env, m.entries[i].process_id));
    a.Set(i, e);
  }
  o.Set("entries", a);
  return o;
}

Napi::Object index_js(Napi::Env env, const IndexResult& r) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Array gens = Napi::Array::New(env, r.generations.size());
  for (uint32_t i = 0; i < r.generations.size(); i++) {
    const IndexedGeneration& g = r.generations[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("format", g.format);
    o.Set("computation", g.computation);
    o.Set("generation", num(env, double(g.generation)));
    o.Set("numPeers", num(env, g.num_peers));
    o.Set("complete", Napi::Boolean::New(env, g.complete));
    o.Set("reason", str_or_null(env, g.reason));
    Napi::Array ps = Napi::Array::New(env, g.processes.size());
    for (uint32_t k = 0; k < g.processes.size(); k++) {
      const IndexedImage& im = g.processes[k];
      Napi::Object p = Napi::Object::New(env);
      p.Set("path", im.path);
      p.Set("bytes", num(env, double(im.bytes)));
      p.Set("processId", im.process_id);
      p.Set("parentId", str_or_null(env, im.parent_id));
      p.Set("pid", num(env, im.pid));
      p.Set("host", str_or_null(env, im.host));
      p.Set("program", im.program);
      p.Set("encoding", im.encoding);
      p.Set("ok", Napi::Boolean::New(env, im.ok));
      p.Set("problem", str_or_null(env, im.problem));
      p.Set("checked", im.checked);
      p.Set("mtimeMs", num(env, double(im.mtime_ns) / 1e6));
      p.Set("filesDir", str_or_null(env, im.files_dir));
      p.Set("stoppedMs", im.stopped_ns ? num(env, double(im.stopped_ns) / 1e6) : env.Null());
      ps.Set(k, p);
    }
    o.Set("processes", ps);
    Napi::Array hs = Napi::Array::New(env, g.hosts.size());
    for (uint32_t k = 0; k < g.hosts.size(); k++) hs.Set(k, g.hosts[k]);
    o.Set("hosts", hs);
    o.Set("bytes", num(env, double(g.bytes)));
    o.Set("newestMtimeMs", num(env, double(g.newest_mtime_ns) / 1e6));
    o.Set("dir", g.dir);
    o.Set("manifest", str_or_null(env, g.manifest));
    o.Set("restartScript", str_or_null(env, g.restart_script));
    o.Set("scriptTimestamp", str_or_null(env, g.script_timestamp));
    o.Set("newestComplete", Napi::Boolean::New(env, g.newest_complete));
    o.Set("latest", Napi::Boolean::New(env, g.latest));
    Napi::Array ws = Napi::Array::New(env, g.warnings.size());
    for (uint32_t k = 0; k < g.warnings.size(); k++) ws.Set(k, g.warnings[k]);
    o.Set("warnings", ws);
    Napi::Array ts = Napi::Array::New(env, g.temp_files.size());
    for (uint32_t k = 0; k < g.temp_files.size(); k++) ts.Set(k, g.temp_files[k]);
    o.Set("tempFiles", ts);
    gens.Set(i, o);
  }
  out.Set("generations", gens);
  Napi::Array un = Napi::Array::New(env, r.unreadable.size());
  for (uint32_t i = 0; i < r.unreadable.size(); i++) {
    Napi::Object u = Napi::Object::New(env);
    u.Set("path", r.unreadable[i].path);
    u.Set("problem", r.unreadable[i].problem);
    un.Set(i, u);
  }
  out.Set("unreadable", un);
  out.Set("filesScanned", num(env, double(r.files_scanned)));
  return out;
}

Napi::Value Index(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsArray()) throw Error(Errc::InvalidArgument, "paths must be an array");
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<std::string> paths;
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsString()) throw Error(Errc::InvalidArgument, "paths must be strings");
      paths.push_back(v.As<Napi::String>().Utf8Value());
    }
    Napi::Object o = obj_arg(info, 1);
    IndexOptions opt;
    opt.deep = bool_or(o, "deep", false);
    opt.max_depth = static_cast<unsigned>(num_or(o, "maxDepth", 4));
    opt.threads = static_cast<unsigned>(num_or(o, "threads", 0));
    opt.progress = progress_fn(progress_slot(info, 2));
    auto result = std::make_shared<IndexResult>();
    auto* w = new PromiseWorker(
        info.Env(), [paths, opt, result] { *result = index_paths(paths, opt); },
        [result](Napi::Env env) -> Napi::Value { return index_js(env, *result); });
    if (info.Length() > 2) w->Keep(info[2]);
    w->Queue();
    return w->Promise();
  });
}

struct Inspection {
  std::string format;  // "ckpt" | "dmtcp"
  ImageMeta meta;
  uint64_t file_size = 0, root = 0;
  std::vector<RegionInfo> regions;
  std::vector<ChunkDesc> chunks;
  dmtcp::Probe probe;
  bool walked = false;
  dmtcp::Walk walk;
  std::string walk_error;
};

Napi::Value Inspect(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string path = str_arg(info, 0, "path");
    Napi::Object o = obj_arg(info, 1);
    bool want_walk = bool_or(o, "walk", false);
    auto r = std::make_shared<Inspection>();
    auto* w = new PromiseWorker(
        info.Env(),
        [path, want_walk, r] {
          uint8_t head[32] = {};
          {
            stream::File f = stream::File::open_read(path);
            f.pread_some(head, sizeof head, 0);
          }
          if (has_image_magic(head, sizeof head) || looks_like_ckpt(path, head)) {
            ImageReader rd(path);
            r->format = "ckpt";
            r->meta = rd.meta();
            r->file_size = rd.file_size();
            r->root = rd.root_xxh3();
            r->regions = rd.regions();
            r->chunks = rd.chunks();
            return;
          }
          r->format = "dmtcp";
          r->probe = dmtcp::probe(path);
          if (r->probe.encoding == dmtcp::Encoding::NotDmtcp || r->probe.encoding == dmtcp::Encoding::ForeignCompressed)
            throw Error(Errc::Corrupt, path + ": at offset 0: not a ckpt or DMTCP checkpoint image");
          if (want_walk || r->probe.encoding == dmtcp::Encoding::Raw) {
            try {
              r->walk = dmtcp::walk(path);
              r->walked = true;
            } catch (const Error& e) {
              r->walk_error = e.what();
            }
          }
        },
        [r](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("format", r->format);
          if (r->format == "ckpt") {
            o.Set("fileSize", num(env, double(r->file_size)));
            o.Set("rootChecksum", detail::hex64(r->root));
            o.Set("header", meta_js(env, r->meta));
            Napi::Array regs = Napi::Array::New(env, r->regions.size());
            uint64_t stored_total = 0, zero_total = 0;
            for (uint32_t i = 0; i < r->regions.size(); i++) {
              const RegionInfo& ri = r->regions[i];
              Napi::Object g = Napi::Object::New(env);
              g.Set("start", Napi::String::New(env, "0x" + detail::hex64(ri.desc.start)));
              g.Set("end", Napi::String::New(env, "0x" + detail::hex64(ri.desc.end)));
              g.Set("length", num(env, double(ri.desc.length)));
              g.Set("prot", num(env, ri.desc.prot));
              g.Set("mapFlags", num(env, ri.desc.map_flags));
              g.Set("kind", kind_name(ri.desc.kind));
              g.Set("name", ri.desc.name);
              g.Set("chunks", num(env, double(ri.chunk_count)));
              uint64_t stored = 0, covered = 0, zstd = 0;
              for (uint64_t k = ri.first_chunk; k < ri.first_chunk + ri.chunk_count; k++) {
                stored += r->chunks[k].stored_len;
                covered += r->chunks[k].logical_len;
                if (r->chunks[k].codec == Codec::Zstd) zstd++;
              }
              stored_total += stored;
              zero_total += ri.desc.length - covered;
              g.Set("storedBytes", num(env, double(stored)));
              g.Set("zeroBytes", num(env, double(ri.desc.length - covered)));
              g.Set("zstdChunks", num(env, double(zstd)));
              if (ri.desc.region_flags & kRegionHasContentHash) g.Set("contentChecksum", detail::hex64(ri.desc.content_xxh3));
              regs.Set(i, g);
            }
            o.Set("regions", regs);
            o.Set("storedBytes", num(env, double(stored_total)));
            o.Set("zeroBytes", num(env, double(zero_total)));
            o.Set("chunkCount", num(env, double(r->chunks.size())));
          } else {
            const dmtcp::Header& h = r->probe.header;
            o.Set("fileSize", num(env, double(r->probe.file_size)));
            o.Set("encoding", r->probe.encoding == dmtcp::Encoding::Raw ? "raw" : "gzip");
            Napi::Object hj = Napi::Object::New(env);
            hj.Set("version", h.version);
            hj.Set("computation", h.comp_group.text());
            hj.Set("generation", num(env, h.generation));
            hj.Set("numPeers", num(env, h.num_peers));
            hj.Set("processId", h.upid.text());
            hj.Set("parentId", h.uppid.is_zero() ? env.Null() : Napi::String::New(env, h.uppid.text()));
            hj.Set("pid", num(env, h.pid));
            hj.Set("ppid", num(env, h.ppid));
            hj.Set("sid", num(env, h.sid));
            hj.Set("gid", num(env, h.gid));
            hj.Set("isRoot", Napi::Boolean::New(env, h.is_root != 0));
            hj.Set("procname", h.procname);
            hj.Set("procSelfExe", h.proc_self_exe);
            Napi::Array vd = Napi::Array::New(env, 4);
            for (uint32_t i = 0; i < 4; i++) vd.Set(i, Napi::String::New(env, "0x" + detail::hex64(h.vdso_offsets[i])));
            hj.Set("vdsoOffsets", vd);
            o.Set("header", hj);
            if (r->probe.encoding == dmtcp::Encoding::Raw) o.Set("endMarkerOk", Napi::Boolean::New(env, r->probe.end_ok));
            if (r->walked) {
              Napi::Object wj = Napi::Object::New(env);
              wj.Set("logicalSize", num(env, double(r->walk.logical_size)));
              wj.Set("records", num(env, double(r->walk.records)));
              wj.Set("topLevelAreas", num(env, double(r->walk.top_level)));
              wj.Set("dataBytes", num(env, double(r->walk.data_bytes)));
              o.Set("walk", wj);
            }
            o.Set("walkError", str_or_null(env, r->walk_error));
          }
          return o;
        });
    w->Queue();
    return w->Promise();
  });
}

Napi::Value VerifyImage(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string path = str_arg(info, 0, "path");
    Napi::Object o = obj_arg(info, 1);
    unsigned threads = static_cast<unsigned>(num_or(o, "threads", 0));
    if (threads == 0) threads = stream::recommended_threads();
    auto prog = progress_fn(progress_slot(info, 2));
    struct Out {
      std::string format;
      uint64_t logical = 0;
    };
    auto out = std::make_shared<Out>();
    auto* w = new PromiseWorker(
        info.Env(),
        [path, threads, prog, out] {
          uint8_t head[32] = {};
          {
            stream::File f = stream::File::open_read(path);
            f.pread_some(head, sizeof head, 0);
          }
          if (has_image_magic(head, sizeof head) || looks_like_ckpt(path, head)) {
            // O_DIRECT: verifying old checkpoints must not push the running
            // jobs' data out of the page cache, and the reads go through
            // AIO (see ImageReader::verify). Falls back to buffered reads
            // where the filesystem refuses O_DIRECT.
            ImageReader r(path, ReaderOptions{.threads = threads, .o_direct = true});
            r.verify(prog);
            out->format = "ckpt";
            for (const RegionInfo& ri : r.regions()) out->logical += ri.desc.length;
          } else {
            dmtcp::Walk wk = dmtcp::walk(path, false, prog);
            out->format = "dmtcp";
            out->logical = wk.logical_size;
          }
        },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("format", out->format);
          o.Set("logicalBytes", num(env, double(out->logical)));
          return o;
        });
    if (info.Length() > 2) w->Keep(info[2]);
    w->Queue();
    return w->Promise();
  });
}

Napi::Value VerifyGeneration(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string dir = str_arg(info, 0, "dir");
    bool deep = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    auto* w = new PromiseWorker(
        info.Env(), [dir, deep] { verify_generation(dir, deep); }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
    w->Queue();
    return w->Promise();
  });
}

Napi::Value CommitGeneration(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string dir = str_arg(info, 0, "dir");
    Napi::Object o = obj_arg(info, 1);
    CommitOptions opt;
    opt.sync = bool_or(o, "sync", true);
    opt.switch_latest = bool_or(o, "switchLatest", true);
    opt.expect_peers = static_cast<uint32_t>(num_or(o, "expectPeers", 0));
    auto m = std::make_shared<Manifest>();
    auto* w = new PromiseWorker(
        info.Env(), [dir, opt, m] { *m = commit_generation(dir, opt); },
        [m](Napi::Env env) -> Napi::Value { return manifest_js(env, *m); });
    w->Queue();
    return w->Promise();
  });
}

Napi::Value ReadManifest(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string path = str_arg(info, 0, "path");
    auto m = std::make_shared<Manifest>();
    auto* w = new PromiseWorker(
        info.Env(), [path, m] { *m = read_manifest(path); }, [m](Napi::Env env) -> Napi::Value { return manifest_js(env, *m); });
    w->Queue();
    return w->Promise();
  });
}

Napi::Value ReadLatest(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), read_latest(str_arg(info, 0, "computationDir")));
  });
}

Napi::Value Convert(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string src = str_arg(info, 0, "src"), dst = str_arg(info, 1, "dst");
    Napi::Object o = obj_arg(info, 2);
    ConvertOptions opt;
    opt.to_raw = bool_or(o, "toRaw", false);
    opt.zstd_level = static_cast<int>(num_or(o, "level", 3));
    opt.threads = static_cast<unsigned>(num_or(o, "threads", 0));
    opt.sync = bool_or(o, "sync", true);
    opt.progress = progress_fn(progress_slot(info, 3));
    auto res = std::make_shared<ConvertResult>();
    auto* w = new PromiseWorker(
        info.Env(), [src, dst, opt, res] { *res = convert_image(src, dst, opt); },
        [res](Napi::Env env) -> Napi::Value {
          Napi::Object r = Napi::Object::New(env);
          r.Set("from", res->from);
          r.Set("to", res->to);
          r.Set("inBytes", num(env, double(res->in_bytes)));
          r.Set("outBytes", num(env, double(res->out_bytes)));
          r.Set("logicalBytes", num(env, double(res->logical_bytes)));
          r.Set("contentChecksum", res->content_xxh3 ? Napi::Value(Napi::String::New(env, detail::hex64(res->content_xxh3))) : env.Null());
          return r;
        });
    if (info.Length() > 3) w->Keep(info[3]);
    w->Queue();
    return w->Promise();
  });
}

// writeImage(path, meta, regions[{start, end, kind, name, prot, data: Buffer|null}], options)
Napi::Value WriteImage(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::string path = str_arg(info, 0, "path");
    Napi::Object mj = obj_arg(info, 1);
    ImageMeta meta;
    meta.computation = str_or(mj, "computation");
    meta.generation = static_cast<uint64_t>(num_or(mj, "generation", 1));
    meta.num_peers = static_cast<uint32_t>(num_or(mj, "numPeers", 1));
    meta.process_id = str_or(mj, "processId");
    meta.parent_id = str_or(mj, "parentId");
    meta.pid = static_cast<int32_t>(num_or(mj, "pid", 0));
    meta.ppid = static_cast<int32_t>(num_or(mj, "ppid", 0));
    meta.vpid = static_cast<int32_t>(num_or(mj, "vpid", 0));
    meta.hostname = str_or(mj, "hostname");
    meta.kernel_release = str_or(mj, "kernelRelease");
    meta.program = str_or(mj, "program");
    meta.engine = str_or(mj, "engine");
    if (info.Length() < 3 || !info[2].IsArray()) throw Error(Errc::InvalidArgument, "regions must be an array");
    Napi::Array ra = info[2].As<Napi::Array>();
    struct R {
      RegionDesc d;
      const uint8_t* p = nullptr;
      size_t n = 0;
    };
    std::vector<R> regs;
    for (uint32_t i = 0; i < ra.Length(); i++) {
      Napi::Object rj = ra.Get(i).As<Napi::Object>();
      R r;
      r.d.start = static_cast<uint64_t>(num_or(rj, "start", 0));
      r.d.end = static_cast<uint64_t>(num_or(rj, "end", 0));
      r.d.prot = static_cast<uint32_t>(num_or(rj, "prot", 3));
      std::string kind = str_or(rj, "kind", "anonymous");
      r.d.kind = kind == "blob" ? RegionKind::Blob : kind == "file" ? RegionKind::File : RegionKind::Anonymous;
      r.d.name = str_or(rj, "name");
      Napi::Value data = rj.Get("data");
      if (data.IsBuffer()) {
        auto b = data.As<Napi::Buffer<uint8_t>>();
        r.p = b.Data();
        r.n = b.Length();
      }
      r.d.length = r.n;
      if (r.d.kind != RegionKind::Blob && r.d.end == 0) r.d.end = r.d.start + r.n;
      regs.push_back(r);
    }
    Napi::Object oj = obj_arg(info, 3);
    WriterOptions wo;
    wo.threads = static_cast<unsigned>(num_or(oj, "threads", 0));
    wo.codec = str_or(oj, "codec", "zstd") == "raw" ? Codec::Raw : Codec::Zstd;
    wo.zstd_level = static_cast<int>(num_or(oj, "level", 1));
    wo.chunk_size = static_cast<size_t>(num_or(oj, "chunkSize", 1 << 20));
    wo.max_in_flight = static_cast<size_t>(num_or(oj, "maxInFlight", 0));
    wo.sync = bool_or(oj, "sync", true);
    wo.o_direct = bool_or(oj, "direct", false);
    auto sum = std::make_shared<WriteSummary>();
    auto* w = new PromiseWorker(
        info.Env(),
        [path, meta, regs, wo, sum] {
          ImageWriter wr(path, wo);
          wr.set_header(meta);
          for (const R& r : regs) wr.add_region(r.d, r.p, r.n);
          *sum = wr.finish();
        },
        [sum](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("path", sum->path);
          o.Set("fileSize", num(env, double(sum->file_size)));
          o.Set("rootChecksum", detail::hex64(sum->root_xxh3));
          o.Set("logicalBytes", num(env, double(sum->logical_bytes)));
          o.Set("storedBytes", num(env, double(sum->stored_bytes)));
          o.Set("zeroBytes", num(env, double(sum->zero_bytes)));
          o.Set("chunks", num(env, double(sum->chunks)));
          return o;
        });
    // The region buffers are read on the worker thread: keep them alive.
    w->Keep(info[2]);
    w->Queue();
    return w->Promise();
  });
}

void InitImages(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("index", Napi::Function::New(env, Index, "index"));
  o.Set("inspect", Napi::Function::New(env, Inspect, "inspect"));
  o.Set("verifyImage", Napi::Function::New(env, VerifyImage, "verifyImage"));
  o.Set("verifyGeneration", Napi::Function::New(env, VerifyGeneration, "verifyGeneration"));
  o.Set("commitGeneration", Napi::Function::New(env, CommitGeneration, "commitGeneration"));
  o.Set("readManifest", Napi::Function::New(env, ReadManifest, "readManifest"));
  o.Set("readLatest", Napi::Function::New(env, ReadLatest, "readLatest"));
  o.Set("convert", Napi::Function::New(env, Convert, "convert"));
  o.Set("writeImage", Napi::Function::New(env, WriteImage, "writeImage"));
  exports.Set("images", o);
}

}  // namespace
}  // namespace ckpt::addon

CKPT_ADDON_BINDING(images, ckpt::addon::InitImages);
