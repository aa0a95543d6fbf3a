// Image format: round trips through ImageWriter/ImageReader and detection of
// every kind of corruption with the file and offset named.
#include <doctest/doctest.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>

#include "common/errors.h"
#include "image/format_codec.h"
#include "image/image_reader.h"
#include "image/image_writer.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::image;

namespace {

ImageMeta sample_meta(const std::string& pid = "p1", uint64_t gen = 1, uint32_t peers = 1) {
  ImageMeta m;
  m.computation = "comp-1";
  m.generation = gen;
  m.num_peers = peers;
  m.process_id = pid;
  m.parent_id = "p0";
  m.pid = 1234;
  m.ppid = 1;
  m.pgid = 1234;
  m.sid = 1200;
  m.vpid = 40000;
  m.vppid = 0;
  m.hostname = "node1";
  m.kernel_release = "6.1.0";
  m.program = "/usr/bin/python3";
  m.engine = "test 1.0";
  m.cpu_features = {1, 2, 3, 4};
  m.engine_blob = {9, 8, 7, 6, 5};
  return m;
}

struct Region {
  RegionDesc desc;
  std::vector<uint8_t> data;
};

WriteSummary write_image(const std::string& path, const std::vector<Region>& regions, WriterOptions opt,
                         size_t piece = 0, const ImageMeta& meta = sample_meta()) {
  ImageWriter w(path, opt);
  w.set_header(meta);
  for (const Region& r : regions) {
    w.begin_region(r.desc);
    size_t step = piece ? piece : r.data.size() + 1;
    for (size_t off = 0; off < r.data.size(); off += step) {
      InBuffer in{r.data.data() + off, std::min(step, r.data.size() - off), 0};
      while (in.pos < in.size) w.write(in, off % (3 * step) == 0 ? Directive::Flush : Directive::Continue);
    }
    w.end_region();
  }
  return w.finish();
}

void check_read_back(const std::string& path, const std::vector<Region>& regions, unsigned threads) {
  ImageReader r(path, ReaderOptions{.threads = threads});
  REQUIRE(r.regions().size() == regions.size());
  for (size_t i = 0; i < regions.size(); i++) {
    const auto& want = regions[i].data;
    std::vector<uint8_t> got(want.size() + 1, 0xee);
    r.read_region(i, got.data(), want.size());
    if (!want.empty()) CHECK(std::memcmp(got.data(), want.data(), want.size()) == 0);
    CHECK(got[want.size()] == 0xee);
    // Streaming read through an odd-sized buffer.
    std::vector<uint8_t> s;
    uint8_t buf[7777];
    size_t left;
    do {
      OutBuffer out{buf, sizeof buf, 0};
      left = r.read(i, out);
      s.insert(s.end(), buf, buf + out.pos);
    } while (left > 0);
    CHECK(s == want);
  }
  r.verify();
  // The same through O_DIRECT reads (page-rounded batches around packed
  // zstd chunks).
  ImageReader rd(path, ReaderOptions{.threads = threads, .o_direct = true});
  for (size_t i = 0; i < regions.size(); i++) {
    const auto& want = regions[i].data;
    std::vector<uint8_t> got(want.size());
    rd.read_region(i, got.data(), got.size());
    CHECK(got == want);
  }
  rd.verify();
}

std::vector<uint8_t> file_bytes(const std::string& p) {
  std::vector<uint8_t> v(test::file_size(p));
  FILE* f = std::fopen(p.c_str(), "rb");
  REQUIRE(f != nullptr);
  REQUIRE(std::fread(v.data(), 1, v.size(), f) == v.size());
  std::fclose(f);
  return v;
}

std::string error_of(const std::function<void()>& fn, Errc* code = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (code) *code = e.errc();
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("round trip: random, zero, mixed and sparse regions, all codecs and thread counts") {
  test::TempDir d;
  std::vector<Region> regs;
  regs.push_back({RegionDesc{.start = 0x10000, .end = 0x10000 + 3 * 1048576 + 8192, .prot = 3, .map_flags = 0x22,
                             .kind = RegionKind::Anonymous, .name = "[heap]"},
                  test::random_bytes(3 * 1048576 + 8192, 1)});
  regs.push_back({RegionDesc{.start = 0x800000, .end = 0x800000 + (1 << 21), .kind = RegionKind::Anonymous},
                  std::vector<uint8_t>(1 << 21, 0)});
  regs.push_back({RegionDesc{.start = 0x1000000, .end = 0x1000000 + 5 * 1048576, .prot = 5, .kind = RegionKind::File,
                             .name = "/lib/x.so"},
                  test::mixed_bytes(5 * 1048576, 2)});
  std::vector<uint8_t> sparse(4 << 20, 0);
  for (size_t p = 0; p < sparse.size(); p += 4096 * 37) sparse[p + 100] = 1;
  regs.push_back({RegionDesc{.start = 0x2000000, .end = 0x2000000 + sparse.size(), .kind = RegionKind::Stack}, sparse});
  // A blob whose length is not a page multiple (wrapped foreign image).
  regs.push_back({RegionDesc{.length = 100003, .kind = RegionKind::Blob}, test::mixed_bytes(100003, 3)});
  regs.push_back({RegionDesc{.start = 0x3000000, .end = 0x3001000, .kind = RegionKind::Special, .region_flags = kRegionNoData,
                             .name = "[vvar]"},
                  {}});

  for (Codec codec : {Codec::Raw, Codec::Zstd}) {
    for (unsigned threads : {0u, 1u, 3u}) {
      for (size_t piece : {size_t(0), size_t(5000), size_t(65536)}) {
        CAPTURE(int(codec));
        CAPTURE(threads);
        CAPTURE(piece);
        std::string p = d / "img.ckpt";
        WriterOptions o{.threads = threads, .codec = codec, .zstd_level = 1, .chunk_size = 1 << 20, .o_direct = threads == 1,
                        .sync = false};
        WriteSummary s = write_image(p, regs, o, piece);
        CHECK(s.file_size == test::file_size(p));
        CHECK(s.file_size % 4096 == 0);
        CHECK_FALSE(test::exists(p + ".tmp"));
        CHECK(s.zero_bytes >= (1 << 21));
        check_read_back(p, regs, threads);
        QuickInfo q = quick_check(p);
        CHECK(q.root_xxh3 == s.root_xxh3);
        CHECK(q.meta.computation == "comp-1");
        CHECK(q.meta.engine_blob == std::vector<uint8_t>{9, 8, 7, 6, 5});
        CHECK(q.meta.cpu_features[3] == 4);
        CHECK(q.meta.vpid == 40000);
      }
    }
  }
}

TEST_CASE("zero pages are elided and raw chunks are page aligned for mmap") {
  test::TempDir d;
  std::string p = d / "a.ckpt";
  std::vector<uint8_t> data(64 * 4096, 0);
  for (size_t pg = 0; pg < 64; pg += 4) std::memset(&data[pg * 4096], int(pg + 1), 4096);
  WriteSummary s = write_image(p, {{RegionDesc{.start = 0x100000, .end = 0x100000 + data.size()}, data}},
                               WriterOptions{.codec = Codec::Raw, .chunk_size = 1 << 16, .sync = false});
  CHECK(s.zero_bytes == 48 * 4096);
  CHECK(s.stored_bytes == 16 * 4096);
  ImageReader r(p);
  for (const ChunkDesc& c : r.chunks_of(0)) {
    CHECK(c.codec == Codec::Raw);
    CHECK(c.file_offset % 4096 == 0);
    void* m = mmap(nullptr, c.logical_len, PROT_READ, MAP_PRIVATE, r.fd(), off_t(c.file_offset));
    REQUIRE(m != MAP_FAILED);
    CHECK(std::memcmp(m, &data[c.region_offset], c.logical_len) == 0);
    munmap(m, c.logical_len);
  }
}

TEST_CASE("multi-GiB sparse region round trip (streamed, constant memory)") {
  test::TempDir d;
  std::string p = d / "big.ckpt";
  const size_t size = size_t(3) << 30;  // 3 GiB of mostly untouched (zero) memory
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(mem != MAP_FAILED);
  auto* b = static_cast<uint8_t*>(mem);
  for (size_t off = 0; off < size; off += size_t(97) << 20) std::memset(b + off, 0x5c, 8192);
  b[size - 1] = 1;
  {
    ImageWriter w(p, WriterOptions{.threads = 2, .codec = Codec::Zstd, .sync = false});
    w.set_header(sample_meta());
    w.begin_region(RegionDesc{.start = 0x7f0000000000, .end = 0x7f0000000000 + size});
    InBuffer in{b, size, 0};
    w.write(in, Directive::End);
    WriteSummary s = w.finish();
    CHECK(s.logical_bytes == size);
    CHECK(s.zero_bytes > size - (size_t(64) << 20));
    CHECK(s.file_size < (size_t(8) << 20));
  }
  ImageReader r(p, ReaderOptions{.threads = 2});
  r.verify();
  std::vector<uint8_t> buf(1 << 20);
  uint64_t pos = 0;
  bool same = true;
  size_t left;
  do {
    OutBuffer out{buf.data(), buf.size(), 0};
    left = r.read(0, out);
    if (std::memcmp(buf.data(), b + pos, out.pos) != 0) same = false;
    pos += out.pos;
  } while (left > 0);
  CHECK(pos == size);
  CHECK(same);
  munmap(mem, size);
}

TEST_CASE("writer misuse is refused and an aborted writer leaves no file") {
  test::TempDir d;
  std::string p = d / "x.ckpt";
  {
    ImageWriter w(p, WriterOptions{.sync = false});
    CHECK_THROWS_AS(w.begin_region(RegionDesc{.start = 0, .end = 4096}), Error);  // before header
    ImageMeta bad = sample_meta();
    bad.computation = "a/b";
    CHECK_THROWS_AS(w.set_header(bad), Error);
    w.set_header(sample_meta());
    w.begin_region(RegionDesc{.start = 0, .end = 8192});
    std::vector<uint8_t> too_much(9000, 1);
    InBuffer in{too_much.data(), too_much.size(), 0};
    CHECK_THROWS_AS(w.write(in), Error);
    CHECK(test::exists(p + ".tmp"));
  }
  CHECK_FALSE(test::exists(p + ".tmp"));
  CHECK_FALSE(test::exists(p));
  CHECK_THROWS_AS(ImageWriter(p, WriterOptions{.chunk_size = 1000}), Error);
}

TEST_CASE("every corruption is detected and names the file and offset") {
  test::TempDir d;
  std::string good = d / "good.ckpt";
  std::vector<Region> regs = {
      {RegionDesc{.start = 0x10000, .end = 0x10000 + 2 * 1048576}, test::mixed_bytes(2 * 1048576, 5)},
      {RegionDesc{.start = 0x900000, .end = 0x900000 + 1048576}, test::random_bytes(1048576, 6)}};
  WriteSummary s = write_image(good, regs, WriterOptions{.codec = Codec::Zstd, .sync = false});
  ImageReader gr(good);
  const uint64_t size = s.file_size;
  const uint64_t hsize = gr.meta().header_size;
  const ChunkDesc c0 = gr.chunks()[0];
  const ChunkDesc clast = gr.chunks().back();
  uint64_t table_off = 0;
  {
    QuickInfo q = quick_check(good);
    table_off = q.table_offset;
  }
  auto copy = [&](const std::string& name) {
    std::string p = d / name;
    std::string cmd = "cp '" + good + "' '" + p + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return p;
  };
  struct Case {
    const char* name;
    std::function<void(const std::string&)> damage;
    bool needs_deep;
  };
  std::vector<Case> cases = {
      {"header magic", [&](auto& p) { test::flip_byte(p, 0); }, false},
      {"header field", [&](auto& p) { test::flip_byte(p, 26); }, false},
      {"header string", [&](auto& p) { test::flip_byte(p, 140); }, false},
      {"first chunk", [&](auto& p) { test::flip_byte(p, c0.file_offset + 10); }, true},
      {"last chunk", [&](auto& p) { test::flip_byte(p, clast.file_offset + clast.stored_len - 1); }, true},
      {"region table", [&](auto& p) { test::flip_byte(p, table_off + 40); }, false},
      {"trailer magic", [&](auto& p) { test::flip_byte(p, size - 64); }, false},
      {"trailer field", [&](auto& p) { test::flip_byte(p, size - 30); }, false},
      {"truncated to 0", [&](auto& p) { test::truncate_to(p, 0); }, false},
      {"truncated in header", [&](auto& p) { test::truncate_to(p, 100); }, false},
      {"truncated after header", [&](auto& p) { test::truncate_to(p, hsize); }, false},
      {"truncated mid data", [&](auto& p) { test::truncate_to(p, c0.file_offset + 5000); }, false},
      {"truncated in table", [&](auto& p) { test::truncate_to(p, table_off + 10); }, false},
      {"truncated by one byte", [&](auto& p) { test::truncate_to(p, size - 1); }, false},
      {"extended", [&](auto& p) { test::truncate_to(p, size + 4096); }, false},
  };
  for (const Case& c : cases) {
    std::string name = c.name;
    CAPTURE(name);
    std::string p = copy("bad.ckpt");
    c.damage(p);
    Errc code = Errc::Ok;
    std::string msg = error_of(
        [&] {
          ImageReader r(p);
          r.verify();
        },
        &code);
    REQUIRE(msg != "");
    CHECK(msg.find(p) != std::string::npos);
    CHECK(msg.find("offset") != std::string::npos);
    CHECK((code == Errc::Corrupt || code == Errc::Truncated));
    // The same with O_DIRECT reads on threads (verify() reads through AIO
    // into a few reused buffers then), raw and zstd alike.
    Errc dcode = Errc::Ok;
    std::string dmsg = error_of(
        [&] {
          ImageReader r(p, ReaderOptions{.threads = 2, .o_direct = true});
          r.verify();
        },
        &dcode);
    CHECK(dmsg == msg);
    CHECK(dcode == code);
    // The O(1) check reads header and trailer only; table damage is found
    // when the image is opened.
    if (!c.needs_deep && name != "region table") CHECK(error_of([&] { quick_check(p); }) != "");
    else {
      // Chunk damage is invisible to the O(1) check but caught on read.
      CHECK(error_of([&] { quick_check(p); }) == "");
      std::string m2 = error_of([&] {
        ImageReader r(p);
        std::vector<uint8_t> buf(2 * 1048576);
        r.read_region(0, buf.data(), buf.size());
        r.read_region(1, buf.data(), buf.size());
      });
      CHECK(m2.find("checksum mismatch") != std::string::npos);
    }
  }
}

TEST_CASE("header decoder skips unknown records and rejects a newer major version") {
  ImageMeta m = sample_meta();
  auto h = detail::encode_header(m, 1 << 20);
  ImageMeta back = detail::decode_header(h.data(), h.size(), "mem");
  CHECK(back.process_id == "p1");
  CHECK(back.hostname == "node1");
  // Bump the major version and fix the checksum: Unsupported, not Corrupt.
  detail::put16(&h[8], 2);
  detail::put64(&h[detail::kHeaderChecksumOff], 0);
  detail::put64(&h[detail::kHeaderChecksumOff], stream::xxh3(h.data(), h.size()));
  Errc code = Errc::Ok;
  error_of([&] { detail::decode_header(h.data(), h.size(), "mem"); }, &code);
  CHECK(code == Errc::Unsupported);
}

TEST_CASE("header record 11 (stopped time, format 1.1): optional, round-trips, checked, and skipped when unknown") {
  ImageMeta m = sample_meta();
  // Absent unless set: the header of a 1.0-style writer has no record 11.
  CHECK(detail::decode_header(detail::encode_header(m, 1 << 20).data(), detail::encode_header(m, 1 << 20).size(), "mem").stopped_ns == 0);
  m.stopped_ns = 2'345'678;
  auto h = detail::encode_header(m, 1 << 20);
  CHECK(detail::get16(&h[10]) == kFormatMinor);
  CHECK(detail::decode_header(h.data(), h.size(), "mem").stopped_ns == 2'345'678);
  // Find the record and damage it, fixing the header checksum each time.
  size_t at = 0;
  for (size_t off = detail::kHeaderFixed; off + 8 <= h.size();) {
    uint16_t tag = detail::get16(&h[off]);
    uint32_t n = detail::get32(&h[off + 4]);
    if (tag == detail::kTagStoppedNs) {
      at = off;
      break;
    }
    if (tag == 0 && n == 0) break;
    off += 8 + ((n + 7) & ~size_t(7));
  }
  REQUIRE(at != 0);
  auto reseal = [](std::vector<uint8_t> v) {
    detail::put64(&v[detail::kHeaderChecksumOff], 0);
    detail::put64(&v[detail::kHeaderChecksumOff], stream::xxh3(v.data(), v.size()));
    return v;
  };
  auto shorter = h;
  detail::put32(&shorter[at + 4], 4);
  shorter = reseal(shorter);
  Errc code = Errc::Ok;
  std::string msg = error_of([&] { detail::decode_header(shorter.data(), shorter.size(), "mem"); }, &code);
  CHECK(code == Errc::Corrupt);
  CHECK(msg.find("record 11") != std::string::npos);
  // A reader that does not know a tag skips it (what 1.0 readers do with 11).
  auto unknown = h;
  detail::put16(&unknown[at], 63);
  unknown = reseal(unknown);
  ImageMeta back = detail::decode_header(unknown.data(), unknown.size(), "mem");
  CHECK(back.stopped_ns == 0);
  CHECK(back.process_id == "p1");
}

TEST_CASE("a few hundred MiB of random data round-trip with threads (raw fallback for incompressible chunks)") {
  test::TempDir d;
  std::string p = d / "rand.ckpt";
  const size_t size = size_t(200) << 20;
  auto data = test::random_bytes(size, 77);
  {
    ImageWriter w(p, WriterOptions{.threads = 2, .codec = Codec::Zstd, .zstd_level = 1, .sync = false});
    w.set_header(sample_meta());
    w.add_region(RegionDesc{.start = 0x7f0000000000, .end = 0x7f0000000000 + size}, data.data(), size);
    WriteSummary s = w.finish();
    CHECK(s.stored_bytes == size);  // random data does not compress: stored raw
  }
  ImageReader r(p, ReaderOptions{.threads = 2});
  for (const ChunkDesc& c : r.chunks()) CHECK(c.codec == Codec::Raw);
  std::vector<uint8_t> back(size);
  r.read_region(0, back.data(), back.size());
  CHECK(back == data);
}

TEST_CASE("raw chunks read in place into an aligned destination: odd lengths and corruption") {
  // read_region reads runs of raw chunks straight into the destination when
  // it is page aligned; this covers that path (the round-trip test above
  // reads into unaligned vectors), across the job and region boundaries of
  // the threaded raw writer.
  test::TempDir d;
  std::vector<Region> regs;
  std::vector<uint8_t> sparse = test::mixed_bytes(9 * 1048576 + 4096 * 3, 11);
  for (size_t p = 0; p < sparse.size(); p += 4096 * 5) std::memset(sparse.data() + p, 0, 4096);
  regs.push_back({RegionDesc{.start = 0x100000, .end = 0x100000 + sparse.size()}, sparse});
  regs.push_back({RegionDesc{.length = 100003, .kind = RegionKind::Blob}, test::random_bytes(100003, 12)});
  regs.push_back({RegionDesc{.start = 0x4000000, .end = 0x4000000 + 3 * 4096}, test::random_bytes(3 * 4096, 13)});
  std::string p = d / "raw.ckpt";
  write_image(p, regs, WriterOptions{.threads = 2, .codec = Codec::Raw, .sync = false}, 300000);
  size_t cap = 0;
  for (const Region& r : regs) cap = std::max(cap, stream::align_up(r.data.size()) + 4096);
  stream::AlignedBuffer dst(cap);
  for (bool direct : {false, true}) {
    for (unsigned threads : {0u, 2u}) {
      CAPTURE(direct);
      CAPTURE(threads);
      ImageReader r(p, ReaderOptions{.threads = threads, .o_direct = direct});
      for (size_t i = 0; i < regs.size(); i++) {
        std::memset(dst.data(), 0xee, cap);
        r.read_region(i, dst.data(), cap);
        CHECK(std::memcmp(dst.data(), regs[i].data.data(), regs[i].data.size()) == 0);
        // Nothing beyond the region is touched (no page padding lands there).
        CHECK(dst.data()[regs[i].data.size()] == 0xee);
      }
    }
  }
  ImageReader good(p);
  const ChunkDesc mid = good.chunks()[good.chunks().size() / 3];
  std::string bad = d / "bad.ckpt";
  for (bool direct : {false, true}) {
    CAPTURE(direct);
    REQUIRE(std::system(("cp '" + p + "' '" + bad + "'").c_str()) == 0);
    test::flip_byte(bad, mid.file_offset + 7);
    std::string m = error_of([&] {
      ImageReader r(bad, ReaderOptions{.threads = 2, .o_direct = direct});
      for (size_t i = 0; i < r.regions().size(); i++) r.read_region(i, dst.data(), cap);
    });
    CHECK(m.find("checksum mismatch") != std::string::npos);
    CHECK(m.find("offset " + std::to_string(mid.file_offset)) != std::string::npos);
  }
}

TEST_CASE("read_regions reads several regions in one pass, raw and zstd, with the same bytes as read_region") {
  test::TempDir d;
  std::vector<Region> regs;
  std::vector<uint8_t> sparse = test::mixed_bytes(6 * 1048576 + 4096 * 3, 21);
  for (size_t p = 0; p < sparse.size(); p += 4096 * 7) std::memset(sparse.data() + p, 0, 4096);
  regs.push_back({RegionDesc{.start = 0x100000, .end = 0x100000 + sparse.size()}, sparse});
  regs.push_back({RegionDesc{.start = 0x900000, .end = 0x900000 + (1 << 20)}, std::vector<uint8_t>(1 << 20, 0)});
  regs.push_back({RegionDesc{.length = 100003, .kind = RegionKind::Blob}, test::random_bytes(100003, 22)});
  regs.push_back({RegionDesc{.start = 0x4000000, .end = 0x4000000 + 9 * 1048576}, test::random_bytes(9 * 1048576, 23)});
  for (Codec codec : {Codec::Raw, Codec::Zstd}) {
    std::string p = d / "multi.ckpt";
    write_image(p, regs, WriterOptions{.threads = 2, .codec = codec, .zstd_level = 1, .sync = false}, 0);
    size_t total = 0;
    std::vector<size_t> offs;
    for (const Region& r : regs) {
      offs.push_back(total);
      total += stream::align_up(r.data.size()) + 4096;  // a guard page after each region
    }
    stream::AlignedBuffer dst(total);
    for (bool direct : {false, true}) {
      for (unsigned threads : {0u, 1u, 3u}) {
        CAPTURE(int(codec));
        CAPTURE(direct);
        CAPTURE(threads);
        std::memset(dst.data(), 0xee, total);
        ImageReader r(p, ReaderOptions{.threads = threads, .o_direct = direct});
        std::vector<ImageReader::RegionTarget> t;
        // Out of file order on purpose: targets may come in any order.
        for (size_t i = regs.size(); i-- > 0;) t.push_back({i, dst.data() + offs[i], regs[i].data.size()});
        r.read_regions(t.data(), t.size());
        for (size_t i = 0; i < regs.size(); i++) {
          CHECK(std::memcmp(dst.data() + offs[i], regs[i].data.data(), regs[i].data.size()) == 0);
          CHECK(dst.data()[offs[i] + regs[i].data.size()] == 0xee);
        }
      }
    }
    ImageReader r(p);
    std::vector<ImageReader::RegionTarget> small{{3, dst.data(), regs[3].data.size() - 1}};
    CHECK_THROWS_AS(r.read_regions(small.data(), small.size()), Error);
    std::vector<ImageReader::RegionTarget> none{{regs.size(), dst.data(), total}};
    CHECK_THROWS_AS(r.read_regions(none.data(), none.size()), Error);
  }
}

TEST_CASE("raw images with threads: large writes, page-sized writes and an unaligned start give the same file") {
  test::TempDir d;
  std::vector<Region> regs;
  std::vector<uint8_t> sparse(11 << 20, 0);
  for (size_t p = 0; p < sparse.size(); p += 4096 * 3) std::memset(&sparse[p], 7, 4096 * 2);  // runs of 2 pages
  std::memset(&sparse[5 << 20], 0, 3 << 20);  // a long zero run
  regs.push_back({RegionDesc{.start = 0x10000000, .end = 0x10000000 + sparse.size(), .kind = RegionKind::Anonymous}, sparse});
  regs.push_back({RegionDesc{.start = 0x20000000, .end = 0x20000000 + (9 << 20) + 4096, .kind = RegionKind::Anonymous},
                  test::mixed_bytes((9 << 20) + 4096, 4)});
  regs.push_back({RegionDesc{.length = (3 << 20) + 77, .kind = RegionKind::Blob}, test::random_bytes((3 << 20) + 77, 5)});
  ImageMeta meta = sample_meta();
  meta.created_unix_ns = 1;
  auto write_with = [&](const std::string& p, size_t first, size_t step) {
    ImageWriter w(p, WriterOptions{.threads = 3, .codec = Codec::Raw, .sync = false});
    w.set_header(meta);
    for (const Region& r : regs) {
      w.begin_region(r.desc);
      size_t off = 0;
      while (off < r.data.size()) {
        size_t n = std::min(off == 0 ? first : step, r.data.size() - off);
        InBuffer in{r.data.data() + off, n, 0};
        while (in.pos < in.size) w.write(in, Directive::Continue);
        off += n;
      }
      w.end_region();
    }
    return w.finish();
  };
  WriteSummary small = write_with(d / "small.ckpt", 4096, 4096);
  for (size_t first : {size_t(64) << 20, size_t(1000)}) {
    CAPTURE(first);
    std::string p = d / "large.ckpt";
    WriteSummary large = write_with(p, first, 64 << 20);
    CHECK(large.root_xxh3 == small.root_xxh3);
    CHECK(large.chunks == small.chunks);
    CHECK(large.zero_bytes == small.zero_bytes);
    CHECK(file_bytes(p) == file_bytes(d / "small.ckpt"));
    check_read_back(p, regs, 3);
  }
}

TEST_CASE("raw O_DIRECT images with threads (blocks preallocated, chunks checksummed while copied) read back and match buffered ones") {
  test::TempDir d;
  std::vector<Region> regs;
  std::vector<uint8_t> sparse(21 << 20, 0);
  for (size_t p = 0; p + 4096 * 3 <= sparse.size(); p += 4096 * 5) std::memset(&sparse[p], 3, 4096 * 3);
  regs.push_back({RegionDesc{.start = 0x10000000, .end = 0x10000000 + sparse.size(), .kind = RegionKind::Anonymous}, sparse});
  regs.push_back({RegionDesc{.start = 0x40000000, .end = 0x40000000 + (67 << 20), .kind = RegionKind::Anonymous},
                  test::mixed_bytes(67 << 20, 6)});
  regs.push_back({RegionDesc{.length = (1 << 20) + 5, .kind = RegionKind::Blob}, test::random_bytes((1 << 20) + 5, 7)});
  ImageMeta meta = sample_meta();
  meta.created_unix_ns = 2;
  // piece 5000: pages arrive split, and every third piece is a Flush.
  for (size_t piece : {size_t(5000), size_t(4) << 20}) {
    CAPTURE(piece);
    std::string ref = d / "buffered.ckpt", p = d / "direct.ckpt";
    WriteSummary b = write_image(ref, regs, WriterOptions{.threads = 2, .codec = Codec::Raw, .sync = false}, piece, meta);
    WriteSummary s = write_image(p, regs, WriterOptions{.threads = 2, .codec = Codec::Raw, .o_direct = true}, piece, meta);
    // Blocks are allocated ahead in 64 MiB steps; the file is cut to its size.
    CHECK(test::file_size(p) == s.file_size);
    CHECK(s.file_size > (64u << 20));
    CHECK(s.root_xxh3 == b.root_xxh3);
    CHECK(s.chunks == b.chunks);
    CHECK(file_bytes(p) == file_bytes(ref));
    check_read_back(p, regs, 2);
    check_read_back(p, regs, 0);
  }
}

TEST_CASE("fragmented regions: small chunks read into the destination itself move into place, gaps are zeroed") {
  // read_regions reads each batch of raw chunks with one read: large
  // chunks straight into place, each run of small chunks into the part of
  // the region it covers, from where its chunks are moved down. Random
  // layouts of data and zero runs check the moves and the zeroing (the
  // destination starts out as garbage), with O_DIRECT (AIO) and buffered,
  // on threads and without.
  test::TempDir d;
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    std::vector<Region> regs;
    for (int ri = 0; ri < 3; ri++) {
      std::vector<uint8_t> data = test::mixed_bytes(size_t(4 + rng() % 9) << 20, seed * 10 + ri);
      // Alternate zero runs of 1-12 pages with data runs of 1-40 pages
      // (16 pages and more make chunks large enough to be read in place).
      size_t pg = 0, pages = data.size() / 4096;
      while (pg < pages) {
        size_t zero = 1 + rng() % 12, keep = 1 + rng() % 40;
        for (size_t z = 0; z < zero && pg < pages; z++, pg++) std::memset(&data[pg * 4096], 0, 4096);
        pg += keep;
      }
      uint64_t start = 0x10000000 + uint64_t(ri) * 0x4000000;
      regs.push_back({RegionDesc{.start = start, .end = start + data.size()}, std::move(data)});
    }
    regs.push_back({RegionDesc{.length = 70001, .kind = RegionKind::Blob}, test::random_bytes(70001, seed)});
    std::string p = d / "frag.ckpt";
    write_image(p, regs, WriterOptions{.threads = 2, .codec = Codec::Raw, .o_direct = true, .sync = false}, 0);
    size_t total = 0;
    std::vector<size_t> offs;
    for (const Region& r : regs) {
      offs.push_back(total);
      total += stream::align_up(r.data.size()) + 4096;
    }
    stream::AlignedBuffer dst(total);
    for (bool direct : {true, false}) {
      for (unsigned threads : {0u, 2u, 3u}) {
        CAPTURE(direct);
        CAPTURE(threads);
        std::memset(dst.data(), 0xee, total);
        ImageReader r(p, ReaderOptions{.threads = threads, .o_direct = direct});
        std::vector<ImageReader::RegionTarget> t;
        for (size_t i = 0; i < regs.size(); i++) t.push_back({i, dst.data() + offs[i], regs[i].data.size()});
        r.read_regions(t.data(), t.size());
        for (size_t i = 0; i < regs.size(); i++) {
          CAPTURE(i);
          CHECK(std::memcmp(dst.data() + offs[i], regs[i].data.data(), regs[i].data.size()) == 0);
          CHECK(dst.data()[offs[i] + regs[i].data.size()] == 0xee);
        }
      }
    }
    // A flipped byte in a small chunk is reported, whichever path read it.
    ImageReader good(p);
    const ChunkDesc* small = nullptr;
    for (const ChunkDesc& c : good.chunks_of(1))
      if (c.logical_len < (64u << 10) && &c != &good.chunks_of(1).front()) small = &c;
    REQUIRE(small != nullptr);
    std::string bad = d / "frag-bad.ckpt";
    REQUIRE(std::system(("cp '" + p + "' '" + bad + "'").c_str()) == 0);
    test::flip_byte(bad, small->file_offset + small->logical_len / 2);
    for (bool direct : {true, false}) {
      CAPTURE(direct);
      std::string m = error_of([&] {
        ImageReader r(bad, ReaderOptions{.threads = 2, .o_direct = direct});
        std::vector<ImageReader::RegionTarget> t;
        for (size_t i = 0; i < regs.size(); i++) t.push_back({i, dst.data() + offs[i], regs[i].data.size()});
        r.read_regions(t.data(), t.size());
      });
      CHECK(m.find("checksum mismatch") != std::string::npos);
      CHECK(m.find("offset " + std::to_string(small->file_offset)) != std::string::npos);
      // verify() finds it too (with O_DIRECT on threads: through AIO into a
      // few reused buffers, more batches than buffers).
      std::string v = error_of([&] { ImageReader(bad, ReaderOptions{.threads = 2, .o_direct = direct}).verify(); });
      CHECK(v.find("offset " + std::to_string(small->file_offset)) != std::string::npos);
    }
    // The intact image verifies, and progress ends at all its stored bytes.
    uint64_t stored = 0, reported = 0;
    for (const ChunkDesc& c : good.chunks()) stored += c.stored_len;
    ImageReader(p, ReaderOptions{.threads = 2, .o_direct = true}).verify([&](uint64_t done, uint64_t total) {
      CHECK(done <= total);
      reported = done;
    });
    CHECK(reported == stored);
  }
}
