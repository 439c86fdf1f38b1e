// Address validation: what RFC 5321 accepts is accepted and converted to its ASCII form
// (A-label domains), everything else is INVALID_ARGUMENT naming the caller's field, and the
// error text never carries a raw control character.
#include "common/mail/email_address.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct ValidCase {
  std::string address;
  std::string smtp;
};

TEST(AddressForSmtp, AcceptsRfc5321MailboxesAndConvertsDomains) {
  const std::string local64(64, 'a');
  const std::string label63(63, 'b');
  const ValidCase cases[] = {
      {"guest@example.com", "guest@example.com"},
      // The local part keeps its case; the domain is case-insensitive and lowered.
      {"First.Last+tag@Example.COM", "First.Last+tag@example.com"},
      {"a!#$%&'*+-/=?^_`{|}~@example.com", "a!#$%&'*+-/=?^_`{|}~@example.com"},
      {"o'brien@example.ie", "o'brien@example.ie"},
      {"\"a@b\"@example.com", "\"a@b\"@example.com"},
      {"\"quote\\\"inside\"@example.com", "\"quote\\\"inside\"@example.com"},
      {local64 + "@example.com", local64 + "@example.com"},
      {"guest@" + label63 + ".example", "guest@" + label63 + ".example"},
      {"guest@mail-1.example-2.co.uk", "guest@mail-1.example-2.co.uk"},
      {"guest@[192.0.2.1]", "guest@[192.0.2.1]"},
      {"guest@[IPv6:2001:db8::1]", "guest@[IPv6:2001:db8::1]"},
      // Internationalized domains become A-labels.
      {"guest@bücher.example", "guest@xn--bcher-kva.example"},
      {"guest@BÜCHER.Example", "guest@xn--bcher-kva.example"},
      {"guest@bu\xcc\x88"
       "cher.example",
       "guest@xn--bcher-kva.example"},  // NFD input
      {"guest@例子.广告", "guest@xn--fsqu00a.xn--4rr70v"},
      {"guest@例子。广告", "guest@xn--fsqu00a.xn--4rr70v"},  // ideographic full stop
      {"guest@xn--bcher-kva.example", "guest@xn--bcher-kva.example"},
      {"guest@XN--BCHER-KVA.example", "guest@xn--bcher-kva.example"},
      {"guest@straße.de", "guest@xn--strae-oqa.de"},  // IDNA2008: ß is kept, not "ss"
  };
  for (const ValidCase& c : cases) {
    SCOPED_TRACE(c.address);
    absl::StatusOr<std::string> smtp = AddressForSmtp(c.address, "to[0].address");
    ASSERT_TRUE(smtp.ok()) << smtp.status();
    EXPECT_EQ(*smtp, c.smtp);
    EXPECT_TRUE(ValidateEmailAddress(c.address, "to[0].address").ok());
  }
}

struct InvalidCase {
  std::string address;
  std::string message;  // expected in the error, after "<field>: "
};

