// Binding of the DMTCP wire codec (native/protocol) for src/protocol.ts and
// for test clients, so that no TypeScript code lays out message bytes itself.
//
//   exports.protocol = {
//     HEADER_SIZE: 208, MAX_EXTRA_BYTES: 1048576,
//     MsgType: {...}, WorkerState: {...}, CoordCmd: {...}, CmdStatus: {...},
//     KvdbOp: {...}, KvdbResult: {...},
//     encode(fields, payload?) -> Buffer     header (+ payload) as sent on the wire
//     decode(buf) -> fields & {payload, valid, size}   one message at the start of buf
//     frame(buf) -> {messages, consumed, error}        every complete message in buf
//   }
//
// encode() starts from the coordinator defaults of spec §2.5 (magic, msgSize
// 208, virtualPid/realPid/interval -1, zeros elsewhere) and applies the given
// fields. extraBytes defaults to the payload length; tests that need broken
// messages may override it, msgSize and magic.
#include <napi.h>

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "addon/registry.h"
#include "protocol/message.h"

namespace ckpt::addon {
namespace {

namespace p = ckpt::protocol;

uint64_t get_u64(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) return uint64_t(v.As<Napi::Number>().Int64Value());
  if (v.IsString()) return std::stoull(v.As<Napi::String>().Utf8Value(), nullptr, 0);
  throw Napi::TypeError::New(v.Env(), "expected a bigint, number or numeric string");
}

p::UniquePid get_upid(const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "expected a UniquePid object");
  Napi::Object o = v.As<Napi::Object>();
  p::UniquePid u;
  if (o.Has("hostid")) u.hostid = get_u64(o.Get("hostid"));
  if (o.Has("time")) u.time = get_u64(o.Get("time"));
  if (o.Has("pid")) u.pid = o.Get("pid").As<Napi::Number>().Int32Value();
  if (o.Has("generation")) u.generation = o.Get("generation").As<Napi::Number>().Uint32Value();
  return u;
}

Napi::Object put_upid(Napi::Env env, const p::UniquePid& u) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("hostid", Napi::BigInt::New(env, u.hostid));
  o.Set("time", Napi::BigInt::New(env, u.time));
  o.Set("pid", Napi::Number::New(env, u.pid));
  o.Set("generation", Napi::Number::New(env, u.generation));
  o.Set("text", Napi::String::New(env, u.text()));
  return o;
}

std::string bytes_of(const Napi::Value& v) {
  if (v.IsUndefined() || v.IsNull()) return {};
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<uint8_t>>();
    return std::string(reinterpret_cast<const char*>(b.Data()), b.Length());
  }
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  throw Napi::TypeError::New(v.Env(), "payload must be a Buffer or a string");
}

