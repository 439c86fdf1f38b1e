#include "mnt/alarm_validation.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/mail/email_address.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

// google.protobuf.Timestamp's range: 0001-01-01 .. 9999-12-31.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

size_t Utf8Chars(absl::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

enum class Lines { kSingle, kMulti };

// UTF-8 text with no control characters but TAB (and LF for multi-line fields). CR is never
// accepted: it only ever serves to forge header or log lines.
absl::Status CheckText(absl::string_view value, absl::string_view field, Lines lines) {
  if (const size_t bad = FindInvalidUtf8(value); bad != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("not valid UTF-8 (at byte ", bad, ")"));
  }
  for (char c : value) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\r' || (c == '\n' && lines == Lines::kSingle)) {
      return Invalid(field, "contains CR or LF");
    }
    if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7f) {
      return Invalid(field, "contains a control character");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckBytes(absl::string_view value, absl::string_view field, size_t max_bytes,
                        Lines lines) {
  if (value.size() > max_bytes) {
    return Invalid(field, absl::StrCat("exceeds ", max_bytes, " bytes"));
  }
  return CheckText(value, field, lines);
}

absl::Status CheckChars(absl::string_view value, absl::string_view field, size_t max_chars) {
  if (absl::Status s = CheckText(value, field, Lines::kSingle); !s.ok()) return s;
  if (Utf8Chars(value) > max_chars) {
    return Invalid(field, absl::StrCat("exceeds ", max_chars, " characters"));
  }
  return absl::OkStatus();
}

absl::Status CheckPrintableAscii(absl::string_view value, absl::string_view field,
                                 size_t max_chars) {
  if (value.size() > max_chars) {
    return Invalid(field, absl::StrCat("exceeds ", max_chars, " characters"));
  }
  for (char c : value) {
    if (c < 0x21 || c > 0x7e) return Invalid(field, "must be printable ASCII without spaces");
  }
  return absl::OkStatus();
}

absl::Status CheckTimestamp(const google::protobuf::Timestamp& t, absl::string_view field) {
  if (t.seconds() < kMinTimestampSeconds || t.seconds() > kMaxTimestampSeconds || t.nanos() < 0 ||
      t.nanos() > 999999999) {
    return Invalid(field, "not a valid timestamp");
  }
  return absl::OkStatus();
}

absl::Status CheckAddress(const cv1::EmailAddress& address, const std::string& field) {
  if (address.address().empty()) return Invalid(absl::StrCat(field, ".address"), "required");
  if (absl::Status s = ValidateEmailAddress(address.address(), absl::StrCat(field, ".address"));
      !s.ok()) {
    return s;
  }
  return CheckChars(address.display_name(), absl::StrCat(field, ".display_name"),
                    kMaxDisplayNameChars);
}

absl::Status CheckDiagnosis(const cv1::Diagnosis& d, absl::string_view prefix) {
  const std::string p(prefix);
  if (!cv1::FailureCause_IsValid(d.cause())) return Invalid(p + "cause", "unknown value");
  if (absl::Status s = CheckChars(d.title(), p + "title", 256); !s.ok()) return s;
  if (absl::Status s = CheckBytes(d.fix(), p + "fix", 4096, Lines::kMulti); !s.ok()) return s;
  if (absl::Status s = CheckBytes(d.raw_reply(), p + "raw_reply", 16384, Lines::kMulti); !s.ok()) {
    return s;
  }
  if (d.codes_size() > 32) return Invalid(p + "codes", "more than 32 codes");
  for (int i = 0; i < d.codes_size(); ++i) {
    if (absl::Status s = CheckPrintableAscii(d.codes(i), absl::StrCat(p, "codes[", i, "]"), 64);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckBytes(d.endpoint(), p + "endpoint", 2048, Lines::kSingle); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckPrintableAscii(d.trace_id(), p + "trace_id", 128); !s.ok()) return s;
  return CheckPrintableAscii(d.correlation_id(), p + "correlation_id", 128);
}

absl::Status CheckType(int type, const std::string& field) {
  if (type == mv1::ALARM_TYPE_UNSPECIFIED) return Invalid(field, "required");
  if (!mv1::AlarmType_IsValid(type)) return Invalid(field, "unknown alarm type");
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateIdempotencyKey(absl::string_view key, absl::string_view field) {
  if (key.empty()) return Invalid(field, "required");
  return CheckPrintableAscii(key, field, kMaxIdempotencyKeyChars);
}

absl::Status ValidateRaiseAlarmRequest(const mv1::RaiseAlarmRequest& request) {
  if (absl::Status s = CheckType(request.type(), "type"); !s.ok()) return s;
  if (!mv1::AlarmSeverity_IsValid(request.severity())) {
    return Invalid("severity", "unknown severity");
  }
  if (absl::Status s = CheckChars(request.source_node(), "source_node", 256); !s.ok()) return s;
  if (absl::Status s = CheckChars(request.dedup_key(), "dedup_key", kMaxDedupKeyChars); !s.ok()) {
    return s;
  }
  if (request.text().empty()) return Invalid("text", "required");
  // The text also makes the email's Subject, hence single-line.
  if (absl::Status s = CheckBytes(request.text(), "text", kMaxAlarmTextBytes, Lines::kSingle);
      !s.ok()) {
    return s;
  }
  if (request.has_diagnosis()) {
    if (absl::Status s = CheckDiagnosis(request.diagnosis(), "diagnosis."); !s.ok()) return s;
  }
  if (request.has_occur_time()) {
    if (absl::Status s = CheckTimestamp(request.occur_time(), "occur_time"); !s.ok()) return s;
  }
  return ValidateIdempotencyKey(request.idempotency_key(), "idempotency_key");
}

absl::Status ValidateAlarmSettings(const mv1::AlarmSettings& settings, absl::string_view prefix) {
  const std::string p(prefix);
  if (settings.include_system_alarms_in_emails() && settings.sender().address().empty()) {
    return Invalid(p + "sender.address", "required when include_system_alarms_in_emails is on");
  }
  if (settings.has_sender() &&
      (!settings.sender().address().empty() || !settings.sender().display_name().empty())) {
    if (absl::Status s = CheckAddress(settings.sender(), p + "sender"); !s.ok()) return s;
  }
  if (settings.admin_recipients_size() > kMaxAdminRecipients) {
    return Invalid(p + "admin_recipients", absl::StrCat("more than ", kMaxAdminRecipients));
  }
  for (int i = 0; i < settings.admin_recipients_size(); ++i) {
    if (absl::Status s = CheckAddress(settings.admin_recipients(i),
                                      absl::StrCat(p, "admin_recipients[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  if (settings.has_suppression_window()) {
    const auto& w = settings.suppression_window();
    if (w.seconds() < 0 || w.nanos() < 0 || w.nanos() > 999999999 ||
        w.seconds() > kMaxSuppressionWindowSeconds ||
        (w.seconds() == kMaxSuppressionWindowSeconds && w.nanos() > 0)) {
      return Invalid(p + "suppression_window", "must be 0 (no suppression) .. 7 days");
    }
  }
  for (int i = 0; i < settings.enabled_types_size(); ++i) {
    if (absl::Status s =
            CheckType(settings.enabled_types(i), absl::StrCat(p, "enabled_types[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateListAlarmsRequest(const mv1::ListAlarmsRequest& request) {
  for (int i = 0; i < request.types_size(); ++i) {
    if (absl::Status s = CheckType(request.types(i), absl::StrCat("types[", i, "]")); !s.ok()) {
      return s;
    }
  }
  for (int i = 0; i < request.severities_size(); ++i) {
    const int v = request.severities(i);
    if (v == mv1::ALARM_SEVERITY_UNSPECIFIED || !mv1::AlarmSeverity_IsValid(v)) {
      return Invalid(absl::StrCat("severities[", i, "]"), "must be CRITICAL, WARNING or INFO");
    }
  }
  for (int i = 0; i < request.states_size(); ++i) {
    const int v = request.states(i);
    if (v == mv1::ALARM_STATE_UNSPECIFIED || !mv1::AlarmState_IsValid(v)) {
      return Invalid(absl::StrCat("states[", i, "]"), "must be ACTIVE or CLEARED");
    }
  }
  if (absl::Status s = CheckChars(request.source_node(), "source_node", 256); !s.ok()) return s;
  if (request.has_occur_after()) {
    if (absl::Status s = CheckTimestamp(request.occur_after(), "occur_after"); !s.ok()) return s;
  }
  if (request.page().page_size() < 0) return Invalid("page.page_size", "must not be negative");
  return absl::OkStatus();
}

absl::Status ValidateClearAlarmRequest(const mv1::ClearAlarmRequest& request) {
  if (request.id().empty() == request.dedup_key().empty()) {
    return Invalid("id", "exactly one of id and dedup_key is required");
  }
  if (absl::Status s = CheckPrintableAscii(request.id(), "id", 64); !s.ok()) return s;
  if (absl::Status s = CheckChars(request.dedup_key(), "dedup_key", kMaxDedupKeyChars); !s.ok()) {
    return s;
  }
  return CheckBytes(request.reason(), "reason", kMaxClearReasonBytes, Lines::kSingle);
}

absl::Status ValidateGetNotificationStatusRequest(
    const mv1::GetNotificationStatusRequest& request) {
  if (request.notification_id().empty() == request.idempotency_key().empty()) {
    return Invalid("notification_id",
                   "exactly one of notification_id and idempotency_key is required");
  }
  if (!request.notification_id().empty()) {
    return CheckPrintableAscii(request.notification_id(), "notification_id", 256);
  }
  return ValidateIdempotencyKey(request.idempotency_key(), "idempotency_key");
}

}  // namespace mailroom::mnt
