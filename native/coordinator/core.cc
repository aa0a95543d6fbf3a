// Protocol logic of the coordinator (spec §3-§5). Runs only on the loop
// thread. Design rules that keep it robust against hostile peers:
//  * Nothing here blocks: sockets are non-blocking, output is queued per
//    connection, files go to the FileWriter thread, logs to the AsyncLog thread.
//  * A connection is never freed while the current epoll batch may still
//    reference it: kill_conn() marks it dead, settle() applies the protocol
//    consequences (barrier counts, exit-on-last, ...) at a safe point, and the
//    memory is released after the batch (graveyard_).
//  * Per-message work is O(1) except where the protocol itself is O(N)
//    (broadcasts, list output): state counts, arrival counters and the
//    number of workers owing a filename are maintained incrementally.
#include "coordinator/core.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <climits>
#include <cstring>

namespace ckpt::coordinator::detail {

using protocol::CmdStatus;
using protocol::CoordCmd;
using protocol::MsgType;
using protocol::WorkerState;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Connection sockets are watched edge-triggered: epoll then does not poll
// every reported socket a second time on the next epoll_wait() only to find
// it drained (with thousands of workers answering a barrier at once, that
// re-poll was one tcp_poll() per message). In exchange every handler reads
// until the socket is drained (a short read or EAGAIN) or queues itself in
// unread_, and writes until EAGAIN before waiting for EPOLLOUT.
constexpr uint32_t kEdge = EPOLLET;
// How long quit waits for KILL_PEER messages to drain to slow peers.
constexpr uint64_t kQuitFlushMs = 1000;
// Stale timeouts this large (e.g. -1 converted to unsigned) never fire.
constexpr uint64_t kNeverSeconds = uint64_t(INT32_MAX);
constexpr uint32_t kState(WorkerState s) { return uint32_t(s); }

std::string cwd() {
  char buf[PATH_MAX];
  return getcwd(buf, sizeof buf) ? std::string(buf) : std::string(".");
}

std::string absolute(const std::string& p, const std::string& base) {
  if (p.empty()) return base;
  if (p[0] == '/') return p;
  return base + "/" + p;
}

std::string user_name() {
  const char* u = getenv("USER");
  if (u && *u) return u;
  return std::to_string(getuid());
}

}  // namespace

void Connection::on_io(uint32_t events) { core.on_conn_io(*this, events); }

Core::Core(const Options& opts, Listener listener, EventLoop& loop, AsyncLog& log, FileWriter& writer)
    : opts_(opts),
      loop_(loop),
      log_(log),
      writer_(writer),
      listen_fd_(listener.fd),
      port_(listener.port),
      allow_(parse_cidrs(opts.allow)),
      host_(host_name()),
      host_ip_(opts.announce_ip ? opts.announce_ip : host_address(host_)),
      kvdb_(opts.max_kvdb_bytes ? opts.max_kvdb_bytes : Options{}.max_kvdb_bytes),
      interval_(opts.interval),
      default_interval_(opts.interval) {
  std::string here = cwd();
  ckpt_dir_ = absolute(opts_.ckpt_dir, here);
  opts_.kv_data_dir = absolute(opts_.kv_data_dir, here);
  if (opts_.stale_timeout == 0) opts_.stale_timeout = 28800;
  // Zero limits would refuse everything; they mean "the default".
  if (opts_.handshake_timeout_ms == 0) opts_.handshake_timeout_ms = Options{}.handshake_timeout_ms;
  if (opts_.max_queued_bytes == 0) opts_.max_queued_bytes = Options{}.max_queued_bytes;
  if (opts_.max_total_queued_bytes == 0) opts_.max_total_queued_bytes = Options{}.max_total_queued_bytes;
  if (opts_.max_hello_payload == 0) opts_.max_hello_payload = Options{}.max_hello_payload;
  // The identity every message we send carries; constant for our lifetime
  // because workers compare it between the two ends of restored sockets.
  self_.hostid = protocol::hostid_hash(host_);
  self_.pid = getpid();
  self_.time = now_ns();
  self_.generation = 0;
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (!loop_.add(listen_fd_, EPOLLIN, this)) throw_errno("epoll_ctl(listener)", errno);
  if (opts_.timeout) timeout_deadline_ = now_ms() + uint64_t(opts_.timeout) * 1000;
}

Core::~Core() {
  for (auto& [id, c] : conns_) {
    if (c->fd >= 0) close(c->fd);
  }
  for (auto& c : graveyard_)
    if (c->fd >= 0) close(c->fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

// ---------------------------------------------------------------------------
// Connections

void Core::on_io(uint32_t) {
  accept_all();
  settle();
}

void Core::accept_all() {
  // Drain the accept queue completely: a burst of thousands of workers
  // connecting at once is the normal start of a large job.
  for (;;) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
        // Out of descriptors: level-triggered epoll would report the pending
        // connection forever. Free the spare descriptor, accept and close the
        // connection, and take the spare back.
        close(reserve_fd_);
        int victim = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (victim >= 0) close(victim);
        reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        log_.warn("out of file descriptors; refused a connection");
        continue;
      }
      return;  // EAGAIN, or an error we cannot act on
    }
    uint32_t ip = sa.sin_family == AF_INET ? ntohl(sa.sin_addr.s_addr) : 0;
    if (!allow_.empty()) {
      bool ok = false;
      for (const auto& c : allow_) ok = ok || c.contains(ip);
      if (!ok) {
        log_.warn("refused connection from " + ip_text(ip) + " (not in --allow)");
        close(fd);
        continue;
      }
    }
    if (quitting_) {
      close(fd);
      continue;
    }
    int one = 1;
    // Every message is one write; without NODELAY, Nagle + delayed ACK adds
    // ~40 ms to replies whose predecessor is not yet acknowledged.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto conn = std::make_unique<Connection>(*this, next_conn_id_++, fd, ip);
    Connection* c = conn.get();
    c->watched = EPOLLIN | EPOLLRDHUP;
    if (!loop_.add(fd, c->watched | kEdge, c)) {
      close(fd);
      continue;
    }
    c->in.set_payload_limit(opts_.max_hello_payload);
    c->deadline_ms = now_ms() + opts_.handshake_timeout_ms;
    c->hs_prev = hs_tail_;
    if (hs_tail_) hs_tail_->hs_next = c;
    else hs_head_ = c;
    hs_tail_ = c;
    c->in_handshake_list = true;
    conns_.emplace(c->id, std::move(conn));
  }
}

