// The OS backend of the coordinator: one epoll instance, an eventfd that
// other threads use to hand work to the loop thread, and a monotonic clock.
// Everything here is level-triggered: a handler that leaves data unread is
// simply called again, which keeps fairness simple (no starvation bookkeeping).
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace ckpt::coordinator::detail {

// Something registered with the loop. `on_io` receives the epoll event mask.
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void on_io(uint32_t events) = 0;
};

// Milliseconds of CLOCK_MONOTONIC.
uint64_t now_ms() noexcept;
// CLOCK_MONOTONIC in nanoseconds.
uint64_t now_ns() noexcept;

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registration. Errors other than "already gone" are programming errors
  // and are reported by returning false (the caller drops the connection).
  bool add(int fd, uint32_t events, IoHandler* h) noexcept;
  bool modify(int fd, uint32_t events, IoHandler* h) noexcept;
  void remove(int fd) noexcept;

  // Waits up to `timeout_ms` (-1: forever) and dispatches ready handlers and
  // queued tasks. Handlers may register/unregister fds; freeing a handler
  // during dispatch is not allowed (the owner defers it, see Core).
  // Waits up to timeout_ms (-1: forever) and dispatches; returns the number
  // of events handled (0 on timeout or EINTR).
  int run_once(int timeout_ms);

  // Thread-safe: queue `task` to run on the loop thread and wake it.
  void post(std::function<void()> task);
  // Runs the tasks queued so far (used once more after the loop has ended,
  // so no request is silently dropped).
  void run_pending() { run_tasks(); }

 private:
  class Waker;
  void run_tasks();

  int epfd_ = -1;
  int wakefd_ = -1;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  std::vector<epoll_event> events_;
};

}  // namespace ckpt::coordinator::detail
