// The reminder logic end to end inside one process, on a FakeClock, with the real registry and
// the real outbox in SQLite files under TEST_TMPDIR: every reminder is queued exactly once —
// at its lead time, across restarts (registry and outbox reopened), a crash between the
// enqueue and the mark, clock jumps back and forward, re-upserts and concurrent callers;
// changing an expiry or the lead times re-plans; a lead time already passed fires once, the
// most urgent only; deleted and expired accounts get nothing; bad requests store nothing.
#include "pan/reminders.h"

#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/testing/fake_clock.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pan/reminder_mail.h"
#include "tests/pan/pan_fixtures.h"
#include "tests/testing/fake_mail_route_resolver.h"

namespace mailroom::pan {
namespace {

namespace cv1 = ::mailroom::common::v1;
using ::mailroom::pan::testing::FreshTestDir;
using ::mailroom::pan::testing::Guest;
using ::mailroom::pan::testing::SettingsWithLeads;
using ::mailroom::pan::testing::Ts;
using ::mailroom::pan::testing::User;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr absl::Duration kDay = absl::Hours(24);
using States = std::map<int64_t, ReminderState>;  // lead days → state

class RemindersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir();
    Logging::SetDefaultLevel(LogLevel::kOff);
    Open();
  }
  void TearDown() override {
    Close();
    Logging::Reset();
  }

  void Open() {
    absl::StatusOr<std::unique_ptr<AccountRegistry>> registry =
        AccountRegistry::Open(dir_ + "/pan.db");
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    ASSERT_TRUE(registry_->InitSettings(SettingsWithLeads({3, 1}, {14, 7, 1}), clock_.Now()).ok());
    OutboxOptions options;
    options.node_name = "pan1";
    options.random_unit = [] { return 0.5; };
    absl::StatusOr<std::unique_ptr<Outbox>> outbox =
        Outbox::Open(dir_ + "/outbox.db", &clock_, options);
    ASSERT_TRUE(outbox.ok()) << outbox.status();
    outbox_ = *std::move(outbox);
    RemindersOptions reminder_options;
    reminder_options.default_from = [this] { return mailbox_; };
    reminder_options.mail_routes = &mail_routes_;
    reminders_ =
        std::make_unique<Reminders>(registry_.get(), outbox_.get(), &clock_, reminder_options);
  }
  void Close() {
    reminders_.reset();
    outbox_.reset();
    registry_.reset();
  }
  // A process restart: everything reopened from the files.
  void Restart() {
    Close();
    Open();
  }

