# The drop-in dmtcp_command client (build/Release/dmtcp_command; bin/dmtcp_command execs it).
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      "target_name": "dmtcp_command",
      "type": "executable",
      "sources": ["main.cc"],
      "dependencies": ["ckpt_protocol"]
    }
  ]
}
