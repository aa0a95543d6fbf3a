// Binding of the coordinator core (native/coordinator) for src/coordinator.ts.
//
//   exports.coordinator = {
//     Coordinator: class {
//       constructor(options, onDelivery)   // options validated in TS
//       start()            -> Promise<number>   (the port; bind errors reject with a code)
//       stop()             -> Promise<void>     (closes every connection, joins the loop)
//       command(cmd, interval) -> Promise<{command, status, numPeers, running, interval, text}>
//       status()           -> object            (a snapshot; cheap)
//       ref() / unref()    // whether a running coordinator keeps Node alive
//     }
//   }
//
// Threading. The coordinator runs its own epoll thread. Everything it reports
// (events, log lines, replies to command()) travels to JS through ONE
// Napi::ThreadSafeFunction per coordinator. The loop thread only ever calls
// NonBlockingCall() on it (the queue is unbounded, so that never blocks the
// loop). If a call returns napi_closing, the environment is shutting down:
// that is final, we stop calling and drop what we had. The Release() that
// balances the TSFN's creation is the very last use: it happens on the JS
// thread when the loop's final `Exit` event has been delivered, after which
// the loop thread is finished and can make no further calls.
//
// Teardown. An environment cleanup hook stops the coordinator (closing its
// sockets and epoll fd and joining the thread) when Node exits while one is
// still running, so process.exit() with a live coordinator is clean. The JS
// object is kept alive by a reference while the loop runs, so it cannot be
// collected under a running thread.
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "addon/promise_worker.h"
#include "addon/registry.h"
#include "coordinator/coordinator.h"

