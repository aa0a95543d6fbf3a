// The interactive console of dmtcp_coordinator (spec §6.4): commands typed on
// stdin, with the original's output (status block on stdout, list and help on
// stderr). Runs on the main thread; it reaches the coordinator only through
// its thread-safe API.
#pragma once

#include <string>

#include "coordinator/coordinator.h"
#include "tools/dmtcp_coordinator/cli.h"

namespace ckpt::tools {

class Console {
 public:
  Console(coordinator::Coordinator& c, const CliOptions& o) : coord_(c), opts_(o) {}
  // Handles complete lines in `buf` and keeps a trailing partial line.
  // Returns false once a quit was requested.
  bool feed(std::string& buf);
  void handle_line(std::string line);

  static std::string help_text();
  static std::string status_block(const coordinator::Status& s, const CliOptions& o);

 private:
  coordinator::Coordinator& coord_;
  const CliOptions& opts_;
  bool quit_ = false;
};

}  // namespace ckpt::tools