Napi::Value Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "encode(fields, payload?)");
  Napi::Object f = info[0].As<Napi::Object>();
  std::string payload = info.Length() > 1 ? bytes_of(info[1]) : std::string();
  if (payload.size() > p::kMaxExtraBytes) throw Napi::RangeError::New(env, "payload larger than 1 MiB");
  uint32_t type = f.Has("type") ? f.Get("type").As<Napi::Number>().Uint32Value() : 0;
  p::Header h = p::default_header(f.Has("from") ? get_upid(f.Get("from")) : p::UniquePid{}, p::MsgType(type));
  h.extraBytes = uint32_t(payload.size());
  auto u32 = [&](const char* k, uint32_t& out) {
    if (f.Has(k)) out = f.Get(k).As<Napi::Number>().Uint32Value();
  };
  auto i32 = [&](const char* k, int32_t& out) {
    if (f.Has(k)) out = f.Get(k).As<Napi::Number>().Int32Value();
  };
  if (f.Has("magic")) {
    std::string m = bytes_of(f.Get("magic"));
    h.magic.fill(0);
    std::memcpy(h.magic.data(), m.data(), std::min<size_t>(m.size(), 16));
  }
  if (f.Has("barrier")) {
    std::string n = bytes_of(f.Get("barrier"));
    h.name.fill(0);
    std::memcpy(h.name.data(), n.data(), std::min<size_t>(n.size(), p::kNameSize));
  }
  i32("kvdb", h.kvdb);
  u32("pad84", h.pad84);
  u32("msgSize", h.msgSize);
  u32("extraBytes", h.extraBytes);
  u32("state", h.state);
  if (f.Has("compGroup")) h.compGroup = get_upid(f.Get("compGroup"));
  i32("virtualPid", h.virtualPid);
  i32("realPid", h.realPid);
  u32("keyLen", h.keyLen);
  u32("valLen", h.valLen);
  u32("numPeers", h.numPeers);
  u32("isRunning", h.isRunning);
  u32("coordCmd", h.coordCmd);
  i32("coordCmdStatus", h.coordCmdStatus);
  if (f.Has("coordTimeStamp")) h.coordTimeStamp = get_u64(f.Get("coordTimeStamp"));
  i32("theCheckpointInterval", h.theCheckpointInterval);
  if (f.Has("ipAddr")) {
    in_addr a{};
    if (inet_pton(AF_INET, f.Get("ipAddr").As<Napi::String>().Utf8Value().c_str(), &a) != 1)
      throw Napi::TypeError::New(env, "ipAddr must be a dotted IPv4 address");
    h.ipAddr = ntohl(a.s_addr);
  }
  u32("uniqueIdOffset", h.uniqueIdOffset);
  u32("exitAfterCkpt", h.exitAfterCkpt);
  std::string out(p::kHeaderSize + payload.size(), '\0');
  p::encode_header(h, reinterpret_cast<uint8_t*>(out.data()));
  std::memcpy(out.data() + p::kHeaderSize, payload.data(), payload.size());
  return Napi::Buffer<char>::Copy(env, out.data(), out.size());
}

Napi::Object decoded(Napi::Env env, const p::Header& h) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("magic", Napi::Buffer<uint8_t>::Copy(env, h.magic.data(), h.magic.size()));
  o.Set("barrier", Napi::String::New(env, std::string(h.name_view())));
  o.Set("kvdb", Napi::Number::New(env, h.kvdb));
  o.Set("msgSize", Napi::Number::New(env, h.msgSize));
  o.Set("extraBytes", Napi::Number::New(env, h.extraBytes));
  o.Set("type", Napi::Number::New(env, h.type));
  o.Set("typeName", Napi::String::New(env, p::msg_type_name(h.type)));
  o.Set("state", Napi::Number::New(env, h.state));
  o.Set("from", put_upid(env, h.from));
  o.Set("compGroup", put_upid(env, h.compGroup));
  o.Set("virtualPid", Napi::Number::New(env, h.virtualPid));
  o.Set("realPid", Napi::Number::New(env, h.realPid));
  o.Set("keyLen", Napi::Number::New(env, h.keyLen));
  o.Set("valLen", Napi::Number::New(env, h.valLen));
  o.Set("numPeers", Napi::Number::New(env, h.numPeers));
  o.Set("isRunning", Napi::Number::New(env, h.isRunning));
  o.Set("coordCmd", Napi::Number::New(env, h.coordCmd));
  o.Set("coordCmdStatus", Napi::Number::New(env, h.coordCmdStatus));
  o.Set("coordTimeStamp", Napi::BigInt::New(env, h.coordTimeStamp));
  o.Set("theCheckpointInterval", Napi::Number::New(env, h.theCheckpointInterval));
  in_addr a{};
  a.s_addr = htonl(h.ipAddr);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, ip, sizeof ip);
  o.Set("ipAddr", Napi::String::New(env, ip));
  o.Set("uniqueIdOffset", Napi::Number::New(env, h.uniqueIdOffset));
  o.Set("exitAfterCkpt", Napi::Number::New(env, h.exitAfterCkpt));
  p::Validity v = p::validate(h);
  o.Set("valid", Napi::Boolean::New(env, v == p::Validity::Ok));
  o.Set("validity", Napi::String::New(env, p::validity_text(v)));
  return o;
}

Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "decode(buffer)");
  auto b = info[0].As<Napi::Buffer<uint8_t>>();
  if (b.Length() < p::kHeaderSize) throw Napi::RangeError::New(env, "buffer shorter than the 208-byte header");
  p::Header h = p::decode_header(b.Data());
  Napi::Object o = decoded(env, h);
  size_t avail = b.Length() - p::kHeaderSize;
  size_t take = std::min<size_t>(avail, h.extraBytes);
  o.Set("payload", Napi::Buffer<uint8_t>::Copy(env, b.Data() + p::kHeaderSize, take));
  o.Set("complete", Napi::Boolean::New(env, take == h.extraBytes));
  o.Set("size", Napi::Number::New(env, double(p::kHeaderSize + take)));
  return o;
}