void Core::handshake_unlink(Connection& c) {
  if (!c.in_handshake_list) return;
  if (c.hs_prev) c.hs_prev->hs_next = c.hs_next;
  else hs_head_ = c.hs_next;
  if (c.hs_next) c.hs_next->hs_prev = c.hs_prev;
  else hs_tail_ = c.hs_prev;
  c.hs_prev = c.hs_next = nullptr;
  c.in_handshake_list = false;
}

void Core::on_conn_io(Connection& c, uint32_t events) {
  if (c.dead) return;
  if (events & EPOLLOUT) flush(c);
  // A peer that has closed (RDHUP/HUP/ERR) may have its last data and its
  // FIN in the queue together: a short read then returns the data, and the
  // end of the stream waits for one more read. That condition was reported
  // with this very edge, so no later event would bring it back: read on
  // until EAGAIN or EOF.
  bool closing = events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP);
  if (!c.dead && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && c.reading && !read_from(c, closing)) {
    unread_.push_back(c.id);
  }
  // HUP/ERR with nothing left to read: the peer is gone in both directions,
  // so queued output can never be delivered (and level-triggered epoll would
  // report the condition again and again).
  if (!c.dead && (events & (EPOLLHUP | EPOLLERR)) && !c.reading) kill_conn(c, "connection closed");
  settle();
}

bool Core::read_from(Connection& c, bool until_eagain) {
  char buf[kReadChunk];
  // A connection that uses its budget (Options::read_budget_bytes) is read
  // again after the batch (unread_): edge-triggered epoll will not report it.
  size_t budget = opts_.read_budget_bytes ? opts_.read_budget_bytes : 1;
  while (budget > 0 && !c.dead && c.reading) {
    ssize_t n = recv(c.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      kill_conn(c, std::string("read error: ") + std::strerror(errno));
      return true;
    }
    if (n == 0) {
      // Orderly EOF. Everything received before it has been handled above
      // (a worker's last CKPT_FILENAME before it exits must count).
      c.reading = false;
      if (c.kind == ConnKind::UserCmd && c.queued > 0) {
        // A half-closed client may still read the reply queued for it.
        update_watch(c);
        return true;
      }
      kill_conn(c, "peer closed the connection");
      return true;
    }
    budget -= size_t(n) < budget ? size_t(n) : budget;
    // After its request, a user-command connection only waits for the reply;
    // anything more it sends is read and discarded.
    if (c.kind == ConnKind::UserCmd || c.kind == ConnKind::Held) continue;
    c.in.feed(buf, size_t(n));
    Message m;
    for (;;) {
      auto st = c.in.next(m);
      if (st == protocol::Framer::Status::NeedMore) break;
      if (st == protocol::Framer::Status::Invalid) {
        kill_conn(c, std::string("invalid message (") + protocol::validity_text(c.in.error()) + ")");
        return true;
      }
      handle_message(c, m);
      if (c.dead || c.kind == ConnKind::UserCmd || c.kind == ConnKind::Held) break;
    }
    // DMTCP workers send a header and its payload with two write()s and
    // without TCP_NODELAY, so the payload waits (Nagle) until the header is
    // acknowledged, and Linux delays that ACK by ~40 ms. Acknowledging at once
    // when a message is incomplete removes three such stalls from every real
    // checkpoint (two KVDB SETs and the filename). TCP_QUICKACK is not sticky,
    // hence per read; it is only paid while a message is cut in two.
    if (!c.dead && c.in.mid_message()) {
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    // A short read drained the socket: return instead of paying for a recv()
    // that can only say EAGAIN (half the reads at 10,000 workers). Data that
    // arrives after the read raises a new edge, so it is reported again.
    if (size_t(n) < sizeof buf && !until_eagain) return true;
  }
  // Budget used up with data possibly left: only then read again later.
  return c.dead || !c.reading;
}

void Core::handle_message(Connection& c, Message& m) {
  switch (c.kind) {
    case ConnKind::Handshake: on_first_message(c, m); break;
    case ConnKind::Worker:
    case ConnKind::NameService: on_worker_message(c, m); break;
    default: break;
  }
}

void Core::update_watch(Connection& c) {
  uint32_t want = (c.reading ? uint32_t{EPOLLIN | EPOLLRDHUP} : 0u) | (c.queued ? uint32_t{EPOLLOUT} : 0u);
  if (want == c.watched || c.dead) return;
  if (want == 0) {
    // Nothing to read and nothing to write: the connection is finished.
    kill_conn(c, "done");
    return;
  }
  c.watched = want;
  // EPOLL_CTL_MOD re-evaluates readiness, so a condition that is already
  // true (e.g. buffer space freed before we asked for EPOLLOUT) is reported.
  loop_.modify(c.fd, want | kEdge, &c);
}

void Core::send(Connection& c, std::string_view bytes) {
  if (c.dead) return;
  if (c.queued == 0) {
    // Common case: the kernel takes the whole message at once and nothing
    // is copied (broadcasts pass the same buffer to every worker).
    ssize_t n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == ssize_t(bytes.size())) {
      if (c.close_after_flush) kill_conn(c, "reply sent");
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        // EPIPE/ECONNRESET: the peer is gone (e.g. a client that closed right
        // after its LIST request). MSG_NOSIGNAL keeps SIGPIPE away.
        kill_conn(c, std::string("write error: ") + std::strerror(errno));
        return;
      }
      n = 0;
    }
    c.out_off = size_t(n);
    c.queued = bytes.size() - size_t(n);
    total_queued_ += c.queued;
    c.out.emplace_back(bytes);
    update_watch(c);
    return;
  }
  c.queued += bytes.size();
  total_queued_ += bytes.size();
  c.out.emplace_back(bytes);
  if (total_queued_ > opts_.max_total_queued_bytes && c.queued > (size_t(1) << 20)) {
    // Many slow readers together: shed the ones with large backlogs.
    kill_conn(c, "peer is not reading (" + std::to_string(c.queued) + " bytes queued; total limit reached)");
    return;
  }
  if (c.queued > opts_.max_queued_bytes) {
    // A peer that stops reading must not make us buffer without bound.
    kill_conn(c, "peer is not reading (" + std::to_string(c.queued) + " bytes queued)");
  }
}

