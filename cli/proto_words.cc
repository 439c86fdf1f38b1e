#include "cli/proto_words.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/base/proto_time.h"

namespace mailroom::cli {

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp, const char* format) {
  if (timestamp.seconds() == 0 && timestamp.nanos() == 0) return "-";
  return absl::FormatTime(format, FromProto(timestamp), absl::UTCTimeZone());
}

std::string WithoutPrefix(absl::string_view enum_name, absl::string_view prefix) {
  return std::string(absl::StripPrefix(enum_name, prefix));
}

std::string EnumConstant(absl::string_view value, absl::string_view prefix) {
  std::string name = absl::AsciiStrToUpper(absl::StrReplaceAll(value, {{"-", "_"}}));
  if (!absl::StartsWith(name, prefix)) name = absl::StrCat(prefix, name);
  return name;
}

std::string FormatAddress(const mailroom::common::v1::EmailAddress& address) {
  if (address.display_name().empty()) return address.address();
  return absl::StrCat(address.display_name(), " <", address.address(), ">");
}

}  // namespace mailroom::cli
