#include "common/rpc_metrics.h"

#include <string>

#include "absl/time/clock.h"

namespace mailroom {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(absl::Now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      metrics_->Observe("mailroom_rpc_latency_seconds", "Server-side RPC latency.",
                        {{"method", method_}}, absl::Now() - start_);
      metrics_->Increment("mailroom_rpcs_total", "RPCs served, by method and status code.",
                          {{"method", method_}, {"code", std::to_string(status.error_code())}});
    }
    methods->Proceed();
  }

 private:
  Metrics* metrics_;
  const std::string method_;
  const absl::Time start_;
};

}  // namespace

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcMetricsInterceptor(metrics_, info->method() != nullptr ? info->method() : "?");
}

}  // namespace mailroom
