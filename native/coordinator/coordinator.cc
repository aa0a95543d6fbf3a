// Public API of the coordinator: owns the loop thread and marshals requests
// from other threads onto it (see coordinator.h).
#include "coordinator/coordinator.h"

#include <atomic>
#include <cassert>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "coordinator/core.h"
#include "coordinator/event_loop.h"

namespace ckpt::coordinator {

const char* event_type_name(EventType t) noexcept {
  switch (t) {
    case EventType::WorkerJoined: return "workerJoined";
    case EventType::WorkerLeft: return "workerLeft";
    case EventType::CheckpointStarted: return "checkpointStarted";
    case EventType::CheckpointCompleted: return "checkpointCompleted";
    case EventType::RestartCompleted: return "restartCompleted";
    case EventType::Kill: return "kill";
    case EventType::Quit: return "quit";
    case EventType::Exit: return "exit";
  }
  return "?";
}

struct Coordinator::Impl {
  Options opts;
  std::function<void(const Event&)> event_cb;
  std::unique_ptr<detail::AsyncLog> log;
  std::unique_ptr<detail::FileWriter> writer;
  std::unique_ptr<detail::EventLoop> loop;
  std::unique_ptr<detail::Core> core;
  std::thread thread;
  // Written by the loop thread as it starts, read by API callers.
  std::atomic<std::thread::id> loop_id{};
  uint16_t port = 0;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  bool ended = false;    // loop has returned; no more requests are queued
  bool drained = false;  // and the last queued requests have been answered
  bool joined = false;
  int exit_code = 0;

  bool on_loop_thread() const { return std::this_thread::get_id() == loop_id.load(); }

