// The registry against real SQLite files under TEST_TMPDIR: accounts and their reminders are
// written together and survive a reopen; one process per file; settings with etags; listing
// with filters, ordering and page tokens; due groups; purge.
#include "pan/account_registry.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pan/reminder_settings.h"
#include "pan/reminder_plan.h"
#include "tests/pan/pan_fixtures.h"

namespace mailroom::pan {
namespace {

using ::mailroom::pan::testing::FreshTestDir;
using ::mailroom::pan::testing::Guest;
using ::mailroom::pan::testing::SettingsWithLeads;
using ::mailroom::pan::testing::Ts;
using ::mailroom::pan::testing::User;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
constexpr absl::Duration kDay = absl::Hours(24);

Account GuestAccount(const std::string& id, absl::Time expire) {
  Account a;
  *a.mutable_guest() = Guest(id, expire);
  return a;
}

Account UserAccount(const std::string& id, absl::Time expire,
                    v1::UserKind kind = v1::USER_KIND_INTERNAL) {
  Account a;
  *a.mutable_user() = User(id, expire, kind);
  return a;
}

class AccountRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = FreshTestDir() + "/pan.db";
    Reopen();
  }

  void Reopen() {
    registry_.reset();
    absl::StatusOr<std::unique_ptr<AccountRegistry>> opened = AccountRegistry::Open(path_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    registry_ = *std::move(opened);
  }

  AccountRegistry::UpsertResult Upsert(const Account& account, absl::Time now = kNow) {
    absl::StatusOr<AccountRegistry::UpsertResult> result = registry_->UpsertAccount(account, now);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(AccountRegistry::UpsertResult());
  }

  std::vector<std::string> ListedIds(const v1::ListAccountsRequest& request) {
    absl::StatusOr<v1::ListAccountsResponse> response = registry_->ListAccounts(request);
    EXPECT_TRUE(response.ok()) << response.status();
    std::vector<std::string> ids;
    if (!response.ok()) return ids;
    for (const Account& a : response->accounts()) {
      ids.push_back(a.has_guest() ? a.guest().id() : a.user().id());
    }
    return ids;
  }

  std::string path_;
  std::unique_ptr<AccountRegistry> registry_;
};

TEST_F(AccountRegistryTest, UpsertStoresTheAccountAndPlansItsRemindersDurably) {
  const AccountRegistry::UpsertResult result = Upsert(GuestAccount("g1", kNow + 10 * kDay));
  EXPECT_TRUE(result.created);
  EXPECT_EQ(result.changes.planned, 2);  // the default 3 d and 1 d
  EXPECT_EQ(ToTime(result.account.guest().update_time()), kNow);
  Reopen();
  absl::StatusOr<absl::optional<Account>> stored =
      registry_->GetAccount(AccountSpace::kGuest, "g1");
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->guest().username(), "g1-user");
  absl::StatusOr<std::vector<PlannedReminder>> reminders =
      registry_->RemindersOf(AccountSpace::kGuest, "g1");
  ASSERT_TRUE(reminders.ok());
  ASSERT_THAT(*reminders, SizeIs(2));
  EXPECT_EQ(ToTime((*reminders)[0].due_time()), kNow + 7 * kDay);  // by due time
  EXPECT_EQ(ToTime((*reminders)[1].due_time()), kNow + 9 * kDay);
  // Guests and users are separate id spaces.
  EXPECT_FALSE(registry_->GetAccount(AccountSpace::kUser, "g1")->has_value());
}

TEST_F(AccountRegistryTest, IdenticalUpsertKeepsUpdateTimeAndChangesNothing) {
  Upsert(GuestAccount("g1", kNow + 10 * kDay));
  const AccountRegistry::UpsertResult again =
      Upsert(GuestAccount("g1", kNow + 10 * kDay), kNow + absl::Hours(1));
  EXPECT_FALSE(again.created);
  EXPECT_THAT(again.changes.writes, IsEmpty());
  EXPECT_EQ(ToTime(again.account.guest().update_time()), kNow);
  Account changed = GuestAccount("g1", kNow + 10 * kDay);
  changed.mutable_guest()->set_first_name("Augusta");
  EXPECT_EQ(ToTime(Upsert(changed, kNow + absl::Hours(2)).account.guest().update_time()),
            kNow + absl::Hours(2));
}

