// The planning rules on their own: stable reminder ids, re-planning after expiry, lead-time
// and address changes (final states never move), and which due reminders are sent or
// skipped (only the most urgent; nothing after the expiry; nothing covered by one already
// queued).
#include "pan/reminder_plan.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/pan/pan_fixtures.h"

namespace mailroom::pan {
namespace {

using ::mailroom::pan::testing::Ts;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);
constexpr absl::Duration kDay = absl::Hours(24);

AccountPlanInput GuestInput(absl::Time expire, std::vector<absl::Duration> leads) {
  AccountPlanInput input;
  input.space = AccountSpace::kGuest;
  input.account_id = "guest-1";
  input.account_kind = v1::ACCOUNT_KIND_GUEST;
  input.expire_time = Ts(expire);
  input.leads = std::move(leads);
  input.recipient.set_address("guest-1@example.test");
  return input;
}

// Applies `changes` to `rows` (by id), as the registry does.
std::vector<PlannedReminder> Apply(std::vector<PlannedReminder> rows, const PlanChanges& changes) {
  std::map<std::string, PlannedReminder> by_id;
  for (PlannedReminder& r : rows) by_id[r.id()] = std::move(r);
  for (const PlannedReminder& w : changes.writes) by_id[w.id()] = w;
  std::vector<PlannedReminder> out;
  for (auto& [id, r] : by_id) out.push_back(std::move(r));
  return out;
}

std::map<int64_t, ReminderState> StatesByLeadDays(const std::vector<PlannedReminder>& rows,
                                                  absl::Time expire) {
  std::map<int64_t, ReminderState> out;
  for (const PlannedReminder& r : rows) {
    if (ToTime(r.expire_time()) == expire) out[r.lead_time().seconds() / 86400] = r.state();
  }
  return out;
}

TEST(ReminderIdTest, IsStableAndNamesEveryPartOfTheIdentity) {
  const auto expire = Ts(kNow + 5 * kDay);
  const std::string id = ReminderId(AccountSpace::kGuest, "a", expire, 3 * kDay);
  EXPECT_EQ(id, ReminderId(AccountSpace::kGuest, "a", expire, 3 * kDay));
  EXPECT_THAT(id, ::testing::StartsWith("g-"));
  EXPECT_EQ(id.size(), 34u);
  EXPECT_NE(id, ReminderId(AccountSpace::kUser, "a", expire, 3 * kDay));
  EXPECT_NE(id, ReminderId(AccountSpace::kGuest, "b", expire, 3 * kDay));
  EXPECT_NE(id, ReminderId(AccountSpace::kGuest, "a", Ts(kNow + 6 * kDay), 3 * kDay));
  EXPECT_NE(id, ReminderId(AccountSpace::kGuest, "a", expire, 2 * kDay));
  // Length-prefixed: an id containing the separator cannot impersonate another tuple.
  EXPECT_NE(ReminderId(AccountSpace::kGuest, "a|1", expire, kDay),
            ReminderId(AccountSpace::kGuest, "a", expire, kDay));
  EXPECT_EQ(ReminderIdempotencyKey(id), "pan-reminder/" + id);
}

TEST(PlanRemindersTest, PlansOneReminderPerLeadTimeDueBeforeTheExpiry) {
  const absl::Time expire = kNow + 10 * kDay;
  const PlanChanges changes = PlanReminders(GuestInput(expire, {3 * kDay, kDay}), {}, kNow);
  EXPECT_EQ(changes.planned, 2);
  EXPECT_EQ(changes.canceled, 0);
  ASSERT_EQ(changes.writes.size(), 2u);
  for (const PlannedReminder& r : changes.writes) {
    EXPECT_EQ(r.state(), v1::REMINDER_STATE_PLANNED);
    EXPECT_EQ(r.kind(), v1::REMINDER_KIND_GUEST_EXPIRY);
    EXPECT_EQ(r.account_id(), "guest-1");
    EXPECT_EQ(r.recipient().address(), "guest-1@example.test");
    EXPECT_EQ(ToTime(r.due_time()), expire - absl::Seconds(r.lead_time().seconds()));
    EXPECT_FALSE(r.has_state_time());
  }
}

TEST(PlanRemindersTest, PlanningTheSameAccountAgainChangesNothing) {
  const auto input = GuestInput(kNow + 10 * kDay, {3 * kDay, kDay});
  const std::vector<PlannedReminder> rows = Apply({}, PlanReminders(input, {}, kNow));
  const PlanChanges again = PlanReminders(input, rows, kNow + kDay);
  EXPECT_THAT(again.writes, IsEmpty());
  EXPECT_EQ(again.planned + again.canceled, 0);
}

TEST(PlanRemindersTest, ANewExpiryCancelsTheOldPlanAndPlansAFreshOne) {
  const absl::Time old_expire = kNow + 10 * kDay;
  const absl::Time new_expire = kNow + 20 * kDay;
  std::vector<PlannedReminder> rows =
      Apply({}, PlanReminders(GuestInput(old_expire, {3 * kDay, kDay}), {}, kNow));
  const PlanChanges changes =
      PlanReminders(GuestInput(new_expire, {3 * kDay, kDay}), rows, kNow + kDay);
  EXPECT_EQ(changes.canceled, 2);
  EXPECT_EQ(changes.planned, 2);
  rows = Apply(rows, changes);
  EXPECT_THAT(StatesByLeadDays(rows, old_expire),
              (std::map<int64_t, ReminderState>{{1, v1::REMINDER_STATE_CANCELED},
                                                {3, v1::REMINDER_STATE_CANCELED}}));
  EXPECT_THAT(StatesByLeadDays(rows, new_expire),
              (std::map<int64_t, ReminderState>{{1, v1::REMINDER_STATE_PLANNED},
                                                {3, v1::REMINDER_STATE_PLANNED}}));
  for (const PlannedReminder& r : rows) {
    if (r.state() == v1::REMINDER_STATE_CANCELED) {
      EXPECT_EQ(ToTime(r.state_time()), kNow + kDay);
    }
  }
}

TEST(PlanRemindersTest, QueuedAndSkippedRemindersAreFinal) {
  const absl::Time expire = kNow + 10 * kDay;
  std::vector<PlannedReminder> rows =
      Apply({}, PlanReminders(GuestInput(expire, {3 * kDay, kDay}), {}, kNow));
  rows[0].set_state(v1::REMINDER_STATE_QUEUED);
  rows[0].set_notification_id("pan1/01");
  rows[1].set_state(v1::REMINDER_STATE_SKIPPED);
  // A new expiry, a new address, no lead times at all: nothing touches them.
  AccountPlanInput moved = GuestInput(expire + kDay, {});
  moved.recipient.set_address("new@example.test");
  EXPECT_THAT(PlanReminders(moved, rows, kNow).writes, IsEmpty());
  AccountPlanInput same = GuestInput(expire, {3 * kDay, kDay});
  same.recipient.set_address("new@example.test");
  EXPECT_THAT(PlanReminders(same, rows, kNow).writes, IsEmpty());
  EXPECT_THAT(CancelReminders(rows, kNow).writes, IsEmpty());
}

TEST(PlanRemindersTest, ACanceledReminderWantedAgainIsPlannedAgain) {
  const absl::Time expire = kNow + 10 * kDay;
  std::vector<PlannedReminder> rows =
      Apply({}, PlanReminders(GuestInput(expire, {3 * kDay}), {}, kNow));
  rows = Apply(rows, PlanReminders(GuestInput(expire + kDay, {3 * kDay}), rows, kNow));
  // Back to the first expiry: nothing was ever sent for it, so it is planned again.
  const PlanChanges back = PlanReminders(GuestInput(expire, {3 * kDay}), rows, kNow);
  EXPECT_EQ(back.planned, 1);
  EXPECT_EQ(back.canceled, 1);
  rows = Apply(rows, back);
  EXPECT_THAT(StatesByLeadDays(rows, expire),
              (std::map<int64_t, ReminderState>{{3, v1::REMINDER_STATE_PLANNED}}));
}

TEST(PlanRemindersTest, NoExpiryMeansNoRemindersAndCancelsPlannedOnes) {
  std::vector<PlannedReminder> rows =
      Apply({}, PlanReminders(GuestInput(kNow + 10 * kDay, {kDay}), {}, kNow));
  AccountPlanInput none = GuestInput(kNow, {kDay});
  none.expire_time.reset();
  EXPECT_THAT(PlanReminders(none, {}, kNow).writes, IsEmpty());
  const PlanChanges changes = PlanReminders(none, rows, kNow);
  EXPECT_EQ(changes.canceled, 1);
}

TEST(PlanRemindersTest, APlannedReminderFollowsTheAccountsAddress) {
  std::vector<PlannedReminder> rows =
      Apply({}, PlanReminders(GuestInput(kNow + 10 * kDay, {kDay}), {}, kNow));
  AccountPlanInput moved = GuestInput(kNow + 10 * kDay, {kDay});
  moved.recipient.set_address("moved@example.test");
  const PlanChanges changes = PlanReminders(moved, rows, kNow);
  ASSERT_EQ(changes.writes.size(), 1u);
  EXPECT_EQ(changes.writes[0].recipient().address(), "moved@example.test");
  EXPECT_EQ(changes.writes[0].state(), v1::REMINDER_STATE_PLANNED);
  EXPECT_EQ(changes.planned + changes.canceled, 0);
}

TEST(CancelRemindersTest, CancelsOnlyPlannedOnes) {
  std::vector<PlannedReminder> rows =
      Apply({}, PlanReminders(GuestInput(kNow + 10 * kDay, {3 * kDay, kDay}), {}, kNow));
  rows[0].set_state(v1::REMINDER_STATE_QUEUED);
  const PlanChanges changes = CancelReminders(rows, kNow);
  EXPECT_EQ(changes.canceled, 1);
  ASSERT_EQ(changes.writes.size(), 1u);
  EXPECT_EQ(changes.writes[0].id(), rows[1].id());
}

class DecideDueTest : public ::testing::Test {
 protected:
  // Reminders for an expiry at kNow + 10 days with leads 14, 7, 3 and 1 days.
  void SetUp() override {
    rows_ = Apply(
        {}, PlanReminders(GuestInput(expire_, {14 * kDay, 7 * kDay, 3 * kDay, kDay}), {}, kNow));
  }
  std::string IdOf(int lead_days) const {
    for (const PlannedReminder& r : rows_) {
      if (r.lead_time().seconds() == lead_days * 86400) return r.id();
    }
    return "";
  }
  void SetState(int lead_days, ReminderState state) {
    for (PlannedReminder& r : rows_) {
      if (r.lead_time().seconds() == lead_days * 86400) r.set_state(state);
    }
  }

