# Targets of native/common: error codes and small shared utilities.
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      "target_name": "ckpt_common",
      "type": "static_library",
      "sources": ["errors.cc"]
    }
  ]
}
