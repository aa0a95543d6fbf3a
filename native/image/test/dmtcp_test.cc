// DMTCP image parser, restart-script parser, indexer and convert.
#include <doctest/doctest.h>
#include <zlib.h>

#include <fstream>
#include <sstream>

#include "common/errors.h"
#include "image/convert.h"
#include "image/dmtcp_image.h"
#include "image/image_reader.h"
#include "image/indexer.h"
#include "image/restart_script.h"
#include "dmtcp_builder.h"
#include "stream/stream.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::image;

namespace {

void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::vector<uint8_t> gzip(const std::vector<uint8_t>& in) {
  z_stream zs{};
  deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::vector<uint8_t> out(deflateBound(&zs, uLong(in.size())));
  zs.next_in = const_cast<uint8_t*>(in.data());
  zs.avail_in = uInt(in.size());
  zs.next_out = out.data();
  zs.avail_out = uInt(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

const IndexedGeneration* find_gen(const IndexResult& r, const std::string& format, uint64_t gen) {
  for (const auto& g : r.generations)
    if (g.format == format && g.generation == gen) return &g;
  return nullptr;
}

}  // namespace

TEST_CASE("DMTCP header parsing matches the documented layout") {
  test::DmtcpProc p;
  p.generation = 7;
  p.num_peers = 3;
  auto h = test::dmtcp_header(p);
  dmtcp::Header d = dmtcp::parse_header(h.data(), h.size(), "x");
  CHECK(d.version == "v4.0");
  CHECK(d.generation == 7);
  CHECK(d.num_peers == 3);
  CHECK(d.upid.text() == "98ff-40000-1000");
  CHECK(d.comp_group.text() == "98ff-40000-500");
  CHECK(d.procname == "prog");
  CHECK(dmtcp::hostid_of("vm") == 0x98ff);
  CHECK(dmtcp::hostid_of("nodeb") == 0x1345e6784a8ull);
  h[26] = '1';  // "v4.1"
  CHECK_THROWS_AS(dmtcp::parse_header(h.data(), h.size(), "x"), Error);
  std::string prog, up;
  CHECK(dmtcp::parse_image_name("ckpt_my_prog_98ff-40000-959cd1ac24.dmtcp", prog, up));
  CHECK(prog == "my_prog");
  CHECK(up == "98ff-40000-959cd1ac24");
  CHECK_FALSE(dmtcp::parse_image_name("ckpt_x_98ff-40000.dmtcp", prog, up));
}

TEST_CASE("real DMTCP 5.0 header fixtures parse (shared spec, when present)") {
  std::string dir = std::string(CKPT_SHARED_SPEC_DIR) + "/fixtures/dmtcp-headers/";
  std::ifstream f(dir + "ckpt_forkpipe_98ff-40000-49a3888d223.dmtcp.head", std::ios::binary);
  if (!f) {
    MESSAGE("shared spec fixtures not found at " << dir << "; skipping");
    return;
  }
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE(b.size() == 8192);
  dmtcp::Header h = dmtcp::parse_header(b.data(), b.size(), "fixture");
  CHECK(h.generation == 2);
  CHECK(h.num_peers == 2);
  CHECK(h.upid.text() == "98ff-40000-49a3888d223");
  CHECK(h.comp_group.text() == "98ff-40000-49a3705126d");
  CHECK(h.procname == "forkpipe");
  CHECK(h.proc_self_exe == "/tmp/ckpt-fixture00/forkpipe");
}

TEST_CASE("raw and gzip walks; truncation found in O(1) for raw") {
  test::TempDir d;
  test::DmtcpProc p;
  auto img = test::dmtcp_image(p);
  std::string raw = d / test::dmtcp_name(p);
  write_bytes(raw, img);
  dmtcp::Walk w = dmtcp::walk(raw);
  CHECK(w.logical_size == img.size());
  CHECK(w.records == 4);
  CHECK(w.top_level == 2);
  CHECK(w.data_bytes == 100 + 8192);
  dmtcp::Probe pr = dmtcp::probe(raw);
  CHECK(pr.end_ok);
  CHECK(pr.second_header_ok);

  std::string gz = d / "g.dmtcp";
  write_bytes(gz, gzip(img));
  CHECK(dmtcp::probe(gz).encoding == dmtcp::Encoding::Gzip);
  CHECK(dmtcp::probe(gz).header.generation == 1);
  CHECK(dmtcp::walk(gz, true).content_xxh3 == stream::xxh3(img.data(), img.size()));

  // Truncations: raw inside data (O(1) end-marker test), gzip mid-stream.
  auto t = img;
  t.resize(img.size() - 5000);
  write_bytes(raw, t);
  CHECK_FALSE(dmtcp::probe(raw).end_ok);
  CHECK_THROWS_AS(dmtcp::walk(raw), Error);
  auto gzb = gzip(img);
  gzb.resize(gzb.size() / 2);
  write_bytes(gz, gzb);
  try {
    dmtcp::walk(gz);
    FAIL("truncated gzip accepted");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("offset") != std::string::npos);
  }
}

TEST_CASE("restart script parsing: single host and multi host") {
  std::string single =
      "#!/bin/bash\nset -m\nckpt_timestamp=\"Sat Nov 21 00:38:36 2026\"\ncoord_host=$DMTCP_COORD_HOST\n"
      "if test -z \"$DMTCP_COORD_HOST\"; then\n  coord_host=vm\nfi\ncoord_port=$DMTCP_COORD_PORT\n"
      "if test -z \"$DMTCP_COORD_PORT\"; then\n  coord_port=16103\nfi\n"
      "# Number of hosts in the computation = 1\n# Number of processes in the computation = 2\n"
      "given_ckpt_files=\" /s/ckpt_a_98ff-40000-1.dmtcp /s/ckpt_a_98ff-41000-2.dmtcp\"\n";
  RestartScript s = parse_restart_script(single, "s.sh");
  CHECK(s.timestamp == "Sat Nov 21 00:38:36 2026");
  CHECK(s.coord_host == "vm");
  CHECK(s.coord_port == 16103);
  CHECK(s.num_hosts == 1);
  CHECK(s.num_processes == 2);
  REQUIRE(s.images.size() == 2);
  CHECK(s.images[1].path == "/s/ckpt_a_98ff-41000-2.dmtcp");
  std::string multi =
      "#!/bin/bash\nckpt_timestamp=\"x\"\n# Number of hosts in the computation = 2\n"
      "# Number of processes in the computation = 3\nworker_ckpts='\n"
      " :: nodeb :bg: /s/a.dmtcp /s/b.dmtcp : ssh\n :: vm :bg: /s/c.dmtcp : ssh\n'\n";
  RestartScript m = parse_restart_script(multi, "m.sh");
  REQUIRE(m.images.size() == 3);
  CHECK(m.images[0].host == "nodeb");
  CHECK(m.images[2].host == "vm");
  CHECK_THROWS_AS(parse_restart_script("#!/bin/bash\nworker_ckpts='\n :: a :bg: x : ssh\n", "t.sh"), Error);
  std::string comp;
  uint64_t gen = 0;
  CHECK(parse_restart_script_name("dmtcp_restart_script_98ff-40000-a57461b3c5_00002.sh", comp, gen));
  CHECK(comp == "98ff-40000-a57461b3c5");
  CHECK(gen == 2);
  CHECK(parse_restart_script_name("dmtcp_restart_script_98ff-40000-a57461b3c5.sh", comp, gen));
  CHECK(gen == 0);
  CHECK_FALSE(parse_restart_script_name("dmtcp_restart_script.sh", comp, gen));
}

TEST_CASE("indexer groups DMTCP images, finds exited-process leftovers, truncation and temps") {
  test::TempDir d;
  // Generation 2: parent only (numPeers 1). Leftover generation 1 child
  // (numPeers 2) whose parent image was overwritten.
  test::DmtcpProc parent;
  parent.generation = 2;
  parent.num_peers = 1;
  test::DmtcpProc child;
  child.vpid = 41000;
  child.time = 0x2000;
  child.parent_vpid = 40000;
  child.parent_time = 0x1000;
  child.generation = 1;
  child.num_peers = 2;
  write_bytes(d / test::dmtcp_name(parent), test::dmtcp_image(parent));
  write_bytes(d / test::dmtcp_name(child), gzip(test::dmtcp_image(child)));
  IndexResult r = index_paths({d.path});
  REQUIRE(r.generations.size() == 2);
  const IndexedGeneration* g2 = find_gen(r, "dmtcp", 2);
  const IndexedGeneration* g1 = find_gen(r, "dmtcp", 1);
  REQUIRE(g2);
  REQUIRE(g1);
  CHECK(g2->complete);
  CHECK(g2->newest_complete);
  CHECK(g2->computation == "98ff-40000-500");
  CHECK_FALSE(g1->complete);
  CHECK(g1->reason.find("1 of 2") != std::string::npos);

  // A truncated raw member is reported without walking it.
  auto img = test::dmtcp_image(parent);
  img.resize(img.size() - 4096 - 10);
  write_bytes(d / test::dmtcp_name(parent), img);
  r = index_paths({d.path});
  g2 = find_gen(r, "dmtcp", 2);
  REQUIRE(g2);
  CHECK_FALSE(g2->complete);
  CHECK(g2->reason.find("end marker") != std::string::npos);

  // A newer temp next to an intact member.
  write_bytes(d / test::dmtcp_name(parent), test::dmtcp_image(parent));
  write_bytes(d / (test::dmtcp_name(parent) + ".temp"), test::dmtcp_header(parent));
  r = index_paths({d.path});
  g2 = find_gen(r, "dmtcp", 2);
  CHECK_FALSE(g2->complete);
  CHECK(g2->reason.find(".temp") != std::string::npos);
}

TEST_CASE("convert: raw DMTCP -> ckpt -> raw is byte-identical; gzip -> raw; corrupt input refused") {
  test::TempDir d;
  test::DmtcpProc p;
  p.num_peers = 1;
  auto img = test::dmtcp_image(p, 5);
  std::string raw = d / test::dmtcp_name(p);
  write_bytes(raw, img);
  ConvertResult a = convert_image(raw, d / "w.ckpt", ConvertOptions{.zstd_level = 3, .threads = 2, .sync = false});
  CHECK(a.to == "ckpt-wrapped-dmtcp");
  CHECK(a.logical_bytes == img.size());
  ImageReader rd(d / "w.ckpt");
  rd.verify();
  CHECK(rd.meta().wrapped_format == "dmtcp");
  // The wrapped copy is indexed as a DMTCP member of its generation.
  IndexResult ir = index_paths({d / "w.ckpt"});
  REQUIRE(ir.generations.size() == 1);
  CHECK(ir.generations[0].format == "dmtcp");
  CHECK(ir.generations[0].complete);
  ConvertResult b = convert_image(d / "w.ckpt", d / "back.dmtcp", ConvertOptions{.to_raw = true, .sync = false});
  CHECK(b.to == "dmtcp-raw");
  CHECK(read_bytes(d / "back.dmtcp") == img);
  CHECK(b.content_xxh3 == stream::xxh3(img.data(), img.size()));

  write_bytes(d / "g.dmtcp", gzip(img));
  convert_image(d / "g.dmtcp", d / "g2.dmtcp", ConvertOptions{.to_raw = true, .sync = false});
  CHECK(read_bytes(d / "g2.dmtcp") == img);

  auto bad = img;
  bad.resize(bad.size() - 100);
  write_bytes(d / "bad.dmtcp", bad);
  CHECK_THROWS_AS(convert_image(d / "bad.dmtcp", d / "bad.ckpt", ConvertOptions{.sync = false}), Error);
  CHECK_FALSE(test::exists(d / "bad.ckpt"));
  CHECK_FALSE(test::exists(d / "bad.ckpt.tmp"));
  CHECK_THROWS_AS(convert_image(raw, d / "x.dmtcp", ConvertOptions{.to_raw = true}), Error);
}
