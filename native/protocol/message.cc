// Byte-level codec of the DMTCP coordinator protocol (see message.h).
#include "protocol/message.h"

#include <cassert>
#include <cstring>

namespace ckpt::protocol {
namespace {

// Explicit little-endian access: the wire format is x86_64 host order, and we
// want the code to mean the same thing on any host.
inline uint32_t ld32(const uint8_t* p) noexcept {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint64_t ld64(const uint8_t* p) noexcept { return uint64_t(ld32(p)) | uint64_t(ld32(p + 4)) << 32; }
inline void st32(uint8_t* p, uint32_t v) noexcept {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}
inline void st64(uint8_t* p, uint64_t v) noexcept {
  st32(p, uint32_t(v));
  st32(p + 4, uint32_t(v >> 32));
}

// Field offsets (spec §2.1).
enum Off : size_t {
  kOffMagic = 0,
  kOffName = 16,
  kOffKvdb = 80,
  kOffPad84 = 84,
  kOffMsgSize = 88,
  kOffExtraBytes = 92,
  kOffType = 96,
  kOffState = 100,
  kOffFrom = 104,
  kOffCompGroup = 128,
  kOffVirtualPid = 152,
  kOffRealPid = 156,
  kOffKeyLen = 160,
  kOffValLen = 164,
  kOffNumPeers = 168,
  kOffIsRunning = 172,
  kOffCoordCmd = 176,
  kOffCoordCmdStatus = 180,
  kOffCoordTimeStamp = 184,
  kOffInterval = 192,
  kOffIpAddr = 196,
  kOffUniqueIdOffset = 200,
  kOffExitAfterCkpt = 204,
};
static_assert(kOffExitAfterCkpt + 4 == kHeaderSize);

void store_upid(uint8_t* p, const UniquePid& u) noexcept {
  st64(p, u.hostid);
  st64(p + 8, u.time);
  st32(p + 16, uint32_t(u.pid));
  st32(p + 20, u.generation);
}
UniquePid load_upid(const uint8_t* p) noexcept {
  UniquePid u;
  u.hostid = ld64(p);
  u.time = ld64(p + 8);
  u.pid = int32_t(ld32(p + 16));
  u.generation = ld32(p + 20);
  return u;
}

}  // namespace

const char* msg_type_name(uint32_t type) noexcept {
  static const char* const names[kMsgTypeCount] = {
      "DMT_NULL",
      "DMT_NEW_WORKER",
      "DMT_NAME_SERVICE_WORKER",
      "DMT_RESTART_WORKER",
      "DMT_ACCEPT",
      "DMT_REJECT_NOT_RESTARTING",
      "DMT_REJECT_WRONG_COMP",
      "DMT_REJECT_NOT_RUNNING",
      "DMT_REJECT_RESTART_PEER_MISMATCH",
      "DMT_UPDATE_PROCESS_INFO_AFTER_FORK",
      "DMT_UPDATE_PROCESS_INFO_AFTER_INIT_OR_EXEC",
      "DMT_GET_CKPT_DIR",
      "DMT_GET_CKPT_DIR_RESULT",
      "DMT_UPDATE_CKPT_DIR",
      "DMT_CKPT_FILENAME",
      "DMT_UNIQUE_CKPT_FILENAME",
      "DMT_USER_CMD",
      "DMT_USER_CMD_RESULT",
      "DMT_DO_CHECKPOINT",
      "DMT_BARRIER",
      "DMT_BARRIER_RELEASED",
      "DMT_WORKER_RESUMING",
      "DMT_KILL_PEER",
      "DMT_KVDB_REQUEST",
      "DMT_KVDB_RESPONSE",
  };
  return type < kMsgTypeCount ? names[type] : "DMT_?";
}

const char* worker_state_name(uint32_t state) noexcept {
  static const char* const names[kWorkerStateCount] = {"UNKNOWN",       "RUNNING",      "PRESUSPEND", "SUSPENDED",
                                                       "CHECKPOINTING", "CHECKPOINTED", "RESTARTING"};
  return state < kWorkerStateCount ? names[state] : "?";
}

const char* coord_cmd_name(uint32_t cmd) noexcept {
  static const char* const names[] = {"DMT_INVALID_COORDINATOR_COMMAND",
                                      "DMT_STATUS",
                                      "DMT_LIST",
                                      "DMT_CHECKPOINT",
                                      "DMT_BLOCKING_CKPT",
                                      "DMT_KILL_AFTER_CKPT",
                                      "DMT_UPDATE_CKPT_INTERVAL",
                                      "DMT_KILL",
                                      "DMT_QUIT",
                                      "DMT_HELP"};
  return cmd < sizeof(names) / sizeof(names[0]) ? names[cmd] : "DMT_INVALID_COORDINATOR_COMMAND";
}

const char* cmd_status_name(int32_t status) noexcept {
  switch (status) {
    case 0: return "DMT_COORD_SUCCESS";
    case -1: return "DMT_COORD_INVALID_COMMAND";
    case -2: return "DMT_COORD_NOT_RUNNING";
    case -3: return "DMT_COORD_NOT_FOUND";
    default: return "DMT_COORD_?";
  }
}

const char* kvdb_op_name(int32_t op) noexcept {
  static const char* const names[kKvdbOpCount] = {"GET", "SET", "INCRBY", "AND", "OR", "XOR", "MIN", "MAX"};
  return op >= 0 && op < kKvdbOpCount ? names[op] : "?";
}

const char* kvdb_result_name(int32_t result) noexcept {
  static const char* const names[] = {"SUCCESS", "INVALID_REQUEST", "DB_NOT_FOUND", "KEY_NOT_FOUND"};
  return result >= 0 && result < 4 ? names[result] : "?";
}

std::string UniquePid::text() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%llx-%d-%llx", static_cast<unsigned long long>(hostid), pid,
                static_cast<unsigned long long>(time));
  return buf;
}

