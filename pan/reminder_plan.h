// Provides the planning rules of expiry reminders as pure functions of (account, expiry, lead
// times, existing reminders, now), so that the rules are tested on their own and the registry
// applies them inside one transaction. Stateless and thread-safe.
//
// Identity. A reminder is identified by (account space, account id, expiry, lead time); its
// id is a hash of those, so planning the same account again yields the same ids and never a
// second reminder for the same intent. The space is "guest" or "user" (the two id
// namespaces of the API), not the user's admin/internal kind, so a user who changes kind keeps
// the reminders already sent for the same password expiry.
//
// Re-planning an account (upsert, or new lead times in the settings):
//  - PLANNED reminders that the new expiry or lead times no longer call for → CANCELED;
//  - wanted reminders that do not exist yet → PLANNED; CANCELED ones wanted again (the
//    expiry or a lead time came back) → PLANNED again: nothing was ever sent for them;
//  - QUEUED and SKIPPED reminders are final and never change, which is what makes a reminder
//    go out at most once whatever happens to the account, the settings or the clock.
//
// Due reminders (DecideDue), per account and expiry, whenever the scheduler or an upsert
// looks: of the PLANNED reminders whose due time has come, only the most recent (the most
// urgent: smallest lead) is sent, and the older ones are SKIPPED, because one warning is
// enough and a burst of "3 days left", "1 day left" at once is noise. This covers an account
// created late (a lead time already passed fires once, the most urgent), a scheduler that was
// down, and a forward clock jump. If a reminder with a later due time was already QUEUED, the
// due ones are SKIPPED too (e.g. a longer lead time added afterwards). Nothing is sent at or
// after the expiry: due reminders of an expired account are SKIPPED. A backward clock jump
// changes nothing: final states stay final and PLANNED ones wait for their due time again.
#ifndef MAILROOM_PAN_REMINDER_PLAN_H_
#define MAILROOM_PAN_REMINDER_PLAN_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "google/protobuf/timestamp.pb.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::pan {

using ::mailroom::pan::v1::AccountKind;
using ::mailroom::pan::v1::PlannedReminder;
using ::mailroom::pan::v1::ReminderKind;
using ::mailroom::pan::v1::ReminderState;

// The two id namespaces of accounts.
enum class AccountSpace { kGuest = 1, kUser = 2 };

AccountSpace SpaceOf(AccountKind kind);
ReminderKind ReminderKindOf(AccountSpace space);
absl::string_view SpaceName(AccountSpace space);

absl::Time ToTime(const google::protobuf::Timestamp& timestamp);
google::protobuf::Timestamp ToTimestamp(absl::Time time);

// "g-<32 hex>" for guests, "u-<32 hex>" for users.
std::string ReminderId(AccountSpace space, absl::string_view account_id,
                       const google::protobuf::Timestamp& expire_time, absl::Duration lead);

// The key the outbox remembers for the reminder's notification; derived from the id only,
// so a retry after a crash finds the notification queued before it.
std::string ReminderIdempotencyKey(absl::string_view reminder_id);

// The outbox fingerprint of a reminder: its identity fields, serialized deterministically.
std::string ReminderFingerprint(const PlannedReminder& reminder);

struct AccountPlanInput {
  AccountSpace space = AccountSpace::kGuest;
  std::string account_id;
  AccountKind account_kind = ::mailroom::pan::v1::ACCOUNT_KIND_UNSPECIFIED;
  // nullopt: the account wants no reminders (a user without password expiry).
  absl::optional<google::protobuf::Timestamp> expire_time;
  std::vector<absl::Duration> leads;
  ::mailroom::common::v1::EmailAddress recipient;
};

struct PlanChanges {
  // Reminders to insert or replace (only those that changed).
  std::vector<PlannedReminder> writes;
  // How many became PLANNED (new or revived) and how many PLANNED ones were CANCELED.
  int planned = 0;
  int canceled = 0;
};

// Re-plans one account given all its existing reminders (any expiry, any state).
PlanChanges PlanReminders(const AccountPlanInput& input,
                          const std::vector<PlannedReminder>& existing, absl::Time now);

// Cancels every PLANNED reminder in `existing` (the account was deleted).
PlanChanges CancelReminders(const std::vector<PlannedReminder>& existing, absl::Time now);

struct DueDecision {
  // The reminder to queue now; empty for none.
  std::string send_id;
  // Reminders to mark SKIPPED.
  std::vector<std::string> skip_ids;
};

// Decides what to do with the due reminders of one account and one expiry. `group` holds
// every reminder of that account and expiry, in any state.
DueDecision DecideDue(const std::vector<PlannedReminder>& group, absl::Time now);

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDER_PLAN_H_
