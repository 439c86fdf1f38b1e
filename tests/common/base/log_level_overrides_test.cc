// LogLevelOverrides with the fake clock: an override for 30 minutes is in force until the
// clock passes its time, then the component is back at its configured level (or the default
// level); an override without a duration stays; unknown components and negative durations
// are refused naming the field; List shows every component with its override.
#include "common/base/log_level_overrides.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace mailroom {
namespace {

using ::testing::HasSubstr;

class LogLevelOverridesTest : public ::testing::Test {
 protected:
  void SetUp() override { Logging::Reset(); }
  void TearDown() override { Logging::Reset(); }

  // After the clock moved: waits until the expiry thread has seen the new time.
  void AwaitExpiryThread() { ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10))); }

  static ComponentLevelInfo InfoOf(const LogLevelOverrides& overrides,
                                   absl::string_view component) {
    for (const ComponentLevelInfo& info : overrides.List()) {
      if (info.component == component) return info;
    }
    ADD_FAILURE() << "not listed: " << component;
    return {};
  }

  FakeClock clock_;
};

TEST_F(LogLevelOverridesTest, AnOverrideForThirtyMinutesRevertsToTheConfiguredLevel) {
  Logging::SetComponentLevel(kLogPsn, LogLevel::kWarn);
  LogLevelOverrides overrides(&clock_);
  const absl::Time start = clock_.Now();
  ASSERT_TRUE(overrides.Set(kLogPsn, LogLevel::kDebug, absl::Minutes(30)).ok());
  EXPECT_TRUE(Logging::IsEnabled(kLogPsn, LogLevel::kDebug));
  ComponentLevelInfo info = InfoOf(overrides, kLogPsn);
  EXPECT_EQ(info.level, LogLevel::kDebug);
  EXPECT_EQ(info.configured, LogLevel::kWarn);
  EXPECT_TRUE(info.overridden);
  EXPECT_EQ(info.revert_time, start + absl::Minutes(30));

  clock_.Advance(absl::Minutes(29));
  ASSERT_NO_FATAL_FAILURE(AwaitExpiryThread());
  EXPECT_TRUE(Logging::IsEnabled(kLogPsn, LogLevel::kDebug));

  clock_.Advance(absl::Minutes(1));
  ASSERT_NO_FATAL_FAILURE(AwaitExpiryThread());
  EXPECT_FALSE(Logging::IsEnabled(kLogPsn, LogLevel::kDebug));
  EXPECT_FALSE(Logging::IsEnabled(kLogPsn, LogLevel::kInfo));
  EXPECT_TRUE(Logging::IsEnabled(kLogPsn, LogLevel::kWarn));
  info = InfoOf(overrides, kLogPsn);
  EXPECT_EQ(info.level, LogLevel::kWarn);
  EXPECT_FALSE(info.overridden);
  EXPECT_EQ(info.revert_time, absl::InfiniteFuture());
}

TEST_F(LogLevelOverridesTest, AComponentWithoutItsOwnLevelGoesBackToTheDefault) {
  LogLevelOverrides overrides(&clock_);
  ASSERT_TRUE(overrides.Set(kLogSmtp, LogLevel::kTrace, absl::Minutes(5)).ok());
  // A second override before the first ends keeps the level to go back to.
  ASSERT_TRUE(overrides.Set(kLogSmtp, LogLevel::kDebug, absl::Minutes(10)).ok());
  EXPECT_EQ(InfoOf(overrides, kLogSmtp).configured, LogLevel::kInfo);
  clock_.Advance(absl::Minutes(10));
  ASSERT_NO_FATAL_FAILURE(AwaitExpiryThread());
  EXPECT_EQ(Logging::ComponentLevel(kLogSmtp), absl::nullopt);
  Logging::SetDefaultLevel(LogLevel::kError);
  EXPECT_FALSE(Logging::IsEnabled(kLogSmtp, LogLevel::kWarn));
}

TEST_F(LogLevelOverridesTest, AnOverrideWithoutADurationStays) {
  LogLevelOverrides overrides(&clock_);
  ASSERT_TRUE(overrides.Set(kLogBroker, LogLevel::kError, absl::ZeroDuration()).ok());
  clock_.Advance(absl::Hours(24 * 365));
  ASSERT_NO_FATAL_FAILURE(AwaitExpiryThread());
  EXPECT_FALSE(Logging::IsEnabled(kLogBroker, LogLevel::kWarn));
  const ComponentLevelInfo info = InfoOf(overrides, kLogBroker);
  EXPECT_TRUE(info.overridden);
  EXPECT_EQ(info.revert_time, absl::InfiniteFuture());
}

TEST_F(LogLevelOverridesTest, BadInputIsRefusedNamingTheField) {
  LogLevelOverrides overrides(&clock_);
  const absl::Status unknown = overrides.Set("guest", LogLevel::kDebug, absl::Minutes(1));
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.message(), HasSubstr("component: unknown log component \"guest\""));
  EXPECT_THAT(unknown.message(), HasSubstr("guestaccess"));
  const absl::Status negative = overrides.Set(kLogPsn, LogLevel::kDebug, absl::Minutes(-1));
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(negative.message(), HasSubstr("duration: must not be negative"));
  EXPECT_FALSE(InfoOf(overrides, kLogPsn).overridden);
}

TEST_F(LogLevelOverridesTest, ListsEveryComponent) {
  LogLevelOverrides overrides(&clock_);
  const std::vector<ComponentLevelInfo> all = overrides.List();
  ASSERT_EQ(all.size(), LogComponents().size());
  EXPECT_EQ(all.front().component, kLogBroker);
  for (const ComponentLevelInfo& info : all) {
    EXPECT_EQ(info.level, LogLevel::kInfo) << info.component;
    EXPECT_FALSE(info.overridden) << info.component;
  }
}

}  // namespace
}  // namespace mailroom