TEST_F(AccountRegistryTest, UserWithoutPasswordExpiryHasNoReminders) {
  EXPECT_EQ(Upsert(UserAccount("u1", absl::InfinitePast())).changes.planned, 0);
  EXPECT_EQ(Upsert(UserAccount("u1", kNow + 30 * kDay)).changes.planned, 3);
  const AccountRegistry::UpsertResult removed = Upsert(UserAccount("u1", absl::InfinitePast()));
  EXPECT_EQ(removed.changes.canceled, 3);
}

TEST_F(AccountRegistryTest, DeleteCancelsPlannedRemindersAndKeepsThemAsHistory) {
  Upsert(GuestAccount("g1", kNow + 10 * kDay));
  absl::StatusOr<AccountRegistry::DeleteResult> deleted =
      registry_->DeleteAccount(AccountSpace::kGuest, "g1", kNow + kDay);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->found);
  EXPECT_EQ(deleted->canceled, 2);
  EXPECT_FALSE(registry_->GetAccount(AccountSpace::kGuest, "g1")->has_value());
  for (const PlannedReminder& r : *registry_->RemindersOf(AccountSpace::kGuest, "g1")) {
    EXPECT_EQ(r.state(), v1::REMINDER_STATE_CANCELED);
  }
  EXPECT_FALSE(registry_->NextDueTime()->has_value());
  deleted = registry_->DeleteAccount(AccountSpace::kGuest, "unknown", kNow);
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(deleted->found);
  EXPECT_EQ(deleted->canceled, 0);
}

TEST_F(AccountRegistryTest, ASecondOpenOfTheSameFileIsRefusedAndTheFileIsPrivate) {
  absl::StatusOr<std::unique_ptr<AccountRegistry>> second = AccountRegistry::Open(path_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  struct stat info;
  ASSERT_EQ(stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
}

TEST_F(AccountRegistryTest, SettingsAreSeededOnceThenChangedWithEtags) {
  const ReminderSettings seed = SettingsWithLeads({2}, {10});
  absl::StatusOr<ReminderSettings> first = registry_->InitSettings(seed, kNow);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->etag(), ReminderSettingsEtag(seed));
  EXPECT_EQ(ToTime(first->update_time()), kNow);
  // A later start with another seed keeps what was saved.
  Reopen();
  absl::StatusOr<ReminderSettings> kept =
      registry_->InitSettings(SettingsWithLeads({5}, {}), kNow + kDay);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->etag(), first->etag());

  Upsert(GuestAccount("g1", kNow + 10 * kDay));
  EXPECT_THAT(*registry_->RemindersOf(AccountSpace::kGuest, "g1"), SizeIs(1));

  absl::StatusOr<AccountRegistry::SettingsChange> stale =
      registry_->SetSettings(SettingsWithLeads({4}, {}), "not-the-etag", kNow);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReasonOf(stale.status()), "ETAG_MISMATCH");
  EXPECT_EQ(registry_->GetSettings()->etag(), first->etag());

  absl::StatusOr<AccountRegistry::SettingsChange> changed =
      registry_->SetSettings(SettingsWithLeads({4, 2}, {}), first->etag(), kNow + kDay);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(changed->replanned, 1);  // the 4-day one planned; the 2-day one kept
  EXPECT_NE(changed->settings.etag(), first->etag());
  EXPECT_EQ(registry_->GetSettings()->etag(), changed->settings.etag());
  EXPECT_THAT(*registry_->RemindersOf(AccountSpace::kGuest, "g1"), SizeIs(2));
  // The same settings again change nothing.
  changed = registry_->SetSettings(SettingsWithLeads({4, 2}, {}), "", kNow + 2 * kDay);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed->replanned, 0);
  EXPECT_EQ(ToTime(changed->settings.update_time()), kNow + kDay);
}

