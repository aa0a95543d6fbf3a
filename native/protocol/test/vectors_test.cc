// Checks the codec against every message captured from real DMTCP 5.0 traffic
// (shared/spec/vectors/*.json): the decoded fields must equal the annotated
// ones, decode->encode must reproduce the wire bytes exactly, and a header
// built from scratch from the annotated fields (with zeros where senders leave
// garbage) must match every byte outside the message's `dont_care` ranges.
#include <dirent.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "protocol/message.h"
#include "protocol/test/json_mini.h"

using namespace ckpt::protocol;
namespace tj = ckpt::testjson;

namespace {

std::string unhex(const std::string& hex) {
  REQUIRE(hex.size() % 2 == 0);
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); i++) out[i] = char(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

uint64_t parse_u64(const tj::Value& v) {
  if (v.kind == tj::Value::Number) return uint64_t(v.integer());
  return std::stoull(v.str, nullptr, 0);  // "0x…" or decimal strings
}

UniquePid upid_from(const tj::Value& v) {
  UniquePid u;
  u.hostid = parse_u64(v["hostid"]);
  u.time = parse_u64(v["time"]);
  u.pid = int32_t(v["pid"].integer());
  u.generation = uint32_t(v["generation"].integer());
  return u;
}

uint32_t parse_ip(const std::string& dotted) {
  unsigned a, b, c, d;
  REQUIRE(std::sscanf(dotted.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d) == 4);
  return a << 24 | b << 16 | c << 8 | d;
}

std::vector<std::string> vector_files() {
  std::vector<std::string> files;
  DIR* d = opendir(CKPT_VECTORS_DIR);
  if (!d) return files;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.substr(n.size() - 5) == ".json") files.push_back(std::string(CKPT_VECTORS_DIR) + "/" + n);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

// Builds the header the annotated fields describe, the way a sender that
// zero-fills unused areas (as ours does) would.
Header header_from_decoded(const tj::Value& d) {
  Header h = default_header(upid_from(d["from"]), MsgType(d["type"].integer()));
  h.set_name(d["barrier"].str);
  uint32_t type = uint32_t(d["type"].integer());
  if (type == uint32_t(MsgType::KvdbRequest) || type == uint32_t(MsgType::KvdbResponse)) h.kvdb = int32_t(d["kvdbRequest"].integer());
  h.msgSize = uint32_t(d["msgSize"].integer());
  h.extraBytes = uint32_t(d["extraBytes"].integer());
  h.state = uint32_t(d["state"].integer());
  h.compGroup = upid_from(d["compGroup"]);
  h.virtualPid = int32_t(d["virtualPid"].integer());
  h.realPid = int32_t(d["realPid"].integer());
  h.keyLen = uint32_t(d["keyLen"].integer());
  h.valLen = uint32_t(d["valLen"].integer());
  h.numPeers = uint32_t(d["numPeers"].integer());
  h.isRunning = uint32_t(d["isRunning"].integer());
  h.coordCmd = uint32_t(d["coordCmd"].integer());
  h.coordCmdStatus = int32_t(d["coordCmdStatus"].integer());
  h.coordTimeStamp = parse_u64(d["coordTimeStamp"]);
  h.theCheckpointInterval = int32_t(d["theCheckpointInterval"].integer());
  h.ipAddr = parse_ip(d["ipAddr"].str);
  h.exitAfterCkpt = uint32_t(d["exitAfterCkpt"].integer());
  return h;
}

// Re-creates a payload through the typed helpers and checks it is identical.
void check_payload_roundtrip(const Header& h, const std::string& payload) {
  switch (h.msg_type()) {
    case MsgType::NewWorker:
    case MsgType::RestartWorker: {
      auto p = parse_hello_payload(payload);
      REQUIRE(p);
      CHECK(make_hello_payload(p->hostname, p->progname) == payload);
      break;
    }
    case MsgType::CkptFilename:
    case MsgType::UniqueCkptFilename: {
      auto p = parse_ckpt_filename_payload(payload);
      REQUIRE(p);
      CHECK((p->shell.empty() || p->shell == "ssh" || p->shell == "rsh"));
      CHECK(make_ckpt_filename_payload(p->path, p->shell, p->hostname) == payload);
      break;
    }
    case MsgType::UpdateProcessInfoAfterInitOrExec:
    case MsgType::BarrierReleased: {
      auto p = parse_cstring_payload(payload);
      REQUIRE(p);
      CHECK(make_cstring_payload(*p) == payload);
      break;
    }
    case MsgType::KvdbRequest: {
      auto p = parse_kvdb_payload(h, payload);
      REQUIRE(p);
      Header copy = h;
      CHECK(make_kvdb_payload(copy, p->key, p->value) == payload);
      CHECK(copy.keyLen == h.keyLen);
      CHECK(copy.valLen == h.valLen);
      break;
    }
    case MsgType::KvdbResponse:
      if (!payload.empty()) {
        CHECK(h.valLen == payload.size());
        auto p = parse_cstring_payload(payload);
        // Values (e.g. /proc/self/maps text) never contain NULs.
        REQUIRE(p);
      }
      break;
    default:
      break;
  }
}

}  // namespace

