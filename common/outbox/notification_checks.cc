#include "common/outbox/notification_checks.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;

bool HasLineBreak(absl::string_view s) { return s.find_first_of("\r\n") != s.npos; }

absl::Status Invalid(absl::string_view prefix, absl::string_view field,
                     absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(prefix, field, ": ", problem));
}

}  // namespace

bool IsPrintableAscii(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

absl::Status ValidateNotification(const NewNotification& n, absl::string_view prefix) {
  if (!n.idempotency_key.empty()) {
    if (n.idempotency_key.size() > kMaxIdempotencyKeyLength) {
      return Invalid(prefix, "idempotency_key",
                     absl::StrCat("exceeds ", kMaxIdempotencyKeyLength, " characters"));
    }
    if (!IsPrintableAscii(n.idempotency_key)) {
      return Invalid(prefix, "idempotency_key", "must be printable ASCII without spaces");
    }
    if (n.request_fingerprint.empty()) {
      return Invalid(prefix, "request_fingerprint", "required with an idempotency_key");
    }
  }
  if (n.kind == cv1::NOTIFICATION_KIND_UNSPECIFIED || !cv1::NotificationKind_IsValid(n.kind)) {
    return Invalid(prefix, "kind", "must be set");
  }
  if (n.from.address().empty()) return Invalid(prefix, "from.address", "required");
  if (HasLineBreak(n.from.address()) || HasLineBreak(n.from.display_name())) {
    return Invalid(prefix, "from", "contains CR or LF");
  }
  if (n.recipients.empty()) return Invalid(prefix, "recipients", "at least one is required");
  for (size_t i = 0; i < n.recipients.size(); ++i) {
    const std::string field = absl::StrCat("recipients[", i, "].address.address");
    const std::string& address = n.recipients[i].address().address();
    if (address.empty()) return Invalid(prefix, field, "required");
    if (HasLineBreak(address) || HasLineBreak(n.recipients[i].address().display_name())) {
      return Invalid(prefix, field, "contains CR or LF");
    }
  }
  if (HasLineBreak(n.subject)) return Invalid(prefix, "subject", "contains CR or LF");
  if (n.message_id.empty()) return Invalid(prefix, "message_id", "required");
  if (!IsPrintableAscii(n.message_id) ||
      n.message_id.find_first_of("<>") != std::string::npos) {
    return Invalid(prefix, "message_id",
                   "must be printable ASCII without spaces or angle brackets");
  }
  if (n.message.empty()) return Invalid(prefix, "message", "required");
  return absl::OkStatus();
}

}  // namespace mailroom
