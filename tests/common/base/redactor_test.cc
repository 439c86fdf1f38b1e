#include "common/base/redactor.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "Xy8Q~s3cr3t.Value_with+symbols/";

TEST(Redactor, RegisteredSecretIsRemovedInEveryForm) {
  Redactor redactor;
  redactor.AddSecret(kSecret);
  const std::string url_encoded = "Xy8Q~s3cr3t.Value_with%2Bsymbols%2F";
  const std::string base64 = absl::Base64Escape(kSecret);
  for (const std::string& text :
       {absl::StrCat("secret is ", kSecret, " ok"), absl::StrCat("body: x=1&y=", url_encoded),
        absl::StrCat("sasl ", base64)}) {
    SCOPED_TRACE(text);
    const std::string out = redactor.Redact(text);
    EXPECT_THAT(out, Not(HasSubstr("s3cr3t")));
    EXPECT_THAT(out, Not(HasSubstr(base64)));
    EXPECT_THAT(out, HasSubstr("[REDACTED]"));
  }
}

TEST(Redactor, RemovedSecretIsNoLongerRedacted) {
  Redactor redactor;
  redactor.AddSecret("token-one-value");
  redactor.RemoveSecret("token-one-value");
  EXPECT_EQ(redactor.Redact("token-one-value"), "token-one-value");
}

TEST(Redactor, ShortValuesAreIgnored) {
  Redactor redactor;
  redactor.AddSecret("a");
  EXPECT_EQ(redactor.Redact("a cat"), "a cat");
}

struct PatternCase {
  std::string input;
  std::string must_not_contain;
};

TEST(Redactor, CredentialShapesAreRemovedWithoutRegistration) {
  const std::string xoauth2 =
      absl::Base64Escape("user=noreply@example.test\x01" "auth=Bearer AbC.tok-en\x01\x01");
  const PatternCase cases[] = {
      {"Authorization: Bearer eyAbc.def-ghi~123", "eyAbc"},
      {"auth=Bearer opaque_token_value\x01\x01", "opaque_token_value"},
      {absl::StrCat("> AUTH XOAUTH2 ", xoauth2), xoauth2.substr(0, 20)},
      {absl::StrCat("> ", xoauth2), xoauth2.substr(0, 20)},
      {R"({"token_type":"Bearer","access_token":"tok.en/value","expires_in":3599})",
       "tok.en/value"},
      {"grant_type=client_credentials&client_secret=p%40ss&scope=x", "p%40ss"},
      {"client_assertion=aaa.bbb.ccc&x=1", "aaa.bbb.ccc"},
      {"jwt eyJhbGciOiJQUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl end", "eyJhdWQiOiJ4In0"},
      {"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", "MIIEvQIBADANBg"},
      {"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----", "MHcCAQEEIB"},
      // A proxy password travels only base64-encoded.
      {"Proxy-Authorization: Basic cHJveHl1c2VyOnMzY3JldA==", "cHJveHl1c2VyOnMzY3JldA"},
      {"> proxy-authorization:basic cHJveHl1c2VyOnMzY3JldA==\r\nHost: x", "cHJveHl1c2VyOnMz"},
      {"Authorization: Digest username=\"u\", response=\"6629fae49393a05397450978507c4ef1\"",
       "6629fae4"},
  };
  for (const PatternCase& c : cases) {
    SCOPED_TRACE(c.input);
    const std::string out = Redactor::RedactPatterns(c.input);
    EXPECT_THAT(out, Not(HasSubstr(c.must_not_contain)));
    EXPECT_THAT(out, HasSubstr("[REDACTED]"));
  }
}

TEST(Redactor, OrdinaryTextIsUntouched) {
  const std::string text =
      "235 2.7.0 Authentication successful; to guest@example.test, AADSTS7000215 at 12:00";
  EXPECT_EQ(Redactor::RedactPatterns(text), text);
}

}  // namespace
}  // namespace mailroom

namespace mailroom {
namespace {

// The cheap pre-check in front of the patterns must not let any shape through.
TEST(Redactor, PreCheckIsCaseInsensitiveWhereThePatternsAre) {
  for (const std::string text : {"BEARER abc.DEF-123", "Client_Secret=s3cr3t-v4lue", "auth XOAUTH2 dXNlcj1hYmM="}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(Redactor::RedactPatterns(text), ::testing::HasSubstr("[REDACTED]"));
  }
}

// L1: std::regex recursed per character and overflowed the stack on a long base64 run; the
// patterns must now handle a megabyte of token-like text from a remote server.
TEST(Redactor, AMegabyteOfTokenLikeTextIsRedactedWithoutCrashing) {
  const std::string run(1 << 20, 'A');
  for (const std::string& text :
       {absl::StrCat("Authorization: Bearer ", run), absl::StrCat("eyJ", run, ".", run, ".x"),
        absl::StrCat("AUTH XOAUTH2 ", run), absl::StrCat("{\"access_token\":\"", run, "\"}"),
        absl::StrCat("client_secret=", run), absl::StrCat("dXNlcj1", run),
        absl::StrCat("-----BEGIN PRIVATE KEY-----\n", run, "\n-----END PRIVATE KEY-----")}) {
    const std::string out = Redactor::RedactPatterns(text);
    EXPECT_THAT(out, HasSubstr("[REDACTED]"));
    EXPECT_THAT(out, Not(HasSubstr("AAAAAAAAAAAAAAAA"))) << out.substr(0, 80);
  }
}

// L2: every token, assertion and Test Connection credential was kept forever.
TEST(Redactor, ShortLivedValuesAreBoundedAndTheStoredSecretStays) {
  Redactor redactor;
  redactor.AddSecret(kSecret);
  for (size_t i = 0; i < 3 * Redactor::kMaxShortLivedSecrets; ++i) {
    redactor.AddShortLivedSecret(absl::StrCat("token-number-", i));
  }
  EXPECT_EQ(redactor.size(), Redactor::kMaxShortLivedSecrets + 1);
  EXPECT_THAT(redactor.Redact(absl::StrCat("x ", kSecret)), Not(HasSubstr("s3cr3t")));
  const std::string newest =
      absl::StrCat("token-number-", 3 * Redactor::kMaxShortLivedSecrets - 1);
  EXPECT_EQ(redactor.Redact(newest), "[REDACTED]");
  EXPECT_EQ(redactor.Redact("token-number-0"), "token-number-0");  // the oldest went first
  // Registering a value again makes it the newest.
  redactor.AddShortLivedSecret("token-number-0");
  EXPECT_EQ(redactor.size(), Redactor::kMaxShortLivedSecrets + 1);
  EXPECT_EQ(redactor.Redact("token-number-0"), "[REDACTED]");
}

}  // namespace
}  // namespace mailroom
