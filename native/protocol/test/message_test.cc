// Unit tests of the header codec, validity rules, payload helpers and framer.
#include <doctest/doctest.h>

#include <cstring>

#include "protocol/message.h"

using namespace ckpt::protocol;

namespace {
UniquePid coord_id() { return UniquePid{0x98ff, 0xde0436b3bd, 31352, 0}; }
}  // namespace

TEST_CASE("upid text form and host id hash") {
  CHECK(UniquePid{0x98ff, 0x9faf6ee872, 40000, 3}.text() == "98ff-40000-9faf6ee872");
  CHECK(UniquePid{}.text() == "0-0-0");
  CHECK(hostid_hash("vm") == 0x98ff);
  UniquePid a{1, 2, 3, 0}, b{1, 2, 3, 7};
  CHECK(a.same_process(b));
  CHECK_FALSE(a == b);
  CHECK(UniquePid{0, 0, 0, 9}.is_null());
}

TEST_CASE("coordinator default header matches spec 2.5") {
  Header h = default_header(coord_id(), MsgType::Accept);
  uint8_t b[kHeaderSize];
  encode_header(h, b);
  CHECK(std::memcmp(b, "DMTCP_CKPT_V0\n\0\0", 16) == 0);
  for (int i = 16; i < 88; i++) CHECK(b[i] == 0);
  CHECK(b[88] == 208);
  CHECK(b[96] == 4);
  CHECK(b[152] == 0xff);  // virtualPid -1
  CHECK(b[156] == 0xff);  // realPid -1
  CHECK(b[192] == 0xff);  // interval -1
  for (int i = 196; i < 208; i++) CHECK(b[i] == 0);
  CHECK(validate(h) == Validity::Ok);
}

TEST_CASE("ipAddr is network order on the wire") {
  Header h = default_header(coord_id(), MsgType::Accept);
  h.ipAddr = 0x7f000001;
  uint8_t b[kHeaderSize];
  encode_header(h, b);
  CHECK(b[196] == 127);
  CHECK(b[199] == 1);
  CHECK(decode_header(b).ipAddr == 0x7f000001);
}

TEST_CASE("validity rules") {
  Header h = default_header(coord_id(), MsgType::Barrier);
  h.magic[15] = 0x55;  // byte 15 is not checked
  CHECK(validate(h) == Validity::Ok);
  h.magic[3] = 'x';
  CHECK(validate(h) == Validity::BadMagic);
  h = default_header(coord_id(), MsgType::Barrier);
  h.msgSize = 207;
  CHECK(validate(h) == Validity::BadMsgSize);
  h.msgSize = 208;
  h.extraBytes = kMaxExtraBytes;
  CHECK(validate(h) == Validity::Ok);
  h.extraBytes = kMaxExtraBytes + 1;
  CHECK(validate(h) == Validity::PayloadTooLarge);
}

TEST_CASE("names are NUL-terminated and bounded") {
  Header h;
  CHECK(h.set_name("DMT:SUSPEND"));
  CHECK(h.name_view() == "DMT:SUSPEND");
  CHECK(h.set_name(std::string(63, 'a')));
  CHECK_FALSE(h.set_name(std::string(64, 'a')));
  CHECK_FALSE(h.set_name(std::string("a\0b", 3)));
  h.name.fill('z');  // no NUL at all: the view stops at 64 bytes
  CHECK(h.name_view().size() == 64);
}

TEST_CASE("payload helpers reject malformed input") {
  CHECK(parse_hello_payload(std::string("vm\0./a\0", 7))->progname == "./a");
  CHECK_FALSE(parse_hello_payload(std::string("vm\0./a", 6)));
  CHECK_FALSE(parse_hello_payload(std::string("vm\0a\0junk", 9)));
  CHECK_FALSE(parse_hello_payload(""));
  auto f = parse_ckpt_filename_payload(std::string("/x.dmtcp\0\0vm\0", 13));
  REQUIRE(f);
  CHECK(f->shell.empty());
  CHECK(f->hostname == "vm");
  CHECK_FALSE(parse_ckpt_filename_payload(std::string("/x\0\0", 4)));
  CHECK(parse_cstring_payload(std::string("a\0", 2)) == "a");
  CHECK_FALSE(parse_cstring_payload("a"));
}

TEST_CASE("kvdb payload length checks") {
  Header h;
  std::string p = make_kvdb_payload(h, "k", "v1");
  CHECK(h.keyLen == 2);
  CHECK(h.valLen == 3);
  auto kv = parse_kvdb_payload(h, p);
  REQUIRE(kv);
  CHECK(kv->value == "v1");
  Header bad = h;
  bad.keyLen = 0;
  CHECK_FALSE(parse_kvdb_payload(bad, p));
  bad = h;
  bad.valLen = 0;
  CHECK_FALSE(parse_kvdb_payload(bad, p));
  bad = h;
  bad.keyLen = 0xffffffff;  // would overflow a 32-bit sum
  bad.valLen = 6;
  CHECK_FALSE(parse_kvdb_payload(bad, p));
  bad = h;
  bad.keyLen = 3;  // NUL not at the announced end
  bad.valLen = 2;
  CHECK_FALSE(parse_kvdb_payload(bad, p));
}

TEST_CASE("framer handles split, batched and invalid input") {
  Header h = default_header(coord_id(), MsgType::BarrierReleased);
  std::string a = encode_message(h, make_cstring_payload("DMT:SUSPEND"));
  std::string b = encode_message(default_header(coord_id(), MsgType::KillPeer));
  std::string both = a + b;
  Framer f;
  Message m;
  f.feed(both.data(), 100);
  CHECK(f.next(m) == Framer::Status::NeedMore);
  f.feed(both.data() + 100, both.size() - 100);
  REQUIRE(f.next(m) == Framer::Status::Ready);
  CHECK(m.header.msg_type() == MsgType::BarrierReleased);
  CHECK(m.payload == std::string("DMT:SUSPEND\0", 12));
  REQUIRE(f.next(m) == Framer::Status::Ready);
  CHECK(m.header.msg_type() == MsgType::KillPeer);
  CHECK(f.next(m) == Framer::Status::NeedMore);

  // An oversized announcement is rejected at the header, without waiting.
  Header big = default_header(coord_id(), MsgType::KvdbRequest);
  uint8_t raw[kHeaderSize];
  big.extraBytes = kMaxExtraBytes + 1;
  encode_header(big, raw);
  Framer g;
  g.feed(raw, sizeof raw);
  CHECK(g.next(m) == Framer::Status::Invalid);
  CHECK(g.error() == Validity::PayloadTooLarge);
  g.feed(a.data(), a.size());
  CHECK(g.next(m) == Framer::Status::Invalid);
}

TEST_CASE("framer payload limit") {
  Framer f;
  f.set_payload_limit(10);
  std::string m = encode_message(default_header(coord_id(), MsgType::NewWorker), std::string(11, 'a'));
  f.feed(m.data(), kHeaderSize);  // rejected before the payload arrives
  Message out;
  CHECK(f.next(out) == Framer::Status::Invalid);
  CHECK(f.error() == Validity::PayloadTooLarge);
  Framer g;
  g.set_payload_limit(11);
  g.feed(m.data(), m.size());
  CHECK(g.next(out) == Framer::Status::Ready);
}
