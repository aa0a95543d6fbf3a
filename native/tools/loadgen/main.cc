// ckpt_loadgen: N synthetic DMTCP workers in one process, for measuring a
// coordinator (ours or DMTCP's original) under load.
//
//   ckpt_loadgen --port P --workers N [--rounds R] [--blocking] [--barriers B]
//                [--host 127.0.0.1] [--timeout S]
//
// It connects N workers at once (non-blocking connects, one epoll loop),
// performs the hello of a launched process (NEW_WORKER -> ACCEPT ->
// INIT_OR_EXEC), then drives R full checkpoint rounds the way real workers
// do (spec §3.6): a user command starts the checkpoint; every worker answers
// DMT_DO_CHECKPOINT with the global barriers DMT:SUSPEND, DMT:CHECKPOINT, a
// few plugin barriers and DMT:WriteCkpt, then sends DMT_CKPT_FILENAME and
// DMT_WORKER_RESUMING. A round is timed from the moment the checkpoint
// command is sent until every worker has been released from its last barrier
// and has sent WORKER_RESUMING. One JSON document goes to stdout.
//
// Everything is bounded: a deadline per phase (--timeout), a cap on N, and
// any protocol surprise ends the run with a message and exit code 1. Only
// loopback or explicitly given addresses are used. All messages go through
// native/protocol; nothing here knows the byte layout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "protocol/message.h"

namespace {

namespace proto = ckpt::protocol;
using proto::MsgType;
using proto::WorkerState;

// Upper bound on --workers: each worker is one socket on each side, so 50000
// already needs 100000 descriptors on one host.
constexpr int kMaxWorkers = 50000;
constexpr int kMaxBarriers = 64;
constexpr int kMaxRounds = 1000;

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "ckpt_loadgen: %s\n", msg.c_str());
  std::exit(1);
}

struct Config {
  std::string host = "127.0.0.1";
  int port = -1;
  int workers = 1;
  int rounds = 5;
  int barriers = 10;  // total per checkpoint, including DMT:SUSPEND, DMT:CHECKPOINT and DMT:WriteCkpt
  bool blocking = false;
  double timeout = 120;  // seconds per phase
  int coordinator_pid = 0;  // when given, its CPU time per round is reported too
  bool tcp_floor = false;   // measure the machine's loopback TCP message cost instead
};

const char kUsage[] =
    "Usage: ckpt_loadgen --port PORT --workers N [options]\n"
    "Drives N synthetic DMTCP workers against a coordinator and prints JSON results.\n"
    "\n"
    "  --host ADDR      coordinator IPv4 address (default 127.0.0.1)\n"
    "  --port PORT      coordinator port (required)\n"
    "  --workers N      number of workers, 1..50000 (default 1)\n"
    "  --rounds R       checkpoint rounds to time (default 5)\n"
    "  --barriers B     global barriers per checkpoint, 3..64 (default 10)\n"
    "  --blocking       start checkpoints with DMT_BLOCKING_CKPT instead of DMT_CHECKPOINT\n"
    "  --timeout S      give up when a phase takes longer than S seconds (default 120)\n"
    "  --coordinator-pid PID  also report the CPU time that process spent in each round\n"
    "  --tcp-floor      no coordinator: measure what one message costs this machine's loopback\n"
    "                   TCP alone (N connected socket pairs in this process, 208-byte messages\n"
    "                   sent and read back, no epoll) and print\n"
    "                   {tcpFloor: {pairs, messages, cpuUsPerMessage, wallUsPerMessage}}\n"
    "\n"
    "Output (one JSON object on stdout; times in ms unless named seconds):\n"
    "  workers, barriersPerRound, blocking,\n"
    "  connect {seconds, perSecond}   all TCP connections established, from the first connect()\n"
    "  join {seconds, perSecond}      every worker has its DMT_ACCEPT, from the first connect()\n"
    "  roundMs {median, min, max}, roundsMs [...]   command sent -> every worker resumed\n"
    "  completeMs, completesMs        (--blocking) command sent -> the blocking reply\n"
    "  loadgenCpuMs, coordinatorCpuMs {median, min, max}   CPU time per round\n"
    "Exit codes: 0 measured; 1 usage error, timeout or protocol surprise (with a message).\n"
    "\n"
    "Example:\n"
    "  ckpt_loadgen --port 7779 --workers 900 --rounds 5\n";

