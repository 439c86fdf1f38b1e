// BacklogMonitor with a fake clock and captured alarms: QUEUE_BACKLOG is raised once per
// episode when either threshold is crossed (not at every check), cleared once the backlog is
// back under both, and a restarted node's first check clears a stale alarm.
#include "common/node/backlog_monitor.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/base/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/capturing_alarms.h"
#include "tests/testing/fake_clock.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::mailroom::testing::CapturingAlarms;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class BacklogMonitorTest : public ::testing::Test {
 protected:
  BacklogMonitorTest() : monitor_("psn1", {3, absl::Seconds(5)}, &clock_, &alarms_) {}

  // `count` unsent entries, the oldest queued `age` ago and waiting for `wait_reason`.
  UnsentSummary Unsent(int64_t count, absl::Duration age = absl::ZeroDuration(),
                       const std::string& wait_reason = "") const {
    UnsentSummary unsent;
    unsent.count = count;
    if (count == 0) return unsent;
    OutboxEntry oldest;
    oldest.mutable_notification()->set_id("psn1/01OLDEST");
    ToProto(clock_.Now() - age, oldest.mutable_notification()->mutable_create_time());
    oldest.set_wait_reason(wait_reason);
    unsent.oldest = oldest;
    return unsent;
  }

  FakeClock clock_;
  CapturingAlarms alarms_;
  BacklogMonitor monitor_;
};

TEST_F(BacklogMonitorTest, TheFirstCheckUnderTheThresholdsClearsAStaleAlarmOnce) {
  monitor_.Check(Unsent(0));
  monitor_.Check(Unsent(2, absl::Seconds(1)));
  monitor_.Check(Unsent(3, absl::Seconds(5)));  // at the thresholds is not over them
  EXPECT_THAT(alarms_.Events(), ElementsAre("clear queue-backlog"));
  ASSERT_EQ(alarms_.cleared.size(), 1u);
  EXPECT_EQ(alarms_.cleared[0].source_node(), "psn1");
  EXPECT_FALSE(monitor_.over());
}

TEST_F(BacklogMonitorTest, MoreThanTheQueuedThresholdRaisesOncePerEpisode) {
  monitor_.Check(Unsent(0));
  monitor_.Check(Unsent(4, absl::Seconds(1), "backoff after connection refused until 05:00:01Z"));
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(absl::Seconds(1));
    monitor_.Check(Unsent(5 + i, absl::Seconds(2 + i)));
  }
  EXPECT_TRUE(monitor_.over());
  monitor_.Check(Unsent(1, absl::Seconds(1)));
  monitor_.Check(Unsent(0));
  EXPECT_FALSE(monitor_.over());
  EXPECT_THAT(alarms_.Events(),
              ElementsAre("clear queue-backlog", "raise queue-backlog ALARM_SEVERITY_WARNING",
                          "clear queue-backlog"));

  // The next episode is a new raise.
  monitor_.Check(Unsent(9, absl::Seconds(1)));
  EXPECT_EQ(alarms_.raised.size(), 2u);
  EXPECT_NE(alarms_.raised[0].idempotency_key(), "");
}

TEST_F(BacklogMonitorTest, TheAlarmSaysHowManyHowOldWhyAndWhatToCheck) {
  monitor_.Check(Unsent(12, absl::Seconds(130),
                        "backoff after connection refused until 2027-01-15T08:00:02Z"));
  ASSERT_EQ(alarms_.raised.size(), 1u);
  const RaiseAlarmRequest& alarm = alarms_.raised[0];
  EXPECT_EQ(alarm.type(), mv1::ALARM_TYPE_QUEUE_BACKLOG);
  EXPECT_EQ(alarm.severity(), mv1::ALARM_SEVERITY_WARNING);
  EXPECT_EQ(alarm.source_node(), "psn1");
  EXPECT_EQ(alarm.dedup_key(), "queue-backlog");
  EXPECT_EQ(alarm.idempotency_key(),
            absl::StrCat("queue-backlog/", absl::ToUnixMillis(clock_.Now())));
  EXPECT_EQ(FromProto(alarm.occur_time()), clock_.Now());
  EXPECT_THAT(alarm.text(), HasSubstr("The outbox of psn1 holds 12 notification(s) not yet "
                                      "delivered (alarm above 3)"));
  EXPECT_THAT(alarm.text(), HasSubstr("the oldest was queued 2m10s ago (alarm above 5s)"));
  EXPECT_THAT(alarm.text(), HasSubstr("The oldest waits: backoff after connection refused"));
  EXPECT_THAT(alarm.text(), HasSubstr("mailroomctl status"));
  EXPECT_LE(alarm.text().size(), 4096u);
}

