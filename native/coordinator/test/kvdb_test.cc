#include <doctest/doctest.h>

#include <cstdio>

#include "coordinator/kvdb.h"

using namespace ckpt::coordinator::detail;
using ckpt::protocol::KvdbOp;
using ckpt::protocol::KvdbResult;

namespace {
std::string old_of(Kvdb& k, KvdbOp op, const std::string& key, const std::string& v) {
  auto r = k.apply(int32_t(op), "db", key, v);
  REQUIRE(r.code == KvdbResult::Success);
  return r.value;
}
}  // namespace

TEST_CASE("kvdb operations follow the verified sequence (spec 3.13)") {
  Kvdb k(1 << 20);
  CHECK(old_of(k, KvdbOp::Set, "k", "5") == "0");
  CHECK(old_of(k, KvdbOp::IncrBy, "k", "3") == "5");
  CHECK(old_of(k, KvdbOp::And, "k", "6") == "8");
  CHECK(old_of(k, KvdbOp::Or, "k", "1") == "0");
  CHECK(old_of(k, KvdbOp::Xor, "k", "15") == "1");
  CHECK(old_of(k, KvdbOp::Min, "k", "2") == "14");
  CHECK(old_of(k, KvdbOp::Max, "k", "100") == "2");
  CHECK(old_of(k, KvdbOp::IncrBy, "n", "7") == "0");
  auto g = k.apply(int32_t(KvdbOp::Get), "db", "n", "");
  CHECK(g.value == "7");
  CHECK(old_of(k, KvdbOp::IncrBy, "h", "0x10") == "0");
  CHECK(old_of(k, KvdbOp::IncrBy, "h", "010") == "0x10");
  CHECK(k.apply(int32_t(KvdbOp::Get), "db", "h", "").value == "24");
}

TEST_CASE("kvdb errors are answers, never crashes") {
  Kvdb k(64);
  CHECK(k.apply(int32_t(KvdbOp::Get), "nodb", "k", "").code == KvdbResult::DbNotFound);
  k.apply(int32_t(KvdbOp::Set), "db", "s", "text");
  CHECK(k.apply(int32_t(KvdbOp::Get), "db", "zz", "").code == KvdbResult::KeyNotFound);
  CHECK(k.apply(int32_t(KvdbOp::IncrBy), "db", "s", "1").code == KvdbResult::InvalidRequest);
  CHECK(k.apply(8, "db", "s", "1").code == KvdbResult::InvalidRequest);
  CHECK(k.apply(-1, "db", "s", "1").code == KvdbResult::InvalidRequest);
  // The size limit refuses growth beyond max_bytes.
  CHECK(k.apply(int32_t(KvdbOp::Set), "db", "big", std::string(100, 'x')).code == KvdbResult::InvalidRequest);
  CHECK(k.apply(int32_t(KvdbOp::Get), "db", "big", "").code == KvdbResult::KeyNotFound);
}

TEST_CASE("event log keys never collide and the json dump is sorted") {
  Kvdb k(1 << 20);
  for (int i = 0; i < 50; i++) k.log_event("Barrier-X");
  std::string j = k.to_json();
  size_t count = 0;
  for (size_t p = j.find("-Barrier-X"); p != std::string::npos; p = j.find("-Barrier-X", p + 1)) count++;
  CHECK(count == 50);
  CHECK(j.find("\"/Event_Timestamp_Ms\": {") != std::string::npos);
  CHECK(j.find("00050-Barrier-X") != std::string::npos);
  k.apply(int32_t(KvdbOp::Set), "/a", "lines", "one\ntwo\n");
  j = k.to_json();
  CHECK(j.find("\"/a\": {\n    \"lines\": [\n      \"one\",\n      \"two\"\n    ]") != std::string::npos);
  CHECK(j.find("\"/a\"") > j.find("\"/Event_Timestamp_Ms\""));  // byte order: 'E' < 'a'
}

TEST_CASE("the event log is bounded and keeps the newest entries") {
  Kvdb k(1 << 20);
  for (size_t i = 0; i < Kvdb::kMaxEvents + 10; i++) k.log_event("E");
  std::string j = k.to_json();
  CHECK(j.find("\"00001-E\"") == std::string::npos);
  CHECK(j.find("-E\"") != std::string::npos);
  char last[32];
  std::snprintf(last, sizeof last, "%05zu-E", Kvdb::kMaxEvents + 10);
  CHECK(j.find(last) != std::string::npos);
}
