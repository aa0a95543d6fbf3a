// dmtcp_command: sends one user command to a DMTCP 5.0 coordinator (ours or
// the original) and prints the result exactly as DMTCP's own client does
// (spec §7: command spellings, text output, `--json` schema 1, exit codes).
//
// Differences from the original client, all on paths where it would crash or
// hang (docs/compat.md, "dmtcp_command"):
//   * a closed connection, a reset or an invalid/unexpected reply gives a
//     one-line explanation on stderr and exit code 99 (the original's ASSERT
//     exit code, kept so scripts see the same number);
//   * an invalid port or interval value gives a message and exit 99 at the
//     same point where the original ASSERTs;
//   * `--timeout SECONDS` (ours) bounds the connect and the wait for the
//     reply; without it we wait forever, like the original (a blocking
//     checkpoint legitimately takes as long as the checkpoint);
//   * writes never raise SIGPIPE.
//
// Messages are encoded and decoded only through native/protocol.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "protocol/message.h"

namespace {

namespace proto = ckpt::protocol;
using proto::CmdStatus;
using proto::CoordCmd;

// Exit codes (spec §7.2/§7.3; 124 is ours, for --timeout).
constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;        // text-mode usage, --help, --version
constexpr int kExitCommandFailed = 2;  // the coordinator refused, or was not found
constexpr int kExitProtocol = 99;    // the original's ASSERT code
constexpr int kExitTimeout = 124;    // --timeout expired (same number as timeout(1))

constexpr int kDefaultPort = 7779;
// What the original connects to when no host is given. (It *displays*
// "localhost" in its output, but connects to this address.)
constexpr const char* kDefaultConnectHost = "127.0.0.1";
// Connect retries of every DMTCP client: 10 attempts, 100 ms apart, while the
// coordinator refuses (it may still be starting up).
constexpr int kConnectAttempts = 10;
constexpr long kConnectRetryNs = 100L * 1000 * 1000;

const char kUsage[] =
    "Usage: dmtcp_command [OPTIONS] COMMAND [COMMAND...]\n"
    "Send one command to a running dmtcp_coordinator.\n"
    "\n"
    "Options:\n"
    "  -h, --coord-host HOST   coordinator host (env DMTCP_COORD_HOST; default localhost)\n"
    "  -p, --coord-port PORT   coordinator port (env DMTCP_COORD_PORT; default 7779)\n"
    "  --json                  print one line of JSON (schema_version 1) instead of text\n"
    "  --timeout SECONDS       give up waiting for the coordinator after SECONDS\n"
    "                          (exit code 124; by default wait as long as it takes)\n"
    "  --help                  print this text\n"
    "  --version               print the version\n"
    "\n"
    "Commands (leading dashes are optional; only the last command is sent):\n"
    "  s,  status              print the coordinator's status\n"
    "  l,  list                list the connected processes\n"
    "  c,  checkpoint          checkpoint every process\n"
    "  bc, bcheckpoint         checkpoint and wait until the checkpoint is complete\n"
    "  kc, kcheckpoint         checkpoint, then kill every process\n"
    "  i,  interval N          set the checkpoint interval to N seconds (0 = never)\n"
    "  k,  kill                kill every process\n"
    "  q,  quit                kill every process and stop the coordinator\n"
    "\n"
    "Examples:\n"
    "  dmtcp_command -p 7779 --status\n"
    "  dmtcp_command --json -bc              blocking checkpoint, JSON result\n"
    "  dmtcp_command -i 3600                 checkpoint every hour\n"
    "  dmtcp_command --timeout 5 -s          fail after 5 s if nothing answers\n"
    "\n"
    "Exit codes: 0 success; 1 usage, --help or --version; 2 the command was\n"
    "refused or no coordinator was found; 99 protocol failure (connection closed\n"
    "or invalid reply); 124 --timeout expired.\n"
    "This dmtcp_command is part of ckpt and speaks DMTCP 5.0's protocol.\n";

// First line matches DMTCP 5.0 because scripts parse it to learn the protocol
// version they are talking to.
const char kVersion[] =
    "dmtcp_command (DMTCP) 5.0\n"
    "ckpt " CKPT_VERSION ": a compatible implementation, MIT License.\n"
    "There is NO WARRANTY, to the extent permitted by law.\n";

// ----- environment (the original communicates options through it) ------------

const char* env(const char* name) { return std::getenv(name); }

const char* coord_port_env() {
  const char* p = env("DMTCP_COORD_PORT");
  return p != nullptr ? p : env("DMTCP_PORT");  // DMTCP_PORT is the deprecated name
}

// Host as displayed in the output ("localhost" when unset).
std::string display_host() {
  const char* h = env("DMTCP_COORD_HOST");
  if (h == nullptr) h = env("DMTCP_HOST");
  return h != nullptr ? h : "localhost";
}

// Port as displayed in JSON: atoi() of the variable, like the original, so a
// non-numeric value shows as 0 rather than failing.
int display_port() {
  const char* p = coord_port_env();
  return p != nullptr ? std::atoi(p) : kDefaultPort;
}

// The original's strict integer conversion (strtol base 0: decimal, 0x hex,
// leading-0 octal; the whole string must be consumed), narrowed to int the
// same way.
std::optional<int> strict_int(const char* s) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s, &end, 0);
  if (end == s || *end != '\0') return std::nullopt;
  return static_cast<int>(v);
}

