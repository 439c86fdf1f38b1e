#include "common/rpc/rpc_auth.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"

namespace mailroom {

absl::StatusOr<PeerIdentity> AuthorizeCaller(grpc::ServerContextBase* context,
                                             std::initializer_list<Role> allowed,
                                             const std::string& method,
                                             const std::string& claimed_node) {
  absl::StatusOr<PeerIdentity> peer = PeerIdentityOf(*context->auth_context());
  if (!peer.ok()) return peer.status();
  if (std::find(allowed.begin(), allowed.end(), peer->role) == allowed.end()) {
    MR_LOG(kWarn, kLogRpc) << "refused " << method << " from " << peer->node_name << " (role "
                           << RoleName(peer->role) << ")";
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
                          method, " is not allowed for role ", RoleName(peer->role))),
                      "ROLE_NOT_ALLOWED");
  }
  if (!claimed_node.empty() && claimed_node != peer->node_name) {
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
                          "source_node: \"", claimed_node,
                          "\" is not the caller's certificate name \"", peer->node_name, "\"")),
                      "ROLE_NOT_ALLOWED");
  }
  return peer;
}

}  // namespace mailroom
