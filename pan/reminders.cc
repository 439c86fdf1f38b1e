#include "pan/reminders.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "pan/reminder_mail.h"
#include "pan/request_validation.h"

namespace mailroom::pan {
namespace {

bool SameTime(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() == b.seconds() && a.nanos() == b.nanos();
}

// Output-only fields a client may have sent along; they are ignored, not stored.
v1::ReminderSettings WithoutOutputFields(v1::ReminderSettings settings) {
  settings.clear_etag();
  settings.clear_update_time();
  return settings;
}

// An upsert's answer carries the account as it was stored, in its space's type.
void SetStoredAccount(const Account& stored, v1::UpsertGuestAccountResponse* response) {
  *response->mutable_account() = stored.guest();
}
void SetStoredAccount(const Account& stored, v1::UpsertUserAccountResponse* response) {
  *response->mutable_account() = stored.user();
}

}  // namespace

Reminders::Reminders(AccountRegistry* registry, Outbox* outbox, const Clock* clock,
                     RemindersOptions options)
    : registry_(registry), outbox_(outbox), clock_(clock), options_(std::move(options)) {}

void Reminders::SetChangeCallback(std::function<void()> callback) {
  on_change_.Set(std::move(callback));
}

void Reminders::NotifyChange() { on_change_.Run(); }

std::string Reminders::FromFallback() {
  absl::StatusOr<ReminderSettings> settings = registry_->GetSettings();
  if (settings.ok() && !settings->from().address().empty()) return "";
  return options_.default_from ? options_.default_from() : "";
}

absl::StatusOr<int> Reminders::Recover() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  absl::StatusOr<std::vector<PlannedReminder>> due = registry_->DuePlanned(now);
  if (!due.ok()) return due.status();
  int recovered = 0;
  for (const PlannedReminder& r : *due) {
    absl::StatusOr<OutboxEntry> entry =
        outbox_->GetByIdempotencyKey(ReminderIdempotencyKey(r.id()));
    if (absl::IsNotFound(entry.status())) continue;
    if (!entry.ok()) return entry.status();
    if (absl::Status s = registry_->MarkQueued(r.id(), entry->notification().id(), now); !s.ok()) {
      return s;
    }
    MR_LOG(kWarn, kLogPan) << "reminder " << r.id() << " was queued as "
                           << entry->notification().id()
                           << " before the last stop; marked QUEUED (not sent again)";
    ++recovered;
  }
  return recovered;
}

absl::StatusOr<bool> Reminders::SendLocked(const PlannedReminder& reminder,
                                           const ReminderSettings& settings,
                                           const std::string& fallback_from) {
  const absl::Time now = clock_->Now();
  const std::string key = ReminderIdempotencyKey(reminder.id());
  // A crash after the enqueue and before the mark: the outbox has it; only mark it.
  absl::StatusOr<OutboxEntry> queued = outbox_->GetByIdempotencyKey(key);
  if (queued.ok()) {
    if (absl::Status s = registry_->MarkQueued(reminder.id(), queued->notification().id(), now);
        !s.ok()) {
      return s;
    }
    return true;
  }
  if (!absl::IsNotFound(queued.status())) return queued.status();

  absl::StatusOr<absl::optional<Account>> account =
      registry_->GetAccount(SpaceOf(reminder.account_kind()), reminder.account_id());
  if (!account.ok()) return account.status();
  if (!account->has_value()) {
    // Deleting an account cancels its reminders in the same transaction, so this is only
    // reachable through a damaged registry; never send for an account that is gone.
    MR_LOG(kError, kLogPan) << "reminder " << reminder.id() << " has no account; skipped";
    if (absl::Status s = registry_->MarkSkipped({reminder.id()}, now); !s.ok()) return s;
    return true;
  }
  ReminderMailOptions mail_options;
  mail_options.default_from = fallback_from;
  mail_options.max_message_bytes = options_.max_message_bytes;
  absl::StatusOr<NewNotification> notification = BuildReminderNotification(
      reminder, **account, settings, now, outbox_->NewMessageId(), mail_options);
  if (absl::IsFailedPrecondition(notification.status())) {
    MR_LOG(kWarn, kLogPan) << "reminder " << reminder.id()
                           << " is due but waits: " << notification.status().message();
    return false;
  }
  if (!notification.ok()) {
    // The inputs were all validated when stored, so this is a message that can never be
    // built (e.g. larger than the configured limit); retrying would fail forever.
    MR_LOG(kError, kLogPan) << "reminder " << reminder.id() << " for " << reminder.account_id()
                            << " cannot be built and is skipped: "
                            << notification.status().message();
    if (absl::Status s = registry_->MarkSkipped({reminder.id()}, now); !s.ok()) return s;
    return true;
  }
  absl::StatusOr<EnqueueResult> result = outbox_->Enqueue(*notification);
  if (!result.ok()) return result.status();
  if (absl::Status s = registry_->MarkQueued(reminder.id(), result->notification_id, now);
      !s.ok()) {
    return s;
  }
  MR_LOG(kInfo, kLogPan) << v1::ReminderKind_Name(reminder.kind()) << " reminder " << reminder.id()
                         << " for account " << reminder.account_id() << " ("
                         << absl::FormatDuration(absl::Seconds(reminder.lead_time().seconds()))
                         << " before expiry) queued as " << result->notification_id
                         << (result->duplicate ? " (already queued before)" : "");
  return true;
}

