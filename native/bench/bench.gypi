# Targets of native/bench: the storage measurement behind `ckpt bench`.
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      "target_name": "ckpt_bench",
      "type": "static_library",
      "sources": ["storage.cc"]
    }
  ]
}
