// The DMTCP-compatible coordinator as a library (docs/protocol.md, spec §3-5).
//
// HowTo
//   ckpt::coordinator::Options o;  o.port = 0;  o.ckpt_dir = "/scratch/ckpt";
//   ckpt::coordinator::Coordinator c(o);
//   c.on_event([](const Event& e) { ... });   // runs on the loop thread
//   c.start();                                 // binds; throws ckpt::Error
//   c.port();                                  // the actual port
//   c.command(CoordCmd::BlockingCheckpoint, -1, [](const CommandReply& r) { ... });
//   int rc = c.wait();                         // until quit / timeout / stop()
//
// Threading model: start() spawns one event-loop thread that owns every
// socket, timer and piece of computation state. Nothing on that thread blocks
// (no blocking read/write, DNS or bulk file I/O). Other threads talk to it only
// through command()/command_sync()/status()/stop(), which queue a request and
// wake the loop through an eventfd. Event callbacks and command completions
// run on the loop thread and must return quickly (the addon forwards them
// through one ThreadSafeFunction).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/errors.h"
#include "protocol/message.h"

namespace ckpt::coordinator {

using protocol::CmdStatus;
using protocol::CoordCmd;

enum class LogLevel { Error = 0, Warning = 1, Note = 2 };

// Every setting of the dmtcp_coordinator command line (spec §6.1) plus the
// limits that protect the process from hostile peers.
struct Options {
  // ----- listener -----
  // Port to bind when no listen_fd is given; 0 lets the kernel choose.
  uint16_t port = 7779;
  // An already bound, listening socket to serve on (fd 821 when auto-started
  // by dmtcp_launch). Ownership passes to the coordinator. -1: bind `port`.
  int listen_fd = -1;
  // IPv4 address to bind ("" = 0.0.0.0, like the original).
  std::string bind_address;
  // Peers allowed to connect, as IPv4 CIDRs ("10.0.0.0/8", "127.0.0.1").
  // Empty: everyone (the original's behaviour). Others are closed at accept.
  std::vector<std::string> allow;

  // ----- computation -----
  // Where restart scripts go and what status reports ("" = cwd at start()).
  std::string ckpt_dir;
  // Base of <tmp>/dmtcp-<user>@<host>/ ("" = $DMTCP_TMPDIR, $TMPDIR, /tmp).
  std::string tmp_dir;
  // Initial checkpoint interval in seconds (0 = disabled).
  uint32_t interval = 0;
  bool exit_on_last = false;
  bool kill_after_ckpt = false;
  // Absolute lifetime in seconds; 0 = none. Expiry exits with code 1.
  uint32_t timeout = 0;
  // Exit (code 1) after this many seconds without workers. 0 means the
  // default of 28800; UINT32_MAX (what -1 becomes) never fires in practice.
  uint32_t stale_timeout = 28800;
  // Write dmtcp_coordinator_db-<compId>-<time>.json after checkpoints,
  // restarts and at quit.
  bool write_kv_data = false;
  // Directory of those json files ("" = cwd at start(), like the original).
  std::string kv_data_dir;
  // DMTCP's bin directory, written into restart scripts as the location of
  // dmtcp_restart ("" = look it up on PATH when the script runs).
  std::string dmtcp_bin_dir;
  // The IPv4 address (host order) announced to workers that connect over
  // loopback; 0 = resolve the host name at start() (spec §3.2 ipAddr).
  uint32_t announce_ip = 0;
  // 0: notes, warnings and errors; 1: warnings and errors; >=2: errors only.
  int quiet = 0;
  // Receives log lines (without newline), on the coordinator's log thread
  // (never the loop thread; lines beyond a bounded backlog are dropped and
  // counted). Default: stderr. `quiet` filters before this is called.
  std::function<void(LogLevel, const std::string&)> log;

  // ----- limits (hostile peers must not exhaust the process) -----
  // A new connection must deliver its first complete message within this time.
  uint32_t handshake_timeout_ms = 10000;
  // Bytes queued for one peer that does not read; beyond it the peer is dropped.
  size_t max_queued_bytes = size_t(64) << 20;
  // Bytes queued for all peers together; beyond it, any peer with more than
  // 1 MiB queued is dropped when more is queued for it.
  size_t max_total_queued_bytes = size_t(1) << 30;
  // Bytes read from one connection per readiness event before serving the
  // others; the rest is read after the batch. Fairness, not a limit.
  size_t read_budget_bytes = size_t(4) << 20;