uint64_t hostid_hash(std::string_view hostname) noexcept {
  // Unsigned arithmetic gives the same bits as DMTCP's signed `long` without
  // signed-overflow UB; the sign is inspected only at the end.
  uint64_t h = 0;
  for (char c : hostname) h = uint64_t(int64_t(static_cast<signed char>(c))) + 331u * h;
  int64_t s = int64_t(h);
  return s < 0 ? uint64_t(0) - h : h;
}

std::string_view Header::name_view() const noexcept {
  const void* nul = std::memchr(name.data(), 0, name.size());
  size_t len = nul ? size_t(static_cast<const char*>(nul) - name.data()) : name.size();
  return {name.data(), len};
}

bool Header::set_name(std::string_view s) noexcept {
  if (s.size() >= kNameSize || s.find('\0') != std::string_view::npos) return false;
  name.fill(0);
  std::memcpy(name.data(), s.data(), s.size());
  return true;
}

Header default_header(const UniquePid& from, MsgType type) noexcept {
  Header h;
  std::memcpy(h.magic.data(), kMagic, sizeof kMagic);
  h.type = uint32_t(type);
  h.from = from;
  return h;
}

void encode_header(const Header& h, uint8_t out[kHeaderSize]) noexcept {
  std::memcpy(out + kOffMagic, h.magic.data(), 16);
  std::memcpy(out + kOffName, h.name.data(), kNameSize);
  st32(out + kOffKvdb, uint32_t(h.kvdb));
  st32(out + kOffPad84, h.pad84);
  st32(out + kOffMsgSize, h.msgSize);
  st32(out + kOffExtraBytes, h.extraBytes);
  st32(out + kOffType, h.type);
  st32(out + kOffState, h.state);
  store_upid(out + kOffFrom, h.from);
  store_upid(out + kOffCompGroup, h.compGroup);
  st32(out + kOffVirtualPid, uint32_t(h.virtualPid));
  st32(out + kOffRealPid, uint32_t(h.realPid));
  st32(out + kOffKeyLen, h.keyLen);
  st32(out + kOffValLen, h.valLen);
  st32(out + kOffNumPeers, h.numPeers);
  st32(out + kOffIsRunning, h.isRunning);
  st32(out + kOffCoordCmd, h.coordCmd);
  st32(out + kOffCoordCmdStatus, uint32_t(h.coordCmdStatus));
  st64(out + kOffCoordTimeStamp, h.coordTimeStamp);
  st32(out + kOffInterval, uint32_t(h.theCheckpointInterval));
  // struct in_addr: network (big-endian) byte order on the wire.
  out[kOffIpAddr] = uint8_t(h.ipAddr >> 24);
  out[kOffIpAddr + 1] = uint8_t(h.ipAddr >> 16);
  out[kOffIpAddr + 2] = uint8_t(h.ipAddr >> 8);
  out[kOffIpAddr + 3] = uint8_t(h.ipAddr);
  st32(out + kOffUniqueIdOffset, h.uniqueIdOffset);
  st32(out + kOffExitAfterCkpt, h.exitAfterCkpt);
}