TEST(AddressForSmtp, RefusesInvalidAddressesNamingTheField) {
  const std::string long_label(64, 'c');
  std::string long_domain;
  for (int i = 0; i < 5; ++i) long_domain += std::string(60, 'd') + ".";
  long_domain += "example";  // 5 * 61 + 7 = 312 octets
  // Every part within its own limit, the whole over 254: 64 + 1 + 3 * 62 + 7 = 258.
  std::string long_address = std::string(64, 'e') + "@";
  for (int i = 0; i < 3; ++i) long_address += std::string(61, 'f') + ".";
  long_address += "example";
  const InvalidCase cases[] = {
      {"", "empty address"},
      {"guest.example.com", "\"guest.example.com\" has no '@'"},
      {"guest@home@example.com", "has more than one '@'"},
      {"@example.com", "empty local part"},
      {"\"\"@example.com", "empty local part"},
      {std::string(65, 'a') + "@example.com", "local part is 65 octets, more than 64"},
      {"guest@-x.example.com", "invalid domain label \"-x\""},
      {"guest@x-.example.com", "invalid domain label \"x-\""},
      {"guest@exa_mple.com", "invalid domain label \"exa_mple\""},
      {"guest@" + long_label + ".example", "is 64 octets, more than 63"},
      {"guest@" + long_domain, "domain is 312 octets, more than 255"},
      {long_address, "address is 258 octets, more than 254"},
      {"guest@localhost", "domain \"localhost\" has no dot"},
      {"gu est@example.com", "local part \"gu est\" contains whitespace"},
      // L12: accepted at enqueue before, refused at send.
      {"\"john smith\"@example.com", "contains a space, which Exchange Online"},
      {"\"john\\ smith\"@example.com", "contains a space"},
      {"guest@exam ple.com", "invalid domain label \"exam ple\""},
      {" guest@example.com", "has leading or trailing whitespace"},
      {"guest@example.com ", "has leading or trailing whitespace"},
      {"guest@example.com.", "domain \"example.com.\" ends with a dot"},
      {"guest@.example.com", "starts with a dot"},
      {"guest@example..com", "has an empty label"},
      {"guest@", "empty domain"},
      {".guest@example.com", "has a leading, trailing or doubled dot"},
      {"guest.@example.com", "has a leading, trailing or doubled dot"},
      {"gu..est@example.com", "has a leading, trailing or doubled dot"},
      {"gu(est@example.com", "invalid character \"(\" in local part"},
      {"\"unterminated@example.com", "unterminated quoted local part"},
      {"\"a\"b@example.com", "text between the quoted local part and '@'"},
      {"guest@example.com\r\nRCPT TO:<evil@example.net>", "contains CR or LF"},
      {"guest\n@example.com", "contains CR or LF"},
      {std::string("gu\0est@example.com", 18), "contains NUL"},
      {"guest@exam\xffple.com", "is not valid UTF-8 (byte 10)"},
      {"Guest <guest@example.com>", "without angle brackets"},
      {"<guest@example.com>", "without angle brackets"},
      {"guest@192.0.2.1", "an IP address must be written as an address literal"},
      {"guest@[192.0.2]", "invalid address literal \"[192.0.2]\""},
      {"guest@[IPv6:2001:db8::zz]", "invalid address literal"},
      {"guest@[192.0.2.1", "invalid address literal"},
      {"guest@☃.example", "invalid domain label \"☃\""},
      {"guest@xn--abc.example", "invalid domain label \"xn--abc\""},
      // SMTPUTF8 local parts: refused with the reason.
      {"用户@例子.广告", "local part \"用户\" is not ASCII"},
      {"josé@example.com", "need SMTPUTF8"},
  };
  for (const InvalidCase& c : cases) {
    SCOPED_TRACE(QuoteForError(c.address, 400));
    const absl::Status status = ValidateEmailAddress(c.address, "to[2].address");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    const std::string message(status.message());
    EXPECT_THAT(message, StartsWith("to[2].address: "));
    EXPECT_THAT(message, HasSubstr(c.message));
    EXPECT_EQ(AddressForSmtp(c.address, "to[2].address").status(), status);
    // Whatever the input, the error text is one printable line.
    EXPECT_EQ(message.find_first_of(std::string("\r\n\0", 3)), std::string::npos);
  }
}

TEST(AddressForSmtp, MessageMatchesTheDocumentedForm) {
  EXPECT_EQ(ValidateEmailAddress("guest@-x.example", "to[2].address").message(),
            "to[2].address: invalid domain label \"-x\": must not start or end with '-'");
  EXPECT_EQ(ValidateEmailAddress("guest@example.com\r\n", "cc[0].address").message(),
            "cc[0].address: contains CR or LF");
}

TEST(DomainForSmtp, ConvertsAndRefusesLiterals) {
  absl::StatusOr<std::string> domain = DomainForSmtp("Bücher.Example", "message_id");
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_EQ(*domain, "xn--bcher-kva.example");
  EXPECT_THAT(DomainForSmtp("[192.0.2.1]", "ehlo").status().message(),
              HasSubstr("ehlo: an address literal"));
  EXPECT_THAT(DomainForSmtp("mail\r\n.example", "ehlo").status().message(),
              HasSubstr("ehlo: contains CR or LF"));
  EXPECT_THAT(DomainForSmtp("", "ehlo").status().message(), HasSubstr("ehlo: empty domain"));
}

}  // namespace
}  // namespace mailroom