// ----- JSON output (spec §7.3: compact, fixed field order) --------------------

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    auto ch = static_cast<unsigned char>(c);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (ch < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", ch);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// Status names as the original prints them: unknown values print as
// DMT_COORD_INVALID_COMMAND (its fallback), never as a new string.
const char* status_name(int32_t st) {
  switch (st) {
    case 0: case -1: case -2: case -3: return proto::cmd_status_name(st);
    default: return "DMT_COORD_INVALID_COMMAND";
  }
}

struct Result {
  CoordCmd cmd = CoordCmd::Help;
  int32_t status = 0;
  uint32_t numPeers = 0;
  uint32_t isRunning = 0;
  int32_t interval = 0;
  std::string payload;  // LIST text, up to its first NUL
};

std::string result_json(const Result& r) {
  std::string j = "{\"schema_version\":1,\"command\":";
  json_string(j, proto::coord_cmd_name(static_cast<uint32_t>(r.cmd)));
  j += ",\"command_status\":";
  json_string(j, status_name(r.status));
  j += ",\"coordinator_host\":";
  json_string(j, display_host());
  j += ",\"coordinator_port\":" + std::to_string(display_port());
  if (r.status == 0) {
    switch (r.cmd) {
      case CoordCmd::Status:
        j += ",\"num_peers\":" + std::to_string(r.numPeers);
        j += std::string(",\"running\":") + (r.isRunning != 0 ? "true" : "false");
        j += ",\"checkpoint_interval\":" + std::to_string(r.interval);
        break;
      case CoordCmd::List:
        j += ",\"workers\":";
        json_string(j, r.payload);
        break;
      case CoordCmd::Checkpoint:
      case CoordCmd::BlockingCheckpoint:
      case CoordCmd::KillAfterCheckpoint:
        j += ",\"num_peers\":" + std::to_string(r.numPeers);
        break;
      case CoordCmd::UpdateInterval:
        j += ",\"checkpoint_interval\":" + std::to_string(r.interval);
        break;
      default:
        break;
    }
  }
  return j + "}";
}

void print_line(const std::string& s) {
  std::fputs(s.c_str(), stdout);
  std::fputc('\n', stdout);
}

int print_usage_or_json_error(bool json) {
  if (json) {
    Result r;
    r.cmd = CoordCmd::Invalid;
    r.status = static_cast<int32_t>(CmdStatus::InvalidCommand);
    print_line(result_json(r));
    return kExitCommandFailed;
  }
  std::fputs(kUsage, stderr);
  return kExitUsage;
}

int print_json_help() {
  Result r;
  r.cmd = CoordCmd::Help;
  print_line(result_json(r));
  return kExitOk;
}

// ----- command words -----------------------------------------------------------

// Command words after the leading dashes were removed (spec §7.1).
CoordCmd parse_command_word(const std::string& w) {
  if (w == "s" || w == "status") return CoordCmd::Status;
  if (w == "l" || w == "t" || w == "list") return CoordCmd::List;
  if (w == "c" || w == "checkpoint") return CoordCmd::Checkpoint;
  if (w == "bc" || w == "bcheckpoint") return CoordCmd::BlockingCheckpoint;
  if (w == "kc" || w == "ck" || w == "K" || w == "Kc" || w == "kcheckpoint") return CoordCmd::KillAfterCheckpoint;
  if (w == "i" || w == "interval") return CoordCmd::UpdateInterval;
  if (w == "k" || w == "kill") return CoordCmd::Kill;
  if (w == "q" || w == "quit") return CoordCmd::Quit;
  if (w == "h" || w == "help" || w == "?") return CoordCmd::Help;
  return CoordCmd::Invalid;
}

// ----- time --------------------------------------------------------------------

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Milliseconds left before `deadline` for poll(); -1 (forever) without one.
int poll_timeout_ms(std::optional<double> deadline) {
  if (!deadline) return -1;
  double left = *deadline - now_s();
  if (left <= 0) return 0;
  return static_cast<int>(std::ceil(std::min(left, 3600.0) * 1000.0));
}

// ----- errors ------------------------------------------------------------------

// The session-level failures that the original reports with an ASSERT.
struct Failure {
  int exit_code;
  std::string message;
};

[[noreturn]] void fail(const Failure& f) {
  std::fflush(stdout);
  std::fprintf(stderr, "dmtcp_command: %s\n", f.message.c_str());
  std::exit(f.exit_code);
}

std::string endpoint_text(const std::string& host, int port) { return host + ":" + std::to_string(port); }

// ----- connecting ----------------------------------------------------------------

// Waits until a non-blocking connect finished; returns 0 or an errno value.
int finish_connect(int fd, std::optional<double> deadline) {
  pollfd p{fd, POLLOUT, 0};
  for (;;) {
    int n = poll(&p, 1, poll_timeout_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return ETIMEDOUT;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
    return err;
  }
}

// Connects like every DMTCP client (spec §1.1): IPv4 addresses of `host`, in
// order; each one tried up to 10 times, 100 ms apart, while the connection is
// refused or times out. Returns -1 when nothing answered (the caller reports
// DMT_COORD_NOT_FOUND). A --timeout deadline that expires ends the program.
int connect_to_coordinator(const std::string& host, int port, bool quiet, std::optional<double> deadline) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  int e = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (e == EAI_NONAME) {
    // AI_ADDRCONFIG hides /etc/hosts entries on hosts without a configured
    // non-loopback address; retry without it, as the original does.
    hints.ai_flags = 0;
    e = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  }
  if (e != 0) {
    if (!quiet) std::fprintf(stderr, "dmtcp_command: cannot resolve host '%s': %s\n", host.c_str(), gai_strerror(e));
    return -1;
  }
  int result = -1;
  bool timed_out = false;
  bool give_up = false;
  for (addrinfo* ai = res; ai != nullptr && result < 0 && !timed_out && !give_up; ai = ai->ai_next) {
    sockaddr_in addr{};
    std::memcpy(&addr, ai->ai_addr, sizeof addr);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    for (int attempt = 0; attempt < kConnectAttempts; attempt++) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) fail({kExitProtocol, std::string("socket(): ") + std::strerror(errno)});
      int err = 0;
      if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        err = errno == EINPROGRESS ? finish_connect(fd, deadline) : errno;
      }
      if (err == 0) {
        result = fd;
        break;
      }
      close(fd);
      if (deadline && now_s() >= *deadline) {
        // Out of time. A refusal means nobody listens there: report "not
        // found" as without --timeout; silence means a host that does not
        // answer at all: that is the timeout.
        if (err == ECONNREFUSED) {
          give_up = true;
        } else {
          timed_out = true;
        }
        break;
      }
      if (err != ECONNREFUSED && err != ETIMEDOUT) break;  // next address
      timespec ts{0, kConnectRetryNs};
      nanosleep(&ts, nullptr);
    }
  }
  freeaddrinfo(res);
  if (timed_out) {
    fail({kExitTimeout, "no coordinator answered at " + endpoint_text(host, port) + " within the --timeout"});
  }
  if (result >= 0) {
    // Back to blocking mode: we only ever wait for this one socket, and
    // poll() bounds the waits when --timeout is given.
    int fl = fcntl(result, F_GETFL);
    if (fl >= 0) fcntl(result, F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    setsockopt(result, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return result;
}

// Identity the client puts in `from` (spec errata 5): DMTCP's host hash, our
// pid and a monotonic timestamp, generation 0.
proto::UniquePid own_identity() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  proto::UniquePid id;
  id.hostid = proto::hostid_hash(name);
  id.time = static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
  id.pid = static_cast<int32_t>(getpid());
  id.generation = 0;
  return id;
}

void send_all(int fd, const std::string& bytes, const std::string& where) {
  size_t off = 0;
  while (off < bytes.size()) {
    // MSG_NOSIGNAL: a coordinator that closed on us must give an error
    // message, not kill us with SIGPIPE.
    ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail({kExitProtocol, "could not send the command to the coordinator at " + where + ": " + std::strerror(errno)});
    }
    off += static_cast<size_t>(n);
  }
}

