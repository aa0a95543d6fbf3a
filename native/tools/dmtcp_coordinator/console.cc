#include "tools/dmtcp_coordinator/console.h"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <map>

namespace ckpt::tools {

using coordinator::CoordCmd;

namespace {
void out(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += size_t(n);
  }
}
}  // namespace

std::string Console::help_text() {
  return "COMMANDS:\n"
         "  l: List connected nodes\n"
         "  s: Print status message\n"
         "  c: Checkpoint all nodes\n"
         "  ck: kc: \n"
         "     Checkpoint and then kill all nodes\n"
         "  i: Print current checkpoint interval\n"
         "     (To change checkpoint interval, use dmtcp_command)\n"
         "  k: Kill all nodes\n"
         "  q: Kill all nodes and quit\n"
         "  ?: Show this message\n"
         "\n";
}

std::string Console::status_block(const coordinator::Status& s, const CliOptions& o) {
  // Byte-for-byte the original's block, including its doubled
  // "Checkpoint Interval:" label: people and scripts read it.
  std::string interval = s.interval == 0 ? "disabled (checkpoint manually instead)" : std::to_string(s.interval);
  std::string b;
  b += "Status...\n";
  b += "Host: " + s.host + " (" + s.ip + ")\n";
  b += "Port: " + std::to_string(s.port) + "\n";
  b += "Checkpoint Interval: Checkpoint Interval: " + interval + "\n";
  b += std::string("Exit on last client: ") + (o.core.exit_on_last ? "1" : "0") + "\n";
  b += std::string("Kill after checkpoint: ") + (o.core.kill_after_ckpt ? "1" : "0") + "\n";
  b += "Computation Id: " + s.comp_id + "\n";
  b += "Checkpoint Dir: " + s.ckpt_dir + "\n";
  b += "NUM_PEERS=" + std::to_string(s.num_peers) + "\n";
  b += std::string("RUNNING=") + (s.running ? "yes" : "no") + "\n";
  b += "\n";
  return b;
}

bool Console::feed(std::string& buf) {
  // Every complete line is handled now, not one per wake-up (W-BUG-13).
  size_t nl;
  while (!quit_ && (nl = buf.find('\n')) != std::string::npos) {
    std::string line = buf.substr(0, nl);
    buf.erase(0, nl + 1);
    handle_line(line);
  }
  return !quit_;
}

void Console::handle_line(std::string line) {
  for (auto& ch : line) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  size_t start = line.find_first_not_of(" \t\r");
  if (start == std::string::npos) return;
  line = line.substr(start);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line == "u") {
    coordinator::Status s = coord_.status();
    std::map<std::string, int> hosts;
    for (const auto& w : s.workers) hosts[w.hostname]++;
    std::string t = "Host List:\nHOST => # connected clients \n";
    for (const auto& [h, n] : hosts) t += h + " => " + std::to_string(n) + "\n";
    out(2, t);
    return;
  }
  size_t dash = line.find_first_not_of('-');
  std::string cmd = dash == std::string::npos ? "" : line.substr(dash);
  if (cmd == "s" || cmd == "status") {
    out(1, status_block(coord_.status(), opts_));
  } else if (cmd == "l" || cmd == "t" || cmd == "list") {
    out(2, coord_.command_sync(CoordCmd::List).text);
  } else if (cmd == "c" || cmd == "checkpoint" || cmd == "bc" || cmd == "bcheckpoint") {
    coord_.command(CoordCmd::Checkpoint, -1, nullptr);
  } else if (cmd == "kc" || cmd == "ck" || cmd == "kcheckpoint") {
    coord_.command(CoordCmd::KillAfterCheckpoint, -1, nullptr);
  } else if (cmd == "i" || cmd == "interval") {
    // The original's help promises this but printed nothing (W-BUG-12).
    coordinator::Status s = coord_.status();
    out(1, "Checkpoint Interval: " +
               (s.interval == 0 ? std::string("disabled (checkpoint manually instead)") : std::to_string(s.interval)) +
               "\n");
  } else if (cmd == "k" || cmd == "kill") {
    coord_.command(CoordCmd::Kill, -1, nullptr);
  } else if (cmd == "q" || cmd == "quit") {
    quit_ = true;
    coord_.command(CoordCmd::Quit, -1, nullptr);
  } else if (cmd == "h" || cmd == "help" || cmd == "?") {
    out(2, help_text());
  } else {
    out(2, "unhandled user command: command=DMT_INVALID_COORDINATOR_COMMAND\n");
  }
}

}  // namespace ckpt::tools
