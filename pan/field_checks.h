// Provides the request checks shared by the PAN service's validators: FieldErrors, which
// collects "<field>: <problem>" violations and turns them into one INVALID_ARGUMENT whose
// message starts with the first offending field, and checks for the kinds of text a request
// carries (single-line header-bound text, multi-line bodies, addresses, timestamps,
// durations). Everything is checked before anything is stored, so a bad request changes
// nothing. Stateless helpers; FieldErrors is thread-compatible.
#ifndef MAILROOM_PAN_FIELD_CHECKS_H_
#define MAILROOM_PAN_FIELD_CHECKS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom::pan {

class FieldErrors {
 public:
  void Add(absl::string_view field, absl::string_view problem);
  bool empty() const { return violations_.empty(); }
  const std::vector<std::pair<std::string, std::string>>& violations() const { return violations_; }
  // OK when empty; otherwise INVALID_ARGUMENT "f1: p1; f2: p2" (reason INVALID_FIELD).
  absl::Status ToStatus() const;

 private:
  std::vector<std::pair<std::string, std::string>> violations_;
};

// Number of Unicode characters in well-formed UTF-8 `text`.
size_t Utf8Length(absl::string_view text);

struct TextRule {
  bool required = false;
  size_t max_chars = 256;
  // Bodies may hold line breaks and tabs; everything that can end up in a header (names,
  // subjects, ids) may not, which is what makes header injection impossible.
  bool multiline = false;
  // For bodies, a limit in bytes (the documented "256 KiB") instead of characters.
  size_t max_bytes = 0;
};

// A single-line value of at most `max_chars` characters.
inline TextRule Line(size_t max_chars, bool required = false) {
  TextRule rule;
  rule.required = required;
  rule.max_chars = max_chars;
  return rule;
}

// A body of at most `max_bytes` bytes.
inline TextRule Body(size_t max_bytes) {
  TextRule rule;
  rule.multiline = true;
  rule.max_bytes = max_bytes;
  return rule;
}

// Checks UTF-8 well-formedness, control characters (CR/LF named as such), length and
// presence.
void CheckText(FieldErrors* errors, absl::string_view field, absl::string_view value,
               const TextRule& rule);

// Checks an EmailAddress message at `field` ("account.email"): the address (required when
// `required`, else only if set) and its display name.
void CheckEmailAddress(FieldErrors* errors, absl::string_view field,
                       const mailroom::common::v1::EmailAddress& address, bool required);

// A Timestamp inside 0001-01-01 .. 9999-12-31 with nanos in range.
void CheckTimestamp(FieldErrors* errors, absl::string_view field,
                    const google::protobuf::Timestamp& time);

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_FIELD_CHECKS_H_
