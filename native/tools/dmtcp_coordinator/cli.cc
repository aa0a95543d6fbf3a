#include "tools/dmtcp_coordinator/cli.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace ckpt::tools {

namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Strict integer in the given base (0 = decimal, 0x hex, 0 octal).
bool parse_long(const std::string& s, long long& out, int base = 10) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, base);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

const char* env(const char* name) {
  const char* v = getenv(name);
  return v && *v ? v : nullptr;
}

}  // namespace

std::string version_text() {
  return std::string("dmtcp_coordinator (DMTCP) 5.0\nckpt ") + CKPT_VERSION +
          " (DMTCP-compatible coordinator)\n";
}

std::string usage_text() {
  return R"TXT(Usage: dmtcp_coordinator [OPTIONS] [port]

Coordinates checkpoints of DMTCP computations (drop-in replacement for DMTCP's
dmtcp_coordinator: same options, files and wire protocol).

Options:
  -p, --coord-port, --port PORT  Port to listen on (env DMTCP_COORD_PORT, default
                             7779; 0 lets the kernel choose). A bare trailing
                             number is a port too.
  --port-file FILE           Write the port actually used to FILE
  --status-file FILE         Write start-up information to FILE
  -c, --ckptdir DIR          Directory for restart scripts (env
                             DMTCP_CHECKPOINT_DIR, default: current directory)
  -t, --tmpdir DIR           Temporary directory (env DMTCP_TMPDIR, TMPDIR,
                             default /tmp)
  -i, --interval SECONDS     Checkpoint automatically every SECONDS
                             (0: only on request)
  --exit-on-last             Exit when the last worker disconnects
  --kill-after-ckpt          Kill the computation after every checkpoint
  --timeout SECONDS          Exit with code 1 after SECONDS (0: never)
  --stale-timeout SECONDS    Exit with code 1 after SECONDS without workers
                             (default 28800; -1: never)
  --write-kv-data            Write the key-value database to
                             dmtcp_coordinator_db-*.json in the current
                             directory (env DMTCP_COORD_WRITE_KV_DATA=1)
  --daemon                   Run in the background once listening
  --coord-logfile FILE       Output file in --daemon mode (env
                             DMTCP_COORD_LOG_FILENAME)
  -q, --quiet                Less output (repeat for even less)
  --bind ADDR                Listen on this IPv4 address only (default: all)
  --allow CIDR[,CIDR...]     Accept connections only from these networks
                             (default: everyone), e.g. 127.0.0.1,10.0.0.0/8
  --dmtcp-bin-dir DIR        DMTCP's bin directory, used by restart scripts to
                             find dmtcp_restart (env CKPT_DMTCP_BIN_DIR)
  -h, --help                 Show this text
  --version                  Show the version

Console commands (type them on stdin):
  l: list workers   s: status   c: checkpoint   kc: checkpoint, then kill
  k: kill workers   q: kill workers and quit    ?: help

Examples:
  dmtcp_coordinator --coord-port 0 --port-file /tmp/port --daemon
  dmtcp_coordinator -i 3600 --ckptdir /scratch/ckpt --exit-on-last 7779
  dmtcp_coordinator --bind 10.0.0.5 --allow 10.0.0.0/24 --coord-port 7779

Exit codes: 0 quit or exit-on-last; 1 usage error, --timeout or
--stale-timeout expired; 99 cannot listen on the port.
)TXT";
}