void Core::flush(Connection& c) {
  while (c.queued > 0) {
    iovec iov[64];
    int n = 0;
    size_t off = c.out_off;
    for (auto it = c.out.begin(); it != c.out.end() && n < 64; ++it, off = 0) {
      iov[n].iov_base = it->data() + off;
      iov[n].iov_len = it->size() - off;
      n++;
    }
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = size_t(n);
    ssize_t w = sendmsg(c.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      kill_conn(c, std::string("write error: ") + std::strerror(errno));
      return;
    }
    size_t left = size_t(w);
    c.queued -= left;
    assert(total_queued_ >= left);
    total_queued_ -= left;
    while (left > 0) {
      size_t front = c.out.front().size() - c.out_off;
      if (left >= front) {
        left -= front;
        c.out.pop_front();
        c.out_off = 0;
      } else {
        c.out_off += left;
        left = 0;
      }
    }
  }
  if (c.queued == 0 && c.close_after_flush) {
    kill_conn(c, "reply sent");
    return;
  }
  update_watch(c);
}

void Core::kill_conn(Connection& c, const std::string& why) {
  if (c.dead) return;
  c.dead = true;
  if (c.kind == ConnKind::Worker && why != "reply sent" && why != "done")
    log_.note("client disconnected: identity=" + c.worker->identity.text() + " progname=" + c.worker->progname +
              (why == "peer closed the connection" ? std::string() : " (" + why + ")"));
  else if (c.kind == ConnKind::Handshake && why != "peer closed the connection")
    log_.note("closed connection from " + ip_text(c.peer_ip) + ": " + why);
  dying_.push_back(&c);
}

void Core::settle() {
  // Consequences of a death may kill more connections (a broadcast that fails
  // to write), so loop until nothing is pending.
  while (!dying_.empty()) {
    Connection* c = dying_.back();
    dying_.pop_back();
    handshake_unlink(*c);
    loop_.remove(c->fd);
    assert(total_queued_ >= c->queued);
    total_queued_ -= c->queued;  // dropped with the connection
    c->queued = 0;
    c->out.clear();
    if (c->kind == ConnKind::Worker) worker_left(*c);
    if (c->waiting_blocking) {
      for (auto& w : waiters_)
        if (w.conn_id == c->id) w.conn_id = UINT64_MAX;  // reply goes nowhere
    }
    auto it = conns_.find(c->id);
    assert(it != conns_.end());
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
  }
}

// ---------------------------------------------------------------------------
// First message of a connection (spec §3.1)

Core::Header Core::hdr(MsgType t) const { return protocol::default_header(self_, t); }

void Core::reject(Connection& c, MsgType type, int32_t vpid) {
  Header h = hdr(type);
  h.virtualPid = vpid;
  c.close_after_flush = true;
  c.reading = false;
  send(c, protocol::encode_message(h));
  if (!c.dead) update_watch(c);
}

void Core::on_first_message(Connection& c, Message& m) {
  handshake_unlink(c);
  // Registered peers may send up to the protocol's 1 MiB (e.g. KVDB values).
  c.in.set_payload_limit(protocol::kMaxExtraBytes);
  switch (m.header.msg_type()) {
    case MsgType::NameServiceWorker:
      c.kind = ConnKind::NameService;
      return;
    case MsgType::UserCmd:
      c.kind = ConnKind::UserCmd;
      on_user_command(c, m);
      return;
    default:
      break;
  }
  if (kill_in_progress_) {
    // The whole hello (payload included) has been read, so closing after
    // the reply is an orderly FIN rather than an RST (W-ROB-9).
    Header h = hdr(MsgType::KillPeer);
    c.close_after_flush = true;
    c.reading = false;
    send(c, protocol::encode_message(h));
    if (!c.dead) update_watch(c);
    return;
  }
  if (m.header.msg_type() == MsgType::RestartWorker) {
    if (workers_.size() == 0) reset_computation();
    on_restart_worker(c, m);
  } else if (m.header.msg_type() == MsgType::NewWorker) {
    if (workers_.size() == 0) reset_computation();
    on_new_worker(c, m);
  } else {
    kill_conn(c, std::string("unexpected first message ") + protocol::msg_type_name(m.header.type));
  }
}

void Core::reset_computation() {
  comp_id_ = {};
  coord_timestamp_ = 0;
  restart_quorum_ = -1;
  if (ckpt_in_progress_) abort_checkpoint("new computation");
  kill_in_progress_ = false;
  kill_after_once_ = false;
  pending_barrier_.clear();
  arrived_ = 0;
  restarting_ = false;
  // A new computation starts from the configured interval, not from one a
  // previous computation's worker asked for (W-BUG-16).
  interval_ = default_interval_;
}

uint64_t Core::fresh_timestamp() {
  uint64_t t = now_ns();
  if (t <= last_timestamp_) t = last_timestamp_ + 1;
  last_timestamp_ = t;
  return t;
}

uint32_t Core::ip_for(const Connection& c) const {
  return (c.peer_ip >> 24) == 127 ? host_ip_ : c.peer_ip;
}

void Core::on_new_worker(Connection& c, Message& m) {
  const Header& h = m.header;
  auto hello = protocol::parse_hello_payload(m.payload);
  if (h.state != kState(WorkerState::Unknown) && h.state != kState(WorkerState::Running)) {
    kill_conn(c, std::string("new-worker hello in state ") + protocol::worker_state_name(h.state));
    return;
  }
  if (h.virtualPid != -1) {
    kill_conn(c, "new-worker hello with a virtual pid");
    return;
  }
  if (!hello) {
    kill_conn(c, "malformed hello payload");
    return;
  }
  if (ckpt_in_progress_ && barriers_this_round_ > 0) {
    // The checkpoint has passed its first barrier, so this process could
    // never catch up with it. Park the hello and answer it when the
    // checkpoint ends (the original crashed or desynchronised here).
    // The connection stays watched so a peer that gives up is noticed.
    c.kind = ConnKind::Held;
    c.held = std::move(m);
    held_ids_.push_back(c.id);
    return;
  }
  auto vpid = vpids_.allocate();
  if (!vpid) {
    log_.warn("no virtual pid available; rejecting " + hello->progname);
    reject(c, MsgType::RejectNotRunning, -1);
    return;
  }
  if (ckpt_in_progress_) {
    // Joins the running checkpoint before its first barrier release.
    if (comp_id_.is_null()) {
      reject(c, MsgType::RejectNotRunning, *vpid);
      return;
    }
    send_new_worker_accept(c, *vpid);
    Header d = hdr(MsgType::DoCheckpoint);
    d.compGroup = comp_id_;
    d.numPeers = workers_.size() + 1;
    d.exitAfterCkpt = exit_after_ckpt();
    send(c, protocol::encode_message(d));
    if (c.dead) return;
    register_worker(c, m, *vpid);
    c.worker->owes_filename = true;
    owing_++;
    return;
  }
  if (workers_.size() > 0) {
    uint32_t min = workers_.min_state();
    if (min != kState(WorkerState::Unknown) && min != kState(WorkerState::Running)) {
      reject(c, MsgType::RejectNotRunning, *vpid);
      return;
    }
  }
  if (!h.compGroup.is_null()) {
    reject(c, MsgType::RejectWrongComp, *vpid);
    return;
  }
  if (comp_id_.is_null()) {
    comp_id_ = protocol::UniquePid{h.from.hostid, h.from.time, *vpid, h.from.generation};
    coord_timestamp_ = fresh_timestamp();
    restart_quorum_ = -1;
    kvdb_.log_event("Initializing-Computation");
  }
  send_new_worker_accept(c, *vpid);
  if (c.dead) return;
  register_worker(c, m, *vpid);
}

