// Parser for dmtcp_restart_script*.sh files: the data lines an indexer needs
// (timestamp, coordinator, host/process counts, image paths per host).
// The script is treated as text; nothing in it is executed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::image {

struct RestartScript {
  std::string comp_group;        // from the file name ("" for the symlink name)
  uint64_t generation = 0;       // from a unique-mode name suffix, else 0
  std::string timestamp;         // ckpt_timestamp value (coordinator local time)
  std::string coord_host;
  int coord_port = 0;
  int num_hosts = 0, num_processes = 0;
  struct Image {
    std::string host;            // "" for single-host scripts (host not named)
    std::string path;
  };
  std::vector<Image> images;
};

// Parses the script text. Throws Corrupt ("<path>: at offset N: ...") if it
// is not a DMTCP restart script or its data lines are malformed.
RestartScript parse_restart_script(std::string_view text, const std::string& path);

// Recognises "dmtcp_restart_script_<compGroup>[_<gen>].sh".
bool parse_restart_script_name(std::string_view name, std::string& comp_group, uint64_t& generation);

}  // namespace ckpt::image
