// Provides Reminders, the logic of the PAN service behind its gRPC surface: every Reminders
// RPC as a method on absl types (validation, the account registry, settings), and the
// dispatch of due reminders into the node's outbox, which the scheduler
// (reminder_scheduler.h) runs on its clock and which an upsert runs at once for its account.
//
// Exactly once. A due reminder is sent by (1) Outbox::Enqueue with the idempotency key
// derived from the reminder id, then (2) the registry's durable QUEUED mark. A crash between
// the two leaves the reminder PLANNED; the next dispatch (or Recover() at start) finds the
// notification under its key in the outbox and only marks it, so the mail is never queued
// twice. Once QUEUED a reminder never changes again, so restarts, re-upserts, settings
// changes and clock jumps in either direction cannot send it again (reminder_plan.h has the
// rules for what is due). All writes and dispatches are serialized by one mutex, so an
// upsert and the scheduler never race on the same reminder.
//
// Thread-safe.
#ifndef MAILROOM_PAN_REMINDERS_H_
#define MAILROOM_PAN_REMINDERS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/callback_slot.h"
#include "common/base/clock.h"
#include "common/mail/mime_message.h"
#include "common/node/from_address_check.h"
#include "common/outbox/outbox.h"
#include "common/rpc/rpc_method.h"
#include "pan/account_registry.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::pan {

struct RemindersOptions {
  // The broker's sending mailbox, the From when the settings name none (RoleNode::mailbox()).
  // It may block for a broker round trip when nothing is cached, so it is called outside the
  // lock and only when needed. Empty: no fallback.
  std::function<std::string()> default_from;
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // Final reminders are forgotten this long after the expiry they warned about.
  absl::Duration retention = absl::Hours(24 * 30);
  // The broker's mailbox pool, asked whether the settings' from may send reminders when an
  // admin saves it (common/node/from_address_check.h); null: not checked.
  MailRouteResolver* mail_routes = nullptr;
};

class Reminders {
 public:
  // `registry`, `outbox` and `clock` must outlive this object.
  Reminders(AccountRegistry* registry, Outbox* outbox, const Clock* clock,
            RemindersOptions options);

  // At start, before serving: marks QUEUED the reminders whose notification reached the
  // outbox but whose mark was lost in a crash. Returns how many.
  absl::StatusOr<int> Recover();

  // --- The Reminders RPCs (INVALID_ARGUMENT naming the field, nothing stored) ---

  MAILROOM_RPC_METHOD(v1, UpsertGuestAccount);
  MAILROOM_RPC_METHOD(v1, DeleteGuestAccount);
  MAILROOM_RPC_METHOD(v1, UpsertUserAccount);
  MAILROOM_RPC_METHOD(v1, DeleteUserAccount);
  MAILROOM_RPC_METHOD(v1, ListAccounts);
  MAILROOM_RPC_METHOD(v1, GetReminderSettings);
  MAILROOM_RPC_METHOD(v1, SetReminderSettings);
  MAILROOM_RPC_METHOD(v1, ListPlannedReminders);
  MAILROOM_RPC_METHOD(v1, GetNotificationStatus);

  // --- The scheduler's side ---

  struct DispatchReport {
    int queued = 0;   // reminders handed to the outbox now
    int skipped = 0;  // covered by a more urgent one, or past the expiry
    int waiting = 0;  // due but not sendable yet (no From known); retried next time
  };
  // Queues (or skips) every reminder due now.
  absl::StatusOr<DispatchReport> DispatchDue();
  // When the next PLANNED reminder falls due; nullopt when none.
  absl::StatusOr<absl::optional<absl::Time>> NextDueTime() const;
  // Forgets final reminders older than the retention. Returns how many.
  absl::StatusOr<int64_t> Purge();
  // Called after a change that may have moved the next due time (an upsert, new settings), so
  // the scheduler can re-arm its wait. Replaces any previous callback.
  void SetChangeCallback(std::function<void()> callback);

 private:
  // The broker's mailbox if the settings name no From (called outside mu_).
  std::string FromFallback();
  absl::StatusOr<DispatchReport> DispatchLocked(
      const absl::optional<std::pair<AccountSpace, std::string>>& account,
      const std::string& fallback_from) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues one reminder (or finds it already queued) and marks it QUEUED. Returns false when
  // it must wait (no From yet).
  absl::StatusOr<bool> SendLocked(const PlannedReminder& reminder, const ReminderSettings& settings,
                                  const std::string& fallback_from)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The account's reminders for its current expiry (what an upsert answers).
  absl::StatusOr<std::vector<PlannedReminder>> CurrentReminders(
      AccountSpace space, const std::string& id,
      const absl::optional<google::protobuf::Timestamp>& expire);
  // The two account spaces' upserts and deletes, which differ only in the account's type:
  // UpsertAccount stores `account` (`id` in `space`), queues its reminders that are due at
  // once and answers with it and its reminders for `expire`; DeleteAccount deletes `id`.
  template <typename Response>
  absl::StatusOr<Response> UpsertAccount(const Account& account, AccountSpace space,
                                         const std::string& id,
                                         const absl::optional<google::protobuf::Timestamp>& expire);
  template <typename Response>
  absl::StatusOr<Response> DeleteAccount(AccountSpace space, const std::string& id);
  void NotifyChange();

  AccountRegistry* const registry_;
  Outbox* const outbox_;
  const Clock* const clock_;
  const RemindersOptions options_;

  absl::Mutex mu_;

  CallbackSlot on_change_;
};

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDERS_H_
