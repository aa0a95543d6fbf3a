// The coordinator's key-value database (spec §3.13): named databases of
// string keys and values, the arithmetic update operations workers use, the
// coordinator's own event log and the JSON dump of --write-kv-data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "protocol/message.h"

namespace ckpt::coordinator::detail {

class Kvdb {
 public:
  explicit Kvdb(size_t max_bytes) : max_bytes_(max_bytes) {}

  struct Result {
    protocol::KvdbResult code = protocol::KvdbResult::Success;
    bool has_value = false;
    std::string value;  // GET: the value; updates: the old value ("0" if none)
  };
  // Executes one request. Never throws on peer input: malformed arithmetic
  // operands and unknown ops give InvalidRequest (the original aborted).
  Result apply(int32_t op, const std::string& db, const std::string& key, const std::string& value);

  // Appends "<5-digit seq>-<event>" under a millisecond local-time key in
  // /Event_Timestamp_Ms. Keys are made strictly increasing (a collision moves
  // the key 1 ms forward) so no event overwrites another (W-BUG-15).
  void log_event(const std::string& event);
  // Clears every database (a restart begins). The event sequence continues.
  void clear();

  // The --write-kv-data document (databases and keys sorted, see §3.13).
  std::string to_json() const;
  size_t bytes() const { return bytes_; }

  static constexpr const char* kEventDb = "/Event_Timestamp_Ms";
  // Entries kept in the event log (about 6 MB).
  static constexpr size_t kMaxEvents = 100000;

 private:
  bool store(const std::string& db, const std::string& key, std::string value);

  size_t max_bytes_;
  size_t bytes_ = 0;
  std::map<std::string, std::map<std::string, std::string>> dbs_;
  uint64_t event_seq_ = 0;
  int64_t last_event_ms_ = 0;
};

// Strict base-0 int64 parse (decimal, 0x hex, leading-0 octal), like strtoll
// with full-string and range checks.
bool parse_int64(std::string_view s, int64_t& out);
// Local time "YYYY-MM-DDTHH:MM:SS.mmm" of a CLOCK_REALTIME millisecond value.
std::string local_time_ms(int64_t epoch_ms);
int64_t realtime_ms();

}  // namespace ckpt::coordinator::detail
