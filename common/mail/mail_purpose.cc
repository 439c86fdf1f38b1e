#include "common/mail/mail_purpose.h"

namespace mailroom {

namespace cv1 = ::mailroom::common::v1;

MailPurpose PurposeOf(cv1::NotificationKind kind) {
  switch (kind) {
    case cv1::NOTIFICATION_KIND_ALARM:
    case cv1::NOTIFICATION_KIND_ALARM_SUMMARY:
      return cv1::MAIL_PURPOSE_ALARMS;
    case cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION:
    case cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS:
    case cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS_RESEND:
    case cv1::NOTIFICATION_KIND_PASSWORD_RESET:
      return cv1::MAIL_PURPOSE_GUEST_CREDENTIALS;
    case cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY:
      return cv1::MAIL_PURPOSE_SPONSOR_MAIL;
    case cv1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING:
    case cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER:
      return cv1::MAIL_PURPOSE_REMINDERS;
    case cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL:
      return cv1::MAIL_PURPOSE_TEST_MAIL;
    default:
      return cv1::MAIL_PURPOSE_UNSPECIFIED;
  }
}

absl::string_view PurposeName(MailPurpose purpose) {
  switch (purpose) {
    case cv1::MAIL_PURPOSE_ALARMS: return "alarms";
    case cv1::MAIL_PURPOSE_GUEST_CREDENTIALS: return "guest credentials";
    case cv1::MAIL_PURPOSE_SPONSOR_MAIL: return "sponsor mail";
    case cv1::MAIL_PURPOSE_REMINDERS: return "reminders";
    case cv1::MAIL_PURPOSE_TEST_MAIL: return "test mail";
    default: return "unrouted mail";
  }
}

}  // namespace mailroom
