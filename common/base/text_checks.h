// Provides the one validator of request and template fields used by every role (PSN, PAN,
// MnT): a FieldErrors collector and checks for the kinds of value an API message carries.
// Stateless helpers; FieldErrors is thread-compatible.
//
// The rules, the same for every role:
//  - Errors name the field by its path from the request root, as the client wrote it
//    ("guests[2].email.address", "settings.guest_expiry_template.subject"), and are all
//    collected: FieldErrors::ToStatus() is one INVALID_ARGUMENT "f1: p1; f2: p2" in the order
//    the checks ran, so the first offending field comes first. One error per field: a check
//    stops at the first problem of its value.
//  - Empty means absent. A required field that is empty: "is required".
//  - Text must be well-formed UTF-8 (RFC 3629: no overlong forms, surrogates, code points
//    above U+10FFFF or truncated sequences): "not valid UTF-8 (byte N)".
//  - Single-line fields (names, subjects, ids: everything that may end up in a header, a
//    table cell or a log line) refuse line breaks, which is what makes header injection
//    impossible: CR, LF, U+2028 and U+2029 give "contains CR or LF (a line break)".
//  - Multi-line fields (bodies) accept LF, CRLF, U+2028 and U+2029; a CR not followed by LF
//    is refused ("contains CR not followed by LF"), because a bare CR only ever serves to
//    overwrite a line when the text is shown or logged.
//  - Both refuse every other control character: C0 but TAB, DEL and C1 (U+0080..U+009F),
//    NUL included: "contains a control character (U+001b)".
//  - Limits: `max_chars` counts code points, `max_bytes` counts bytes (0 means none); each
//    field's unit is the one its proto documents (names in characters, bodies in bytes).
//    "exceeds 256 characters", "exceeds 262144 bytes". Limits are inclusive.
//  - Check order for one value: presence, byte limit, UTF-8, characters, character limit.
//  - Timestamps: google.protobuf.Timestamp's range, 0001-01-01T00:00:00Z ..
//    9999-12-31T23:59:59Z, with nanos in 0..999999999.
//  - Identifiers meant for machines (idempotency keys, notification ids, codes, trace ids):
//    printable ASCII without spaces.
//  - Language tags: BCP 47-shaped, compared case-insensitively.
//  - Time zones: IANA names known to the system's zoneinfo, ASCII letters, digits and "/_+-"
//    only, so a name can never reach a file outside the zoneinfo directory.
// Addresses (common.v1.EmailAddress) are checked by common/mail/address_checks.h with the
// same collector.
#ifndef MAILROOM_COMMON_BASE_TEXT_CHECKS_H_
#define MAILROOM_COMMON_BASE_TEXT_CHECKS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace mailroom {

// google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z and
// 9999-12-31T23:59:59Z.
inline constexpr int64_t kMinTimestampSeconds = -62135596800;
inline constexpr int64_t kMaxTimestampSeconds = 253402300799;

inline constexpr size_t kMaxIdempotencyKeyChars = 128;
// Notification ids are the outbox's ULIDs; the limit leaves room for another format.
inline constexpr size_t kMaxNotificationIdChars = 256;
inline constexpr size_t kMaxLanguageChars = 35;
inline constexpr size_t kMaxTimeZoneChars = 64;

// Collects "<field>: <problem>" violations.
class FieldErrors {
 public:
  void Add(absl::string_view field, absl::string_view problem);
  bool empty() const { return violations_.empty(); }
  size_t size() const { return violations_.size(); }
  const std::vector<std::pair<std::string, std::string>>& violations() const {
    return violations_;
  }
  // OK when empty; otherwise INVALID_ARGUMENT "f1: p1; f2: p2".
  absl::Status ToStatus() const;

 private:
  std::vector<std::pair<std::string, std::string>> violations_;
};

// One violation as a status, for a check that has nothing else to report (e.g. a page token
// from another listing): INVALID_ARGUMENT "<field>: <problem>".
absl::Status FieldError(absl::string_view field, absl::string_view problem);

struct TextRule {
  bool required = false;
  // Line breaks allowed (see the top of this file).
  bool multiline = false;
  // In code points; 0 means no limit.
  size_t max_chars = 0;
  // In bytes; 0 means no limit.
  size_t max_bytes = 0;
};

// A single-line value of at most `max_chars` characters (0: unlimited).
inline TextRule Line(size_t max_chars, bool required = false) {
  TextRule rule;
  rule.required = required;
  rule.max_chars = max_chars;
  return rule;
}

// A single-line value whose documented limit is in bytes.
inline TextRule LineBytes(size_t max_bytes, bool required = false) {
  TextRule rule;
  rule.required = required;
  rule.max_bytes = max_bytes;
  return rule;
}

// A multi-line body of at most `max_bytes` bytes (0: unlimited).
inline TextRule Body(size_t max_bytes, bool required = false) {
  TextRule rule;
  rule.required = required;
  rule.multiline = true;
  rule.max_bytes = max_bytes;
  return rule;
}

// Each Check* adds at most one violation for its field and returns whether it added none.

bool CheckText(FieldErrors* errors, absl::string_view field, absl::string_view value,
               const TextRule& rule);

// 1..`max_chars` printable ASCII characters without spaces (empty is fine unless
// `required`).
bool CheckPrintableAscii(FieldErrors* errors, absl::string_view field, absl::string_view value,
                         size_t max_chars, bool required);

// Required; printable ASCII without spaces, at most 128 characters.
bool CheckIdempotencyKey(FieldErrors* errors, absl::string_view field, absl::string_view key);

// A notification id, as every role's GetNotificationStatus takes it: an identifier (printable
// ASCII without spaces), at most kMaxNotificationIdChars.
bool CheckNotificationId(FieldErrors* errors, absl::string_view field, absl::string_view id,
                         bool required);

// The lookup of a notification by exactly one of `notification_id` and `idempotency_key`
// (the fields of those names), each checked as above.
bool CheckNotificationLookup(FieldErrors* errors, absl::string_view notification_id,
                             absl::string_view idempotency_key);

// `timestamp` null means the message is unset: "is required" when `required`, else fine.
bool CheckTimestamp(FieldErrors* errors, absl::string_view field,
                    const google::protobuf::Timestamp* timestamp, bool required);

// Empty, or a BCP 47-shaped tag: alphanumeric subtags of 1..8 separated by '-', the first
// alphabetic, at most 35 characters ("en", "zh-TW", "zh-Hant-TW", "es-419").
bool CheckLanguage(FieldErrors* errors, absl::string_view field, absl::string_view language);

// `language` lower-cased, for case-insensitive comparison of tags.
std::string NormalizeLanguage(absl::string_view language);

// Empty (UTC), or an IANA time zone name the system knows ("Asia/Taipei").
bool CheckTimeZone(FieldErrors* errors, absl::string_view field, absl::string_view name);

// The zone `name` names; UTC when it is empty or would not pass CheckTimeZone.
absl::TimeZone TimeZoneOrUtc(absl::string_view name);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_TEXT_CHECKS_H_