proto::Message receive_reply(int fd, const std::string& where, std::optional<double> deadline) {
  proto::Framer framer;
  proto::Message msg;
  char buf[65536];
  for (;;) {
    switch (framer.next(msg)) {
      case proto::Framer::Status::Ready:
        return msg;
      case proto::Framer::Status::Invalid:
        fail({kExitProtocol, "invalid reply from " + where + " (" + proto::validity_text(framer.error()) +
                                 "); is that a DMTCP coordinator?"});
      case proto::Framer::Status::NeedMore:
        break;
    }
    pollfd p{fd, POLLIN, 0};
    int n = poll(&p, 1, poll_timeout_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail({kExitProtocol, std::string("poll(): ") + std::strerror(errno)});
    if (n == 0) fail({kExitTimeout, "no reply from the coordinator at " + where + " within the --timeout"});
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno != ECONNRESET) fail({kExitProtocol, "reading the reply from " + where + ": " + std::strerror(errno)});
    if (r <= 0) {
      fail({kExitProtocol, "the coordinator at " + where + " closed the connection " +
                               (framer.mid_message() ? "in the middle of its reply" : "without replying")});
    }
    framer.feed(buf, static_cast<size_t>(r));
  }
}

struct Options {
  CoordCmd cmd = CoordCmd::Help;
  std::string interval;
  bool json = false;
  std::optional<double> timeout;
};

