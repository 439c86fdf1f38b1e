// Provides AlarmManager, the logic of the MnT's Alarms service: it records each occurrence of
// an alarm (AlarmStore), decides whether to email it, and queues alarm and summary emails in
// the node's durable outbox (common/outbox/outbox.h), from the Alarm Settings sender to the admin
// recipients. The gRPC layer (alarms_service.h) only authorizes and converts statuses.
//
// Suppression, per alarm (dedup key): the first occurrence is emailed at once and opens a
// window of AlarmSettings.suppression_window (default 15 minutes) measured on this node's
// clock; further occurrences in the window are only counted (suppressed_count); when the window
// ends with a count > 0, SendDueSummaries() queues ONE summary email saying how many repeats
// there were. So 50 occurrences in a window give the alarm email plus one summary counting the
// other 49. The next occurrence after a window is emailed at once and opens a new one.
//
// Idempotency: RaiseAlarm's fingerprint is the request serialized deterministically without
// its idempotency_key. The same key and fingerprint return the stored response with duplicate
// = true and count nothing; another fingerprint is ALREADY_EXISTS (IDEMPOTENCY_KEY_REUSED).
// The alarm email is queued in the outbox under the same key and fingerprint BEFORE the
// occurrence is committed to the store, so a crash between the two commits makes the caller's
// retry find the queued email again instead of queuing a second one.
//
// Loop guard: an alarm about this MnT node's own mail path (delivery, SMTP authentication,
// tokens, quota, backlog: IsMailPathAlarm) is recorded and logged but never emailed, since the
// email would fail the same way and raise the alarm again.
//
// Thread-safe: occurrences, clears, settings changes and summaries are serialized by one mutex.
#ifndef MAILROOM_MNT_ALARM_MANAGER_H_
#define MAILROOM_MNT_ALARM_MANAGER_H_

#include <cstddef>
#include <functional>
#include <string>

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
#include "common/rpc/role.h"
#include "mnt/alarm_store.h"
#include "proto/mailroom/mnt/v1/mnt.pb.h"

namespace mailroom::mnt {

struct AlarmManagerOptions {
  // This MnT node's name (as in its certificate): alarms it raised about its own mail path are
  // not emailed, and its emails' footer names it.
  std::string node_name;
  // Largest rendered email (DeliveryConfig.max_message_size_bytes).
  size_t max_message_bytes = kDefaultMaxMessageBytes;
  // How long RaiseAlarm idempotency keys are remembered (DeliveryConfig.retention).
  absl::Duration retention = absl::Hours(24 * 7);
  // Most summaries queued per SendDueSummaries() call.
  int summaries_per_round = 100;
  // The broker's mailbox pool, asked whether the settings' sender may send alarms when an
  // admin saves it (common/node/from_address_check.h); null: not checked.
  MailRouteResolver* mail_routes = nullptr;
};

// The verified identity of an RPC's caller (from its certificate).
struct Caller {
  Role role = Role::kAdmin;
  std::string node_name;
};

// Suppression window used when AlarmSettings.suppression_window is unset.
inline constexpr absl::Duration kDefaultSuppressionWindow = absl::Minutes(15);

class AlarmManager {
 public:
  // `store`, `outbox` and `clock` must outlive the manager.
  AlarmManager(AlarmStore* store, Outbox* outbox, const Clock* clock, AlarmManagerOptions options);

  // Loads the saved Alarm Settings or, on first start, saves `initial` (MntConfig.alarm_settings,
  // validated with field names "mnt.alarm_settings.<field>"). Call once before anything else.
  absl::Status Start(const mailroom::mnt::v1::AlarmSettings& initial);

  // RaiseAlarm (see the header comment). `caller.node_name` fills an empty source_node (ADMIN
  // callers); a non-admin caller must name itself in source_node.
  absl::StatusOr<mailroom::mnt::v1::RaiseAlarmResponse> RaiseAlarm(
      const mailroom::mnt::v1::RaiseAlarmRequest& request, const Caller& caller);
  absl::StatusOr<mailroom::mnt::v1::ListAlarmsResponse> ListAlarms(
      const mailroom::mnt::v1::ListAlarmsRequest& request) const;
  // Admins clear any alarm; a node only alarms whose source_node is its own name
  // (PERMISSION_DENIED otherwise). Repeats already suppressed are still summarized when their
  // window ends.
  absl::StatusOr<mailroom::mnt::v1::ClearAlarmResponse> ClearAlarm(
      const mailroom::mnt::v1::ClearAlarmRequest& request, const Caller& caller);
  mailroom::mnt::v1::AlarmSettings GetSettings() const;
  // Full replacement; a stale etag is ABORTED (ETAG_MISMATCH). New windows use the new
  // suppression window; windows already open keep their end.
  absl::StatusOr<mailroom::mnt::v1::AlarmSettings> SetSettings(
      const mailroom::mnt::v1::SetAlarmSettingsRequest& request, const Caller& caller);
  absl::StatusOr<mailroom::mnt::v1::GetNotificationStatusResponse> GetNotificationStatus(
      const mailroom::mnt::v1::GetNotificationStatusRequest& request) const;

  struct SummaryRound {
    int queued = 0;  // summary emails queued
    int failed = 0;  // summaries that could not be queued (retried on a later round)
  };
  // Queues the summary of every alarm whose window has ended with suppressed repeats (or just
  // resets the count when emails are off meanwhile).
  SummaryRound SendDueSummaries();
  // When the next window with suppressed repeats ends; nullopt if none.
  absl::optional<absl::Time> NextSummaryTime() const;
  // Forgets idempotency keys older than the retention, here and in the outbox.
  void Purge();

  // Called (without the manager's lock) whenever a summary becomes due at the end of a window
  // (its first suppressed repeat), so that a scheduler sleeping until a later time recomputes
  // its deadline.
  void SetWakeCallback(std::function<void()> callback);

 private:
  struct Raised {
    mailroom::mnt::v1::RaiseAlarmResponse response;
    // The occurrence made a summary due at its window's end (the window's first repeat).
    bool summary_pending = false;
  };
  absl::StatusOr<Raised> RaiseLocked(const mailroom::mnt::v1::RaiseAlarmRequest& request,
                                     const Caller& caller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why an alarm of `type` from `source_node` is not emailed now; empty if it is.
  std::string WhyNotEmailed(mailroom::mnt::v1::AlarmType type, const std::string& source_node) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Duration Window() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The alarm a ClearAlarm names: by id, or by dedup key scoped to the caller's own node (an
  // admin may name any node, and needs to when several nodes use the key).
  absl::StatusOr<absl::optional<AlarmRecord>> FindAlarmToClear(
      const mailroom::mnt::v1::ClearAlarmRequest& request, const Caller& caller) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Renders and queues one email; returns its notification id.
  absl::StatusOr<std::string> Queue(const MailContent& content,
                                    mailroom::common::v1::NotificationKind kind,
                                    const std::string& idempotency_key,
                                    const std::string& fingerprint)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveSettingsLocked(mailroom::mnt::v1::AlarmSettings settings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AlarmStore* const store_;
  Outbox* const outbox_;
  const Clock* const clock_;
  const AlarmManagerOptions options_;

  mutable absl::Mutex mu_;
  mailroom::mnt::v1::AlarmSettings settings_ ABSL_GUARDED_BY(mu_);

  CallbackSlot wake_;
};

// The settings' content hash (what AlarmSettings.etag holds): hex SHA-256 of the settings
// serialized deterministically without etag and update_time, first 16 digits.
std::string AlarmSettingsEtag(const mailroom::mnt::v1::AlarmSettings& settings);

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_ALARM_MANAGER_H_
