// Provides the words mailroomctl reads and prints for protobuf values: timestamps in UTC
// ("-" when unset), enum names without their prefix, enum values typed in any spelling, and
// email addresses with their display names. Stateless and thread-safe.
#ifndef MAILROOM_CLI_PROTO_WORDS_H_
#define MAILROOM_CLI_PROTO_WORDS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom::cli {

// `timestamp` in UTC with an absl::FormatTime `format`; "-" when it is unset (zero).
std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp, const char* format);

// "ALARM_STATE_ACTIVE" without "ALARM_STATE_": "ACTIVE".
std::string WithoutPrefix(absl::string_view enum_name, absl::string_view prefix);

// The enum constant a person means by "client-secret-expiry", "CLIENT_SECRET_EXPIRY" or the
// full name: upper case, '-' as '_', `prefix` added when missing.
std::string EnumConstant(absl::string_view value, absl::string_view prefix);

// The enum value a person means by `value` (see EnumConstant), parsed by the generated
// `parse` (e.g. AlarmType_Parse); nullopt for an unknown name and for the zero value
// (*_UNSPECIFIED), which no one means.
template <typename Enum, typename Parse>
absl::optional<Enum> ParseEnumWord(absl::string_view value, absl::string_view prefix,
                                   Parse parse) {
  Enum parsed;
  if (!parse(EnumConstant(value, prefix), &parsed) || static_cast<int>(parsed) == 0) {
    return absl::nullopt;
  }
  return parsed;
}

// "Name <address>", or the address alone when there is no display name.
std::string FormatAddress(const mailroom::common::v1::EmailAddress& address);

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_PROTO_WORDS_H_
