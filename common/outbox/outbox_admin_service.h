// Provides OutboxAdminService, the OutboxAdmin gRPC service every sending role serves over
// its own outbox: admins list, inspect and retry entries. Admin certificates only.
// Thread-safe.
#ifndef MAILROOM_COMMON_OUTBOX_ADMIN_SERVICE_H_
#define MAILROOM_COMMON_OUTBOX_ADMIN_SERVICE_H_

#include "common/outbox/outbox.h"
#include "common/rpc/service_call.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"

namespace mailroom {

class OutboxAdminService final : public common::v1::OutboxAdmin::Service {
 public:
  explicit OutboxAdminService(Outbox* outbox) : outbox_(outbox) {}

  MAILROOM_UNARY_RPC(common::v1, ListOutbox);
  MAILROOM_UNARY_RPC(common::v1, GetOutboxEntry);
  MAILROOM_UNARY_RPC(common::v1, RetryOutboxEntry);

 private:
  Outbox* outbox_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_OUTBOX_ADMIN_SERVICE_H_
