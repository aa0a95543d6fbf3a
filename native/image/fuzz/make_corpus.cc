// Writes the seed corpora of the image fuzzers (run once by hand; the
// output is committed under fuzz/corpus/). Usage: make_corpus <corpus dir>
#include <cstdio>
#include <string>
#include <vector>

#include "../test/dmtcp_builder.h"
#include "image/format_codec.h"
#include "image/store.h"

using namespace ckpt::image;

static void put(const std::string& path, const void* p, size_t n) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return;
  std::fwrite(p, 1, n, f);
  std::fclose(f);
}
static void put(const std::string& path, const std::vector<uint8_t>& v) { put(path, v.data(), v.size()); }
static void put(const std::string& path, const std::string& s) { put(path, s.data(), s.size()); }

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  std::string d = argv[1];
  ImageMeta m;
  m.computation = "c1";
  m.generation = 2;
  m.num_peers = 2;
  m.process_id = "p1";
  m.parent_id = "p0";
  m.hostname = "h";
  m.engine_blob = {1, 2, 3};
  put(d + "/image_header/basic", detail::encode_header(m, 1 << 20));
  m.wrapped_format = "dmtcp";
  m.wrapped_header = ckpt::test::dmtcp_header(ckpt::test::DmtcpProc{});
  put(d + "/image_header/wrapped", detail::encode_header(m, 1 << 16));

  detail::Table t;
  RegionInfo r;
  r.desc = RegionDesc{.start = 0x1000, .end = 0x5000, .length = 0x4000, .name = "[heap]"};
  r.first_chunk = 0;
  r.chunk_count = 2;
  t.regions.push_back(r);
  t.chunks.push_back(ChunkDesc{.region_offset = 0, .file_offset = 4096, .logical_len = 4096, .stored_len = 4096});
  t.chunks.push_back(ChunkDesc{.region_offset = 8192, .file_offset = 8192, .logical_len = 8192, .stored_len = 100, .codec = Codec::Zstd});
  auto tb = detail::encode_table(t);
  std::vector<uint8_t> tin(16, 0);
  detail::put64(tin.data(), 1 << 20);
  tin[8] = 4;
  tin.insert(tin.end(), tb.begin(), tb.end());
  put(d + "/image_table/two_chunks", tin);

  detail::Trailer tr{.table_offset = 16384, .table_size = 200, .logical_bytes = 4096, .file_size = 20480};
  std::vector<uint8_t> trb(8 + detail::kTrailerSize);
  detail::put64(trb.data(), 20480);
  detail::encode_trailer(tr, trb.data() + 8);
  put(d + "/image_trailer/valid", trb);

  Manifest man;
  man.computation = "c1";
  man.generation = 2;
  man.num_peers = 2;
  man.created_unix_ns = 1;
  man.entries.push_back({"p1.ckpt", 8192, 0xabcdef, "p1"});
  man.entries.push_back({"p 2.ckpt", 8192, 0x123, "p 2"});
  put(d + "/manifest/two", encode_manifest(man));

  ckpt::test::DmtcpProc p;
  p.num_peers = 2;
  put(d + "/dmtcp_header/v4", ckpt::test::dmtcp_header(p));
  std::vector<uint8_t> walk = {7};
  auto img = ckpt::test::dmtcp_image(p);
  walk.insert(walk.end(), img.begin(), img.end());
  put(d + "/dmtcp_walk/small_image", walk);

  put(d + "/restart_script/single",
      std::string("#!/bin/bash\nckpt_timestamp=\"Sat Nov 21 00:38:36 2026\"\ncoord_host=vm\ncoord_port=7779\n"
                  "# Number of hosts in the computation = 1\n# Number of processes in the computation = 2\n"
                  "given_ckpt_files=\" /a/ckpt_x_98ff-40000-1.dmtcp /a/ckpt_x_98ff-41000-2.dmtcp\"\n"));
  put(d + "/restart_script/multi",
      std::string("#!/bin/bash\nckpt_timestamp=\"x\"\n# Number of hosts in the computation = 2\n"
                  "# Number of processes in the computation = 3\nworker_ckpts='\n"
                  " :: nodeb :bg: /s/a.dmtcp /s/b.dmtcp : ssh\n :: vm :bg: /s/c.dmtcp : ssh\n'\n"));
  return 0;
}
