// Provides the field checks the PSN service applies to every request and template before
// anything is rendered or queued: UTF-8 well-formedness, control characters (CR/LF make a
// header injection, so single-line fields refuse them), lengths in characters, addresses,
// idempotency keys, portal ids and language tags. Every failure is INVALID_ARGUMENT whose
// message starts with the field path as the client wrote it ("guests[2].email.address: ..."),
// because a portal must be able to point its user at the offending input. Stateless and
// thread-safe.
#ifndef MAILROOM_PSN_FIELD_CHECKS_H_
#define MAILROOM_PSN_FIELD_CHECKS_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom::psn {

// INVALID_ARGUMENT "<field>: <problem>".
absl::Status FieldError(absl::string_view field, absl::string_view problem);

struct TextRule {
  bool required = false;
  // In Unicode characters (code points), not bytes; 0 means unlimited.
  size_t max_chars = 0;
  // Single-line values end up in headers or table cells: no CR, LF or other control
  // characters (TAB is allowed). Multi-line values (bodies) only refuse NUL.
  bool single_line = true;
};

// Rules for a one-line value (names, subjects, ids) and for a body.
inline TextRule SingleLine(size_t max_chars, bool required = false) {
  return TextRule{required, max_chars, true};
}
inline TextRule MultiLine(size_t max_chars, bool required = false) {
  return TextRule{required, max_chars, false};
}

// Well-formed UTF-8, within the rule.
absl::Status CheckText(absl::string_view field, absl::string_view value, const TextRule& rule);

// Number of code points of well-formed UTF-8 `text`.
size_t Utf8Length(absl::string_view text);

// An EmailAddress: `address` valid per common/mail/email_address.h (required when `required`,
// otherwise only checked when the message is present), display_name ≤ 256 characters on one
// line. Fields are named "<field>.address" and "<field>.display_name".
absl::Status CheckEmailAddress(absl::string_view field,
                               const mailroom::common::v1::EmailAddress& address, bool required);

// Required; 1..128 printable ASCII characters (no spaces).
absl::Status CheckIdempotencyKey(absl::string_view field, absl::string_view key);

// ≤ 128 characters on one line; required unless `allow_empty` ("" is the default portal
// in template keys).
absl::Status CheckPortalId(absl::string_view field, absl::string_view portal_id,
                           bool allow_empty);

// Empty, or a BCP 47-shaped tag: alphanumeric subtags of 1..8 separated by '-', the first
// alphabetic, at most 35 characters ("en", "zh-TW", "zh-Hant-TW").
absl::Status CheckLanguage(absl::string_view field, absl::string_view language);

// A timestamp within 0001-01-01..9999-12-31 with nanos in range; required when `required`
// (an unset message counts as absent).
absl::Status CheckTimestamp(absl::string_view field, bool present,
                            const google::protobuf::Timestamp& timestamp, bool required);

// `language` lower-cased, for case-insensitive comparison of tags.
std::string NormalizeLanguage(absl::string_view language);

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_FIELD_CHECKS_H_
