// The seed's fix for "connect timed out", end to end: a real HTTP proxy (tinyproxy, from the
// testbed; with stunnel in front for an https:// proxy) between mailroom and the
// Exchange-like testbed. Test Connection through the real
// broker (tests/testing/broker_harness.h) passes through an allowing proxy, and a real
// sending node (tests/e2e/tools/mail_sender: outbox + delivery worker) then delivers through
// it: the proxy's own log shows each CONNECT. A proxy that denies the CONNECT, one that wants
// credentials (none given, wrong ones), and one that is not there are each named in the
// PROXY step; the right credentials, read from a file on the broker's node, pass. And the
// proxy password is a secret like the client secret: never returned or logged, and never
// sent to a proxy other than the one it was saved with.
// Needs root (Postfix); tags = ["local", "exclusive"].
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/recording_listener.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::ChildProcess;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::mailroom::testing::TestbedRunfile;
using ::mailroom::testing::TestProxy;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

class ProxyE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker psn1:psn admin:admin"));
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        absl::StrCat(getenv("TEST_TMPDIR"), "/broker"), *certs_, *testbed_);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    const char* const modes[] = {"allow", "deny", "auth", "tls"};
    for (int i = 0; i < 4; ++i) {
      absl::StatusOr<TestProxy> proxy = testbed_->StartProxy(modes[i]);
      ASSERT_TRUE(proxy.ok()) << proxy.status();
      proxies_[i] = new TestProxy(*proxy);
    }
  }
  static void TearDownTestSuite() {
    for (TestProxy*& proxy : proxies_) {
      delete proxy;
      proxy = nullptr;
    }
    delete broker_;
    delete testbed_;
  }

  static const TestProxy& Allowing() { return *proxies_[0]; }
  static const TestProxy& Denying() { return *proxies_[1]; }
  static const TestProxy& Authenticating() { return *proxies_[2]; }
  static const TestProxy& Https() { return *proxies_[3]; }

  static v1::SmtpSettings Through(const std::string& proxy_url,
                                  const std::string& credentials_file = "") {
    v1::SmtpSettings settings = BrokerHarness::TestbedSettings(*testbed_);
    settings.mutable_proxy()->set_url(proxy_url);
    settings.mutable_proxy()->set_credentials_file(credentials_file);
    return settings;
  }

  static v1::TestConnectionReport Test(const v1::SmtpSettings& settings,
                                       const std::string& recipient = "") {
    absl::StatusOr<v1::TestConnectionReport> report = broker_->TestConnection(settings, recipient);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.value_or(v1::TestConnectionReport());
  }

  // The report failed at the PROXY step with `cause`, and nothing after it ran.
  static void ExpectProxyFailure(const v1::TestConnectionReport& report,
                                 cv1::FailureCause cause, const std::string& title) {
    EXPECT_FALSE(report.passed());
    EXPECT_EQ(report.failed_step(), v1::TEST_STEP_KIND_PROXY) << report.DebugString();
    EXPECT_EQ(report.diagnosis().cause(), cause) << report.diagnosis().DebugString();
    EXPECT_EQ(report.diagnosis().title(), title);
    EXPECT_THAT(report.diagnosis().fix(), HasSubstr("settings.proxy"));
    ASSERT_GE(report.steps_size(), 1);
    EXPECT_EQ(report.steps(0).kind(), v1::TEST_STEP_KIND_PROXY);
    EXPECT_EQ(report.steps(0).status(), v1::TEST_STEP_STATUS_FAILED);
    for (int i = 1; i < report.steps_size(); ++i) {
      EXPECT_EQ(report.steps(i).status(), v1::TEST_STEP_STATUS_SKIPPED) << report.DebugString();
    }
  }

  static std::string TokenTarget() { return absl::StrCat("127.0.0.1:", testbed_->Env("OIDC_PORT")); }
  static std::string SmtpTarget() {
    const v1::SmtpSettings settings = BrokerHarness::TestbedSettings(*testbed_);
    return absl::StrCat(settings.smtp_host(), ":", settings.port());
  }

  static size_t CountConnects(const TestProxy& proxy, const std::string& target) {
    const std::vector<std::string> connects = Testbed::ProxyConnects(proxy);
    return std::count(connects.begin(), connects.end(), target);
  }

  // A credentials file of this test's own (mode 0600), with `content`.
  static std::string CredentialsFile(const std::string& name, const std::string& content) {
    const std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
    std::FILE* file = std::fopen(path.c_str(), "w");
    std::fputs(content.c_str(), file);
    std::fclose(file);
    chmod(path.c_str(), 0600);
    return path;
  }

  static std::string ProxyPassword() {
    const std::string line(absl::StripTrailingAsciiWhitespace(
        ReadAll(Authenticating().credentials_file)));
    return line.substr(line.find(':') + 1);
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  static TestProxy* proxies_[4];
};

Testbed* ProxyE2eTest::testbed_ = nullptr;
std::string* ProxyE2eTest::certs_ = nullptr;
BrokerHarness* ProxyE2eTest::broker_ = nullptr;
TestProxy* ProxyE2eTest::proxies_[4] = {nullptr, nullptr, nullptr, nullptr};

