# The bind() wrapper preloaded into jobs run under DMTCP (see reuseaddr.cc).
# Paths are relative to this file.
{
  "targets": [
    {
      "target_name": "ckpt_dmtcp_reuseaddr",
      "type": "shared_library",
      "product_dir": "<(PRODUCT_DIR)",
      "sources": ["reuseaddr.cc"],
      "cflags_cc": ["-fvisibility=hidden"],
      "ldflags": ["-ldl"]
    }
  ]
}
