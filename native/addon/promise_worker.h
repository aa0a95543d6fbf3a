// The one async-worker base of the addon's bindings, and small option helpers.
//
// Blocking native work (image indexing, verification, conversion, storage
// measurements) never runs on the JS thread. A binding copies its inputs into
// plain C++ values, then a PromiseWorker runs `work` on libuv's thread pool
// and settles a promise on the JS thread: resolved with `done(env)`, or
// rejected with an Error carrying the stable `code` of the ckpt::Error that
// `work` threw. `work` must never touch napi_env.
#pragma once

#include <napi.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "addon/registry.h"
#include "common/errors.h"

namespace ckpt::addon {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;

  PromiseWorker(Napi::Env env, Work work, Done done, const char* resource = "ckpt")
      : Napi::AsyncWorker(env, resource),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Keeps a JS object (e.g. a progress array the worker writes into) alive
  // until the worker is destroyed.
  void Keep(Napi::Value v) {
    if (v.IsObject()) keep_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }

  // Runs on the JS thread when `work` failed, before the promise is rejected
  // (e.g. to mark an object that never started as finished).
  void OnFailure(std::function<void()> fn) { on_failure_ = std::move(fn); }

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
  void OnOK() override {
    try {
      deferred_.Resolve(done_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    if (on_failure_) on_failure_();
    deferred_.Reject(make_error(Env(), errc_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Done done_;
  Errc errc_ = Errc::Internal;
  std::vector<Napi::ObjectReference> keep_;
  std::function<void()> on_failure_;
};

// Runs a binding body, turning ckpt::Error (and other C++ exceptions) into JS
// errors with a code.
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

// Option lookups; TypeScript has validated the values already, these only
// supply defaults for absent keys.
inline double num_or(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}
inline bool bool_or(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}
inline std::string str_or(const Napi::Object& o, const char* key, const std::string& fallback = "") {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

}  // namespace ckpt::addon
