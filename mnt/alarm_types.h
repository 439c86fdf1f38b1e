// Provides what the MnT knows about each AlarmType: the admin-facing name used in email
// subjects and listings ("SMTP OAuth Client Secret expiry", as the seed names it), the short
// slug used in default dedup keys ("client-secret-expiry"), the default severity, and what to
// do when the raising node sent no Diagnosis (the broker's expiry alarm, for one, carries only
// text). Stateless and thread-safe.
#ifndef MAILROOM_MNT_ALARM_TYPES_H_
#define MAILROOM_MNT_ALARM_TYPES_H_

#include <string>

#include "absl/strings/string_view.h"
#include "proto/mailroom/common/v1/common.pb.h"
#include "proto/mailroom/mnt/v1/mnt.pb.h"

namespace mailroom::mnt {

// "SMTP OAuth Client Secret expiry"; "Alarm" for values this build does not know.
absl::string_view AlarmTypeTitle(mailroom::mnt::v1::AlarmType type);

// "client-secret-expiry": the enum name without its prefix, lower case, '-' for '_'.
std::string AlarmTypeSlug(mailroom::mnt::v1::AlarmType type);

// "CRITICAL", "WARNING", "INFO" ("UNSPECIFIED" if unset).
std::string SeverityName(mailroom::mnt::v1::AlarmSeverity severity);

// The severity of an occurrence that did not say: CRITICAL for authentication and token
// alarms and for an already expired secret (its diagnosis says so), WARNING otherwise.
mailroom::mnt::v1::AlarmSeverity DefaultSeverity(mailroom::mnt::v1::AlarmType type,
                                                 const mailroom::common::v1::Diagnosis& diagnosis);

// "<slug>/<source_node>", the dedup key of an occurrence that did not give one.
std::string DefaultDedupKey(mailroom::mnt::v1::AlarmType type, absl::string_view source_node);

// What an administrator should do about an alarm of this type when the occurrence carries no
// diagnosis; empty when there is nothing general to say (GENERIC).
absl::string_view AlarmTypeGuidance(mailroom::mnt::v1::AlarmType type);

// Whether an alarm of this type is about the raising node's own mail path (SMTP, tokens,
// quota, outbox). The MnT never emails such alarms about itself: the email would take the
// path that just failed, and its failure would raise the alarm again.
bool IsMailPathAlarm(mailroom::mnt::v1::AlarmType type);

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_ALARM_TYPES_H_