// A new worker's DMT_ACCEPT: its virtual pid, the computation it joins and
// the address the coordinator sees it from.
void Core::send_new_worker_accept(Connection& c, int32_t vpid) {
  Header a = hdr(MsgType::Accept);
  a.virtualPid = vpid;
  a.compGroup = comp_id_;
  a.coordTimeStamp = coord_timestamp_;
  a.ipAddr = ip_for(c);
  send(c, protocol::encode_message(a));
}

void Core::on_restart_worker(Connection& c, Message& m) {
  const Header& h = m.header;
  auto hello = protocol::parse_hello_payload(m.payload);
  if (h.state != kState(WorkerState::Restarting)) {
    kill_conn(c, std::string("restart hello in state ") + protocol::worker_state_name(h.state));
    return;
  }
  if (!hello) {
    kill_conn(c, "malformed hello payload");
    return;
  }
  if (comp_id_.is_null()) {
    // First process of a restart: a fresh database and event log entries.
    kvdb_.clear();
    kvdb_.log_event("Restarting-Computation");
    kvdb_.log_event("Restart-Start");
    comp_id_ = h.compGroup;
    restart_quorum_ = int64_t(h.numPeers);
    coord_timestamp_ = fresh_timestamp();
    restarting_ = true;
    restart_started_ms_ = now_ms();
    barriers_this_round_ = 0;
  } else if (workers_.min_state() != kState(WorkerState::Restarting) || ckpt_in_progress_) {
    reject(c, MsgType::RejectNotRestarting, -1);
    return;
  } else if (!h.compGroup.same_process(comp_id_)) {
    reject(c, MsgType::RejectWrongComp, -1);
    return;
  } else if (int64_t(h.numPeers) != restart_quorum_) {
    reject(c, MsgType::RejectRestartPeerMismatch, -1);
    return;
  } else if (h.compGroup.generation != comp_id_.generation) {
    // Images of different checkpoints of one computation cannot be
    // restarted together (W-BUG-21); the original accepted them.
    reject(c, MsgType::RejectWrongComp, -1);
    return;
  }
  Header a = hdr(MsgType::Accept);
  a.coordTimeStamp = coord_timestamp_;
  a.ipAddr = ip_for(c);
  send(c, protocol::encode_message(a));
  if (c.dead) return;
  register_worker(c, m, h.from.pid);
}

void Core::register_worker(Connection& c, const Message& m, int32_t vpid) {
  const Header& h = m.header;
  auto hello = protocol::parse_hello_payload(m.payload);
  auto w = std::make_unique<Worker>();
  w->number = next_client_number_++;
  w->identity = h.from;
  w->state = h.state;
  w->real_pid = h.realPid;
  w->vpid = vpid;
  if (hello) {
    w->hostname = hello->hostname;
    w->progname = hello->progname;
  }
  w->conn = &c;
  vpids_.acquire(vpid);
  c.kind = ConnKind::Worker;
  c.worker = std::move(w);
  workers_.add(c.worker.get());
  // Interval hook (spec §5.1).
  if (h.theCheckpointInterval != -1) interval_ = uint32_t(h.theCheckpointInterval);
  if (workers_.size() == 1 &&
      (h.state == kState(WorkerState::Unknown) || h.state == kState(WorkerState::Running)))
    arm_interval();
  Event e{EventType::WorkerJoined};
  e.worker = info(*c.worker);
  e.comp_id = comp_id_.text();
  e.generation = comp_id_.generation;
  e.workers = workers_.size();
  emit(std::move(e));
}

// ---------------------------------------------------------------------------
// Messages from registered workers and NS connections (spec §3.6-§3.13)

void Core::on_worker_message(Connection& c, Message& m) {
  const Header& h = m.header;
  MsgType t = h.msg_type();
  if (t == MsgType::KvdbRequest) {
    if (c.kind == ConnKind::Worker) workers_.set_state(c.worker.get(), h.state);
    on_kvdb(c, m);
    return;
  }
  if (c.kind == ConnKind::NameService) {
    // An NS connection has no worker record; the original handled other
    // types on it too, but nothing sends them. Ignore rather than guess.
    if (t == MsgType::GetCkptDir) {
      Header r = hdr(MsgType::GetCkptDirResult);
      send(c, protocol::encode_message(r, protocol::make_cstring_payload(ckpt_dir_)));
    }
    return;
  }
  Worker& w = *c.worker;
  uint32_t prev = w.state;
  switch (t) {
    case MsgType::UpdateProcessInfoAfterFork:
      workers_.set_state(&w, h.state);
      w.identity = h.from;
      w.real_pid = h.realPid;
      return;
    case MsgType::UpdateProcessInfoAfterInitOrExec: {
      auto prog = protocol::parse_cstring_payload(m.payload);
      if (!prog) {
        kill_conn(c, "INIT_OR_EXEC without a program name");
        return;
      }
      workers_.set_state(&w, h.state);
      w.progname = *prog;
      w.identity = h.from;
      if (ckpt_in_progress_) {
        // A worker that exec'd lost the DO_CHECKPOINT sent to its old image;
        // send it again (the worker ignores a duplicate).
        Header d = hdr(MsgType::DoCheckpoint);
        d.compGroup = comp_id_;
        d.numPeers = workers_.size();
        d.exitAfterCkpt = exit_after_ckpt();
        send(c, protocol::encode_message(d));
      }
      return;
    }
    case MsgType::GetCkptDir: {
      workers_.set_state(&w, h.state);
      Header r = hdr(MsgType::GetCkptDirResult);
      send(c, protocol::encode_message(r, protocol::make_cstring_payload(ckpt_dir_)));
      return;
    }
    case MsgType::UpdateCkptDir: {
      auto dir = protocol::parse_cstring_payload(m.payload);
      if (!dir || dir->empty()) {
        kill_conn(c, "UPDATE_CKPT_DIR without a path");
        return;
      }
      workers_.set_state(&w, h.state);
      ckpt_dir_ = absolute(*dir, cwd());
      return;
    }
    case MsgType::CkptFilename:
    case MsgType::UniqueCkptFilename:
      workers_.set_state(&w, h.state);
      on_ckpt_filename(c, w, m);
      return;
    case MsgType::Barrier:
      workers_.set_state(&w, h.state);
      on_barrier(c, w, m);
      return;
    case MsgType::WorkerResuming:
      workers_.set_state(&w, h.state);
      on_worker_resuming(w, prev);
      return;
    default:
      kill_conn(c, std::string("unexpected message ") + protocol::msg_type_name(h.type));
      return;
  }
}

