#include <doctest/doctest.h>

#include "coordinator/computation.h"

using namespace ckpt::coordinator::detail;

TEST_CASE("state counts give minimum state and unanimity without scanning") {
  WorkerSet s;
  CHECK(s.unanimous());
  CHECK(s.min_state() == 0);
  Worker a, b, c;
  a.state = 1;
  b.state = 1;
  c.state = 99;  // garbage from a peer
  s.add(&a);
  s.add(&b);
  CHECK(s.unanimous());
  CHECK(s.min_state() == 1);
  s.set_state(&a, 2);
  CHECK_FALSE(s.unanimous());
  CHECK(s.min_state() == 1);
  s.add(&c);
  CHECK(s.size() == 3);
  s.remove(&b);
  CHECK(s.min_state() == 2);
  CHECK(s.head() == &a);
  CHECK(a.next == &c);
  s.remove(&a);
  s.remove(&c);
  CHECK(s.size() == 0);
  CHECK(s.head() == nullptr);
}