namespace ckpt::addon {
namespace {

namespace coord = ckpt::coordinator;

// One item for the JS thread.
struct Delivery {
  enum class Kind { Event, Log, Reply } kind = Kind::Event;
  coord::Event event{coord::EventType::Exit};
  coord::LogLevel level = coord::LogLevel::Note;
  std::string log;
  uint64_t request = 0;
  coord::CommandReply reply;
};

class CoordinatorWrap;
void CallJs(Napi::Env env, Napi::Function callback, CoordinatorWrap* self, Delivery* d);
using Tsfn = Napi::TypedThreadSafeFunction<CoordinatorWrap, Delivery, CallJs>;

const char* event_name(coord::EventType t) {
  switch (t) {
    case coord::EventType::WorkerJoined: return "workerJoined";
    case coord::EventType::WorkerLeft: return "workerLeft";
    case coord::EventType::CheckpointStarted: return "checkpointStarted";
    case coord::EventType::CheckpointCompleted: return "checkpointCompleted";
    case coord::EventType::RestartCompleted: return "restartCompleted";
    case coord::EventType::Kill: return "kill";
    case coord::EventType::Quit: return "quit";
    case coord::EventType::Exit: return "exit";
  }
  return "unknown";
}

const char* level_name(coord::LogLevel l) {
  switch (l) {
    case coord::LogLevel::Error: return "error";
    case coord::LogLevel::Warning: return "warning";
    case coord::LogLevel::Note: return "note";
  }
  return "note";
}

Napi::Object worker_to_js(Napi::Env env, const coord::WorkerInfo& w) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("number", Napi::Number::New(env, static_cast<double>(w.number)));
  o.Set("progname", w.progname);
  o.Set("hostname", w.hostname);
  o.Set("upid", w.upid);
  o.Set("virtualPid", w.virtual_pid);
  o.Set("realPid", w.real_pid);
  o.Set("state", w.state);
  o.Set("barrier", w.barrier);
  o.Set("ip", w.ip);
  return o;
}

Napi::Object event_to_js(Napi::Env env, const coord::Event& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", event_name(e.type));
  switch (e.type) {
    case coord::EventType::WorkerJoined:
    case coord::EventType::WorkerLeft:
      o.Set("worker", worker_to_js(env, e.worker));
      break;
    default:
      break;
  }
  o.Set("compId", e.comp_id);
  o.Set("generation", e.generation);
  o.Set("workers", e.workers);
  o.Set("barriers", e.barriers);
  o.Set("durationMs", e.duration_ms);
  Napi::Array images = Napi::Array::New(env, e.images.size());
  for (uint32_t i = 0; i < e.images.size(); i++) images.Set(i, e.images[i]);
  o.Set("images", images);
  o.Set("restartScript", e.restart_script);
  o.Set("exitCode", e.exit_code);
  o.Set("reason", e.reason);
  return o;
}

Napi::Object reply_to_js(Napi::Env env, const coord::CommandReply& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("command", protocol::coord_cmd_name(static_cast<uint32_t>(r.command)));
  o.Set("status", static_cast<int32_t>(r.status));
  o.Set("numPeers", r.num_peers);
  o.Set("running", r.running);
  o.Set("interval", r.interval);
  o.Set("text", r.text);
  return o;
}

Napi::Object status_to_js(Napi::Env env, const coord::Status& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("port", s.port);
  o.Set("host", s.host);
  o.Set("ip", s.ip);
  o.Set("numPeers", s.num_peers);
  o.Set("running", s.running);
  o.Set("interval", s.interval);
  o.Set("compId", s.comp_id);
  o.Set("generation", s.generation);
  o.Set("checkpointInProgress", s.checkpoint_in_progress);
  o.Set("killInProgress", s.kill_in_progress);
  o.Set("ckptDir", s.ckpt_dir);
  o.Set("checkpointsCompleted", Napi::Number::New(env, static_cast<double>(s.checkpoints_completed)));
  Napi::Array workers = Napi::Array::New(env, s.workers.size());
  for (uint32_t i = 0; i < s.workers.size(); i++) workers.Set(i, worker_to_js(env, s.workers[i]));
  o.Set("workers", workers);
  return o;
}

// ----- last-line option guards (TS validates properly first) ------------------

std::string str_opt(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}
double num_opt(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}
bool bool_opt(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}
uint32_t u32_opt(Napi::Env env, const Napi::Object& o, const char* key, uint32_t fallback) {
  double d = num_opt(o, key, fallback);
  if (!(d >= 0 && d <= 4294967295.0)) {
    throw make_error(env, Errc::InvalidArgument, std::string("coordinator option ") + key + " is out of range");
  }
  return static_cast<uint32_t>(d);
}

class CoordinatorWrap : public Napi::ObjectWrap<CoordinatorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Coordinator",
                       {
                           InstanceMethod<&CoordinatorWrap::Start>("start"),
                           InstanceMethod<&CoordinatorWrap::Stop>("stop"),
                           InstanceMethod<&CoordinatorWrap::Command>("command"),
                           InstanceMethod<&CoordinatorWrap::GetStatus>("status"),
                           InstanceMethod<&CoordinatorWrap::Ref>("ref"),
                           InstanceMethod<&CoordinatorWrap::Unref>("unref"),
                       });
  }

  CoordinatorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CoordinatorWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw make_error(env, Errc::InvalidArgument, "new Coordinator(options, onDelivery) needs an object and a function");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    coord::Options opt;
    opt.port = static_cast<uint16_t>(u32_opt(env, o, "port", 7779) & 0xffff);
    opt.bind_address = str_opt(o, "bind");
    Napi::Value allow = o.Get("allow");
    if (allow.IsArray()) {
      Napi::Array a = allow.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Value v = a.Get(i);
        if (v.IsString()) opt.allow.push_back(v.As<Napi::String>().Utf8Value());
      }
    }
    opt.ckpt_dir = str_opt(o, "ckptDir");
    opt.tmp_dir = str_opt(o, "tmpDir");
    opt.interval = u32_opt(env, o, "interval", 0);
    opt.exit_on_last = bool_opt(o, "exitOnLast");
    opt.kill_after_ckpt = bool_opt(o, "killAfterCkpt");
    opt.timeout = u32_opt(env, o, "timeout", 0);
    opt.stale_timeout = u32_opt(env, o, "staleTimeout", 28800);
    opt.write_kv_data = bool_opt(o, "writeKvData");
    opt.kv_data_dir = str_opt(o, "kvDataDir");
    opt.dmtcp_bin_dir = str_opt(o, "dmtcpBinDir");
    opt.handshake_timeout_ms = u32_opt(env, o, "handshakeTimeoutMs", opt.handshake_timeout_ms);
    // Log lines go to JS ('log' events) rather than to the process's stderr:
    // a library must not write to its host's terminal. `logLevel` filters
    // them here so unwanted lines never cross threads.
    max_log_level_ = static_cast<int>(num_opt(o, "logLevel", -1));
    opt.quiet = max_log_level_ >= 2 ? 0 : max_log_level_ == 1 ? 1 : 2;
    opt.log = [this](coord::LogLevel level, const std::string& line) {
      if (static_cast<int>(level) > max_log_level_) return;
      auto d = std::make_unique<Delivery>();
      d->kind = Delivery::Kind::Log;
      d->level = level;
      d->log = line;
      Deliver(std::move(d));
    };
    core_ = std::make_unique<coord::Coordinator>(std::move(opt));
    core_->on_event([this](const coord::Event& e) {
      auto d = std::make_unique<Delivery>();
      d->kind = Delivery::Kind::Event;
      d->event = e;
      Deliver(std::move(d));
    });
    js_thread_ = std::this_thread::get_id();
    tsfn_ = Tsfn::New(env, info[1].As<Napi::Function>(), "ckpt.coordinator", 0, 1, this);
    // Not started yet: nothing to keep the process alive for.
    tsfn_.Unref(env);
    env_ = env;
    napi_add_env_cleanup_hook(env, &CoordinatorWrap::CleanupHook, this);
    hook_registered_ = true;
  }

  ~CoordinatorWrap() override {
    // Reached when the object is collected (never while running: see
    // self_ref_) or at environment teardown.
    if (hook_registered_) {
      napi_remove_env_cleanup_hook(env_, &CoordinatorWrap::CleanupHook, this);
      hook_registered_ = false;
    }
    // Collected only when not running (self_ref_), or at teardown after the
    // cleanup hook: either way the loop is over. Stop queueing first: the
    // core's log thread still flushes while core_ is destroyed.
    {
      std::lock_guard<std::mutex> lock(tsfn_mu_);
      tsfn_live_ = false;
    }
    Shutdown();
    core_.reset();
    if (!released_ && !hook_ran_ && !env_closed_) {
      released_ = true;
      tsfn_.Release();
    }
  }

  // Called from CallJs on the JS thread (or with env == nullptr when the TSFN
  // is being torn down and still holds items).
  void Receive(Napi::Env env, Napi::Function callback, std::unique_ptr<Delivery> d) {
    if (env == nullptr) return;  // teardown: just free the item
    Napi::HandleScope scope(env);
    switch (d->kind) {
      case Delivery::Kind::Reply: {
        auto it = pending_.find(d->request);
        if (it != pending_.end()) {
          Napi::Promise::Deferred deferred = it->second;
          pending_.erase(it);
          deferred.Resolve(reply_to_js(env, d->reply));
        }
        return;
      }
      case Delivery::Kind::Log: {
        Napi::Object o = Napi::Object::New(env);
        o.Set("type", "log");
        o.Set("level", level_name(d->level));
        o.Set("message", d->log);
        CallBack(callback, o);
        return;
      }
      case Delivery::Kind::Event: {
        bool last = d->event.type == coord::EventType::Exit;
        CallBack(callback, event_to_js(env, d->event));
        if (last) {
          // The loop has ended; nothing more comes from its thread. Join it
          // (off this thread), then release the TSFN (see MaybeFinish).
          exit_delivered_ = true;
          ended_ = true;
          // Requests the loop never got to are dropped with it: answer them.
          auto pending = std::move(pending_);
          pending_.clear();
          for (auto& [id, deferred] : pending) {
            coord::CommandReply r;
            r.status = protocol::CmdStatus::NotRunning;
            deferred.Resolve(reply_to_js(env, r));
          }
          if (!joined_) {
            JoinOffThread(env);
          } else {
            MaybeFinish();
          }
        }
        return;
      }
    }
  }

 private:
  void CallBack(Napi::Function& callback, Napi::Object arg) {
    try {
      callback.Call({arg});
    } catch (const Napi::Error& e) {
      // A throwing listener must not break delivery; surface it like Node
      // does for throwing event listeners.
      napi_fatal_exception(callback.Env(), e.Value());
    }
  }

  // Any thread (the loop thread, the log thread, a thread inside stop()).
  // Queues one item for the JS thread. The mutex makes "is the TSFN still
  // ours to call" and the call itself one step, so nothing can be queued
  // after the release or after the environment closed it.
  void Deliver(std::unique_ptr<Delivery> d) {
    std::lock_guard<std::mutex> lock(tsfn_mu_);
    if (!tsfn_live_) return;
    napi_status st = tsfn_.NonBlockingCall(d.get());
    if (st == napi_ok) {
      d.release();  // owned by the queue now; CallJs frees it
    } else if (st == napi_closing) {
      // The environment is shutting the TSFN down: final. Never call it
      // again, and never release it (it is no longer ours).
      tsfn_live_ = false;
      env_closed_ = true;
    }
  }

  // JS thread. Balances the TSFN's creation exactly once, as its last use.
  void ReleaseTsfn() {
    std::lock_guard<std::mutex> lock(tsfn_mu_);
    tsfn_live_ = false;
    // After the cleanup hook or napi_closing the environment owns its fate.
    if (released_ || env_closed_ || hook_ran_) return;
    released_ = true;
    tsfn_.Release();
  }

  // JS thread. Once the loop's final Exit event has been delivered AND its
  // thread has been joined, no thread can call the TSFN any more: release it
  // and let this object be collected.
  void MaybeFinish() {
    if (!exit_delivered_ || !joined_) return;
    ReleaseTsfn();
    if (!self_ref_.IsEmpty()) self_ref_.Reset();
  }

  // Stops the loop and joins its thread. Idempotent; serialised because the
  // JS stop() and the join after a self-ended loop may overlap.
  void Shutdown() {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    if (core_) core_->stop();
  }

  static void CleanupHook(void* arg) {
    auto* self = static_cast<CoordinatorWrap*>(arg);
    self->hook_registered_ = false;
    self->hook_ran_ = true;
    // Node is exiting with the coordinator possibly running: close its
    // sockets and epoll fd and join its thread. The loop's last events can no
    // longer reach JS; mark the TSFN closing first so the loop thread does not
    // queue into it while the environment tears it down.
    {
      std::lock_guard<std::mutex> lock(self->tsfn_mu_);
      self->tsfn_live_ = false;
    }
    self->Shutdown();
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto deferred = Napi::Promise::Deferred::New(env);
    if (started_) {
      deferred.Reject(make_error(env, Errc::State, "this coordinator was already started; create a new one").Value());
      return deferred.Promise();
    }
    started_ = true;
    // While the loop runs, the coordinator keeps Node alive (like a listening
    // server) unless unref() is called, and this object cannot be collected.
    self_ref_ = Napi::Persistent(Value());
    if (referenced_) tsfn_.Ref(env);
    // start() binds and resolves the host name (DNS may block): a worker thread.
    auto* worker = new PromiseWorker(
        env, [this] { core_->start(); }, [this](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, core_->port()); },
        "ckpt.coordinator.start");
    worker->OnFailure([this] {
      // Never started: there will be no Exit event to release the TSFN.
      ended_ = true;
      exit_delivered_ = true;
      joined_ = true;
      MaybeFinish();
    });
    worker->Keep(Value());
    worker->Queue();
    return worker->Promise();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    // stop() joins the loop thread, which may be finishing a batch: keep
    // that wait off the JS thread.
    return JoinOffThread(info.Env());
  }

  // Joins the loop thread on a worker thread, then marks it joined.
  Napi::Promise JoinOffThread(Napi::Env env) {
    auto* worker = new PromiseWorker(
        env, [this] { Shutdown(); },
        [this](Napi::Env e) -> Napi::Value {
          if (started_) {
            joined_ = true;
            MaybeFinish();
          }
          return e.Undefined();
        },
        "ckpt.coordinator.stop");
    worker->Keep(Value());
    worker->Queue();
    return worker->Promise();
  }

  Napi::Value Command(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto deferred = Napi::Promise::Deferred::New(env);
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      deferred.Reject(make_error(env, Errc::InvalidArgument, "command(cmd, interval) needs two numbers").Value());
      return deferred.Promise();
    }
    auto cmd = static_cast<protocol::CoordCmd>(info[0].As<Napi::Number>().Uint32Value());
    int32_t interval = info[1].As<Napi::Number>().Int32Value();
    if (!started_ || ended_ || released_) {
      coord::CommandReply r;
      r.command = cmd;
      r.status = protocol::CmdStatus::NotRunning;
      deferred.Resolve(reply_to_js(env, r));
      return deferred.Promise();
    }
    uint64_t id = ++next_request_;
    pending_.emplace(id, deferred);
    core_->command(cmd, interval, [this, id, env](const coord::CommandReply& r) {
      if (std::this_thread::get_id() == js_thread_) {
        // The loop had already ended: the core answers synchronously on the
        // calling (JS) thread.
        auto it = pending_.find(id);
        if (it != pending_.end()) {
          Napi::Promise::Deferred d = it->second;
          pending_.erase(it);
          d.Resolve(reply_to_js(env, r));
        }
        return;
      }
      auto d = std::make_unique<Delivery>();
      d->kind = Delivery::Kind::Reply;
      d->request = id;
      d->reply = r;
      Deliver(std::move(d));
    });
    return deferred.Promise();
  }

  Napi::Value GetStatus(const Napi::CallbackInfo& info) { return status_to_js(info.Env(), core_->status()); }

  Napi::Value Ref(const Napi::CallbackInfo& info) {
    referenced_ = true;
    if (started_ && !ended_ && !released_) tsfn_.Ref(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    referenced_ = false;
    if (!released_) tsfn_.Unref(info.Env());
    return info.Env().Undefined();
  }

  std::unique_ptr<coord::Coordinator> core_;
  Tsfn tsfn_;
  napi_env env_ = nullptr;
  std::thread::id js_thread_;
  int max_log_level_ = -1;
  std::mutex tsfn_mu_;      // guards tsfn_live_ / env_closed_ and every TSFN call
  bool tsfn_live_ = true;   // items may still be queued
  bool env_closed_ = false;  // the environment closed the TSFN (napi_closing)
  bool released_ = false;
  bool started_ = false;
  bool ended_ = false;
  bool referenced_ = true;
  bool exit_delivered_ = false;
  bool joined_ = false;
  std::mutex stop_mutex_;
  bool hook_registered_ = false;
  bool hook_ran_ = false;
  Napi::ObjectReference self_ref_;
  uint64_t next_request_ = 0;
  std::map<uint64_t, Napi::Promise::Deferred> pending_;
};

void CallJs(Napi::Env env, Napi::Function callback, CoordinatorWrap* self, Delivery* d) {
  std::unique_ptr<Delivery> owned(d);
  // env is null when the TSFN is torn down with items still queued; the
  // wrap may already be gone then, so only free the item.
  if (env == nullptr || self == nullptr || d == nullptr) return;
  self->Receive(env, callback, std::move(owned));
}

void InitCoordinator(Napi::Env env, Napi::Object exports) {
  Napi::Object ns = Napi::Object::New(env);
  ns.Set("Coordinator", CoordinatorWrap::Define(env));
  exports.Set("coordinator", ns);
}

}  // namespace

CKPT_ADDON_BINDING(coordinator, InitCoordinator);

}  // namespace ckpt::addon