  v1::UpsertGuestAccountResponse UpsertGuest(const v1::GuestAccount& guest) {
    v1::UpsertGuestAccountRequest request;
    *request.mutable_account() = guest;
    absl::StatusOr<v1::UpsertGuestAccountResponse> response =
        reminders_->UpsertGuestAccount(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(v1::UpsertGuestAccountResponse());
  }
  v1::UpsertUserAccountResponse UpsertUser(const v1::UserAccount& user) {
    v1::UpsertUserAccountRequest request;
    *request.mutable_account() = user;
    absl::StatusOr<v1::UpsertUserAccountResponse> response = reminders_->UpsertUserAccount(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(v1::UpsertUserAccountResponse());
  }
  Reminders::DispatchReport Dispatch() {
    absl::StatusOr<Reminders::DispatchReport> report = reminders_->DispatchDue();
    EXPECT_TRUE(report.ok()) << report.status();
    return report.value_or(Reminders::DispatchReport());
  }

  // Every notification in the outbox, oldest first.
  std::vector<cv1::Notification> Queued() {
    cv1::ListOutboxRequest request;
    request.mutable_page()->set_page_size(1000);
    absl::StatusOr<cv1::ListOutboxResponse> listed = outbox_->List(request);
    EXPECT_TRUE(listed.ok()) << listed.status();
    std::vector<cv1::Notification> out;
    if (!listed.ok()) return out;
    for (const cv1::OutboxEntry& e : listed->entries()) out.insert(out.begin(), e.notification());
    return out;
  }
  int QueuedTo(const std::string& address) {
    int n = 0;
    for (const cv1::Notification& q : Queued()) n += q.recipients(0).address().address() == address;
    return n;
  }

  // The states of an account's reminders for `expire`, by lead time in days.
  States StatesOf(AccountSpace space, const std::string& id, absl::Time expire) {
    States out;
    absl::StatusOr<std::vector<PlannedReminder>> all = registry_->RemindersOf(space, id);
    EXPECT_TRUE(all.ok());
    for (const PlannedReminder& r : all.value_or(std::vector<PlannedReminder>{})) {
      if (ToTime(r.expire_time()) == expire) out[r.lead_time().seconds() / 86400] = r.state();
    }
    return out;
  }
  static States ResponseStates(const google::protobuf::RepeatedPtrField<PlannedReminder>& rs) {
    States out;
    for (const PlannedReminder& r : rs) out[r.lead_time().seconds() / 86400] = r.state();
    return out;
  }

  FakeClock clock_;
  std::string dir_;
  std::string mailbox_ = "mailbox@example.test";
  // No route of its own for any purpose until a test sets one: every From passes.
  ::mailroom::testing::FakeMailRouteResolver mail_routes_;
  std::unique_ptr<AccountRegistry> registry_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Reminders> reminders_;
};

const ReminderState kPlanned = v1::REMINDER_STATE_PLANNED;
const ReminderState kQueued = v1::REMINDER_STATE_QUEUED;
const ReminderState kSkipped = v1::REMINDER_STATE_SKIPPED;
const ReminderState kCanceled = v1::REMINDER_STATE_CANCELED;

TEST_F(RemindersTest, AGuestIsWarnedOnceAtEachLeadTime) {
  const absl::Time expire = clock_.Now() + 10 * kDay;
  const v1::UpsertGuestAccountResponse created = UpsertGuest(Guest("g1", expire));
  EXPECT_TRUE(created.created());
  EXPECT_EQ(ResponseStates(created.reminders()), (States{{1, kPlanned}, {3, kPlanned}}));
  EXPECT_EQ(**reminders_->NextDueTime(), expire - 3 * kDay);

  clock_.SetTime(expire - 3 * kDay - absl::Seconds(1));
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_THAT(Queued(), IsEmpty());

  clock_.SetTime(expire - 3 * kDay);
  EXPECT_EQ(Dispatch().queued, 1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Dispatch().queued, 0);
  ASSERT_THAT(Queued(), SizeIs(1));
  EXPECT_EQ(Queued()[0].kind(), cv1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING);
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", expire), (States{{1, kPlanned}, {3, kQueued}}));

  clock_.SetTime(expire - kDay + absl::Minutes(1));
  EXPECT_EQ(Dispatch().queued, 1);
  clock_.SetTime(expire + kDay);
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_EQ(QueuedTo("g1@example.test"), 2);
  EXPECT_FALSE(reminders_->NextDueTime()->has_value());

  // ListPlannedReminders shows what was sent, with its notification.
  v1::ListPlannedRemindersRequest list;
  list.add_states(v1::REMINDER_STATE_QUEUED);
  absl::StatusOr<v1::ListPlannedRemindersResponse> listed = reminders_->ListPlannedReminders(list);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->reminders_size(), 2);
  for (const PlannedReminder& r : listed->reminders()) {
    EXPECT_THAT(r.notification_id(), StartsWith("pan1/"));
    v1::GetNotificationStatusRequest status;
    status.set_notification_id(r.notification_id());
    absl::StatusOr<v1::GetNotificationStatusResponse> n = reminders_->GetNotificationStatus(status);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(n->notification().state(), cv1::NOTIFICATION_STATE_QUEUED);
    EXPECT_EQ(n->notification().idempotency_key(), ReminderIdempotencyKey(r.id()));
  }
}

TEST_F(RemindersTest, ALeadTimeAlreadyPassedAtCreationFiresOnceTheMostUrgentOnly) {
  // Expires in 2 days: the 3-day warning is due at once; the 1-day one is planned.
  const absl::Time expire = clock_.Now() + 2 * kDay;
  const v1::UpsertGuestAccountResponse r = UpsertGuest(Guest("g1", expire));
  EXPECT_EQ(ResponseStates(r.reminders()), (States{{1, kPlanned}, {3, kQueued}}));
  EXPECT_EQ(QueuedTo("g1@example.test"), 1);

  // Expires in 12 hours: both passed; only the 1-day warning goes out.
  const absl::Time soon = clock_.Now() + absl::Hours(12);
  const v1::UpsertGuestAccountResponse s = UpsertGuest(Guest("g2", soon));
  EXPECT_EQ(ResponseStates(s.reminders()), (States{{1, kQueued}, {3, kSkipped}}));
  EXPECT_EQ(QueuedTo("g2@example.test"), 1);
  for (const PlannedReminder& reminder : s.reminders()) {
    if (reminder.state() == kQueued) {
      EXPECT_FALSE(reminder.notification_id().empty());
    }
    EXPECT_EQ(ToTime(reminder.state_time()), clock_.Now());
  }
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_EQ(QueuedTo("g2@example.test"), 1);
}

TEST_F(RemindersTest, AnAlreadyExpiredAccountGetsNothing) {
  const absl::Time expired = clock_.Now() - absl::Minutes(1);
  const v1::UpsertGuestAccountResponse r = UpsertGuest(Guest("g1", expired));
  EXPECT_EQ(ResponseStates(r.reminders()), (States{{1, kSkipped}, {3, kSkipped}}));
  EXPECT_THAT(Queued(), IsEmpty());
}

TEST_F(RemindersTest, ARestartNeverSendsAgain) {
  const absl::Time expire = clock_.Now() + 2 * kDay;
  UpsertGuest(Guest("g1", expire));  // the 3-day warning is queued at once
  ASSERT_EQ(QueuedTo("g1@example.test"), 1);
  const std::string first_id = Queued()[0].id();

  Restart();
  EXPECT_EQ(*reminders_->Recover(), 0);
  EXPECT_EQ(Dispatch().queued, 0);
  UpsertGuest(Guest("g1", expire));  // the portal sends the same account again
  EXPECT_EQ(QueuedTo("g1@example.test"), 1);
  EXPECT_EQ(Queued()[0].id(), first_id);

  // The 1-day warning still comes, once, across another restart.
  clock_.SetTime(expire - kDay);
  Restart();
  EXPECT_EQ(Dispatch().queued, 1);
  Restart();
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_EQ(QueuedTo("g1@example.test"), 2);
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", expire), (States{{1, kQueued}, {3, kQueued}}));
}

TEST_F(RemindersTest, ACrashBetweenEnqueueAndMarkIsRecoveredWithoutASecondMail) {
  const absl::Time expire = clock_.Now() + 10 * kDay;
  UpsertGuest(Guest("g1", expire));
  UpsertGuest(Guest("g2", expire));
  clock_.SetTime(expire - 3 * kDay);
  // The process queued both reminders and died before marking them.
  for (const std::string id : {"g1", "g2"}) {
    std::vector<PlannedReminder> rs = *registry_->RemindersOf(AccountSpace::kGuest, id);
    const PlannedReminder& due = rs[0];
    ASSERT_EQ(due.lead_time().seconds(), 3 * 86400);
    absl::optional<Account> account = *registry_->GetAccount(AccountSpace::kGuest, id);
    absl::StatusOr<NewNotification> n =
        BuildReminderNotification(due, *account, *registry_->GetSettings(), clock_.Now(),
                                  outbox_->NewMessageId(), ReminderMailOptions());
    ASSERT_TRUE(n.ok()) << n.status();
    ASSERT_TRUE(outbox_->Enqueue(*n).ok());
  }
  Restart();
  // At start, Recover marks what the outbox already holds...
  EXPECT_EQ(*reminders_->Recover(), 2);
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", expire), (States{{1, kPlanned}, {3, kQueued}}));
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_THAT(Queued(), SizeIs(2));
  // ...and the dispatch path recognises such a notification by its key too.
  const absl::Time later = clock_.Now() + 10 * kDay;
  UpsertGuest(Guest("g3", later));
  clock_.SetTime(later - 3 * kDay);
  std::vector<PlannedReminder> rs = *registry_->RemindersOf(AccountSpace::kGuest, "g3");
  absl::StatusOr<NewNotification> n = BuildReminderNotification(
      rs[0], **registry_->GetAccount(AccountSpace::kGuest, "g3"), *registry_->GetSettings(),
      clock_.Now(), outbox_->NewMessageId(), ReminderMailOptions());
  ASSERT_TRUE(n.ok());
  const std::string queued_id = outbox_->Enqueue(*n)->notification_id;
  EXPECT_EQ(Dispatch().queued, 1);
  EXPECT_THAT(Queued(), SizeIs(3));
  EXPECT_EQ((*registry_->GetReminder(rs[0].id()))->notification_id(), queued_id);
}

TEST_F(RemindersTest, AClockJumpBackwardsNeverResends) {
  const absl::Time expire = clock_.Now() + 10 * kDay;
  UpsertGuest(Guest("g1", expire));
  clock_.SetTime(expire - 3 * kDay);
  EXPECT_EQ(Dispatch().queued, 1);
  clock_.Advance(-5 * kDay);  // NTP fixes a clock that ran ahead
  EXPECT_EQ(Dispatch().queued, 0);
  UpsertGuest(Guest("g1", expire));
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", expire), (States{{1, kPlanned}, {3, kQueued}}));
  clock_.Advance(5 * kDay);
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_EQ(QueuedTo("g1@example.test"), 1);
}

TEST_F(RemindersTest, AClockJumpForwardSendsWhatBecameDueOnce) {
  const absl::Time expire = clock_.Now() + 30 * kDay;
  UpsertUser(User("u1", expire));
  // Jump over the 14- and 7-day points: one reminder (7 days), the 14-day one skipped.
  clock_.SetTime(expire - 6 * kDay);
  const Reminders::DispatchReport report = Dispatch();
  EXPECT_EQ(report.queued, 1);
  EXPECT_EQ(report.skipped, 1);
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_EQ(StatesOf(AccountSpace::kUser, "u1", expire),
            (States{{1, kPlanned}, {7, kQueued}, {14, kSkipped}}));
  ASSERT_THAT(Queued(), SizeIs(1));
  EXPECT_EQ(Queued()[0].kind(), cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER);
  EXPECT_THAT(Queued()[0].subject(), HasSubstr("password"));
  // A jump past the expiry sends nothing more.
  clock_.SetTime(expire + absl::Seconds(1));
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_EQ(StatesOf(AccountSpace::kUser, "u1", expire),
            (States{{1, kSkipped}, {7, kQueued}, {14, kSkipped}}));
  EXPECT_EQ(QueuedTo("u1@example.test"), 1);
}

TEST_F(RemindersTest, ChangingTheExpiryReplansItsReminders) {
  const absl::Time old_expire = clock_.Now() + 10 * kDay;
  const absl::Time new_expire = clock_.Now() + 20 * kDay;
  UpsertGuest(Guest("g1", old_expire));
  const v1::UpsertGuestAccountResponse extended = UpsertGuest(Guest("g1", new_expire));
  EXPECT_FALSE(extended.created());
  EXPECT_EQ(ResponseStates(extended.reminders()), (States{{1, kPlanned}, {3, kPlanned}}));
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", old_expire),
            (States{{1, kCanceled}, {3, kCanceled}}));
  // The old due time passes silently; the new one warns.
  clock_.SetTime(old_expire - kDay);
  EXPECT_EQ(Dispatch().queued, 0);
  clock_.SetTime(new_expire - 3 * kDay);
  EXPECT_EQ(Dispatch().queued, 1);
  // Extended again after a warning went out: the new expiry gets its own warnings.
  const absl::Time third = new_expire + 10 * kDay;
  UpsertGuest(Guest("g1", third));
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", new_expire),
            (States{{1, kCanceled}, {3, kQueued}}));
  clock_.SetTime(third - 3 * kDay);
  EXPECT_EQ(Dispatch().queued, 1);
  EXPECT_EQ(QueuedTo("g1@example.test"), 2);
  // Shortened to within a day: the 1-day warning for the new expiry goes out at once.
  const v1::UpsertGuestAccountResponse shortened =
      UpsertGuest(Guest("g1", clock_.Now() + absl::Hours(20)));
  EXPECT_EQ(ResponseStates(shortened.reminders()), (States{{1, kQueued}, {3, kSkipped}}));
  EXPECT_EQ(QueuedTo("g1@example.test"), 3);
}

