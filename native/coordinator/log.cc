#include "coordinator/log.h"

#include <unistd.h>

namespace ckpt::coordinator::detail {

namespace {
void stderr_sink(LogLevel level, const std::string& line) {
  static const char* const names[] = {"ERROR", "WARNING", "NOTE"};
  std::string out = std::string("[dmtcp_coordinator] ") + names[int(level)] + ": " + line + "\n";
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = write(2, out.data() + off, out.size() - off);
    if (n <= 0) break;
    off += size_t(n);
  }
}
}  // namespace

AsyncLog::AsyncLog(int quiet, std::function<void(LogLevel, const std::string&)> sink)
    : quiet_(quiet), sink_(sink ? std::move(sink) : stderr_sink), thread_([this] { run(); }) {}

AsyncLog::~AsyncLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void AsyncLog::log(LogLevel level, std::string line) {
  // quiet 1 hides notes, quiet >= 2 also hides warnings (DMTCP_QUIET).
  if (int(level) > 2 - (quiet_ > 2 ? 2 : quiet_)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (q_.size() >= kMaxQueued) {
      dropped_++;
      return;
    }
    q_.emplace_back(level, std::move(line));
  }
  cv_.notify_one();
}

void AsyncLog::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [this] { return q_.empty() && !busy_; });
}

void AsyncLog::run() {
  for (;;) {
    std::pair<LogLevel, std::string> item;
    uint64_t dropped = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;
      item = std::move(q_.front());
      q_.pop_front();
      dropped = dropped_;
      dropped_ = 0;
      busy_ = true;
    }
    if (dropped) sink_(LogLevel::Warning, std::to_string(dropped) + " log lines dropped (output too slow)");
    sink_(item.first, item.second);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = false;
      if (q_.empty()) idle_cv_.notify_all();
    }
  }
}

}  // namespace ckpt::coordinator::detail
