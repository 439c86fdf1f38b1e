#include "common/node/node_status_service.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/base/diagnosis.h"
#include "common/base/proto_time.h"
#include "common/base/status_macros.h"
#include "common/base/version.h"
#include "common/rpc/service_call.h"

namespace mailroom {

namespace sv1 = ::mailroom::status::v1;

NodeStatusService::NodeStatusService(Identity identity, const Clock* clock, Filler fill,
                                     const std::vector<std::string>* admin_identities)
    : identity_(std::move(identity)),
      clock_(clock),
      fill_(std::move(fill)),
      admin_identities_(admin_identities) {}

grpc::Status NodeStatusService::GetNodeStatus(grpc::ServerContext* context,
                                              const sv1::GetNodeStatusRequest*,
                                              sv1::GetNodeStatusResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly, "", "", admin_identities_, " (admin only)"},
                   response, [&]() -> absl::Status {
                     response->set_node(identity_.node_name);
                     response->set_role(identity_.role);
                     response->set_version(kMailroomVersion);
                     ToProto(identity_.start_time, response->mutable_start_time());
                     ToProto(clock_->Now(), response->mutable_time());
                     if (fill_) MR_RETURN_IF_ERROR(fill_(response));
                     return absl::OkStatus();
                   });
}

void FillTokenTimes(absl::Time expire_time, absl::Duration lifetime,
                    const absl::Status& last_error, absl::Time now, sv1::TokenStatus* out) {
  if (expire_time != absl::InfinitePast() && expire_time != absl::InfiniteFuture()) {
    ToProto(expire_time, out->mutable_expire_time());
    ToProto(lifetime, out->mutable_lifetime());
    ToProto(std::max(absl::ZeroDuration(), lifetime - (expire_time - now)), out->mutable_age());
  }
  if (last_error.ok()) return;
  out->set_last_error(std::string(last_error.message()));
  if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(last_error); diagnosis.has_value()) {
    *out->mutable_diagnosis() = *diagnosis;
  }
}

}  // namespace mailroom
