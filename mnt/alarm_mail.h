// Provides the two emails the MnT sends about an alarm, as MailContent ready for
// BuildMimeMessage: the alarm email (sent for the first occurrence in a suppression window)
// and the summary email (sent at the end of a window in which repeats were suppressed, with
// their count). Both put the alarm's text first, then what to do: the occurrence's diagnosis
// (title, fix, codes, the server's reply) when there is one, otherwise the general guidance
// for its type. Plain text only, so that every mail client shows the same thing. The texts are
// templates of the common engine (common/mail/template.h). Stateless and thread-safe.
#ifndef MAILROOM_MNT_ALARM_MAIL_H_
#define MAILROOM_MNT_ALARM_MAIL_H_

#include <string>

#include "absl/time/time.h"
#include "common/mail/mime_message.h"
#include "proto/mailroom/mnt/v1/mnt.pb.h"

namespace mailroom::mnt {

// What every alarm email needs besides the alarm.
struct AlarmMailEnvelope {
  // From and To, taken from the Alarm Settings.
  const mailroom::mnt::v1::AlarmSettings* settings = nullptr;
  // The MnT node that sends it (named in the footer).
  std::string mnt_node;
  // The Message-ID (Outbox::NewMessageId()) and Date.
  std::string message_id;
  absl::Time date;
};

// The email for `alarm` (its latest occurrence) opening a suppression window of `window`
// (zero: no suppression).
MailContent RenderAlarmMail(const mailroom::mnt::v1::Alarm& alarm, absl::Duration window,
                            const AlarmMailEnvelope& envelope);

// The summary of `repeats` occurrences of `alarm` suppressed between `window_start` (when the
// alarm email went out) and `window_end`.
MailContent RenderSummaryMail(const mailroom::mnt::v1::Alarm& alarm, int64_t repeats,
                              absl::Time window_start, absl::Time window_end,
                              const AlarmMailEnvelope& envelope);

// "2026-03-01 09:30:00 UTC".
std::string FormatAlarmTime(absl::Time time);

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_ALARM_MAIL_H_
