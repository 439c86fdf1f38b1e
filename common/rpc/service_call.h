// Provides ServeCall, the one way a mailroom gRPC service runs a handler: it authorizes the
// caller (AuthorizeCaller, common/rpc/rpc_auth.h), checks the call's precondition if it has
// one (CallerCheck::precondition: e.g. that this broker leads), runs the handler body only if
// both pass, and converts the body's absl::Status to a grpc::Status (ToGrpcStatus,
// common/rpc/status_grpc.h). One overload per gRPC API:
//
//   // sync API: returns the grpc::Status
//   grpc::Status S::Get(grpc::ServerContext* context, const GetRequest* request,
//                       GetResponse* response) {
//     return ServeCall(context, {__func__, kAdmins}, response,
//                      [&] { return impl_->Get(*request); });
//   }
//   // callback API: finishes the call's default reactor and returns it
//   grpc::ServerUnaryReactor* S::Take(grpc::CallbackServerContext* context, ...) {
//     return ServeCall(context, {__func__, kNodes, "node", request->node()}, response,
//                      [&](const PeerIdentity& peer) { return impl_->Take(peer.node_name); });
//   }
//
// The body takes no argument or the caller's `const PeerIdentity&`, and returns
// absl::StatusOr<Response> or a plain Response, moved into `*response`, or absl::Status (the
// body fills the response itself, if there is one; pass no response for a streaming call). The
// per-RPC metrics come from GrpcServer's interceptor, not from here. Stateless and
// thread-safe.
#ifndef MAILROOM_COMMON_RPC_SERVICE_CALL_H_
#define MAILROOM_COMMON_RPC_SERVICE_CALL_H_

#include <type_traits>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/rpc/rpc_auth.h"
#include "common/rpc/tls.h"

// Declares, inside a service class, the sync-API handler of a unary RPC whose messages are
// named `<Method>Request` and `<Method>Response` in namespace `ns`, as every mailroom API's
// are (the gRPC signature is long, and a service with a dozen RPCs would spell it a dozen
// times):
//   MAILROOM_UNARY_RPC(v1, RaiseAlarm);
// declares  grpc::Status RaiseAlarm(grpc::ServerContext* context,
//                                   const v1::RaiseAlarmRequest* request,
//                                   v1::RaiseAlarmResponse* response) override;
#define MAILROOM_UNARY_RPC(ns, Method)                                                 \
  grpc::Status Method(grpc::ServerContext* context, const ns::Method##Request* request, \
                      ns::Method##Response* response) override

// The same for a unary RPC served on gRPC's callback API (WithCallbackMethod_<Method>):
//   MAILROOM_CALLBACK_UNARY_RPC(v1, GetAccessToken);
// declares  grpc::ServerUnaryReactor* GetAccessToken(grpc::CallbackServerContext* context,
//                                                    const v1::GetAccessTokenRequest* request,
//                                                    v1::GetAccessTokenResponse* response)
//               override;
#define MAILROOM_CALLBACK_UNARY_RPC(ns, Method)                          \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context, \
                                   const ns::Method##Request* request,   \
                                   ns::Method##Response* response) override

// Defines, in a service's .cc, a sync-API unary handler whose whole body is the usual one:
// authorize the caller against `roles` (e.g. kAdminOnly), then forward the request to
// `impl->Method(*request)` and fill the response with its result. With it a service's .cc
// reads as the table of who may call what; handlers that do more are written out.
//   MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, Resend, kPortalOrAdmin, notifier_)
#define MAILROOM_FORWARD_UNARY_RPC(Service, ns, Method, roles, impl)                      \
  grpc::Status Service::Method(grpc::ServerContext* context,                             \
                               const ns::Method##Request* request,                       \
                               ns::Method##Response* response) {                         \
    return ::mailroom::ServeCall(context, {#Method, roles}, response,                    \
                                 [&] { return impl->Method(*request); });                \
  }

namespace mailroom {

namespace service_call_internal {

using Body = absl::FunctionRef<absl::Status(const PeerIdentity&)>;

// Authorizes, runs `body` if allowed, converts: the conversion's one place.
grpc::Status Serve(grpc::ServerContextBase* context, const CallerCheck& check, Body body);
grpc::ServerUnaryReactor* ServeReactor(grpc::CallbackServerContext* context,
                                       const CallerCheck& check, Body body);

template <typename F>
auto Invoke(F& body, const PeerIdentity& peer) {
  if constexpr (std::is_invocable_v<F&, const PeerIdentity&>) {
    return body(peer);
  } else {
    return body();
  }
}

// Runs `body`, storing its value (plain or in a StatusOr) in `*response`.
template <typename Response, typename F>
absl::Status RunInto(F& body, const PeerIdentity& peer, Response* response) {
  auto result = Invoke(body, peer);
  if constexpr (std::is_same_v<decltype(result), absl::Status>) {
    return result;
  } else if constexpr (std::is_same_v<decltype(result), Response>) {
    *response = std::move(result);
    return absl::OkStatus();
  } else {
    if (!result.ok()) return std::move(result).status();
    *response = *std::move(result);
    return absl::OkStatus();
  }
}

}  // namespace service_call_internal

// Sync API, unary call.
template <typename Response, typename F>
grpc::Status ServeCall(grpc::ServerContext* context, const CallerCheck& check,
                       Response* response, F&& body) {
  return service_call_internal::Serve(context, check, [&](const PeerIdentity& peer) {
    return service_call_internal::RunInto(body, peer, response);
  });
}

// Sync API, a call without a response message (server streaming): `body` returns
// absl::Status.
template <typename F>
grpc::Status ServeCall(grpc::ServerContext* context, const CallerCheck& check, F&& body) {
  return service_call_internal::Serve(context, check, [&](const PeerIdentity& peer) {
    return service_call_internal::Invoke(body, peer);
  });
}

// Callback API, unary call: runs on the gRPC thread that delivered the call, so `body` must
// not block.
template <typename Response, typename F>
grpc::ServerUnaryReactor* ServeCall(grpc::CallbackServerContext* context,
                                    const CallerCheck& check, Response* response, F&& body) {
  return service_call_internal::ServeReactor(context, check, [&](const PeerIdentity& peer) {
    return service_call_internal::RunInto(body, peer, response);
  });
}

}  // namespace mailroom

#endif  // MAILROOM_COMMON_RPC_SERVICE_CALL_H_
