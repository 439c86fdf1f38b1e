#include "mnt/alarm_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/mail/address_checks.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

constexpr size_t kMaxNodeChars = 256;
constexpr size_t kMaxTitleChars = 256;
constexpr size_t kMaxFixBytes = 4096;
constexpr size_t kMaxRawReplyBytes = 16384;
constexpr size_t kMaxEndpointBytes = 2048;
constexpr int kMaxCodes = 32;
constexpr size_t kMaxCodeChars = 64;
constexpr size_t kMaxTraceIdChars = 128;
constexpr size_t kMaxAlarmIdChars = 64;

void CheckDiagnosis(FieldErrors* errors, const cv1::Diagnosis& d, absl::string_view prefix) {
  auto field = [prefix](absl::string_view name) { return absl::StrCat(prefix, name); };
  if (!cv1::FailureCause_IsValid(d.cause())) errors->Add(field("cause"), "unknown value");
  CheckText(errors, field("title"), d.title(), Line(kMaxTitleChars));
  CheckText(errors, field("fix"), d.fix(), Body(kMaxFixBytes));
  CheckText(errors, field("raw_reply"), d.raw_reply(), Body(kMaxRawReplyBytes));
  if (d.codes_size() > kMaxCodes) {
    errors->Add(field("codes"), absl::StrCat("more than ", kMaxCodes, " codes"));
  } else {
    for (int i = 0; i < d.codes_size(); ++i) {
      CheckPrintableAscii(errors, absl::StrCat(prefix, "codes[", i, "]"), d.codes(i),
                          kMaxCodeChars, /*required=*/false);
    }
  }
  CheckText(errors, field("endpoint"), d.endpoint(), LineBytes(kMaxEndpointBytes));
  CheckPrintableAscii(errors, field("trace_id"), d.trace_id(), kMaxTraceIdChars, false);
  CheckPrintableAscii(errors, field("correlation_id"), d.correlation_id(), kMaxTraceIdChars,
                      false);
}

void CheckType(FieldErrors* errors, int type, const std::string& field) {
  if (type == mv1::ALARM_TYPE_UNSPECIFIED) {
    errors->Add(field, "required");
  } else if (!mv1::AlarmType_IsValid(type)) {
    errors->Add(field, "unknown alarm type");
  }
}

}  // namespace

absl::Status ValidateRaiseAlarmRequest(const mv1::RaiseAlarmRequest& request) {
  FieldErrors errors;
  CheckType(&errors, request.type(), "type");
  if (!mv1::AlarmSeverity_IsValid(request.severity())) {
    errors.Add("severity", "unknown severity");
  }
  CheckText(&errors, "source_node", request.source_node(), Line(kMaxNodeChars));
  CheckText(&errors, "dedup_key", request.dedup_key(), Line(kMaxDedupKeyChars));
  // The text also makes the email's Subject, hence single-line.
  CheckText(&errors, "text", request.text(), LineBytes(kMaxAlarmTextBytes, /*required=*/true));
  if (request.has_diagnosis()) CheckDiagnosis(&errors, request.diagnosis(), "diagnosis.");
  CheckTimestamp(&errors, "occur_time", request.has_occur_time() ? &request.occur_time() : nullptr,
                 /*required=*/false);
  CheckIdempotencyKey(&errors, "idempotency_key", request.idempotency_key());
  return errors.ToStatus();
}

absl::Status ValidateAlarmSettings(const mv1::AlarmSettings& settings, absl::string_view prefix) {
  FieldErrors errors;
  const std::string p(prefix);
  if (settings.include_system_alarms_in_emails() && settings.sender().address().empty()) {
    errors.Add(p + "sender.address", "required when include_system_alarms_in_emails is on");
  } else {
    CheckEmailAddress(&errors, p + "sender", settings.sender(), /*required=*/false);
  }
  if (settings.admin_recipients_size() > kMaxAdminRecipients) {
    errors.Add(p + "admin_recipients", absl::StrCat("more than ", kMaxAdminRecipients));
  } else {
    for (int i = 0; i < settings.admin_recipients_size(); ++i) {
      CheckEmailAddress(&errors, absl::StrCat(p, "admin_recipients[", i, "]"),
                        settings.admin_recipients(i), /*required=*/true);
    }
  }
  if (settings.has_suppression_window()) {
    const auto& w = settings.suppression_window();
    if (w.seconds() < 0 || w.nanos() < 0 || w.nanos() > 999999999 ||
        w.seconds() > kMaxSuppressionWindowSeconds ||
        (w.seconds() == kMaxSuppressionWindowSeconds && w.nanos() > 0)) {
      errors.Add(p + "suppression_window", "must be 0 (no suppression) .. 7 days");
    }
  }
  for (int i = 0; i < settings.enabled_types_size(); ++i) {
    CheckType(&errors, settings.enabled_types(i), absl::StrCat(p, "enabled_types[", i, "]"));
  }
  return errors.ToStatus();
}

absl::Status ValidateListAlarmsRequest(const mv1::ListAlarmsRequest& request) {
  FieldErrors errors;
  for (int i = 0; i < request.types_size(); ++i) {
    CheckType(&errors, request.types(i), absl::StrCat("types[", i, "]"));
  }
  for (int i = 0; i < request.severities_size(); ++i) {
    const int v = request.severities(i);
    if (v == mv1::ALARM_SEVERITY_UNSPECIFIED || !mv1::AlarmSeverity_IsValid(v)) {
      errors.Add(absl::StrCat("severities[", i, "]"), "must be CRITICAL, WARNING or INFO");
    }
  }
  for (int i = 0; i < request.states_size(); ++i) {
    const int v = request.states(i);
    if (v == mv1::ALARM_STATE_UNSPECIFIED || !mv1::AlarmState_IsValid(v)) {
      errors.Add(absl::StrCat("states[", i, "]"), "must be ACTIVE or CLEARED");
    }
  }
  CheckText(&errors, "source_node", request.source_node(), Line(kMaxNodeChars));
  CheckTimestamp(&errors, "occur_after",
                 request.has_occur_after() ? &request.occur_after() : nullptr,
                 /*required=*/false);
  if (request.page().page_size() < 0) errors.Add("page.page_size", "must not be negative");
  return errors.ToStatus();
}

absl::Status ValidateClearAlarmRequest(const mv1::ClearAlarmRequest& request) {
  FieldErrors errors;
  if (request.id().empty() == request.dedup_key().empty()) {
    errors.Add("id", "exactly one of id and dedup_key is required");
  }
  CheckPrintableAscii(&errors, "id", request.id(), kMaxAlarmIdChars, /*required=*/false);
  CheckText(&errors, "dedup_key", request.dedup_key(), Line(kMaxDedupKeyChars));
  CheckText(&errors, "reason", request.reason(), LineBytes(kMaxClearReasonBytes));
  CheckText(&errors, "source_node", request.source_node(), Line(kMaxNodeChars));
  if (!request.source_node().empty() && request.dedup_key().empty()) {
    errors.Add("source_node", "goes with dedup_key (an id names one alarm already)");
  }
  return errors.ToStatus();
}

absl::Status ValidateGetNotificationStatusRequest(
    const mv1::GetNotificationStatusRequest& request) {
  FieldErrors errors;
  CheckNotificationLookup(&errors, request.notification_id(), request.idempotency_key());
  return errors.ToStatus();
}

}  // namespace mailroom::mnt
