#include "pan/account_registry.h"

#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/rpc/status_grpc.h"
#include "common/sqlite/database.h"
#include "common/sqlite/exclusive_file.h"
#include "common/sqlite/page_token.h"
#include "google/protobuf/util/message_differencer.h"
#include "common/base/proto_hash.h"
#include "pan/reminder_settings.h"

namespace mailroom::pan {
namespace {

using sqlite::Statement;
using sqlite::Transaction;
using sqlite::Where;

constexpr int kSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
  space       INTEGER NOT NULL,   -- AccountSpace: 1 guest, 2 user
  id          TEXT NOT NULL,
  kind        INTEGER NOT NULL,   -- AccountKind
  expire_us   INTEGER,            -- (password) expiry, unix microseconds; NULL: none
  username_lc TEXT NOT NULL,      -- for prefix search
  email_lc    TEXT NOT NULL,
  data        BLOB NOT NULL,      -- serialized mailroom.pan.v1.Account
  PRIMARY KEY (space, id)
);
CREATE INDEX IF NOT EXISTS accounts_by_expiry ON accounts (expire_us);
CREATE TABLE IF NOT EXISTS reminders (
  id         TEXT PRIMARY KEY,
  space      INTEGER NOT NULL,
  account_id TEXT NOT NULL,
  kind       INTEGER NOT NULL,    -- ReminderKind
  state      INTEGER NOT NULL,    -- ReminderState
  due_us     INTEGER NOT NULL,    -- rounded up, so "due_us <= now" never fires early
  expire_us  INTEGER NOT NULL,
  data       BLOB NOT NULL        -- serialized mailroom.pan.v1.PlannedReminder
);
CREATE INDEX IF NOT EXISTS reminders_by_state_due ON reminders (state, due_us);
CREATE INDEX IF NOT EXISTS reminders_by_account ON reminders (space, account_id, expire_us);
)sql";

int64_t FloorMicros(absl::Time t) { return absl::ToUnixMicros(t); }

int64_t CeilMicros(absl::Time t) {
  const int64_t floor = absl::ToUnixMicros(t);
  return absl::FromUnixMicros(floor) < t ? floor + 1 : floor;
}

// What the registry indexes of an account.
struct AccountKey {
  AccountSpace space = AccountSpace::kGuest;
  std::string id;
  AccountKind kind = v1::ACCOUNT_KIND_UNSPECIFIED;
  absl::optional<google::protobuf::Timestamp> expire;
  std::string username;
  mailroom::common::v1::EmailAddress email;
};

AccountKey KeyOf(const Account& account) {
  AccountKey key;
  if (account.has_guest()) {
    const v1::GuestAccount& g = account.guest();
    key.space = AccountSpace::kGuest;
    key.id = g.id();
    key.kind = v1::ACCOUNT_KIND_GUEST;
    key.expire = g.expire_time();
    key.username = g.username();
    key.email = g.email();
  } else {
    const v1::UserAccount& u = account.user();
    key.space = AccountSpace::kUser;
    key.id = u.id();
    key.kind = u.kind() == v1::USER_KIND_ADMIN ? v1::ACCOUNT_KIND_ADMIN_USER
                                               : v1::ACCOUNT_KIND_INTERNAL_USER;
    if (u.has_password_expire_time()) key.expire = u.password_expire_time();
    key.username = u.username();
    key.email = u.email();
  }
  return key;
}

google::protobuf::Timestamp* MutableUpdateTime(Account* account) {
  return account->has_guest() ? account->mutable_guest()->mutable_update_time()
                              : account->mutable_user()->mutable_update_time();
}

// A page token is only good for the listing and filters it came from: the filter key is the
// request without its page, serialized deterministically.
std::string FilterKey(absl::string_view listing, google::protobuf::Message* request_without_page) {
  return absl::StrCat(listing, ";", DeterministicBytes(*request_without_page));
}

template <typename T>
absl::StatusOr<T> Parse(const std::string& bytes) {
  T message;
  if (!message.ParseFromString(bytes)) {
    return absl::DataLossError("pan registry: a stored record does not parse");
  }
  return message;
}