// Sends the command and fills `r`. Mirrors the original's order of events:
// resolve the port (strictly), connect, then convert the interval.
void run_command(const Options& o, Result& r) {
  r.cmd = o.cmd;
  std::string host = display_host();
  if (env("DMTCP_COORD_HOST") == nullptr && env("DMTCP_HOST") == nullptr) host = kDefaultConnectHost;
  int port = kDefaultPort;
  if (const char* p = coord_port_env()) {
    auto v = strict_int(p);
    if (!v) fail({kExitProtocol, std::string("invalid coordinator port '") + p + "': expected a number"});
    port = *v;
  }
  std::optional<double> deadline;
  if (o.timeout) deadline = now_s() + *o.timeout;

  int fd = connect_to_coordinator(host, port, o.json, deadline);
  if (fd < 0) {
    r.status = static_cast<int32_t>(CmdStatus::NotFound);
    return;
  }
  const std::string where = endpoint_text(host, port);

  proto::Header req = proto::default_header(own_identity(), proto::MsgType::UserCmd);
  req.coordCmd = static_cast<uint32_t>(o.cmd);
  if (o.cmd == CoordCmd::UpdateInterval) {
    auto v = strict_int(o.interval.c_str());
    if (!v) {
      close(fd);
      fail({kExitProtocol, "invalid interval '" + o.interval + "': expected a number of seconds"});
    }
    req.theCheckpointInterval = *v;
  }
  send_all(fd, proto::encode_message(req), where);

  // The coordinator exits on QUIT without replying; the original does not
  // wait either, and reports success.
  if (o.cmd == CoordCmd::Quit) {
    close(fd);
    r.status = 0;
    return;
  }

  proto::Message reply = receive_reply(fd, where, deadline);
  close(fd);
  if (reply.header.msg_type() != proto::MsgType::UserCmdResult) {
    fail({kExitProtocol, std::string("unexpected reply ") + proto::msg_type_name(reply.header.type) + " from " + where +
                             " (expected DMT_USER_CMD_RESULT)"});
  }
  r.status = reply.header.coordCmdStatus;
  r.numPeers = reply.header.numPeers;
  r.isRunning = reply.header.isRunning;
  r.interval = reply.header.theCheckpointInterval;
  // The list is C text; the original coordinator sends it without a NUL and
  // ours with one. Either way, print up to the first NUL.
  r.payload = reply.payload.substr(0, reply.payload.find('\0'));
}