  // ----- latency -----
  // While a checkpoint or restart runs, the loop polls for up to this long
  // before sleeping when no message is waiting (0: always sleep). Bounded,
  // and only during rounds: between them the coordinator uses no CPU.
  uint32_t round_poll_us = 200;
  // Largest payload of a connection's first message (hellos carry a host and
  // a program name; a user command carries nothing). Bounds what
  // unauthenticated connections can make us buffer.
  uint32_t max_hello_payload = 16 * 1024;
  // Total bytes of keys and values the KVDB may hold; SETs beyond it are
  // answered INVALID_REQUEST.
  size_t max_kvdb_bytes = size_t(1) << 30;
};

// One registered worker, as `dmtcp_command -l` shows it (spec §7.4).
struct WorkerInfo {
  uint64_t number = 0;  // client number, never reused
  std::string progname;
  std::string hostname;
  std::string upid;  // identity (text form)
  int32_t virtual_pid = -1;  // pid inside the identity
  int32_t real_pid = -1;
  std::string state;    // "RUNNING", ...
  std::string barrier;  // last barrier reached ("" = none)
  std::string ip;       // peer address
};

struct Status {
  uint16_t port = 0;
  std::string host;  // gethostname()
  std::string ip;    // the address workers on this host are told is theirs
  uint32_t num_peers = 0;
  bool running = false;  // >=1 worker and all RUNNING (quorum rule included)
  uint32_t interval = 0;
  std::string comp_id;  // "0-0-0" when none
  uint32_t generation = 0;
  bool checkpoint_in_progress = false;
  bool kill_in_progress = false;
  std::string ckpt_dir;
  uint64_t checkpoints_completed = 0;
  std::vector<WorkerInfo> workers;  // registration order
};

enum class EventType {
  WorkerJoined,         // worker
  WorkerLeft,           // worker
  CheckpointStarted,    // generation, workers
  CheckpointCompleted,  // generation, workers, barriers, duration_ms, images, script
  RestartCompleted,     // generation, workers, barriers, duration_ms
  Kill,                 // workers
  Quit,                 // reason (loop ends right after; exit_code 0)
  Exit,                 // the loop has ended: exit_code, reason (also after Quit)
};
const char* event_type_name(EventType t) noexcept;

struct Event {
  EventType type;
  WorkerInfo worker;
  std::string comp_id;
  uint32_t generation = 0;
  uint32_t workers = 0;
  uint32_t barriers = 0;      // global barriers released during the checkpoint/restart
  double duration_ms = 0;     // start -> last filename (checkpoint) / first hello -> all resumed (restart)
  std::vector<std::string> images;  // checkpoint image paths, arrival order
  std::string restart_script;       // path of the script written (may be "")
  int exit_code = 0;
  std::string reason;
};

// The reply a DMT_USER_CMD would get (spec §3.5).
struct CommandReply {
  CoordCmd command = CoordCmd::Invalid;
  CmdStatus status = CmdStatus::Success;
  uint32_t num_peers = 0;
  bool running = false;
  int32_t interval = -1;
  std::string text;  // list text for CoordCmd::List
};

class Coordinator {
 public:
  explicit Coordinator(Options options);
  ~Coordinator();  // stop() if still running
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Registers the event callback; call before start().
  void on_event(std::function<void(const Event&)> cb);

  // Binds (or adopts listen_fd), raises RLIMIT_NOFILE, resolves the host name
  // and starts the loop thread. Throws ckpt::Error: AddrInUse,
  // InvalidArgument (bad bind address / CIDR), Io.
  void start();
  // The port actually listened on (valid after start()).
  uint16_t port() const noexcept;

  // Runs a user command as if a DMT_USER_CMD had arrived (console and API).
  // `interval` is used by UpdateInterval (-1 = leave unchanged). `done` is
  // called exactly once, on the loop thread: at once, or for
  // BlockingCheckpoint when the checkpoint completes and its restart script
  // is on disk (status NotRunning if it is abandoned or the loop ends first).
  // Quit runs `done` before the loop ends. Safe from any thread; once the
  // loop has ended, `done` is called on the caller's thread with NotRunning.
  void command(CoordCmd cmd, int32_t interval, std::function<void(const CommandReply&)> done);
  // Blocking form of command(); must not be called on the loop thread (it
  // would deadlock waiting for itself) unless the loop has ended.
  CommandReply command_sync(CoordCmd cmd, int32_t interval = -1);

  // A consistent snapshot; safe from any thread, including event callbacks.
  Status status() const;

  // Closes every connection without notifying workers and ends the loop.
  // Idempotent; returns after the loop thread has been joined.
  void stop();
  // Blocks until the loop has ended; returns its exit code (0 quit/stop,
  // 1 --timeout / --stale-timeout expiry).
  int wait();
  bool running() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Creates the listening socket the way start() does (SO_REUSEADDR, IPv4,
// backlog 4096, non-blocking, CLOEXEC) and returns it with its port. Used by
// the executable, which must listen before it daemonises.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
};
Listener open_listener(const std::string& bind_address, uint16_t port);
// Adopts an inherited socket (fd 821): checks it is a listening IPv4 TCP
// socket and reads its port. Throws ckpt::Error(InvalidArgument) otherwise.
Listener adopt_listener(int fd);

}  // namespace ckpt::coordinator
