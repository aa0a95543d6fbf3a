#include "coordinator/event_loop.h"

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>

#include "common/errors.h"

namespace ckpt::coordinator::detail {

namespace {
// epoll_wait batch size. Not a connection limit: with more ready fds the
// remainder is simply reported by the next call (level-triggered).
constexpr int kMaxEvents = 1024;
// Marker stored in epoll data for the wake-up eventfd.
IoHandler* const kWakeTag = nullptr;
}  // namespace

uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

EventLoop::EventLoop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) throw_errno("epoll_create1", errno);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd_ < 0) {
    int e = errno;
    close(epfd_);
    throw_errno("eventfd", e);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = kWakeTag;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0) throw_errno("epoll_ctl(eventfd)", errno);
  events_.resize(kMaxEvents);
}

EventLoop::~EventLoop() {
  if (wakefd_ >= 0) close(wakefd_);
  if (epfd_ >= 0) close(epfd_);
}

bool EventLoop::add(int fd, uint32_t events, IoHandler* h) noexcept {
  assert(h != kWakeTag);
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool EventLoop::modify(int fd, uint32_t events, IoHandler* h) noexcept {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void EventLoop::remove(int fd) noexcept { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

int EventLoop::run_once(int timeout_ms) {
  int n = epoll_wait(epfd_, events_.data(), int(events_.size()), timeout_ms);
  if (n < 0) {
    // EINTR: a signal arrived (the executable handles signals on its own
    // thread, but a debugger or profiler may still interrupt us).
    if (errno != EINTR) throw_errno("epoll_wait", errno);
    return 0;
  }
  bool woken = false;
  for (int i = 0; i < n; i++) {
    auto* h = static_cast<IoHandler*>(events_[i].data.ptr);
    if (h == kWakeTag) {
      woken = true;
      continue;
    }
    h->on_io(events_[i].events);
  }
  if (woken) {
    uint64_t v;
    // Reset the counter before draining so a post() racing with us re-arms it.
    [[maybe_unused]] ssize_t r = read(wakefd_, &v, sizeof v);
    run_tasks();
  }
  return n;
}

void EventLoop::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t r = write(wakefd_, &one, sizeof one);
}

void EventLoop::run_tasks() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(tasks_);
  }
  for (auto& t : batch) t();
}

}  // namespace ckpt::coordinator::detail
