#include "common/rpc/serve_until_terminated.h"

#include "common/base/logging.h"
#include "common/base/metrics.h"
#include "common/base/systemd_notify.h"
#include "common/rpc/metrics_server.h"

namespace mailroom {

int ServeUntilTerminated(GrpcServer& server, const std::string& metrics_listen_address,
                         absl::Duration grace, absl::string_view log_component,
                         const std::function<void()>& before_shutdown) {
  // Scraped for as long as the gRPC server runs; stopped when this returns.
  MetricsServer metrics(&Metrics::Global());
  if (!metrics_listen_address.empty()) {
    if (absl::Status status = metrics.Start(metrics_listen_address); !status.ok()) {
      MR_LOG(kError, log_component) << status.message();
      return 1;
    }
    MR_LOG(kInfo, log_component) << "metrics on port " << metrics.port();
  }
  NotifySystemdReady();
  const int signal = TerminationSignals::Wait();
  MR_LOG(kInfo, log_component) << "signal " << signal << ": shutting down";
  NotifySystemd("STOPPING=1");
  if (before_shutdown) before_shutdown();
  server.Shutdown(grace);
  server.Wait();
  return 0;
}

}  // namespace mailroom
