#include "common/rpc/service_call.h"

#include "common/rpc/status_grpc.h"

namespace mailroom::service_call_internal {

grpc::Status Serve(grpc::ServerContextBase* context, const CallerCheck& check, Body body) {
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, check);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  if (check.precondition != nullptr && *check.precondition) {
    if (absl::Status ready = (*check.precondition)(); !ready.ok()) return ToGrpcStatus(ready);
  }
  return ToGrpcStatus(body(*peer));
}

grpc::ServerUnaryReactor* ServeReactor(grpc::CallbackServerContext* context,
                                       const CallerCheck& check, Body body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Serve(context, check, body));
  return reactor;
}

}  // namespace mailroom::service_call_internal
