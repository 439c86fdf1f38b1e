// The one field validator: each rule of common/base/text_checks.h, violations collected in
// order and each naming its field.
#include "common/base/text_checks.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

using ::testing::IsEmpty;
using ::testing::StartsWith;

// The message CheckText gives `value` under `rule` ("" when it passes).
std::string TextError(absl::string_view value, const TextRule& rule) {
  FieldErrors errors;
  const bool ok = CheckText(&errors, "f", value, rule);
  EXPECT_EQ(ok, errors.empty());
  return std::string(errors.ToStatus().message());
}

TEST(FieldErrorsTest, CollectsEveryViolationFirstOneFirst) {
  FieldErrors errors;
  EXPECT_TRUE(errors.ToStatus().ok());
  errors.Add("account.id", "is required");
  errors.Add("account.email.address", "empty local part");
  EXPECT_EQ(errors.size(), 2u);
  const absl::Status status = errors.ToStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "account.id: is required; account.email.address: empty local part");
  EXPECT_EQ(FieldError("page.page_token", "not ours").message(), "page.page_token: not ours");
}

TEST(CheckTextTest, RefusesLineBreaksControlsAndBadUtf8InOneLineFields) {
  EXPECT_THAT(TextError("王小明", Line(256)), IsEmpty());
  EXPECT_THAT(TextError("tab\tok", Line(256)), IsEmpty());
  FieldErrors errors;
  EXPECT_FALSE(CheckText(&errors, "guest.first_name", "a\r\nBcc: x", Line(256)));
  EXPECT_EQ(errors.ToStatus().message(), "guest.first_name: contains CR or LF (a line break)");
  EXPECT_EQ(TextError("a\nb", Line(256)), "f: contains CR or LF (a line break)");
  EXPECT_EQ(TextError("a\rb", Line(256)), "f: contains CR or LF (a line break)");
  // Unicode line and paragraph separators break lines too.
  EXPECT_EQ(TextError("a\xE2\x80\xA8" "b", Line(256)), "f: contains CR or LF (a line break)");
  EXPECT_EQ(TextError("a\xE2\x80\xA9" "b", Line(256)), "f: contains CR or LF (a line break)");
  EXPECT_EQ(TextError(std::string("a\0b", 3), Line(256)),
            "f: contains a control character (U+0000)");
  EXPECT_EQ(TextError("bell\x07", Line(256)), "f: contains a control character (U+0007)");
  EXPECT_EQ(TextError("del\x7F", Line(256)), "f: contains a control character (U+007f)");
  EXPECT_EQ(TextError("c1\xC2\x85", Line(256)), "f: contains a control character (U+0085)");
  EXPECT_EQ(TextError("bad \xC3\x28", Line(256)), "f: not valid UTF-8 (byte 4)");
  EXPECT_EQ(TextError("overlong \xC0\xAF", Line(256)), "f: not valid UTF-8 (byte 9)");
}

TEST(CheckTextTest, BodiesAllowLineBreaksButNotBareCrOrControls) {
  EXPECT_THAT(TextError("line 1\r\nline 2\n\tindented", Body(0)), IsEmpty());
  EXPECT_THAT(TextError("para\xE2\x80\xA9next", Body(0)), IsEmpty());
  EXPECT_EQ(TextError("over\rwrite", Body(0)), "f: contains CR not followed by LF");
  EXPECT_EQ(TextError("ends in CR\r", Body(0)), "f: contains CR not followed by LF");
  EXPECT_EQ(TextError(std::string("a\0", 2), Body(0)), "f: contains a control character (U+0000)");
  EXPECT_EQ(TextError("esc\x1B[2J", Body(0)), "f: contains a control character (U+001b)");
  EXPECT_EQ(TextError("caf\xC3", Body(0)), "f: not valid UTF-8 (byte 3)");
}

