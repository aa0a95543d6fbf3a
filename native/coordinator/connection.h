// One TCP connection of the coordinator: its input framer, its output queue
// and what it currently is (a hello not yet received, a worker, a
// name-service connection or a user-command client). Owned by Core; only the
// loop thread touches it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "coordinator/computation.h"
#include "coordinator/event_loop.h"
#include "protocol/message.h"

namespace ckpt::coordinator::detail {

class Core;

enum class ConnKind {
  Handshake,    // waiting for the first message (deadline applies)
  Held,         // a new-worker hello parked until the running checkpoint ends
  Worker,       // registered worker
  NameService,  // KVDB-only side connection of a worker
  UserCmd,      // user command received; reply queued or deferred
};

struct Connection final : IoHandler {
  Connection(Core& c, uint64_t i, int f, uint32_t ip) : core(c), id(i), fd(f), peer_ip(ip) {}
  void on_io(uint32_t events) override;

  Core& core;
  const uint64_t id;
  int fd;
  const uint32_t peer_ip;  // host order
  ConnKind kind = ConnKind::Handshake;

  protocol::Framer in;
  std::deque<std::string> out;  // queued messages, front partially written
  size_t out_off = 0;           // bytes of out.front() already written
  size_t queued = 0;            // bytes in `out` not yet written
  uint32_t watched = 0;         // epoll mask currently registered

  bool reading = true;            // EPOLLIN wanted (false after EOF / for replies)
  bool close_after_flush = false;  // close once `out` is empty
  bool dead = false;              // closing; freed after the current batch
  bool waiting_blocking = false;  // UserCmd: answer deferred to checkpoint completion

  // Handshake FIFO (deadlines are accept time + a constant, so FIFO order is
  // deadline order).
  uint64_t deadline_ms = 0;
  Connection* hs_prev = nullptr;
  Connection* hs_next = nullptr;
  bool in_handshake_list = false;

  std::unique_ptr<Worker> worker;  // kind == Worker
  protocol::Message held;          // kind == Held: the hello to re-run
};

}  // namespace ckpt::coordinator::detail
