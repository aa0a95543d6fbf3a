// Command line of the drop-in dmtcp_coordinator (spec §6.1): the original's
// options and spellings, processed left to right (last one wins), plus our
// additions --bind, --allow and --dmtcp-bin-dir.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "coordinator/coordinator.h"

namespace ckpt::tools {

struct CliOptions {
  coordinator::Options core;
  bool port_given = false;
  std::string port_file;
  std::string status_file;
  std::string coord_logfile;  // --coord-logfile (daemon only)
  bool daemon = false;
  int quiet = 0;
  bool help = false;
  bool version = false;
};

struct CliResult {
  std::optional<CliOptions> options;  // nullopt: exit with `exit_code`
  int exit_code = 0;
  std::string error;  // usage error message (printed with the usage text)
};

// Parses argv with the environment defaults of spec §1.5 already applied.
CliResult parse_cli(int argc, char** argv);

// --help text (stdout) and usage (stderr on errors).
std::string usage_text();
std::string version_text();

}  // namespace ckpt::tools
