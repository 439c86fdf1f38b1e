#include "pan/reminder_plan.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "common/base/proto_hash.h"

namespace mailroom::pan {
namespace {

google::protobuf::Duration ToDurationProto(absl::Duration d) {
  google::protobuf::Duration out;
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

}  // namespace

AccountSpace SpaceOf(AccountKind kind) {
  return kind == v1::ACCOUNT_KIND_GUEST ? AccountSpace::kGuest : AccountSpace::kUser;
}

ReminderKind ReminderKindOf(AccountSpace space) {
  return space == AccountSpace::kGuest ? v1::REMINDER_KIND_GUEST_EXPIRY
                                       : v1::REMINDER_KIND_PASSWORD_EXPIRY;
}

absl::string_view SpaceName(AccountSpace space) {
  return space == AccountSpace::kGuest ? "guest" : "user";
}

absl::Time ToTime(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

google::protobuf::Timestamp ToTimestamp(absl::Time time) {
  google::protobuf::Timestamp out;
  const int64_t seconds = absl::ToUnixSeconds(time);
  out.set_seconds(seconds);
  out.set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
  return out;
}

std::string ReminderId(AccountSpace space, absl::string_view account_id,
                       const google::protobuf::Timestamp& expire_time, absl::Duration lead) {
  // Length-prefixed fields, so no choice of account id can collide with another tuple.
  const std::string material = absl::StrCat(
      "mailroom-pan-reminder-v1|", SpaceName(space), "|", account_id.size(), ":", account_id, "|",
      expire_time.seconds(), ".", expire_time.nanos(), "|", absl::ToInt64Seconds(lead));
  return absl::StrCat(space == AccountSpace::kGuest ? "g-" : "u-",
                      Sha256Hex(material).substr(0, 32));
}

std::string ReminderIdempotencyKey(absl::string_view reminder_id) {
  return absl::StrCat("pan-reminder/", reminder_id);
}

std::string ReminderFingerprint(const PlannedReminder& reminder) {
  PlannedReminder identity;
  identity.set_id(reminder.id());
  identity.set_account_id(reminder.account_id());
  identity.set_kind(reminder.kind());
  *identity.mutable_lead_time() = reminder.lead_time();
  *identity.mutable_expire_time() = reminder.expire_time();
  return DeterministicBytes(identity);
}

PlanChanges PlanReminders(const AccountPlanInput& input,
                          const std::vector<PlannedReminder>& existing, absl::Time now) {
  PlanChanges changes;
  std::map<std::string, const PlannedReminder*> by_id;
  for (const PlannedReminder& r : existing) by_id[r.id()] = &r;

  std::map<std::string, PlannedReminder> wanted;
  if (input.expire_time.has_value()) {
    const absl::Time expire = ToTime(*input.expire_time);
    for (absl::Duration lead : input.leads) {
      PlannedReminder r;
      r.set_id(ReminderId(input.space, input.account_id, *input.expire_time, lead));
      r.set_account_kind(input.account_kind);
      r.set_account_id(input.account_id);
      r.set_kind(ReminderKindOf(input.space));
      *r.mutable_lead_time() = ToDurationProto(lead);
      *r.mutable_expire_time() = *input.expire_time;
      *r.mutable_due_time() = ToTimestamp(expire - lead);
      r.set_state(v1::REMINDER_STATE_PLANNED);
      *r.mutable_recipient() = input.recipient;
      wanted[r.id()] = std::move(r);
    }
  }

  for (const PlannedReminder& r : existing) {
    if (r.state() == v1::REMINDER_STATE_PLANNED && wanted.count(r.id()) == 0) {
      PlannedReminder canceled = r;
      canceled.set_state(v1::REMINDER_STATE_CANCELED);
      *canceled.mutable_state_time() = ToTimestamp(now);
      changes.writes.push_back(std::move(canceled));
      ++changes.canceled;
    }
  }
  for (auto& [id, r] : wanted) {
    const auto found = by_id.find(id);
    if (found == by_id.end() || found->second->state() == v1::REMINDER_STATE_CANCELED) {
      changes.writes.push_back(std::move(r));
      ++changes.planned;
      continue;
    }
    const PlannedReminder& old = *found->second;
    if (old.state() != v1::REMINDER_STATE_PLANNED) continue;  // QUEUED / SKIPPED are final
    // Still planned: follow the account's current address and kind.
    if (old.account_kind() != r.account_kind() ||
        !google::protobuf::util::MessageDifferencer::Equals(old.recipient(), r.recipient())) {
      PlannedReminder updated = old;
      updated.set_account_kind(r.account_kind());
      *updated.mutable_recipient() = r.recipient();
      changes.writes.push_back(std::move(updated));
    }
  }
  return changes;
}

PlanChanges CancelReminders(const std::vector<PlannedReminder>& existing, absl::Time now) {
  PlanChanges changes;
  for (const PlannedReminder& r : existing) {
    if (r.state() != v1::REMINDER_STATE_PLANNED) continue;
    PlannedReminder canceled = r;
    canceled.set_state(v1::REMINDER_STATE_CANCELED);
    *canceled.mutable_state_time() = ToTimestamp(now);
    changes.writes.push_back(std::move(canceled));
    ++changes.canceled;
  }
  return changes;
}

DueDecision DecideDue(const std::vector<PlannedReminder>& group, absl::Time now) {
  DueDecision decision;
  const PlannedReminder* best = nullptr;
  absl::Time latest_queued = absl::InfinitePast();
  std::vector<const PlannedReminder*> due;
  for (const PlannedReminder& r : group) {
    const absl::Time due_time = ToTime(r.due_time());
    if (r.state() == v1::REMINDER_STATE_QUEUED) {
      latest_queued = std::max(latest_queued, due_time);
    } else if (r.state() == v1::REMINDER_STATE_PLANNED && due_time <= now) {
      due.push_back(&r);
      if (best == nullptr || due_time > ToTime(best->due_time())) best = &r;
    }
  }
  if (best == nullptr) return decision;
  const bool expired = now >= ToTime(best->expire_time());
  const bool covered = latest_queued >= ToTime(best->due_time());
  for (const PlannedReminder* r : due) {
    if (r == best && !expired && !covered) {
      decision.send_id = r->id();
    } else {
      decision.skip_ids.push_back(r->id());
    }
  }
  return decision;
}

}  // namespace mailroom::pan
