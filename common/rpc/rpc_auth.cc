#include "common/rpc/rpc_auth.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/rpc/status_grpc.h"

namespace mailroom {
namespace {

bool Allowed(const CallerCheck& check, const PeerIdentity& peer) {
  if (std::find(check.roles.begin(), check.roles.end(), peer.role) == check.roles.end()) {
    return false;
  }
  if (peer.role != Role::kAdmin || check.admin_identities == nullptr ||
      check.admin_identities->empty()) {
    return true;
  }
  return std::find(check.admin_identities->begin(), check.admin_identities->end(),
                   peer.node_name) != check.admin_identities->end();
}

}  // namespace

absl::StatusOr<PeerIdentity> AuthorizeCaller(grpc::ServerContextBase* context,
                                             const CallerCheck& check) {
  MR_ASSIGN_OR_RETURN(PeerIdentity peer, PeerIdentityOf(*context->auth_context()));
  if (!Allowed(check, peer)) {
    MR_LOG(kWarn, kLogRpc) << "refused " << check.method << " from " << peer.node_name
                           << " (role " << RoleName(peer.role) << ")";
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
                          check.method, " is not allowed for role ", RoleName(peer.role),
                          check.refusal_note)),
                      "ROLE_NOT_ALLOWED");
  }
  if (!check.claimed_node.empty() && check.claimed_node != peer.node_name) {
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
                          check.node_field, ": \"", check.claimed_node,
                          "\" is not the caller's certificate name \"", peer.node_name, "\"")),
                      "ROLE_NOT_ALLOWED");
  }
  return peer;
}

}  // namespace mailroom
