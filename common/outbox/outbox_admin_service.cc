#include "common/outbox/outbox_admin_service.h"

#include "common/rpc/rpc_auth.h"
#include "common/rpc/status_grpc.h"

namespace mailroom {

grpc::Status OutboxAdminService::ListOutbox(grpc::ServerContext* context,
                                            const common::v1::ListOutboxRequest* request,
                                            common::v1::ListOutboxResponse* response) {
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, {Role::kAdmin}, "ListOutbox");
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  absl::StatusOr<common::v1::ListOutboxResponse> result = outbox_->List(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status OutboxAdminService::GetOutboxEntry(grpc::ServerContext* context,
                                                const common::v1::GetOutboxEntryRequest* request,
                                                common::v1::GetOutboxEntryResponse* response) {
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, {Role::kAdmin}, "GetOutboxEntry");
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  absl::StatusOr<common::v1::OutboxEntry> entry = outbox_->Get(request->id());
  if (!entry.ok()) return ToGrpcStatus(entry.status());
  *response->mutable_entry() = *std::move(entry);
  return grpc::Status::OK;
}

grpc::Status OutboxAdminService::RetryOutboxEntry(grpc::ServerContext* context,
                                                  const common::v1::RetryOutboxEntryRequest* request,
                                                  common::v1::RetryOutboxEntryResponse* response) {
  absl::StatusOr<PeerIdentity> peer =
      AuthorizeCaller(context, {Role::kAdmin}, "RetryOutboxEntry");
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  absl::StatusOr<common::v1::OutboxEntry> entry = outbox_->Retry(request->id());
  if (!entry.ok()) return ToGrpcStatus(entry.status());
  *response->mutable_entry() = *std::move(entry);
  return grpc::Status::OK;
}

}  // namespace mailroom
