// The registry against real SQLite files under TEST_TMPDIR: accounts and their reminders are
// written together and survive a reopen; one process per file; settings with etags; listing
// with filters, ordering and page tokens; due groups; purge.
#include "pan/account_registry.h"

#include <sys/stat.h>

#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pan/reminder_settings.h"
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

}  // namespace
}  // namespace mailroom::pan