Napi::Value Frame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "frame(buffer)");
  auto b = info[0].As<Napi::Buffer<uint8_t>>();
  // Uses the same Framer as the coordinator; `consumed` tells the caller how
  // much of its buffer to drop.
  p::Framer fr;
  fr.feed(b.Data(), b.Length());
  Napi::Array msgs = Napi::Array::New(env);
  p::Message m;
  uint32_t n = 0;
  size_t consumed = 0;
  Napi::Object result = Napi::Object::New(env);
  for (;;) {
    auto st = fr.next(m);
    if (st == p::Framer::Status::NeedMore) break;
    if (st == p::Framer::Status::Invalid) {
      result.Set("error", Napi::String::New(env, p::validity_text(fr.error())));
      break;
    }
    Napi::Object o = decoded(env, m.header);
    o.Set("payload", Napi::Buffer<char>::Copy(env, m.payload.data(), m.payload.size()));
    msgs.Set(n++, o);
    consumed += p::kHeaderSize + m.payload.size();
  }
  result.Set("messages", msgs);
  result.Set("consumed", Napi::Number::New(env, double(consumed)));
  return result;
}

Napi::Object names(Napi::Env env, std::initializer_list<std::pair<const char*, int>> items) {
  Napi::Object o = Napi::Object::New(env);
  for (auto& [k, v] : items) o.Set(k, Napi::Number::New(env, v));
  return o;
}

void InitProtocol(Napi::Env env, Napi::Object exports) {
  Napi::Object p_ = Napi::Object::New(env);
  p_.Set("HEADER_SIZE", Napi::Number::New(env, double(p::kHeaderSize)));
  p_.Set("MAX_EXTRA_BYTES", Napi::Number::New(env, double(p::kMaxExtraBytes)));
  Napi::Object mt = Napi::Object::New(env);
  for (uint32_t i = 0; i < p::kMsgTypeCount; i++) mt.Set(p::msg_type_name(i), Napi::Number::New(env, i));
  p_.Set("MsgType", mt);
  Napi::Object ws = Napi::Object::New(env);
  for (uint32_t i = 0; i < p::kWorkerStateCount; i++) ws.Set(p::worker_state_name(i), Napi::Number::New(env, i));
  p_.Set("WorkerState", ws);
  Napi::Object cc = Napi::Object::New(env);
  for (uint32_t i = 0; i <= 9; i++) cc.Set(p::coord_cmd_name(i), Napi::Number::New(env, i));
  p_.Set("CoordCmd", cc);
  p_.Set("CmdStatus", names(env, {{"DMT_COORD_SUCCESS", 0},
                                  {"DMT_COORD_INVALID_COMMAND", -1},
                                  {"DMT_COORD_NOT_RUNNING", -2},
                                  {"DMT_COORD_NOT_FOUND", -3}}));
  Napi::Object ko = Napi::Object::New(env);
  for (int32_t i = 0; i < p::kKvdbOpCount; i++) ko.Set(p::kvdb_op_name(i), Napi::Number::New(env, i));
  p_.Set("KvdbOp", ko);
  Napi::Object kr = Napi::Object::New(env);
  for (int32_t i = 0; i < 4; i++) kr.Set(p::kvdb_result_name(i), Napi::Number::New(env, i));
  p_.Set("KvdbResult", kr);
  p_.Set("encode", Napi::Function::New(env, Encode, "encode"));
  p_.Set("decode", Napi::Function::New(env, Decode, "decode"));
  p_.Set("frame", Napi::Function::New(env, Frame, "frame"));
  exports.Set("protocol", p_);
}

}  // namespace
}  // namespace ckpt::addon

CKPT_ADDON_BINDING(protocol, ckpt::addon::InitProtocol);