TEST_F(RemindersTest, ADeletedAccountGetsNothing) {
  const absl::Time expire = clock_.Now() + 10 * kDay;
  UpsertGuest(Guest("g1", expire));
  UpsertUser(User("u1", expire + 10 * kDay));  // its 14-day reminder is not due yet
  v1::DeleteGuestAccountRequest delete_guest;
  delete_guest.set_id("g1");
  absl::StatusOr<v1::DeleteGuestAccountResponse> deleted =
      reminders_->DeleteGuestAccount(delete_guest);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->found());
  EXPECT_EQ(deleted->canceled_reminders(), 2);
  v1::DeleteUserAccountRequest delete_user;
  delete_user.set_id("u1");
  EXPECT_EQ(reminders_->DeleteUserAccount(delete_user)->canceled_reminders(), 3);
  EXPECT_FALSE(reminders_->DeleteUserAccount(delete_user)->found());
  for (int day = 0; day <= 21; ++day) {
    clock_.SetTime(expire - 10 * kDay + day * kDay);
    Restart();
    EXPECT_EQ(Dispatch().queued, 0);
  }
  EXPECT_THAT(Queued(), IsEmpty());
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", expire), (States{{1, kCanceled}, {3, kCanceled}}));
}

TEST_F(RemindersTest, NewLeadTimesReplanEveryAccount) {
  const absl::Time expire = clock_.Now() + 10 * kDay;
  UpsertGuest(Guest("g1", expire));
  UpsertGuest(Guest("g2", clock_.Now() + 5 * kDay));
  absl::StatusOr<v1::GetReminderSettingsResponse> current =
      reminders_->GetReminderSettings(v1::GetReminderSettingsRequest());
  ASSERT_TRUE(current.ok());
  v1::SetReminderSettingsRequest request;
  // 3 d removed, 7 d added: 7 d is already past for g2 (expires in 5 days) and fires now.
  *request.mutable_settings() = SettingsWithLeads({7, 1}, {14, 7, 1});
  request.set_etag(current->settings().etag());
  absl::StatusOr<v1::SetReminderSettingsResponse> saved = reminders_->SetReminderSettings(request);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->replanned_reminders(), 4);  // per guest: 3 d canceled, 7 d planned
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", expire),
            (States{{1, kPlanned}, {3, kCanceled}, {7, kPlanned}}));
  EXPECT_EQ(QueuedTo("g2@example.test"), 1);
  EXPECT_EQ(QueuedTo("g1@example.test"), 0);
  // A stale etag is refused and changes nothing.
  request.mutable_settings()->clear_guest_expiry_lead_times();
  absl::StatusOr<v1::SetReminderSettingsResponse> stale = reminders_->SetReminderSettings(request);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", expire)[7], kPlanned);
  // No guest lead times at all: every pending warning is canceled.
  request.clear_etag();
  saved = reminders_->SetReminderSettings(request);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(StatesOf(AccountSpace::kGuest, "g1", expire),
            (States{{1, kCanceled}, {3, kCanceled}, {7, kCanceled}}));
  clock_.SetTime(expire - absl::Hours(1));
  EXPECT_EQ(Dispatch().queued, 0);
}

