# Targets of native/bench: the measurements behind `ckpt bench`.
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      # Storage: O_DIRECT/buffered sequential I/O and fsync latency.
      "target_name": "ckpt_bench",
      "type": "static_library",
      "sources": ["storage.cc"]
    },
    {
      # The synthetic program `ckpt bench checkpoint` checkpoints and restarts.
      "target_name": "ckpt-bench-workload",
      "type": "executable",
      "sources": ["workload.cc"],
      "link_settings": {"libraries": ["-lpthread"]}
    }
  ]
}
