// dmtcp_coordinator: the drop-in replacement executable (spec §6). This file
// does what must happen in one process before and around the coordinator
// library: argument parsing, the listener (or the inherited fd 821), the port
// and status files, the banner, --daemon, signals, the console on stdin and
// the exit paths. Start-up order matters: the listener and the port file
// exist before a --daemon parent exits, because dmtcp_launch connects as soon
// as it has reaped that parent.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

#include "coordinator/coordinator.h"
#include "coordinator/net.h"
#include "tools/dmtcp_coordinator/cli.h"
#include "tools/dmtcp_coordinator/console.h"

using namespace ckpt;
using namespace ckpt::tools;

namespace {

// dmtcp_launch/dmtcp_restart hand an already listening socket over on this
// descriptor when they start a coordinator themselves (spec §9).
constexpr int kProtectedCoordFd = 821;

std::string local_time(const char* fmt) {
  time_t now = time(nullptr);
  tm local{};
  localtime_r(&now, &local);
  char buf[64];
  strftime(buf, sizeof buf, fmt, &local);
  return buf;
}

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += size_t(n);
  }
}

std::string dir_of(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

// DMTCP's bin directory for restart scripts, when not configured: the
// directory we run from, if dmtcp_restart lives there (an installed shim).
std::string guess_dmtcp_bin_dir(const char* argv0) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string candidates[2];
  if (n > 0) candidates[0] = dir_of(std::string(exe, size_t(n)));
  if (argv0 && std::strchr(argv0, '/')) candidates[1] = dir_of(argv0);
  for (const auto& d : candidates)
    if (!d.empty() && access((d + "/dmtcp_restart").c_str(), X_OK) == 0) return d;
  return "";
}

// stdin is not a console when it is /dev/null, /dev/zero or /dev/random
// (spec §6.2 step 10), or closed.
bool stdin_is_console() {
  struct stat st {};
  if (fstat(0, &st) != 0) return false;
  if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
      (minor(st.st_rdev) == 3 || minor(st.st_rdev) == 5 || minor(st.st_rdev) == 8))
    return false;
  return true;
}

std::string g_status_file;

// Crash handler for --status-file: only async-signal-safe calls.
void crash_handler(int sig) {
  int fd = open(g_status_file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd >= 0) {
    char num[4] = {char('0' + sig / 10), char('0' + sig % 10), 0, 0};
    const char* a = "\n> Exiting due to signal ";
    [[maybe_unused]] ssize_t r = write(fd, a, std::strlen(a));
    r = write(fd, sig >= 10 ? num : num + 1, sig >= 10 ? 2 : 1);
    r = write(fd, " received.\n", 11);
    close(fd);
  }
  raise(sig);  // SA_RESETHAND restored the default action
}

void status_file_append(const std::string& s) {
  if (g_status_file.empty()) return;
  FILE* f = std::fopen(g_status_file.c_str(), "a");
  if (!f) return;
  std::fputs(s.c_str(), f);
  std::fclose(f);
}

void status_file_exited() { status_file_append("Coordinator exited: " + local_time("%Y-%m-%d %H:%M:%S") + "\n"); }

}  // namespace

