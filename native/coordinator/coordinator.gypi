# Targets of native/coordinator: the coordinator core library.
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      "target_name": "ckpt_coordinator",
      "type": "static_library",
      "sources": [
        "coordinator.cc",
        "core.cc",
        "event_loop.cc",
        "file_writer.cc",
        "kvdb.cc",
        "log.cc",
        "net.cc",
        "restart_script.cc",
        "vpid.cc"
      ],
      "dependencies": ["ckpt_protocol", "ckpt_common"],
      "link_settings": {"libraries": ["-lpthread"]}
    }
  ]
}