absl::StatusOr<Reminders::DispatchReport> Reminders::DispatchLocked(
    const absl::optional<std::pair<AccountSpace, std::string>>& account,
    const std::string& fallback_from) {
  DispatchReport report;
  const absl::Time now = clock_->Now();
  absl::StatusOr<ReminderSettings> settings = registry_->GetSettings();
  if (!settings.ok()) return settings.status();
  absl::StatusOr<std::vector<std::vector<PlannedReminder>>> groups =
      registry_->DueGroups(now, account);
  if (!groups.ok()) return groups.status();
  for (const std::vector<PlannedReminder>& group : *groups) {
    const DueDecision decision = DecideDue(group, now);
    if (!decision.skip_ids.empty()) {
      if (absl::Status s = registry_->MarkSkipped(decision.skip_ids, now); !s.ok()) return s;
      report.skipped += static_cast<int>(decision.skip_ids.size());
      MR_LOG(kInfo, kLogPan) << decision.skip_ids.size() << " reminder(s) of account "
                             << group.front().account_id()
                             << " skipped: a more urgent one covers them, or the expiry passed";
    }
    if (decision.send_id.empty()) continue;
    for (const PlannedReminder& r : group) {
      if (r.id() != decision.send_id) continue;
      absl::StatusOr<bool> sent = SendLocked(r, *settings, fallback_from);
      if (!sent.ok()) return sent.status();
      ++(*sent ? report.queued : report.waiting);
    }
  }
  return report;
}

absl::StatusOr<Reminders::DispatchReport> Reminders::DispatchDue() {
  const std::string fallback = FromFallback();
  absl::MutexLock lock(&mu_);
  return DispatchLocked(absl::nullopt, fallback);
}

absl::StatusOr<absl::optional<absl::Time>> Reminders::NextDueTime() const {
  return registry_->NextDueTime();
}

absl::StatusOr<int64_t> Reminders::Purge() {
  absl::MutexLock lock(&mu_);
  return registry_->PurgeFinal(clock_->Now() - options_.retention);
}

absl::StatusOr<std::vector<PlannedReminder>> Reminders::CurrentReminders(
    AccountSpace space, const std::string& id,
    const absl::optional<google::protobuf::Timestamp>& expire) {
  absl::StatusOr<std::vector<PlannedReminder>> all = registry_->RemindersOf(space, id);
  if (!all.ok()) return all.status();
  std::vector<PlannedReminder> current;
  if (!expire.has_value()) return current;
  for (PlannedReminder& r : *all) {
    if (SameTime(r.expire_time(), *expire)) current.push_back(std::move(r));
  }
  return current;
}

template <typename Response>
absl::StatusOr<Response> Reminders::UpsertAccount(
    const Account& account, AccountSpace space, const std::string& id,
    const absl::optional<google::protobuf::Timestamp>& expire) {
  const char* const label = space == AccountSpace::kGuest ? "guest" : "user";
  const std::string fallback = FromFallback();
  Response response;
  {
    absl::MutexLock lock(&mu_);
    MR_ASSIGN_OR_RETURN(const AccountRegistry::UpsertResult result,
                        registry_->UpsertAccount(account, clock_->Now()));
    // Due at once (a lead time already passed): queue it now, so the caller sees it QUEUED.
    // The account is durable already; if this fails the scheduler retries.
    absl::StatusOr<DispatchReport> dispatched =
        DispatchLocked(std::make_pair(space, id), fallback);
    if (!dispatched.ok()) {
      MR_LOG(kWarn, kLogPan) << label << " " << id << " stored; its due reminder waits for the "
                             << "scheduler: " << dispatched.status().message();
    }
    MR_ASSIGN_OR_RETURN(std::vector<PlannedReminder> reminders,
                        CurrentReminders(space, id, expire));
    SetStoredAccount(result.account, &response);
    response.set_created(result.created);
    for (PlannedReminder& r : reminders) *response.add_reminders() = std::move(r);
    MR_LOG(kDebug, kLogPan) << label << " " << id << (result.created ? " created" : " updated")
                            << ": " << result.changes.planned << " reminder(s) planned, "
                            << result.changes.canceled << " canceled";
  }
  NotifyChange();
  return response;
}