CliResult parse_cli(int argc, char** argv) {
  CliResult res;
  CliOptions o;
  // Environment defaults (spec §1.5); the command line overrides them.
  const char* port_env = env("DMTCP_COORD_PORT");
  if (!port_env) port_env = env("DMTCP_PORT");
  if (port_env) {
    long long v;
    if (parse_long(port_env, v, 0) && v >= 0 && v <= 65535) o.core.port = uint16_t(v);
  }
  if (const char* d = env("DMTCP_CHECKPOINT_DIR")) o.core.ckpt_dir = d;
  if (const char* t = env("DMTCP_TMPDIR")) o.core.tmp_dir = t;
  else if (const char* t2 = env("TMPDIR")) o.core.tmp_dir = t2;
  if (const char* kv = env("DMTCP_COORD_WRITE_KV_DATA")) o.core.write_kv_data = kv[0] == '1';
  if (const char* l = env("DMTCP_COORD_LOG_FILENAME")) o.coord_logfile = l;
  if (const char* b = env("CKPT_DMTCP_BIN_DIR")) o.core.dmtcp_bin_dir = b;
  if (const char* q = env("DMTCP_QUIET")) {
    long long v;
    if (parse_long(q, v) && v >= 0) o.quiet = int(v > 9 ? 9 : v);
  }

  auto usage_error = [&](const std::string& msg) {
    res.options.reset();
    res.exit_code = 1;
    res.error = msg;
    return res;
  };

  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      o.help = true;
      res.options = o;
      return res;
    }
  }

  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    bool last = i == argc - 1;
    auto value = [&](std::string& out) -> bool {
      if (last) return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--version") {
      if (!last) return usage_error("--version must be the last argument");
      o.version = true;
    } else if (a == "-q" || a == "--quiet") {
      o.quiet = o.quiet < 9 ? o.quiet + 1 : 9;
    } else if (a == "--exit-on-last") {
      o.core.exit_on_last = true;
    } else if (a == "--kill-after-ckpt") {
      o.core.kill_after_ckpt = true;
    } else if (a == "--daemon") {
      o.daemon = true;
    } else if (a == "--write-kv-data") {
      o.core.write_kv_data = true;
    } else if (a == "--timeout" || a == "--stale-timeout") {
      long long n;
      if (!value(v)) return usage_error("option " + a + " needs a number of seconds");
      if (!parse_long(v, n)) return usage_error("invalid number of seconds for " + a + ": '" + v + "'");
      if (a == "--timeout") {
        o.core.timeout = n <= 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : uint32_t(n);
      } else {
        // Negative values never expire (the original stored -1 as 2^32-1).
        o.core.stale_timeout = n < 0 ? UINT32_MAX : n > UINT32_MAX ? UINT32_MAX : uint32_t(n);
      }
    } else if (a == "--coord-logfile") {
      if (!value(v)) return usage_error("option --coord-logfile needs a file name");
      o.coord_logfile = v;
    } else if (a == "-i" || a == "--interval" || (a.size() > 2 && a.compare(0, 2, "-i") == 0 && all_digits(a.substr(2)))) {
      if (a.size() > 2 && a[1] == 'i') v = a.substr(2);
      else if (!value(v)) return usage_error("option " + a + " needs a number of seconds");
      long long n;
      if (!parse_long(v, n) || n < 0 || n > INT32_MAX) return usage_error("invalid interval: '" + v + "'");
      o.core.interval = uint32_t(n);
    } else if (a == "-p" || a == "--port" || a == "--coord-port" ||
               (a.size() > 2 && a.compare(0, 2, "-p") == 0 && all_digits(a.substr(2)))) {
      if (a.size() > 2 && a[1] == 'p') v = a.substr(2);
      else if (!value(v)) return usage_error("option " + a + " needs a port number");
      long long n;
      if (!parse_long(v, n, 0) || n < 0 || n > 65535) return usage_error("invalid port: '" + v + "' (expected 0-65535)");
      o.core.port = uint16_t(n);
      o.port_given = true;
    } else if (a == "--port-file") {
      if (!value(v)) return usage_error("option --port-file needs a file name");
      o.port_file = v;
    } else if (a == "--status-file") {
      if (!value(v)) return usage_error("option --status-file needs a file name");
      o.status_file = v;
    } else if (a == "-c" || a == "--ckptdir") {
      if (!value(v)) return usage_error("option " + a + " needs a directory");
      o.core.ckpt_dir = v;
    } else if (a == "-t" || a == "--tmpdir") {
      if (!value(v)) return usage_error("option " + a + " needs a directory");
      o.core.tmp_dir = v;
    } else if (a == "--bind") {
      if (!value(v)) return usage_error("option --bind needs an IPv4 address");
      o.core.bind_address = v;
    } else if (a == "--allow") {
      if (!value(v)) return usage_error("option --allow needs a list of networks");
      auto items = split_commas(v);
      if (items.empty()) return usage_error("option --allow needs at least one network");
      o.core.allow.insert(o.core.allow.end(), items.begin(), items.end());
    } else if (a == "--dmtcp-bin-dir") {
      if (!value(v)) return usage_error("option --dmtcp-bin-dir needs a directory");
      o.core.dmtcp_bin_dir = v;
    } else if (last && all_digits(a)) {
      long long n;
      if (!parse_long(a, n) || n > 65535) return usage_error("invalid port: '" + a + "' (expected 0-65535)");
      o.core.port = uint16_t(n);
      o.port_given = true;
    } else {
      return usage_error("unknown option '" + a + "'");
    }
  }
  o.core.quiet = o.quiet;
  res.options = o;
  return res;
}

}  // namespace ckpt::tools
