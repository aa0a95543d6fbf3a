// MANIFEST, commit, latest, generation verification and indexing of our
// directory layout.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/errors.h"
#include "image/format_codec.h"
#include "image/image_writer.h"
#include "image/indexer.h"
#include "image/store.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::image;

namespace {

void write_proc(const std::string& dir, const std::string& pid, uint64_t gen, uint32_t peers, uint64_t seed = 1) {
  ImageMeta m;
  m.computation = "job";
  m.generation = gen;
  m.num_peers = peers;
  m.process_id = pid;
  m.hostname = "h1";
  ImageWriter w(dir + "/" + pid + ".ckpt", WriterOptions{.sync = false});
  w.set_header(m);
  auto data = test::mixed_bytes(300000, seed);
  w.add_region(RegionDesc{.start = 0x1000, .end = 0x1000 + data.size()}, data.data(), data.size());
  w.finish();
}

std::string make_gen(const std::string& root, uint64_t gen, uint32_t peers, bool commit = true) {
  std::string dir = generation_dir(root, "job", gen);
  std::string cmd = "mkdir -p '" + dir + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  for (uint32_t i = 0; i < peers; i++) write_proc(dir, "p" + std::to_string(i), gen, peers, gen * 10 + i);
  if (commit) commit_generation(dir, CommitOptions{.sync = false});
  return dir;
}

std::string err(const std::function<void()>& f, Errc* c = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (c) *c = e.errc();
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("manifest encodes canonically and rejects damage") {
  Manifest m;
  m.computation = "job 1";
  m.generation = 3;
  m.num_peers = 2;
  m.created_unix_ns = 42;
  m.entries.push_back({"a b.ckpt", 8192, 0x1234, "p 1"});
  m.entries.push_back({"extra.bin", 10, 0xabc, ""});
  std::string t = encode_manifest(m);
  Manifest b = parse_manifest(t, "M");
  CHECK(b.computation == "job 1");
  CHECK(b.entries[0].name == "a b.ckpt");
  CHECK(b.entries[0].process_id == "p 1");
  CHECK(encode_manifest(b) == t);
  for (size_t i = 0; i < t.size(); i += 7) {
    std::string x = t;
    x[i] = char(x[i] ^ 1);
    CHECK(err([&] { parse_manifest(x, "M"); }).find("M: at offset") == 0);
  }
  CHECK(err([&] { parse_manifest(t.substr(0, t.size() - 1), "M"); }) != "");
  CHECK(err([&] { parse_manifest(t.substr(0, t.size() / 2), "M"); }) != "");
}

TEST_CASE("commit writes MANIFEST and switches latest; verify catches stale and missing state") {
  test::TempDir d;
  std::string g1 = make_gen(d.path, 1, 2);
  CHECK(read_latest(d / "job") == "gen-1");
  std::string g2 = make_gen(d.path, 2, 2);
  CHECK(read_latest(d / "job") == "gen-2");
  verify_generation(g1, true);
  verify_generation(g2, false);

  // Missing MANIFEST.
  std::string g3 = make_gen(d.path, 3, 2, false);
  Errc c = Errc::Ok;
  CHECK(err([&] { verify_generation(g3, false); }, &c).find("MANIFEST") != std::string::npos);
  CHECK(c == Errc::Incomplete);
  // Too few images: commit refuses.
  std::remove((g3 + "/p1.ckpt").c_str());
  CHECK(err([&] { commit_generation(g3, CommitOptions{.sync = false}); }, &c).find("1 of 2") != std::string::npos);
  CHECK(c == Errc::Incomplete);
  CHECK(read_latest(d / "job") == "gen-2");

  // Stale MANIFEST: an image replaced after the commit.
  write_proc(g2, "p1", 2, 2, 999);
  CHECK(err([&] { verify_generation(g2, false); }).find("p1.ckpt") != std::string::npos);
  // MANIFEST copied from another generation.
  std::string cmd = "cp '" + g1 + "/MANIFEST' '" + g2 + "/MANIFEST'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(err([&] { verify_generation(g2, false); }).find("stale") != std::string::npos);
  // Leftover temp file next to a committed generation.
  std::ofstream(g1 + "/p9.ckpt.tmp") << "x";
  CHECK(err([&] { verify_generation(g1, false); }).find("p9.ckpt.tmp") != std::string::npos);
  CHECK(err([&] { commit_generation(g1, CommitOptions{.sync = false}); }).find("p9.ckpt.tmp") != std::string::npos);
}

TEST_CASE("indexer picks the newest complete generation of our layout") {
  test::TempDir d;
  make_gen(d.path, 1, 2);
  make_gen(d.path, 2, 2);
  std::string g3 = make_gen(d.path, 3, 2, false);  // never committed
  std::ofstream(g3 + "/p2.ckpt.tmp") << "partial";
  IndexResult r = index_paths({d.path});
  REQUIRE(r.generations.size() == 3);
  CHECK(r.generations[0].generation == 3);
  CHECK_FALSE(r.generations[0].complete);
  CHECK(r.generations[0].reason.find("p2.ckpt.tmp") != std::string::npos);
  CHECK(r.generations[1].generation == 2);
  CHECK(r.generations[1].complete);
  CHECK(r.generations[1].newest_complete);
  CHECK(r.generations[1].latest);
  CHECK(r.generations[1].processes.size() == 2);
  CHECK(r.generations[1].hosts == std::vector<std::string>{"h1"});
  CHECK(r.generations[2].complete);
  CHECK_FALSE(r.generations[2].newest_complete);

  IndexResult deep = index_paths({d.path}, IndexOptions{.deep = true});
  CHECK(deep.generations[1].processes[0].checked == "deep");
}

TEST_CASE("generation names and computation ids are validated") {
  uint64_t g = 0;
  CHECK(parse_generation_name("gen-12", g));
  CHECK(g == 12);
  CHECK_FALSE(parse_generation_name("gen-012", g));
  CHECK_FALSE(parse_generation_name("gen-0", g));
  CHECK_FALSE(parse_generation_name("gen-x", g));
  CHECK_THROWS_AS(generation_dir("/r", "a/b", 1), Error);
  CHECK_THROWS_AS(generation_dir("/r", "..", 1), Error);
  CHECK(generation_dir("/r/", "c", 5) == "/r/c/gen-5");
}

TEST_CASE("the examples in docs/image-format.md are what the code does") {
  std::ifstream f(std::string(CKPT_DOCS_DIR) + "/image-format.md");
  REQUIRE(f);
  std::string doc((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The MANIFEST example parses (its checksum line is right) and re-encodes
  // to the same bytes.
  size_t at = doc.find("Example (the test suite checks it):");
  REQUIRE(at != std::string::npos);
  size_t open = doc.find("```\n", at);
  size_t close = doc.find("```", open + 4);
  std::string example = doc.substr(open + 4, close - open - 4);
  Manifest m = parse_manifest(example, "docs example");
  CHECK(m.computation == "job");
  CHECK(m.entries.size() == 1);
  CHECK(encode_manifest(m) == example);
  // The magic numbers in the tables are the ones the code writes.
  auto hex = [](const char* m8) {
    std::string s;
    char b[4];
    for (int i = 0; i < 8; i++) {
      std::snprintf(b, sizeof b, i ? " %02X" : "%02X", static_cast<unsigned char>(m8[i]));
      s += b;
    }
    return s;
  };
  CHECK(doc.find(hex(detail::kHeaderMagic)) != std::string::npos);
  CHECK(doc.find(hex(detail::kTableMagic)) != std::string::npos);
  CHECK(doc.find(hex(detail::kTrailerMagic)) != std::string::npos);
  // Header field offsets quoted in the doc: generation at 24, header checksum at 120.
  ImageMeta meta;
  meta.computation = "c";
  meta.process_id = "p";
  meta.generation = 0x1122334455667788ull;
  meta.num_peers = 7;
  auto h = detail::encode_header(meta, 1 << 20);
  CHECK(detail::get64(&h[24]) == 0x1122334455667788ull);
  CHECK(detail::get32(&h[32]) == 7);
  CHECK(detail::get64(&h[104]) == (1u << 20));
  CHECK(doc.find("| 24 | 8 | generation |") != std::string::npos);
  CHECK(doc.find("| 120 | 8 | header_xxh3 |") != std::string::npos);
}
