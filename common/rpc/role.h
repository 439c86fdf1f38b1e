// Provides Role, the part a mailroom process plays in the cluster, and its names. A role is
// carried in each node certificate as the URI SAN `urn:mailroom:role:<name>`. Stateless.
#ifndef MAILROOM_COMMON_ROLE_H_
#define MAILROOM_COMMON_ROLE_H_

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace mailroom {

enum class Role {
  kBroker,  // the token broker on the primary PAN node
  kPan,     // guest-expiry and password-expiry reminders
  kPsn,     // guest and sponsor mail from the portals
  kMnt,     // alarms
  kAdmin,   // an administrator (mailroomctl)
  kPortal,  // a guest or sponsor portal, or the identity store, calling a role service
};

inline constexpr absl::string_view kRoleUriPrefix = "urn:mailroom:role:";

// "broker", "pan", "psn", "mnt", "admin", "portal".
absl::string_view RoleName(Role role);
absl::StatusOr<Role> ParseRole(absl::string_view name);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_ROLE_H_