// Parses argv the way the original does (spec §7.1), including its quirks:
// the last command wins, a bare -h/--help is help, -h with a value is a host.
// Returns the exit code when the program should stop without sending.
std::optional<int> parse_args(int argc, char** argv, Options& o) {
  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  auto left = [&] { return args.size() - i; };
  while (i < args.size()) {
    const std::string& s = args[i];
    if ((s == "--help" || s == "-h") && left() == 1) {
      if (o.json) return print_json_help();
      std::fputs(kUsage, stdout);
      return kExitUsage;  // sic: the original exits 1 after --help
    } else if (s == "--version" && left() == 1) {
      if (o.json) {
        std::string j = "{\"schema_version\":1,\"command\":\"DMT_VERSION\",\"command_status\":\"DMT_COORD_SUCCESS\",\"version\":";
        json_string(j, kVersion);
        print_line(j + "}");
        return kExitOk;
      }
      std::fputs(kVersion, stdout);
      return kExitUsage;
    } else if (s == "--json") {
      o.json = true;
      i++;
    } else if (left() > 1 && (s == "-h" || s == "--coord-host" || s == "--host")) {
      setenv("DMTCP_COORD_HOST", args[i + 1].c_str(), 1);
      i += 2;
    } else if (left() > 1 && (s == "-p" || s == "--coord-port" || s == "--port")) {
      setenv("DMTCP_COORD_PORT", args[i + 1].c_str(), 1);
      i += 2;
    } else if (s.size() > 2 && s[0] == '-' && s[1] == 'p' && std::isdigit(static_cast<unsigned char>(s[2]))) {
      setenv("DMTCP_COORD_PORT", s.c_str() + 2, 1);  // -p7779
      i++;
    } else if (left() > 1 && s == "--timeout") {
      // Ours. The original would treat "--timeout" as an unknown command
      // (usage error), so no valid original command line changes meaning.
      char* end = nullptr;
      double v = std::strtod(args[i + 1].c_str(), &end);
      if (end == args[i + 1].c_str() || *end != '\0' || !std::isfinite(v) || v <= 0 || v > 1e9) {
        if (o.json) return print_usage_or_json_error(true);
        std::fprintf(stderr, "dmtcp_command: --timeout needs a positive number of seconds, got '%s'\n",
                     args[i + 1].c_str());
        return kExitUsage;
      }
      o.timeout = v;
      i += 2;
    } else if (s == "h" || s == "-h" || s == "--help" || s == "?") {
      if (o.json) return print_json_help();
      std::fputs(kUsage, stderr);
      return kExitUsage;
    } else {
      // A command word: any number of leading dashes is ignored.
      size_t d = s.find_first_not_of('-');
      std::string word = d == std::string::npos ? std::string() : s.substr(d);
      CoordCmd c = parse_command_word(word);
      // "i5" (or "-i5") is the interval command with its value attached.
      if (!word.empty() && word[0] == 'i' &&
          (word.size() == 1 || std::isdigit(static_cast<unsigned char>(word[1])))) {
        c = CoordCmd::UpdateInterval;
      }
      if (c == CoordCmd::Invalid) return print_usage_or_json_error(o.json);
      o.cmd = c;
      if (c == CoordCmd::UpdateInterval) {
        if (word.size() > 1 && std::isdigit(static_cast<unsigned char>(word[1]))) {
          o.interval = word.substr(1);
        } else {
          if (left() == 1) return print_usage_or_json_error(o.json);
          o.interval = args[i + 1];
          i++;
        }
      }
      i++;
    }
  }
  return std::nullopt;
}