long parse_long(const char* s, const char* what, long lo, long hi) {
  char* end = nullptr;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < lo || v > hi) {
    die(std::string(what) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got '" +
        s + "'");
  }
  return v;
}

Config parse_args(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](const char* what) -> const char* {
      if (i + 1 >= argc) die(std::string(what) + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--host") {
      c.host = value("--host");
    } else if (a == "--port") {
      c.port = static_cast<int>(parse_long(value("--port"), "--port", 1, 65535));
    } else if (a == "--workers") {
      c.workers = static_cast<int>(parse_long(value("--workers"), "--workers", 1, kMaxWorkers));
    } else if (a == "--rounds") {
      c.rounds = static_cast<int>(parse_long(value("--rounds"), "--rounds", 1, kMaxRounds));
    } else if (a == "--barriers") {
      c.barriers = static_cast<int>(parse_long(value("--barriers"), "--barriers", 3, kMaxBarriers));
    } else if (a == "--tcp-floor") {
      c.tcp_floor = true;
    } else if (a == "--blocking") {
      c.blocking = true;
    } else if (a == "--coordinator-pid") {
      c.coordinator_pid = static_cast<int>(parse_long(value("--coordinator-pid"), "--coordinator-pid", 1, 1L << 22));
    } else if (a == "--timeout") {
      c.timeout = static_cast<double>(parse_long(value("--timeout"), "--timeout", 1, 86400));
    } else {
      std::fputs(kUsage, stderr);
      die("unknown argument '" + a + "'");
    }
  }
  if (c.port < 0 && !c.tcp_floor) {
    std::fputs(kUsage, stderr);
    die("--port is required");
  }
  return c;
}

// Barrier names of one checkpoint: the core's names first and last, and
// plugin-like names in between (the coordinator must not care about names).
std::vector<std::string> barrier_names(int count) {
  std::vector<std::string> v{"DMT:SUSPEND", "DMT:CHECKPOINT"};
  for (int i = 0; i < count - 3; i++) v.push_back("Loadgen::Plugin_Barrier_" + std::to_string(i + 1));
  v.push_back("DMT:WriteCkpt");
  return v;
}

// The state a real worker reports when it asks for barrier `i` (spec §4.1).
WorkerState state_for_barrier(size_t i, size_t count) {
  if (i == 0) return WorkerState::PreSuspend;
  if (i == 1) return WorkerState::Suspended;
  if (i + 1 == count) return WorkerState::Checkpointed;
  return WorkerState::Checkpointing;
}

struct Worker {
  int fd = -1;
  bool connected = false;
  bool accepted = false;
  proto::UniquePid id;
  proto::Framer framer;
  std::string out;  // bytes not yet accepted by the kernel
  bool want_out = false;
  double last_send = 0;  // now_s() of the last message queued
  // checkpoint progress in the current round
  int next_barrier = -1;  // index of the barrier we wait for; -1 = idle
  bool resumed = true;
  uint32_t generation = 0;
};