Header decode_header(const uint8_t in[kHeaderSize]) noexcept {
  Header h;
  std::memcpy(h.magic.data(), in + kOffMagic, 16);
  std::memcpy(h.name.data(), in + kOffName, kNameSize);
  h.kvdb = int32_t(ld32(in + kOffKvdb));
  h.pad84 = ld32(in + kOffPad84);
  h.msgSize = ld32(in + kOffMsgSize);
  h.extraBytes = ld32(in + kOffExtraBytes);
  h.type = ld32(in + kOffType);
  h.state = ld32(in + kOffState);
  h.from = load_upid(in + kOffFrom);
  h.compGroup = load_upid(in + kOffCompGroup);
  h.virtualPid = int32_t(ld32(in + kOffVirtualPid));
  h.realPid = int32_t(ld32(in + kOffRealPid));
  h.keyLen = ld32(in + kOffKeyLen);
  h.valLen = ld32(in + kOffValLen);
  h.numPeers = ld32(in + kOffNumPeers);
  h.isRunning = ld32(in + kOffIsRunning);
  h.coordCmd = ld32(in + kOffCoordCmd);
  h.coordCmdStatus = int32_t(ld32(in + kOffCoordCmdStatus));
  h.coordTimeStamp = ld64(in + kOffCoordTimeStamp);
  h.theCheckpointInterval = int32_t(ld32(in + kOffInterval));
  h.ipAddr = uint32_t(in[kOffIpAddr]) << 24 | uint32_t(in[kOffIpAddr + 1]) << 16 |
             uint32_t(in[kOffIpAddr + 2]) << 8 | uint32_t(in[kOffIpAddr + 3]);
  h.uniqueIdOffset = ld32(in + kOffUniqueIdOffset);
  h.exitAfterCkpt = ld32(in + kOffExitAfterCkpt);
  return h;
}

Validity validate(const Header& h) noexcept {
  if (std::memcmp(h.magic.data(), kMagic, kMagicCheckedBytes) != 0) return Validity::BadMagic;
  if (h.msgSize != kHeaderSize) return Validity::BadMsgSize;
  if (h.extraBytes > kMaxExtraBytes) return Validity::PayloadTooLarge;
  return Validity::Ok;
}

const char* validity_text(Validity v) noexcept {
  switch (v) {
    case Validity::Ok: return "valid";
    case Validity::BadMagic: return "bad magic";
    case Validity::BadMsgSize: return "msgSize is not 208";
    case Validity::PayloadTooLarge: return "extraBytes exceeds 1 MiB";
  }
  return "?";
}

std::string encode_message(Header h, std::string_view payload) {
  assert(payload.size() <= kMaxExtraBytes);
  h.extraBytes = uint32_t(payload.size());
  std::string out(kHeaderSize + payload.size(), '\0');
  encode_header(h, reinterpret_cast<uint8_t*>(out.data()));
  if (!payload.empty()) std::memcpy(out.data() + kHeaderSize, payload.data(), payload.size());
  return out;
}

std::optional<std::vector<std::string_view>> split_cstrings(std::string_view payload, size_t count) {
  std::vector<std::string_view> out;
  out.reserve(count);
  size_t pos = 0;
  for (size_t i = 0; i < count; i++) {
    size_t nul = payload.find('\0', pos);
    if (nul == std::string_view::npos) return std::nullopt;
    out.push_back(payload.substr(pos, nul - pos));
    pos = nul + 1;
  }
  if (pos != payload.size()) return std::nullopt;
  return out;
}

