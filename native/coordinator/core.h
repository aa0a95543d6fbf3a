// The coordinator's protocol logic, running on the loop thread: accepting
// connections, framing, every flow of spec §3, timers (§5) and the
// computation state (§4). See coordinator.h for the threading contract.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "coordinator/computation.h"
#include "coordinator/connection.h"
#include "coordinator/coordinator.h"
#include "coordinator/event_loop.h"
#include "coordinator/file_writer.h"
#include "coordinator/kvdb.h"
#include "coordinator/log.h"
#include "coordinator/net.h"
#include "coordinator/restart_script.h"
#include "coordinator/vpid.h"

namespace ckpt::coordinator::detail {

class Core final : public IoHandler {
 public:
  Core(const Options& opts, Listener listener, EventLoop& loop, AsyncLog& log, FileWriter& writer);
  ~Core() override;

  // Listener readiness.
  void on_io(uint32_t events) override;
  void on_conn_io(Connection& c, uint32_t events);

  // Runs after every batch of events: frees dead connections, expires
  // handshakes, fires timers. Returns the epoll timeout for the next wait.
  int after_batch();
  bool finished() const { return finished_; }
  // A checkpoint or restart is running: workers wait on barriers, so the
  // loop trades a little CPU for latency (see Coordinator's run loop).
  bool in_round() const { return ckpt_in_progress_ || restarting_; }
  int exit_code() const { return exit_code_; }
  std::string exit_reason() const { return exit_reason_; }

  // API entry points (loop thread).
  void command(protocol::CoordCmd cmd, int32_t interval, std::function<void(const CommandReply&)> done);
  Status status() const;
  std::string list_text() const;
  void stop();
  // After the loop has ended: answers every blocking-checkpoint request still
  // waiting (status NotRunning), so API callers are never left hanging.
  void abandon_waiters();
  void on_event(std::function<void(const Event&)> cb) { event_cb_ = std::move(cb); }
  uint16_t port() const { return port_; }

  // Called (through a loop task) when the writer has finished the files of a
  // completed checkpoint.
  void checkpoint_files_written(uint64_t ckpt_seq);

 private:
  using Message = protocol::Message;
  using Header = protocol::Header;

  struct Waiter {
    uint64_t conn_id = 0;  // 0: API waiter
    std::function<void(const CommandReply&)> fn;
  };

  // ----- connections -----
  void accept_all();
  // Reads what the socket holds (until EAGAIN or EOF when until_eagain, else
  // until a short read); false when the read budget ran out first.
  bool read_from(Connection& c, bool until_eagain);
  void handle_message(Connection& c, Message& m);
  void send(Connection& c, std::string_view bytes);
  void flush(Connection& c);
  void update_watch(Connection& c);
  void kill_conn(Connection& c, const std::string& why);
  void settle();  // processes the consequences of connections marked dead
  void handshake_unlink(Connection& c);

  // ----- first message -----
  void on_first_message(Connection& c, Message& m);
  void on_new_worker(Connection& c, Message& m);
  void on_restart_worker(Connection& c, Message& m);
  void register_worker(Connection& c, const Message& m, int32_t vpid);
  void reject(Connection& c, protocol::MsgType type, int32_t vpid);
  void send_new_worker_accept(Connection& c, int32_t vpid);
  void reset_computation();

  // ----- worker messages -----
  void on_worker_message(Connection& c, Message& m);
  void on_barrier(Connection& c, Worker& w, const Message& m);
  void on_ckpt_filename(Connection& c, Worker& w, const Message& m);
  void on_worker_resuming(Worker& w, uint32_t prev_state);
  void on_kvdb(Connection& c, const Message& m);
  void worker_left(Connection& c);

  // ----- user commands -----
  void on_user_command(Connection& c, const Message& m);
  CommandReply base_reply(protocol::CoordCmd cmd) const;
  bool start_checkpoint();
  void try_release_barrier();
  void maybe_complete_checkpoint();
  void complete_checkpoint();
  void abort_checkpoint(const std::string& why);
  void answer_waiters(const CommandReply& r);
  void release_held();
  void kill_all();
  void quit(const std::string& reason);
  void finish(int code, const std::string& reason);

  // ----- helpers -----
  Header hdr(protocol::MsgType t) const;
  void broadcast(const std::string& bytes);
  bool computation_running() const;
  uint32_t exit_after_ckpt() const { return (opts_.kill_after_ckpt || kill_after_once_) ? 1 : 0; }
  uint32_t ip_for(const Connection& c) const;
  void arm_interval();
  void write_kv_json();
  void emit(Event e);
  WorkerInfo info(const Worker& w) const;
  std::string shared_area_path() const;
  uint64_t fresh_timestamp();
  time_t wall_now() const { return std::time(nullptr); }

  Options opts_;
  EventLoop& loop_;
  AsyncLog& log_;
  FileWriter& writer_;
  int listen_fd_;
  uint16_t port_;
  std::vector<Cidr> allow_;
  std::string host_;
  uint32_t host_ip_;
  protocol::UniquePid self_;
  int reserve_fd_ = -1;  // spare descriptor for shedding connections at EMFILE

  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::vector<uint64_t> held_ids_;  // connections parked in ConnKind::Held
  std::vector<Connection*> dying_;  // marked dead, consequences pending
  std::vector<std::unique_ptr<Connection>> graveyard_;  // freed after the batch
  std::vector<uint64_t> unread_;  // connection ids to read again after the batch
  Connection* hs_head_ = nullptr;
  Connection* hs_tail_ = nullptr;
  uint64_t next_conn_id_ = 1;
  size_t total_queued_ = 0;  // sum of Connection::queued over live connections
  uint64_t next_client_number_ = 1;

  // Computation (spec §3.17, §4).
  WorkerSet workers_;
  VpidAllocator vpids_;
  Kvdb kvdb_;
  protocol::UniquePid comp_id_;
  uint64_t coord_timestamp_ = 0;
  uint64_t last_timestamp_ = 0;
  int64_t restart_quorum_ = -1;
  bool kill_in_progress_ = false;
  bool kill_after_once_ = false;
  std::string ckpt_dir_;

  // Barrier (spec §3.7).
  std::string pending_barrier_;  // "" = none
  uint32_t arrived_ = 0;
  uint32_t barriers_this_round_ = 0;  // releases in the running checkpoint / restart

  // Checkpoint (spec §3.6).
  bool ckpt_in_progress_ = false;
  uint64_t ckpt_seq_ = 0;
  uint64_t ckpt_started_ms_ = 0;
  time_t ckpt_wall_ = 0;
  uint32_t owing_ = 0;  // connected workers that still owe a filename
  bool unique_names_ = false;
  std::vector<ScriptImage> images_;
  std::vector<Waiter> waiters_;  // blocking checkpoint clients of the running checkpoint
  std::unordered_map<uint64_t, std::vector<Waiter>> waiters_for_files_;  // completed, files pending
  uint64_t checkpoints_completed_ = 0;
  bool restarting_ = false;
  uint64_t restart_started_ms_ = 0;

  // Timers (spec §5).
  uint32_t interval_;
  uint32_t default_interval_;
  uint64_t interval_deadline_ = 0;  // 0 = disarmed
  uint64_t timeout_deadline_ = 0;
  uint64_t stale_deadline_ = 0;
  uint64_t quit_flush_deadline_ = 0;
  bool quitting_ = false;

  bool finished_ = false;
  int exit_code_ = 0;
  std::string exit_reason_;
  std::function<void(const Event&)> event_cb_;
};

}  // namespace ckpt::coordinator::detail