void Core::on_barrier(Connection& c, Worker& w, const Message& m) {
  std::string_view name = m.header.name_view();
  if (name.size() >= protocol::kNameSize) {
    kill_conn(c, "barrier name is not NUL-terminated");
    return;
  }
  if (!pending_barrier_.empty() && name != pending_barrier_) {
    log_.warn("barrier mismatch: worker " + w.identity.text() + " reached '" + std::string(name) + "' while '" +
              pending_barrier_ + "' is pending");
    kill_conn(c, "barrier mismatch");
    return;
  }
  if (w.at_barrier) return;  // the same barrier again: a duplicate
  w.last_barrier = std::string(name);
  w.at_barrier = true;
  if (pending_barrier_.empty()) pending_barrier_ = std::string(name);
  arrived_++;
  try_release_barrier();
}

void Core::try_release_barrier() {
  if (pending_barrier_.empty() || arrived_ < workers_.size() || workers_.size() == 0) return;
  assert(arrived_ == workers_.size());
  if (restart_quorum_ > 0 && int64_t(workers_.size()) != restart_quorum_) return;  // wait for the rest
  std::string name = std::move(pending_barrier_);
  pending_barrier_.clear();
  arrived_ = 0;
  kvdb_.log_event("Barrier-" + name);
  barriers_this_round_++;
  Header r = hdr(MsgType::BarrierReleased);
  r.compGroup = comp_id_;
  r.numPeers = workers_.size();
  r.exitAfterCkpt = exit_after_ckpt();
  std::string bytes = protocol::encode_message(r, protocol::make_cstring_payload(name));
  for (Worker* w = workers_.head(); w; w = w->next) w->at_barrier = false;
  broadcast(bytes);
}

void Core::broadcast(const std::string& bytes) {
  // send() never frees a connection (deaths are settled later), so walking
  // the intrusive list while sending is safe.
  for (Worker* w = workers_.head(); w; w = w->next) send(*w->conn, bytes);
}

void Core::on_ckpt_filename(Connection& c, Worker& w, const Message& m) {
  auto f = protocol::parse_ckpt_filename_payload(m.payload);
  if (!f || f->path.empty() || !(f->shell.empty() || f->shell == "ssh" || f->shell == "rsh")) {
    kill_conn(c, "malformed checkpoint filename message");
    return;
  }
  if (!ckpt_in_progress_ || !w.owes_filename) {
    log_.warn("ignoring checkpoint filename outside a checkpoint from " + w.identity.text());
    return;
  }
  w.owes_filename = false;
  assert(owing_ > 0);
  owing_--;
  if (m.header.msg_type() == MsgType::UniqueCkptFilename) unique_names_ = true;
  images_.push_back(ScriptImage{f->path, f->shell, f->hostname});
  maybe_complete_checkpoint();
}

void Core::on_worker_resuming(Worker& w, uint32_t prev_state) {
  w.last_barrier.clear();
  w.at_barrier = false;
  if (!computation_running()) return;
  release_held();
  if (prev_state == kState(WorkerState::Restarting) && restarting_) {
    restarting_ = false;
    restart_quorum_ = -1;
    kvdb_.log_event("Restart-Complete");
    write_kv_json();
    Event e{EventType::RestartCompleted};
    e.comp_id = comp_id_.text();
    e.generation = comp_id_.generation;
    e.workers = workers_.size();
    e.barriers = barriers_this_round_;
    e.duration_ms = double(now_ms() - restart_started_ms_);
    emit(std::move(e));
    log_.note("restart complete: " + std::to_string(workers_.size()) + " workers running");
  }
  arm_interval();
}

void Core::on_kvdb(Connection& c, const Message& m) {
  const Header& h = m.header;
  Header r = hdr(MsgType::KvdbResponse);
  std::string_view db = h.name_view();
  auto kv = protocol::parse_kvdb_payload(h, m.payload);
  if (!kv || db.size() >= protocol::kNameSize) {
    r.kvdb = int32_t(protocol::KvdbResult::InvalidRequest);
    send(c, protocol::encode_message(r));
    return;
  }
  Kvdb::Result res = kvdb_.apply(h.kvdb, std::string(db), kv->key, kv->value);
  r.kvdb = int32_t(res.code);
  if (res.has_value && res.value.size() < protocol::kMaxExtraBytes) {
    std::string payload = protocol::make_cstring_payload(res.value);
    r.valLen = uint32_t(payload.size());
    send(c, protocol::encode_message(r, payload));
  } else {
    send(c, protocol::encode_message(r));
  }
}

void Core::worker_left(Connection& c) {
  Worker* w = c.worker.get();
  assert(w);
  Event e{EventType::WorkerLeft};
  e.worker = info(*w);
  workers_.remove(w);
  vpids_.release(w->vpid);
  if (w->at_barrier) {
    assert(arrived_ > 0);
    arrived_--;
  }
  if (w->owes_filename) {
    assert(owing_ > 0);
    owing_--;
  }
  e.comp_id = comp_id_.text();
  e.generation = comp_id_.generation;
  e.workers = workers_.size();
  emit(std::move(e));
  if (workers_.size() == 0) {
    pending_barrier_.clear();
    arrived_ = 0;
    if (ckpt_in_progress_) {
      if (!images_.empty() && owing_ == 0) complete_checkpoint();
      else abort_checkpoint("every worker disconnected");
    }
    kill_in_progress_ = false;
    interval_deadline_ = 0;
    if (opts_.exit_on_last && !quitting_) {
      log_.note("last client exited, shutting down..");
      quit("last client exited");
      return;
    }
    std::string stale = shared_area_path();
    if (!stale.empty()) {
      FileJob j;
      j.kind = FileJob::Kind::Unlink;
      j.path = stale;
      writer_.submit(std::move(j));
    }
    // Hellos parked during the checkpoint can be answered now.
    release_held();
    return;
  }
  // A worker that owes nothing more may have been the last one missing.
  if (ckpt_in_progress_) maybe_complete_checkpoint();
  try_release_barrier();
}

