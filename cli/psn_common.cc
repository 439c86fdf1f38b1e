#include "cli/psn_common.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/proto_words.h"

namespace mailroom::cli {

namespace pv1 = ::mailroom::psn::v1;

absl::StatusOr<std::vector<Target>> ChoosePsns(const Admin& admin, const Arguments& args,
                                               bool all_by_default, absl::string_view fallback) {
  std::vector<Target> all = PsnTargets(admin);
  if (all.empty()) {
    return absl::FailedPreconditionError("no psn_targets in the admin configuration");
  }
  if (!args.Has("psn")) {
    for (const Target& target : all) {
      if (target.name == fallback) return std::vector<Target>{target};
    }
    if (all_by_default) return all;
    return std::vector<Target>{all[0]};
  }
  const std::string value = args.Get("psn");
  absl::string_view number = value;
  absl::ConsumePrefix(&number, "psn");
  int index = 0;
  if (!absl::SimpleAtoi(number, &index) || index < 1 || index > static_cast<int>(all.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("psn=", value, ": expected 1..", all.size(), " (psn_targets)"));
  }
  return std::vector<Target>{all[index - 1]};
}

bool PsnFanOut::Add(const Target& target, const absl::Status& status,
                    const google::protobuf::Message* response) {
  if (!status.ok()) {
    std::cerr << target.name << " (" << target.address << "): ";
    Fail(status);
    ++failures_;
    return false;
  }
  if (JsonOutput() && json_style_ == PsnJson::kResponses) {
    json_.push_back(absl::StrCat("{\"psn\": \"", target.name,
                                 "\", \"response\": ", ToJson(*response), "}"));
  }
  return true;
}

int PsnFanOut::Finish() {
  if (JsonOutput()) {
    if (json_style_ == PsnJson::kResponses) {
      std::cout << "[" << absl::StrJoin(json_, ",\n") << "]\n";
    } else {
      std::cout << "{\"failures\": " << failures_ << "}\n";
    }
  }
  return failures_ == 0 ? kExitOk : kExitFailed;
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ostringstream contents;
  if (path == "-") {
    contents << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    contents << in.rdbuf();
  }
  return contents.str();
}

absl::StatusOr<pv1::TemplateKind> ParseTemplateKind(const std::string& value) {
  if (auto kind =
          ParseEnumWord<pv1::TemplateKind>(value, "TEMPLATE_KIND_", pv1::TemplateKind_Parse)) {
    return *kind;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "kind=", value,
      ": expected self_registration, guest_credentials, sponsor_summary or password_reset"));
}

std::string PsnTime(const google::protobuf::Timestamp& time) {
  return FormatTimestamp(time, "%Y-%m-%d %H:%M:%S UTC");
}

}  // namespace mailroom::cli
