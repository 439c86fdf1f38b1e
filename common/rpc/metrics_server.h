// Provides MetricsServer, which serves Metrics::Render() as /metrics over HTTP (cpp-httplib)
// on the node's metrics_listen_address, for Prometheus. Plain HTTP on purpose: scrapers
// rarely speak mutual TLS, and nothing secret is in the metrics. Thread-safe.
#ifndef MAILROOM_COMMON_METRICS_SERVER_H_
#define MAILROOM_COMMON_METRICS_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/base/metrics.h"

namespace httplib {
class Server;
}

namespace mailroom {

class MetricsServer {
 public:
  explicit MetricsServer(Metrics* metrics);
  ~MetricsServer();

  // Listens on "host:port" (port 0 picks one; see port()).
  absl::Status Start(const std::string& listen_address);
  int port() const { return port_; }
  void Stop();

 private:
  Metrics* metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_METRICS_SERVER_H_