TEST_F(RemindersTest, AFromNoReminderMailboxMaySendAsIsRefusedAndNotSaved) {
  mail_routes_.Route(::mailroom::common::v1::MAIL_PURPOSE_REMINDERS, {"reminders@example.test"},
                     {"it-reminders@example.test"});
  const std::string etag =
      reminders_->GetReminderSettings(v1::GetReminderSettingsRequest())->settings().etag();
  v1::SetReminderSettingsRequest request;
  *request.mutable_settings() = SettingsWithLeads({7, 1}, {14});
  request.mutable_settings()->mutable_from()->set_address("x@fabrikam.test");
  absl::StatusOr<v1::SetReminderSettingsResponse> saved = reminders_->SetReminderSettings(request);
  EXPECT_EQ(saved.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(saved.status().message()),
              StartsWith("settings.from: \"x@fabrikam.test\" is not an address that any of the "
                         "mailboxes carrying reminders (reminders@example.test)"));
  EXPECT_EQ(reminders_->GetReminderSettings(v1::GetReminderSettingsRequest())->settings().etag(),
            etag);

  request.mutable_settings()->mutable_from()->set_address("it-reminders@example.test");
  saved = reminders_->SetReminderSettings(request);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->settings().from().address(), "it-reminders@example.test");
}