TEST(CheckTextTest, CharacterLimitsCountCodePointsByteLimitsCountBytes) {
  std::string chinese;
  for (int i = 0; i < 256; ++i) chinese += "王";  // 768 bytes, 256 characters
  EXPECT_THAT(TextError(chinese, Line(256)), IsEmpty());
  EXPECT_EQ(TextError(chinese + "王", Line(256)), "f: exceeds 256 characters");
  EXPECT_EQ(TextError(chinese, LineBytes(767)), "f: exceeds 767 bytes");
  EXPECT_THAT(TextError(chinese, LineBytes(768)), IsEmpty());
  EXPECT_EQ(TextError(std::string(256 * 1024 + 1, 'x'), Body(256 * 1024)),
            "f: exceeds 262144 bytes");
  EXPECT_THAT(TextError(std::string(256 * 1024, 'x'), Body(256 * 1024)), IsEmpty());
  // The byte limit comes before the content checks: a huge value is not scanned.
  EXPECT_EQ(TextError(std::string(5000, '\n'), LineBytes(4096)), "f: exceeds 4096 bytes");
}

TEST(CheckTextTest, RequiredMeansNotEmpty) {
  FieldErrors errors;
  EXPECT_FALSE(CheckText(&errors, "guest.username", "", Line(256, /*required=*/true)));
  EXPECT_EQ(errors.ToStatus().message(), "guest.username: is required");
  EXPECT_THAT(TextError("", Line(256)), IsEmpty());
  EXPECT_THAT(TextError("", Body(0)), IsEmpty());
}

TEST(CheckPrintableAsciiTest, IdempotencyKeysAndCodes) {
  FieldErrors errors;
  EXPECT_TRUE(CheckIdempotencyKey(&errors, "idempotency_key", "3f1c-9a7e"));
  EXPECT_TRUE(CheckIdempotencyKey(&errors, "idempotency_key", std::string(128, 'k')));
  EXPECT_TRUE(errors.empty());
  EXPECT_FALSE(CheckIdempotencyKey(&errors, "idempotency_key", ""));
  EXPECT_FALSE(CheckIdempotencyKey(&errors, "idempotency_key", "a b"));
  EXPECT_FALSE(CheckIdempotencyKey(&errors, "idempotency_key", std::string(129, 'k')));
  EXPECT_FALSE(CheckIdempotencyKey(&errors, "idempotency_key", "key\x01"));
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_THAT(errors.violations()[0].second, StartsWith("is required"));
  EXPECT_EQ(errors.violations()[1].second, "must be printable ASCII without spaces");
  EXPECT_EQ(errors.violations()[2].second, "exceeds 128 characters");
  EXPECT_EQ(errors.violations()[3].second, "must be printable ASCII without spaces");
  FieldErrors codes;
  EXPECT_TRUE(CheckPrintableAscii(&codes, "codes[0]", "", 64, /*required=*/false));
  EXPECT_FALSE(CheckPrintableAscii(&codes, "codes[1]", "", 64, /*required=*/true));
  EXPECT_EQ(codes.ToStatus().message(), "codes[1]: is required");
}

// PSN, PAN and MnT take notification ids by these two checks (they had three rules before:
// PSN and PAN let a non-ASCII or spaced id through to the lookup).
TEST(CheckNotificationIdTest, IdentifiersByIdOrByKeyNeverBoth) {
  FieldErrors ok;
  EXPECT_TRUE(CheckNotificationId(&ok, "notification_id", "01JDX3K8V2M5Q7R9T0W4Y6Z8AB", true));
  EXPECT_TRUE(CheckNotificationId(&ok, "notification_id", std::string(256, 'n'), true));
  EXPECT_TRUE(CheckNotificationLookup(&ok, "01JDX3K8V2M5Q7R9T0W4Y6Z8AB", ""));
  EXPECT_TRUE(CheckNotificationLookup(&ok, "", "3f1c-9a7e"));
  EXPECT_TRUE(ok.empty()) << ok.ToStatus();

  FieldErrors bad;
  EXPECT_FALSE(CheckNotificationId(&bad, "notification_id", "", /*required=*/true));
  EXPECT_FALSE(CheckNotificationId(&bad, "notification_id", std::string(257, 'n'), true));
  EXPECT_FALSE(CheckNotificationId(&bad, "notification_id", "caf\xc3\xa9", true));
  EXPECT_FALSE(CheckNotificationLookup(&bad, "", ""));
  EXPECT_FALSE(CheckNotificationLookup(&bad, "01JDX", "k"));
  EXPECT_FALSE(CheckNotificationLookup(&bad, "a b", ""));
  EXPECT_FALSE(CheckNotificationLookup(&bad, "", "k\x01"));
  EXPECT_EQ(bad.ToStatus().message(),
            "notification_id: is required; notification_id: exceeds 256 characters; "
            "notification_id: must be printable ASCII without spaces; "
            "notification_id: exactly one of notification_id and idempotency_key is required; "
            "notification_id: exactly one of notification_id and idempotency_key is required; "
            "notification_id: must be printable ASCII without spaces; "
            "idempotency_key: must be printable ASCII without spaces");
}

