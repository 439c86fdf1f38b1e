// The MnT's per-type knowledge: names, slugs, default severities and guidance.
#include "mnt/alarm_types.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

TEST(AlarmTypesTest, SlugsAndDefaultDedupKeys) {
  EXPECT_EQ(AlarmTypeSlug(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY), "client-secret-expiry");
  EXPECT_EQ(DefaultDedupKey(mv1::ALARM_TYPE_NODE_DOWN, "psn-2"), "node-down/psn-2");
  EXPECT_EQ(SeverityName(mv1::ALARM_SEVERITY_CRITICAL), "CRITICAL");
}

TEST(AlarmTypesTest, DefaultSeverities) {
  const cv1::Diagnosis none;
  EXPECT_EQ(DefaultSeverity(mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED, none),
            mv1::ALARM_SEVERITY_CRITICAL);
  EXPECT_EQ(DefaultSeverity(mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED, none),
            mv1::ALARM_SEVERITY_CRITICAL);
  EXPECT_EQ(DefaultSeverity(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY, none),
            mv1::ALARM_SEVERITY_WARNING);
  cv1::Diagnosis expired;
  expired.set_cause(cv1::FAILURE_CAUSE_CLIENT_SECRET_EXPIRED);
  EXPECT_EQ(DefaultSeverity(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY, expired),
            mv1::ALARM_SEVERITY_CRITICAL);
  EXPECT_EQ(DefaultSeverity(mv1::ALARM_TYPE_DELIVERY_FAILED, none), mv1::ALARM_SEVERITY_WARNING);
}

TEST(AlarmTypesTest, EveryTypeHasATitleAndAllButGenericHaveGuidance) {
  for (int t = mv1::AlarmType_MIN + 1; t <= mv1::AlarmType_MAX; ++t) {
    const auto type = static_cast<mv1::AlarmType>(t);
    SCOPED_TRACE(mv1::AlarmType_Name(type));
    EXPECT_FALSE(AlarmTypeTitle(type).empty());
    EXPECT_EQ(AlarmTypeGuidance(type).empty(), type == mv1::ALARM_TYPE_GENERIC);
  }
  EXPECT_THAT(std::string(AlarmTypeGuidance(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY)),
              ::testing::HasSubstr("Entra ID"));
}

TEST(AlarmTypesTest, MailPathAlarms) {
  EXPECT_TRUE(IsMailPathAlarm(mv1::ALARM_TYPE_DELIVERY_FAILED));
  EXPECT_TRUE(IsMailPathAlarm(mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED));
  EXPECT_FALSE(IsMailPathAlarm(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY));
  EXPECT_FALSE(IsMailPathAlarm(mv1::ALARM_TYPE_GENERIC));
}

}  // namespace
}  // namespace mailroom::mnt
