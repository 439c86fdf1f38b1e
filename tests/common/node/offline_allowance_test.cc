// Tests of OfflineAllowance: the grace, the sliding minute, the report and its limit.
#include "common/node/offline_allowance.h"

#include "common/base/proto_time.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace mailroom {
namespace {

class OfflineAllowanceTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  OfflineAllowance allowance_{&clock_, absl::Seconds(75), /*messages_per_minute=*/3,
                              absl::Seconds(2)};
};

TEST_F(OfflineAllowanceTest, NothingUntilTheGraceHasPassedSinceALeaderAnswered) {
  allowance_.NoteLeaderAnswered();
  clock_.Advance(absl::Seconds(74));
  EXPECT_EQ(allowance_.Take({1, 1}), 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(allowance_.Take({1, 1}), 2);
  allowance_.NoteLeaderAnswered();  // an answer starts the grace again
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(allowance_.Take({1}), 0);
}

TEST_F(OfflineAllowanceTest, AtMostTheLimitInAnyRollingMinute) {
  EXPECT_EQ(allowance_.Take({1, 1}), 2);
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(allowance_.Take({1, 1, 1}), 1);
  clock_.Advance(absl::Seconds(29));
  EXPECT_EQ(allowance_.Take({1}), 0);
  clock_.Advance(absl::Seconds(1));  // the first two leave the minute
  EXPECT_EQ(allowance_.Take({1, 1, 1}), 2);
}

TEST_F(OfflineAllowanceTest, ReportsEachSendWithItsAgeAndRecipientsUntilCounted) {
  ASSERT_EQ(allowance_.Take({4, 7}), 2);
  clock_.Advance(absl::Seconds(10));
  std::vector<broker::v1::OfflineSend> report = allowance_.Uncounted();
  ASSERT_EQ(report.size(), 2u);
  EXPECT_EQ(report[0].recipients(), 4);
  EXPECT_EQ(report[1].recipients(), 7);
  EXPECT_EQ(FromProto(report[0].sent_ago()), absl::Seconds(10));
  allowance_.Counted(1);
  report = allowance_.Uncounted();
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].recipients(), 7);
  allowance_.Counted(5);  // more than are left: all are counted
  EXPECT_TRUE(allowance_.Uncounted().empty());
}

// Sends count from when each reached the server, not from the Take: the last of a batch that
// took seconds to send leaves the window (and is reported) that much later.
TEST_F(OfflineAllowanceTest, EachSendCountsFromWhenItEnded) {
  ASSERT_EQ(allowance_.Take({1, 1, 1}), 3);
  clock_.Advance(absl::Seconds(1));
  allowance_.SendEnded();
  clock_.Advance(absl::Seconds(2));
  allowance_.SendEnded();
  clock_.Advance(absl::Seconds(3));
  allowance_.SendEnded();
  allowance_.SendEnded();  // more ends than sends: nothing moves
  clock_.Advance(absl::Seconds(4));
  std::vector<broker::v1::OfflineSend> report = allowance_.Uncounted();
  ASSERT_EQ(report.size(), 3u);
  EXPECT_EQ(FromProto(report[0].sent_ago()), absl::Seconds(9));
  EXPECT_EQ(FromProto(report[1].sent_ago()), absl::Seconds(7));
  EXPECT_EQ(FromProto(report[2].sent_ago()), absl::Seconds(4));
  // The window: the first leaves 60 s after it ended, the last 60 s after it ended.
  clock_.Advance(absl::Seconds(51));  // 60 s after the first ended
  EXPECT_EQ(allowance_.Take({1, 1, 1}), 1);
  clock_.Advance(absl::Seconds(5));  // 60 s after the last ended
  EXPECT_EQ(allowance_.Take({1, 1, 1}), 2);
}

TEST_F(OfflineAllowanceTest, AReportIsDueEveryIntervalWhileSendsAreUncounted) {
  EXPECT_FALSE(allowance_.ReportDue());
  EXPECT_EQ(allowance_.NextReportTime(), absl::InfiniteFuture());
  ASSERT_EQ(allowance_.Take({1}), 1);
  EXPECT_TRUE(allowance_.ReportDue());
  EXPECT_FALSE(allowance_.ReportDue());
  EXPECT_EQ(allowance_.NextReportTime(), clock_.Now() + absl::Seconds(2));
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(allowance_.ReportDue());
  allowance_.Counted(1);
  clock_.Advance(absl::Seconds(2));
  EXPECT_FALSE(allowance_.ReportDue());
}

TEST(OfflineAllowanceLimitTest, KeepsTheNewestSendsTheBrokerWillTake) {
  FakeClock clock;
  OfflineAllowance allowance(&clock, absl::ZeroDuration(), /*messages_per_minute=*/1000,
                             absl::Seconds(2));
  std::vector<int> counts(kMaxOfflineSendsPerReport + 5, 1);
  counts.back() = 9;
  ASSERT_EQ(allowance.Take(counts), static_cast<int>(counts.size()));
  const std::vector<broker::v1::OfflineSend> report = allowance.Uncounted();
  ASSERT_EQ(report.size(), kMaxOfflineSendsPerReport);
  EXPECT_EQ(report.back().recipients(), 9);
}

TEST(OfflineAllowanceOffTest, ZeroMessagesAMinuteNeverSends) {
  FakeClock clock;
  OfflineAllowance allowance(&clock, absl::ZeroDuration(), 0, absl::Seconds(2));
  EXPECT_EQ(allowance.Take({1}), 0);
}

}  // namespace
}  // namespace mailroom
