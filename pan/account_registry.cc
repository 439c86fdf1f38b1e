#include "pan/account_registry.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"
#include "google/protobuf/util/message_differencer.h"
#include "common/base/proto_hash.h"
#include "pan/reminder_settings.h"

namespace mailroom::pan {
namespace {

using ::mailroom::common::v1::PageRequest;

constexpr int kSchemaVersion = 1;
constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

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

absl::Status SqlError(sqlite3* db, int rc, absl::string_view what) {
  const std::string message = absl::StrCat("pan registry: ", what, ": ",
                                           db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  const int primary = rc & 0xFF;
  if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_BUSY ||
      primary == SQLITE_LOCKED || primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

using BindValue = std::variant<int64_t, std::string>;

// One prepared statement, finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, absl::string_view sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status status() const {
    return rc_ == SQLITE_OK ? absl::OkStatus() : SqlError(db_, rc_, "prepare");
  }
  Statement& Bind(int index, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& Bind(int index, absl::string_view text) {
    Check(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }
  Statement& BindBlob(int index, absl::string_view bytes) {
    Check(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }
  Statement& BindNull(int index) {
    Check(sqlite3_bind_null(stmt_, index));
    return *this;
  }
  Statement& BindAll(const std::vector<BindValue>& values, int first = 1) {
    for (size_t i = 0; i < values.size(); ++i) {
      const int index = first + static_cast<int>(i);
      if (const int64_t* n = std::get_if<int64_t>(&values[i])) {
        Bind(index, *n);
      } else {
        Bind(index, std::get<std::string>(values[i]));
      }
    }
    return *this;
  }
  // True while rows come; false when done.
  absl::StatusOr<bool> Step() {
    if (rc_ != SQLITE_OK) return SqlError(db_, rc_, "prepare/bind");
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(db_, rc, "step");
  }
  absl::Status Run() {
    absl::StatusOr<bool> row = Step();
    return row.ok() ? absl::OkStatus() : row.status();
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string Bytes(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
  }

 private:
  void Check(int rc) {
    if (rc_ == SQLITE_OK && rc != SQLITE_OK) rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

absl::Status Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  sqlite3_free(error);
  return rc == SQLITE_OK ? absl::OkStatus() : SqlError(db, rc, "exec");
}

// BEGIN IMMEDIATE ... COMMIT, rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    if (open_) Exec(db_, "ROLLBACK").IgnoreError();
  }
  absl::Status Begin() {
    absl::Status status = Exec(db_, "BEGIN IMMEDIATE");
    open_ = status.ok();
    return status;
  }
  absl::Status Commit() {
    absl::Status status = Exec(db_, "COMMIT");
    if (status.ok()) open_ = false;
    return status;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

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

// Paging over an ordered query: the token is "<offset>.<hash of the filters>", so a token
// used with other filters is recognised and refused.
struct Page {
  int64_t offset = 0;
  int size = kDefaultPageSize;
  std::string filter_hash;
};

absl::StatusOr<Page> ParsePage(const PageRequest& page, const google::protobuf::Message& filters) {
  Page out;
  out.filter_hash = Sha256Hex(DeterministicBytes(filters)).substr(0, 16);
  if (page.page_size() > 0) out.size = std::min(page.page_size(), kMaxPageSize);
  if (page.page_token().empty()) return out;
  std::vector<std::string> parts = absl::StrSplit(page.page_token(), '.');
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &out.offset) || out.offset < 0) {
    return absl::InvalidArgumentError("page.page_token: not a token from this service");
  }
  if (parts[1] != out.filter_hash) {
    return absl::InvalidArgumentError(
        "page.page_token: the token was issued for other filters; repeat the same filters");
  }
  return out;
}

void FillPage(const Page& page, int64_t returned, int64_t total,
              mailroom::common::v1::PageResponse* response) {
  response->set_total_size(total);
  if (page.offset + returned < total) {
    response->set_next_page_token(absl::StrCat(page.offset + returned, ".", page.filter_hash));
  }
}

// Query fragments with their bound values, in order.
struct Where {
  std::vector<std::string> clauses;
  std::vector<BindValue> values;

  void Add(std::string clause, std::vector<BindValue> bound = {}) {
    clauses.push_back(std::move(clause));
    for (BindValue& v : bound) values.push_back(std::move(v));
  }
  template <typename T>
  void AddIn(const std::string& column, const T& items) {
    if (items.empty()) return;
    std::vector<std::string> marks;
    for (const auto& item : items) {
      marks.push_back("?");
      values.push_back(static_cast<int64_t>(item));
    }
    clauses.push_back(absl::StrCat(column, " IN (", absl::StrJoin(marks, ","), ")"));
  }
  std::string Sql() const {
    return clauses.empty() ? "" : absl::StrCat(" WHERE ", absl::StrJoin(clauses, " AND "));
  }
};

template <typename T>
absl::StatusOr<T> Parse(const std::string& bytes) {
  T message;
  if (!message.ParseFromString(bytes)) {
    return absl::DataLossError("pan registry: a stored record does not parse");
  }
  return message;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccountRegistry>> AccountRegistry::Open(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("pan registry: cannot open ", path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "pan registry: ", path, " is in use by another process (one PAN per data directory)"));
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqlError(db, rc, absl::StrCat("open ", path));
    sqlite3_close(db);
    close(fd);
    return status;
  }
  std::unique_ptr<AccountRegistry> registry(new AccountRegistry(db, fd));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"}) {
    if (absl::Status status = Exec(db, pragma); !status.ok()) return status;
  }
  if (absl::Status status = Exec(db, kSchema); !status.ok()) return status;
  Statement version(db, "SELECT value FROM meta WHERE key = 'schema_version'");
  absl::StatusOr<bool> row = version.Step();
  if (!row.ok()) return row.status();
  if (*row) {
    int stored = 0;
    if (!absl::SimpleAtoi(version.Bytes(0), &stored) || stored > kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("pan registry: ", path, " has schema version ", version.Bytes(0),
                       ", newer than this build's ", kSchemaVersion));
    }
  } else {
    Statement insert(db, "INSERT INTO meta (key, value) VALUES ('schema_version', ?)");
    if (absl::Status status = insert.Bind(1, absl::StrCat(kSchemaVersion)).Run(); !status.ok()) {
      return status;
    }
  }
  return registry;
}

AccountRegistry::~AccountRegistry() {
  {
    absl::MutexLock lock(&mu_);
    sqlite3_close_v2(db_);
  }
  close(lock_fd_);
}

// --- Settings ---

absl::StatusOr<ReminderSettings> AccountRegistry::GetSettingsLocked() const {
  Statement q(db_, "SELECT value FROM meta WHERE key = 'settings'");
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row) {
    ReminderSettings defaults = DefaultReminderSettings();
    defaults.set_etag(ReminderSettingsEtag(defaults));
    return defaults;
  }
  return Parse<ReminderSettings>(q.Bytes(0));
}

absl::Status AccountRegistry::SaveSettingsLocked(const ReminderSettings& settings) {
  Statement q(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES ('settings', ?)");
  return q.BindBlob(1, settings.SerializeAsString()).Run();
}

absl::StatusOr<ReminderSettings> AccountRegistry::InitSettings(const ReminderSettings& seed,
                                                               absl::Time now) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "SELECT 1 FROM meta WHERE key = 'settings'");
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (*row) return GetSettingsLocked();
  ReminderSettings settings = seed;
  settings.set_etag(ReminderSettingsEtag(settings));
  *settings.mutable_update_time() = ToTimestamp(now);
  if (absl::Status status = SaveSettingsLocked(settings); !status.ok()) return status;
  return settings;
}