class LoadGen {
 public:
  explicit LoadGen(Config c) : cfg_(std::move(c)), names_(barrier_names(cfg_.barriers)) {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    hostname_ = h;
    hostid_ = proto::hostid_hash(hostname_);
    addr_.sin_family = AF_INET;
    addr_.sin_port = htons(static_cast<uint16_t>(cfg_.port));
    if (inet_pton(AF_INET, cfg_.host.c_str(), &addr_.sin_addr) != 1) {
      die("--host must be an IPv4 address, got '" + cfg_.host + "'");
    }
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) die(std::string("epoll_create1: ") + std::strerror(errno));
  }

  void raise_fd_limit() {
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t need = static_cast<rlim_t>(cfg_.workers) + 64;
    if (rl.rlim_cur < need) {
      rl.rlim_cur = std::min(rl.rlim_max, std::max(need, rl.rlim_cur));
      setrlimit(RLIMIT_NOFILE, &rl);
      getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < need) {
      die("the open-file limit (" + std::to_string(rl.rlim_cur) + ") is too low for " + std::to_string(cfg_.workers) +
          " workers; raise it with 'ulimit -n " + std::to_string(need) + "'");
    }
  }

  // Phase 1: connect every worker at once and say hello as a freshly
  // launched process, each worker as soon as its own connection is up (as
  // real workers do: DMTCP's coordinator drops a connection that stays
  // silent for a second, and with its short listen backlog the last connects
  // complete seconds after the first). Fills connect_seconds (until every TCP
  // connection is established) and join_seconds (until every worker has its
  // DMT_ACCEPT), both measured from the first connect().
  void connect_and_join(double& connect_seconds, double& join_seconds) {
    workers_.resize(static_cast<size_t>(cfg_.workers));
    double t0 = now_s();
    for (size_t i = 0; i < workers_.size(); i++) {
      Worker& w = workers_[i];
      // A distinct identity per worker, as distinct processes would have.
      w.id.hostid = hostid_;
      w.id.time = static_cast<uint64_t>(t0 * 1e9) + i;
      w.id.pid = static_cast<int32_t>(1000000 + i);
      w.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (w.fd < 0) die(std::string("socket(): ") + std::strerror(errno));
      int one = 1;
      setsockopt(w.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int r = connect(w.fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
      if (r != 0 && errno != EINPROGRESS) die(std::string("connect(): ") + std::strerror(errno));
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u64 = i;
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, w.fd, &ev) != 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
    }
    size_t unconnected = workers_.size();
    size_t unaccepted = workers_.size();
    connect_seconds = 0;
    run_until([&] { return unaccepted == 0; }, "connecting and waiting for DMT_ACCEPT", [&](size_t i, uint32_t events) {
      Worker& w = workers_[i];
      if (!w.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(w.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
          die("worker " + std::to_string(i) + " could not connect to " + cfg_.host + ":" + std::to_string(cfg_.port) +
              ": " + std::strerror(err != 0 ? err : ECONNRESET));
        }
        w.connected = true;
        if (--unconnected == 0) connect_seconds = now_s() - t0;
        epoll_event ev{};
        // Edge-triggered like the coordinator: on_readable() reads until the
        // socket is drained, and epoll does not re-poll drained sockets.
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = i;
        epoll_ctl(ep_, EPOLL_CTL_MOD, w.fd, &ev);
        proto::Header h = proto::default_header(w.id, MsgType::NewWorker);
        h.state = static_cast<uint32_t>(WorkerState::Unknown);
        h.realPid = w.id.pid;
        send(i, proto::encode_message(h, proto::make_hello_payload(hostname_, "loadgen")));
        return;
      }
      on_readable(i, events, [&](Worker& w2, const proto::Message& m) {
        if (m.header.msg_type() != MsgType::Accept || w2.accepted) {
          die("worker " + std::to_string(i) + " got " + proto::msg_type_name(m.header.type) +
              " instead of DMT_ACCEPT (the original coordinator accepts at most 961 workers)");
        }
        w2.accepted = true;
        unaccepted--;
        // Like libdmtcp: adopt the virtual pid and report the program name.
        w2.id.pid = m.header.virtualPid;
        proto::Header init = proto::default_header(w2.id, MsgType::UpdateProcessInfoAfterInitOrExec);
        init.state = static_cast<uint32_t>(WorkerState::Running);
        send(i, proto::encode_message(init, proto::make_cstring_payload("loadgen")));
      });
    });
    join_seconds = now_s() - t0;
  }

  // Waits until the coordinator reports all N workers RUNNING (it processes
  // each connection's messages independently, so this is the only reliable
  // "ready" signal before a checkpoint can start).
  void wait_running() {
    double deadline = now_s() + cfg_.timeout;
    for (;;) {
      proto::Header r = user_command(proto::CoordCmd::Status);
      if (r.numPeers == static_cast<uint32_t>(workers_.size()) && r.isRunning != 0) return;
      if (now_s() > deadline) {
        die("the coordinator reports " + std::to_string(r.numPeers) + " workers, running=" +
            std::to_string(r.isRunning) + "; expected " + std::to_string(workers_.size()) + " running");
      }
      timespec ts{0, 2 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
  }

  struct Round {
    double seconds = 0;           // command sent -> every worker resumed
    double complete_seconds = -1;  // command sent -> blocking reply (with --blocking)
  };

  Round checkpoint_round() {
    for (auto& w : workers_) {
      w.next_barrier = -1;
      w.resumed = false;
    }
    size_t pending = workers_.size();
    bool reply_pending = cfg_.blocking;
    double t0 = now_s();
    Round round;
    int cmd_fd = open_command(cfg_.blocking ? proto::CoordCmd::BlockingCheckpoint : proto::CoordCmd::Checkpoint);
    proto::Framer cmd_framer;
    constexpr uint64_t kCmdTag = ~uint64_t{0};
    if (cfg_.blocking) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kCmdTag;
      epoll_ctl(ep_, EPOLL_CTL_ADD, cmd_fd, &ev);
    } else {
      // DMT_CHECKPOINT is answered at once; the answer must be a success.
      proto::Header r = read_reply(cmd_fd);
      if (r.coordCmdStatus != 0) die("the coordinator refused the checkpoint (status " + std::to_string(r.coordCmdStatus) + ")");
      close(cmd_fd);
      cmd_fd = -1;
    }
    run_until([&] { return pending == 0 && !reply_pending; }, "checkpointing", [&](size_t i, uint32_t events) {
      if (i == kCmdTag) {
        char buf[4096];
        ssize_t n = read(cmd_fd, buf, sizeof buf);
        if (n <= 0) die("the coordinator closed the blocking-checkpoint connection without replying");
        cmd_framer.feed(buf, static_cast<size_t>(n));
        proto::Message m;
        if (cmd_framer.next(m) == proto::Framer::Status::Ready) {
          if (m.header.coordCmdStatus != 0) die("the coordinator refused the blocking checkpoint");
          round.complete_seconds = now_s() - t0;
          reply_pending = false;
          epoll_ctl(ep_, EPOLL_CTL_DEL, cmd_fd, nullptr);
          close(cmd_fd);
          cmd_fd = -1;
        }
        return;
      }
      on_readable(i, events, [&](Worker& w, const proto::Message& m) {
        switch (m.header.msg_type()) {
          case MsgType::DoCheckpoint:
            // A duplicate DO_CHECKPOINT while waiting at a barrier is
            // tolerated by real workers; so are we.
            if (w.next_barrier >= 0) return;
            if (w.resumed) die("worker " + std::to_string(i) + " got DMT_DO_CHECKPOINT after resuming");
            w.generation = m.header.compGroup.generation;
            w.next_barrier = 0;
            send_barrier(i);
            return;
          case MsgType::BarrierReleased: {
            if (w.next_barrier < 0) die("worker " + std::to_string(i) + " got an unexpected barrier release");
            auto name = proto::parse_cstring_payload(m.payload);
            const std::string& want = names_[static_cast<size_t>(w.next_barrier)];
            if (!name || *name != want) {
              die("worker " + std::to_string(i) + " was released from '" + (name ? *name : std::string("?")) +
                  "' while waiting at '" + want + "'");
            }
            w.next_barrier++;
            if (static_cast<size_t>(w.next_barrier) < names_.size()) {
              send_barrier(i);
              return;
            }
            // Image "written": report it and resume, in one write.
            w.next_barrier = -1;
            w.resumed = true;
            pending--;
            proto::Header fn = proto::default_header(w.id, MsgType::CkptFilename);
            fn.state = static_cast<uint32_t>(WorkerState::Checkpointed);
            std::string path = "/tmp/ckpt_loadgen_" + w.id.text() + ".dmtcp";
            proto::Header res = proto::default_header(w.id, MsgType::WorkerResuming);
            res.state = static_cast<uint32_t>(WorkerState::Running);
            send(i, proto::encode_message(fn, proto::make_ckpt_filename_payload(path, "", hostname_)) +
                        proto::encode_message(res));
            return;
          }
          default:
            die("worker " + std::to_string(i) + " got unexpected " + proto::msg_type_name(m.header.type) +
                " during a checkpoint");
        }
      });
    });
    round.seconds = now_s() - t0;
    return round;
  }

  void close_all() {
    for (auto& w : workers_) {
      if (w.fd >= 0) close(w.fd);
      w.fd = -1;
    }
  }

  const Config& cfg() const { return cfg_; }

 private:
  void send_barrier(size_t i) {
    Worker& w = workers_[i];
    size_t b = static_cast<size_t>(w.next_barrier);
    proto::Header h = proto::default_header(w.id, MsgType::Barrier);
    h.state = static_cast<uint32_t>(state_for_barrier(b, names_.size()));
    h.set_name(names_[b]);
    send(i, proto::encode_message(h));
  }

  // Queues `bytes` for worker i and writes as much as the kernel takes.
  void send(size_t i, const std::string& bytes) {
    Worker& w = workers_[i];
    w.out += bytes;
    w.last_send = now_s();
    flush(i);
  }

  void flush(size_t i) {
    Worker& w = workers_[i];
    while (!w.out.empty()) {
      ssize_t n = ::send(w.fd, w.out.data(), w.out.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) die("worker " + std::to_string(i) + ": send: " + std::strerror(errno));
      w.out.erase(0, static_cast<size_t>(n));
    }
    bool want = !w.out.empty();
    if (want != w.want_out) {
      w.want_out = want;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (want ? EPOLLOUT : 0u);
      ev.data.u64 = i;
      epoll_ctl(ep_, EPOLL_CTL_MOD, w.fd, &ev);
    }
  }

  template <typename OnMessage>
  void on_readable(size_t i, uint32_t events, OnMessage&& on_message) {
    Worker& w = workers_[i];
    if (events & EPOLLOUT) flush(i);
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
    // A real worker reads the coordinator's message as it arrives and answers
    // at once, so its acknowledgement rides on the answer. Here one process
    // serves thousands of sockets, and a message can wait longer than the
    // delayed-ACK timeout before it is read; Linux then leaves "ping-pong"
    // mode for that socket and acknowledges every later message with a
    // segment of its own - twice the segments a real worker causes.
    // Re-entering ping-pong mode before such a read keeps the simulation
    // true. Only the delayed-ACK timer firing (40 ms at the least) takes a
    // socket out of that mode, and whatever we hold arrived after our last
    // send, so a read within 30 ms of that send needs no extra system call.
    if (now_s() - w.last_send > 0.030) {
      int zero = 0;
      setsockopt(w.fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof zero);
    }
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(w.fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) die("worker " + std::to_string(i) + ": the coordinator closed the connection");
      w.framer.feed(buf, static_cast<size_t>(n));
      // A short read drained the socket (later data raises a new edge) -
      // unless the peer has closed: its FIN may wait behind the data, and
      // this edge was its only report. A full buffer may have left data.
      if (n < static_cast<ssize_t>(sizeof buf) && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) break;
    }
    proto::Message m;
    for (;;) {
      auto st = w.framer.next(m);
      if (st == proto::Framer::Status::NeedMore) break;
      if (st == proto::Framer::Status::Invalid) {
        die("worker " + std::to_string(i) + ": invalid message from the coordinator (" +
            proto::validity_text(w.framer.error()) + ")");
      }
      if (m.header.msg_type() == MsgType::KillPeer) die("worker " + std::to_string(i) + " was told to exit (DMT_KILL_PEER)");
      on_message(w, m);
    }
  }

  template <typename Done, typename OnEvent>
  void run_until(Done&& done, const char* phase, OnEvent&& on_event) {
    std::vector<epoll_event> events(1024);
    double deadline = now_s() + cfg_.timeout;
    while (!done()) {
      double left = deadline - now_s();
      if (left <= 0) die(std::string("timed out after ") + std::to_string(static_cast<int>(cfg_.timeout)) + " s while " + phase);
      // Poll briefly before sleeping, as the coordinator does during rounds:
      // real workers sit on other machines, so our wake-up costs should not
      // be what the benchmark measures.
      int n = 0;
      double spin_until = now_s() + 200e-6;
      do {
        n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 0);
      } while (n == 0 && now_s() < spin_until);
      if (n == 0) n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), static_cast<int>(std::min(left, 1.0) * 1000) + 1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die(std::string("epoll_wait: ") + std::strerror(errno));
      for (int k = 0; k < n; k++) on_event(static_cast<size_t>(events[static_cast<size_t>(k)].data.u64), events[static_cast<size_t>(k)].events);
    }
  }

  // A short-lived user-command connection (blocking; only used between rounds
  // or to start one, when no worker traffic is outstanding).
  int open_command(proto::CoordCmd cmd) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die(std::string("socket(): ") + std::strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) != 0) {
      die("cannot connect a command client to " + cfg_.host + ":" + std::to_string(cfg_.port) + ": " + std::strerror(errno));
    }
    proto::UniquePid me{hostid_, static_cast<uint64_t>(now_s() * 1e9), static_cast<int32_t>(getpid()), 0};
    proto::Header h = proto::default_header(me, MsgType::UserCmd);
    h.coordCmd = static_cast<uint32_t>(cmd);
    std::string bytes = proto::encode_message(h);
    if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
      die(std::string("sending a user command: ") + std::strerror(errno));
    }
    return fd;
  }

  proto::Header read_reply(int fd) {
    proto::Framer f;
    proto::Message m;
    char buf[65536];
    double deadline = now_s() + cfg_.timeout;
    for (;;) {
      auto st = f.next(m);
      if (st == proto::Framer::Status::Ready) break;
      if (st == proto::Framer::Status::Invalid) die("invalid reply to a user command");
      pollfd p{fd, POLLIN, 0};
      int left = static_cast<int>((deadline - now_s()) * 1000);
      if (left <= 0 || poll(&p, 1, left) == 0) die("no reply to a user command within the timeout");
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) die("the coordinator closed a user-command connection without replying");
      f.feed(buf, static_cast<size_t>(n));
    }
    if (m.header.msg_type() != MsgType::UserCmdResult) die("unexpected reply to a user command");
    return m.header;
  }

  proto::Header user_command(proto::CoordCmd cmd) {
    int fd = open_command(cmd);
    proto::Header h = read_reply(fd);
    close(fd);
    return h;
  }

  Config cfg_;
  std::vector<std::string> names_;
  std::string hostname_;
  uint64_t hostid_ = 0;
  sockaddr_in addr_{};
  int ep_ = -1;
  std::vector<Worker> workers_;
};

