#include "cli/proto_words.h"

#include "gtest/gtest.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom::cli {
namespace {

namespace cv1 = ::mailroom::common::v1;

TEST(ProtoWords, TimestampsAreUtcAndUnsetIsADash) {
  google::protobuf::Timestamp t;
  EXPECT_EQ(FormatTimestamp(t, "%Y-%m-%d"), "-");
  t.set_seconds(1777629600);  // 2026-05-01T10:00:00Z
  t.set_nanos(999999999);
  EXPECT_EQ(FormatTimestamp(t, "%Y-%m-%d %H:%M:%S UTC"), "2026-05-01 10:00:00 UTC");
}

TEST(ProtoWords, EnumWordsInAnySpelling) {
  EXPECT_EQ(EnumConstant("sent", "NOTIFICATION_STATE_"), "NOTIFICATION_STATE_SENT");
  EXPECT_EQ(EnumConstant("client-secret-expiry", "X_"), "X_CLIENT_SECRET_EXPIRY");
  EXPECT_EQ(EnumConstant("NOTIFICATION_STATE_SENT", "NOTIFICATION_STATE_"),
            "NOTIFICATION_STATE_SENT");
  EXPECT_EQ(ParseEnumWord<cv1::NotificationState>("Failed", "NOTIFICATION_STATE_",
                                                  cv1::NotificationState_Parse),
            cv1::NOTIFICATION_STATE_FAILED);
  // Nobody means UNSPECIFIED, and an unknown word is no value.
  EXPECT_FALSE(ParseEnumWord<cv1::NotificationState>("unspecified", "NOTIFICATION_STATE_",
                                                     cv1::NotificationState_Parse)
                   .has_value());
  EXPECT_FALSE(ParseEnumWord<cv1::NotificationState>("lost", "NOTIFICATION_STATE_",
                                                     cv1::NotificationState_Parse)
                   .has_value());
  EXPECT_EQ(WithoutPrefix("NOTIFICATION_STATE_SENT", "NOTIFICATION_STATE_"), "SENT");
}

TEST(ProtoWords, AddressesShowTheirDisplayName) {
  cv1::EmailAddress address;
  address.set_address("guest@example.test");
  EXPECT_EQ(FormatAddress(address), "guest@example.test");
  address.set_display_name("林美玲");
  EXPECT_EQ(FormatAddress(address), "林美玲 <guest@example.test>");
}

}  // namespace
}  // namespace mailroom::cli
