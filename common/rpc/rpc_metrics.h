// Provides RpcMetricsInterceptorFactory, a gRPC server interceptor that records every RPC's
// server-side latency in mailroom_rpc_latency_seconds{method=...}, for every service a node
// serves (the role services, OutboxAdmin, the broker). Thread-safe.
#ifndef MAILROOM_COMMON_RPC_METRICS_H_
#define MAILROOM_COMMON_RPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include "common/base/metrics.h"

namespace mailroom {

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(Metrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  Metrics* metrics_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_RPC_METRICS_H_
