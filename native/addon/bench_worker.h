// Shared by the benchmark bindings (bench.cc, bench_stream.cc): a promise-
// returning AsyncWorker for blocking measurements, and option helpers.
// Measurements block for up to seconds, so they never run on the JS thread;
// their inputs are copied into plain structs first and the worker thread
// never touches napi_env.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <utility>

#include "addon/registry.h"
#include "common/errors.h"

namespace ckpt::addon::bench_detail {

// Runs `work` on a worker thread; resolves the promise with `done(env)` or
// rejects it with a coded Error.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;

  PromiseWorker(Napi::Env env, Work work, Done done)
      : Napi::AsyncWorker(env, "ckpt.bench"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      work_();
    } catch (const Error& e) {
      errc_ = e.errc();
      SetError(e.what());
    } catch (const std::exception& e) {
      errc_ = Errc::Internal;
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(done_(Env())); }
  void OnError(const Napi::Error& e) override {
    deferred_.Reject(make_error(Env(), errc_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Errc errc_ = Errc::Internal;
};

inline double num_or(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}
inline bool bool_or(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw_js(info.Env(), e);
  }
}

}  // namespace ckpt::addon::bench_detail
