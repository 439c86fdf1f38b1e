#include "common/rpc/rpc_metrics.h"

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
      grpc::Status status = methods->GetSendStatus();
      // A request gRPC could not parse never reaches the service, and would be answered with a
      // bare INTERNAL. For proto3 that means a string field holding malformed UTF-8 (or bytes
      // that are not the message at all): the caller's fault, so say so.
      if (status.error_code() == grpc::StatusCode::INTERNAL && !request_parsed_) {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "request: cannot be parsed: a text field holds malformed UTF-8, or "
                              "the bytes are not this method's request message");
        methods->ModifySendStatus(status);
      }
      metrics_->Observe("mailroom_rpc_latency_seconds", "Server-side RPC latency.",
                        {{"method", method_}}, absl::Now() - start_);
      metrics_->Increment("mailroom_rpcs_total", "RPCs served, by method and status code.",
                          {{"method", method_}, {"code", std::to_string(status.error_code())}});
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      request_parsed_ = true;
    }
    methods->Proceed();
  }

 private:
  bool request_parsed_ = false;
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
