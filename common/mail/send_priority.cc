#include "common/mail/send_priority.h"

#include "common/mail/notification_kinds.h"

namespace mailroom {

namespace cv1 = ::mailroom::common::v1;

SendPriority PriorityOf(cv1::NotificationKind kind) { return TraitsOf(kind).priority; }

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
