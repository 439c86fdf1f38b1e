// Provides RoleMain, the start that the four node binaries (mailroom-broker, -pan, -psn and
// -mnt) share: it defines their --config and --port_file flags, blocks the termination
// signals before any thread starts, parses the command line, loads and checks the node
// configuration for the binary's role, applies its logging section, and only then runs the
// role. One place, so that every node reports a bad start the same way (a message on stderr
// and exit code 2). Call it once, from `main`; not thread-safe.
#ifndef MAILROOM_COMMON_NODE_ROLE_MAIN_H_
#define MAILROOM_COMMON_NODE_ROLE_MAIN_H_

#include <functional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/logging.h"
#include "common/node/node_config.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom {

// What distinguishes one node binary's start from another's.
struct RoleProgram {
  // The binary's name ("mailroom-mnt"), which prefixes each start-up error on stderr.
  const char* name;
  // The role LoadNodeConfig checks the configuration for.
  common::v1::Role role;
  // The usage message that --help prints.
  const char* usage;
  // Checks of the role's own config section, which LoadNodeConfig does not know; may be
  // empty. An error is reported as "<name>: <config path>: <message>".
  std::function<absl::Status(const NodeConfig&)> check_role_config;
  // The log component that a failed start is logged under.
  const char* log_component = kLogConfig;
};

// Where the role's run starts from, after RoleMain's checks passed.
struct RoleStart {
  NodeConfig config;
  // --port_file: where to write the bound gRPC port once serving (for port 0), or empty.
  std::string port_file;
};

// Does the shared start described above, then returns `run(start)`'s exit code. Returns 2
// without running when --config is missing or the configuration (or the role's check of it)
// fails; 1 when `run` fails to start (its error is logged as "cannot start: <message>").
int RoleMain(int argc, char** argv, const RoleProgram& program,
             absl::FunctionRef<absl::StatusOr<int>(const RoleStart&)> run);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_ROLE_MAIN_H_
