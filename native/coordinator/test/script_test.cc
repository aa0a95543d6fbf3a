#include <doctest/doctest.h>

#include "coordinator/restart_script.h"

using namespace ckpt::coordinator::detail;

TEST_CASE("script names") {
  CHECK(restart_script_name("98ff-40000-9fad00d933", 1, false) == "dmtcp_restart_script_98ff-40000-9fad00d933.sh");
  CHECK(restart_script_name("98ff-40000-9fad00d933", 1, true) ==
        "dmtcp_restart_script_98ff-40000-9fad00d933_00001.sh");
}

TEST_CASE("single-host script: variables, quoting and the final exec") {
  ScriptInput in;
  in.comp_id = "98ff-40000-1";
  in.coord_host = "vm";
  in.coord_port = 17001;
  in.interval = 5;
  in.dmtcp_bin_dir = "/opt/dmtcp/bin";
  in.images = {{"/ck/a.dmtcp", "", "vm"}, {"/ck/it's $(rm -rf x).dmtcp", "", "vm"}};
  std::string s = render_restart_script(in);
  CHECK(s.rfind("#!/bin/bash\n", 0) == 0);
  CHECK(s.find("coord_host='vm'") != std::string::npos);
  CHECK(s.find("coord_port=17001") != std::string::npos);
  CHECK(s.find("checkpoint_interval=5") != std::string::npos);
  CHECK(s.find("dmt_rstr_cmd='/opt/dmtcp/bin/dmtcp_restart'") != std::string::npos);
  CHECK(s.find("# Number of processes in the computation = 2") != std::string::npos);
  CHECK(s.find("'/ck/it'\\''s $(rm -rf x).dmtcp'") != std::string::npos);
  CHECK(s.find("exec \"$dmt_rstr_cmd\" --coord-host \"$coord_host\" --coord-port \"$coord_port\"") !=
        std::string::npos);
}

TEST_CASE("multi-host layout groups hosts like the original") {
  ScriptInput in;
  in.comp_id = "1-2-3";
  in.images = {{"/ck/p1.dmtcp", "", "alpha"}, {"/ck/p2.dmtcp", "ssh", "beta"}, {"/ck/p3.dmtcp", "", "alpha"},
               {"/ck/p4.dmtcp", "rsh", "gamma"}};
  std::string s = render_restart_script(in);
  CHECK(s.find(" :: gamma :bg: /ck/p4.dmtcp : rsh\n :: beta :bg: /ck/p2.dmtcp : ssh\n :: alpha :bg: /ck/p1.dmtcp "
               "/ck/p3.dmtcp : rsh\n") != std::string::npos);
  CHECK(s.find("# Number of hosts in the computation = 3") != std::string::npos);
  CHECK(s.find("--join-coordinator") != std::string::npos);
}