absl::StatusOr<ReminderSettings> AccountRegistry::GetSettings() const {
  absl::MutexLock lock(&mu_);
  return GetSettingsLocked();
}

absl::StatusOr<AccountRegistry::SettingsChange> AccountRegistry::SetSettings(
    const ReminderSettings& settings, absl::string_view expected_etag, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_);
  if (absl::Status status = txn.Begin(); !status.ok()) return status;
  absl::StatusOr<ReminderSettings> current = GetSettingsLocked();
  if (!current.ok()) return current.status();
  if (!expected_etag.empty() && expected_etag != current->etag()) {
    return WithReason(absl::AbortedError(absl::StrCat(
                          "etag: \"", expected_etag, "\" is not the current settings' etag \"",
                          current->etag(), "\"; read them again and repeat the change")),
                      "ETAG_MISMATCH");
  }
  SettingsChange change;
  change.settings = settings;
  change.settings.set_etag(ReminderSettingsEtag(settings));
  if (change.settings.etag() == current->etag()) {
    change.settings = *current;
    return change;
  }
  *change.settings.mutable_update_time() = ToTimestamp(now);
  if (absl::Status status = SaveSettingsLocked(change.settings); !status.ok()) return status;
  std::vector<Account> accounts;
  {
    Statement q(db_, "SELECT data FROM accounts");
    for (;;) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      absl::StatusOr<Account> account = Parse<Account>(q.Bytes(0));
      if (!account.ok()) return account.status();
      accounts.push_back(*std::move(account));
    }
  }
  for (const Account& account : accounts) {
    absl::StatusOr<PlanChanges> changes = ReplanLocked(account, change.settings, now);
    if (!changes.ok()) return changes.status();
    change.replanned += changes->planned + changes->canceled;
  }
  if (absl::Status status = txn.Commit(); !status.ok()) return status;
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
  absl::StatusOr<std::vector<PlannedReminder>> existing = RemindersOfLocked(key.space, key.id);
  if (!existing.ok()) return existing.status();
  PlanChanges changes = PlanReminders(input, *existing, now);
  if (absl::Status status = WriteRemindersLocked(changes.writes); !status.ok()) return status;
  return changes;
}

