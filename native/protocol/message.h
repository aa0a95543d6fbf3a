// The DMTCP 5.0 coordinator wire protocol: the 208-byte message header, its
// enumerations, validity rules and payload encodings (docs/protocol.md,
// spec §2). This is the only place in the project that knows the byte layout;
// the coordinator, dmtcp_command, the engine's worker side, the load generator
// and the TypeScript test worker all encode and decode through it.
//
// The header is held in a plain struct and converted field by field with
// explicit little-endian loads/stores, so nothing depends on the compiler's
// struct layout or on the host byte order. decode_header() keeps every byte
// (including the areas real senders leave uninitialised) so that
// decode -> encode reproduces the input exactly.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::protocol {

// Fixed size of every header on the wire (msgSize must equal it).
inline constexpr size_t kHeaderSize = 208;
// Largest payload a valid message may announce (DMTCP_MAX_MESSAGE_EXTRA_BYTES).
inline constexpr uint32_t kMaxExtraBytes = 1048576;
// Size of the NUL-terminated name area (barrier name / KVDB database id).
inline constexpr size_t kNameSize = 64;
// "DMTCP_CKPT_V0\n" + NUL; only these 15 bytes are checked, byte 15 is padding.
inline constexpr char kMagic[16] = "DMTCP_CKPT_V0\n";
inline constexpr size_t kMagicCheckedBytes = 15;

enum class MsgType : uint32_t {
  Null = 0,
  NewWorker = 1,
  NameServiceWorker = 2,
  RestartWorker = 3,
  Accept = 4,
  RejectNotRestarting = 5,
  RejectWrongComp = 6,
  RejectNotRunning = 7,
  RejectRestartPeerMismatch = 8,
  UpdateProcessInfoAfterFork = 9,
  UpdateProcessInfoAfterInitOrExec = 10,
  GetCkptDir = 11,
  GetCkptDirResult = 12,
  UpdateCkptDir = 13,
  CkptFilename = 14,
  UniqueCkptFilename = 15,
  UserCmd = 16,
  UserCmdResult = 17,
  DoCheckpoint = 18,
  Barrier = 19,
  BarrierReleased = 20,
  WorkerResuming = 21,
  KillPeer = 22,
  KvdbRequest = 23,
  KvdbResponse = 24,
};
inline constexpr uint32_t kMsgTypeCount = 25;

enum class WorkerState : uint32_t {
  Unknown = 0,
  Running = 1,
  PreSuspend = 2,
  Suspended = 3,
  Checkpointing = 4,
  Checkpointed = 5,
  Restarting = 6,
};
// Number of real states; values >= this are invalid (7 is DMTCP's internal _MAX).
inline constexpr uint32_t kWorkerStateCount = 7;

enum class CoordCmd : uint32_t {
  Invalid = 0,
  Status = 1,
  List = 2,
  Checkpoint = 3,
  BlockingCheckpoint = 4,
  KillAfterCheckpoint = 5,
  UpdateInterval = 6,
  Kill = 7,
  Quit = 8,
  Help = 9,
};

enum class CmdStatus : int32_t {
  Success = 0,
  InvalidCommand = -1,
  NotRunning = -2,
  NotFound = -3,  // produced only by clients, when the connect fails
};

enum class KvdbOp : int32_t { Get = 0, Set = 1, IncrBy = 2, And = 3, Or = 4, Xor = 5, Min = 6, Max = 7 };
inline constexpr int32_t kKvdbOpCount = 8;

enum class KvdbResult : int32_t { Success = 0, InvalidRequest = 1, DbNotFound = 2, KeyNotFound = 3 };

// Names as DMTCP prints them ("DMT_ACCEPT", "RUNNING", "DMT_STATUS", ...).
// Unknown values give "DMT_?" / "?" rather than failing: they come from peers.
const char* msg_type_name(uint32_t type) noexcept;
const char* worker_state_name(uint32_t state) noexcept;  // "RUNNING" (without "WorkerState::")
const char* coord_cmd_name(uint32_t cmd) noexcept;       // "DMT_STATUS"
const char* cmd_status_name(int32_t status) noexcept;    // "DMT_COORD_SUCCESS"
const char* kvdb_op_name(int32_t op) noexcept;           // "GET"
const char* kvdb_result_name(int32_t result) noexcept;   // "SUCCESS"

// 24-byte process identity (spec §2.2).
struct UniquePid {
  uint64_t hostid = 0;
  uint64_t time = 0;
  int32_t pid = 0;
  uint32_t generation = 0;

  // The coordinator's notion of equality: the generation is ignored.
  bool same_process(const UniquePid& o) const noexcept {
    return hostid == o.hostid && time == o.time && pid == o.pid;
  }
  // "No computation" (0-0-0); the generation is ignored for the same reason.
  bool is_null() const noexcept { return hostid == 0 && time == 0 && pid == 0; }
  bool operator==(const UniquePid&) const = default;

  // `<hostid hex>-<pid decimal>-<time hex>`, lowercase, generation omitted.
  std::string text() const;
};

// DMTCP's host id: h = c + 331*h over the host name (signed 64-bit
// arithmetic, wrapping), then the absolute value. "vm" gives 0x98ff.
uint64_t hostid_hash(std::string_view hostname) noexcept;

