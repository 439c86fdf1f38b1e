#include "common/base/logging.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/testing/fake_clock.h"
#include "common/base/redactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class CapturingSink : public LogSink {
 public:
  void Write(absl::string_view line) override {
    absl::MutexLock lock(&mu_);
    lines_.emplace_back(line);
  }
  std::vector<std::string> lines() {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_;
};

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Logging::Reset();
    Logging::SetSink(sink_);
    Logging::SetClock(&clock_);
  }
  void TearDown() override { Logging::Reset(); }

  std::shared_ptr<CapturingSink> sink_ = std::make_shared<CapturingSink>();
  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
};

TEST_F(LoggingTest, LineCarriesTimeLevelAndComponent) {
  MR_LOG(kInfo, kLogBroker) << "token refreshed in " << 42 << " ms";
  ASSERT_EQ(sink_->lines().size(), 1u);
  EXPECT_EQ(sink_->lines()[0], "2027-01-15T08:00:00.000Z INFO [broker] token refreshed in 42 ms");
}

TEST_F(LoggingTest, PerComponentLevels) {
  Logging::SetDefaultLevel(LogLevel::kWarn);
  Logging::SetComponentLevel(kLogPsn, LogLevel::kDebug);
  int evaluated = 0;
  auto count = [&] { return ++evaluated; };
  MR_LOG(kDebug, kLogPsn) << "shown " << count();
  MR_LOG(kDebug, kLogBroker) << "hidden " << count();
  MR_LOG(kInfo, kLogBroker) << "hidden " << count();
  MR_LOG(kWarn, kLogBroker) << "shown " << count();
  MR_LOG(kTrace, kLogPsn) << "hidden " << count();
  ASSERT_EQ(sink_->lines().size(), 2u);
  EXPECT_THAT(sink_->lines()[0], HasSubstr("DEBUG [guestaccess] shown"));
  EXPECT_THAT(sink_->lines()[1], HasSubstr("WARN [broker] shown"));
  // A disabled record does not even build its message.
  EXPECT_EQ(evaluated, 2);
}

TEST_F(LoggingTest, LevelsParseByName) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("WARNING"), LogLevel::kWarn);
  EXPECT_EQ(*ParseLogLevel("Trace"), LogLevel::kTrace);
  const absl::StatusOr<LogLevel> bad = ParseLogLevel("verbose");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("verbose"));
}

// The promise: a registered secret or a bearer token never reaches the output, at any level.
TEST_F(LoggingTest, NeverPrintsASecretOrBearerTokenAtAnyLevel) {
  const std::string secret = "Qm8~client.secret-VALUE_42";
  const std::string token = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJhcHAifQ.sig_nature";
  const std::string opaque_token = "opaqueAccessTokenValue123";
  Redactor::Global().AddSecret(secret);
  Logging::SetDefaultLevel(LogLevel::kTrace);
  for (LogLevel level : {LogLevel::kTrace, LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                         LogLevel::kError}) {
    Logging::Write(kLogToken, level, absl::StrCat("form client_id=app&client_secret=", secret));
    Logging::Write(kLogToken, level, absl::StrCat("the secret itself: ", secret));
    Logging::Write(kLogSmtp, level, absl::StrCat("> auth=Bearer ", opaque_token));
    Logging::Write(kLogSmtp, level, absl::StrCat("Authorization: Bearer ", token));
    Logging::Write(kLogToken, level, absl::StrCat(R"({"access_token":")", opaque_token, R"("})"));
    Logging::Write(kLogToken, level, absl::StrCat("jwt ", token));
    Logging::Write(secret, level, "even a component name is redacted");
  }
  const std::vector<std::string> lines = sink_->lines();
  ASSERT_EQ(lines.size(), 35u);
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    EXPECT_THAT(line, Not(HasSubstr(secret)));
    EXPECT_THAT(line, Not(HasSubstr("client.secret")));
    EXPECT_THAT(line, Not(HasSubstr(opaque_token)));
    EXPECT_THAT(line, Not(HasSubstr("eyJzdWIiOiJhcHAifQ")));
    EXPECT_THAT(line, HasSubstr("[REDACTED]"));
  }
  Redactor::Global().RemoveSecret(secret);
}

TEST_F(LoggingTest, OffSilencesAComponent) {
  Logging::SetComponentLevel(kLogRpc, LogLevel::kOff);
  MR_LOG(kError, kLogRpc) << "not shown";
  EXPECT_TRUE(sink_->lines().empty());
}

}  // namespace
}  // namespace mailroom
