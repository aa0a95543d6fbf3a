# Native build for `npm install` (node-gyp via node-gyp-build).
#
# Everything that ships is built here: the Node addon (`ckpt.node`) and the
# native executables/libraries that the bin/ launchers and the engine use.
# Each area of native/ owns a .gypi with its own targets so that areas can be
# changed independently; this file only holds shared settings and the addon.
# Native unit tests, fuzzers and sanitizer builds use CMake instead
# (see CMakeLists.txt and docs/build.md).
{
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y", "-std=c++17"],
    "cflags": ["-fPIC", "-Wall", "-Wextra", "-Werror", "-Wno-missing-field-initializers"],
    "cflags_cc": ["-std=c++20", "-fexceptions", "-frtti"],
    "include_dirs": ["native"],
    "defines": ["_GNU_SOURCE", "CKPT_VERSION=\"<!(node -p \"require('./package.json').version\")\""]
  },
  "includes": [
    "native/common/common.gypi",
    "native/protocol/protocol.gypi",
    "native/coordinator/coordinator.gypi",
    "native/tools/dmtcp_coordinator/dmtcp_coordinator.gypi",
    "native/tools/dmtcp_command/dmtcp_command.gypi",
    "native/tools/loadgen/loadgen.gypi",
    "native/bench/bench.gypi",
    "native/dmtcp_shim/dmtcp_shim.gypi",
    "native/image/image.gypi",
    "native/engine/engine.gypi"
  ],
  "targets": [
    {
      "target_name": "ckpt",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/bench.cc",
        "native/addon/coordinator.cc",
        "native/addon/images.cc",
        "native/addon/protocol.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "dependencies": ["ckpt_common", "ckpt_bench", "ckpt_coordinator", "ckpt_protocol", "ckpt_index"]
    }
  ]
}
