#include "common/outbox/outbox_admin_service.h"

#include "common/base/status_macros.h"
#include "common/rpc/service_call.h"

namespace mailroom {

namespace cv1 = ::mailroom::common::v1;

grpc::Status OutboxAdminService::ListOutbox(grpc::ServerContext* context,
                                            const cv1::ListOutboxRequest* request,
                                            cv1::ListOutboxResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response,
                   [&] { return outbox_->List(*request); });
}

grpc::Status OutboxAdminService::GetOutboxEntry(grpc::ServerContext* context,
                                                const cv1::GetOutboxEntryRequest* request,
                                                cv1::GetOutboxEntryResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response, [&]() -> absl::Status {
    MR_ASSIGN_OR_RETURN(*response->mutable_entry(), outbox_->Get(request->id()));
    return absl::OkStatus();
  });
}

grpc::Status OutboxAdminService::RetryOutboxEntry(grpc::ServerContext* context,
                                                  const cv1::RetryOutboxEntryRequest* request,
                                                  cv1::RetryOutboxEntryResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response, [&]() -> absl::Status {
    MR_ASSIGN_OR_RETURN(*response->mutable_entry(), outbox_->Retry(request->id()));
    return absl::OkStatus();
  });
}

}  // namespace mailroom
