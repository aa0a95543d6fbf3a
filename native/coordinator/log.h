// Logging that never blocks the event loop: lines are queued and written by a
// background thread (stderr may be a slow terminal or a pipe nobody drains).
// The queue is bounded; when it overflows, lines are dropped and counted.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "coordinator/coordinator.h"

namespace ckpt::coordinator::detail {

class AsyncLog {
 public:
  // `sink` receives each line; default: "<LEVEL>: line" on stderr, filtered by quiet.
  AsyncLog(int quiet, std::function<void(LogLevel, const std::string&)> sink);
  ~AsyncLog();  // writes what is queued, then joins

  void log(LogLevel level, std::string line);
  void note(std::string line) { log(LogLevel::Note, std::move(line)); }
  void warn(std::string line) { log(LogLevel::Warning, std::move(line)); }
  void error(std::string line) { log(LogLevel::Error, std::move(line)); }
  // Blocks until everything queued so far has been written.
  void flush();

 private:
  void run();
  static constexpr size_t kMaxQueued = 20000;
  int quiet_;
  std::function<void(LogLevel, const std::string&)> sink_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::pair<LogLevel, std::string>> q_;
  uint64_t dropped_ = 0;
  bool busy_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace ckpt::coordinator::detail