// Every row of `q`, whose first column is a serialized T.
template <typename T>
absl::StatusOr<std::vector<T>> ReadAll(Statement& q) {
  std::vector<T> out;
  for (;;) {
    MR_ASSIGN_OR_RETURN(const bool row, q.Step());
    if (!row) break;
    MR_ASSIGN_OR_RETURN(T message, Parse<T>(q.Text(0)));
    out.push_back(std::move(message));
  }
  return out;
}

// The first row of `q` as a T, if any.
template <typename T>
absl::StatusOr<absl::optional<T>> ReadOne(Statement& q) {
  MR_ASSIGN_OR_RETURN(const bool row, q.Step());
  if (!row) return absl::optional<T>();
  MR_ASSIGN_OR_RETURN(T message, Parse<T>(q.Text(0)));
  return absl::optional<T>(std::move(message));
}

// One page of a listing of `table`, whose `data` column holds serialized Ts, appended to
// `out`; `page_out` gets the total and the next page's token.
template <typename T>
absl::Status ReadPage(const sqlite::KeysetPage& page, sqlite::Database* db,
                      absl::string_view table, const Where& where,
                      google::protobuf::RepeatedPtrField<T>* out,
                      ::mailroom::common::v1::PageResponse* page_out) {
  return page.Run(
      db, "data", table, where,
      [out](const Statement& row) -> absl::Status {
        MR_ASSIGN_OR_RETURN(*out->Add(), Parse<T>(row.Text(0)));
        return absl::OkStatus();
      },
      page_out);
}

}  // namespace

AccountRegistry::AccountRegistry(std::unique_ptr<sqlite::ExclusiveFile> lock,
                                 std::unique_ptr<sqlite::Database> db)
    : lock_(std::move(lock)), db_(std::move(db)) {}

absl::StatusOr<std::unique_ptr<AccountRegistry>> AccountRegistry::Open(const std::string& path) {
  MR_ASSIGN_OR_RETURN(
      std::unique_ptr<sqlite::ExclusiveFile> lock,
      sqlite::ExclusiveFile::Acquire(path, "pan registry", " (one PAN per data directory)"));
  sqlite::DatabaseOptions options;
  options.store_name = "pan registry";
  MR_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Database> db,
                      sqlite::Database::Open(path, std::move(options)));
  MR_RETURN_IF_ERROR(db->EnableWal());
  MR_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous=FULL"));
  MR_RETURN_IF_ERROR(db->Exec(kSchema));
  // The version lives in the meta table (this store never used PRAGMA user_version).
  MR_ASSIGN_OR_RETURN(Statement version,
                      db->PrepareOnce("SELECT value FROM meta WHERE key = 'schema_version'"));
  MR_ASSIGN_OR_RETURN(const bool row, version.Step());
  if (row) {
    int stored = 0;
    if (!absl::SimpleAtoi(version.Text(0), &stored) || stored > kSchemaVersion) {
      return db->NewerSchemaError(version.Text(0), kSchemaVersion);
    }
  } else {
    MR_ASSIGN_OR_RETURN(
        Statement insert,
        db->PrepareOnce("INSERT INTO meta (key, value) VALUES ('schema_version', ?)"));
    MR_RETURN_IF_ERROR(insert.Bind(1, absl::StrCat(kSchemaVersion)).Run());
  }
  return std::unique_ptr<AccountRegistry>(new AccountRegistry(std::move(lock), std::move(db)));
}

AccountRegistry::~AccountRegistry() {
  absl::MutexLock lock(&mu_);
  db_.reset();  // before the file lock goes
  lock_.reset();
}

// --- Settings ---

absl::StatusOr<ReminderSettings> AccountRegistry::GetSettingsLocked() const {
  MR_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT value FROM meta WHERE key = 'settings'"));
  MR_ASSIGN_OR_RETURN(absl::optional<ReminderSettings> saved, ReadOne<ReminderSettings>(q));
  if (saved.has_value()) return *std::move(saved);
  ReminderSettings defaults = DefaultReminderSettings();
  defaults.set_etag(ReminderSettingsEtag(defaults));
  return defaults;
}

