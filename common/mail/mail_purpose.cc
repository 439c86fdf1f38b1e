#include "common/mail/mail_purpose.h"

#include "common/mail/notification_kinds.h"

namespace mailroom {

namespace cv1 = ::mailroom::common::v1;

MailPurpose PurposeOf(cv1::NotificationKind kind) { return TraitsOf(kind).purpose; }

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
