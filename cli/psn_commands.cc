// The psn service's mailroomctl commands (see role_commands.h). The Psn service is
// not implemented yet, so no command is recognised here.
#include "cli/role_commands.h"

namespace mailroom::cli {

absl::optional<int> RunPsnCommand(const Admin&, const std::vector<std::string>&) {
  return absl::nullopt;
}

}  // namespace mailroom::cli