// CPU time (user + system) of a process in milliseconds, from /proc/PID/stat;
// -1 when it cannot be read.
double process_cpu_ms(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return -1;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Fields after the command name, which is in parentheses and may hold spaces.
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return -1;
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_ms() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1000.0 + static_cast<double>(t.tv_usec) / 1000.0; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The floor under any coordinator: every message of a round is one loopback
// TCP segment that some process must send and another must receive. Measured
// on plain blocking sockets in one thread, without epoll or wake-ups, over as
// many connections as the round has workers (or as the fd limit allows, two
// per pair), so socket state is as cold in the caches as in a round.
int tcp_floor(const Config& cfg) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  size_t room = rl.rlim_cur > 96 ? size_t((rl.rlim_cur - 64) / 2) : 16;
  size_t pairs = std::min(size_t(cfg.workers), room);
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 4096) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&a), &al) != 0) {
    die(std::string("tcp floor: listening socket: ") + std::strerror(errno));
  }
  std::vector<int> cl(pairs, -1), sv(pairs, -1);
  int one = 1;
  for (size_t i = 0; i < pairs; i++) {
    cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cl[i] < 0 || connect(cl[i], reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die(std::string("tcp floor: connect: ") + std::strerror(errno));
    sv[i] = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
    if (sv[i] < 0) die(std::string("tcp floor: accept: ") + std::strerror(errno));
    setsockopt(cl[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  char msg[proto::kHeaderSize] = {};
  auto exchange = [&](int from, int to) {
    if (::send(from, msg, sizeof msg, MSG_NOSIGNAL) != ssize_t(sizeof msg)) die(std::string("tcp floor: send: ") + std::strerror(errno));
    size_t got = 0;
    while (got < sizeof msg) {
      ssize_t n = recv(to, msg + got, sizeof msg - got, 0);
      if (n <= 0) die(std::string("tcp floor: recv: ") + std::strerror(errno));
      got += size_t(n);
    }
  };
  // About 200,000 messages, at least 3 per pair: long enough to time, warm
  // enough that connection set-up is not in it.
  size_t iters = std::max<size_t>(3, 100000 / pairs);
  for (size_t i = 0; i < pairs; i++) exchange(sv[i], cl[i]), exchange(cl[i], sv[i]);
  double w0 = now_s(), c0 = self_cpu_ms();
  for (size_t r = 0; r < iters; r++) {
    for (size_t i = 0; i < pairs; i++) {
      exchange(sv[i], cl[i]);
      exchange(cl[i], sv[i]);
    }
  }
  double wall = now_s() - w0, cpu = (self_cpu_ms() - c0) / 1000;
  double msgs = double(iters) * double(pairs) * 2;
  for (size_t i = 0; i < pairs; i++) close(cl[i]), close(sv[i]);
  close(l);
  std::printf("{\"tcpFloor\":{\"pairs\":%zu,\"messages\":%.0f,\"cpuUsPerMessage\":%.3f,\"wallUsPerMessage\":%.3f}}\n", pairs, msgs,
              cpu / msgs * 1e6, wall / msgs * 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg = parse_args(argc, argv);
  if (cfg.tcp_floor) return tcp_floor(cfg);
  LoadGen g(cfg);
  g.raise_fd_limit();
  double connect_s = 0, join_s = 0;
  g.connect_and_join(connect_s, join_s);
  std::vector<double> rounds_ms, complete_ms;
  std::vector<double> coord_cpu_ms, self_cpu;
  for (int r = 0; r < cfg.rounds; r++) {
    g.wait_running();
    double c0 = cfg.coordinator_pid ? process_cpu_ms(cfg.coordinator_pid) : -1;
    double s0 = self_cpu_ms();
    auto round = g.checkpoint_round();
    self_cpu.push_back(self_cpu_ms() - s0);
    if (c0 >= 0) {
      double c1 = process_cpu_ms(cfg.coordinator_pid);
      if (c1 >= 0) coord_cpu_ms.push_back(c1 - c0);
    }
    rounds_ms.push_back(round.seconds * 1000);
    if (round.complete_seconds >= 0) complete_ms.push_back(round.complete_seconds * 1000);
  }
  g.close_all();

  auto list = [](const std::vector<double>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) {
      char b[32];
      std::snprintf(b, sizeof b, "%s%.3f", i ? "," : "", v[i]);
      s += b;
    }
    return s + "]";
  };
  auto stats = [&](const std::vector<double>& v) {
    char b[160];
    std::snprintf(b, sizeof b, "{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}", median(v),
                  *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
    return std::string(b);
  };
  int n = cfg.workers;
  std::printf("{\"workers\":%d,\"barriersPerRound\":%d,\"blocking\":%s,", n, cfg.barriers, cfg.blocking ? "true" : "false");
  std::printf("\"connect\":{\"seconds\":%.6f,\"perSecond\":%.1f},", connect_s, connect_s > 0 ? n / connect_s : 0.0);
  std::printf("\"join\":{\"seconds\":%.6f,\"perSecond\":%.1f},", join_s, join_s > 0 ? n / join_s : 0.0);
  std::printf("\"roundMs\":%s,\"roundsMs\":%s", stats(rounds_ms).c_str(), list(rounds_ms).c_str());
  if (!complete_ms.empty()) std::printf(",\"completeMs\":%s,\"completesMs\":%s", stats(complete_ms).c_str(), list(complete_ms).c_str());
  // CPU time per round (clock-tick resolution for the coordinator): shows
  // what a round costs independently of how busy the machine is.
  std::printf(",\"loadgenCpuMs\":%s", stats(self_cpu).c_str());
  if (!coord_cpu_ms.empty()) std::printf(",\"coordinatorCpuMs\":%s", stats(coord_cpu_ms).c_str());
  std::printf("}\n");
  return 0;
}
