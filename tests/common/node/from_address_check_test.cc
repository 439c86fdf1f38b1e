// FromAddressCheck with a fake broker answer: a refusal comes back naming the admin's field
// and the route, every purpose is asked, and a broker that cannot answer lets the save through
// with a warning naming the field (asked once, not once per purpose).
#include "common/node/from_address_check.h"

#include <memory>

#include "common/base/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/capturing_log_sink.h"
#include "tests/testing/fake_mail_route_resolver.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
using ::mailroom::testing::FakeMailRouteResolver;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

class FromAddressCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sink_ = std::make_shared<::mailroom::testing::CapturingLogSink>();
    Logging::SetSink(sink_);
    Logging::SetDefaultLevel(LogLevel::kInfo);
    routes_.Route(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS,
                  {"guests@example.test", "noreply@example.test"}, {"lobby@example.test"});
    routes_.Route(cv1::MAIL_PURPOSE_SPONSOR_MAIL, {"sponsors@example.test"},
                  {"sponsors@example.test"});
  }
  void TearDown() override { Logging::Reset(); }

  std::shared_ptr<::mailroom::testing::CapturingLogSink> sink_;
  FakeMailRouteResolver routes_;
};

TEST_F(FromAddressCheckTest, AFromTheRouteMaySendAsPasses) {
  EXPECT_TRUE(FromAddressCheck(&routes_)
                  .Check("settings.default_from", "lobby@example.test",
                         {cv1::MAIL_PURPOSE_GUEST_CREDENTIALS})
                  .ok());
  EXPECT_THAT(routes_.calls(), SizeIs(1));
}

TEST_F(FromAddressCheckTest, ARefusalNamesTheFieldTheFromAndTheRoute) {
  const absl::Status status = FromAddressCheck(&routes_).Check(
      "settings.default_from", "x@fabrikam.test", {cv1::MAIL_PURPOSE_GUEST_CREDENTIALS});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("settings.default_from: \"x@fabrikam.test\" is not an address"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("guest credentials (guests@example.test, noreply@example.test)"));
}

TEST_F(FromAddressCheckTest, EveryPurposeIsAskedAndTheFirstRefusalWins) {
  const absl::Status status = FromAddressCheck(&routes_).Check(
      "settings.default_from", "lobby@example.test",
      {cv1::MAIL_PURPOSE_GUEST_CREDENTIALS, cv1::MAIL_PURPOSE_SPONSOR_MAIL,
       cv1::MAIL_PURPOSE_TEST_MAIL});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("sponsor mail (sponsors@example.test)"));
  EXPECT_THAT(routes_.calls(), SizeIs(2));  // test mail is not asked after the refusal
}

TEST_F(FromAddressCheckTest, AnEmptyFromOrNoResolverAsksNothing) {
  EXPECT_TRUE(FromAddressCheck(&routes_)
                  .Check("settings.from", "", {cv1::MAIL_PURPOSE_REMINDERS})
                  .ok());
  EXPECT_THAT(routes_.calls(), IsEmpty());
  EXPECT_TRUE(FromAddressCheck(nullptr)
                  .Check("settings.from", "x@fabrikam.test", {cv1::MAIL_PURPOSE_REMINDERS})
                  .ok());
}

TEST_F(FromAddressCheckTest, ABrokerThatCannotAnswerLetsTheSaveThroughWithAWarning) {
  for (const absl::Status& unanswered :
       {absl::UnavailableError("no broker leads"),
        absl::UnimplementedError("unknown method ResolveMailRoute")}) {
    routes_.SetUnanswered(unanswered);
    const size_t asked = routes_.calls().size();
    EXPECT_TRUE(FromAddressCheck(&routes_)
                    .Check("settings.default_from", "x@fabrikam.test",
                           {cv1::MAIL_PURPOSE_GUEST_CREDENTIALS, cv1::MAIL_PURPOSE_SPONSOR_MAIL})
                    .ok());
    // Once: a second purpose would only wait for the same absent broker again.
    EXPECT_EQ(routes_.calls().size(), asked + 1);
    EXPECT_THAT(sink_->Text(), HasSubstr("settings.default_from \"x@fabrikam.test\" saved "
                                         "without checking it"));
    EXPECT_THAT(sink_->Text(), HasSubstr(std::string(unanswered.message())));
  }
}

TEST_F(FromAddressCheckTest, ARefusalWordedOtherwiseStillNamesTheField) {
  class Refusing : public MailRouteResolver {
    absl::StatusOr<mailroom::broker::v1::ResolveMailRouteResponse> ResolveMailRoute(
        MailPurpose, const std::string&) override {
      return absl::InvalidArgumentError("purpose: not a known purpose");
    }
  } refusing;
  const absl::Status status = FromAddressCheck(&refusing).Check(
      "settings.sender", "alarms@example.test", {cv1::MAIL_PURPOSE_ALARMS});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "settings.sender: \"alarms@example.test\" is refused by the broker for alarms: "
            "purpose: not a known purpose");
}

}  // namespace
}  // namespace mailroom