TEST(CheckLanguageTest, AcceptsBcp47ShapedTags) {
  for (const char* tag : {"", "en", "zh-TW", "zh-Hant-TW", "es-419"}) {
    FieldErrors errors;
    EXPECT_TRUE(CheckLanguage(&errors, "language", tag)) << tag;
  }
  for (const char* tag : {"e n", "zh_TW", "-en", "en-", "1en", "toolongtag", "zh\r\n"}) {
    FieldErrors errors;
    EXPECT_FALSE(CheckLanguage(&errors, "language", tag)) << tag;
    EXPECT_THAT(std::string(errors.ToStatus().message()), StartsWith("language: ")) << tag;
  }
  EXPECT_EQ(NormalizeLanguage("zh-Hant-TW"), "zh-hant-tw");
}

TEST(CheckTimestampTest, RangeAndPresence) {
  google::protobuf::Timestamp t;
  t.set_seconds(1'800'000'000);
  FieldErrors errors;
  EXPECT_TRUE(CheckTimestamp(&errors, "guest.valid_from", &t, /*required=*/true));
  EXPECT_TRUE(CheckTimestamp(&errors, "guest.valid_from", nullptr, /*required=*/false));
  EXPECT_TRUE(errors.empty());
  EXPECT_FALSE(CheckTimestamp(&errors, "guest.valid_from", nullptr, /*required=*/true));
  EXPECT_EQ(errors.ToStatus().message(), "guest.valid_from: is required");
  for (auto [seconds, nanos] : {std::pair<int64_t, int32_t>{kMinTimestampSeconds - 1, 0},
                                {kMaxTimestampSeconds + 1, 0},
                                {0, -1},
                                {0, 1'000'000'000}}) {
    t.set_seconds(seconds);
    t.set_nanos(nanos);
    FieldErrors range;
    EXPECT_FALSE(CheckTimestamp(&range, "occur_after", &t, /*required=*/false));
    EXPECT_EQ(range.ToStatus().message(),
              "occur_after: is not a valid timestamp (0001-01-01 .. 9999-12-31)");
  }
  for (int64_t seconds : {kMinTimestampSeconds, kMaxTimestampSeconds}) {
    t.set_seconds(seconds);
    t.set_nanos(999'999'999);
    FieldErrors range;
    EXPECT_TRUE(CheckTimestamp(&range, "occur_after", &t, /*required=*/false));
  }
}

TEST(CheckTimeZoneTest, IanaNamesOnly) {
  FieldErrors errors;
  EXPECT_TRUE(CheckTimeZone(&errors, "time_zone", ""));
  EXPECT_TRUE(CheckTimeZone(&errors, "time_zone", "Asia/Taipei"));
  EXPECT_TRUE(errors.empty());
  for (const char* name : {"Mars/Olympus", "../../etc/passwd", "/etc/localtime", "UTC\n"}) {
    FieldErrors bad;
    EXPECT_FALSE(CheckTimeZone(&bad, "time_zone", name)) << name;
    EXPECT_THAT(std::string(bad.ToStatus().message()),
                StartsWith("time_zone: unknown IANA time zone \""))
        << name;
  }
  EXPECT_EQ(TimeZoneOrUtc("Asia/Taipei").name(), "Asia/Taipei");
  EXPECT_EQ(TimeZoneOrUtc("").name(), "UTC");
  EXPECT_EQ(TimeZoneOrUtc("../../etc/passwd").name(), "UTC");
}

}  // namespace
}  // namespace mailroom
