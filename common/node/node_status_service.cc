#include "common/node/node_status_service.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/base/proto_time.h"
#include "common/base/status_macros.h"
#include "common/base/version.h"
#include "common/rpc/service_call.h"

namespace mailroom {

namespace sv1 = ::mailroom::status::v1;

namespace {

sv1::ComponentLogLevel ToProto(const ComponentLevelInfo& info) {
  sv1::ComponentLogLevel out;
  out.set_component(info.component);
  out.set_level(std::string(LogLevelName(info.level)));
  out.set_configured_level(std::string(LogLevelName(info.configured)));
  out.set_overridden(info.overridden);
  if (info.revert_time != absl::InfiniteFuture()) {
    ::mailroom::ToProto(info.revert_time, out.mutable_revert_time());
  }
  return out;
}

}  // namespace

NodeStatusService::NodeStatusService(Identity identity, const Clock* clock, Filler fill,
                                     const std::vector<std::string>* admin_identities)
    : identity_(std::move(identity)),
      clock_(clock),
      fill_(std::move(fill)),
      admin_identities_(admin_identities),
      log_levels_(clock) {}

CallerCheck NodeStatusService::AdminCheck(const char* method) const {
  return {method, kAdminOnly, "", "", admin_identities_, " (admin only)"};
}

grpc::Status NodeStatusService::GetNodeStatus(grpc::ServerContext* context,
                                              const sv1::GetNodeStatusRequest*,
                                              sv1::GetNodeStatusResponse* response) {
  return ServeCall(context, AdminCheck(__func__), response, [&]() -> absl::Status {
    response->set_node(identity_.node_name);
    response->set_role(identity_.role);
    response->set_version(kMailroomVersion);
    ToProto(identity_.start_time, response->mutable_start_time());
    ToProto(clock_->Now(), response->mutable_time());
    if (fill_) MR_RETURN_IF_ERROR(fill_(response));
    return absl::OkStatus();
  });
}

grpc::Status NodeStatusService::GetLogLevels(grpc::ServerContext* context,
                                             const sv1::GetLogLevelsRequest*,
                                             sv1::GetLogLevelsResponse* response) {
  return ServeCall(context, AdminCheck(__func__), response, [&] {
    sv1::GetLogLevelsResponse out;
    out.set_node(identity_.node_name);
    ::mailroom::ToProto(clock_->Now(), out.mutable_time());
    out.set_default_level(std::string(LogLevelName(Logging::DefaultLevel())));
    for (const ComponentLevelInfo& info : log_levels_.List()) {
      *out.add_components() = ToProto(info);
    }
    return out;
  });
}

grpc::Status NodeStatusService::SetLogLevel(grpc::ServerContext* context,
                                            const sv1::SetLogLevelRequest* request,
                                            sv1::SetLogLevelResponse* response) {
  return ServeCall(
      context, AdminCheck(__func__), response,
      [&](const PeerIdentity& peer) -> absl::StatusOr<sv1::SetLogLevelResponse> {
        absl::StatusOr<LogLevel> level = ParseLogLevel(request->level());
        if (!level.ok()) {
          return absl::InvalidArgumentError(absl::StrCat("level: ", level.status().message()));
        }
        MR_RETURN_IF_ERROR(log_levels_.Set(request->component(), *level,
                                           FromProto(request->duration()), peer.node_name));
        sv1::SetLogLevelResponse out;
        for (const ComponentLevelInfo& info : log_levels_.List()) {
          if (info.component == request->component()) *out.mutable_component() = ToProto(info);
        }
        return out;
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
