#include "common/rpc/role.h"

#include "absl/strings/str_cat.h"

namespace mailroom {

constexpr struct {
  Role role;
  absl::string_view name;
} kRoleNames[] = {
    {Role::kBroker, "broker"}, {Role::kPan, "pan"},     {Role::kPsn, "psn"},
    {Role::kMnt, "mnt"},       {Role::kAdmin, "admin"}, {Role::kPortal, "portal"},
};

absl::string_view RoleName(Role role) {
  for (const auto& entry : kRoleNames) {
    if (entry.role == role) return entry.name;
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (const auto& entry : kRoleNames) {
    if (entry.name == name) return entry.role;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown role \"", name, "\" (expected broker, pan, psn, mnt, admin or portal)"));
}

}  // namespace mailroom