// ---------------------------------------------------------------------------
// User commands (spec §3.5)

CommandReply Core::base_reply(CoordCmd cmd) const {
  CommandReply r;
  r.command = cmd;
  r.status = CmdStatus::Success;
  return r;
}

void Core::on_user_command(Connection& c, const Message& m) {
  c.reading = true;  // keep watching, to notice the client leaving
  uint64_t id = c.id;
  CoordCmd cmd = CoordCmd(m.header.coordCmd);
  auto reply_on_socket = [this, id](const CommandReply& r) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second->dead) return;  // client gone: nothing to do
    Connection& conn = *it->second;
    conn.waiting_blocking = false;
    Header h = hdr(MsgType::UserCmdResult);
    h.coordCmd = uint32_t(r.command);
    h.coordCmdStatus = int32_t(r.status);
    h.numPeers = r.num_peers;
    h.isRunning = r.running ? 1 : 0;
    h.theCheckpointInterval = r.interval;
    std::string payload;
    if (r.command == CoordCmd::List && r.status == CmdStatus::Success) {
      // With a terminating NUL (W-BUG-14); dmtcp_command prints the same.
      payload = r.text;
      payload.push_back('\0');
    }
    conn.close_after_flush = true;
    send(conn, protocol::encode_message(h, payload));
  };
  if (cmd == CoordCmd::BlockingCheckpoint) c.waiting_blocking = true;
  // QUIT gets no reply on the wire (dmtcp_command does not read one).
  command(cmd, m.header.theCheckpointInterval,
          cmd == CoordCmd::Quit ? std::function<void(const CommandReply&)>() : reply_on_socket);
  if (cmd == CoordCmd::Quit) {
    // No reply to QUIT (the client does not read one).
    kill_conn(c, "done");
  }
  // Waiters are keyed by connection id so a vanished client is skipped.
  if (cmd == CoordCmd::BlockingCheckpoint && !waiters_.empty() && waiters_.back().conn_id == 0 && c.waiting_blocking)
    waiters_.back().conn_id = id;
}

void Core::command(CoordCmd cmd, int32_t interval, std::function<void(const CommandReply&)> done) {
  CommandReply r = base_reply(cmd);
  switch (cmd) {
    case CoordCmd::Status:
      r.num_peers = workers_.size();
      r.running = computation_running();
      r.interval = int32_t(interval_);
      break;
    case CoordCmd::List:
      r.text = list_text();
      break;
    case CoordCmd::Checkpoint:
      if (start_checkpoint()) r.num_peers = workers_.size();
      else r.status = CmdStatus::NotRunning;
      break;
    case CoordCmd::BlockingCheckpoint:
      if (start_checkpoint()) {
        waiters_.push_back(Waiter{0, std::move(done)});
        return;  // answered at completion
      }
      r.status = CmdStatus::NotRunning;
      break;
    case CoordCmd::KillAfterCheckpoint:
      kill_after_once_ = true;
      if (start_checkpoint()) {
        r.num_peers = workers_.size();
      } else {
        // A refused -kc must not turn the next ordinary checkpoint into a
        // kill (W-BUG-3).
        kill_after_once_ = false;
        r.status = CmdStatus::NotRunning;
      }
      break;
    case CoordCmd::UpdateInterval:
      // -1 is the protocol's "not given" value: leave the interval alone
      // instead of storing 4294967295 (W-BUG-4).
      if (interval >= 0) {
        interval_ = default_interval_ = uint32_t(interval);
        arm_interval();
      }
      r.interval = int32_t(interval_);
      break;
    case CoordCmd::Kill:
      kill_all();
      break;
    case CoordCmd::Quit:
      if (done) done(r);
      quit("quit requested");
      return;
    case CoordCmd::Help:
      log_.note(
          "COMMANDS:\n  l: List connected nodes\n  s: Print status message\n  c: Checkpoint all nodes\n"
          "  ck: kc: \n     Checkpoint and then kill all nodes\n  i: Print current checkpoint interval\n"
          "     (To change checkpoint interval, use dmtcp_command)\n  k: Kill all nodes\n"
          "  q: Kill all nodes and quit\n  ?: Show this message\n");
      break;
    default:
      log_.warn("unhandled user command: command=" + std::string(protocol::coord_cmd_name(uint32_t(cmd))));
      r.status = CmdStatus::InvalidCommand;
      break;
  }
  if (done) done(r);
}

bool Core::computation_running() const {
  if (workers_.size() == 0 || !workers_.unanimous()) return false;
  uint32_t min = workers_.min_state();
  if (min == kState(WorkerState::Restarting) && restart_quorum_ > 0 && int64_t(workers_.size()) < restart_quorum_)
    return false;
  return min == kState(WorkerState::Running);
}

bool Core::start_checkpoint() {
  if (ckpt_in_progress_ || quitting_ || !computation_running()) return false;
  ckpt_wall_ = wall_now();
  ckpt_started_ms_ = now_ms();
  kvdb_.log_event("Ckpt-Start");
  images_.clear();
  unique_names_ = false;
  restart_quorum_ = -1;
  comp_id_.generation++;
  ckpt_in_progress_ = true;
  ckpt_seq_++;
  barriers_this_round_ = 0;
  pending_barrier_.clear();
  arrived_ = 0;
  owing_ = workers_.size();
  log_.note("starting checkpoint; incrementing generation; suspending all nodes: numPeers=" +
            std::to_string(workers_.size()) + " generation=" + std::to_string(comp_id_.generation));
  Header d = hdr(MsgType::DoCheckpoint);
  d.compGroup = comp_id_;
  d.numPeers = workers_.size();
  d.exitAfterCkpt = exit_after_ckpt();
  std::string bytes = protocol::encode_message(d);
  for (Worker* w = workers_.head(); w; w = w->next) {
    w->owes_filename = true;
    w->at_barrier = false;
  }
  broadcast(bytes);
  Event e{EventType::CheckpointStarted};
  e.comp_id = comp_id_.text();
  e.generation = comp_id_.generation;
  e.workers = workers_.size();
  emit(std::move(e));
  return true;
}

void Core::maybe_complete_checkpoint() {
  if (ckpt_in_progress_ && owing_ == 0 && !images_.empty()) complete_checkpoint();
}

