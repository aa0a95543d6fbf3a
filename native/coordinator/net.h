// Sockets and addresses: the listener, allow-lists and the host address the
// coordinator tells local workers is theirs (spec §1.1, §3.2 ipAddr).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ckpt::coordinator::detail {

// An IPv4 network in CIDR form; addresses are host-order numbers.
struct Cidr {
  uint32_t net = 0;
  uint32_t mask = 0;
  bool contains(uint32_t addr) const noexcept { return (addr & mask) == net; }
};
// "10.1.0.0/16", "127.0.0.1" (= /32). Throws ckpt::Error(InvalidArgument).
Cidr parse_cidr(const std::string& text);
std::vector<Cidr> parse_cidrs(const std::vector<std::string>& texts);

std::string ip_text(uint32_t addr);

// gethostname() (the short name DMTCP prints).
std::string host_name();
// The address announced to workers that connect over loopback: the first
// address of the host name whose reverse lookup gives the name back, else the
// first address, else 127.0.0.1. Done once at start-up (it may block on DNS,
// so never on the loop thread).
uint32_t host_address(const std::string& name);

// Raises RLIMIT_NOFILE's soft limit to the hard limit (10,000 workers need
// more than the usual 1024 descriptors).
void raise_fd_limit() noexcept;

}  // namespace ckpt::coordinator::detail