absl::StatusOr<AccountRegistry::UpsertResult> AccountRegistry::UpsertAccount(const Account& account,
                                                                             absl::Time now) {
  absl::MutexLock lock(&mu_);
  const AccountKey key = KeyOf(account);
  Transaction txn(db_);
  if (absl::Status status = txn.Begin(); !status.ok()) return status;
  absl::StatusOr<absl::optional<Account>> old = GetAccountLocked(key.space, key.id);
  if (!old.ok()) return old.status();
  UpsertResult result;
  result.created = !old->has_value();
  result.account = account;
  MutableUpdateTime(&result.account)->Clear();
  bool changed = true;
  if (old->has_value()) {
    Account previous = **old;
    const google::protobuf::Timestamp previous_update = *MutableUpdateTime(&previous);
    MutableUpdateTime(&previous)->Clear();
    changed = !google::protobuf::util::MessageDifferencer::Equals(previous, result.account);
    if (!changed) *MutableUpdateTime(&result.account) = previous_update;
  }
  if (changed) *MutableUpdateTime(&result.account) = ToTimestamp(now);
  Statement write(db_,
                  "INSERT OR REPLACE INTO accounts (space, id, kind, expire_us, username_lc, "
                  "email_lc, data) VALUES (?, ?, ?, ?, ?, ?, ?)");
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
  if (absl::Status status = write.Run(); !status.ok()) return status;
  absl::StatusOr<ReminderSettings> settings = GetSettingsLocked();
  if (!settings.ok()) return settings.status();
  absl::StatusOr<PlanChanges> changes = ReplanLocked(result.account, *settings, now);
  if (!changes.ok()) return changes.status();
  result.changes = *std::move(changes);
  if (absl::Status status = txn.Commit(); !status.ok()) return status;
  return result;
}

absl::StatusOr<AccountRegistry::DeleteResult> AccountRegistry::DeleteAccount(AccountSpace space,
                                                                             absl::string_view id,
                                                                             absl::Time now) {
  absl::MutexLock lock(&mu_);
  Transaction txn(db_);
  if (absl::Status status = txn.Begin(); !status.ok()) return status;
  DeleteResult result;
  Statement remove(db_, "DELETE FROM accounts WHERE space = ? AND id = ?");
  if (absl::Status status = remove.Bind(1, static_cast<int64_t>(space)).Bind(2, id).Run();
      !status.ok()) {
    return status;
  }
  result.found = sqlite3_changes(db_) > 0;
  absl::StatusOr<std::vector<PlannedReminder>> existing = RemindersOfLocked(space, id);
  if (!existing.ok()) return existing.status();
  const PlanChanges changes = CancelReminders(*existing, now);
  if (absl::Status status = WriteRemindersLocked(changes.writes); !status.ok()) return status;
  result.canceled = changes.canceled;
  if (absl::Status status = txn.Commit(); !status.ok()) return status;
  return result;
}