TEST_CASE("every captured DMTCP message round-trips through the codec") {
  auto files = vector_files();
  INFO("vectors directory: " << CKPT_VECTORS_DIR);
  REQUIRE_MESSAGE(files.size() >= 6, "wire vectors not found; set CKPT_VECTORS_DIR");
  size_t total = 0;
  for (const auto& file : files) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    tj::Value arr = tj::parse(ss.str());
    REQUIRE(arr.kind == tj::Value::Array);
    for (const auto& m : arr.arr) {
      INFO(file << " seq " << m["seq"].integer() << " " << m["type"].str);
      std::string wire = unhex(m["header_hex"].str);
      std::string payload = unhex(m["payload_hex"].str);
      REQUIRE(wire.size() == kHeaderSize);
      const auto* bytes = reinterpret_cast<const uint8_t*>(wire.data());

      Header h = decode_header(bytes);
      CHECK(validate(h) == Validity::Ok);
      CHECK(h.extraBytes == payload.size());
      CHECK(std::string(msg_type_name(h.type)) == m["type"].str);

      // 1. decode -> encode is the identity on all 208 bytes.
      uint8_t again[kHeaderSize];
      encode_header(h, again);
      CHECK(std::memcmp(again, bytes, kHeaderSize) == 0);

      // 2. The decoded fields equal the independent annotation.
      const tj::Value& d = m["decoded"];
      Header ref = header_from_decoded(d);
      CHECK(h.name_view() == d["barrier"].str);
      CHECK(h.from == ref.from);
      CHECK(h.compGroup == ref.compGroup);
      CHECK(h.from.text() == d["from"]["text"].str);
      CHECK(h.compGroup.text() == d["compGroup"]["text"].str);
      CHECK(h.state == ref.state);
      CHECK(std::string(worker_state_name(h.state)) == d["state_name"].str);
      CHECK(std::string(coord_cmd_name(h.coordCmd)) == d["coordCmd_name"].str);
      CHECK(std::string(cmd_status_name(h.coordCmdStatus)) == d["coordCmdStatus_name"].str);
      CHECK(h.virtualPid == ref.virtualPid);
      CHECK(h.realPid == ref.realPid);
      CHECK(h.numPeers == ref.numPeers);
      CHECK(h.coordTimeStamp == ref.coordTimeStamp);
      CHECK(h.theCheckpointInterval == ref.theCheckpointInterval);
      CHECK(h.ipAddr == ref.ipAddr);
      CHECK(h.uniqueIdOffset == uint32_t(d["uniqueIdOffset"].integer()));

      // 3. A header built from the fields (zeros in the garbage areas, as our
      // coordinator sends them) matches outside the dont_care ranges.
      std::vector<bool> masked(kHeaderSize, false);
      for (const auto& r : m["dont_care"].arr) {
        for (long long i = r.arr[0].integer(); i < r.arr[1].integer(); i++) masked[size_t(i)] = true;
      }
      uint8_t built[kHeaderSize];
      encode_header(ref, built);
      for (size_t i = 0; i < kHeaderSize; i++) {
        if (masked[i]) continue;
        INFO("byte " << i);
        CHECK(int(built[i]) == int(bytes[i]));
      }

      // 4. The whole message goes out as one buffer equal to the capture.
      CHECK(encode_message(h, payload) == wire + payload);

      // 5. The framer cuts the same message out of a byte stream.
      Framer f;
      std::string stream = wire + payload;
      for (char c : stream) f.feed(&c, 1);
      Message got;
      REQUIRE(f.next(got) == Framer::Status::Ready);
      CHECK(got.payload == payload);
      CHECK(f.buffered() == 0);

      check_payload_roundtrip(h, payload);
      total++;
    }
  }
  // 190 messages were published; fewer means the files changed under us.
  CHECK(total >= 190);
}
