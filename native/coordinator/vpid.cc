#include "coordinator/vpid.h"

#include <cassert>

namespace ckpt::coordinator::detail {

std::optional<int32_t> VpidAllocator::allocate() {
  if (base_used_ < kBaseSlots) {
    // At least one base slot is free, so this finds one within kBaseSlots
    // steps. Like the original, the cursor moves past every value it returns,
    // so a value given to a rejected hello is not reused until the wrap.
    for (uint32_t i = 0; i < kBaseSlots; i++) {
      int32_t v = cursor_;
      cursor_ = cursor_ >= kBaseLast ? kFirst : cursor_ + kStep;
      if (!in_use(v)) return v;
    }
    assert(false && "base_used_ out of sync with used_");
  }
  while (!ext_free_.empty()) {
    int32_t v = ext_free_.back();
    ext_free_.pop_back();
    if (!in_use(v)) return v;  // a restarted worker may have taken it meanwhile
  }
  // Skips values held by restarted workers; bounded by the number of holders.
  while (ext_next_ <= kExtLast) {
    int32_t v = ext_next_;
    ext_next_ += kStep;
    if (!in_use(v)) return v;
  }
  return std::nullopt;
}

void VpidAllocator::acquire(int32_t v) {
  if (used_[v]++ == 0 && is_base(v)) base_used_++;
}

void VpidAllocator::release(int32_t v) {
  auto it = used_.find(v);
  if (it == used_.end()) return;
  if (--it->second > 0) return;
  used_.erase(it);
  if (is_base(v)) {
    assert(base_used_ > 0);
    base_used_--;
  } else if (is_ext(v) && v < ext_next_) {
    ext_free_.push_back(v);
  }
}

}  // namespace ckpt::coordinator::detail
