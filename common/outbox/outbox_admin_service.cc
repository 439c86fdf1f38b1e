#include "common/outbox/outbox_admin_service.h"

#include "common/base/status_macros.h"
#include "common/rpc/service_call.h"

namespace mailroom {

namespace cv1 = ::mailroom::common::v1;

namespace {

// An admin call whose answer is the one entry `entry` returns (absl::StatusOr<OutboxEntry>).
template <typename Response, typename EntryFn>
grpc::Status ServeEntry(grpc::ServerContext* context, const char* method, Response* response,
                        EntryFn entry) {
  return ServeCall(context, {method, kAdminOnly}, response, [&]() -> absl::Status {
    MR_ASSIGN_OR_RETURN(*response->mutable_entry(), entry());
    return absl::OkStatus();
  });
}

}  // namespace

grpc::Status OutboxAdminService::ListOutbox(grpc::ServerContext* context,
                                            const cv1::ListOutboxRequest* request,
                                            cv1::ListOutboxResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response,
                   [&] { return outbox_->List(*request); });
}

grpc::Status OutboxAdminService::GetOutboxEntry(grpc::ServerContext* context,
                                                const cv1::GetOutboxEntryRequest* request,
                                                cv1::GetOutboxEntryResponse* response) {
  return ServeEntry(context, __func__, response, [&] { return outbox_->Get(request->id()); });
}

grpc::Status OutboxAdminService::RetryOutboxEntry(grpc::ServerContext* context,
                                                  const cv1::RetryOutboxEntryRequest* request,
                                                  cv1::RetryOutboxEntryResponse* response) {
  return ServeEntry(context, __func__, response, [&] { return outbox_->Retry(request->id()); });
}

}  // namespace mailroom
