#include <doctest/doctest.h>

#include <set>

#include "coordinator/vpid.h"

using ckpt::coordinator::detail::VpidAllocator;

TEST_CASE("vpids follow the original sequence, then go beyond 961 without spinning") {
  VpidAllocator a;
  std::set<int32_t> seen;
  for (int i = 0; i < 10000; i++) {
    auto v = a.allocate();
    REQUIRE(v);
    if (i == 0) CHECK(*v == 40000);
    if (i == 1) CHECK(*v == 41000);
    if (i == 960) CHECK(*v == 1000000);
    if (i == 961) CHECK(*v == 1001000);
    CHECK(*v % 1000 == 0);
    CHECK(seen.insert(*v).second);
    a.acquire(*v);
  }
  CHECK(a.live() == 10000);
}

TEST_CASE("the cursor is never reset and skips values in use") {
  VpidAllocator a;
  auto v1 = a.allocate();  // 40000, burned (never acquired)
  CHECK(*v1 == 40000);
  a.acquire(42000);  // e.g. a restarted worker
  CHECK(*a.allocate() == 41000);
  CHECK(*a.allocate() == 43000);
}

TEST_CASE("freed extended values are reused, base values come back after the wrap") {
  VpidAllocator a;
  for (int i = 0; i < 961; i++) a.acquire(*a.allocate());
  int32_t e1 = *a.allocate();
  a.acquire(e1);
  CHECK(e1 == 1001000);
  a.release(e1);
  CHECK(*a.allocate() == 1001000);
  a.release(45000);
  CHECK(*a.allocate() == 45000);
}
