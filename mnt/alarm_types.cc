#include "mnt/alarm_types.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace mailroom::mnt {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

absl::string_view AlarmTypeTitle(mv1::AlarmType type) {
  switch (type) {
    // The seed's name for it (ISE's alarm list).
    case mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY: return "SMTP OAuth Client Secret expiry";
    case mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED: return "SMTP authentication failed";
    case mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED: return "Access token unavailable";
    case mv1::ALARM_TYPE_DELIVERY_FAILED: return "Email delivery failed";
    case mv1::ALARM_TYPE_QUEUE_BACKLOG: return "Outbox backlog";
    case mv1::ALARM_TYPE_CERTIFICATE_EXPIRY: return "Certificate expiry";
    case mv1::ALARM_TYPE_NODE_DOWN: return "Node down";
    case mv1::ALARM_TYPE_SEND_QUOTA_EXCEEDED: return "Send quota exceeded";
    case mv1::ALARM_TYPE_MAIL_TRANSPORT_FALLBACK: return "Mail sent through Graph (SMTP fallback)";
    case mv1::ALARM_TYPE_GENERIC: return "Alarm";
    default: return "Alarm";
  }
}

std::string AlarmTypeSlug(mv1::AlarmType type) {
  std::string name = mv1::AlarmType_Name(type);
  if (name.empty()) name = absl::StrCat("ALARM_TYPE_", static_cast<int>(type));
  absl::string_view view = name;
  absl::ConsumePrefix(&view, "ALARM_TYPE_");
  return absl::StrReplaceAll(absl::AsciiStrToLower(view), {{"_", "-"}});
}

std::string SeverityName(mv1::AlarmSeverity severity) {
  std::string name = mv1::AlarmSeverity_Name(severity);
  absl::string_view view = name;
  absl::ConsumePrefix(&view, "ALARM_SEVERITY_");
  return std::string(view);
}

mv1::AlarmSeverity DefaultSeverity(mv1::AlarmType type, const cv1::Diagnosis& diagnosis) {
  switch (type) {
    case mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED:
    case mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED: return mv1::ALARM_SEVERITY_CRITICAL;
    case mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY:
      return diagnosis.cause() == cv1::FAILURE_CAUSE_CLIENT_SECRET_EXPIRED
                 ? mv1::ALARM_SEVERITY_CRITICAL
                 : mv1::ALARM_SEVERITY_WARNING;
    default: return mv1::ALARM_SEVERITY_WARNING;
  }
}

std::string DefaultDedupKey(mv1::AlarmType type, absl::string_view source_node) {
  return absl::StrCat(AlarmTypeSlug(type), "/", source_node);
}

absl::string_view AlarmTypeGuidance(mv1::AlarmType type) {
  switch (type) {
    case mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY:
      return "Create a new client secret for the app in Microsoft Entra ID (App registrations > "
             "Certificates & secrets; copy its Value, which is shown only once), then enter the "
             "new secret and its expiry date on the SMTP Server settings (mailroomctl settings "
             "set --client_secret_file=FILE --secret_expiry=YYYY-MM-DD). The settings are saved "
             "once Test Connection passes.";
    case mv1::ALARM_TYPE_CERTIFICATE_EXPIRY:
      return "Upload a new certificate to the app registration in Microsoft Entra ID (or renew "
             "the node's mutual-TLS certificate) and update it before the expiry date.";
    case mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED:
      return "Check that the Exchange service principal was created with the Enterprise "
             "Application's object id (New-ServicePrincipal), that it has FullAccess on the "
             "sending mailbox (Add-MailboxPermission), and that SMTP AUTH is enabled for the "
             "mailbox. Run Test Connection (mailroomctl settings test) to see the failing step.";
    case mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED:
      return "Run Test Connection (mailroomctl settings test): it names the failing step and "
             "its fix (tenant id, client id, secret, consent, network).";
    case mv1::ALARM_TYPE_DELIVERY_FAILED:
      return "See the notification's attempt history with mailroomctl outbox show NODE ID and "
             "send it again with mailroomctl outbox retry NODE ID once the cause is fixed.";
    case mv1::ALARM_TYPE_QUEUE_BACKLOG:
      return "Mail is queuing up faster than it is sent: check the node's outbox "
             "(mailroomctl outbox list NODE) for the reason its entries wait.";
    case mv1::ALARM_TYPE_NODE_DOWN:
      return "Check that the node's service is running and reachable (mailroomctl health).";
    case mv1::ALARM_TYPE_SEND_QUOTA_EXCEEDED:
      return "The mailbox reached Exchange Online's daily recipient limit; sending resumes when "
             "the 24-hour window rolls over. Spread large sends, or use another mailbox.";
    case mv1::ALARM_TYPE_MAIL_TRANSPORT_FALLBACK:
      return "Re-enable SMTP AUTH for the mailbox (Set-CASMailbox -Identity <mailbox> "
             "-SmtpClientAuthenticationDisabled $false, or tenant-wide Set-TransportConfig "
             "-SmtpClientAuthenticationDisabled $false) or restore the path to the SMTP "
             "endpoint, then run Test Connection (mailroomctl settings test --to=ADDRESS): once "
             "it passes, the mailbox goes back to SMTP and the alarm clears.";
    default: return "";
  }
}

bool IsMailPathAlarm(mv1::AlarmType type) {
  switch (type) {
    case mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED:
    case mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED:
    case mv1::ALARM_TYPE_DELIVERY_FAILED:
    case mv1::ALARM_TYPE_QUEUE_BACKLOG:
    case mv1::ALARM_TYPE_SEND_QUOTA_EXCEEDED: return true;
    default: return false;
  }
}

}  // namespace mailroom::mnt
