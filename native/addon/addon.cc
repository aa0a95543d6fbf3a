// Module entry point of ckpt.node. Bindings register themselves through
// CKPT_ADDON_BINDING (registry.h); this file only runs them.
#include <string>
#include <utility>
#include <vector>

#include "addon/registry.h"

namespace ckpt::addon {
namespace {

std::vector<std::pair<const char*, InitFn>>& bindings() {
  // Function-local static: safe regardless of static-initialisation order.
  static std::vector<std::pair<const char*, InitFn>> list;
  return list;
}

Napi::Value ErrorCodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
#define CKPT_ERR_EXPORT(name, code, msg) out.Set(code, Napi::String::New(env, msg));
  CKPT_ERRNO_MAP(CKPT_ERR_EXPORT)
#undef CKPT_ERR_EXPORT
  return out;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("_errorCodes", Napi::Function::New(env, ErrorCodes, "_errorCodes"));
  exports.Set("version", Napi::String::New(env, CKPT_VERSION));
  Napi::Array names = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& [name, fn] : bindings()) {
    fn(env, exports);
    names.Set(i++, Napi::String::New(env, name));
  }
  exports.Set("_bindings", names);
  return exports;
}

bool register_binding(const char* name, InitFn fn) {
  bindings().emplace_back(name, fn);
  return true;
}

Napi::Error make_error(Napi::Env env, Errc errc, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, errc_code(errc)));
  return err;
}

void throw_js(Napi::Env env, const std::exception& e) {
  if (auto* ce = dynamic_cast<const Error*>(&e)) throw make_error(env, ce->errc(), ce->what());
  throw make_error(env, Errc::Internal, e.what());
}

}  // namespace ckpt::addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return ckpt::addon::Init(env, exports);
}

NODE_API_MODULE(ckpt, InitModule)
