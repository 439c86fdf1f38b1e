// MakeDiagnosis and SetRawReply: the classification's text, and a server's reply kept within
// kMaxRawReplyBytes, cut on a character boundary, always UTF-8.
#include "common/base/diagnosis.h"

#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

using ::mailroom::common::v1::FAILURE_CAUSE_INVALID_CLIENT_SECRET;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(Diagnosis, MakeDiagnosisFillsTheCausesText) {
  const Diagnosis d = MakeDiagnosis(FAILURE_CAUSE_INVALID_CLIENT_SECRET, "AADSTS7000215");
  EXPECT_EQ(d.cause(), FAILURE_CAUSE_INVALID_CLIENT_SECRET);
  EXPECT_FALSE(d.title().empty());
  EXPECT_FALSE(d.fix().empty());
  EXPECT_EQ(d.raw_reply(), "AADSTS7000215");
}

// Each proxy failure is its own cause with its own name and a fix naming the settings field.
TEST(Diagnosis, ProxyFailuresAreNamedApart) {
  namespace fc = ::mailroom::common::v1;
  std::set<std::string> titles;
  for (fc::FailureCause cause :
       {fc::FAILURE_CAUSE_PROXY_CONNECTION_REFUSED, fc::FAILURE_CAUSE_PROXY_UNREACHABLE,
        fc::FAILURE_CAUSE_PROXY_AUTH_REQUIRED, fc::FAILURE_CAUSE_PROXY_AUTH_REJECTED,
        fc::FAILURE_CAUSE_PROXY_CONNECT_DENIED}) {
    const Diagnosis d = MakeDiagnosis(cause);
    EXPECT_EQ(d.cause(), cause);
    EXPECT_THAT(d.title(), HasSubstr("roxy"));
    EXPECT_THAT(d.fix(), HasSubstr("settings.proxy."));
    titles.insert(d.title());
  }
  EXPECT_EQ(titles.size(), 5u);
}

// Item 4 of issue 11: the seed's words, and a fix that says which trust store to change.
TEST(Diagnosis, AnUntrustedChainUsesTheSeedsWordsAndNamesTheTrustStore) {
  const Diagnosis d = MakeDiagnosis(common::v1::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN);
  EXPECT_EQ(d.title(),
            "PKIX path building failed: unable to find valid certification path to requested "
            "target");
  EXPECT_THAT(UntrustedChainFix("authority_trust_store"),
              HasSubstr("settings.authority_trust_store (ca_file or ca_bundle_pem)"));
  EXPECT_THAT(UntrustedChainFix("smtp_trust_store"), HasSubstr("settings.smtp_trust_store"));
}

// L11: an unbounded reply made the MnT refuse (and drop) the delivery alarm carrying it.
TEST(Diagnosis, ConnectFailuresNameTheHostInTheSeedsWords) {
  namespace fc = ::mailroom::common::v1;
  const std::pair<fc::FailureCause, std::string> cases[] = {
      {fc::FAILURE_CAUSE_CONNECT_TIMEOUT,
       "Connection to smtp.office365.com failed: connect timed out"},
      {fc::FAILURE_CAUSE_CONNECTION_REFUSED,
       "Connection to smtp.office365.com failed: connection refused"},
      {fc::FAILURE_CAUSE_DNS_RESOLUTION_FAILED,
       "Connection to smtp.office365.com failed: host name not found"},
  };
  for (const auto& [cause, title] : cases) {
    Diagnosis diagnosis = MakeDiagnosis(cause, "raw");
    NameConnectHost("smtp.office365.com", &diagnosis);
    EXPECT_EQ(diagnosis.title(), title);
    EXPECT_EQ(diagnosis.fix(), MakeDiagnosis(cause).fix());
  }
  // Other causes keep their own title; without a host, so does a connect failure.
  Diagnosis secret = MakeDiagnosis(FAILURE_CAUSE_INVALID_CLIENT_SECRET);
  NameConnectHost("login.microsoftonline.com", &secret);
  EXPECT_EQ(secret.title(), "Invalid client secret");
  Diagnosis timeout = MakeDiagnosis(fc::FAILURE_CAUSE_CONNECT_TIMEOUT);
  NameConnectHost("", &timeout);
  EXPECT_EQ(timeout.title(), "Connection failed: connect timed out");
}

TEST(Diagnosis, TheScopeFixAcceptsTheSeedsScope) {
  const Diagnosis scope = MakeDiagnosis(::mailroom::common::v1::FAILURE_CAUSE_INVALID_SCOPE);
  EXPECT_THAT(scope.fix(), HasSubstr("https://outlook.office365.com/.default"));
  EXPECT_THAT(scope.fix(), HasSubstr("https://outlook.office.com/.default"));
  EXPECT_THAT(scope.fix(), Not(HasSubstr("exactly")));
}

TEST(Diagnosis, ALongReplyIsCutOnACharacterBoundary) {
  std::string reply;
  while (reply.size() < 100000) reply += "服务器拒绝 ";  // 3-byte characters
  const Diagnosis d = MakeDiagnosis(FAILURE_CAUSE_INVALID_CLIENT_SECRET, reply);
  EXPECT_LE(d.raw_reply().size(), kMaxRawReplyBytes + 64);
  EXPECT_TRUE(IsValidUtf8(d.raw_reply()));
  EXPECT_THAT(d.raw_reply(), EndsWith("more bytes left out]"));
  EXPECT_EQ(d.raw_reply().substr(0, 100), reply.substr(0, 100));
  Diagnosis exact;
  SetRawReply(&exact, std::string(kMaxRawReplyBytes, 'x'));
  EXPECT_EQ(exact.raw_reply(), std::string(kMaxRawReplyBytes, 'x'));
}

// Found by tests/fuzz/smtp_reply_fuzzer.cc: a reply with a byte that is not UTF-8 (here a
// Latin-1 "é") made a Diagnosis that serialized with an error and did not parse back, so
// DiagnosisOf lost it on its way to the admin.
TEST(Diagnosis, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  const Diagnosis d =
      MakeDiagnosis(FAILURE_CAUSE_INVALID_CLIENT_SECRET, "550 utilisateur inconnu \xe9\xff.");
  EXPECT_EQ(d.raw_reply(), "550 utilisateur inconnu \uFFFD\uFFFD.");
  const absl::optional<Diagnosis> carried = DiagnosisOf(DiagnosedError(d));
  ASSERT_TRUE(carried.has_value());
  EXPECT_EQ(carried->raw_reply(), d.raw_reply());
}

TEST(Diagnosis, ALongReplyThatIsNotUtf8IsCutAndReplaced) {
  const std::string reply(3 * kMaxRawReplyBytes, '\xb5');
  const Diagnosis d = MakeDiagnosis(FAILURE_CAUSE_INVALID_CLIENT_SECRET, reply);
  EXPECT_LE(d.raw_reply().size(), kMaxRawReplyBytes + 64);
  EXPECT_TRUE(IsValidUtf8(d.raw_reply()));
  EXPECT_THAT(d.raw_reply(), EndsWith(absl::StrCat(" [... ", reply.size() - kMaxRawReplyBytes / 3,
                                                   " more bytes left out]")));
  EXPECT_TRUE(DiagnosisOf(DiagnosedError(d)).has_value());
}

}  // namespace
}  // namespace mailroom