int main(int argc, char** argv) {
  // Writes to vanished peers are handled as errors (MSG_NOSIGNAL); this also
  // covers console output to a closed pipe.
  signal(SIGPIPE, SIG_IGN);

  CliResult parsed = parse_cli(argc, argv);
  if (!parsed.options) {
    std::fprintf(stderr, "dmtcp_coordinator: %s\n\n%s", parsed.error.c_str(), usage_text().c_str());
    return parsed.exit_code;
  }
  CliOptions o = *parsed.options;
  if (o.help) {
    std::fputs(usage_text().c_str(), stdout);
    return 0;
  }
  if (o.version) {
    std::fputs(version_text().c_str(), stdout);
    return 0;
  }
  try {
    coordinator::detail::parse_cidrs(o.core.allow);
  } catch (const Error& e) {
    std::fprintf(stderr, "dmtcp_coordinator: %s\n", e.what());
    return 1;
  }
  setenv("DMTCP_QUIET", std::to_string(o.quiet).c_str(), 1);
  if (o.core.dmtcp_bin_dir.empty()) o.core.dmtcp_bin_dir = guess_dmtcp_bin_dir(argv[0]);

  std::string host = coordinator::detail::host_name();
  {
    // <tmp>/dmtcp-<user>@<host>/: workers keep their shared-area files there.
    std::string base = o.core.tmp_dir.empty() ? "/tmp" : o.core.tmp_dir;
    const char* user = getenv("USER");
    std::string dir = base + "/dmtcp-" + (user && *user ? user : std::to_string(getuid())) + "@" + host;
    mkdir(dir.c_str(), 0700);
  }

  coordinator::Listener listener;
  try {
    if (fcntl(kProtectedCoordFd, F_GETFD) != -1) {
      try {
        listener = coordinator::adopt_listener(kProtectedCoordFd);
      } catch (const Error& e) {
        // Something else happens to be open on 821 (not DMTCP's hand-over):
        // listen as if it were not there.
        std::fprintf(stderr, "dmtcp_coordinator: warning: ignoring descriptor %d: %s\n", kProtectedCoordFd, e.what());
      }
    }
    if (listener.fd < 0) listener = coordinator::open_listener(o.core.bind_address, o.core.port);
  } catch (const Error& e) {
    std::fprintf(stderr, "dmtcp_coordinator: cannot listen: %s\n", e.what());
    return 99;
  }
  o.core.listen_fd = listener.fd;

  if (!o.port_file.empty()) {
    int fd = open(o.port_file.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::fprintf(stderr, "dmtcp_coordinator: warning: cannot write port file %s: %s\n", o.port_file.c_str(),
                   std::strerror(errno));
    } else {
      write_all(fd, std::to_string(listener.port));  // no newline, as the original
      fsync(fd);
      close(fd);
    }
  }

  // Resolving the host name may wait for DNS: do it before daemonising only
  // when the banner needs it, so an auto-started coordinator (--quiet
  // --daemon) lets dmtcp_launch go on at once.
  uint32_t ip_num = 0;
  auto ip_text = [&] {
    if (!ip_num) ip_num = coordinator::detail::host_address(host);
    return coordinator::detail::ip_text(ip_num);
  };
  if (o.quiet == 0) {
    std::string ip = ip_text();
    std::string interval =
        o.core.interval == 0 ? "disabled (checkpoint manually instead)" : std::to_string(o.core.interval);
    std::string banner = "dmtcp_coordinator starting...\n    Host: " + host + " (" + ip + ")\n    Port: " +
                         std::to_string(listener.port) + "\n    Checkpoint Interval: " + interval +
                         "\n    Exit on last client: " + (o.core.exit_on_last ? "1" : "0") + "\n";
    write_all(2, banner);
  }

  if (o.daemon) {
    if (o.quiet == 0) write_all(2, "Backgrounding...\n");
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int logfd = o.coord_logfile.empty() ? -1
                                        : open(o.coord_logfile.c_str(), O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
    int outfd = logfd >= 0 ? logfd : devnull;
    dup2(devnull, 0);
    dup2(outfd, 1);
    dup2(outfd, 2);
    if (logfd >= 0) close(logfd);
    close(devnull);
    pid_t pid = fork();
    if (pid < 0) {
      std::fprintf(stderr, "dmtcp_coordinator: fork failed: %s\n", std::strerror(errno));
      return 99;
    }
    // The parent exits at once: its caller (dmtcp_launch) waits for it and
    // then connects to the listener, which already exists.
    if (pid > 0) _exit(0);
  } else if (o.quiet == 0) {
    write_all(2, "Type '?' for help.\n\n");
  }

  // Signals. An auto-started coordinator (--exit-on-last --daemon) shares the
  // terminal's process group: Ctrl-C aimed at the application must not stop
  // it. Otherwise SIGINT quits in order, and SIGTERM/SIGQUIT keep their
  // default effect (after noting it in the status file).
  bool immune = o.core.exit_on_last && o.daemon;
  sigset_t handled;
  sigemptyset(&handled);
  if (immune) {
    for (int s : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2}) signal(s, SIG_IGN);
  } else {
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGQUIT);
  }
  // Blocked before the coordinator's threads exist, so they inherit the mask
  // and only signalfd sees these signals.
  pthread_sigmask(SIG_BLOCK, &handled, nullptr);
  int sigfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);

  if (!o.status_file.empty()) {
    FILE* f = std::fopen(o.status_file.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "Error opening file %s\n", o.status_file.c_str());
      return 1;
    }
    // Same bytes as the original, whose interval value is always empty and
    // whose last line is completed by "Coordinator exited: ..." at exit.
    std::string s = "Coordinator started: " + local_time("%Y-%m-%d %H:%M:%S") + "\nStatus...\nHost: " + host + " (" +
                    ip_text() + ")\nPort: " + std::to_string(listener.port) + "\nCheckpoint Interval: ";
    std::fputs(s.c_str(), f);
    std::fclose(f);
    g_status_file = o.status_file;
    struct sigaction sa {};
    sa.sa_handler = crash_handler;
    sa.sa_flags = SA_RESETHAND;
    for (int s2 : {SIGSEGV, SIGABRT, SIGBUS}) sigaction(s2, &sa, nullptr);
  }

  o.core.announce_ip = ip_num;  // 0 when not resolved yet: the coordinator does it
  int exitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  coordinator::Coordinator coord(o.core);
  coord.on_event([exitfd](const coordinator::Event& e) {
    if (e.type == coordinator::EventType::Exit) {
      uint64_t one = 1;
      [[maybe_unused]] ssize_t r = write(exitfd, &one, sizeof one);
    }
  });
  try {
    coord.start();
  } catch (const Error& e) {
    std::fprintf(stderr, "dmtcp_coordinator: %s\n", e.what());
    return 99;
  }

  Console console(coord, o);
  bool watch_stdin = !o.daemon && stdin_is_console();
  bool prompt = watch_stdin && isatty(0) && isatty(1);
  std::string input;
  for (;;) {
    if (prompt) write_all(1, "dmtcp> ");
    pollfd fds[3] = {{exitfd, POLLIN, 0}, {sigfd, POLLIN, 0}, {watch_stdin ? 0 : -1, POLLIN, 0}};
    int n = poll(fds, 3, -1);
    if (prompt) write_all(1, "\r");
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents) break;
    if (fds[1].revents) {
      signalfd_siginfo si{};
      if (read(sigfd, &si, sizeof si) == ssize_t(sizeof si)) {
        int sig = int(si.ssi_signo);
        if (!g_status_file.empty())
          status_file_append("\n> Exiting due to signal " + std::to_string(sig) + " received.\n");
        if (sig == SIGINT) {
          coord.command(coordinator::CoordCmd::Quit, -1, nullptr);
        } else {
          if (!g_status_file.empty()) status_file_exited();
          signal(sig, SIG_DFL);
          sigset_t one;
          sigemptyset(&one);
          sigaddset(&one, sig);
          pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
          raise(sig);
        }
      }
    }
    if (fds[2].revents) {
      char buf[4096];
      ssize_t r = read(0, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        write_all(2, "\n  Closing stdin...\n");
        watch_stdin = false;
        prompt = false;
        if (!input.empty()) {
          input.push_back('\n');
          console.feed(input);
        }
        continue;
      }
      input.append(buf, size_t(r));
      if (input.size() > 65536) input.clear();  // a line that long is not a command
      console.feed(input);
    }
  }

  int rc = coord.wait();
  if (rc == 0) {
    std::fputs("DMTCP coordinator exiting... (per request)\n", stderr);
    std::fflush(stderr);
  }
  // The port file goes on every orderly exit, timeouts included (the
  // original left it behind after timeouts: W-CLI-5).
  if (!o.port_file.empty()) unlink(o.port_file.c_str());
  if (!g_status_file.empty()) status_file_exited();
  return rc;
}