absl::Status AccountRegistry::SaveSettingsLocked(const ReminderSettings& settings) {
  MR_ASSIGN_OR_RETURN(
      Statement q, db_->Prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('settings', ?)"));
  return q.BindBlob(1, settings.SerializeAsString()).Run();
}

absl::StatusOr<ReminderSettings> AccountRegistry::InitSettings(const ReminderSettings& seed,
                                                               absl::Time now) {
  absl::MutexLock lock(&mu_);
  {
    MR_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT 1 FROM meta WHERE key = 'settings'"));
    MR_ASSIGN_OR_RETURN(const bool row, q.Step());
    if (row) return GetSettingsLocked();
  }
  ReminderSettings settings = seed;
  settings.set_etag(ReminderSettingsEtag(settings));
  *settings.mutable_update_time() = ToTimestamp(now);
  MR_RETURN_IF_ERROR(SaveSettingsLocked(settings));
  return settings;
}

absl::StatusOr<ReminderSettings> AccountRegistry::GetSettings() const {
  absl::MutexLock lock(&mu_);
  return GetSettingsLocked();
}

absl::StatusOr<AccountRegistry::SettingsChange> AccountRegistry::SetSettings(
    const ReminderSettings& settings, absl::string_view expected_etag, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  MR_ASSIGN_OR_RETURN(const ReminderSettings current, GetSettingsLocked());
  if (!expected_etag.empty() && expected_etag != current.etag()) {
    return WithReason(absl::AbortedError(absl::StrCat(
                          "etag: \"", expected_etag, "\" is not the current settings' etag \"",
                          current.etag(), "\"; read them again and repeat the change")),
                      "ETAG_MISMATCH");
  }
  SettingsChange change;
  change.settings = settings;
  change.settings.set_etag(ReminderSettingsEtag(settings));
  if (change.settings.etag() == current.etag()) {
    change.settings = current;
    return change;
  }
  *change.settings.mutable_update_time() = ToTimestamp(now);
  MR_RETURN_IF_ERROR(SaveSettingsLocked(change.settings));
  std::vector<Account> accounts;
  {
    MR_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT data FROM accounts"));
    MR_ASSIGN_OR_RETURN(accounts, ReadAll<Account>(q));
  }
  for (const Account& account : accounts) {
    MR_ASSIGN_OR_RETURN(const PlanChanges changes, ReplanLocked(account, change.settings, now));
    change.replanned += changes.planned + changes.canceled;
  }
  MR_RETURN_IF_ERROR(txn.Commit());
  return change;
}

// --- Accounts ---

absl::StatusOr<PlanChanges> AccountRegistry::ReplanLocked(const Account& account,
                                                          const ReminderSettings& settings,
                                                          absl::Time now) {
  const AccountKey key = KeyOf(account);
  AccountPlanInput input;
  input.space = key.space;
  input.account_id = key.id;
  input.account_kind = key.kind;
  input.expire_time = key.expire;
  input.leads =
      key.space == AccountSpace::kGuest ? GuestLeadTimes(settings) : PasswordLeadTimes(settings);
  input.recipient = key.email;
  MR_ASSIGN_OR_RETURN(const std::vector<PlannedReminder> existing,
                      RemindersOfLocked(key.space, key.id));
  PlanChanges changes = PlanReminders(input, existing, now);
  MR_RETURN_IF_ERROR(WriteRemindersLocked(changes.writes));
  return changes;
}

absl::StatusOr<AccountRegistry::UpsertResult> AccountRegistry::UpsertAccount(const Account& account,
                                                                             absl::Time now) {
  absl::MutexLock lock(&mu_);
  const AccountKey key = KeyOf(account);
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  MR_ASSIGN_OR_RETURN(const absl::optional<Account> old, GetAccountLocked(key.space, key.id));
  UpsertResult result;
  result.created = !old.has_value();
  result.account = account;
  MutableUpdateTime(&result.account)->Clear();
  bool changed = true;
  if (old.has_value()) {
    Account previous = *old;
    const google::protobuf::Timestamp previous_update = *MutableUpdateTime(&previous);
    MutableUpdateTime(&previous)->Clear();
    changed = !google::protobuf::util::MessageDifferencer::Equals(previous, result.account);
    if (!changed) *MutableUpdateTime(&result.account) = previous_update;
  }
  if (changed) *MutableUpdateTime(&result.account) = ToTimestamp(now);
  {
    MR_ASSIGN_OR_RETURN(
        Statement write,
        db_->Prepare("INSERT OR REPLACE INTO accounts (space, id, kind, expire_us, username_lc, "
                     "email_lc, data) VALUES (?, ?, ?, ?, ?, ?, ?)"));
    write.Bind(1, static_cast<int64_t>(key.space))
        .Bind(2, key.id)
        .Bind(3, static_cast<int64_t>(key.kind))
        .Bind(5, absl::AsciiStrToLower(key.username))
        .Bind(6, absl::AsciiStrToLower(key.email.address()))
        .BindBlob(7, result.account.SerializeAsString());
    if (key.expire.has_value()) {
      write.Bind(4, FloorMicros(ToTime(*key.expire)));
    } else {
      write.BindNull(4);
    }
    MR_RETURN_IF_ERROR(write.Run());
  }
  MR_ASSIGN_OR_RETURN(const ReminderSettings settings, GetSettingsLocked());
  MR_ASSIGN_OR_RETURN(result.changes, ReplanLocked(result.account, settings, now));
  MR_RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<AccountRegistry::DeleteResult> AccountRegistry::DeleteAccount(AccountSpace space,
                                                                             absl::string_view id,
                                                                             absl::Time now) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  DeleteResult result;
  {
    MR_ASSIGN_OR_RETURN(Statement remove,
                        db_->Prepare("DELETE FROM accounts WHERE space = ? AND id = ?"));
    MR_RETURN_IF_ERROR(remove.Bind(1, static_cast<int64_t>(space)).Bind(2, id).Run());
  }
  result.found = db_->Changes() > 0;
  MR_ASSIGN_OR_RETURN(const std::vector<PlannedReminder> existing, RemindersOfLocked(space, id));
  const PlanChanges changes = CancelReminders(existing, now);
  MR_RETURN_IF_ERROR(WriteRemindersLocked(changes.writes));
  result.canceled = changes.canceled;
  MR_RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<absl::optional<Account>> AccountRegistry::GetAccountLocked(
    AccountSpace space, absl::string_view id) const {
  MR_ASSIGN_OR_RETURN(Statement q,
                      db_->Prepare("SELECT data FROM accounts WHERE space = ? AND id = ?"));
  q.Bind(1, static_cast<int64_t>(space)).Bind(2, id);
  return ReadOne<Account>(q);
}

absl::StatusOr<absl::optional<Account>> AccountRegistry::GetAccount(AccountSpace space,
                                                                    absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  return GetAccountLocked(space, id);
}

absl::StatusOr<v1::ListAccountsResponse> AccountRegistry::ListAccounts(
    const v1::ListAccountsRequest& request) const {
  v1::ListAccountsRequest filters = request;
  filters.clear_page();
  // Soonest expiry first, users without a password expiry last.
  MR_ASSIGN_OR_RETURN(
      const sqlite::KeysetPage page,
      sqlite::KeysetPage::Start(request.page(), FilterKey("accounts", &filters),
                                {"expire_us IS NULL", "COALESCE(expire_us, 0)", "space", "id"},
                                sqlite::SortOrder::kAscending));
  Where where;
  where.AddIn("kind", request.kinds());
  if (request.has_expire_before()) {
    where.Add("expire_us < ?", {FloorMicros(ToTime(request.expire_before()))});
  }
  if (!request.prefix().empty()) {
    const std::string prefix = absl::AsciiStrToLower(request.prefix());
    where.Add("(instr(username_lc, ?) = 1 OR instr(email_lc, ?) = 1)", {prefix, prefix});
  }
  absl::MutexLock lock(&mu_);
  v1::ListAccountsResponse response;
  MR_RETURN_IF_ERROR(ReadPage(page, db_.get(), "accounts", where, response.mutable_accounts(),
                              response.mutable_page()));
  return response;
}

// --- Reminders ---

absl::StatusOr<std::vector<PlannedReminder>> AccountRegistry::RemindersOfLocked(
    AccountSpace space, absl::string_view id) const {
  MR_ASSIGN_OR_RETURN(
      Statement q,
      db_->Prepare(
          "SELECT data FROM reminders WHERE space = ? AND account_id = ? ORDER BY due_us, id"));
  q.Bind(1, static_cast<int64_t>(space)).Bind(2, id);
  return ReadAll<PlannedReminder>(q);
}

absl::StatusOr<std::vector<PlannedReminder>> AccountRegistry::RemindersOf(
    AccountSpace space, absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  return RemindersOfLocked(space, id);
}

absl::Status AccountRegistry::WriteRemindersLocked(const std::vector<PlannedReminder>& reminders) {
  for (const PlannedReminder& r : reminders) {
    MR_ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare("INSERT OR REPLACE INTO reminders (id, space, account_id, kind, state, "
                     "due_us, expire_us, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    MR_RETURN_IF_ERROR(q.Bind(1, r.id())
                           .Bind(2, static_cast<int64_t>(SpaceOf(r.account_kind())))
                           .Bind(3, r.account_id())
                           .Bind(4, static_cast<int64_t>(r.kind()))
                           .Bind(5, static_cast<int64_t>(r.state()))
                           .Bind(6, CeilMicros(ToTime(r.due_time())))
                           .Bind(7, FloorMicros(ToTime(r.expire_time())))
                           .BindBlob(8, r.SerializeAsString())
                           .Run());
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::optional<PlannedReminder>> AccountRegistry::GetReminder(
    absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT data FROM reminders WHERE id = ?"));
  q.Bind(1, id);
  return ReadOne<PlannedReminder>(q);
}

absl::StatusOr<v1::ListPlannedRemindersResponse> AccountRegistry::ListReminders(
    const v1::ListPlannedRemindersRequest& request) const {
  v1::ListPlannedRemindersRequest filters = request;
  filters.clear_page();
  MR_ASSIGN_OR_RETURN(const sqlite::KeysetPage page,
                      sqlite::KeysetPage::Start(request.page(), FilterKey("reminders", &filters),
                                                {"due_us", "id"}, sqlite::SortOrder::kAscending));
  Where where;
  if (!request.account_id().empty()) {
    where.Add("space = ? AND account_id = ?",
              {static_cast<int64_t>(SpaceOf(request.account_kind())), request.account_id()});
  }
  where.AddIn("kind", request.kinds());
  where.AddIn("state", request.states());
  if (request.has_due_after()) where.Add("due_us >= ?", {CeilMicros(ToTime(request.due_after()))});
  if (request.has_due_before()) {
    where.Add("due_us < ?", {CeilMicros(ToTime(request.due_before()))});
  }
  absl::MutexLock lock(&mu_);
  v1::ListPlannedRemindersResponse response;
  MR_RETURN_IF_ERROR(ReadPage(page, db_.get(), "reminders", where, response.mutable_reminders(),
                              response.mutable_page()));
  return response;
}

absl::StatusOr<std::vector<std::vector<PlannedReminder>>> AccountRegistry::DueGroups(
    absl::Time now, const absl::optional<std::pair<AccountSpace, std::string>>& account) const {
  absl::MutexLock lock(&mu_);
  Where where;
  where.Add("state = ?", {int64_t{v1::REMINDER_STATE_PLANNED}});
  where.Add("due_us <= ?", {FloorMicros(now)});
  if (account.has_value()) {
    where.Add("space = ? AND account_id = ?",
              {static_cast<int64_t>(account->first), account->second});
  }
  std::vector<std::tuple<int64_t, std::string, int64_t>> keys;
  {
    MR_ASSIGN_OR_RETURN(
        Statement q,
        db_->PrepareOnce(absl::StrCat("SELECT space, account_id, expire_us, MIN(due_us) "
                                      "FROM reminders",
                                      where.Sql(), " GROUP BY space, account_id, expire_us",
                                      " ORDER BY MIN(due_us)")));
    q.BindAll(where.values);
    for (;;) {
      MR_ASSIGN_OR_RETURN(const bool row, q.Step());
      if (!row) break;
      keys.emplace_back(q.Int(0), q.Text(1), q.Int(2));
    }
  }
  std::vector<std::vector<PlannedReminder>> groups;
  for (const auto& [space, id, expire_us] : keys) {
    MR_ASSIGN_OR_RETURN(
        Statement g,
        db_->Prepare("SELECT data FROM reminders WHERE space = ? AND account_id = ? "
                     "AND expire_us = ? ORDER BY due_us"));
    g.Bind(1, space).Bind(2, id).Bind(3, expire_us);
    MR_ASSIGN_OR_RETURN(std::vector<PlannedReminder> group, ReadAll<PlannedReminder>(g));
    groups.push_back(std::move(group));
  }
  return groups;
}

absl::StatusOr<std::vector<PlannedReminder>> AccountRegistry::DuePlanned(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(
      Statement q,
      db_->Prepare("SELECT data FROM reminders WHERE state = ? AND due_us <= ? ORDER BY due_us"));
  q.Bind(1, int64_t{v1::REMINDER_STATE_PLANNED}).Bind(2, FloorMicros(now));
  return ReadAll<PlannedReminder>(q);
}

absl::StatusOr<absl::optional<absl::Time>> AccountRegistry::NextDueTime() const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement q,
                      db_->Prepare("SELECT MIN(due_us) FROM reminders WHERE state = ?"));
  q.Bind(1, int64_t{v1::REMINDER_STATE_PLANNED});
  MR_ASSIGN_OR_RETURN(const bool row, q.Step());
  if (!row || q.IsNull(0)) return absl::optional<absl::Time>();
  return absl::optional<absl::Time>(absl::FromUnixMicros(q.Int(0)));
}

absl::Status AccountRegistry::SetStateLocked(absl::string_view id, ReminderState state,
                                             absl::string_view notification_id, absl::Time now,
                                             bool must_be_planned) {
  absl::optional<PlannedReminder> r;
  {
    MR_ASSIGN_OR_RETURN(Statement q, db_->Prepare("SELECT data FROM reminders WHERE id = ?"));
    q.Bind(1, id);
    MR_ASSIGN_OR_RETURN(r, ReadOne<PlannedReminder>(q));
  }
  if (!r.has_value()) return absl::NotFoundError(absl::StrCat("reminder ", id, " does not exist"));
  if (r->state() != v1::REMINDER_STATE_PLANNED) {
    if (!must_be_planned) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("reminder ", id, " is ", v1::ReminderState_Name(r->state()), ", not PLANNED"));
  }
  r->set_state(state);
  *r->mutable_state_time() = ToTimestamp(now);
  if (!notification_id.empty()) r->set_notification_id(std::string(notification_id));
  return WriteRemindersLocked({*r});
}

absl::Status AccountRegistry::MarkQueued(absl::string_view id, absl::string_view notification_id,
                                         absl::Time now) {
  absl::MutexLock lock(&mu_);
  return SetStateLocked(id, v1::REMINDER_STATE_QUEUED, notification_id, now,
                        /*must_be_planned=*/true);
}

absl::Status AccountRegistry::MarkSkipped(const std::vector<std::string>& ids, absl::Time now) {
  if (ids.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  for (const std::string& id : ids) {
    if (absl::Status status = SetStateLocked(id, v1::REMINDER_STATE_SKIPPED, "", now,
                                             /*must_be_planned=*/false);
        !status.ok() && !absl::IsNotFound(status)) {
      return status;
    }
  }
  return txn.Commit();
}

absl::StatusOr<int64_t> AccountRegistry::PurgeFinal(absl::Time expired_before) {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement q,
                      db_->Prepare("DELETE FROM reminders WHERE state != ? AND expire_us < ?"));
  MR_RETURN_IF_ERROR(
      q.Bind(1, int64_t{v1::REMINDER_STATE_PLANNED}).Bind(2, FloorMicros(expired_before)).Run());
  return db_->Changes();
}

}  // namespace mailroom::pan
