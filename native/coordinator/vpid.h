// Virtual-PID allocation (spec §3.16, docs/compat.md "Virtual PIDs").
//
// The first 961 values follow the original exactly: 40000, 41000, ...,
// 1000000 from a cursor that is never reset and skips values in use, so
// traces and list output look the same as with DMTCP's coordinator. The
// original spins forever once all 961 are taken; we never scan more than the
// 961 base slots, and when they are all in use we hand out values from an
// extended range 1001000, 1002000, ... (reusing freed extended values first).
// Every value keeps DMTCP's 1000-wide block, which workers use for the pids
// of their own children.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace ckpt::coordinator::detail {

class VpidAllocator {
 public:
  static constexpr int32_t kFirst = 40000;
  static constexpr int32_t kStep = 1000;
  static constexpr int32_t kBaseLast = 1000000;
  static constexpr uint32_t kBaseSlots = (kBaseLast - kFirst) / kStep + 1;  // 961
  // Largest extended value: the block [v, v+999] must stay below INT32_MAX.
  static constexpr int32_t kExtLast = 2147482000;

  // A fresh value not currently in use, or nullopt when ~2.1 million workers
  // are registered at once (the caller rejects the hello).
  std::optional<int32_t> allocate();
  // Marks `v` as used by a registered worker. Restarted workers bring their
  // own value (any pid); several holders of one value are counted.
  void acquire(int32_t v);
  // Drops one hold on `v` (no-op for values never acquired).
  void release(int32_t v);
  bool in_use(int32_t v) const { return used_.count(v) != 0; }
  size_t live() const { return used_.size(); }

 private:
  static bool is_base(int32_t v) { return v >= kFirst && v <= kBaseLast && (v - kFirst) % kStep == 0; }
  static bool is_ext(int32_t v) { return v > kBaseLast && v <= kExtLast && v % kStep == 0; }

  int32_t cursor_ = kFirst;  // next base candidate; never reset (as the original)
  uint32_t base_used_ = 0;   // distinct base values in use
  int32_t ext_next_ = kBaseLast + kStep;
  std::vector<int32_t> ext_free_;  // released extended values, reused LIFO
  std::unordered_map<int32_t, uint32_t> used_;  // value -> number of holders
};

}  // namespace ckpt::coordinator::detail
