// libFuzzer target for the coordinator's state machine: the input is a
// script of operations on up to four loopback connections (structured
// protocol messages built with the codec, raw bytes, closes, half-closes)
// interleaved with user commands from the API. After each input every
// connection is closed and the coordinator must still answer a status
// request. Sanitizers catch memory errors; assertions in the core catch
// broken bookkeeping (state counts, arrival counters, owed filenames).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "coordinator/coordinator.h"
#include "protocol/message.h"

using namespace ckpt;
using namespace ckpt::protocol;

namespace {

coordinator::Coordinator* g_coord = nullptr;  // reachable for the process lifetime
std::string g_dir;

void ensure_coordinator() {
  if (g_coord && g_coord->running()) return;
  if (g_coord) {
    g_coord->stop();
    delete g_coord;
  }
  if (g_dir.empty()) {
    char tmpl[] = "/tmp/ckpt-core-fuzz-XXXXXX";
    if (!mkdtemp(tmpl)) std::abort();
    g_dir = tmpl;
    // Stop the loop before static destruction, then remove the scripts and
    // KV dumps the inputs produced.
    atexit([] {
      if (g_coord) g_coord->stop();
      std::string cmd = "rm -rf '" + g_dir + "'";
      if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", g_dir.c_str());
    });
  }
  coordinator::Options o;
  o.port = 0;
  o.bind_address = "127.0.0.1";
  o.quiet = 2;
  o.log = [](coordinator::LogLevel, const std::string&) {};
  o.ckpt_dir = g_dir;
  o.kv_data_dir = g_dir;
  o.tmp_dir = g_dir;
  o.stale_timeout = UINT32_MAX;
  o.handshake_timeout_ms = 500;
  o.max_queued_bytes = 1 << 20;
  o.max_kvdb_bytes = 1 << 20;
  g_coord = new coordinator::Coordinator(o);
  g_coord->start();
}

struct Input {
  const uint8_t* p;
  size_t n;
  uint8_t byte() {
    if (!n) return 0;
    n--;
    return *p++;
  }
  uint32_t u32() { return uint32_t(byte()) | uint32_t(byte()) << 8; }
};

int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void drain(int fd) {
  char buf[65536];
  while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

const char* const kNames[] = {"DMT:SUSPEND", "DMT:CHECKPOINT", "DMT:WriteCkpt", "DMT:Restart", "x", ""};

std::string build_message(Input& in, int conn) {
  Header h = default_header(UniquePid{0x98ff, uint64_t(1000 + conn), 40000 + conn * 1000, 0}, MsgType(in.byte() % 26));
  h.state = in.byte() % 8;
  h.set_name(kNames[in.byte() % 6]);
  uint8_t flags = in.byte();
  if (flags & 1) h.virtualPid = int32_t(in.u32());
  if (flags & 2) h.compGroup = UniquePid{0x98ff, uint64_t(in.byte()), int32_t(in.byte()) * 1000, uint32_t(in.byte() % 3)};
  if (flags & 4) h.numPeers = in.byte() % 4;
  if (flags & 8) h.coordCmd = in.byte() % 11;
  if (flags & 16) h.theCheckpointInterval = int32_t(in.byte()) - 1;
  h.kvdb = int32_t(in.byte() % 9);
  std::string payload;
  switch (in.byte() % 6) {
    case 0: break;
    case 1: payload = make_hello_payload("h", "prog"); break;
    case 2: payload = make_ckpt_filename_payload("/ck/img.dmtcp", (flags & 32) ? "ssh" : "", "h"); break;
    case 3: payload = make_cstring_payload(kNames[in.byte() % 6]); break;
    case 4: payload = make_kvdb_payload(h, "k", std::to_string(in.byte())); break;
    default: {
      size_t len = in.byte();
      for (size_t i = 0; i < len; i++) payload.push_back(char(in.byte()));
    }
  }
  std::string bytes = encode_message(h, payload);
  if (flags & 64) bytes[88] = char(in.byte());  // break msgSize now and then
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ensure_coordinator();
  uint16_t port = g_coord->port();
  int fds[4] = {-1, -1, -1, -1};
  Input in{data, size};
  int ops = 0;
  while (in.n > 0 && ops++ < 64) {
    uint8_t op = in.byte();
    int k = op & 3;
    if (fds[k] < 0) fds[k] = connect_to(port);
    if (fds[k] < 0) break;
    switch ((op >> 2) % 7) {
      case 0:
      case 1: {
        std::string m = build_message(in, k);
        send(fds[k], m.data(), m.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        break;
      }
      case 2: {
        size_t len = in.byte();
        std::string raw;
        for (size_t i = 0; i < len; i++) raw.push_back(char(in.byte()));
        send(fds[k], raw.data(), raw.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        break;
      }
      case 3:
        close(fds[k]);
        fds[k] = -1;
        break;
      case 4: {
        uint8_t c = in.byte() % 11;
        if (c == uint8_t(CoordCmd::Quit)) c = uint8_t(CoordCmd::Status);  // keep serving
        g_coord->command(CoordCmd(c), int32_t(in.byte()) - 1, nullptr);
        break;
      }
      case 5:
        shutdown(fds[k], SHUT_WR);
        break;
      default:
        usleep(200);  // let the loop catch up so replies interleave differently
        drain(fds[k]);
        break;
    }
  }
  for (int& fd : fds) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  // The coordinator must still serve (a fuzzed USER_CMD may have quit it:
  // that is legitimate, and a new one is started for the next input).
  coordinator::CommandReply r = g_coord->command_sync(CoordCmd::Status);
  if (g_coord->running() && r.status != CmdStatus::Success) std::abort();
  return 0;
}