TEST_F(AccountRegistryTest, ListsBySoonestExpiryWithFiltersAndPages) {
  Upsert(GuestAccount("g-late", kNow + 30 * kDay));
  Upsert(GuestAccount("g-soon", kNow + 2 * kDay));
  Upsert(UserAccount("u-admin", kNow + 10 * kDay, v1::USER_KIND_ADMIN));
  Upsert(UserAccount("u-never", absl::InfinitePast()));
  Account shouty = GuestAccount("g-mid", kNow + 5 * kDay);
  shouty.mutable_guest()->set_username("Alice.Smith");
  Upsert(shouty);

  v1::ListAccountsRequest all;
  EXPECT_THAT(ListedIds(all), ElementsAre("g-soon", "g-mid", "u-admin", "g-late", "u-never"));

  v1::ListAccountsRequest guests;
  guests.add_kinds(v1::ACCOUNT_KIND_GUEST);
  guests.mutable_expire_before()->CopyFrom(Ts(kNow + 6 * kDay));
  EXPECT_THAT(ListedIds(guests), ElementsAre("g-soon", "g-mid"));

  v1::ListAccountsRequest admins;
  admins.add_kinds(v1::ACCOUNT_KIND_ADMIN_USER);
  EXPECT_THAT(ListedIds(admins), ElementsAre("u-admin"));

  v1::ListAccountsRequest prefix;
  prefix.set_prefix("aLiCe");
  EXPECT_THAT(ListedIds(prefix), ElementsAre("g-mid"));
  prefix.set_prefix("U-NEVER@");  // the address "u-never@example.test"
  EXPECT_THAT(ListedIds(prefix), ElementsAre("u-never"));

  v1::ListAccountsRequest paged;
  paged.mutable_page()->set_page_size(2);
  absl::StatusOr<v1::ListAccountsResponse> page1 = registry_->ListAccounts(paged);
  ASSERT_TRUE(page1.ok());
  EXPECT_EQ(page1->accounts_size(), 2);
  EXPECT_EQ(page1->page().total_size(), 5);
  ASSERT_FALSE(page1->page().next_page_token().empty());
  paged.mutable_page()->set_page_token(page1->page().next_page_token());
  EXPECT_THAT(ListedIds(paged), ElementsAre("u-admin", "g-late"));
  // A token only works with the filters it was issued for.
  paged.add_kinds(v1::ACCOUNT_KIND_GUEST);
  EXPECT_EQ(registry_->ListAccounts(paged).status().code(), absl::StatusCode::kInvalidArgument);
  paged.clear_kinds();
  paged.mutable_page()->set_page_token("garbage");
  EXPECT_EQ(registry_->ListAccounts(paged).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AccountRegistryTest, ListsRemindersByDueTimeWithFilters) {
  Upsert(GuestAccount("g1", kNow + 10 * kDay));
  Upsert(UserAccount("u1", kNow + 20 * kDay));
  v1::ListPlannedRemindersRequest all;
  absl::StatusOr<v1::ListPlannedRemindersResponse> listed = registry_->ListReminders(all);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->reminders_size(), 5);
  for (int i = 1; i < listed->reminders_size(); ++i) {
    EXPECT_LE(ToTime(listed->reminders(i - 1).due_time()), ToTime(listed->reminders(i).due_time()));
  }
  v1::ListPlannedRemindersRequest mine;
  mine.set_account_id("u1");
  mine.set_account_kind(v1::ACCOUNT_KIND_INTERNAL_USER);
  EXPECT_EQ(registry_->ListReminders(mine)->reminders_size(), 3);
  v1::ListPlannedRemindersRequest window;
  window.add_kinds(v1::REMINDER_KIND_PASSWORD_EXPIRY);
  *window.mutable_due_after() = Ts(kNow + 13 * kDay);
  *window.mutable_due_before() = Ts(kNow + 19 * kDay);
  listed = registry_->ListReminders(window);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->reminders_size(), 1);
  EXPECT_EQ(listed->reminders(0).lead_time().seconds(), 7 * 86400);
  v1::ListPlannedRemindersRequest queued;
  queued.add_states(v1::REMINDER_STATE_QUEUED);
  EXPECT_EQ(registry_->ListReminders(queued)->reminders_size(), 0);
}

