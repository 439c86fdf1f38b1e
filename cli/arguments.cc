#include "cli/arguments.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mailroom::cli {
namespace {

bool Contains(const std::vector<std::string>& names, absl::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string Known(const ArgumentSpec& spec) {
  std::vector<std::string> names = spec.options;
  names.insert(names.end(), spec.switches.begin(), spec.switches.end());
  if (names.empty()) return "this command takes no options";
  return absl::StrCat("known: ", absl::StrJoin(names, ", "));
}

std::string Takes(const ArgumentSpec& spec) {
  if (spec.positional.empty()) return "this command takes no positional argument";
  return absl::StrCat("this command takes ", absl::StrJoin(spec.positional, " "));
}

}  // namespace

absl::StatusOr<Arguments> Arguments::Parse(absl::Span<const std::string> words,
                                           const ArgumentSpec& spec) {
  Arguments parsed;
  for (const std::string& word : words) {
    const size_t equals = word.find('=');
    if (equals == 0) {
      return absl::InvalidArgumentError(absl::StrCat("\"", word, "\": expected NAME=VALUE"));
    }
    if (equals != std::string::npos) {
      const std::string name = word.substr(0, equals);
      if (Contains(spec.switches, name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", word, "\": ", name, " is a switch and takes no value"));
      }
      if (!Contains(spec.options, name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", word, "\": unknown option \"", name, "\" (", Known(spec), ")"));
      }
      parsed.named_[name] = word.substr(equals + 1);
    } else if (Contains(spec.switches, word)) {
      parsed.named_[word] = "";
    } else if (parsed.positional_.size() < spec.positional.size()) {
      parsed.positional_.push_back(word);
    } else if (Contains(spec.options, word)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", word, "\": an option needs a value: ", word, "=VALUE"));
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", word, "\" (", Takes(spec), ")"));
    }
  }
  if (parsed.positional_.size() < spec.required) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing ", spec.positional[parsed.positional_.size()], " (", Takes(spec),
                     ")"));
  }
  return parsed;
}

bool Arguments::Has(absl::string_view name) const { return named_.find(name) != named_.end(); }

std::string Arguments::Get(absl::string_view name, absl::string_view fallback) const {
  const auto it = named_.find(name);
  return it == named_.end() ? std::string(fallback) : it->second;
}

}  // namespace mailroom::cli
