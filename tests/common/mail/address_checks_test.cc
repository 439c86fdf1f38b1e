// An EmailAddress message in a request: the address a valid mailbox, the display name one
// line; each violation names "<field>.address" or "<field>.display_name".
#include "common/mail/address_checks.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

std::string Errors(absl::string_view field, const cv1::EmailAddress& address, bool required) {
  FieldErrors errors;
  const bool ok = CheckEmailAddress(&errors, field, address, required);
  EXPECT_EQ(ok, errors.empty());
  return std::string(errors.ToStatus().message());
}

cv1::EmailAddress Address(const std::string& address, const std::string& name = "") {
  cv1::EmailAddress a;
  a.set_address(address);
  a.set_display_name(name);
  return a;
}

TEST(CheckEmailAddressTest, NamesTheAddressField) {
  EXPECT_THAT(Errors("guest.email", Address("guest@example.test", "王小明"), true), IsEmpty());
  EXPECT_THAT(Errors("x", Address("no-reply@例え.test"), true), IsEmpty());  // IDN domain
  EXPECT_THAT(Errors("guests[2].email", Address("not-an-address"), true),
              StartsWith("guests[2].email.address: "));
  // The field is named once, not twice.
  EXPECT_THAT(Errors("to", Address("x@y"), true), Not(StartsWith("to.address: to.address")));
  EXPECT_EQ(Errors("guest.email", Address("a@example.test\r\nBcc: evil@example.test"), true),
            "guest.email.address: contains CR or LF (a line break)");
  EXPECT_EQ(Errors("guest.email", Address("a@example.test\xC3"), true),
            "guest.email.address: not valid UTF-8 (byte 14)");
  EXPECT_EQ(Errors("guest.email", Address("a@example.test", "x\ny"), true),
            "guest.email.display_name: contains CR or LF (a line break)");
  EXPECT_EQ(Errors("guest.email", Address("a@example.test", std::string(257, 'n')), true),
            "guest.email.display_name: exceeds 256 characters");
}

TEST(CheckEmailAddressTest, RequiredAndOptional) {
  EXPECT_EQ(Errors("to", cv1::EmailAddress(), true), "to.address: is required");
  EXPECT_THAT(Errors("to", cv1::EmailAddress(), false), IsEmpty());
  EXPECT_EQ(Errors("from", Address("", "Network Access"), false),
            "from.address: is required with a display_name");
  // Both fields are checked.
  const std::string both = Errors("from", Address("bad", "a\nb"), true);
  EXPECT_THAT(both, StartsWith("from.address: "));
  EXPECT_THAT(both, HasSubstr("; from.display_name: contains CR or LF"));
}

}  // namespace
}  // namespace mailroom
