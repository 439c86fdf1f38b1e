// The field checks every PSN request goes through: each failure is INVALID_ARGUMENT naming
// the field.
#include "psn/field_checks.h"

#include "gtest/gtest.h"
#include "tests/psn/test_util.h"

namespace mailroom::psn {
namespace {

using ::mailroom::psn::testing::IsInvalidField;

TEST(CheckTextTest, RefusesLineBreaksControlsAndBadUtf8InOneLineFields) {
  EXPECT_TRUE(CheckText("f", "王小明", SingleLine(256)).ok());
  EXPECT_TRUE(CheckText("f", "tab\tok", SingleLine(256)).ok());
  EXPECT_TRUE(IsInvalidField(CheckText("guest.first_name", "a\r\nBcc: x", SingleLine(256)),
                             "guest.first_name"));
  EXPECT_TRUE(IsInvalidField(CheckText("f", "a\nb", SingleLine(256)), "f"));
  EXPECT_TRUE(IsInvalidField(CheckText("f", std::string("a\0b", 3), SingleLine(256)), "f"));
  EXPECT_TRUE(IsInvalidField(CheckText("f", "bell\x07", SingleLine(256)), "f"));
  EXPECT_TRUE(IsInvalidField(CheckText("f", "c1\xC2\x85", SingleLine(256)), "f"));
  EXPECT_TRUE(IsInvalidField(CheckText("f", "bad \xC3\x28", SingleLine(256)), "f"));
  EXPECT_TRUE(IsInvalidField(CheckText("f", "overlong \xC0\xAF", SingleLine(256)), "f"));
  EXPECT_NE(CheckText("f", "a\nb", SingleLine(256)).message().find("CR or LF"),
            std::string::npos);
}

TEST(CheckTextTest, MultiLineAllowsBreaksButNotNul) {
  EXPECT_TRUE(CheckText("f", "line 1\r\nline 2\n", MultiLine(0)).ok());
  EXPECT_TRUE(IsInvalidField(CheckText("f", std::string("a\0", 2), MultiLine(0)), "f"));
}

TEST(CheckTextTest, CountsCharactersNotBytes) {
  std::string chinese;
  for (int i = 0; i < 256; ++i) chinese += "王";  // 768 bytes, 256 characters
  EXPECT_TRUE(CheckText("f", chinese, SingleLine(256)).ok());
  EXPECT_TRUE(IsInvalidField(CheckText("f", chinese + "王", SingleLine(256)), "f"));
  EXPECT_EQ(Utf8Length("王a"), 2u);
}

TEST(CheckTextTest, RequiredMeansNotEmpty) {
  EXPECT_TRUE(IsInvalidField(CheckText("guest.username", "", SingleLine(256, true)),
                             "guest.username"));
  EXPECT_TRUE(CheckText("f", "", SingleLine(256)).ok());
}

TEST(CheckEmailAddressTest, NamesTheAddressField) {
  common::v1::EmailAddress address;
  address.set_address("guest@example.test");
  address.set_display_name("王小明");
  EXPECT_TRUE(CheckEmailAddress("guest.email", address, true).ok());
  address.set_address("not-an-address");
  EXPECT_TRUE(IsInvalidField(CheckEmailAddress("guests[2].email", address, true),
                             "guests[2].email.address"));
  address.set_address("a@example.test\r\nBcc: evil@example.test");
  EXPECT_TRUE(IsInvalidField(CheckEmailAddress("guest.email", address, true),
                             "guest.email.address"));
  address.set_address("a@example.test");
  address.set_display_name("x\ny");
  EXPECT_TRUE(IsInvalidField(CheckEmailAddress("guest.email", address, true),
                             "guest.email.display_name"));
  EXPECT_TRUE(IsInvalidField(CheckEmailAddress("to", common::v1::EmailAddress(), true),
                             "to.address"));
  EXPECT_TRUE(CheckEmailAddress("to", common::v1::EmailAddress(), false).ok());
}

TEST(CheckIdempotencyKeyTest, RequiresPrintableAsciiUpTo128) {
  EXPECT_TRUE(CheckIdempotencyKey("idempotency_key", "3f1c-9a7e").ok());
  EXPECT_TRUE(IsInvalidField(CheckIdempotencyKey("idempotency_key", ""), "idempotency_key"));
  EXPECT_TRUE(IsInvalidField(CheckIdempotencyKey("idempotency_key", "a b"), "idempotency_key"));
  EXPECT_TRUE(IsInvalidField(CheckIdempotencyKey("idempotency_key", std::string(129, 'k')),
                             "idempotency_key"));
  EXPECT_TRUE(CheckIdempotencyKey("idempotency_key", std::string(128, 'k')).ok());
}

TEST(CheckLanguageTest, AcceptsBcp47ShapedTags) {
  for (const char* tag : {"", "en", "zh-TW", "zh-Hant-TW", "es-419"}) {
    EXPECT_TRUE(CheckLanguage("language", tag).ok()) << tag;
  }
  for (const char* tag : {"e n", "zh_TW", "-en", "en-", "1en", "toolongtag", "zh\r\n"}) {
    EXPECT_TRUE(IsInvalidField(CheckLanguage("language", tag), "language")) << tag;
  }
}

TEST(CheckTimestampTest, RangeAndPresence) {
  google::protobuf::Timestamp t;
  t.set_seconds(1'800'000'000);
  EXPECT_TRUE(CheckTimestamp("guest.valid_from", true, t, true).ok());
  EXPECT_TRUE(IsInvalidField(CheckTimestamp("guest.valid_from", false, t, true),
                             "guest.valid_from"));
  EXPECT_TRUE(CheckTimestamp("guest.valid_from", false, t, false).ok());
  t.set_nanos(-1);
  EXPECT_TRUE(IsInvalidField(CheckTimestamp("guest.valid_from", true, t, true),
                             "guest.valid_from"));
}

}  // namespace
}  // namespace mailroom::psn
