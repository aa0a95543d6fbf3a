#include "coordinator/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/errors.h"
#include "coordinator/coordinator.h"

namespace ckpt::coordinator {

namespace {
// Deep accept queue: the original's small backlog makes ~960 simultaneous
// connects take seconds (dropped SYNs are retried after 1 s and 3 s). The
// kernel caps the value at net.core.somaxconn.
constexpr int kBacklog = 4096;
}  // namespace

Listener open_listener(const std::string& bind_address, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (bind_address.empty()) {
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (inet_pton(AF_INET, bind_address.c_str(), &sa.sin_addr) != 1) {
    throw Error(Errc::InvalidArgument, "invalid bind address '" + bind_address + "' (expected an IPv4 address)");
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket", errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    close(fd);
    std::string where = (bind_address.empty() ? std::string("0.0.0.0") : bind_address) + ":" + std::to_string(port);
    if (e == EADDRINUSE)
      throw Error(Errc::AddrInUse, "port " + std::to_string(port) + " is already in use (" + where +
                                       "); choose another with --coord-port, or stop the process using it");
    throw_errno("bind " + where, e);
  }
  if (listen(fd, kBacklog) != 0) {
    int e = errno;
    close(fd);
    throw_errno("listen", e);
  }
  sockaddr_in got{};
  socklen_t len = sizeof got;
  getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len);
  return Listener{fd, ntohs(got.sin_port)};
}

Listener adopt_listener(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  int listening = 0;
  socklen_t ilen = sizeof listening;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0 || sa.sin_family != AF_INET ||
      getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) != 0 || !listening) {
    throw Error(Errc::InvalidArgument, "descriptor " + std::to_string(fd) + " is not a listening IPv4 TCP socket");
  }
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  // The creator (dmtcp_launch) used a backlog of 128; raise it, as listen()
  // on a listening socket only updates the queue length.
  listen(fd, kBacklog);
  return Listener{fd, ntohs(sa.sin_port)};
}

namespace detail {

Cidr parse_cidr(const std::string& text) {
  std::string addr = text;
  int bits = 32;
  size_t slash = text.find('/');
  if (slash != std::string::npos) {
    addr = text.substr(0, slash);
    std::string b = text.substr(slash + 1);
    char* end = nullptr;
    long v = std::strtol(b.c_str(), &end, 10);
    if (b.empty() || *end != '\0' || v < 0 || v > 32)
      throw Error(Errc::InvalidArgument, "invalid prefix length in '" + text + "' (expected 0-32)");
    bits = int(v);
  }
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1)
    throw Error(Errc::InvalidArgument, "invalid address in '" + text + "' (expected IPv4 CIDR such as 10.0.0.0/8)");
  Cidr c;
  c.mask = bits == 0 ? 0 : ~uint32_t(0) << (32 - bits);
  c.net = ntohl(a.s_addr) & c.mask;
  return c;
}

std::vector<Cidr> parse_cidrs(const std::vector<std::string>& texts) {
  std::vector<Cidr> out;
  for (const auto& t : texts) out.push_back(parse_cidr(t));
  return out;
}

std::string ip_text(uint32_t addr) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{};
  a.s_addr = htonl(addr);
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

uint32_t host_address(const std::string& name) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  if (getaddrinfo(name.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return 0x7f000001;
  std::string want = name;
  // Prefer the canonical name when it extends ours (short name -> FQDN).
  if (res->ai_canonname && std::strncmp(res->ai_canonname, name.c_str(), name.size()) == 0)
    want = res->ai_canonname;
  uint32_t first = 0, match = 0;
  for (addrinfo* p = res; p; p = p->ai_next) {
    auto* sa = reinterpret_cast<sockaddr_in*>(p->ai_addr);
    uint32_t a = ntohl(sa->sin_addr.s_addr);
    if (!first) first = a;
    char host[NI_MAXHOST];
    if (!match && getnameinfo(p->ai_addr, p->ai_addrlen, host, sizeof host, nullptr, 0, NI_NAMEREQD) == 0 &&
        (want == host || name == host))
      match = a;
  }
  freeaddrinfo(res);
  if (match) return match;
  return first ? first : 0x7f000001;
}

void raise_fd_limit() noexcept {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace detail
}  // namespace ckpt::coordinator
