// Provides ServeUntilTerminated, the end of every node binary's run: it serves an already
// started GrpcServer (and the metrics HTTP endpoint, when configured) until SIGTERM or SIGINT,
// keeping systemd informed, and then shuts the server down. The broker and RoleNode (PAN,
// PSN, MnT) share it so that all nodes start, report and stop the same way.
// Call it from the thread that blocked the signals (TerminationSignals::Block); not for
// concurrent use.
#ifndef MAILROOM_COMMON_RPC_SERVE_UNTIL_TERMINATED_H_
#define MAILROOM_COMMON_RPC_SERVE_UNTIL_TERMINATED_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/rpc/grpc_server.h"

namespace mailroom {

// Starts the metrics server on `metrics_listen_address` (none when empty), tells systemd the
// node is ready, waits for SIGTERM/SIGINT, tells systemd it is stopping, runs
// `before_shutdown` if given (an elected broker hands over its lead there, before its calls
// drain), and shuts `server` down, giving in-flight calls `grace`. Logs under
// `log_component`. Returns the process exit code: 0, or 1 (without waiting) when the metrics
// server cannot start.
int ServeUntilTerminated(GrpcServer& server, const std::string& metrics_listen_address,
                         absl::Duration grace, absl::string_view log_component,
                         const std::function<void()>& before_shutdown = {});

}  // namespace mailroom

#endif  // MAILROOM_COMMON_RPC_SERVE_UNTIL_TERMINATED_H_