TEST_F(AccountRegistryTest, DueGroupsMarksAndNextDueTime) {
  Upsert(GuestAccount("g1", kNow + 10 * kDay));
  Upsert(GuestAccount("g2", kNow + 20 * kDay));
  EXPECT_EQ(**registry_->NextDueTime(), kNow + 7 * kDay);
  EXPECT_THAT(*registry_->DueGroups(kNow + 7 * kDay - absl::Seconds(1)), IsEmpty());
  absl::StatusOr<std::vector<std::vector<PlannedReminder>>> groups =
      registry_->DueGroups(kNow + 7 * kDay);
  ASSERT_TRUE(groups.ok());
  ASSERT_THAT(*groups, SizeIs(1));
  ASSERT_THAT((*groups)[0], SizeIs(2));  // the whole group, the later one included
  const std::string due_id = (*groups)[0][0].id();
  MR_ASSERT_OK(registry_->MarkQueued(due_id, "pan1/01X", kNow + 7 * kDay));
  // Marking twice is refused: a reminder is queued once.
  EXPECT_EQ(registry_->MarkQueued(due_id, "pan1/01Y", kNow + 7 * kDay).code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<absl::optional<PlannedReminder>> marked = registry_->GetReminder(due_id);
  ASSERT_TRUE(marked.ok() && marked->has_value());
  EXPECT_EQ((*marked)->state(), v1::REMINDER_STATE_QUEUED);
  EXPECT_EQ((*marked)->notification_id(), "pan1/01X");
  EXPECT_EQ(ToTime((*marked)->state_time()), kNow + 7 * kDay);
  EXPECT_EQ(**registry_->NextDueTime(), kNow + 9 * kDay);
  MR_ASSERT_OK(registry_->MarkSkipped({due_id, (*groups)[0][1].id()}, kNow + 8 * kDay));
  EXPECT_EQ((*registry_->GetReminder(due_id))->state(), v1::REMINDER_STATE_QUEUED);
  EXPECT_EQ((*registry_->GetReminder((*groups)[0][1].id()))->state(), v1::REMINDER_STATE_SKIPPED);
  // Only g1's groups when asked for g1.
  EXPECT_THAT(*registry_->DueGroups(kNow + 30 * kDay,
                                    std::make_pair(AccountSpace::kGuest, std::string("g1"))),
              IsEmpty());
}

TEST_F(AccountRegistryTest, PurgeDropsOnlyFinalRemindersPastTheCutOff) {
  Upsert(GuestAccount("g1", kNow + 10 * kDay));
  MR_ASSERT_OK(registry_->DeleteAccount(AccountSpace::kGuest, "g1", kNow).status());
  Upsert(GuestAccount("g2", kNow + 10 * kDay));
  EXPECT_EQ(*registry_->PurgeFinal(kNow + 10 * kDay), 0);
  EXPECT_EQ(*registry_->PurgeFinal(kNow + 10 * kDay + absl::Seconds(1)), 2);
  EXPECT_THAT(*registry_->RemindersOf(AccountSpace::kGuest, "g1"), IsEmpty());
  EXPECT_THAT(*registry_->RemindersOf(AccountSpace::kGuest, "g2"), SizeIs(2));
}

// The schema exactly as account_registry.cc at 139c7bb created it (version in meta).
constexpr char kOldSchema[] = R"sql(
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

// Binds in order: ints as INTEGER, "t:..." as TEXT, anything else as BLOB; nullopt as NULL.
void OldInsert(sqlite3* db, const char* sql,
               const std::vector<absl::optional<absl::variant<int64_t, std::string>>>& values) {
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  for (size_t i = 0; i < values.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    if (!values[i].has_value()) {
      sqlite3_bind_null(stmt, index);
    } else if (const int64_t* n = absl::get_if<int64_t>(&*values[i])) {
      sqlite3_bind_int64(stmt, index, *n);
    } else {
      const std::string& v = absl::get<std::string>(*values[i]);
      if (v.rfind("t:", 0) == 0) {
        sqlite3_bind_text(stmt, index, v.data() + 2, static_cast<int>(v.size()) - 2,
                          SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_blob(stmt, index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
      }
    }
  }
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
}

// A registry written by the code before common/sqlite (commit 139c7bb): the file is made with
// that code's pragmas and schema SQL, its meta schema_version, settings, an account and its
// planned reminders inserted with its statements through the raw SQLite API; this code opens
// it, reads, lists, pages and changes it.
TEST(AccountRegistryCompatTest, ARegistryWrittenByThePreviousCodeOpensAndWorks) {
  const std::string path = FreshTestDir() + "/pan.db";
  ReminderSettings settings = SettingsWithLeads({3}, {14});
  settings.set_etag(ReminderSettingsEtag(settings));
  Account guest = GuestAccount("g-old", kNow + 10 * kDay);
  *guest.mutable_guest()->mutable_update_time() = ToTimestamp(kNow - kDay);
  Account user = UserAccount("u-old", absl::InfinitePast());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              nullptr),
              SQLITE_OK);
    const std::string script =
        absl::StrCat("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", kOldSchema);
    ASSERT_EQ(sqlite3_exec(db, script.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    OldInsert(db, "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", {"t:1"});
    OldInsert(db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('settings', ?)",
              {settings.SerializeAsString()});
    const char* kAccount =
        "INSERT OR REPLACE INTO accounts (space, id, kind, expire_us, username_lc, email_lc, "
        "data) VALUES (?, ?, ?, ?, ?, ?, ?)";
    OldInsert(db, kAccount,
              {int64_t{1}, "t:g-old", int64_t{v1::ACCOUNT_KIND_GUEST},
               absl::ToUnixMicros(kNow + 10 * kDay), "t:" + guest.guest().username(),
               "t:" + guest.guest().email().address(), guest.SerializeAsString()});
    OldInsert(db, kAccount,
              {int64_t{2}, "t:u-old", int64_t{v1::ACCOUNT_KIND_INTERNAL_USER}, absl::nullopt,
               "t:" + user.user().username(), "t:" + user.user().email().address(),
               user.SerializeAsString()});
    AccountPlanInput input;
    input.space = AccountSpace::kGuest;
    input.account_id = "g-old";
    input.account_kind = v1::ACCOUNT_KIND_GUEST;
    input.expire_time = guest.guest().expire_time();
    input.leads = GuestLeadTimes(settings);
    input.recipient = guest.guest().email();
    for (const PlannedReminder& r : PlanReminders(input, {}, kNow - kDay).writes) {
      OldInsert(db,
                "INSERT OR REPLACE INTO reminders (id, space, account_id, kind, state, due_us, "
                "expire_us, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                {"t:" + r.id(), int64_t{1}, "t:g-old", int64_t{r.kind()}, int64_t{r.state()},
                 absl::ToUnixMicros(ToTime(r.due_time())),
                 absl::ToUnixMicros(ToTime(r.expire_time())), r.SerializeAsString()});
    }
    ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
  }

  absl::StatusOr<std::unique_ptr<AccountRegistry>> opened = AccountRegistry::Open(path);
  ASSERT_TRUE(opened.ok()) << opened.status();
  AccountRegistry& registry = **opened;
  EXPECT_EQ(registry.GetSettings()->etag(), settings.etag());
  absl::StatusOr<absl::optional<Account>> read = registry.GetAccount(AccountSpace::kGuest, "g-old");
  ASSERT_TRUE(read.ok() && read->has_value());
  EXPECT_EQ((*read)->guest().username(), guest.guest().username());
  const std::vector<PlannedReminder> reminders =
      *registry.RemindersOf(AccountSpace::kGuest, "g-old");
  ASSERT_THAT(reminders, SizeIs(1));
  EXPECT_EQ(ToTime(reminders[0].due_time()), kNow + 7 * kDay);
  EXPECT_EQ(**registry.NextDueTime(), kNow + 7 * kDay);

  // Listing pages across the old rows (users without expiry last).
  v1::ListAccountsRequest paged;
  paged.mutable_page()->set_page_size(1);
  absl::StatusOr<v1::ListAccountsResponse> page = registry.ListAccounts(paged);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->page().total_size(), 2);
  ASSERT_EQ(page->accounts_size(), 1);
  EXPECT_EQ(page->accounts(0).guest().id(), "g-old");
  paged.mutable_page()->set_page_token(page->page().next_page_token());
  page = registry.ListAccounts(paged);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->accounts_size(), 1);
  EXPECT_EQ(page->accounts(0).user().id(), "u-old");
  EXPECT_TRUE(page->page().next_page_token().empty());

  // Changing an old account re-plans its old reminders; marks and deletes work.
  const AccountRegistry::UpsertResult moved =
      *registry.UpsertAccount(GuestAccount("g-old", kNow + 20 * kDay), kNow);
  EXPECT_FALSE(moved.created);
  EXPECT_EQ(moved.changes.canceled, 1);
  EXPECT_EQ(moved.changes.planned, 1);
  EXPECT_EQ(**registry.NextDueTime(), kNow + 17 * kDay);
  MR_ASSERT_OK(registry.MarkQueued((*registry.DuePlanned(kNow + 17 * kDay))[0].id(), "pan1/01X",
                                   kNow + 17 * kDay));
  absl::StatusOr<AccountRegistry::DeleteResult> deleted =
      registry.DeleteAccount(AccountSpace::kUser, "u-old", kNow);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->found);
}

}  // namespace
}  // namespace mailroom::pan
