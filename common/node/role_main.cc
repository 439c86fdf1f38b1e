#include "common/node/role_main.h"

#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/base/logging.h"
#include "common/rpc/grpc_server.h"

ABSL_FLAG(std::string, config, "", "Path of the node's configuration (protobuf text format).");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound gRPC port is written here once serving (for listen port 0).");

namespace mailroom {

int RoleMain(int argc, char** argv, const RoleProgram& program,
             absl::FunctionRef<absl::StatusOr<int>(const RoleStart&)> run) {
  // First, before any thread starts, so that every thread inherits the mask and only
  // TerminationSignals::Wait takes SIGTERM/SIGINT.
  TerminationSignals::Block();
  absl::SetProgramUsageMessage(program.usage);
  absl::ParseCommandLine(argc, argv);

  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) {
    std::cerr << program.name << ": --config is required\n";
    return 2;
  }
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(config_path, program.role);
  if (!config.ok()) {
    std::cerr << program.name << ": " << config.status().message() << "\n";
    return 2;
  }
  if (absl::Status status = ApplyLoggingConfig(config->logging()); !status.ok()) {
    std::cerr << program.name << ": " << status.message() << "\n";
    return 2;
  }
  if (program.check_role_config) {
    if (absl::Status status = program.check_role_config(*config); !status.ok()) {
      std::cerr << program.name << ": " << config_path << ": " << status.message() << "\n";
      return 2;
    }
  }
  absl::StatusOr<int> code = run(RoleStart{*std::move(config), absl::GetFlag(FLAGS_port_file)});
  if (!code.ok()) {
    MR_LOG(kError, program.log_component) << "cannot start: " << code.status().message();
    return 1;
  }
  return *code;
}

}  // namespace mailroom