// One decoded header. Field names follow the spec (§2.1). Every byte of the
// wire form has a home here, so encode(decode(b)) == b.
struct Header {
  std::array<uint8_t, 16> magic{};
  std::array<char, kNameSize> name{};  // barrier name / KVDB database id (NUL-terminated)
  int32_t kvdb = 0;                    // bytes 80..83: KvdbOp (request) or KvdbResult (response)
  uint32_t pad84 = 0;                  // bytes 84..87: unused padding (garbage from real senders)
  uint32_t msgSize = kHeaderSize;
  uint32_t extraBytes = 0;
  uint32_t type = 0;
  uint32_t state = 0;
  UniquePid from;
  UniquePid compGroup;
  int32_t virtualPid = -1;
  int32_t realPid = -1;
  uint32_t keyLen = 0;
  uint32_t valLen = 0;
  uint32_t numPeers = 0;
  uint32_t isRunning = 0;
  uint32_t coordCmd = 0;
  int32_t coordCmdStatus = 0;
  uint64_t coordTimeStamp = 0;
  int32_t theCheckpointInterval = -1;  // -1: "unchanged / not given"
  uint32_t ipAddr = 0;                 // IPv4 as a number (a.b.c.d = a<<24|...); network order on the wire
  uint32_t uniqueIdOffset = 0;
  uint32_t exitAfterCkpt = 0;

  MsgType msg_type() const noexcept { return static_cast<MsgType>(type); }
  // The name area up to its first NUL (at most 64 bytes when none is present).
  std::string_view name_view() const noexcept;
  // Stores `s` NUL-terminated and zero-fills the rest. Returns false (and
  // stores nothing) when `s` does not fit in 63 bytes or contains a NUL.
  bool set_name(std::string_view s) noexcept;
};

// A header with the defaults every message the coordinator sends starts from
// (spec §2.5): magic, msgSize 208, `from` = the coordinator's identity,
// virtualPid/realPid -1, interval -1, everything else zero (including the
// areas the original leaves uninitialised).
Header default_header(const UniquePid& from, MsgType type) noexcept;

// Byte-exact conversion between the struct and the 208 wire bytes.
void encode_header(const Header& h, uint8_t out[kHeaderSize]) noexcept;
Header decode_header(const uint8_t in[kHeaderSize]) noexcept;

enum class Validity { Ok, BadMagic, BadMsgSize, PayloadTooLarge };
// The three validity rules of spec §2.6.
Validity validate(const Header& h) noexcept;
const char* validity_text(Validity v) noexcept;

// Header + payload as one contiguous buffer, so each message is sent with one
// write(). extraBytes is set from the payload's size.
std::string encode_message(Header h, std::string_view payload = {});

// A complete message.
struct Message {
  Header header;
  std::string payload;
};

// ----- payload encodings (spec §2.7) -----------------------------------------
// Parsers return std::nullopt for malformed payloads (missing NULs, missing
// fields); they never read past the buffer.

// Splits `payload` into exactly `count` NUL-terminated strings. Bytes after the
// last NUL are rejected (they would be silently dropped otherwise).
std::optional<std::vector<std::string_view>> split_cstrings(std::string_view payload, size_t count);

struct HelloPayload {
  std::string hostname;
  std::string progname;
};
std::string make_hello_payload(std::string_view hostname, std::string_view progname);
std::optional<HelloPayload> parse_hello_payload(std::string_view payload);

struct CkptFilenamePayload {
  std::string path;
  std::string shell;  // "", "ssh" or "rsh"
  std::string hostname;
};
std::string make_ckpt_filename_payload(std::string_view path, std::string_view shell, std::string_view host);
std::optional<CkptFilenamePayload> parse_ckpt_filename_payload(std::string_view payload);

// One NUL-terminated string (progname of INIT_OR_EXEC, path of UPDATE_CKPT_DIR,
// GET_CKPT_DIR_RESULT, the name in BARRIER_RELEASED, a KVDB value).
std::string make_cstring_payload(std::string_view s);
std::optional<std::string> parse_cstring_payload(std::string_view payload);

struct KvdbPayload {
  std::string key;
  std::string value;
};
// Builds `key\0value\0` and sets keyLen/valLen/extraBytes-consistent fields.
std::string make_kvdb_payload(Header& h, std::string_view key, std::string_view value);
// Checks keyLen/valLen against the payload (both >= 1, sum == payload size,
// each field NUL-terminated at its announced end).
std::optional<KvdbPayload> parse_kvdb_payload(const Header& h, std::string_view payload);

// ----- incremental framing ----------------------------------------------------
// Accumulates bytes from a stream and cuts them into messages. Usable by the
// coordinator (one per connection) and by clients. The header is validated as
// soon as its 208 bytes are present, so an invalid header is reported without
// waiting for a payload that may never come.
class Framer {
 public:
  enum class Status { NeedMore, Ready, Invalid };

  // Appends bytes received from the peer.
  void feed(const void* data, size_t size);
  // Extracts the next complete message into `out`. Once Invalid is returned
  // the stream cannot be resynchronised and the framer stays Invalid.
  Status next(Message& out);
  // Why the stream was rejected (meaningful after Invalid).
  Validity error() const noexcept { return error_; }
  // Bytes received but not yet returned as messages.
  size_t buffered() const noexcept { return buf_.size() - pos_; }
  // True when a message has been started (some bytes buffered).
  bool mid_message() const noexcept { return buffered() > 0; }
  // Lowers the largest payload accepted (default kMaxExtraBytes); a header
  // announcing more makes the stream Invalid (PayloadTooLarge) at once.
  void set_payload_limit(uint32_t limit) noexcept { limit_ = limit < kMaxExtraBytes ? limit : kMaxExtraBytes; }

 private:
  std::string buf_;
  size_t pos_ = 0;  // start of the unconsumed bytes in buf_
  bool invalid_ = false;
  Validity error_ = Validity::Ok;
  uint32_t limit_ = kMaxExtraBytes;
};

}  // namespace ckpt::protocol
