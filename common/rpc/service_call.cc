#include "common/rpc/service_call.h"

#include "common/rpc/status_grpc.h"

namespace mailroom::service_call_internal {

grpc::Status Serve(grpc::ServerContextBase* context, const CallerCheck& check, Body body) {
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, check);
  return ToGrpcStatus(peer.ok() ? body(*peer) : peer.status());
}

grpc::ServerUnaryReactor* ServeReactor(grpc::CallbackServerContext* context,
                                       const CallerCheck& check, Body body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Serve(context, check, body));
  return reactor;
}

}  // namespace mailroom::service_call_internal
