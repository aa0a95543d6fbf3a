// The restart script written when a checkpoint completes (spec §8). Its
// interface matches DMTCP's (file name, symlink, executable bit, the
// coord_host/coord_port/checkpoint_interval variables and their environment
// overrides, the command-line options, the final exec of dmtcp_restart); the
// text is our own. Every value that came from a worker (paths, host names,
// shell types) is shell-quoted, so a hostile name cannot inject commands
// (W-SEC-5).
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace ckpt::coordinator::detail {

struct ScriptImage {
  std::string path;
  std::string shell;  // "", "ssh" or "rsh"
  std::string host;
};

struct ScriptInput {
  std::string comp_id;  // upid text of the computation
  uint32_t generation = 0;
  bool unique_names = false;  // some worker sent DMT_UNIQUE_CKPT_FILENAME
  std::string coord_host;     // gethostname()
  uint16_t coord_port = 0;
  int32_t interval = 0;
  time_t ckpt_time = 0;        // wall clock when the checkpoint started
  std::string dmtcp_bin_dir;   // "" = find dmtcp_restart on PATH
  std::vector<ScriptImage> images;  // arrival order
};

// "dmtcp_restart_script_<compId>.sh" or "..._<generation:05>.sh".
std::string restart_script_name(const std::string& comp_id, uint32_t generation, bool unique_names);
// The name of the symlink that always points at the latest script.
inline constexpr const char* kRestartScriptLink = "dmtcp_restart_script.sh";

std::string render_restart_script(const ScriptInput& in);

// Single-quotes `s` for bash ('it'\''s').
std::string shell_quote(const std::string& s);

}  // namespace ckpt::coordinator::detail
