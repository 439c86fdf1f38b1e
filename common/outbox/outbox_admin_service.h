// Provides OutboxAdminService, the OutboxAdmin gRPC service every sending role serves over
// its own outbox: admins list, inspect and retry entries. Admin certificates only.
// Thread-safe.
#ifndef MAILROOM_COMMON_OUTBOX_ADMIN_SERVICE_H_
#define MAILROOM_COMMON_OUTBOX_ADMIN_SERVICE_H_

#include "common/outbox/outbox.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"

namespace mailroom {

class OutboxAdminService final : public common::v1::OutboxAdmin::Service {
 public:
  explicit OutboxAdminService(Outbox* outbox) : outbox_(outbox) {}

  grpc::Status ListOutbox(grpc::ServerContext* context, const common::v1::ListOutboxRequest* request,
                          common::v1::ListOutboxResponse* response) override;
  grpc::Status GetOutboxEntry(grpc::ServerContext* context,
                              const common::v1::GetOutboxEntryRequest* request,
                              common::v1::GetOutboxEntryResponse* response) override;
  grpc::Status RetryOutboxEntry(grpc::ServerContext* context,
                                const common::v1::RetryOutboxEntryRequest* request,
                                common::v1::RetryOutboxEntryResponse* response) override;

 private:
  Outbox* outbox_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_OUTBOX_ADMIN_SERVICE_H_