std::string make_hello_payload(std::string_view hostname, std::string_view progname) {
  std::string s;
  s.append(hostname).push_back('\0');
  s.append(progname).push_back('\0');
  return s;
}

std::optional<HelloPayload> parse_hello_payload(std::string_view payload) {
  auto parts = split_cstrings(payload, 2);
  if (!parts) return std::nullopt;
  return HelloPayload{std::string((*parts)[0]), std::string((*parts)[1])};
}

std::string make_ckpt_filename_payload(std::string_view path, std::string_view shell, std::string_view host) {
  std::string s;
  s.append(path).push_back('\0');
  s.append(shell).push_back('\0');
  s.append(host).push_back('\0');
  return s;
}

std::optional<CkptFilenamePayload> parse_ckpt_filename_payload(std::string_view payload) {
  auto parts = split_cstrings(payload, 3);
  if (!parts) return std::nullopt;
  return CkptFilenamePayload{std::string((*parts)[0]), std::string((*parts)[1]), std::string((*parts)[2])};
}

std::string make_cstring_payload(std::string_view s) {
  std::string out(s);
  out.push_back('\0');
  return out;
}

std::optional<std::string> parse_cstring_payload(std::string_view payload) {
  auto parts = split_cstrings(payload, 1);
  if (!parts) return std::nullopt;
  return std::string((*parts)[0]);
}

std::string make_kvdb_payload(Header& h, std::string_view key, std::string_view value) {
  std::string s;
  s.append(key).push_back('\0');
  s.append(value).push_back('\0');
  h.keyLen = uint32_t(key.size() + 1);
  h.valLen = uint32_t(value.size() + 1);
  return s;
}

std::optional<KvdbPayload> parse_kvdb_payload(const Header& h, std::string_view payload) {
  // Widen before adding: both lengths come from the peer.
  if (h.keyLen == 0 || h.valLen == 0 || uint64_t(h.keyLen) + h.valLen != payload.size()) return std::nullopt;
  std::string_view key = payload.substr(0, h.keyLen);
  std::string_view val = payload.substr(h.keyLen);
  // Each field must end with its NUL exactly at the announced length and hold
  // no NUL before it (the value would otherwise be silently truncated).
  if (key.back() != '\0' || val.back() != '\0') return std::nullopt;
  key.remove_suffix(1);
  val.remove_suffix(1);
  if (key.find('\0') != std::string_view::npos || val.find('\0') != std::string_view::npos) return std::nullopt;
  return KvdbPayload{std::string(key), std::string(val)};
}

void Framer::feed(const void* data, size_t size) {
  if (invalid_ || size == 0) return;
  // Compact lazily: only when the consumed prefix dominates the buffer, so
  // the amortised cost per byte stays O(1).
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(static_cast<const char*>(data), size);
}

Framer::Status Framer::next(Message& out) {
  if (invalid_) return Status::Invalid;
  size_t avail = buf_.size() - pos_;
  if (avail < kHeaderSize) return Status::NeedMore;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(buf_.data() + pos_);
  Header h = decode_header(p);
  Validity v = validate(h);
  if (v == Validity::Ok && h.extraBytes > limit_) v = Validity::PayloadTooLarge;
  if (v != Validity::Ok) {
    invalid_ = true;
    error_ = v;
    buf_.clear();
    buf_.shrink_to_fit();
    pos_ = 0;
    return Status::Invalid;
  }
  if (avail < kHeaderSize + h.extraBytes) return Status::NeedMore;
  out.header = h;
  out.payload.assign(buf_.data() + pos_ + kHeaderSize, h.extraBytes);
  pos_ += kHeaderSize + h.extraBytes;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
    // Keep small buffers for reuse, but give back the memory of a large
    // payload (up to 1 MiB) so 10,000 idle connections stay cheap.
    if (buf_.capacity() > 64 * 1024) buf_.shrink_to_fit();
  }
  return Status::Ready;
}

}  // namespace ckpt::protocol