TEST_F(BacklogMonitorTest, AnOldEntryAloneIsABacklog) {
  UnsentSummary unsent = Unsent(1, absl::Seconds(4));
  *unsent.oldest->mutable_notification()->mutable_diagnosis() =
      MakeDiagnosis(cv1::FAILURE_CAUSE_CONNECTION_REFUSED, "connect to localhost:2525 refused");
  monitor_.Check(unsent);
  EXPECT_FALSE(monitor_.over());
  clock_.Advance(absl::Seconds(2));  // the same entry, now 6 s old
  monitor_.Check(unsent);
  EXPECT_TRUE(monitor_.over());
  ASSERT_EQ(alarms_.raised.size(), 1u);
  EXPECT_EQ(alarms_.raised[0].diagnosis().cause(), cv1::FAILURE_CAUSE_CONNECTION_REFUSED);
  EXPECT_THAT(alarms_.raised[0].text(),
              HasSubstr("its last attempt failed: Connection refused (connect to "
                        "localhost:2525 refused)"));
  EXPECT_THAT(alarms_.raised[0].text(), HasSubstr("holds 1 notification(s)"));
}

TEST_F(BacklogMonitorTest, AKnownCauseSpeaksWhenTheEntryDoesNot) {
  monitor_.Check(Unsent(50, absl::Seconds(1)), "the node has no usable access token: broker down");
  ASSERT_EQ(alarms_.raised.size(), 1u);
  EXPECT_THAT(alarms_.raised[0].text(),
              HasSubstr("The oldest waits: the node has no usable access token: broker down."));
  EXPECT_FALSE(alarms_.raised[0].has_diagnosis());

  BacklogMonitor quiet("psn2", {3, absl::Seconds(5)}, &clock_, &alarms_);
  quiet.Check(Unsent(50, absl::Seconds(1)));
  ASSERT_EQ(alarms_.raised.size(), 2u);
  EXPECT_THAT(alarms_.raised[1].text(), HasSubstr("No delivery error is known yet."));
}

TEST_F(BacklogMonitorTest, ARestartedNodeStillOverTheThresholdRaisesWithoutClearing) {
  monitor_.Check(Unsent(10, absl::Seconds(1)));
  BacklogMonitor restarted("psn1", {3, absl::Seconds(5)}, &clock_, &alarms_);
  restarted.Check(Unsent(10, absl::Seconds(2)));
  EXPECT_THAT(alarms_.Events(), ElementsAre("raise queue-backlog ALARM_SEVERITY_WARNING",
                                            "raise queue-backlog ALARM_SEVERITY_WARNING"));
}

TEST(BacklogThresholdsTest, ComeFromTheDeliveryConfigWithTheirDefaults) {
  mailroom::config::v1::DeliveryConfig delivery;
  BacklogThresholds thresholds = BacklogThresholds::FromConfig(delivery);
  EXPECT_EQ(thresholds.queued, 1000);
  EXPECT_EQ(thresholds.age, absl::Hours(1));
  delivery.set_backlog_alarm_queued(3);
  delivery.mutable_backlog_alarm_age()->set_seconds(5);
  thresholds = BacklogThresholds::FromConfig(delivery);
  EXPECT_EQ(thresholds.queued, 3);
  EXPECT_EQ(thresholds.age, absl::Seconds(5));
}

TEST(BacklogMonitorIntervalTest, AFifthOfTheAgeBetweenASecondAndAMinute) {
  FakeClock clock;
  CapturingAlarms alarms;
  EXPECT_EQ(BacklogMonitor("n", {1, absl::Hours(1)}, &clock, &alarms).CheckInterval(),
            absl::Minutes(1));
  EXPECT_EQ(BacklogMonitor("n", {1, absl::Seconds(100)}, &clock, &alarms).CheckInterval(),
            absl::Seconds(20));
  EXPECT_EQ(BacklogMonitor("n", {1, absl::Seconds(2)}, &clock, &alarms).CheckInterval(),
            absl::Seconds(1));
  EXPECT_THAT(alarms.Events(), IsEmpty());
}

TEST(WhyUnsentTest, TheWaitReasonComesBeforeTheLastFailure) {
  OutboxEntry entry;
  EXPECT_EQ(WhyUnsent(entry), "");
  *entry.mutable_notification()->mutable_diagnosis() =
      MakeDiagnosis(cv1::FAILURE_CAUSE_SMTP_TRANSIENT);
  EXPECT_THAT(WhyUnsent(entry), HasSubstr("its last attempt failed: "));
  entry.set_wait_reason("waiting for the token broker: connection refused");
  EXPECT_EQ(WhyUnsent(entry), "waiting for the token broker: connection refused");
}

}  // namespace
}  // namespace mailroom
