// Binding of the storage measurement (native/bench) for `ckpt bench`.
//
//   exports.bench = {
//     writeSequential({path, bytes, blockSize, direct, queueDepth, fsync, evict}) -> Promise<SeqResult>
//     readSequential({path, blockSize, direct, queueDepth})                      -> Promise<SeqResult>
//     fsyncLatencies(path, count, blockSize)                                     -> Promise<number[]>
//     probeDirect(dir)                                     -> Promise<{supported, reason}>
//   }
//   SeqResult = {bytes, seconds, fsyncSeconds, residentFraction}
//
// Options are validated in src/bench/storage.ts; the checks here are the last
// line only. Every call does blocking I/O for up to seconds, so it runs on a
// libuv worker thread (Napi::AsyncWorker) with its inputs copied into a plain
// struct first; the worker thread never touches napi_env.
#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "addon/promise_worker.h"
#include "addon/registry.h"
#include "bench/storage.h"

namespace ckpt::addon {
namespace {

Napi::Object to_js(Napi::Env env, const bench::SeqResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(r.bytes)));
  o.Set("seconds", Napi::Number::New(env, r.seconds));
  o.Set("fsyncSeconds", Napi::Number::New(env, r.fsync_seconds));
  o.Set("residentFraction", Napi::Number::New(env, r.resident_fraction));
  return o;
}

bench::SeqOptions seq_options(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Error(Errc::InvalidArgument, "options object expected");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value path = o.Get("path");
  if (!path.IsString()) throw Error(Errc::InvalidArgument, "options.path must be a string");
  bench::SeqOptions opt;
  opt.path = path.As<Napi::String>().Utf8Value();
  const double bytes = num_or(o, "bytes", 0);
  const double block = num_or(o, "blockSize", 1 << 20);
  const double depth = num_or(o, "queueDepth", 1);
  if (!(bytes >= 0) || !(block > 0) || !(depth >= 1)) throw Error(Errc::InvalidArgument, "invalid size options");
  opt.bytes = static_cast<uint64_t>(bytes);
  opt.block_size = static_cast<size_t>(block);
  opt.queue_depth = static_cast<unsigned>(depth);
  opt.direct = bool_or(o, "direct", false);
  opt.fsync = bool_or(o, "fsync", true);
  opt.evict = bool_or(o, "evict", true);
  return opt;
}

Napi::Value WriteSequential(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto opt = seq_options(info);
    auto result = std::make_shared<bench::SeqResult>();
    auto* w = new PromiseWorker(
        info.Env(), [opt, result] { *result = bench::write_sequential(opt); },
        [result](Napi::Env env) -> Napi::Value { return to_js(env, *result); });
    w->Queue();
    return w->Promise();
  });
}

Napi::Value ReadSequential(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto opt = seq_options(info);
    auto result = std::make_shared<bench::SeqResult>();
    auto* w = new PromiseWorker(
        info.Env(), [opt, result] { *result = bench::read_sequential(opt); },
        [result](Napi::Env env) -> Napi::Value { return to_js(env, *result); });
    w->Queue();
    return w->Promise();
  });
}

Napi::Value FsyncLatencies(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber())
      throw Error(Errc::InvalidArgument, "fsyncLatencies(path, count, blockSize) expected");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    const double count = info[1].As<Napi::Number>().DoubleValue();
    const double block = info[2].As<Napi::Number>().DoubleValue();
    if (!(count >= 1) || !(block >= 1)) throw Error(Errc::InvalidArgument, "count and blockSize must be positive");
    auto result = std::make_shared<std::vector<double>>();
    auto* w = new PromiseWorker(
        info.Env(),
        [path, count, block, result] {
          *result = bench::fsync_latencies(path, static_cast<unsigned>(count), static_cast<size_t>(block));
        },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Array a = Napi::Array::New(env, result->size());
          for (size_t i = 0; i < result->size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, (*result)[i]));
          return a;
        });
    w->Queue();
    return w->Promise();
  });
}

Napi::Value ProbeDirect(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) throw Error(Errc::InvalidArgument, "probeDirect(dir) expected");
    std::string dir = info[0].As<Napi::String>().Utf8Value();
    struct Out {
      bool ok = false;
      std::string why;
    };
    auto out = std::make_shared<Out>();
    auto* w = new PromiseWorker(
        info.Env(), [dir, out] { out->ok = bench::probe_direct(dir, &out->why); },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("supported", Napi::Boolean::New(env, out->ok));
          o.Set("reason", out->ok ? env.Null() : Napi::String::New(env, out->why));
          return o;
        });
    w->Queue();
    return w->Promise();
  });
}

void InitBench(Napi::Env env, Napi::Object exports) {
  Napi::Object b = Napi::Object::New(env);
  b.Set("writeSequential", Napi::Function::New(env, WriteSequential, "writeSequential"));
  b.Set("readSequential", Napi::Function::New(env, ReadSequential, "readSequential"));
  b.Set("fsyncLatencies", Napi::Function::New(env, FsyncLatencies, "fsyncLatencies"));
  b.Set("probeDirect", Napi::Function::New(env, ProbeDirect, "probeDirect"));
  exports.Set("bench", b);
}

}  // namespace
}  // namespace ckpt::addon

CKPT_ADDON_BINDING(bench, ckpt::addon::InitBench);
