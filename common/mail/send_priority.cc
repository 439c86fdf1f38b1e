#include "common/mail/send_priority.h"

namespace mailroom {

namespace cv1 = ::mailroom::common::v1;

SendPriority PriorityOf(cv1::NotificationKind kind) {
  switch (kind) {
    case cv1::NOTIFICATION_KIND_PASSWORD_RESET:
    case cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION:
    case cv1::NOTIFICATION_KIND_ALARM:
    case cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL:
      return cv1::SEND_PRIORITY_URGENT;
    case cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY:
    case cv1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING:
    case cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER:
      return cv1::SEND_PRIORITY_BULK;
    default:  // GUEST_CREDENTIALS, GUEST_CREDENTIALS_RESEND, ALARM_SUMMARY, and any new kind
      return cv1::SEND_PRIORITY_NORMAL;
  }
}

SendPriority Normalized(SendPriority priority) {
  switch (priority) {
    case cv1::SEND_PRIORITY_URGENT:
    case cv1::SEND_PRIORITY_BULK:
      return priority;
    default:
      return cv1::SEND_PRIORITY_NORMAL;
  }
}

int PriorityLevel(SendPriority priority) {
  switch (Normalized(priority)) {
    case cv1::SEND_PRIORITY_URGENT: return 0;
    case cv1::SEND_PRIORITY_BULK: return 2;
    default: return 1;
  }
}

}  // namespace mailroom
