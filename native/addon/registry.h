// Registration of addon bindings.
//
// Each binding file in native/addon/ exposes one native concept to
// TypeScript. It registers an init function with CKPT_ADDON_BINDING; the
// module init in addon.cc calls every registered function with the exports
// object. This keeps addon.cc free of per-concept edits.
#pragma once

#include <napi.h>

#include <exception>

#include "common/errors.h"

namespace ckpt::addon {

using InitFn = void (*)(Napi::Env env, Napi::Object exports);

// Adds `fn` to the list run at module init. Returns true (for static init).
bool register_binding(const char* name, InitFn fn);

// Module init: runs every registered binding.
Napi::Object Init(Napi::Env env, Napi::Object exports);

// Converts a ckpt::Error (or any std::exception) into a JS Error with a
// stable `code` property and throws it into JS.
[[noreturn]] void throw_js(Napi::Env env, const std::exception& e);

// Creates (without throwing) a JS Error object with `code`.
Napi::Error make_error(Napi::Env env, Errc errc, const std::string& message);

}  // namespace ckpt::addon

#define CKPT_ADDON_CONCAT2(a, b) a##b
#define CKPT_ADDON_CONCAT(a, b) CKPT_ADDON_CONCAT2(a, b)
// Usage, at namespace scope in a binding file:
//   CKPT_ADDON_BINDING(images, InitImages)
#define CKPT_ADDON_BINDING(name, fn)                               \
  static const bool CKPT_ADDON_CONCAT(ckpt_binding_registered_, name) \
      [[maybe_unused]] = ::ckpt::addon::register_binding(#name, fn)
