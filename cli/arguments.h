// Provides the one parser of the words after a mailroomctl command, used by every command
// group. The rule, the same for every command (and printed by `mailroomctl help`):
//
//   NAME=VALUE  an option; NAME must be one the command knows. Given twice, the last wins.
//   a bare word a switch if the command has a switch by that name (copy_me, resolve, ...),
//               otherwise a positional argument (an ID, a NODE); a command takes only the
//               positional arguments its usage shows.
//
// Anything else (an unknown option, a value given to a switch, a missing or an extra
// positional argument) is an InvalidArgument error that names the offending word.
// `--flags` are not seen here: absl::ParseCommandLine takes them out of argv first.
// Arguments is a value type; thread-compatible.
#ifndef MAILROOM_CLI_ARGUMENTS_H_
#define MAILROOM_CLI_ARGUMENTS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace mailroom::cli {

// What a command accepts.
struct ArgumentSpec {
  std::vector<std::string> options;     // NAME=VALUE names
  std::vector<std::string> switches;    // bare-word names
  std::vector<std::string> positional;  // names of the positional arguments, in order
  size_t required = 0;                  // how many of `positional` must be given
};

class Arguments {
 public:
  static absl::StatusOr<Arguments> Parse(absl::Span<const std::string> words,
                                         const ArgumentSpec& spec);

  // Whether the option or switch was given (an option may be given empty: "from=").
  bool Has(absl::string_view name) const;
  std::string Get(absl::string_view name, absl::string_view fallback = "") const;
  // The options and switches given (a switch has the value ""), by name.
  const std::map<std::string, std::string, std::less<>>& named() const { return named_; }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string, std::less<>> named_;
  std::vector<std::string> positional_;
};

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_ARGUMENTS_H_
