// libFuzzer target: arbitrary bytes, fed to the framer in chunks whose sizes
// come from the input itself, and every complete message run through every
// payload parser and re-encoded. Properties checked: no crash/UB, valid
// headers re-encode to the same bytes, and the framer never returns a message
// larger than the limits allow.
#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "protocol/message.h"

using namespace ckpt::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks a chunk size so split headers/payloads are covered.
  size_t chunk = size_t(data[0] % 64) + 1;
  data++;
  size--;
  Framer f;
  Message m;
  size_t fed = 0;
  while (fed < size) {
    size_t n = size - fed < chunk ? size - fed : chunk;
    f.feed(data + fed, n);
    fed += n;
    for (;;) {
      Framer::Status st = f.next(m);
      if (st != Framer::Status::Ready) break;
      if (validate(m.header) != Validity::Ok || m.payload.size() != m.header.extraBytes) std::abort();
      uint8_t again[kHeaderSize];
      encode_header(m.header, again);
      Header back = decode_header(again);
      uint8_t twice[kHeaderSize];
      encode_header(back, twice);
      if (std::memcmp(again, twice, kHeaderSize) != 0) std::abort();
      (void)m.header.name_view();
      (void)parse_hello_payload(m.payload);
      (void)parse_ckpt_filename_payload(m.payload);
      (void)parse_cstring_payload(m.payload);
      (void)parse_kvdb_payload(m.header, m.payload);
      (void)m.header.from.text();
      (void)msg_type_name(m.header.type);
      (void)worker_state_name(m.header.state);
    }
  }
  return 0;
}
