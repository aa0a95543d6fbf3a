# The coordinator load generator (build/Release/ckpt_loadgen), used by benchmarks/coordinator.
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      "target_name": "ckpt_loadgen",
      "type": "executable",
      "sources": ["main.cc"],
      "dependencies": ["ckpt_protocol"]
    }
  ]
}
