// Provides AuthorizeCaller, the one authorization check of every mailroom RPC: the caller's
// role comes from its verified client certificate (common/rpc/tls.h) and must be among the
// allowed ones (an admin must also be a named admin identity where the service has a list of
// them); a request that names a node must name the caller itself. Refusals are
// PERMISSION_DENIED with reason ROLE_NOT_ALLOWED; a caller without a verified certificate is
// UNAUTHENTICATED. Services call it through ServeCall (common/rpc/service_call.h).
// Stateless and thread-safe.
#ifndef MAILROOM_COMMON_RPC_AUTH_H_
#define MAILROOM_COMMON_RPC_AUTH_H_

#include <functional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/rpc/tls.h"

namespace mailroom {

// Who may make one call. Non-owning: what it points to must outlive the check. Fields are
// positional (C++17), so the ones most calls leave empty come last.
struct CallerCheck {
  // The RPC's name, for the refusal message and the log.
  absl::string_view method;
  // The roles that may call.
  absl::Span<const Role> roles;
  // The request field that names the node the call speaks for ("node", "source_node"), and
  // its value; when the value is not empty it must be the caller's certificate name.
  absl::string_view node_field = "";
  absl::string_view claimed_node = "";
  // When not null and not empty, a caller with the admin role must also be named here
  // (certificate CN); any other admin is refused as if its role were not allowed.
  const std::vector<std::string>* admin_identities = nullptr;
  // Appended to the role refusal's message, e.g. " (admin only)".
  absl::string_view refusal_note = "";
  // When not null: checked after the caller is authorized and before the handler runs; a
  // non-OK status is the call's answer (a standby broker's NOT_LEADER: ServeCall,
  // common/rpc/service_call.h). Authorization comes first, so an unauthorized caller learns
  // nothing from it.
  const std::function<absl::Status()>* precondition = nullptr;
};

// The callers most RPCs allow, named once for every service.
inline constexpr Role kAdminOnly[] = {Role::kAdmin};
inline constexpr Role kPortalOrAdmin[] = {Role::kPortal, Role::kAdmin};

absl::StatusOr<PeerIdentity> AuthorizeCaller(grpc::ServerContextBase* context,
                                             const CallerCheck& check);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_RPC_AUTH_H_
