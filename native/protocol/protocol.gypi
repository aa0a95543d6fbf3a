# Targets of native/protocol: the DMTCP wire-protocol codec.
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      "target_name": "ckpt_protocol",
      "type": "static_library",
      "sources": ["message.cc"]
    }
  ]
}