absl::StatusOr<absl::optional<Account>> AccountRegistry::GetAccountLocked(
    AccountSpace space, absl::string_view id) const {
  Statement q(db_, "SELECT data FROM accounts WHERE space = ? AND id = ?");
  q.Bind(1, static_cast<int64_t>(space)).Bind(2, id);
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::optional<Account>();
  absl::StatusOr<Account> account = Parse<Account>(q.Bytes(0));
  if (!account.ok()) return account.status();
  return absl::optional<Account>(*std::move(account));
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
  absl::StatusOr<Page> page = ParsePage(request.page(), filters);
  if (!page.ok()) return page.status();
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
  Statement count(db_, absl::StrCat("SELECT COUNT(*) FROM accounts", where.Sql()));
  count.BindAll(where.values);
  absl::StatusOr<bool> row = count.Step();
  if (!row.ok()) return row.status();
  const int64_t total = count.Int(0);
  Statement q(db_,
              absl::StrCat("SELECT data FROM accounts", where.Sql(),
                           " ORDER BY expire_us IS NULL, expire_us, space, id LIMIT ? OFFSET ?"));
  q.BindAll(where.values);
  const int next = static_cast<int>(where.values.size()) + 1;
  q.Bind(next, int64_t{page->size}).Bind(next + 1, page->offset);
  int64_t returned = 0;
  for (;;) {
    absl::StatusOr<bool> more = q.Step();
    if (!more.ok()) return more.status();
    if (!*more) break;
    absl::StatusOr<Account> account = Parse<Account>(q.Bytes(0));
    if (!account.ok()) return account.status();
    *response.add_accounts() = *std::move(account);
    ++returned;
  }
  FillPage(*page, returned, total, response.mutable_page());
  return response;
}

// --- Reminders ---

absl::StatusOr<std::vector<PlannedReminder>> AccountRegistry::RemindersOfLocked(
    AccountSpace space, absl::string_view id) const {
  Statement q(db_,
              "SELECT data FROM reminders WHERE space = ? AND account_id = ? ORDER BY due_us, id");
  q.Bind(1, static_cast<int64_t>(space)).Bind(2, id);
  std::vector<PlannedReminder> out;
  for (;;) {
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    absl::StatusOr<PlannedReminder> r = Parse<PlannedReminder>(q.Bytes(0));
    if (!r.ok()) return r.status();
    out.push_back(*std::move(r));
  }
  return out;
}

absl::StatusOr<std::vector<PlannedReminder>> AccountRegistry::RemindersOf(
    AccountSpace space, absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  return RemindersOfLocked(space, id);
}

