// Provides AccountRegistry, the PAN service's durable state in one SQLite file (WAL,
// synchronous=FULL, mode 0600, <data_dir>/pan.db): the guest accounts and the admin and
// internal users with their expiry, the reminders planned for them with their state (the
// durable "sent" mark of each reminder), and the reminder settings. An account and its
// re-planned reminders are written in one transaction, and so are new settings and the
// re-planning of every account, so a crash never leaves an account planned for an old expiry
// or old lead times. Every write returns only after its COMMIT (fsync'ed). The planning
// rules themselves are in reminder_plan.h.
//
// Retention: final reminders (QUEUED, SKIPPED, CANCELED) are kept until PurgeFinal() drops
// those whose expiry is older than the caller's cut-off; a re-upsert of such an old expiry
// cannot send anything anyway, because nothing is sent after the expiry.
//
// Exclusivity: Open takes an exclusive flock(2) on the file, so a second PAN process on the
// same data directory fails to start instead of sending every reminder twice.
//
// Thread-safe: one connection, serialized by a mutex.
#ifndef MAILROOM_PAN_ACCOUNT_REGISTRY_H_
#define MAILROOM_PAN_ACCOUNT_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "pan/reminder_plan.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::sqlite {
class Database;
class ExclusiveFile;
}  // namespace mailroom::sqlite

namespace mailroom::pan {

using ::mailroom::pan::v1::Account;
using ::mailroom::pan::v1::ReminderSettings;

class AccountRegistry {
 public:
  // Opens (creating if needed) the registry at `path`. FAILED_PRECONDITION if another
  // process holds it or its schema is newer than this build; UNAVAILABLE for I/O errors.
  static absl::StatusOr<std::unique_ptr<AccountRegistry>> Open(const std::string& path);
  ~AccountRegistry();
  AccountRegistry(const AccountRegistry&) = delete;
  AccountRegistry& operator=(const AccountRegistry&) = delete;

  // --- Settings ---

  // Saves `seed` (stamped with its etag and `now`) unless settings were saved before; returns
  // the settings in force.
  absl::StatusOr<ReminderSettings> InitSettings(const ReminderSettings& seed, absl::Time now);
  // The settings in force (the defaults if none were ever saved).
  absl::StatusOr<ReminderSettings> GetSettings() const;

  struct SettingsChange {
    ReminderSettings settings;  // as saved, with etag and update_time
    int replanned = 0;          // reminders planned or canceled by the change
  };
  // Replaces the settings and re-plans every account for the new lead times, in one
  // transaction. A non-empty `expected_etag` that is not the current one → ABORTED (reason
  // ETAG_MISMATCH) and nothing changes. Settings identical to the current ones change nothing.
  absl::StatusOr<SettingsChange> SetSettings(const ReminderSettings& settings,
                                             absl::string_view expected_etag, absl::Time now);

  // --- Accounts ---

  struct UpsertResult {
    Account account;  // as stored, with update_time
    bool created = false;
    PlanChanges changes;
  };
  // Creates or replaces the account (guest or user, by id) and re-plans its reminders with
  // the lead times in force. update_time moves only when the content changed.
  absl::StatusOr<UpsertResult> UpsertAccount(const Account& account, absl::Time now);

  struct DeleteResult {
    bool found = false;
    int canceled = 0;
  };
  // Removes the account and cancels its PLANNED reminders (the others stay as history).
  absl::StatusOr<DeleteResult> DeleteAccount(AccountSpace space, absl::string_view id,
                                             absl::Time now);

  absl::StatusOr<absl::optional<Account>> GetAccount(AccountSpace space,
                                                     absl::string_view id) const;
  // Filters and pages as ListAccountsRequest documents; ordered by expiry, soonest first
  // (users without a password expiry last).
  absl::StatusOr<v1::ListAccountsResponse> ListAccounts(
      const v1::ListAccountsRequest& request) const;

  // --- Reminders ---

  // Every reminder of the account, in any state, by due time.
  absl::StatusOr<std::vector<PlannedReminder>> RemindersOf(AccountSpace space,
                                                           absl::string_view id) const;
  absl::StatusOr<absl::optional<PlannedReminder>> GetReminder(absl::string_view id) const;
  // Filters and pages as ListPlannedRemindersRequest documents; ordered by due time.
  absl::StatusOr<v1::ListPlannedRemindersResponse> ListReminders(
      const v1::ListPlannedRemindersRequest& request) const;

  // The (account, expiry) groups with at least one PLANNED reminder due at `now`, each with
  // every reminder of that account and expiry (the input of DecideDue). With `account`, only
  // that account's groups.
  absl::StatusOr<std::vector<std::vector<PlannedReminder>>> DueGroups(
      absl::Time now,
      const absl::optional<std::pair<AccountSpace, std::string>>& account = absl::nullopt) const;
  // The PLANNED reminders whose due time is at or before `now`.
  absl::StatusOr<std::vector<PlannedReminder>> DuePlanned(absl::Time now) const;
  // The earliest due time of the PLANNED reminders; nullopt when none.
  absl::StatusOr<absl::optional<absl::Time>> NextDueTime() const;

  // PLANNED → QUEUED with the notification that carries it. FAILED_PRECONDITION if the
  // reminder is not PLANNED (it was canceled meanwhile, or already marked).
  absl::Status MarkQueued(absl::string_view id, absl::string_view notification_id, absl::Time now);
  // PLANNED → SKIPPED for each id (ids no longer PLANNED are left alone).
  absl::Status MarkSkipped(const std::vector<std::string>& ids, absl::Time now);

  // Deletes final reminders whose expiry is before `expired_before`. Returns how many.
  absl::StatusOr<int64_t> PurgeFinal(absl::Time expired_before);

 private:
  AccountRegistry(std::unique_ptr<sqlite::ExclusiveFile> lock,
                  std::unique_ptr<sqlite::Database> db);

  absl::StatusOr<ReminderSettings> GetSettingsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveSettingsLocked(const ReminderSettings& settings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<absl::optional<Account>> GetAccountLocked(AccountSpace space,
                                                           absl::string_view id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<PlannedReminder>> RemindersOfLocked(AccountSpace space,
                                                                 absl::string_view id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteRemindersLocked(const std::vector<PlannedReminder>& reminders)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Re-plans one stored account with `settings`' lead times and writes the changes.
  absl::StatusOr<PlanChanges> ReplanLocked(const Account& account, const ReminderSettings& settings,
                                           absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SetStateLocked(absl::string_view id, ReminderState state,
                              absl::string_view notification_id, absl::Time now,
                              bool must_be_planned) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // The file's flock; released after the connection is closed.
  std::unique_ptr<sqlite::ExclusiveFile> lock_;
  std::unique_ptr<sqlite::Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_ACCOUNT_REGISTRY_H_
