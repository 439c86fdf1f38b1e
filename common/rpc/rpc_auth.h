// Provides AuthorizeCaller, the one authorization check of every role service's RPCs: the
// caller's role comes from its verified client certificate (common/rpc/tls.h) and must be among
// the allowed ones; a request that names a node must name the caller itself. Refusals are
// PERMISSION_DENIED with reason ROLE_NOT_ALLOWED. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_RPC_AUTH_H_
#define MAILROOM_COMMON_RPC_AUTH_H_

#include <initializer_list>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "common/rpc/tls.h"

namespace mailroom {

absl::StatusOr<PeerIdentity> AuthorizeCaller(grpc::ServerContextBase* context,
                                             std::initializer_list<Role> allowed,
                                             const std::string& method,
                                             const std::string& claimed_node = "");

}  // namespace mailroom

#endif  // MAILROOM_COMMON_RPC_AUTH_H_
