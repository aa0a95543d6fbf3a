#include "coordinator/kvdb.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace ckpt::coordinator::detail {

using protocol::KvdbOp;
using protocol::KvdbResult;

bool parse_int64(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 64) return false;
  std::string tmp(s);
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(tmp.c_str(), &end, 0);
  if (errno != 0 || end != tmp.c_str() + tmp.size()) return false;
  out = v;
  return true;
}

int64_t realtime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string local_time_ms(int64_t epoch_ms) {
  time_t secs = time_t(epoch_ms / 1000);
  tm local{};
  localtime_r(&secs, &local);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &local);
  std::snprintf(buf + n, sizeof buf - n, ".%03d", int(epoch_ms % 1000));
  return buf;
}

bool Kvdb::store(const std::string& db, const std::string& key, std::string value) {
  auto& m = dbs_[db];
  auto it = m.find(key);
  size_t old = it == m.end() ? 0 : key.size() + it->second.size();
  size_t add = key.size() + value.size();
  if (bytes_ - old + add > max_bytes_) {
    if (m.empty()) dbs_.erase(db);
    return false;
  }
  bytes_ = bytes_ - old + add;
  if (it == m.end()) m.emplace(key, std::move(value));
  else it->second = std::move(value);
  return true;
}

Kvdb::Result Kvdb::apply(int32_t op, const std::string& db, const std::string& key, const std::string& value) {
  Result r;
  if (op < 0 || op >= protocol::kKvdbOpCount) {
    r.code = KvdbResult::InvalidRequest;
    return r;
  }
  if (KvdbOp(op) == KvdbOp::Get) {
    auto d = dbs_.find(db);
    if (d == dbs_.end()) {
      r.code = KvdbResult::DbNotFound;
      return r;
    }
    auto k = d->second.find(key);
    if (k == d->second.end()) {
      r.code = KvdbResult::KeyNotFound;
      return r;
    }
    r.has_value = true;
    r.value = k->second;
    return r;
  }

  std::string old = "0";
  bool existed = false;
  if (auto d = dbs_.find(db); d != dbs_.end()) {
    if (auto k = d->second.find(key); k != d->second.end()) {
      old = k->second;
      existed = true;
    }
  }
  std::string next = value;
  if (KvdbOp(op) != KvdbOp::Set && existed) {
    int64_t a = 0, b = 0;
    if (!parse_int64(old, a) || !parse_int64(value, b)) {
      r.code = KvdbResult::InvalidRequest;
      return r;
    }
    int64_t c = 0;
    switch (KvdbOp(op)) {
      // Wrapping add: DMTCP used plain signed addition; wrapping keeps the
      // same results without undefined behaviour on overflow.
      case KvdbOp::IncrBy: c = int64_t(uint64_t(a) + uint64_t(b)); break;
      case KvdbOp::And: c = a & b; break;
      case KvdbOp::Or: c = a | b; break;
      case KvdbOp::Xor: c = a ^ b; break;
      case KvdbOp::Min: c = std::min(a, b); break;
      case KvdbOp::Max: c = std::max(a, b); break;
      default: break;
    }
    next = std::to_string(c);
  }
  if (!store(db, key, std::move(next))) {
    r.code = KvdbResult::InvalidRequest;
    return r;
  }
  r.has_value = true;
  r.value = std::move(old);
  return r;
}

void Kvdb::log_event(const std::string& event) {
  int64_t ms = std::max(realtime_ms(), last_event_ms_ + 1);
  last_event_ms_ = ms;
  char seq[32];
  std::snprintf(seq, sizeof seq, "%05llu-", static_cast<unsigned long long>(++event_seq_));
  // The event log is the coordinator's own data: it is not subject to the
  // peer-facing size limit.
  auto& m = dbs_[kEventDb];
  std::string key = local_time_ms(ms);
  std::string val = seq + event;
  bytes_ += key.size() + val.size();
  m[key] = std::move(val);
  // Bounded: a coordinator that checkpoints every few minutes for months
  // must not grow without limit. The oldest entries go first (keys sort by
  // time; the sequence numbers show what was dropped).
  while (m.size() > kMaxEvents) {
    auto first = m.begin();
    bytes_ -= first->first.size() + first->second.size();
    m.erase(first);
  }
}

void Kvdb::clear() {
  dbs_.clear();
  bytes_ = 0;
}

namespace {
// JSON string escaping. The original used C++ quoting (only " and \);
// escaping control characters too keeps the file valid JSON.
void json_quote(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out.push_back(char(c));
        }
    }
  }
  out.push_back('"');
}
}  // namespace

std::string Kvdb::to_json() const {
  std::string out = "{\n";
  bool first_db = true;
  for (const auto& [db, keys] : dbs_) {
    if (!first_db) out += ",\n";
    first_db = false;
    out += "  ";
    json_quote(out, db);
    out += ": {\n";
    bool first_key = true;
    for (const auto& [k, v] : keys) {
      if (!first_key) out += ",\n";
      first_key = false;
      out += "    ";
      json_quote(out, k);
      out += ": ";
      if (v.find('\n') == std::string::npos) {
        json_quote(out, v);
        continue;
      }
      // Multi-line values (e.g. /proc/self/maps text) as an array of lines.
      out += "[\n";
      size_t pos = 0;
      bool first_line = true;
      while (pos <= v.size()) {
        size_t nl = v.find('\n', pos);
        std::string_view line = std::string_view(v).substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (nl == std::string::npos && line.empty()) break;
        if (!first_line) out += ",\n";
        first_line = false;
        out += "      ";
        json_quote(out, line);
        if (nl == std::string::npos) break;
        pos = nl + 1;
      }
      out += "\n    ]";
    }
    out += "\n  }";
  }
  out += "\n}\n";
  return out;
}

}  // namespace ckpt::coordinator::detail
