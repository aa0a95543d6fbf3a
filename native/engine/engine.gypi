# Targets of native/engine: the built-in checkpoint engine.
#   libckpt.so    preloaded into every process of a job (the worker side)
#   ckpt-restart  static launcher / restarter / image checker
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      "target_name": "ckpt_engine_lib",
      "product_name": "ckpt",
      "product_prefix": "lib",
      "product_extension": "so",
      "type": "shared_library",
      "product_dir": "<(PRODUCT_DIR)",
      "sources": ["libckpt.cc"],
      "dependencies": ["ckpt_image", "ckpt_protocol", "ckpt_common"],
      # The restore path runs before the thread pointer is valid: no stack
      # protector (it reads the canary through %fs).
      "cflags": ["-fno-stack-protector", "-O2"],
      "ldflags": [
        "-static-libstdc++", "-static-libgcc",
        "-Wl,--version-script=<!(pwd)/native/engine/libckpt.map",
        "-Wl,-z,nodelete"
      ],
      "libraries": ["-ldl", "-lpthread", "-lzstd"]
    },
    {
      "target_name": "ckpt-restart",
      "type": "executable",
      "sources": ["restart.cc", "blob.cc"],
      "dependencies": ["ckpt_image", "ckpt_common"],
      "cflags": ["-fno-stack-protector", "-O2"],
      # Static, linked below 2 GiB (static glibc cannot go higher) and away
      # from non-PIE programs at 0x400000, PIE programs and the mmap area.
      "ldflags": ["-static", "-Wl,-Ttext-segment=0x7a000000"],
      "libraries": ["-l:libzstd.a", "-lpthread"]
    }
  ]
}