  void run() {
    loop_id.store(std::this_thread::get_id());
    int timeout = core->after_batch();
    while (!core->finished()) {
      try {
        // During a checkpoint or restart every worker waits at a barrier for
        // us, and we for the last of them. Going to sleep between two
        // messages costs a wake-up (an inter-processor interrupt, a VM exit
        // on virtual machines) on both sides for every pause in the stream,
        // so poll for up to Options::round_poll_us first. Outside rounds the
        // loop sleeps.
        bool handled = false;
        if (timeout != 0 && opts.round_poll_us > 0 && core->in_round()) {
          uint64_t until = detail::now_ns() + uint64_t(opts.round_poll_us) * 1000;
          do {
            handled = loop->run_once(0) > 0;
          } while (!handled && detail::now_ns() < until);
        }
        if (!handled) loop->run_once(timeout);
      } catch (const std::exception& e) {
        // epoll itself failing is not something peers can cause; log it
        // and keep serving rather than dying.
        log->error(std::string("event loop: ") + e.what());
      }
      timeout = core->after_batch();
    }
    // Files promised to users (restart script, KV dump) are written before
    // the process may exit.
    writer->drain();
    core->abandon_waiters();
    Event e{EventType::Exit};
    e.exit_code = core->exit_code();
    e.reason = core->exit_reason();
    if (event_cb) {
      try {
        event_cb(e);
      } catch (...) {
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      exit_code = core->exit_code();
      ended = true;
    }
    // Requests posted before `ended` was set are answered (NotRunning);
    // later ones are refused by command() itself, so none is ever lost.
    loop->run_pending();
    log->flush();
    {
      std::lock_guard<std::mutex> lock(mu);
      drained = true;
    }
    cv.notify_all();
  }
};

Coordinator::Coordinator(Options options) : impl_(std::make_unique<Impl>()) { impl_->opts = std::move(options); }

Coordinator::~Coordinator() { stop(); }

void Coordinator::on_event(std::function<void(const Event&)> cb) { impl_->event_cb = std::move(cb); }

void Coordinator::start() {
  Impl& m = *impl_;
  if (m.started) throw Error(Errc::State, "coordinator already started");
  detail::parse_cidrs(m.opts.allow);  // validate before binding
  detail::raise_fd_limit();
  Listener l = m.opts.listen_fd >= 0 ? adopt_listener(m.opts.listen_fd) : open_listener(m.opts.bind_address, m.opts.port);
  m.port = l.port;
  m.log = std::make_unique<detail::AsyncLog>(m.opts.quiet, m.opts.log);
  m.writer = std::make_unique<detail::FileWriter>();
  try {
    m.loop = std::make_unique<detail::EventLoop>();
    m.core = std::make_unique<detail::Core>(m.opts, l, *m.loop, *m.log, *m.writer);
  } catch (...) {
    // The Core owns the listener only once constructed.
    if (!m.core) close(l.fd);
    m.core.reset();
    m.loop.reset();
    throw;
  }
  m.core->on_event(m.event_cb);
  m.started = true;
  m.thread = std::thread([&m] { m.run(); });
}

uint16_t Coordinator::port() const noexcept { return impl_->port; }

bool Coordinator::running() const noexcept {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->started && !impl_->ended;
}

void Coordinator::command(CoordCmd cmd, int32_t interval, std::function<void(const CommandReply&)> done) {
  Impl& m = *impl_;
  auto refuse = [&] {
    CommandReply r;
    r.command = cmd;
    r.status = CmdStatus::NotRunning;
    if (done) done(r);
  };
  if (m.on_loop_thread()) {
    m.core->command(cmd, interval, std::move(done));
    return;
  }
  // The check and the post happen under one lock: run() sets `ended` under
  // the same lock before answering what is queued, so a request is either
  // refused here or answered there.
  std::unique_lock<std::mutex> lock(m.mu);
  if (!m.started || m.ended) {
    lock.unlock();  // `done` may call back into this object
    refuse();
    return;
  }
  m.loop->post([&m, cmd, interval, done = std::move(done)]() mutable {
    if (m.core->finished()) {
      CommandReply r;
      r.command = cmd;
      r.status = CmdStatus::NotRunning;
      if (done) done(r);
      return;
    }
    m.core->command(cmd, interval, std::move(done));
  });
}

CommandReply Coordinator::command_sync(CoordCmd cmd, int32_t interval) {
  auto p = std::make_shared<std::promise<CommandReply>>();
  auto f = p->get_future();
  auto once = std::make_shared<std::once_flag>();
  command(cmd, interval, [p, once](const CommandReply& r) { std::call_once(*once, [&] { p->set_value(r); }); });
  // The loop may end (quit, timeout) with the request still queued: poll
  // for that instead of waiting forever.
  while (f.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->ended) {
      CommandReply r;
      r.command = cmd;
      r.status = CmdStatus::NotRunning;
      return r;
    }
  }
  return f.get();
}

Status Coordinator::status() const {
  Impl& m = *impl_;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    if (!m.started) return Status{};
    if (m.ended) {
      lock.unlock();
      return m.core->status();  // loop gone: the state is frozen
    }
  }
  if (m.on_loop_thread()) return m.core->status();
  auto p = std::make_shared<std::promise<Status>>();
  auto f = p->get_future();
  m.loop->post([&m, p] { p->set_value(m.core->status()); });
  while (f.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    std::lock_guard<std::mutex> lock(m.mu);
    if (m.ended) break;
  }
  if (f.wait_for(std::chrono::seconds(0)) == std::future_status::ready) return f.get();
  return m.core->status();
}

void Coordinator::stop() {
  Impl& m = *impl_;
  if (!m.started || m.joined) return;
  assert(!m.on_loop_thread() && "stop() from an event callback would deadlock");
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.ended) m.loop->post([&m] { m.core->stop(); });
  }
  wait();
}

int Coordinator::wait() {
  Impl& m = *impl_;
  if (!m.started) return 0;
  if (m.on_loop_thread()) return m.core->exit_code();  // would wait for itself
  {
    std::unique_lock<std::mutex> lock(m.mu);
    m.cv.wait(lock, [&] { return m.drained; });
  }
  if (!m.joined && !m.on_loop_thread()) {
    m.thread.join();
    m.joined = true;
  }
  return m.exit_code;
}

}  // namespace ckpt::coordinator