template <typename Response>
absl::StatusOr<Response> Reminders::DeleteAccount(AccountSpace space, const std::string& id) {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(const AccountRegistry::DeleteResult result,
                      registry_->DeleteAccount(space, id, clock_->Now()));
  Response response;
  response.set_found(result.found);
  response.set_canceled_reminders(result.canceled);
  return response;
}

absl::StatusOr<v1::UpsertGuestAccountResponse> Reminders::UpsertGuestAccount(
    const v1::UpsertGuestAccountRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  Account account;
  *account.mutable_guest() = request.account();
  return UpsertAccount<v1::UpsertGuestAccountResponse>(
      account, AccountSpace::kGuest, request.account().id(), request.account().expire_time());
}

absl::StatusOr<v1::UpsertUserAccountResponse> Reminders::UpsertUserAccount(
    const v1::UpsertUserAccountRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  Account account;
  *account.mutable_user() = request.account();
  absl::optional<google::protobuf::Timestamp> expire;
  if (request.account().has_password_expire_time()) {
    expire = request.account().password_expire_time();
  }
  return UpsertAccount<v1::UpsertUserAccountResponse>(account, AccountSpace::kUser,
                                                      request.account().id(), expire);
}

absl::StatusOr<v1::DeleteGuestAccountResponse> Reminders::DeleteGuestAccount(
    const v1::DeleteGuestAccountRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  return DeleteAccount<v1::DeleteGuestAccountResponse>(AccountSpace::kGuest, request.id());
}

absl::StatusOr<v1::DeleteUserAccountResponse> Reminders::DeleteUserAccount(
    const v1::DeleteUserAccountRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  return DeleteAccount<v1::DeleteUserAccountResponse>(AccountSpace::kUser, request.id());
}

absl::StatusOr<v1::ListAccountsResponse> Reminders::ListAccounts(
    const v1::ListAccountsRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  return registry_->ListAccounts(request);
}

absl::StatusOr<v1::GetReminderSettingsResponse> Reminders::GetReminderSettings(
    const v1::GetReminderSettingsRequest&) {
  v1::GetReminderSettingsResponse response;
  MR_ASSIGN_OR_RETURN(*response.mutable_settings(), registry_->GetSettings());
  return response;
}

absl::StatusOr<v1::SetReminderSettingsResponse> Reminders::SetReminderSettings(
    const v1::SetReminderSettingsRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  // Outside the lock: it may wait for the broker.
  MR_RETURN_IF_ERROR(FromAddressCheck(options_.mail_routes)
                         .Check("settings.from", request.settings().from().address(),
                                {::mailroom::common::v1::MAIL_PURPOSE_REMINDERS}));
  v1::SetReminderSettingsResponse response;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<AccountRegistry::SettingsChange> change = registry_->SetSettings(
        WithoutOutputFields(request.settings()), request.etag(), clock_->Now());
    if (!change.ok()) return change.status();
    *response.mutable_settings() = change->settings;
    response.set_replanned_reminders(change->replanned);
    MR_LOG(kInfo, kLogPan) << "reminder settings saved (etag " << change->settings.etag() << "); "
                           << change->replanned << " reminder(s) re-planned";
    // New lead times may have made reminders due; settings always carry a From when any lead
    // time is set, so no broker round trip is needed here.
    absl::StatusOr<DispatchReport> dispatched = DispatchLocked(absl::nullopt, "");
    if (!dispatched.ok()) {
      MR_LOG(kWarn, kLogPan) << "due reminders wait for the scheduler: "
                             << dispatched.status().message();
    }
  }
  NotifyChange();
  return response;
}

absl::StatusOr<v1::ListPlannedRemindersResponse> Reminders::ListPlannedReminders(
    const v1::ListPlannedRemindersRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  return registry_->ListReminders(request);
}

absl::StatusOr<v1::GetNotificationStatusResponse> Reminders::GetNotificationStatus(
    const v1::GetNotificationStatusRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  MR_ASSIGN_OR_RETURN(const OutboxEntry entry, outbox_->Get(request.notification_id()));
  v1::GetNotificationStatusResponse response;
  *response.mutable_notification() = entry.notification();
  return response;
}

}  // namespace mailroom::pan