TEST_F(RemindersTest, AFromIsSavedUncheckedWhileTheBrokerCannotAnswer) {
  mail_routes_.Route(::mailroom::common::v1::MAIL_PURPOSE_REMINDERS, {"reminders@example.test"},
                     {"it-reminders@example.test"});
  mail_routes_.SetUnanswered(absl::UnimplementedError("ResolveMailRoute"));
  v1::SetReminderSettingsRequest request;
  *request.mutable_settings() = SettingsWithLeads({7, 1}, {14});
  request.mutable_settings()->mutable_from()->set_address("x@fabrikam.test");
  absl::StatusOr<v1::SetReminderSettingsResponse> saved = reminders_->SetReminderSettings(request);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->settings().from().address(), "x@fabrikam.test");
}

TEST_F(RemindersTest, BadRequestsAreNamedAndStoreNothing) {
  v1::GuestAccount bad = Guest("g1", clock_.Now() + absl::Hours(1));
  bad.mutable_email()->set_address("g1@example.test\r\nBcc: x@example.test");
  v1::UpsertGuestAccountRequest request;
  *request.mutable_account() = bad;
  absl::StatusOr<v1::UpsertGuestAccountResponse> response = reminders_->UpsertGuestAccount(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(response.status().message()), StartsWith("account.email.address: "));
  bad = Guest("g1", clock_.Now() + absl::Hours(1));
  bad.set_last_name(std::string(300, 'x'));
  *request.mutable_account() = bad;
  EXPECT_THAT(std::string(reminders_->UpsertGuestAccount(request).status().message()),
              StartsWith("account.last_name: exceeds 256 characters"));
  v1::SetReminderSettingsRequest settings;
  *settings.mutable_settings() = SettingsWithLeads({1}, {});
  settings.mutable_settings()->mutable_guest_expiry_template()->set_subject("{{pasword}}");
  settings.mutable_settings()->mutable_guest_expiry_template()->set_text_body("x");
  EXPECT_THAT(std::string(reminders_->SetReminderSettings(settings).status().message()),
              StartsWith("settings.guest_expiry_template.subject: unknown variable"));

  EXPECT_EQ(reminders_->ListAccounts(v1::ListAccountsRequest())->accounts_size(), 0);
  EXPECT_EQ(reminders_->ListPlannedReminders(v1::ListPlannedRemindersRequest())->reminders_size(),
            0);
  EXPECT_THAT(Queued(), IsEmpty());
  EXPECT_EQ(reminders_->GetReminderSettings({})->settings().guest_expiry_lead_times_size(), 2);
}

