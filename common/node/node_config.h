// Provides loading and validation of a node's configuration (NodeConfig, protobuf text
// format): every error names the file, line and field; relative paths are resolved against
// the file's directory; and the logging section is applied to the process logger.
// Thread-compatible.
#ifndef MAILROOM_COMMON_NODE_CONFIG_H_
#define MAILROOM_COMMON_NODE_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/rpc/tls.h"
#include "proto/mailroom/common/v1/common.pb.h"
#include "proto/mailroom/config/v1/config.pb.h"

namespace mailroom {

using ::mailroom::config::v1::NodeConfig;

// Loads `path` and checks it for a process of `role`. Errors are INVALID_ARGUMENT naming
// each bad field with its line, or NOT_FOUND naming an unreadable file. The environment
// variable MAILROOM_NODE_NAME, when set, replaces node_name (one config for many pods), and
// "{node_name}" in broker.ha.advertised_address stands for the node name (each broker pod
// advertises its own, e.g. "{node_name}.mailroom-broker-pods.mailroom.svc:7100").
absl::StatusOr<NodeConfig> LoadNodeConfig(const std::string& path,
                                          mailroom::common::v1::Role role);

// Validates an already-parsed config; `locator` (may be null) adds line numbers.
absl::Status ValidateNodeConfig(const NodeConfig& config, mailroom::common::v1::Role role,
                                const class FieldLocator* locator);

// Sets the process logger's levels (and file sink) from the config.
absl::Status ApplyLoggingConfig(const mailroom::config::v1::LoggingConfig& logging);

// The logger's component name for a configured component.
const char* LogComponentName(mailroom::config::v1::LogComponent component);

TlsFiles TlsFilesOf(const NodeConfig& config);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_CONFIG_H_