  const absl::Time expire_ = kNow + 10 * kDay;
  std::vector<PlannedReminder> rows_;
};

TEST_F(DecideDueTest, NothingDueNothingDone) {
  SetState(14, v1::REMINDER_STATE_QUEUED);
  const DueDecision d = DecideDue(rows_, expire_ - 7 * kDay - absl::Seconds(1));
  EXPECT_TRUE(d.send_id.empty());
  EXPECT_THAT(d.skip_ids, IsEmpty());
}

TEST_F(DecideDueTest, OneDueIsSentAtItsDueTime) {
  SetState(14, v1::REMINDER_STATE_SKIPPED);
  const DueDecision d = DecideDue(rows_, expire_ - 7 * kDay);
  EXPECT_EQ(d.send_id, IdOf(7));
  EXPECT_THAT(d.skip_ids, IsEmpty());
}

TEST_F(DecideDueTest, SeveralDueSendOnlyTheMostUrgentAndSkipTheRest) {
  // Created (or the scheduler back, or the clock jumped) 2 days before the expiry.
  const DueDecision d = DecideDue(rows_, expire_ - 2 * kDay);
  EXPECT_EQ(d.send_id, IdOf(3));
  EXPECT_THAT(d.skip_ids, UnorderedElementsAre(IdOf(14), IdOf(7)));
}

TEST_F(DecideDueTest, NothingIsSentAtOrAfterTheExpiry) {
  const DueDecision at = DecideDue(rows_, expire_);
  EXPECT_TRUE(at.send_id.empty());
  EXPECT_EQ(at.skip_ids.size(), 4u);
  const DueDecision after = DecideDue(rows_, expire_ + 100 * kDay);
  EXPECT_TRUE(after.send_id.empty());
  EXPECT_EQ(after.skip_ids.size(), 4u);
}

TEST_F(DecideDueTest, DueRemindersCoveredByAMoreUrgentQueuedOneAreSkipped) {
  // The 3-day one went out; then a 14-day lead was re-added and is long past.
  SetState(3, v1::REMINDER_STATE_QUEUED);
  SetState(7, v1::REMINDER_STATE_CANCELED);
  const DueDecision d = DecideDue(rows_, expire_ - 2 * kDay);
  EXPECT_TRUE(d.send_id.empty());
  EXPECT_THAT(d.skip_ids, ElementsAre(IdOf(14)));
}

TEST_F(DecideDueTest, FinalStatesAreNeverDecidedAgain) {
  for (int days : {14, 7, 3, 1}) SetState(days, v1::REMINDER_STATE_QUEUED);
  const DueDecision d = DecideDue(rows_, expire_ - absl::Hours(1));
  EXPECT_TRUE(d.send_id.empty());
  EXPECT_THAT(d.skip_ids, IsEmpty());
}

}  // namespace
}  // namespace mailroom::pan