TEST_F(RemindersTest, WithoutAnyFromAddressDueRemindersWaitAndThenGoOutOnce) {
  // Settings seeded without From (as a config may be), and the broker has not answered yet.
  v1::ReminderSettings no_from = SettingsWithLeads({3, 1}, {});
  no_from.clear_from();
  ASSERT_TRUE(registry_->SetSettings(no_from, "", clock_.Now()).ok());
  mailbox_ = "";
  const absl::Time expire = clock_.Now() + 2 * kDay;
  const v1::UpsertGuestAccountResponse r = UpsertGuest(Guest("g1", expire));
  EXPECT_EQ(ResponseStates(r.reminders()), (States{{1, kPlanned}, {3, kPlanned}}));
  EXPECT_EQ(Dispatch().waiting, 1);
  EXPECT_THAT(Queued(), IsEmpty());
  mailbox_ = "mailbox@example.test";  // the broker answered
  EXPECT_EQ(Dispatch().queued, 1);
  EXPECT_EQ(Dispatch().queued, 0);
  ASSERT_THAT(Queued(), SizeIs(1));
  EXPECT_EQ(Queued()[0].from().address(), "mailbox@example.test");
}

TEST_F(RemindersTest, AUserWithoutPasswordExpiryGetsNoReminders) {
  const v1::UpsertUserAccountResponse none = UpsertUser(User("u1", absl::InfinitePast()));
  EXPECT_THAT(none.reminders(), IsEmpty());
  const absl::Time expire = clock_.Now() + 20 * kDay;
  EXPECT_EQ(ResponseStates(UpsertUser(User("u1", expire)).reminders()),
            (States{{1, kPlanned}, {7, kPlanned}, {14, kPlanned}}));
  UpsertUser(User("u1", absl::InfinitePast()));  // the password now never expires
  clock_.SetTime(expire - absl::Hours(1));
  EXPECT_EQ(Dispatch().queued, 0);
  EXPECT_THAT(Queued(), IsEmpty());
}

TEST_F(RemindersTest, ConcurrentUpsertsAndScansQueueEachReminderOnce) {
  const absl::Time expire = clock_.Now() + 2 * kDay;  // the 3-day warning is due at once
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        UpsertGuest(Guest(absl::StrCat("g", i), expire));
        if (t % 2 == 0) Dispatch();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(QueuedTo(absl::StrCat("g", i, "@example.test")), 1);
}

TEST_F(RemindersTest, UnknownNotificationIsNotFound) {
  v1::GetNotificationStatusRequest request;
  request.set_notification_id("pan1/NOPE");
  EXPECT_EQ(reminders_->GetNotificationStatus(request).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(RemindersTest, PurgeForgetsOnlyLongExpiredFinalReminders) {
  UpsertGuest(Guest("g1", clock_.Now() + 2 * kDay));
  clock_.Advance(2 * kDay + 29 * kDay);
  EXPECT_EQ(*reminders_->Purge(), 0);
  clock_.Advance(2 * kDay);
  Dispatch();  // the 1-day one is skipped (past the expiry)
  EXPECT_EQ(*reminders_->Purge(), 2);
}

}  // namespace
}  // namespace mailroom::pan
