# The drop-in dmtcp_coordinator executable (build/Release/dmtcp_coordinator,
# started by bin/dmtcp_coordinator). Paths are relative to this file.
{
  "targets": [
    {
      "target_name": "dmtcp_coordinator",
      "type": "executable",
      "sources": ["main.cc", "cli.cc", "console.cc"],
      "dependencies": ["ckpt_coordinator", "ckpt_protocol", "ckpt_common"],
      "link_settings": {"libraries": ["-lpthread"]}
    }
  ]
}