absl::Status AccountRegistry::WriteRemindersLocked(const std::vector<PlannedReminder>& reminders) {
  for (const PlannedReminder& r : reminders) {
    Statement q(db_,
                "INSERT OR REPLACE INTO reminders (id, space, account_id, kind, state, due_us, "
                "expire_us, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    q.Bind(1, r.id())
        .Bind(2, static_cast<int64_t>(SpaceOf(r.account_kind())))
        .Bind(3, r.account_id())
        .Bind(4, static_cast<int64_t>(r.kind()))
        .Bind(5, static_cast<int64_t>(r.state()))
        .Bind(6, CeilMicros(ToTime(r.due_time())))
        .Bind(7, FloorMicros(ToTime(r.expire_time())))
        .BindBlob(8, r.SerializeAsString());
    if (absl::Status status = q.Run(); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::optional<PlannedReminder>> AccountRegistry::GetReminder(
    absl::string_view id) const {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "SELECT data FROM reminders WHERE id = ?");
  q.Bind(1, id);
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::optional<PlannedReminder>();
  absl::StatusOr<PlannedReminder> r = Parse<PlannedReminder>(q.Bytes(0));
  if (!r.ok()) return r.status();
  return absl::optional<PlannedReminder>(*std::move(r));
}

absl::StatusOr<v1::ListPlannedRemindersResponse> AccountRegistry::ListReminders(
    const v1::ListPlannedRemindersRequest& request) const {
  v1::ListPlannedRemindersRequest filters = request;
  filters.clear_page();
  absl::StatusOr<Page> page = ParsePage(request.page(), filters);
  if (!page.ok()) return page.status();
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
  Statement count(db_, absl::StrCat("SELECT COUNT(*) FROM reminders", where.Sql()));
  count.BindAll(where.values);
  absl::StatusOr<bool> row = count.Step();
  if (!row.ok()) return row.status();
  const int64_t total = count.Int(0);
  Statement q(db_, absl::StrCat("SELECT data FROM reminders", where.Sql(),
                                " ORDER BY due_us, id LIMIT ? OFFSET ?"));
  q.BindAll(where.values);
  const int next = static_cast<int>(where.values.size()) + 1;
  q.Bind(next, int64_t{page->size}).Bind(next + 1, page->offset);
  int64_t returned = 0;
  for (;;) {
    absl::StatusOr<bool> more = q.Step();
    if (!more.ok()) return more.status();
    if (!*more) break;
    absl::StatusOr<PlannedReminder> r = Parse<PlannedReminder>(q.Bytes(0));
    if (!r.ok()) return r.status();
    *response.add_reminders() = *std::move(r);
    ++returned;
  }
  FillPage(*page, returned, total, response.mutable_page());
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
  Statement q(db_, absl::StrCat("SELECT space, account_id, expire_us, MIN(due_us) FROM reminders",
                                where.Sql(), " GROUP BY space, account_id, expire_us",
                                " ORDER BY MIN(due_us)"));
  q.BindAll(where.values);
  for (;;) {
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    keys.emplace_back(q.Int(0), q.Bytes(1), q.Int(2));
  }
  std::vector<std::vector<PlannedReminder>> groups;
  for (const auto& [space, id, expire_us] : keys) {
    Statement g(db_,
                "SELECT data FROM reminders WHERE space = ? AND account_id = ? AND expire_us = ? "
                "ORDER BY due_us");
    g.Bind(1, space).Bind(2, id).Bind(3, expire_us);
    std::vector<PlannedReminder> group;
    for (;;) {
      absl::StatusOr<bool> row = g.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      absl::StatusOr<PlannedReminder> r = Parse<PlannedReminder>(g.Bytes(0));
      if (!r.ok()) return r.status();
      group.push_back(*std::move(r));
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

absl::StatusOr<std::vector<PlannedReminder>> AccountRegistry::DuePlanned(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "SELECT data FROM reminders WHERE state = ? AND due_us <= ? ORDER BY due_us");
  q.Bind(1, int64_t{v1::REMINDER_STATE_PLANNED}).Bind(2, FloorMicros(now));
  std::vector<PlannedReminder> out;
  for (;;) {
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    absl::StatusOr<PlannedReminder> r = Parse<PlannedReminder>(q.Bytes(0));
    if (!r.ok()) return r.status();
    out.push_back(*std::move(r));
  }
  return out;
}

absl::StatusOr<absl::optional<absl::Time>> AccountRegistry::NextDueTime() const {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "SELECT MIN(due_us) FROM reminders WHERE state = ?");
  q.Bind(1, int64_t{v1::REMINDER_STATE_PLANNED});
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row || q.IsNull(0)) return absl::optional<absl::Time>();
  return absl::optional<absl::Time>(absl::FromUnixMicros(q.Int(0)));
}

absl::Status AccountRegistry::SetStateLocked(absl::string_view id, ReminderState state,
                                             absl::string_view notification_id, absl::Time now,
                                             bool must_be_planned) {
  Statement q(db_, "SELECT data FROM reminders WHERE id = ?");
  q.Bind(1, id);
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("reminder ", id, " does not exist"));
  absl::StatusOr<PlannedReminder> r = Parse<PlannedReminder>(q.Bytes(0));
  if (!r.ok()) return r.status();
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
  Transaction txn(db_);
  if (absl::Status status = txn.Begin(); !status.ok()) return status;
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
  Statement q(db_, "DELETE FROM reminders WHERE state != ? AND expire_us < ?");
  q.Bind(1, int64_t{v1::REMINDER_STATE_PLANNED}).Bind(2, FloorMicros(expired_before));
  if (absl::Status status = q.Run(); !status.ok()) return status;
  return static_cast<int64_t>(sqlite3_changes(db_));
}

}  // namespace mailroom::pan