int print_result(const Options& o, const Result& r) {
  if (o.cmd == CoordCmd::UpdateInterval && !o.json) {
    // Printed before the result is checked, echoing the argument text: this
    // is what the original prints, even when no coordinator was found.
    std::printf("Interval changed to %s\n", o.interval.c_str());
  }
  if (r.status != 0) {
    if (o.json) {
      print_line(result_json(r));
      return kExitCommandFailed;
    }
    switch (r.status) {
      case static_cast<int32_t>(CmdStatus::NotFound):
        if (coord_port_env() != nullptr) {
          std::fputs("Coordinator not found. Please check port and host.\n", stderr);
        } else {
          std::fputs("Coordinator not found. Try specifying port with '--port'.\n", stderr);
        }
        break;
      case static_cast<int32_t>(CmdStatus::InvalidCommand):
        std::fputs("Unknown command, try 'dmtcp_command --help'\n", stderr);
        break;
      case static_cast<int32_t>(CmdStatus::NotRunning):
        if (o.cmd == CoordCmd::KillAfterCheckpoint) {
          // Misleading, but it is what the original prints (W-BUG-18).
          std::fputs("Computation was checkpointed and killed.\n", stdout);
        } else {
          std::fputs(
              "Error, computation not in running state.  Either a checkpoint is\n"
              " currently happening or there are no connected processes.\n",
              stderr);
        }
        break;
      default:
        std::fputs("Unknown error\n", stderr);
        break;
    }
    return kExitCommandFailed;
  }
  if (o.json) {
    print_line(result_json(r));
  } else if (o.cmd == CoordCmd::Status || o.cmd == CoordCmd::List) {
    std::printf("Coordinator:\n");
    std::printf("  Host: %s\n", display_host().c_str());
    const char* port = coord_port_env();
    std::printf("  Port: %s\n", port != nullptr ? port : "7779 (default port)");
    if (o.cmd == CoordCmd::Status) {
      std::printf("Status...\n");
      std::printf("  NUM_PEERS=%d\n", static_cast<int>(r.numPeers));
      std::printf("  RUNNING=%s\n", r.isRunning != 0 ? "yes" : "no");
      if (r.interval != 0) {
        std::printf("  CKPT_INTERVAL=%d\n", r.interval);
      } else {
        std::printf("  CKPT_INTERVAL=0 (checkpoint manually)\n");
      }
    } else {
      std::fputs(r.payload.c_str(), stdout);
    }
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (auto rc = parse_args(argc, argv, o)) return *rc;
  if (o.cmd == CoordCmd::Help) {
    if (o.json) return print_json_help();
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  Result r;
  run_command(o, r);
  int rc = print_result(o, r);
  std::fflush(stdout);
  return rc;
}
