// Image conversion (see convert.h).
#include "image/convert.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/errors.h"
#include "image/dmtcp_image.h"
#include "image/format_codec.h"
#include "image/image_reader.h"
#include "image/image_writer.h"
#include "stream/stream.h"

namespace ckpt::image {

namespace {

constexpr size_t kBlock = 4u << 20;

// Streams the logical bytes of a DMTCP image (raw or gzip) to `sink`.
void dmtcp_stream(const std::string& path, dmtcp::Encoding enc, const std::function<void(const uint8_t*, size_t)>& sink,
                  const std::function<void(uint64_t, uint64_t)>& progress) {
  if (enc != dmtcp::Encoding::Raw) {
    dmtcp::inflate_file(
        path,
        [&](const uint8_t* p, size_t n) {
          sink(p, n);
          return true;
        },
        progress, kBlock);
    return;
  }
  stream::File f = stream::File::open_read(path);
  uint64_t size = f.size();
  std::vector<uint8_t> in(kBlock);
  for (uint64_t off = 0; off < size;) {
    size_t n = f.pread_some(in.data(), in.size(), off);
    if (n == 0) break;
    sink(in.data(), n);
    off += n;
    if (progress) progress(off, size);
  }
}

// Writes a plain file atomically from a producer.
struct RawOut {
  std::string path, tmp;
  stream::File file;
  uint64_t off = 0;
  bool sync;
  RawOut(const std::string& p, bool s) : path(p), tmp(p + ".tmp"), sync(s) { file = stream::File::create(tmp, 0600, false); }
  ~RawOut() {
    if (!tmp.empty()) ::unlink(tmp.c_str());
  }
  void write(const uint8_t* p, size_t n) {
    file.pwrite_all(p, n, off);
    off += n;
  }
  void commit() {
    if (sync) file.sync();
    file.close();
    stream::rename_durable(tmp, path, sync);
    tmp.clear();
  }
};

ImageMeta meta_from_dmtcp(const dmtcp::Header& h, const uint8_t* raw_header) {
  ImageMeta m;
  m.computation = h.comp_group.text();
  m.generation = h.generation ? h.generation : 1;
  m.num_peers = h.num_peers;
  m.process_id = h.upid.text();
  m.parent_id = h.uppid.is_zero() ? "" : h.uppid.text();
  m.pid = h.pid;
  m.ppid = h.ppid;
  m.pgid = h.gid;
  m.sid = h.sid;
  m.vpid = h.pid;
  m.program = h.proc_self_exe.empty() ? h.procname : h.proc_self_exe;
  m.engine = std::string("dmtcp (wrapped by ckpt ") + CKPT_VERSION + ")";
  m.flags = kImageWrapsForeign;
  m.wrapped_format = "dmtcp";
  m.wrapped_header.assign(raw_header, raw_header + dmtcp::kHeaderSize);
  struct utsname u{};
  if (::uname(&u) == 0) {
    m.hostname = u.nodename;
    m.kernel_release = u.release;
  }
  return m;
}

}  // namespace

ConvertResult convert_image(const std::string& src, const std::string& dst, const ConvertOptions& o) {
  if (src == dst) throw Error(Errc::InvalidArgument, "source and destination are the same file");
  ConvertResult res;
  stream::File probe_file = stream::File::open_read(src);
  res.in_bytes = probe_file.size();
  uint8_t head[32] = {};
  probe_file.pread_some(head, sizeof head, 0);
  probe_file.close();
  unsigned threads = o.threads ? o.threads : stream::recommended_threads();

  if (has_image_magic(head, sizeof head)) {
    ImageReader r(src, ReaderOptions{.threads = threads});
    const ImageMeta& meta = r.meta();
    bool wrapped = meta.wrapped_format == "dmtcp";
    res.from = wrapped ? "ckpt-wrapped-dmtcp" : "ckpt";
    std::vector<uint8_t> buf(kBlock);
    if (wrapped && o.to_raw) {
      if (r.regions().size() != 1 || r.regions()[0].desc.kind != RegionKind::Blob ||
          !(r.regions()[0].desc.region_flags & kRegionHasContentHash))
        throw Error(Errc::Corrupt, src + ": wrapped DMTCP image without a single checksummed blob region");
      RawOut out(dst, o.sync);
      stream::Hasher h;
      dmtcp::StreamWalker walker(src);
      const uint64_t total = r.regions()[0].desc.length;
      size_t left;
      do {
        OutBuffer ob{buf.data(), buf.size(), 0};
        left = r.read(0, ob);
        h.update(buf.data(), ob.pos);
        walker.feed(buf.data(), ob.pos);
        out.write(buf.data(), ob.pos);
        if (o.progress) o.progress(out.off, total);
      } while (left > 0);
      walker.finish();
      uint64_t got = h.digest();
      if (got != r.regions()[0].desc.content_xxh3)
        throw Error(Errc::Corrupt, src + ": restored bytes do not match the recorded checksum (stored " +
                                       detail::hex64(r.regions()[0].desc.content_xxh3) + ", computed " + detail::hex64(got) + ")");
      out.commit();
      res.to = "dmtcp-raw";
      res.out_bytes = out.off;
      res.logical_bytes = out.off;
      res.content_xxh3 = got;
      return res;
    }
    // ckpt -> ckpt with another codec.
    ImageWriter w(dst, WriterOptions{.threads = threads,
                                     .codec = o.to_raw ? Codec::Raw : Codec::Zstd,
                                     .zstd_level = o.zstd_level,
                                     .chunk_size = static_cast<size_t>(meta.chunk_size),
                                     .sync = o.sync});
    w.set_header(meta);
    uint64_t total = 0, done = 0;
    for (const RegionInfo& ri : r.regions()) total += ri.desc.length;
    for (size_t i = 0; i < r.regions().size(); i++) {
      RegionDesc d = r.regions()[i].desc;
      if (d.region_flags & kRegionNoData) {
        w.begin_region(d);
        w.end_region();
        continue;
      }
      if (d.kind == RegionKind::Blob && d.start == 0 && d.end == 0 && d.length == 0) {
        d.region_flags |= kRegionNoData;  // an empty open blob stays empty
      }
      w.begin_region(d);
      size_t left;
      do {
        OutBuffer ob{buf.data(), buf.size(), 0};
        left = r.read(i, ob);
        InBuffer ib{buf.data(), ob.pos, 0};
        while (ib.pos < ib.size) w.write(ib);
        done += ob.pos;
        if (o.progress) o.progress(done, total);
      } while (left > 0);
      w.end_region();
    }
    WriteSummary s = w.finish();
    res.to = wrapped ? "ckpt-wrapped-dmtcp" : "ckpt";
    res.out_bytes = s.file_size;
    res.logical_bytes = s.logical_bytes;
    return res;
  }

  dmtcp::Encoding enc = dmtcp::sniff(head, sizeof head);
  if (enc != dmtcp::Encoding::Raw && enc != dmtcp::Encoding::Gzip)
    throw Error(Errc::Corrupt, src + ": at offset 0: neither a ckpt image nor a DMTCP image (raw or gzip)");
  res.from = enc == dmtcp::Encoding::Raw ? "dmtcp-raw" : "dmtcp-gzip";
  if (enc == dmtcp::Encoding::Raw && o.to_raw)
    throw Error(Errc::InvalidArgument, src + " is already a raw DMTCP image; use --zstd LEVEL to compress it");
  dmtcp::StreamWalker walker(src);
  stream::Hasher h;
  uint64_t logical = 0;
  if (o.to_raw) {
    RawOut out(dst, o.sync);
    dmtcp_stream(src, enc, [&](const uint8_t* p, size_t n) {
      walker.feed(p, n);
      h.update(p, n);
      out.write(p, n);
      logical += n;
    }, o.progress);
    walker.finish();
    out.commit();
    res.to = "dmtcp-raw";
    res.out_bytes = out.off;
  } else {
    std::unique_ptr<ImageWriter> w;
    std::string first;
    auto start_writer = [&](const uint8_t* hdr) {
      dmtcp::Header dh = dmtcp::parse_header(hdr, dmtcp::kHeaderSize, src);
      w = std::make_unique<ImageWriter>(dst, WriterOptions{.threads = threads, .codec = Codec::Zstd, .zstd_level = o.zstd_level,
                                                           .sync = o.sync});
      w->set_header(meta_from_dmtcp(dh, hdr));
      w->begin_region(RegionDesc{.kind = RegionKind::Blob, .name = "dmtcp-image"});
    };
    dmtcp_stream(src, enc, [&](const uint8_t* p, size_t n) {
      walker.feed(p, n);  // refuses anything that is not a complete, well-formed image
      h.update(p, n);
      logical += n;
      if (!w) {
        size_t k = std::min(n, dmtcp::kHeaderSize - first.size());
        first.append(reinterpret_cast<const char*>(p), k);
        if (first.size() < dmtcp::kHeaderSize) return;
        start_writer(reinterpret_cast<const uint8_t*>(first.data()));
        InBuffer ib{first.data(), first.size(), 0};
        while (ib.pos < ib.size) w->write(ib);
        p += k;
        n -= k;
      }
      InBuffer ib{p, n, 0};
      while (ib.pos < ib.size) w->write(ib);
    }, o.progress);
    walker.finish();
    if (!w) throw Error(Errc::Truncated, src + ": image ends inside its header");
    w->end_region();
    w->set_content_hash(h.digest());
    WriteSummary s = w->finish();
    res.to = "ckpt-wrapped-dmtcp";
    res.out_bytes = s.file_size;
  }
  res.logical_bytes = logical;
  res.content_xxh3 = h.digest();
  return res;
}

}  // namespace ckpt::image
