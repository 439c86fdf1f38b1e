#include "common/mail/notification_kinds.h"

namespace mailroom {

namespace cv1 = ::mailroom::common::v1;

namespace {

// One row per kind (see send_priority.h and mail_purpose.h for why each is what it is).
constexpr NotificationKindTraits kKinds[] = {
    {cv1::NOTIFICATION_KIND_ALARM, cv1::ROLE_MNT, cv1::SEND_PRIORITY_URGENT,
     cv1::MAIL_PURPOSE_ALARMS},
    {cv1::NOTIFICATION_KIND_ALARM_SUMMARY, cv1::ROLE_MNT, cv1::SEND_PRIORITY_NORMAL,
     cv1::MAIL_PURPOSE_ALARMS},
    {cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION, cv1::ROLE_PSN, cv1::SEND_PRIORITY_URGENT,
     cv1::MAIL_PURPOSE_GUEST_CREDENTIALS},
    {cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS, cv1::ROLE_PSN, cv1::SEND_PRIORITY_NORMAL,
     cv1::MAIL_PURPOSE_GUEST_CREDENTIALS},
    {cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS_RESEND, cv1::ROLE_PSN, cv1::SEND_PRIORITY_NORMAL,
     cv1::MAIL_PURPOSE_GUEST_CREDENTIALS},
    {cv1::NOTIFICATION_KIND_PASSWORD_RESET, cv1::ROLE_PSN, cv1::SEND_PRIORITY_URGENT,
     cv1::MAIL_PURPOSE_GUEST_CREDENTIALS},
    {cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY, cv1::ROLE_PSN, cv1::SEND_PRIORITY_BULK,
     cv1::MAIL_PURPOSE_SPONSOR_MAIL},
    {cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL, cv1::ROLE_PSN, cv1::SEND_PRIORITY_URGENT,
     cv1::MAIL_PURPOSE_TEST_MAIL},
    {cv1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING, cv1::ROLE_PAN, cv1::SEND_PRIORITY_BULK,
     cv1::MAIL_PURPOSE_REMINDERS},
    {cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER, cv1::ROLE_PAN, cv1::SEND_PRIORITY_BULK,
     cv1::MAIL_PURPOSE_REMINDERS},
};

}  // namespace

NotificationKindTraits TraitsOf(cv1::NotificationKind kind) {
  for (const NotificationKindTraits& row : kKinds) {
    if (row.kind == kind) return row;
  }
  return {kind, cv1::ROLE_UNSPECIFIED, cv1::SEND_PRIORITY_NORMAL, cv1::MAIL_PURPOSE_UNSPECIFIED};
}

}  // namespace mailroom