void Core::complete_checkpoint() {
  assert(ckpt_in_progress_);
  ckpt_in_progress_ = false;
  checkpoints_completed_++;
  kvdb_.log_event("Ckpt-Complete");
  uint64_t seq = ckpt_seq_;

  ScriptInput in;
  in.comp_id = comp_id_.text();
  in.generation = comp_id_.generation;
  in.unique_names = unique_names_;
  in.coord_host = host_;
  in.coord_port = port_;
  in.interval = int32_t(interval_);
  in.ckpt_time = ckpt_wall_;
  in.dmtcp_bin_dir = opts_.dmtcp_bin_dir;
  in.images = images_;
  std::string name = restart_script_name(in.comp_id, in.generation, in.unique_names);
  std::string script_path = ckpt_dir_ + "/" + name;

  Event e{EventType::CheckpointCompleted};
  e.comp_id = in.comp_id;
  e.generation = in.generation;
  e.workers = uint32_t(images_.size());
  e.barriers = barriers_this_round_;
  e.duration_ms = double(now_ms() - ckpt_started_ms_);
  for (const auto& im : images_) e.images.push_back(im.path);
  e.restart_script = script_path;
  log_.note("checkpoint complete: generation=" + std::to_string(in.generation) + " images=" +
            std::to_string(images_.size()) + " script=" + script_path);

  // Blocking-checkpoint clients are answered once the script is on disk, so
  // `dmtcp_command -bc && ./dmtcp_restart_script.sh` works.
  CommandReply r = base_reply(CoordCmd::BlockingCheckpoint);
  r.num_peers = workers_.size();
  waiters_for_files_[seq] = std::move(waiters_);
  waiters_.clear();
  kill_after_once_ = false;

  FileJob job;
  job.path = script_path;
  job.content = render_restart_script(in);
  job.mode = 0744;  // rwxr--r--, as the original under umask 022
  job.symlink_path = ckpt_dir_ + "/" + kRestartScriptLink;
  job.symlink_target = name;
  EventLoop* loop = &loop_;
  AsyncLog* log = &log_;
  job.done = [loop, log, this, seq](const std::string& err) {
    if (!err.empty()) log->warn("could not write the restart script: " + err);
    loop->post([this, seq] { checkpoint_files_written(seq); });
  };
  writer_.submit(std::move(job));
  write_kv_json();
  emit(std::move(e));
  // Parked hellos are answered once the workers have resumed (they would be
  // refused while the others are still CHECKPOINTED), see on_worker_resuming.
  if (workers_.size() == 0) release_held();
}

void Core::checkpoint_files_written(uint64_t seq) {
  auto it = waiters_for_files_.find(seq);
  if (it == waiters_for_files_.end()) return;
  std::vector<Waiter> ws = std::move(it->second);
  waiters_for_files_.erase(it);
  CommandReply r = base_reply(CoordCmd::BlockingCheckpoint);
  r.num_peers = workers_.size();
  for (auto& w : ws)
    if (w.conn_id != UINT64_MAX && w.fn) w.fn(r);
  settle();
}

void Core::abort_checkpoint(const std::string& why) {
  if (!ckpt_in_progress_) return;
  log_.warn("checkpoint of generation " + std::to_string(comp_id_.generation) + " abandoned: " + why);
  ckpt_in_progress_ = false;
  owing_ = 0;
  for (Worker* w = workers_.head(); w; w = w->next) w->owes_filename = false;
  kill_after_once_ = false;
  CommandReply r = base_reply(CoordCmd::BlockingCheckpoint);
  r.status = CmdStatus::NotRunning;
  answer_waiters(r);
  release_held();
}

void Core::answer_waiters(const CommandReply& r) {
  std::vector<Waiter> ws = std::move(waiters_);
  waiters_.clear();
  for (auto& w : ws)
    if (w.conn_id != UINT64_MAX && w.fn) w.fn(r);
}

void Core::release_held() {
  if (held_ids_.empty()) return;
  std::vector<Connection*> held;
  for (uint64_t id : held_ids_) {
    auto it = conns_.find(id);
    if (it != conns_.end() && !it->second->dead && it->second->kind == ConnKind::Held) held.push_back(it->second.get());
  }
  held_ids_.clear();
  for (Connection* c : held) {
    c->kind = ConnKind::Handshake;
    Message m = std::move(c->held);
    on_first_message(*c, m);
  }
}

void Core::kill_all() {
  log_.note("Killing all connected peers...");
  Header k = hdr(MsgType::KillPeer);
  k.compGroup = comp_id_;
  k.numPeers = workers_.size();
  pending_barrier_.clear();
  arrived_ = 0;
  for (Worker* w = workers_.head(); w; w = w->next) w->at_barrier = false;
  broadcast(protocol::encode_message(k));
  if (workers_.size() > 0) kill_in_progress_ = true;
  Event e{EventType::Kill};
  e.comp_id = comp_id_.text();
  e.workers = workers_.size();
  emit(std::move(e));
}

void Core::quit(const std::string& reason) {
  if (quitting_) return;
  log_.note("killing all connected peers and quitting ...");
  Header k = hdr(MsgType::KillPeer);
  k.compGroup = comp_id_;
  k.numPeers = workers_.size();
  broadcast(protocol::encode_message(k));
  quitting_ = true;
  loop_.remove(listen_fd_);
  kvdb_.log_event("Exiting");
  write_kv_json();
  std::string stale = shared_area_path();
  if (!stale.empty()) {
    FileJob j;
    j.kind = FileJob::Kind::Unlink;
    j.path = stale;
    writer_.submit(std::move(j));
  }
  // Stop reading; give queued KILL_PEER messages a moment to drain.
  for (auto& [id, c] : conns_) {
    if (c->dead) continue;
    c->reading = false;
    c->close_after_flush = true;
    if (c->queued == 0) kill_conn(*c, "done");
    else update_watch(*c);
  }
  quit_flush_deadline_ = now_ms() + kQuitFlushMs;
  Event e{EventType::Quit};
  e.reason = reason;
  emit(std::move(e));
  exit_reason_ = reason;
}

void Core::finish(int code, const std::string& reason) {
  if (finished_) return;
  finished_ = true;
  exit_code_ = code;
  exit_reason_ = reason;
}

void Core::abandon_waiters() {
  CommandReply r = base_reply(CoordCmd::BlockingCheckpoint);
  r.status = CmdStatus::NotRunning;
  answer_waiters(r);
  for (auto& [seq, ws] : waiters_for_files_) {
    // The files were written (the writer is drained before this runs) but
    // the loop ended before the completion task ran: that is a success.
    CommandReply ok = base_reply(CoordCmd::BlockingCheckpoint);
    ok.num_peers = workers_.size();
    for (auto& w : ws)
      if (w.conn_id != UINT64_MAX && w.fn) w.fn(ok);
  }
  waiters_for_files_.clear();
}

void Core::stop() {
  if (!quitting_) exit_reason_ = "stopped";
  finish(exit_code_, exit_reason_);
}

