# Targets of native/stream and native/image: the streaming core, the image
# format (both without Node, linked by the engine too) and the indexer.
# Paths in a .gypi are relative to the .gypi file itself.
{
  "targets": [
    {
      "target_name": "ckpt_stream",
      "type": "static_library",
      "sources": ["../stream/stream.cc"],
      "dependencies": ["ckpt_common"],
      "link_settings": {"libraries": ["-lzstd", "-lpthread"]}
    },
    {
      "target_name": "ckpt_image",
      "type": "static_library",
      "sources": ["format_codec.cc", "image_writer.cc", "image_reader.cc", "store.cc"],
      "dependencies": ["ckpt_stream"]
    },
    {
      "target_name": "ckpt_index",
      "type": "static_library",
      "sources": ["dmtcp_image.cc", "restart_script.cc", "indexer.cc", "convert.cc"],
      "dependencies": ["ckpt_image"],
      "link_settings": {"libraries": ["-lz"]}
    },
    {
      # The native half of benchmarks/stream (timed writes/reads, device bandwidth).
      "target_name": "ckpt_stream_bench",
      "type": "executable",
      "sources": ["tools/stream_bench.cc"],
      "dependencies": ["ckpt_image"]
    }
  ]
}