TEST_F(ProxyE2eTest, TestConnectionAndARoleNodesDeliveryGoThroughTheProxy) {
  const v1::SmtpSettings settings = Through(Allowing().url);
  const v1::TestConnectionReport report = Test(settings, "proxy-test@example.test");
  ASSERT_TRUE(report.passed()) << report.DebugString();
  ASSERT_EQ(report.steps_size(), 6);
  EXPECT_EQ(report.steps(0).kind(), v1::TEST_STEP_KIND_PROXY);
  EXPECT_EQ(report.steps(0).status(), v1::TEST_STEP_STATUS_PASSED);
  EXPECT_THAT(report.steps(0).detail(), HasSubstr(absl::StrCat("CONNECT ", TokenTarget(), ": 200")));
  EXPECT_THAT(report.steps(0).detail(), HasSubstr(absl::StrCat("CONNECT ", SmtpTarget(), ": 200")));
  EXPECT_THAT(report.steps(2).detail(), HasSubstr(absl::StrCat("through proxy ", Allowing().url)));
  EXPECT_THAT(report.steps(2).transcript(),
              Contains(absl::StrCat("C: CONNECT ", SmtpTarget(), " HTTP/1.1")));
  EXPECT_EQ(testbed_->WaitForDelivered("proxy-test@example.test", 1, absl::Seconds(20)).size(), 1u);
  // The proxy's log: the PROXY step's two probes, the token request and the SMTP session.
  EXPECT_GE(CountConnects(Allowing(), TokenTarget()), 2u);
  EXPECT_GE(CountConnects(Allowing(), SmtpTarget()), 2u);

  ASSERT_TRUE(broker_->Configure(settings).ok());
  const size_t smtp_before = CountConnects(Allowing(), SmtpTarget());
  // A real sending node: its outbox and delivery worker, tokens and the proxy from the broker.
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/sender");
  ASSERT_EQ(system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  const std::string to = "via-proxy@example.test";
  ChildProcess sender({TestbedRunfile("tests/e2e/tools/mail_sender"),
                       absl::StrCat("--outbox=", dir, "/outbox.db"),
                       absl::StrCat("--broker=", broker_->target()),
                       absl::StrCat("--certs=", *certs_), "--node=psn1",
                       absl::StrCat("--from=", testbed_->Env("MAILBOX")),
                       absl::StrCat("--to=", to), "--enqueue=3", "--exit_when_drained"},
                      absl::StrCat(dir, "/sender.log"));
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (sender.running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_FALSE(sender.running()) << ReadAll(sender.log_path());
  EXPECT_EQ(sender.Terminate(), 0) << ReadAll(sender.log_path());
  EXPECT_EQ(testbed_->WaitForDelivered(to, 3, absl::Seconds(20)).size(), 3u);
  // The node's SMTP connection went through the proxy: a new CONNECT to the SMTP port.
  EXPECT_GT(CountConnects(Allowing(), SmtpTarget()), smtp_before);
  std::printf("proxy log CONNECTs to SMTP: %zu before the node, %zu after\n", smtp_before,
              CountConnects(Allowing(), SmtpTarget()));
}

TEST_F(ProxyE2eTest, AProxyThatDeniesTheConnectIsNamed) {
  const v1::TestConnectionReport report = Test(Through(Denying().url));
  ExpectProxyFailure(report, cv1::FAILURE_CAUSE_PROXY_CONNECT_DENIED,
                     "Proxy denied the CONNECT tunnel");
  EXPECT_THAT(report.diagnosis().codes(), Contains("PROXY 403"));
  EXPECT_THAT(report.diagnosis().raw_reply(), HasSubstr(Denying().url));
  EXPECT_THAT(Testbed::ProxyConnects(Denying()), Contains(TokenTarget()));
}

TEST_F(ProxyE2eTest, AnAuthenticatingProxyIsNamedUntilItGetsTheRightCredentials) {
  ExpectProxyFailure(Test(Through(Authenticating().url)), cv1::FAILURE_CAUSE_PROXY_AUTH_REQUIRED,
                     "Proxy requires authentication (407)");
  const std::string wrong = CredentialsFile("wrong.credentials", "mailroom-proxy:not-it\n");
  ExpectProxyFailure(Test(Through(Authenticating().url, wrong)),
                     cv1::FAILURE_CAUSE_PROXY_AUTH_REJECTED, "Proxy authentication failed");

  const v1::TestConnectionReport report =
      Test(Through(Authenticating().url, Authenticating().credentials_file));
  ASSERT_TRUE(report.passed()) << report.DebugString();
  EXPECT_THAT(report.steps(0).detail(), HasSubstr("with its credentials"));
  // The password reached the proxy, and nothing else: not the report, not the broker's log.
  const std::string password = ProxyPassword();
  ASSERT_GE(password.size(), 8u);
  EXPECT_THAT(report.DebugString(), Not(HasSubstr(password)));
  const std::string log = ReadAll(broker_->log_path());
  EXPECT_THAT(log, Not(HasSubstr(password)));
  EXPECT_THAT(log, Not(HasSubstr(absl::Base64Escape(absl::StrCat("mailroom-proxy:", password)))));
}

// An https:// proxy (stunnel in front of tinyproxy): its certificate is verified like any
// server's, against settings.proxy.trust_store; the PKIX failure names that field.
TEST_F(ProxyE2eTest, AnHttpsProxyIsVerifiedAgainstItsOwnTrustStore) {
  const v1::TestConnectionReport untrusted = Test(Through(Https().url));
  EXPECT_EQ(untrusted.failed_step(), v1::TEST_STEP_KIND_PROXY) << untrusted.DebugString();
  EXPECT_EQ(untrusted.diagnosis().cause(), cv1::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN)
      << untrusted.diagnosis().DebugString();
  EXPECT_THAT(untrusted.diagnosis().fix(), HasSubstr("settings.proxy.trust_store"));
  EXPECT_THAT(untrusted.diagnosis().raw_reply(), HasSubstr("TLS to the proxy"));

  v1::SmtpSettings settings = Through(Https().url);
  settings.mutable_proxy()->mutable_trust_store()->set_ca_file(testbed_->Env("CA_FILE"));
  const size_t before = CountConnects(Https(), SmtpTarget());
  const v1::TestConnectionReport report = Test(settings);
  ASSERT_TRUE(report.passed()) << report.DebugString();
  EXPECT_THAT(report.steps(0).detail(), HasSubstr(Https().url));
  EXPECT_GE(CountConnects(Https(), SmtpTarget()), before + 2);  // the probe and the session
}

TEST_F(ProxyE2eTest, AProxyThatIsNotThereIsNamed) {
  const v1::TestConnectionReport report =
      Test(Through(absl::StrCat("http://127.0.0.1:", mailroom::testing::UnusedLoopbackPort())));
  ExpectProxyFailure(report, cv1::FAILURE_CAUSE_PROXY_CONNECTION_REFUSED,
                     "Connection to the proxy refused");
}

// H1 for the proxy: saved with the authenticating proxy, its password can neither be read
// back nor be sent to a proxy of an admin's choosing, and changing the proxy without the
// client secret is refused, naming the field.
TEST_F(ProxyE2eTest, TheProxyPasswordStaysOnTheBrokerAndGoesOnlyToItsProxy) {
  const v1::SmtpSettings saved = Through(Authenticating().url, Authenticating().credentials_file);
  ASSERT_TRUE(broker_->Configure(saved).ok());
  const std::string password = ProxyPassword();
  {
    grpc::ClientContext context;
    v1::GetSettingsResponse response;
    ASSERT_TRUE(broker_->StubAs("admin")->GetSettings(&context, {}, &response).ok());
    EXPECT_EQ(response.settings().proxy().credentials_file(), Authenticating().credentials_file);
    EXPECT_THAT(response.SerializeAsString(), Not(HasSubstr(password)));
  }
  {
    // A role node gets it, to tunnel its SMTP sessions.
    grpc::ClientContext context;
    v1::GetAccessTokenRequest request;
    request.set_node("psn1");
    v1::GetAccessTokenResponse response;
    ASSERT_TRUE(broker_->StubAs("psn1")->GetAccessToken(&context, request, &response).ok());
    EXPECT_EQ(response.smtp_proxy().url(), Authenticating().url);
    EXPECT_EQ(response.smtp_proxy().credentials(), absl::StrCat("mailroom-proxy:", password));
  }

  mailroom::testing::RecordingListener attacker;
  ASSERT_NE(attacker.port(), 0);
  const std::string attacker_url = absl::StrCat("http://127.0.0.1:", attacker.port());
  // Without the secret: the stored secret's requests would go through another proxy.
  v1::SmtpSettings no_secret = Through(attacker_url, CredentialsFile("mine.credentials", "a:b\n"));
  no_secret.mutable_client_secret()->clear_secret();
  absl::StatusOr<v1::TestConnectionReport> refused = broker_->TestConnection(no_secret);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("settings.proxy.url"));
  // With a secret typed in (right or not), the saved password file for another proxy.
  absl::StatusOr<v1::TestConnectionReport> bound =
      broker_->TestConnection(Through(attacker_url, Authenticating().credentials_file));
  EXPECT_EQ(bound.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bound.status().message()),
              HasSubstr("the saved proxy credentials (settings.proxy.credentials_file) go only "
                        "to the proxy they were saved with"));
  absl::SleepFor(absl::Seconds(1));  // anything already sent has arrived by now
  EXPECT_EQ(attacker.connections(), 0);
  EXPECT_THAT(attacker.received(), Not(HasSubstr(absl::Base64Escape(
                                       absl::StrCat("mailroom-proxy:", password)))));
  // The saved settings still work through their proxy.
  const v1::TestConnectionReport again = Test(saved);
  EXPECT_TRUE(again.passed()) << again.diagnosis().DebugString();
  EXPECT_THAT(ReadAll(broker_->log_path()), Not(HasSubstr(password)));
}

}  // namespace
}  // namespace mailroom