// ---------------------------------------------------------------------------
// Timers and housekeeping (spec §5)

void Core::arm_interval() {
  if (workers_.size() == 0 || interval_ == 0) {
    // Interval 0 disarms a pending deadline (W-BUG-5).
    interval_deadline_ = 0;
    return;
  }
  interval_deadline_ = now_ms() + uint64_t(interval_) * 1000;
}

int Core::after_batch() {
  settle();
  // Connections whose read budget ran out in the batch (edge-triggered epoll
  // will not report them again until more data arrives).
  if (!unread_.empty()) {
    std::vector<uint64_t> again;
    again.swap(unread_);
    for (uint64_t id : again) {
      auto it = conns_.find(id);
      // Whether the peer has also closed is not known here: read to the end.
      if (it != conns_.end() && !it->second->dead) on_conn_io(*it->second, EPOLLIN | EPOLLRDHUP);
    }
    settle();
  }
  uint64_t now = now_ms();

  while (hs_head_ && hs_head_->deadline_ms <= now) {
    Connection* c = hs_head_;
    handshake_unlink(*c);
    kill_conn(*c, c->in.mid_message() ? "incomplete first message" : "no message received");
  }
  if (timeout_deadline_ && now >= timeout_deadline_ && !finished_) {
    log_.error("--timeout timed out: timeout=" + std::to_string(opts_.timeout));
    finish(1, "timeout");
  }
  if (workers_.size() > 0) {
    stale_deadline_ = 0;
  } else if (stale_deadline_ == 0 && uint64_t(opts_.stale_timeout) < kNeverSeconds) {
    stale_deadline_ = now + uint64_t(opts_.stale_timeout) * 1000;
    log_.note("No active clients; starting stale timeout: timeout=" + std::to_string(opts_.stale_timeout));
  }
  if (stale_deadline_ && now >= stale_deadline_ && !finished_) {
    log_.error("no workers for " + std::to_string(opts_.stale_timeout) + " seconds (--stale-timeout); exiting");
    finish(1, "stale-timeout");
  }
  if (interval_deadline_ && now >= interval_deadline_ && computation_running() && !ckpt_in_progress_ && !quitting_) {
    interval_deadline_ = 0;
    start_checkpoint();
  }
  if (quitting_ && !finished_) {
    bool drained = true;
    for (auto& [id, c] : conns_)
      if (!c->dead && c->queued) drained = false;
    if (drained || now >= quit_flush_deadline_) finish(0, exit_reason_);
  }
  settle();
  for (auto& c : graveyard_) {
    close(c->fd);
    c->fd = -1;
  }
  graveyard_.clear();
  if (finished_) return 0;

  uint64_t next = UINT64_MAX;
  auto consider = [&](uint64_t t) {
    if (t && t < next) next = t;
  };
  if (hs_head_) consider(hs_head_->deadline_ms);
  consider(timeout_deadline_);
  consider(stale_deadline_);
  if (quitting_) consider(quit_flush_deadline_);
  // The interval deadline only matters once the computation can checkpoint;
  // state changes arrive as events, which end the wait anyway.
  if (interval_deadline_ && computation_running() && !ckpt_in_progress_) consider(interval_deadline_);
  if (!unread_.empty()) return 0;
  if (next == UINT64_MAX) return -1;
  return next <= now ? 0 : int(std::min<uint64_t>(next - now, 60000));
}

// ---------------------------------------------------------------------------
// Status, list, files, events

std::string Core::list_text() const {
  std::string s = "Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n";
  for (Worker* w = workers_.head(); w; w = w->next) {
    s += std::to_string(w->number) + ", " + w->progname + "[" + std::to_string(w->identity.pid) + ":" +
         std::to_string(w->real_pid) + "]@" + w->hostname + ", " + w->identity.text() + ", WorkerState::" +
         protocol::worker_state_name(w->state) + ", " + w->last_barrier + "\n";
  }
  s += "\n";
  return s;
}

WorkerInfo Core::info(const Worker& w) const {
  WorkerInfo i;
  i.number = w.number;
  i.progname = w.progname;
  i.hostname = w.hostname;
  i.upid = w.identity.text();
  i.virtual_pid = w.identity.pid;
  i.real_pid = w.real_pid;
  i.state = protocol::worker_state_name(w.state);
  i.barrier = w.last_barrier;
  i.ip = w.conn ? ip_text(w.conn->peer_ip) : "";
  return i;
}

Status Core::status() const {
  Status s;
  s.port = port_;
  s.host = host_;
  s.ip = ip_text(host_ip_);
  s.num_peers = workers_.size();
  s.running = computation_running();
  s.interval = interval_;
  s.comp_id = comp_id_.text();
  s.generation = comp_id_.generation;
  s.checkpoint_in_progress = ckpt_in_progress_;
  s.kill_in_progress = kill_in_progress_;
  s.ckpt_dir = ckpt_dir_;
  s.checkpoints_completed = checkpoints_completed_;
  s.workers.reserve(workers_.size());
  for (Worker* w = workers_.head(); w; w = w->next) s.workers.push_back(info(*w));
  return s;
}

std::string Core::shared_area_path() const {
  if (comp_id_.is_null() || coord_timestamp_ == 0) return "";
  std::string base = opts_.tmp_dir;
  if (base.empty()) {
    const char* t = getenv("DMTCP_TMPDIR");
    if (!t || !*t) t = getenv("TMPDIR");
    base = t && *t ? t : "/tmp";
  }
  char ts[32];
  std::snprintf(ts, sizeof ts, "%llx", static_cast<unsigned long long>(coord_timestamp_));
  return base + "/dmtcp-" + user_name() + "@" + host_ + "/dmtcpSharedArea." + comp_id_.text() + "." + ts;
}

void Core::write_kv_json() {
  if (!opts_.write_kv_data) return;
  FileJob j;
  j.path = opts_.kv_data_dir + "/dmtcp_coordinator_db-" + comp_id_.text() + "-" + local_time_ms(realtime_ms()) +
           ".json";
  j.content = kvdb_.to_json();
  j.mode = 0644;
  AsyncLog* log = &log_;
  j.done = [log](const std::string& err) {
    if (!err.empty()) log->warn("could not write the KV data: " + err);
  };
  writer_.submit(std::move(j));
}

void Core::emit(Event e) {
  if (!event_cb_) return;
  try {
    event_cb_(e);
  } catch (const std::exception& ex) {
    log_.error(std::string("event callback failed: ") + ex.what());
  } catch (...) {
    log_.error("event callback failed");
  }
}

}  // namespace ckpt::coordinator::detail
