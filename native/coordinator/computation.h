// Bookkeeping of the registered workers with O(1) updates: an intrusive list
// in registration order (for list output and broadcasts) and a count of
// workers per state, from which the computation status of spec §4.2 (minimum
// state, unanimity, "RUNNING") is derived without scanning.
#pragma once

#include <array>
#include <cassert>
#include <cstdint>
#include <string>

#include "protocol/message.h"

namespace ckpt::coordinator::detail {

struct Connection;

struct Worker {
  uint64_t number = 0;  // client number (never reused)
  protocol::UniquePid identity;
  uint32_t state = 0;  // as last reported by the worker
  int32_t real_pid = -1;
  int32_t vpid = -1;  // value held in the vpid allocator
  std::string hostname;
  std::string progname;
  std::string last_barrier;  // shown by `list`; cleared by WORKER_RESUMING
  bool at_barrier = false;   // counted at the pending barrier
  bool owes_filename = false;  // part of the running checkpoint, no filename yet
  Connection* conn = nullptr;
  Worker* prev = nullptr;
  Worker* next = nullptr;
};

class WorkerSet {
 public:
  // Worker states outside 0..6 (garbage from a peer) are counted in their
  // own bucket, which sorts above every real state.
  static constexpr uint32_t kBuckets = protocol::kWorkerStateCount + 1;
  static uint32_t bucket(uint32_t state) { return state < protocol::kWorkerStateCount ? state : kBuckets - 1; }

  void add(Worker* w) {
    assert(w->prev == nullptr && w->next == nullptr);
    w->prev = tail_;
    if (tail_) tail_->next = w;
    else head_ = w;
    tail_ = w;
    count_++;
    counts_[bucket(w->state)]++;
  }
  void remove(Worker* w) {
    if (w->prev) w->prev->next = w->next;
    else head_ = w->next;
    if (w->next) w->next->prev = w->prev;
    else tail_ = w->prev;
    w->prev = w->next = nullptr;
    assert(count_ > 0 && counts_[bucket(w->state)] > 0);
    count_--;
    counts_[bucket(w->state)]--;
  }
  void set_state(Worker* w, uint32_t state) {
    assert(counts_[bucket(w->state)] > 0);
    counts_[bucket(w->state)]--;
    w->state = state;
    counts_[bucket(state)]++;
  }

  uint32_t size() const { return count_; }
  Worker* head() const { return head_; }
  uint32_t count_in(uint32_t state) const { return counts_[bucket(state)]; }
  // Smallest state among the workers; UNKNOWN (0) when there are none.
  uint32_t min_state() const {
    for (uint32_t b = 0; b < kBuckets; b++)
      if (counts_[b]) return b;
    return 0;
  }
  // Every worker in the same state (true for an empty set).
  bool unanimous() const { return count_ == 0 || counts_[bucket(min_state())] == count_; }

 private:
  Worker* head_ = nullptr;
  Worker* tail_ = nullptr;
  uint32_t count_ = 0;
  std::array<uint32_t, kBuckets> counts_{};
};

}  // namespace ckpt::coordinator::detail
