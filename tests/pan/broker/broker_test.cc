// Broker logic with fakes for the clock, the token endpoint, Test Connection and MnT: the
// seed's save-after-test rule, secret handling at rest and in answers, and expiry alarms.
#include "pan/broker/broker.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/redactor.h"
#include "common/crypto/aes_gcm.h"
#include "common/base/diagnosis.h"
#include "tests/testing/fake_clock.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "tests/testing/capturing_alarms.h"
#include "common/base/proto_time.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::broker {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::mailroom::testing::FakeHttpTransport;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "Zx9~super.SECRET-value_1234";
// Exchange's answer to AUTH when SMTP AUTH is disabled for the mailbox.
constexpr char kSmtpAuthDisabled[] =
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.";

// What psn1 reports when `mailbox` ("": the default one) got kSmtpAuthDisabled with the token
// `fingerprint`.
v1::InvalidateAccessTokenRequest SmtpAuthDisabledReport(const std::string& fingerprint,
                                                        const std::string& mailbox = "") {
  v1::InvalidateAccessTokenRequest report;
  report.set_node("psn1");
  report.set_mailbox(mailbox);
  report.set_token_fingerprint(fingerprint);
  report.set_smtp_code(535);
  report.set_reply_text(kSmtpAuthDisabled);
  return report;
}

// Runs the token step for real, takes the mailbox's share before "connecting" as the real
// tester does, and passes or fails the SMTP part as told.
class FakeTester : public ConnectionTester {
 public:
  v1::TestConnectionReport Run(const v1::SmtpSettings& resolved, TokenClient* client,
                               const cv1::EmailAddress* recipient, const Progress& progress,
                               const TakeMailboxShare& take_share) override {
    ++runs;
    last_settings = resolved;
    v1::TestStep step;
    step.set_kind(v1::TEST_STEP_KIND_TOKEN_REQUEST);
    step.set_status(v1::TEST_STEP_STATUS_RUNNING);
    progress(step);
    v1::TestConnectionReport report;
    absl::StatusOr<AccessToken> token = client->Fetch();
    absl::Status share = absl::OkStatus();
    if (token.ok()) share = take_share(recipient != nullptr);
    if (!token.ok()) {
      report.set_passed(false);
      report.set_failed_step(v1::TEST_STEP_KIND_TOKEN_REQUEST);
      *report.mutable_diagnosis() = *DiagnosisOf(token.status());
    } else if (!share.ok()) {
      report.set_passed(false);
      report.set_failed_step(v1::TEST_STEP_KIND_TCP_CONNECT);
      *report.mutable_diagnosis() = *DiagnosisOf(share);
      v1::TestStep* connect = report.add_steps();
      connect->set_kind(v1::TEST_STEP_KIND_TCP_CONNECT);
      connect->set_status(v1::TEST_STEP_STATUS_FAILED);
      connect->set_detail(std::string(share.message()));
    } else {
      if (while_connected) while_connected();
      if (recipient != nullptr && pass_smtp) {
        v1::TestStep* sent = report.add_steps();
        sent->set_kind(v1::TEST_STEP_KIND_SEND_TEST_MESSAGE);
        sent->set_status(v1::TEST_STEP_STATUS_PASSED);
      }
      report.set_passed(pass_smtp);
      if (!pass_smtp) {
        report.set_failed_step(v1::TEST_STEP_KIND_AUTH_XOAUTH2);
        *report.mutable_diagnosis() = MakeDiagnosis(cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED,
                                                    "535 5.7.3 Authentication unsuccessful");
      }
    }
    step.set_status(report.passed() ? v1::TEST_STEP_STATUS_PASSED : v1::TEST_STEP_STATUS_FAILED);
    progress(step);
    return report;
  }
  bool pass_smtp = true;
  int runs = 0;
  v1::SmtpSettings last_settings;
  // Runs while the "session" holds the mailbox's share.
  std::function<void()> while_connected;
};

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(getenv("TEST_TMPDIR"), "/broker-", ::testing::UnitTest::GetInstance()
                                                              ->current_test_info()
                                                              ->name());
    ASSERT_EQ(system(absl::StrCat("rm -rf ", dir_, " && mkdir -p ", dir_).c_str()), 0);
    key_ = *crypto::LoadOrCreateKeyFile(dir_ + "/broker.key");
    transport_.EnqueueJson(200, R"({"token_type":"Bearer","expires_in":3600,"access_token":"tok-1"})");
    StartBroker();
  }

  void StartBroker() {
    broker_.reset();
    store_ = std::make_unique<SettingsStore>(dir_ + "/state.bin", key_);
    BrokerOptions options;
    options.default_authority_host = "https://login.microsoftonline.com";
    options.expiry_check_interval = absl::Hours(1000);  // tests call CheckSecretExpiry
    broker_ = std::make_unique<Broker>(
        options, store_.get(), &clock_,
        [this](const v1::SmtpSettings& resolved) -> absl::StatusOr<std::unique_ptr<TokenClient>> {
          return std::unique_ptr<TokenClient>(std::make_unique<EntraTokenClient>(
              TokenEndpointConfig{resolved.token_endpoint(), resolved.client_id(), resolved.scope()},
              std::make_unique<ClientSecret>(resolved.client_secret().secret()), &transport_,
              &clock_));
        },
        &tester_, &alarms_, [] { return 0.5; });
    ASSERT_TRUE(broker_->Start().ok());
  }

  v1::SmtpSettings Settings(absl::Duration secret_lifetime = absl::Hours(24 * 365)) {
    v1::SmtpSettings settings;
    settings.set_username("noreply@contoso.com");
    settings.set_tenant_id("11111111-2222-3333-4444-555555555555");
    settings.set_client_id("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    settings.mutable_client_secret()->set_secret(kSecret);
    settings.mutable_client_secret()->mutable_expire_time()->set_seconds(
        absl::ToUnixSeconds(clock_.Now() + secret_lifetime));
    return settings;
  }

  absl::StatusOr<v1::TestConnectionReport> Test(const v1::SmtpSettings& settings,
                                                const std::string& test_recipient = "") {
    v1::TestConnectionRequest request;
    *request.mutable_settings() = settings;
    if (!test_recipient.empty()) request.mutable_test_recipient()->set_address(test_recipient);
    return broker_->TestConnection(request, [this](const v1::TestStep&) { ++steps_seen_; });
  }

  // Test() on another thread while the fake clock moves on (the broker may wait on it for a
  // connection slot); `meanwhile` runs once the test has started.
  absl::StatusOr<v1::TestConnectionReport> TestWhileTimePasses(
      const v1::SmtpSettings& settings, const std::string& test_recipient = "",
      const std::function<void()>& meanwhile = nullptr) {
    absl::StatusOr<v1::TestConnectionReport> report;
    std::atomic<bool> done{false};
    std::thread admin([&] {
      report = Test(settings, test_recipient);
      done = true;
    });
    if (meanwhile) meanwhile();
    while (!done) {
      clock_.Advance(absl::Milliseconds(500));
      absl::SleepFor(absl::Milliseconds(2));
    }
    admin.join();
    return report;
  }

  absl::StatusOr<v1::UpdateSettingsResponse> Save(const v1::SmtpSettings& settings,
                                                  const std::string& test_id) {
    v1::UpdateSettingsRequest request;
    *request.mutable_settings() = settings;
    request.set_test_id(test_id);
    return broker_->UpdateSettings(request, "admin");
  }

  void Configure(const v1::SmtpSettings& settings) {
    absl::StatusOr<v1::TestConnectionReport> report = Test(settings);
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_TRUE(report->passed());
    absl::StatusOr<v1::UpdateSettingsResponse> saved = Save(settings, report->test_id());
    ASSERT_TRUE(saved.ok()) << saved.status();
  }

  std::vector<RaiseAlarmRequest> FallbackAlarmsRaised() {
    absl::MutexLock lock(&alarms_.mu);
    std::vector<RaiseAlarmRequest> out;
    for (const RaiseAlarmRequest& alarm : alarms_.raised) {
      if (alarm.type() == mv1::ALARM_TYPE_MAIL_TRANSPORT_FALLBACK) out.push_back(alarm);
    }
    return out;
  }

  std::string dir_;
  std::string key_;
  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  FakeHttpTransport transport_;
  FakeTester tester_;
  ::mailroom::testing::CapturingAlarms alarms_;
  std::unique_ptr<SettingsStore> store_;
  std::unique_ptr<Broker> broker_;
  int steps_seen_ = 0;
};

TEST_F(BrokerTest, UnconfiguredBrokerSaysSo) {
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken({});
  EXPECT_EQ(token.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(token.status()), "SETTINGS_NOT_CONFIGURED");
  EXPECT_FALSE(broker_->GetSettings().configured());
}

TEST_F(BrokerTest, SavingRequiresAPassedTestOfTheSameSettings) {
  const v1::SmtpSettings settings = Settings();
  absl::StatusOr<v1::UpdateSettingsResponse> untested = Save(settings, "");
  EXPECT_EQ(ReasonOf(untested.status()), "TEST_CONNECTION_REQUIRED");

  tester_.pass_smtp = false;
  absl::StatusOr<v1::TestConnectionReport> failed = Test(settings);
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed->passed());
  EXPECT_GE(steps_seen_, 2);
  absl::StatusOr<v1::UpdateSettingsResponse> after_failure = Save(settings, failed->test_id());
  EXPECT_EQ(after_failure.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(after_failure.status()), "TEST_CONNECTION_FAILED");
  EXPECT_EQ(DiagnosisOf(after_failure.status())->title(), "Invalid email address");

  tester_.pass_smtp = true;
  absl::StatusOr<v1::TestConnectionReport> passed = Test(settings);
  ASSERT_TRUE(passed.ok() && passed->passed());
  v1::SmtpSettings changed = settings;
  changed.set_port(2525);
  EXPECT_EQ(ReasonOf(Save(changed, passed->test_id()).status()), "TEST_CONNECTION_REQUIRED");
  clock_.Advance(absl::Minutes(16));
  EXPECT_EQ(ReasonOf(Save(settings, passed->test_id()).status()), "TEST_CONNECTION_REQUIRED");

  absl::StatusOr<v1::TestConnectionReport> again = Test(settings);
  ASSERT_TRUE(again.ok() && again->passed());
  absl::StatusOr<v1::UpdateSettingsResponse> saved = Save(settings, again->test_id());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_TRUE(broker_->GetSettings().configured());
}

// Test Connection's connection and test message count against the mailbox like the nodes':
// it holds a slot and a message permit from the same ledger while its session is open, gives
// the slot back after, and its message stays counted.
TEST_F(BrokerTest, TestConnectionTakesItsConnectionAndMessageFromTheMailboxLedger) {
  const v1::SmtpSettings settings = Settings();
  broker_->quota().SetLimits(SendLimitValues{20, 10000, 2, 500});
  ASSERT_TRUE(broker_->quota().Acquire("noreply@contoso.com", "psn1", "conn-0", {1})->granted());
  v1::MailboxQuota during;
  tester_.while_connected = [&] { during = broker_->quota().Status("noreply@contoso.com")[0]; };
  absl::StatusOr<v1::TestConnectionReport> report = Test(settings, "admin@contoso.com");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->passed());
  EXPECT_EQ(during.open_connections(), 2);
  EXPECT_EQ(during.outstanding_permits(), 2);
  const v1::MailboxQuota after = broker_->quota().Status("noreply@contoso.com")[0];
  EXPECT_EQ(after.open_connections(), 1);
  EXPECT_EQ(after.outstanding_permits(), 1);
  EXPECT_EQ(after.messages_last_minute(), 2);  // psn1's and the test message
}

// With the nodes holding every slot, Test Connection waits (a node may close an idle
// connection), then says by name that the mailbox's connections are all in use, and who holds
// them, instead of opening one more for the server to refuse (432 4.3.2).
TEST_F(BrokerTest, TestConnectionWaitsForASlotThenNamesTheConnectionsInUse) {
  const v1::SmtpSettings settings = Settings();
  broker_->quota().SetLimits(SendLimitValues{20, 10000, 2, 500, absl::Minutes(10),
                                             absl::Minutes(10)});
  ASSERT_TRUE(broker_->quota().Acquire("noreply@contoso.com", "psn1", "conn-0", {1})->granted());
  ASSERT_TRUE(broker_->quota().Acquire("noreply@contoso.com", "psn2", "conn-0", {1})->granted());
  bool connected = false;
  tester_.while_connected = [&] { connected = true; };
  absl::StatusOr<v1::TestConnectionReport> report = TestWhileTimePasses(settings);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->passed());
  EXPECT_FALSE(connected);
  EXPECT_EQ(report->failed_step(), v1::TEST_STEP_KIND_TCP_CONNECT);
  EXPECT_EQ(report->diagnosis().cause(), cv1::FAILURE_CAUSE_MAILBOX_CONNECTIONS_IN_USE);
  EXPECT_EQ(report->diagnosis().title(), "The mailbox's connections are all in use");
  EXPECT_THAT(report->steps(0).detail(), HasSubstr("(psn1: 1, psn2: 1)"));
  // It gives up after 10 s; the fake clock is stepped in real time beside the broker, so on a
  // loaded machine it may be several steps past that when the broker looks (15.5 s was seen):
  // at least 10 s, and not without end.
  EXPECT_THAT(report->steps(0).detail(),
              ::testing::ContainsRegex("waited [12][0-9](\\.[0-9]+)?s"));
  EXPECT_EQ(broker_->quota().Status("noreply@contoso.com")[0].open_connections(), 2);

  // A slot that comes free while it waits is taken.
  report = TestWhileTimePasses(settings, "", [&] {
    clock_.Advance(absl::Seconds(2));
    EXPECT_TRUE(broker_->quota().Release("psn2", "", "conn-0", /*connection_closed=*/true).ok());
  });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->passed());
  EXPECT_TRUE(connected);
  EXPECT_EQ(broker_->quota().Status("noreply@contoso.com")[0].open_connections(), 1);
}

// A test message over the mailbox's rate is not sent; a test without one still runs.
TEST_F(BrokerTest, TestConnectionSendsNoTestMessageOverTheMailboxRate) {
  const v1::SmtpSettings settings = Settings();
  broker_->quota().SetLimits(SendLimitValues{20, 10000, 3, 500});
  ASSERT_EQ(broker_->quota()
                .Acquire("noreply@contoso.com", "psn1", "conn-0", std::vector<int>(20, 1))
                ->granted_messages(),
            20);
  absl::StatusOr<v1::TestConnectionReport> report =
      TestWhileTimePasses(settings, "admin@contoso.com");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->diagnosis().cause(), cv1::FAILURE_CAUSE_MAILBOX_SEND_LIMIT_REACHED);
  EXPECT_THAT(report->steps(0).detail(), HasSubstr("20 of the 20 messages a minute"));
  absl::StatusOr<v1::TestConnectionReport> no_message = Test(settings);
  ASSERT_TRUE(no_message.ok()) << no_message.status();
  EXPECT_TRUE(no_message->passed());
  EXPECT_EQ(broker_->quota().Status("noreply@contoso.com")[0].open_connections(), 1);
}

TEST_F(BrokerTest, DefaultsAndDerivedEndpointAreShown) {
  Configure(Settings());
  const v1::GetSettingsResponse view = broker_->GetSettings();
  EXPECT_EQ(view.settings().smtp_host(), "smtp.office365.com");
  EXPECT_EQ(view.settings().port(), 587);
  EXPECT_EQ(view.settings().connection_timeout().seconds(), 60);
  EXPECT_EQ(view.settings().scope(), "https://outlook.office365.com/.default");
  EXPECT_EQ(view.settings().token_endpoint(),
            "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token");
  EXPECT_EQ(view.updated_by(), "admin");
}

TEST_F(BrokerTest, SecretIsNeverInAnswersNorInTheClearOnDisk) {
  Configure(Settings());
  const v1::GetSettingsResponse view = broker_->GetSettings();
  EXPECT_THAT(view.SerializeAsString(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(view.DebugString(), Not(HasSubstr("super.SECRET")));
  EXPECT_TRUE(view.credential_status().is_set());
  EXPECT_EQ(view.credential_status().type(), v1::CREDENTIAL_TYPE_CLIENT_SECRET);
  EXPECT_EQ(view.credential_status().days_left(), 365);
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken({});
  ASSERT_TRUE(token.ok());
  EXPECT_THAT(token->SerializeAsString(), Not(HasSubstr(kSecret)));
  const std::string on_disk = *ReadFileToString(dir_ + "/state.bin");
  EXPECT_THAT(on_disk, Not(HasSubstr(kSecret)));
  // The whole record is sealed (issue 10, M2), not only the credential.
  EXPECT_THAT(on_disk, Not(HasSubstr("noreply@contoso.com")));
  EXPECT_THAT(on_disk, HasSubstr(kSealedStateMagic));
}

TEST_F(BrokerTest, SettingsSurviveARestartAndServeTokens) {
  Configure(Settings());
  StartBroker();
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken({});
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->access_token(), "tok-1");
  EXPECT_EQ(token->mailbox(), "noreply@contoso.com");
  EXPECT_EQ(token->smtp_port(), 587);
  EXPECT_EQ(token->token_fingerprint().size(), 64u);
  EXPECT_THAT(transport_.requests().back().form_body,
              HasSubstr("client_secret=Zx9~super.SECRET-value_1234"));
}

TEST_F(BrokerTest, AnUpdateWithoutTheSecretKeepsTheStoredOne) {
  Configure(Settings());
  v1::SmtpSettings update = Settings();
  update.mutable_client_secret()->clear_secret();
  update.mutable_connection_timeout()->set_seconds(30);
  Configure(update);
  EXPECT_EQ(tester_.last_settings.client_secret().secret(), kSecret);
  EXPECT_EQ(broker_->GetSettings().settings().connection_timeout().seconds(), 30);
}

// H1: an admin call must not be able to send the stored secret, or a token bought with it,
// anywhere but where it was saved and tested.
TEST_F(BrokerTest, TheStoredCredentialIsNotSentToAChangedDestination) {
  Configure(Settings());
  const std::string kSavedEndpoint =
      "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token";
  struct Change {
    const char* field;
    std::function<void(v1::SmtpSettings*)> apply;
  };
  const std::vector<Change> changes = {
      {"authority_host", [](v1::SmtpSettings* s) { s->set_authority_host("http://127.0.0.1:9"); }},
      {"tenant_id",
       [](v1::SmtpSettings* s) { s->set_tenant_id("99999999-2222-3333-4444-555555555555"); }},
      {"client_id",
       [](v1::SmtpSettings* s) { s->set_client_id("99999999-bbbb-cccc-dddd-eeeeeeeeeeee"); }},
      {"authority_trust_store",
       [](v1::SmtpSettings* s) {
         s->mutable_authority_trust_store()->set_ca_bundle_pem("attacker's CA");
       }},
      {"smtp_host", [](v1::SmtpSettings* s) { s->set_smtp_host("smtp.attacker.example"); }},
      {"port", [](v1::SmtpSettings* s) { s->set_port(2525); }},
      {"smtp_trust_store",
       [](v1::SmtpSettings* s) { s->mutable_smtp_trust_store()->set_exclude_system_roots(true); }},
      // Graph tokens would go there, even if the mailbox is on SMTP now (a later switch to
      // Graph needs no secret).
      {"graph_endpoint",
       [](v1::SmtpSettings* s) { s->set_graph_endpoint("https://graph.attacker.example"); }},
  };
  for (const Change& change : changes) {
    for (bool omit_whole_credential : {true, false}) {
      SCOPED_TRACE(absl::StrCat(change.field, omit_whole_credential ? " (no credential)"
                                                                    : " (empty secret)"));
      v1::SmtpSettings update = Settings();
      if (omit_whole_credential) {
        update.clear_client_secret();
      } else {
        update.mutable_client_secret()->clear_secret();
      }
      change.apply(&update);
      const size_t requests_before = transport_.requests().size();
      const int runs_before = tester_.runs;
      absl::StatusOr<v1::TestConnectionReport> report = Test(update);
      EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(report.status().message(),
                  HasSubstr(absl::StrCat("settings.", change.field, ": differs from the saved")));
      absl::StatusOr<v1::UpdateSettingsResponse> saved = Save(update, "test-anything");
      EXPECT_EQ(saved.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(saved.status().message(), HasSubstr(absl::StrCat("settings.", change.field)));
      // The broker's own token cache may refresh meanwhile, from the saved endpoint only.
      const auto requests = transport_.requests();
      for (size_t i = requests_before; i < requests.size(); ++i) {
        EXPECT_EQ(requests[i].url, kSavedEndpoint);
      }
      EXPECT_EQ(tester_.runs, runs_before);
    }
  }
  // Entering the secret again is what an admin moving the mailbox does: that works.
  v1::SmtpSettings moved = Settings();
  moved.set_smtp_host("smtp.other.example");
  Configure(moved);
  EXPECT_EQ(tester_.last_settings.smtp_host(), "smtp.other.example");
  // Spelling out the default authority is no change.
  v1::SmtpSettings explicit_default = moved;
  explicit_default.clear_client_secret();
  explicit_default.set_authority_host("https://login.microsoftonline.com");
  EXPECT_TRUE(Test(explicit_default).ok());
}

// M1: a trust store is forwarded to every role node, so naming the broker's key (or any file
// that is not CA certificates) must be refused, not read and handed out.
TEST_F(BrokerTest, ATrustStoreMustHoldCaCertificatesOnly) {
  struct Case {
    const char* field;
    std::function<void(v1::SmtpSettings*)> apply;
  };
  const std::string key_path = dir_ + "/broker.key";
  const std::vector<Case> cases = {
      {"settings.smtp_trust_store.ca_file: holds no PEM certificate",
       [&](v1::SmtpSettings* s) { s->mutable_smtp_trust_store()->set_ca_file(key_path); }},
      {"settings.authority_trust_store.ca_file",
       [&](v1::SmtpSettings* s) { s->mutable_authority_trust_store()->set_ca_file(key_path); }},
      {"settings.smtp_trust_store.ca_bundle_pem: holds no PEM certificate",
       [](v1::SmtpSettings* s) {
         s->mutable_smtp_trust_store()->set_ca_bundle_pem("not a certificate");
       }},
  };
  // The broker's key file is binary or base64: either way, no CA certificate.
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    v1::SmtpSettings settings = Settings();
    c.apply(&settings);
    absl::StatusOr<v1::TestConnectionReport> report = Test(settings);
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(report.status().message(), HasSubstr(c.field));
    EXPECT_EQ(tester_.runs, 0);
    EXPECT_FALSE(broker_->GetSettings().configured());
  }
}

// M2: a state file changed behind the broker's back is not used: the broker starts as if
// unconfigured, says why in a CRITICAL alarm, and saving settings again recovers.
TEST_F(BrokerTest, AnAlteredStateFileIsRefusedWithAnAlarm) {
  Configure(Settings());
  broker_.reset();
  std::string file;
  {
    std::FILE* in = std::fopen((dir_ + "/state.bin").c_str(), "rb");
    ASSERT_NE(in, nullptr);
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), in)) > 0) file.append(buffer, n);
    std::fclose(in);
  }
  file[file.size() / 2] ^= 0x20;
  {
    std::FILE* out = std::fopen((dir_ + "/state.bin").c_str(), "wb");
    ASSERT_NE(out, nullptr);
    std::fwrite(file.data(), 1, file.size(), out);
    std::fclose(out);
  }
  alarms_.raised.clear();
  StartBroker();
  EXPECT_FALSE(broker_->GetSettings().configured());
  ASSERT_EQ(alarms_.raised.size(), 1u);
  EXPECT_EQ(alarms_.raised[0].type(), mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED);
  EXPECT_EQ(alarms_.raised[0].severity(), mv1::ALARM_SEVERITY_CRITICAL);
  EXPECT_THAT(alarms_.raised[0].text(), HasSubstr("it was altered"));
  v1::GetAccessTokenRequest request;
  request.set_node("psn1");
  EXPECT_FALSE(broker_->GetAccessToken(request).ok());
  Configure(Settings());
  EXPECT_TRUE(broker_->GetSettings().configured());
}

// L13: days_left of a far-future expiry was an undefined conversion (INT32_MIN on x86).
TEST_F(BrokerTest, AFarFutureExpiryHasTheLargestDaysLeft) {
  Configure(Settings(absl::Hours(24) * 365 * 100000000));
  EXPECT_EQ(broker_->GetSettings().credential_status().days_left(),
            std::numeric_limits<int32_t>::max());
}

TEST_F(BrokerTest, BadSettingsNameTheField) {
  v1::SmtpSettings settings = Settings();
  settings.set_client_id("not-a-guid");
  settings.set_username("no at sign");
  settings.set_scope("https://graph.microsoft.com/.default");
  absl::StatusOr<v1::TestConnectionReport> report = Test(settings);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("settings.client_id"));
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("settings.username"));
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("settings.scope"));
  EXPECT_EQ(tester_.runs, 0);
  v1::SmtpSettings no_expiry = Settings();
  no_expiry.mutable_client_secret()->clear_expire_time();
  EXPECT_THAT(std::string(Test(no_expiry).status().message()),
              HasSubstr("settings.client_secret.expire_time"));
}

TEST_F(BrokerTest, TheSeedsScopeIsAccepted) {
  v1::SmtpSettings settings = Settings();
  settings.set_scope("https://outlook.office.com/.default");
  Configure(settings);
  EXPECT_THAT(transport_.requests().back().form_body,
              HasSubstr("scope=https%3A%2F%2Foutlook.office.com%2F.default"));
}

TEST_F(BrokerTest, ExpiryAlarmFiresOncePerLeadTime) {
  Configure(Settings(absl::Hours(24 * 40)));
  broker_->CheckSecretExpiry();
  EXPECT_TRUE(alarms_.raised.empty());
  clock_.Advance(absl::Hours(24 * 10));  // 30 days left
  broker_->CheckSecretExpiry();
  broker_->CheckSecretExpiry();
  ASSERT_EQ(alarms_.raised.size(), 1u);
  EXPECT_EQ(alarms_.raised[0].type(), mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  EXPECT_EQ(alarms_.raised[0].severity(), mv1::ALARM_SEVERITY_WARNING);
  EXPECT_THAT(alarms_.raised[0].text(), HasSubstr("SMTP OAuth Client Secret of app "));
  EXPECT_THAT(alarms_.raised[0].text(), HasSubstr("expires in 30 days"));
  EXPECT_THAT(alarms_.raised[0].text(), Not(HasSubstr(kSecret)));
  clock_.Advance(absl::Hours(24 * 16));  // 14 days left
  broker_->CheckSecretExpiry();
  ASSERT_EQ(alarms_.raised.size(), 2u);
  // Marks survive a restart: nothing fires twice.
  StartBroker();
  broker_->CheckSecretExpiry();
  EXPECT_EQ(alarms_.raised.size(), 2u);
  const v1::GetSecretStatusResponse status = broker_->GetSecretStatus();
  ASSERT_EQ(status.expiry_alarms_size(), 5);
  EXPECT_EQ(status.expiry_alarms(0).lead_days(), 30);
  EXPECT_TRUE(status.expiry_alarms(0).has_fire_time());
  EXPECT_TRUE(status.expiry_alarms(1).has_fire_time());
  EXPECT_FALSE(status.expiry_alarms(2).has_fire_time());
  EXPECT_EQ(status.credential_status().days_left(), 14);
  clock_.Advance(absl::Hours(24 * 14));  // expiry day
  broker_->CheckSecretExpiry();
  ASSERT_EQ(alarms_.raised.size(), 3u);
  EXPECT_EQ(alarms_.raised[2].severity(), mv1::ALARM_SEVERITY_CRITICAL);
  EXPECT_THAT(alarms_.raised[2].text(), HasSubstr("expired"));
  EXPECT_NE(alarms_.raised[1].idempotency_key(), alarms_.raised[2].idempotency_key());
  EXPECT_EQ(alarms_.raised[1].dedup_key(), alarms_.raised[2].dedup_key());
}

TEST_F(BrokerTest, ASecretEnteredLateRaisesOneAlarmNotThree) {
  Configure(Settings(absl::Hours(24 * 5)));
  ASSERT_EQ(alarms_.raised.size(), 1u);
  EXPECT_THAT(alarms_.raised[0].text(), HasSubstr("expires in 5 days"));
  EXPECT_THAT(alarms_.raised[0].idempotency_key(), ::testing::EndsWith("/7"));
}

TEST_F(BrokerTest, TokenEndpointFailureIsDiagnosedForRoleNodes) {
  Configure(Settings());
  StartBroker();
  transport_.EnqueueJson(401, R"({"error":"invalid_client","error_codes":[7000222]})");
  StartBroker();  // a new cache fetches and fails: the secret expired meanwhile
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken({});
  EXPECT_EQ(token.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(token.status()), "TOKEN_UNAVAILABLE");
  EXPECT_EQ(DiagnosisOf(token.status())->cause(), cv1::FAILURE_CAUSE_CLIENT_SECRET_EXPIRED);
}

TEST_F(BrokerTest, StatusShowsTheTokenItsHealthTheQuotaAndTheCredential) {
  namespace sv1 = ::mailroom::status::v1;
  sv1::GetNodeStatusResponse unconfigured;
  ASSERT_TRUE(broker_->FillStatus(&unconfigured).ok());
  EXPECT_FALSE(unconfigured.broker().configured());
  EXPECT_FALSE(unconfigured.token().held());
  EXPECT_EQ(unconfigured.broker().token_health(), sv1::TOKEN_HEALTH_STATE_UNSPECIFIED);

  Configure(Settings(absl::Hours(24 * 10)));
  ASSERT_TRUE(broker_->GetAccessToken({}).ok());
  clock_.Advance(absl::Minutes(10));
  ASSERT_TRUE(broker_->quota().Acquire("noreply@contoso.com", "psn1", "c1", {2}).ok());
  sv1::GetNodeStatusResponse response;
  ASSERT_TRUE(broker_->FillStatus(&response).ok());
  EXPECT_TRUE(response.broker().configured());
  EXPECT_EQ(response.broker().mailbox(), "noreply@contoso.com");
  EXPECT_EQ(response.broker().token_health(), sv1::TOKEN_HEALTH_STATE_HEALTHY);
  EXPECT_GE(response.broker().token_fetches(), 1);
  EXPECT_TRUE(response.token().held());
  EXPECT_TRUE(response.token().authentication());
  EXPECT_EQ(FromProto(response.token().lifetime()), absl::Hours(1));
  EXPECT_EQ(FromProto(response.token().age()), absl::Minutes(10));
  EXPECT_EQ(response.token().last_error(), "");
  ASSERT_EQ(response.broker().mailboxes_size(), 1);
  EXPECT_EQ(response.broker().mailboxes(0).mailbox(), "noreply@contoso.com");
  EXPECT_EQ(response.broker().mailboxes(0).outstanding_permits(), 1);
  EXPECT_EQ(response.broker().secret().credential_status().days_left(), 9);
  // No token and no secret in the answer, in any form.
  EXPECT_THAT(response.DebugString(), Not(HasSubstr("tok-1")));
  EXPECT_THAT(response.DebugString(), Not(HasSubstr(kSecret)));
}

// Issue 11: a revoked secret is heard at the first failed refresh, and a new secret saved
// clears it — and the replaced secret's expiry alarm with it.
TEST_F(BrokerTest, ARefusedSecretRaisesTokenAcquisitionFailedAndANewSecretClearsIt) {
  Configure(Settings(absl::Hours(24 * 20)));  // raises the 30-day expiry alarm
  // The expiry alarm, and the clear that the first healthy token sends (from the refresher).
  for (int i = 0; i < 5000 && alarms_.Events().size() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(alarms_.Events().size(), 2u);
  transport_.EnqueueJson(401, R"({"error":"invalid_client","error_codes":[7000215],)"
                              R"("error_description":"AADSTS7000215: Invalid client secret )"
                              R"(provided."})");
  StartBroker();  // a new cache fetches at once and is refused
  auto raised_token_alarm = [this] {
    absl::MutexLock lock(&alarms_.mu);
    for (const RaiseAlarmRequest& alarm : alarms_.raised) {
      if (alarm.dedup_key() == "token-acquisition") return alarm;
    }
    return RaiseAlarmRequest();
  };
  for (int i = 0; i < 5000 && raised_token_alarm().dedup_key().empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  const RaiseAlarmRequest alarm = raised_token_alarm();
  EXPECT_EQ(alarm.type(), mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED);
  EXPECT_EQ(alarm.severity(), mv1::ALARM_SEVERITY_CRITICAL);  // no token was left to serve
  EXPECT_THAT(alarm.text(), HasSubstr("Invalid client secret (AADSTS7000215"));
  EXPECT_THAT(alarm.text(), HasSubstr("cannot be emailed through noreply@contoso.com"));
  EXPECT_THAT(alarm.text(), Not(HasSubstr(kSecret)));
  EXPECT_EQ(alarm.diagnosis().cause(), cv1::FAILURE_CAUSE_INVALID_CLIENT_SECRET);

  transport_.EnqueueJson(200, R"({"token_type":"Bearer","expires_in":3600,"access_token":"tok-2"})");
  v1::SmtpSettings renewed = Settings(absl::Hours(24 * 700));
  renewed.mutable_client_secret()->set_secret("a-new-secret-value");
  clock_.Advance(absl::Minutes(10));  // past the refused fetch's backoff
  Configure(renewed);
  std::vector<std::string> events;
  for (int i = 0; i < 5000; ++i) {
    events = alarms_.Events();
    if (events.back() == "clear token-acquisition") break;
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_THAT(events, ::testing::Contains("clear client-secret-expiry/"
                                          "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"));
  EXPECT_EQ(events.back(), "clear token-acquisition");
}

// Issue 11: a 5.2.0 pauses the mailbox cluster-wide and says until when, once per pause; an
// admin can end it early; a pause that runs out clears its alarm by itself.
TEST_F(BrokerTest, AQuotaExceededReplyPausesRaisesOnceAndResumeClears) {
  Configure(Settings());
  auto send_one = [this](const std::string& node, v1::SendOutcome outcome) {
    absl::StatusOr<v1::AcquireSendPermitResponse> permit =
        broker_->quota().Acquire("noreply@contoso.com", node, "c1", {1});
    EXPECT_TRUE(permit.ok() && permit->granted()) << permit.status();
    v1::ReportSendResultRequest report;
    report.set_permit_id(permit.ok() ? permit->permit_id() : "");
    v1::SendResult* result = report.add_results();
    result->set_outcome(outcome);
    result->set_reply_code(554);
    result->set_reply_text("5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException");
    report.set_connection_closed(true);
    return broker_->ReportSendResult(node, report);
  };
  auto quota_alarms = [this] {
    std::vector<RaiseAlarmRequest> found;
    absl::MutexLock lock(&alarms_.mu);
    for (const RaiseAlarmRequest& alarm : alarms_.raised) {
      if (alarm.type() == mv1::ALARM_TYPE_SEND_QUOTA_EXCEEDED) found.push_back(alarm);
    }
    return found;
  };
  ASSERT_TRUE(send_one("psn1", v1::SEND_OUTCOME_DELIVERED).ok());
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<v1::ReportSendResultResponse> reported =
      send_one("psn1", v1::SEND_OUTCOME_QUOTA_EXCEEDED);
  ASSERT_TRUE(reported.ok()) << reported.status();
  // The oldest send of the rolling day was an hour ago: the day rolls over in 23 hours.
  const absl::Time until = clock_.Now() + absl::Hours(23);
  EXPECT_EQ(FromProto(reported->mailbox_paused_until()), until);
  ASSERT_EQ(quota_alarms().size(), 1u);
  const RaiseAlarmRequest alarm = quota_alarms()[0];
  EXPECT_EQ(alarm.severity(), mv1::ALARM_SEVERITY_CRITICAL);
  EXPECT_EQ(alarm.dedup_key(), "send-quota/noreply@contoso.com");
  EXPECT_THAT(alarm.text(), HasSubstr("paused on every node until " +
                                      absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", until,
                                                       absl::UTCTimeZone())));
  EXPECT_THAT(alarm.text(), HasSubstr("mailroomctl quota resume noreply@contoso.com"));
  EXPECT_THAT(alarm.text(), HasSubstr("SubmissionQuotaExceeded"));
  // Another node is told no; nothing new is raised for the same pause.
  absl::StatusOr<v1::AcquireSendPermitResponse> refused =
      broker_->quota().Acquire("noreply@contoso.com", "psn2", "c1", {1});
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->granted());
  EXPECT_EQ(refused->denial_reason(), v1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED);
  EXPECT_EQ(quota_alarms().size(), 1u);

  // The admin fixed the cause and resumes.
  v1::ResumeMailboxRequest resume;
  resume.set_mailbox("noreply@contoso.com");
  resume.set_reason("runaway sponsor script stopped");
  absl::StatusOr<v1::ResumeMailboxResponse> resumed = broker_->ResumeMailbox(resume, "admin");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->was_paused());
  EXPECT_FALSE(resumed->quota().has_paused_until());
  EXPECT_TRUE(broker_->quota().Acquire("noreply@contoso.com", "psn2", "c2", {1})->granted());
  EXPECT_THAT(alarms_.Events(), ::testing::Contains("clear send-quota/noreply@contoso.com"));
  resume.set_mailbox("other@contoso.com");
  EXPECT_EQ(broker_->ResumeMailbox(resume, "admin").status().code(), absl::StatusCode::kNotFound);
  resume.clear_mailbox();
  EXPECT_EQ(broker_->ResumeMailbox(resume, "admin").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BrokerTest, APauseThatRunsOutClearsItsAlarm) {
  Configure(Settings());
  absl::StatusOr<v1::AcquireSendPermitResponse> permit =
      broker_->quota().Acquire("noreply@contoso.com", "psn1", "c1", {1});
  ASSERT_TRUE(permit.ok());
  v1::ReportSendResultRequest report;
  report.set_permit_id(permit->permit_id());
  report.add_results()->set_outcome(v1::SEND_OUTCOME_QUOTA_EXCEEDED);
  ASSERT_TRUE(broker_->ReportSendResult("psn1", report).ok());
  const absl::Time until = broker_->quota().PausedUntil("noreply@contoso.com");
  ASSERT_GT(until, clock_.Now());
  EXPECT_EQ(broker_->CheckPauses(), until);
  clock_.Advance(until - clock_.Now());
  EXPECT_EQ(broker_->CheckPauses(), absl::InfiniteFuture());
  EXPECT_THAT(alarms_.Events(), ::testing::Contains("clear send-quota/noreply@contoso.com"));
}

// ---- The proxy (issue 11, item 3)

constexpr char kProxyPassword[] = "Pr0xy-S3cret!pass";

class BrokerProxyTest : public BrokerTest {
 protected:
  // Writes `content` to dir_/NAME with `mode`; returns the path.
  std::string WriteFile(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::FILE* file = std::fopen(path.c_str(), "w");
    std::fwrite(content.data(), 1, content.size(), file);
    std::fclose(file);
    chmod(path.c_str(), mode);
    return path;
  }

  v1::SmtpSettings WithProxy(const std::string& url, const std::string& credentials_file) {
    v1::SmtpSettings settings = Settings();
    settings.mutable_proxy()->set_url(url);
    settings.mutable_proxy()->set_credentials_file(credentials_file);
    return settings;
  }

  std::string Credentials() {
    return WriteFile("proxy.credentials", absl::StrCat("mailroom-proxy:", kProxyPassword, "\n"));
  }
};

TEST_F(BrokerProxyTest, BadProxySettingsNameTheField) {
  struct Case {
    const char* field;
    std::function<void(v1::ProxySettings*)> apply;
  };
  const std::vector<Case> cases = {
      {"settings.proxy.url: must name the port",
       [](v1::ProxySettings* p) { p->set_url("http://proxy.contoso.com"); }},
      {"settings.proxy.url: must not carry a user name or password",
       [](v1::ProxySettings* p) { p->set_url("http://user:pw@proxy.contoso.com:3128"); }},
      {"settings.proxy.url: must start with http:// or https://",
       [](v1::ProxySettings* p) { p->set_url("socks5://proxy.contoso.com:1080"); }},
      {"settings.proxy.url: must be only scheme, host and port",
       [](v1::ProxySettings* p) { p->set_url("http://proxy.contoso.com:3128/path"); }},
      {"settings.proxy.url: must name the proxy's host",
       [](v1::ProxySettings* p) { p->set_url("http://:3128"); }},
      {"settings.proxy.url: must name the proxy's host",
       [](v1::ProxySettings* p) { p->set_url("http://fd00::1:3128"); }},
      {"settings.proxy.no_proxy[1]: must be",
       [](v1::ProxySettings* p) {
         p->set_url("http://proxy.contoso.com:3128");
         p->add_no_proxy("contoso.com");
         p->add_no_proxy("bad entry");
       }},
      {"settings.proxy.credentials_file: must be an absolute path",
       [](v1::ProxySettings* p) {
         p->set_url("http://proxy.contoso.com:3128");
         p->set_credentials_file("proxy.txt");
       }},
      {"settings.proxy.trust_store: is only for an https:// proxy",
       [](v1::ProxySettings* p) {
         p->set_url("http://proxy.contoso.com:3128");
         p->mutable_trust_store()->set_exclude_system_roots(true);
       }},
      {"settings.proxy.url: is required when",
       [](v1::ProxySettings* p) { p->add_no_proxy("contoso.com"); }},
      {"settings.proxy.credentials: is read by the broker from the file",
       [](v1::ProxySettings* p) {
         p->set_url("http://proxy.contoso.com:3128");
         p->set_credentials("user:typed-in");
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    v1::SmtpSettings settings = Settings();
    c.apply(settings.mutable_proxy());
    absl::StatusOr<v1::TestConnectionReport> report = Test(settings);
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(report.status().message()), HasSubstr(c.field));
  }
  EXPECT_EQ(tester_.runs, 0);
  for (const char* url : {"http://proxy.contoso.com:3128", "https://10.0.0.1:443/",
                          "http://[fd00::1]:8080"}) {
    EXPECT_TRUE(Test(WithProxy(url, "")).ok()) << url;
  }
}

TEST_F(BrokerProxyTest, CredentialsAreReadFromTheirFileAndNeverShownStoredOrLogged) {
  v1::SmtpSettings settings = WithProxy("http://proxy.contoso.com:3128", Credentials());
  settings.mutable_proxy()->add_no_proxy("internal.contoso.com");
  Configure(settings);
  const std::string credentials = absl::StrCat("mailroom-proxy:", kProxyPassword);
  EXPECT_EQ(tester_.last_settings.proxy().credentials(), credentials);

  const v1::GetSettingsResponse view = broker_->GetSettings();
  EXPECT_EQ(view.settings().proxy().url(), "http://proxy.contoso.com:3128");
  EXPECT_EQ(view.settings().proxy().credentials_file(), settings.proxy().credentials_file());
  EXPECT_THAT(view.SerializeAsString(), Not(HasSubstr(kProxyPassword)));
  EXPECT_THAT(view.DebugString(), Not(HasSubstr(kProxyPassword)));
  // Not in the state file either, sealed or not: the file is where the password lives.
  absl::StatusOr<absl::optional<SavedSettings>> stored = store_->Load();
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_TRUE((*stored)->settings.proxy().credentials().empty());
  EXPECT_EQ((*stored)->settings.proxy().credentials_file(), settings.proxy().credentials_file());
  // Registered with the redactor, also in the base64 form a Proxy-Authorization carries.
  const std::string line = absl::StrCat("pw ", kProxyPassword, " basic ",
                                        absl::Base64Escape(credentials));
  EXPECT_THAT(Redactor::Global().Redact(line), Not(HasSubstr(kProxyPassword)));
  EXPECT_THAT(Redactor::Global().Redact(line), Not(HasSubstr(absl::Base64Escape(credentials))));

  // Role nodes get the proxy with their token, and after a restart (the file read again).
  for (int round = 0; round < 2; ++round) {
    absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken({});
    ASSERT_TRUE(token.ok()) << token.status();
    EXPECT_EQ(token->smtp_proxy().url(), "http://proxy.contoso.com:3128");
    EXPECT_EQ(token->smtp_proxy().credentials(), credentials);
    StartBroker();
  }
}

TEST_F(BrokerProxyTest, RoleNodesGetNoProxyWhenTheSmtpHostBypassesIt) {
  v1::SmtpSettings settings = WithProxy("http://proxy.contoso.com:3128", Credentials());
  settings.mutable_proxy()->add_no_proxy("office365.com");
  Configure(settings);
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken({});
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_FALSE(token->has_smtp_proxy());
  EXPECT_THAT(token->SerializeAsString(), Not(HasSubstr(kProxyPassword)));
}

TEST_F(BrokerProxyTest, ACredentialsFileMustBeOneLineUserPasswordOnlyTheBrokerCanRead) {
  struct Case {
    std::string content;
    mode_t mode;
    const char* problem;
  };
  const std::string kMarker = "DO-NOT-ECHO-7f3a";
  const std::vector<Case> cases = {
      {absl::StrCat("user:", kMarker, "\n"), 0644, "has mode 0644"},
      {absl::StrCat("user:", kMarker, "\n"), 0604, "has mode 0604"},
      {absl::StrCat(kMarker, "\n"), 0600, "must hold one line \"user:password\""},
      {absl::StrCat(":", kMarker), 0600, "must hold one line"},
      {absl::StrCat("user:", kMarker, "\nsecond:line\n"), 0600, "must hold one line"},
      {absl::StrCat("user:", kMarker, "\x01\n"), 0600, "must hold one line"},
      {"", 0600, "must hold one line"},
      {absl::StrCat("user:", std::string(1100, 'x'), kMarker), 0600, "must hold one line"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.problem);
    const std::string path = WriteFile("bad.credentials", c.content, c.mode);
    absl::StatusOr<v1::TestConnectionReport> report =
        Test(WithProxy("http://proxy.contoso.com:3128", path));
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(report.status().message());
    EXPECT_THAT(message, HasSubstr("settings.proxy.credentials_file: "));
    EXPECT_THAT(message, HasSubstr(c.problem));
    EXPECT_THAT(message, Not(HasSubstr(kMarker)));
  }
  // The broker's own key (32 raw bytes, mode 0600) is no credentials file: it never leaves.
  absl::StatusOr<v1::TestConnectionReport> key =
      Test(WithProxy("http://proxy.contoso.com:3128", dir_ + "/broker.key"));
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(key.status().message()), Not(HasSubstr(key_)));
  // A FIFO would block a reader: refused at once, not waited on.
  const std::string fifo = dir_ + "/proxy.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(std::string(Test(WithProxy("http://proxy.contoso.com:3128", fifo)).status().message()),
              HasSubstr("is not a regular file"));
  absl::StatusOr<v1::TestConnectionReport> missing =
      Test(WithProxy("http://proxy.contoso.com:3128", dir_ + "/no-such-file"));
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("settings.proxy.credentials_file: cannot open"));
  EXPECT_EQ(tester_.runs, 0);
}

TEST_F(BrokerProxyTest, ChangingTheCredentialsFileAfterTheTestRequiresAnotherTest) {
  const std::string path = Credentials();
  const v1::SmtpSettings settings = WithProxy("http://proxy.contoso.com:3128", path);
  absl::StatusOr<v1::TestConnectionReport> report = Test(settings);
  ASSERT_TRUE(report.ok() && report->passed());
  WriteFile("proxy.credentials", "mailroom-proxy:another-password\n");
  EXPECT_EQ(ReasonOf(Save(settings, report->test_id()).status()), "TEST_CONNECTION_REQUIRED");
}

// H1 for the proxy: where the stored secret's requests go is its holder's decision, so a
// proxy change asks for the secret again; and the saved proxy credentials go only to the
// proxy they were saved with, whatever secret an update carries.
TEST_F(BrokerProxyTest, AProxyChangeNeedsTheSecretAgainAndTheSavedProxyPasswordStaysPut) {
  const std::string path = Credentials();
  Configure(WithProxy("http://proxy.contoso.com:3128", path));
  const int runs = tester_.runs;
  struct Change {
    const char* field;
    std::function<void(v1::SmtpSettings*)> apply;
  };
  const std::vector<Change> changes = {
      {"settings.proxy.url: differs from the saved settings, and the stored credential",
       [](v1::SmtpSettings* s) { s->mutable_proxy()->set_url("http://attacker.example:3128"); }},
      {"settings.proxy.url: differs", [](v1::SmtpSettings* s) { s->clear_proxy(); }},
      {"settings.proxy.credentials_file: differs",
       [this](v1::SmtpSettings* s) {
         s->mutable_proxy()->set_credentials_file(WriteFile("other.credentials", "u:p\n"));
       }},
  };
  for (const Change& change : changes) {
    SCOPED_TRACE(change.field);
    v1::SmtpSettings update = WithProxy("http://proxy.contoso.com:3128", path);
    update.clear_client_secret();
    change.apply(&update);
    absl::StatusOr<v1::TestConnectionReport> report = Test(update);
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(report.status().message()), HasSubstr(change.field));
  }
  EXPECT_EQ(tester_.runs, runs);

  // With a secret typed in (any secret: an admin may type a wrong one), the saved password
  // file still may not go to another proxy, by its path or another path to it.
  const std::string link = dir_ + "/link.credentials";
  ASSERT_EQ(symlink(path.c_str(), link.c_str()), 0);
  for (const std::string& named : {path, link, dir_ + "/./proxy.credentials"}) {
    SCOPED_TRACE(named);
    absl::StatusOr<v1::TestConnectionReport> report =
        Test(WithProxy("http://attacker.example:3128", named));
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(report.status().message()),
                HasSubstr("settings.proxy.url: differs from the saved settings, and the saved "
                          "proxy credentials"));
  }
  EXPECT_EQ(tester_.runs, runs);

  // What an admin moving to another proxy does: its own credentials file, and the secret.
  Configure(WithProxy("http://proxy2.contoso.com:8080",
                      WriteFile("proxy2.credentials", "mailroom:proxy-two\n")));
  EXPECT_EQ(broker_->GetSettings().settings().proxy().url(), "http://proxy2.contoso.com:8080");
  // The no_proxy list sends nothing anywhere new: it changes without the secret.
  v1::SmtpSettings bypass = broker_->GetSettings().settings();
  bypass.mutable_proxy()->add_no_proxy("office365.com");
  EXPECT_TRUE(Test(bypass).ok());
}

// Issue 13: the Graph transport's token comes from the same credential with Graph's scope,
// from a cache of its own (the SMTP token is not replaced), made on the first request.
TEST_F(BrokerTest, AGraphMailboxGetsAGraphTokenFromTheSameCredential) {
  v1::SmtpSettings settings = Settings();
  settings.set_transport(v1::MAIL_TRANSPORT_GRAPH);
  Configure(settings);
  v1::GetAccessTokenRequest smtp_request;
  smtp_request.set_node("psn1");
  absl::StatusOr<v1::GetAccessTokenResponse> smtp = broker_->GetAccessToken(smtp_request);
  ASSERT_TRUE(smtp.ok()) << smtp.status();
  EXPECT_EQ(smtp->transport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(smtp->graph_endpoint(), "https://graph.microsoft.com");
  // No Graph token is fetched before a node asks for one.
  for (const HttpRequest& request : transport_.requests()) {
    EXPECT_THAT(request.form_body, Not(HasSubstr("graph.microsoft.com")));
  }
  const int token_requests = transport_.request_count();

  transport_.EnqueueJson(200, R"({"token_type":"Bearer","expires_in":3600,"access_token":"graph-1"})");
  v1::GetAccessTokenRequest graph_request = smtp_request;
  graph_request.set_transport(v1::MAIL_TRANSPORT_GRAPH);
  absl::StatusOr<v1::GetAccessTokenResponse> graph = broker_->GetAccessToken(graph_request);
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ(graph->access_token(), "graph-1");
  EXPECT_THAT(transport_.requests().back().form_body,
              HasSubstr("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"));
  EXPECT_THAT(transport_.requests().back().form_body, HasSubstr("client_id=aaaaaaaa"));
  // Both stay cached: asking again fetches nothing.
  EXPECT_EQ(broker_->GetAccessToken(graph_request)->access_token(), "graph-1");
  EXPECT_EQ(broker_->GetAccessToken(smtp_request)->access_token(), smtp->access_token());
  EXPECT_EQ(transport_.request_count(), token_requests + 1);
  // A Graph token refused by Graph (401) is invalidated like an SMTP one (forced refreshes
  // are at least a minute apart).
  clock_.Advance(absl::Minutes(2));
  transport_.EnqueueJson(200, R"({"token_type":"Bearer","expires_in":3600,"access_token":"graph-2"})");
  v1::InvalidateAccessTokenRequest invalidate;
  invalidate.set_node("psn1");
  invalidate.set_token_fingerprint(graph->token_fingerprint());
  absl::StatusOr<v1::InvalidateAccessTokenResponse> invalidated =
      broker_->InvalidateAccessToken(invalidate);
  ASSERT_TRUE(invalidated.ok());
  EXPECT_TRUE(invalidated->invalidated());
  EXPECT_EQ(broker_->GetAccessToken(graph_request)->access_token(), "graph-2");
}

// SMTP with Graph fallback: a node's 535 5.7.139 moves the mailbox to Graph for every node at
// once (no token refresh: the token is good), raises the alarm with the fix, survives a broker
// restart in the sealed state, and a passed SMTP Test Connection moves it back.
TEST_F(BrokerTest, SmtpAuthDisabledMovesAFallbackMailboxToGraphUntilAnSmtpTestPasses) {
  v1::SmtpSettings settings = Settings();
  settings.set_transport(v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  Configure(settings);
  v1::GetAccessTokenRequest request;
  request.set_node("psn1");
  absl::StatusOr<v1::GetAccessTokenResponse> smtp = broker_->GetAccessToken(request);
  ASSERT_TRUE(smtp.ok()) << smtp.status();
  EXPECT_EQ(smtp->transport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_TRUE(smtp->graph_fallback());
  EXPECT_EQ(smtp->graph_endpoint(), "https://graph.microsoft.com");
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
  const int token_requests = transport_.request_count();

  clock_.Advance(absl::Minutes(5));
  v1::InvalidateAccessTokenRequest report = SmtpAuthDisabledReport(smtp->token_fingerprint());
  absl::StatusOr<v1::InvalidateAccessTokenResponse> answer =
      broker_->InvalidateAccessToken(report);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FALSE(answer->invalidated());
  EXPECT_EQ(transport_.request_count(), token_requests);
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(broker_->GetAccessToken(request)->transport(), v1::MAIL_TRANSPORT_GRAPH);
  {
    const std::vector<RaiseAlarmRequest> raised = FallbackAlarmsRaised();
    ASSERT_EQ(raised.size(), 1u);
    const RaiseAlarmRequest& alarm = raised[0];
    EXPECT_EQ(alarm.dedup_key(), "transport-fallback/noreply@contoso.com");
    EXPECT_EQ(alarm.diagnosis().cause(), cv1::FAILURE_CAUSE_SMTP_AUTH_DISABLED);
    EXPECT_THAT(alarm.text(), HasSubstr("psn1 got \"535 5.7.139"));
    EXPECT_THAT(alarm.text(), HasSubstr("Set-CASMailbox -Identity noreply@contoso.com "
                                        "-SmtpClientAuthenticationDisabled $false"));
  }
  std::vector<v1::MailboxQuota> quota = broker_->QuotaStatus("");
  ASSERT_EQ(quota.size(), 1u);
  EXPECT_EQ(quota[0].transport().transport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(quota[0].transport().since().seconds(), absl::ToUnixSeconds(clock_.Now()));
  // Another node still on SMTP reports it too: nothing more happens.
  report.set_node("pan");
  ASSERT_TRUE(broker_->InvalidateAccessToken(report).ok());
  EXPECT_EQ(FallbackAlarmsRaised().size(), 1u);

  // A restarted broker stays on Graph (the state is sealed with the settings).
  StartBroker();
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_GRAPH);
  ASSERT_TRUE(broker_->quota().Acquire("noreply@contoso.com", "psn1", "conn-0", {1})->granted());
  quota = broker_->QuotaStatus("");
  ASSERT_EQ(quota.size(), 1u);
  EXPECT_EQ(quota[0].transport().since().seconds(), absl::ToUnixSeconds(clock_.Now()));

  // The admin's Test Connection of the mailbox's SMTP passes: back to SMTP, the alarm cleared.
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<v1::TestConnectionReport> tested = Test(settings);
  ASSERT_TRUE(tested.ok() && tested->passed());
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_EQ(broker_->GetAccessToken(request)->transport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_THAT(alarms_.Events(),
              ::testing::Contains("clear transport-fallback/noreply@contoso.com"));
  quota = broker_->QuotaStatus("");
  ASSERT_EQ(quota.size(), 1u);
  EXPECT_THAT(quota[0].transport().reason(), HasSubstr("SMTP Test Connection of the mailbox passed"));
}

// Brokers elected through etcd: the effective transport rides in the sealed record, so a
// broker taking up what the leader saved (ReloadSettings) is on the same transport.
TEST_F(BrokerTest, ABrokerTakingUpTheLeadersRecordTakesUpItsTransport) {
  v1::SmtpSettings settings = Settings();
  settings.set_transport(v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  Configure(settings);
  SettingsStore leader(dir_ + "/state.bin", key_);
  absl::StatusOr<absl::optional<SavedSettings>> saved = leader.Load();
  ASSERT_TRUE(saved.ok() && saved->has_value());
  (*saved)->state.mutable_effective_transport()->set_transport(v1::MAIL_TRANSPORT_GRAPH);
  (*saved)->state.mutable_effective_transport()->set_reason("psn1 got 535 5.7.139");
  ASSERT_TRUE(leader.Save(**saved).ok());
  ASSERT_TRUE(broker_->ReloadSettings().ok());
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_GRAPH);
  (*saved)->state.mutable_effective_transport()->set_transport(v1::MAIL_TRANSPORT_SMTP);
  ASSERT_TRUE(leader.Save(**saved).ok());
  ASSERT_TRUE(broker_->ReloadSettings().ok());
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
}

TEST_F(BrokerTest, AnSmtpOutageMovesAFallbackMailboxOnlyOnceItLasts) {
  v1::SmtpSettings settings = Settings();
  settings.set_transport(v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  Configure(settings);
  auto report_refused = [&](const std::string& node) {
    absl::StatusOr<v1::AcquireSendPermitResponse> permit =
        broker_->quota().Acquire("noreply@contoso.com", node, "conn-0", {1});
    ASSERT_TRUE(permit.ok() && permit->granted());
    v1::ReportSendResultRequest request;
    request.set_permit_id(permit->permit_id());
    request.set_connection_closed(true);
    v1::SendResult* result = request.add_results();
    result->set_outcome(v1::SEND_OUTCOME_TRANSIENT_FAILURE);
    *result->mutable_diagnosis() = MakeDiagnosis(cv1::FAILURE_CAUSE_CONNECTION_REFUSED);
    ASSERT_TRUE(broker_->ReportSendResult(node, request).ok());
  };
  // A blip: five refusals within seconds.
  for (int i = 0; i < 5; ++i) {
    report_refused("psn1");
    clock_.Advance(absl::Seconds(2));
  }
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
  // It goes on for minutes, from several nodes: Graph.
  for (int i = 0; i < 4 && broker_->EffectiveTransport() == v1::MAIL_TRANSPORT_SMTP; ++i) {
    clock_.Advance(absl::Seconds(40));
    report_refused(i % 2 ? "psn1" : "pan");
  }
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_GRAPH);
  const std::vector<v1::MailboxQuota> quota = broker_->QuotaStatus("");
  ASSERT_EQ(quota.size(), 1u);
  EXPECT_THAT(quota[0].transport().reason(), HasSubstr("the SMTP endpoint was unreachable"));
}

TEST_F(BrokerTest, WithoutFallbackA5_7_139IsAnOrdinaryRefusedToken) {
  Configure(Settings());
  v1::GetAccessTokenRequest request;
  request.set_node("psn1");
  absl::StatusOr<v1::GetAccessTokenResponse> smtp = broker_->GetAccessToken(request);
  ASSERT_TRUE(smtp.ok());
  EXPECT_FALSE(smtp->graph_fallback());
  transport_.EnqueueJson(200, R"({"token_type":"Bearer","expires_in":3600,"access_token":"tok-2"})");
  v1::InvalidateAccessTokenRequest report;
  report.set_node("psn1");
  report.set_token_fingerprint(smtp->token_fingerprint());
  report.set_reply_text("535 5.7.139 Authentication unsuccessful");
  clock_.Advance(absl::Minutes(2));
  ASSERT_TRUE(broker_->InvalidateAccessToken(report)->invalidated());
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_EQ(broker_->GetAccessToken(request)->transport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_TRUE(FallbackAlarmsRaised().empty());
}

TEST_F(BrokerTest, GraphSettingsAreChecked) {
  v1::SmtpSettings settings = Settings();
  settings.set_transport(v1::MAIL_TRANSPORT_GRAPH);
  settings.set_graph_endpoint("http://graph.example.test");
  EXPECT_THAT(std::string(Test(settings).status().message()),
              HasSubstr("settings.graph_endpoint: must be an https:// URL"));
  settings.set_graph_endpoint("https://graph.microsoft.us");
  settings.set_use_authentication(false);
  EXPECT_THAT(std::string(Test(settings).status().message()),
              HasSubstr("settings.transport: GRAPH needs use_authentication"));
  settings = Settings();
  settings.set_transport(static_cast<v1::MailTransport>(7));
  EXPECT_THAT(std::string(Test(settings).status().message()),
              HasSubstr("settings.transport: must be SMTP, GRAPH or SMTP_WITH_GRAPH_FALLBACK"));
}

// Issue 13, the mailbox pool: the default mailbox plus alerts@ (2 messages a minute, 1
// connection) and guests@ (Graph, its own limits), alarms routed to alerts@ then the default.
class BrokerPoolTest : public BrokerTest {
 protected:
  v1::SmtpSettings PoolSettings() {
    v1::SmtpSettings settings = Settings();
    v1::PoolMailbox* alerts = settings.add_mailboxes();
    alerts->set_address("alerts@contoso.com");
    alerts->mutable_limits()->set_messages_per_minute(2);
    alerts->mutable_limits()->set_max_connections(1);
    alerts->add_send_as("ise-alarms@contoso.com");
    v1::PoolMailbox* guests = settings.add_mailboxes();
    guests->set_address("guests@contoso.com");
    guests->set_transport(v1::MAIL_TRANSPORT_GRAPH);
    guests->mutable_limits()->set_messages_per_minute(5);
    guests->add_send_as("@guests.contoso.com");
    for (const auto& [purpose, mailboxes] :
         std::vector<std::pair<cv1::MailPurpose, std::vector<std::string>>>{
             {cv1::MAIL_PURPOSE_ALARMS, {"alerts@contoso.com", "noreply@contoso.com"}},
             {cv1::MAIL_PURPOSE_GUEST_CREDENTIALS, {"guests@contoso.com"}}}) {
      v1::MailRoute* route = settings.add_routes();
      route->set_purpose(purpose);
      for (const std::string& mailbox : mailboxes) route->add_mailboxes(mailbox);
    }
    return settings;
  }

  // What BrokerService.AcquireSendPermit does: the mailbox named, then its ledger.
  absl::StatusOr<v1::AcquireSendPermitResponse> Acquire(const std::string& mailbox,
                                                        const std::string& connection_id,
                                                        int messages) {
    absl::StatusOr<std::string> box = broker_->SendingMailbox(mailbox);
    if (!box.ok()) return box.status();
    return broker_->quota().Acquire(*box, "psn1", connection_id, std::vector<int>(messages, 1));
  }

  // PoolSettings() with SMTP and Graph fallback for the default mailbox and alerts@, saved.
  void ConfigureFallbackPool() {
    v1::SmtpSettings settings = PoolSettings();
    settings.set_transport(v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
    settings.mutable_mailboxes(0)->set_transport(v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
    Configure(settings);
  }

  v1::MailboxQuota QuotaOf(const std::string& mailbox) {
    std::vector<v1::MailboxQuota> status = broker_->QuotaStatus(mailbox);
    return status.empty() ? v1::MailboxQuota() : status.front();
  }
};

TEST_F(BrokerPoolTest, APoolMailboxGetsTokensAndPermitsUnderItsOwnLimits) {
  Configure(PoolSettings());
  v1::GetAccessTokenRequest request;
  request.set_mailbox("Alerts@Contoso.com");
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken(request);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->mailbox(), "alerts@contoso.com");
  EXPECT_EQ(token->access_token(), "tok-1");  // the one credential's token
  EXPECT_EQ(token->transport(), v1::MAIL_TRANSPORT_SMTP);
  request.set_mailbox("guests@contoso.com");
  token = broker_->GetAccessToken(request);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->mailbox(), "guests@contoso.com");
  EXPECT_EQ(token->transport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(token->graph_endpoint(), "https://graph.microsoft.com");
  EXPECT_FALSE(token->graph_fallback());
  request.clear_mailbox();
  token = broker_->GetAccessToken(request);
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->mailbox(), "noreply@contoso.com");
  EXPECT_EQ(token->transport(), v1::MAIL_TRANSPORT_SMTP);

  // alerts@: 2 messages a minute and 1 connection, whatever the default mailbox allows.
  absl::StatusOr<v1::AcquireSendPermitResponse> permit = Acquire("alerts@contoso.com", "c1", 3);
  ASSERT_TRUE(permit.ok()) << permit.status();
  EXPECT_TRUE(permit->granted());
  EXPECT_EQ(permit->granted_messages(), 2);
  permit = Acquire("alerts@contoso.com", "c1", 1);
  ASSERT_TRUE(permit.ok());
  EXPECT_FALSE(permit->granted());
  EXPECT_EQ(permit->denial_reason(), v1::PERMIT_DENIAL_REASON_MESSAGE_RATE);
  permit = Acquire("alerts@contoso.com", "c2", 1);
  ASSERT_TRUE(permit.ok());
  EXPECT_FALSE(permit->granted());
  // The default mailbox and guests@ are counted apart.
  permit = Acquire("", "c1", 3);
  ASSERT_TRUE(permit.ok());
  EXPECT_EQ(permit->granted_messages(), 3);
  permit = Acquire("guests@contoso.com", "c9", 10);
  ASSERT_TRUE(permit.ok());
  EXPECT_EQ(permit->granted_messages(), 5);
  EXPECT_EQ(broker_->EffectiveTransport("guests@contoso.com"), v1::MAIL_TRANSPORT_GRAPH);

  v1::MailboxQuota alerts = QuotaOf("alerts@contoso.com");
  EXPECT_EQ(alerts.limits().messages_per_minute(), 2);
  EXPECT_EQ(alerts.limits().max_connections(), 1);
  EXPECT_EQ(alerts.messages_last_minute(), 2);
  EXPECT_EQ(alerts.transport().transport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_EQ(QuotaOf("noreply@contoso.com").limits().messages_per_minute(), 30);
  EXPECT_EQ(QuotaOf("guests@contoso.com").transport().transport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(broker_->QuotaStatus("").size(), 3u);
}

TEST_F(BrokerPoolTest, AQuotaExceededOnOneMailboxPausesItAloneWhileAnotherKeepsGranting) {
  Configure(PoolSettings());
  absl::StatusOr<v1::AcquireSendPermitResponse> permit = Acquire("alerts@contoso.com", "c1", 1);
  ASSERT_TRUE(permit.ok() && permit->granted());
  v1::ReportSendResultRequest report;
  report.set_permit_id(permit->permit_id());
  v1::SendResult* result = report.add_results();
  result->set_outcome(v1::SEND_OUTCOME_QUOTA_EXCEEDED);
  result->set_reply_code(554);
  result->set_reply_text("5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException");
  report.set_connection_closed(true);
  absl::StatusOr<v1::ReportSendResultResponse> reported = broker_->ReportSendResult("psn1", report);
  ASSERT_TRUE(reported.ok()) << reported.status();
  EXPECT_TRUE(reported->has_mailbox_paused_until());

  permit = Acquire("alerts@contoso.com", "c2", 1);
  ASSERT_TRUE(permit.ok());
  EXPECT_FALSE(permit->granted());
  EXPECT_EQ(permit->denial_reason(), v1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED);
  for (const char* other : {"", "noreply@contoso.com", "guests@contoso.com"}) {
    permit = Acquire(other, "c3", 1);
    ASSERT_TRUE(permit.ok());
    EXPECT_TRUE(permit->granted()) << other;
  }
  EXPECT_TRUE(QuotaOf("alerts@contoso.com").has_paused_until());
  EXPECT_FALSE(QuotaOf("noreply@contoso.com").has_paused_until());
  EXPECT_FALSE(QuotaOf("guests@contoso.com").has_paused_until());
  // The alarm names the paused mailbox, not the default one.
  std::vector<std::string> quota_alarms;
  {
    absl::MutexLock lock(&alarms_.mu);
    for (const RaiseAlarmRequest& alarm : alarms_.raised) {
      if (alarm.type() == mv1::ALARM_TYPE_SEND_QUOTA_EXCEEDED) {
        quota_alarms.push_back(alarm.dedup_key());
      }
    }
  }
  EXPECT_THAT(quota_alarms, ::testing::ElementsAre("send-quota/alerts@contoso.com"));

  v1::ResumeMailboxRequest resume;
  resume.set_mailbox("ALERTS@contoso.com");
  absl::StatusOr<v1::ResumeMailboxResponse> resumed = broker_->ResumeMailbox(resume, "admin");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->was_paused());
  EXPECT_EQ(resumed->quota().mailbox(), "alerts@contoso.com");
  EXPECT_TRUE(Acquire("alerts@contoso.com", "c4", 1)->granted());
}

TEST_F(BrokerPoolTest, AMailboxOutsideThePoolIsNotFoundNamingTheField) {
  Configure(PoolSettings());
  v1::GetAccessTokenRequest request;
  request.set_mailbox("ghost@contoso.com");
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken(request);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(token.status().message(), HasSubstr("mailbox: \"ghost@contoso.com\""));
  absl::StatusOr<v1::AcquireSendPermitResponse> permit = Acquire("ghost@contoso.com", "c1", 1);
  EXPECT_EQ(permit.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(permit.status().message(), HasSubstr("mailbox: "));
  v1::ResumeMailboxRequest resume;
  resume.set_mailbox("ghost@contoso.com");
  EXPECT_EQ(broker_->ResumeMailbox(resume, "admin").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(broker_->EffectiveTransport("ghost@contoso.com"), v1::MAIL_TRANSPORT_UNSPECIFIED);
}

TEST_F(BrokerPoolTest, SettingsSavedBeforeThePoolAreAPoolOfOne) {
  Configure(Settings());
  absl::StatusOr<std::string> box = broker_->SendingMailbox("");
  ASSERT_TRUE(box.ok());
  EXPECT_EQ(*box, "noreply@contoso.com");
  EXPECT_EQ(broker_->SendingMailbox("alerts@contoso.com").status().code(),
            absl::StatusCode::kNotFound);
  v1::ResolveMailRouteRequest route;
  route.set_purpose(cv1::MAIL_PURPOSE_ALARMS);
  route.set_from("anything@fabrikam.com");  // nothing declared: not checked
  absl::StatusOr<v1::ResolveMailRouteResponse> resolved = broker_->ResolveMailRoute(route);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_THAT(resolved->mailboxes(), ::testing::ElementsAre("noreply@contoso.com"));
  EXPECT_FALSE(resolved->routed());
  EXPECT_EQ(resolved->from_mailbox(), "noreply@contoso.com");
  EXPECT_EQ(broker_->QuotaStatus("").size(), 1u);
}

TEST_F(BrokerPoolTest, ThePoolIsSavedSealedReturnedAndKeptAcrossARestart) {
  Configure(PoolSettings());
  v1::GetSettingsResponse view = broker_->GetSettings();
  ASSERT_EQ(view.settings().mailboxes_size(), 2);
  EXPECT_EQ(view.settings().mailboxes(1).address(), "guests@contoso.com");
  EXPECT_EQ(view.settings().routes_size(), 2);
  StartBroker();
  absl::StatusOr<v1::AcquireSendPermitResponse> permit = Acquire("alerts@contoso.com", "c1", 5);
  ASSERT_TRUE(permit.ok()) << permit.status();
  EXPECT_EQ(permit->granted_messages(), 2);
}

TEST_F(BrokerPoolTest, AnInvalidPoolIsRefusedBeforeAnyTestStepNamingTheField) {
  v1::SmtpSettings settings = PoolSettings();
  settings.mutable_mailboxes(1)->set_send_as(0, "x");
  settings.mutable_routes(0)->add_mailboxes("ghost@contoso.com");
  absl::StatusOr<v1::TestConnectionReport> report = Test(settings);
  ASSERT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(report.status().message(),
              HasSubstr("settings.mailboxes[1].send_as[0]: \"x\" is not an address or @domain"));
  EXPECT_THAT(report.status().message(), HasSubstr("settings.routes[0].mailboxes[2]"));
  EXPECT_EQ(tester_.runs, 0);
}

TEST_F(BrokerPoolTest, RoutesAndTheFromCheck) {
  Configure(PoolSettings());
  v1::ResolveMailRouteRequest route;
  route.set_purpose(cv1::MAIL_PURPOSE_ALARMS);
  route.set_from("ise-alarms@contoso.com");
  absl::StatusOr<v1::ResolveMailRouteResponse> resolved = broker_->ResolveMailRoute(route);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_TRUE(resolved->routed());
  EXPECT_THAT(resolved->mailboxes(),
              ::testing::ElementsAre("alerts@contoso.com", "noreply@contoso.com"));
  EXPECT_EQ(resolved->from_mailbox(), "alerts@contoso.com");
  EXPECT_FALSE(resolved->settings_etag().empty());

  route.set_purpose(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS);
  route.set_from("lobby@guests.contoso.com");
  resolved = broker_->ResolveMailRoute(route);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->from_mailbox(), "guests@contoso.com");
  route.set_from("ise-alarms@contoso.com");  // alerts@ may send as it, but carries no guest mail
  resolved = broker_->ResolveMailRoute(route);
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(resolved.status().message(), HasSubstr("from: \"ise-alarms@contoso.com\""));
  EXPECT_THAT(resolved.status().message(), HasSubstr("guests@contoso.com"));

  route.set_purpose(cv1::MAIL_PURPOSE_REMINDERS);  // unrouted: the default mailbox
  route.clear_from();
  resolved = broker_->ResolveMailRoute(route);
  ASSERT_TRUE(resolved.ok());
  EXPECT_FALSE(resolved->routed());
  EXPECT_THAT(resolved->mailboxes(), ::testing::ElementsAre("noreply@contoso.com"));
}

TEST_F(BrokerPoolTest, TestConnectionOfAPoolMailboxRunsAsThatMailboxByItsTransport) {
  Configure(PoolSettings());
  const int runs = tester_.runs;
  v1::TestConnectionRequest request;  // the saved settings
  request.set_mailbox("ALERTS@contoso.com");
  request.mutable_test_recipient()->set_address("admin@contoso.com");
  absl::StatusOr<v1::TestConnectionReport> report =
      broker_->TestConnection(request, [](const v1::TestStep&) {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->passed());
  EXPECT_EQ(report->mailbox(), "alerts@contoso.com");
  // The XOAUTH2 user and the envelope sender are the settings' username to the tester.
  EXPECT_EQ(tester_.last_settings.username(), "alerts@contoso.com");
  EXPECT_EQ(tester_.last_settings.transport(), v1::MAIL_TRANSPORT_SMTP);
  // Its connection and test message are counted in that mailbox's ledger.
  EXPECT_EQ(QuotaOf("alerts@contoso.com").messages_last_minute(), 1);
  EXPECT_EQ(QuotaOf("noreply@contoso.com").messages_last_minute(), 0);
  // A pool mailbox's test saves no settings: they are saved on their default mailbox's test.
  absl::StatusOr<v1::UpdateSettingsResponse> saved = Save(PoolSettings(), report->test_id());
  EXPECT_EQ(saved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(saved.status().message(), HasSubstr("that Test Connection tested a pool mailbox"));

  request.set_mailbox("guests@contoso.com");  // Graph: users/guests@contoso.com
  request.clear_test_recipient();
  report = broker_->TestConnection(request, [](const v1::TestStep&) {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->mailbox(), "guests@contoso.com");
  EXPECT_EQ(tester_.last_settings.username(), "guests@contoso.com");
  EXPECT_EQ(tester_.last_settings.transport(), v1::MAIL_TRANSPORT_GRAPH);

  request.clear_mailbox();
  report = broker_->TestConnection(request, [](const v1::TestStep&) {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->mailbox(), "noreply@contoso.com");
  EXPECT_EQ(tester_.last_settings.username(), "noreply@contoso.com");
  EXPECT_EQ(tester_.runs, runs + 3);
}

TEST_F(BrokerPoolTest, TestConnectionOfAMailboxOutsideThePoolIsNotFoundNamingTheField) {
  Configure(PoolSettings());
  const int runs = tester_.runs;
  v1::TestConnectionRequest request;
  request.set_mailbox("ghost@contoso.com");
  absl::StatusOr<v1::TestConnectionReport> report =
      broker_->TestConnection(request, [](const v1::TestStep&) {});
  EXPECT_EQ(report.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(report.status().message(), HasSubstr("mailbox: \"ghost@contoso.com\""));
  // Given settings: their pool, not the saved one's.
  v1::SmtpSettings without_alerts = Settings();
  request.set_mailbox("alerts@contoso.com");
  *request.mutable_settings() = without_alerts;
  report = broker_->TestConnection(request, [](const v1::TestStep&) {});
  EXPECT_EQ(report.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tester_.runs, runs);
}

// SMTP with Graph fallback per mailbox: what is reported for a pool mailbox moves that mailbox
// only, raises its own alarm, and its own Test Connection moves it back.
TEST_F(BrokerPoolTest, SmtpAuthDisabledMovesOnlyThatPoolMailboxToGraphUntilItsSmtpTestPasses) {
  ConfigureFallbackPool();
  v1::GetAccessTokenRequest request;
  request.set_node("psn1");
  request.set_mailbox("alerts@contoso.com");
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken(request);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->transport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_TRUE(token->graph_fallback());
  EXPECT_EQ(token->graph_endpoint(), "https://graph.microsoft.com");

  clock_.Advance(absl::Minutes(5));
  absl::StatusOr<v1::InvalidateAccessTokenResponse> answer =
      broker_->InvalidateAccessToken(
          SmtpAuthDisabledReport(token->token_fingerprint(), "Alerts@contoso.com"));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FALSE(answer->invalidated());
  EXPECT_EQ(broker_->EffectiveTransport("alerts@contoso.com"), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_EQ(broker_->GetAccessToken(request)->transport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(QuotaOf("alerts@contoso.com").transport().transport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(QuotaOf("noreply@contoso.com").transport().transport(), v1::MAIL_TRANSPORT_SMTP);
  {
    const std::vector<RaiseAlarmRequest> raised = FallbackAlarmsRaised();
    ASSERT_EQ(raised.size(), 1u);
    EXPECT_EQ(raised[0].dedup_key(), "transport-fallback/alerts@contoso.com");
    EXPECT_THAT(raised[0].text(), HasSubstr("Mail from alerts@contoso.com now goes out through "
                                            "Microsoft Graph"));
    EXPECT_THAT(raised[0].text(), HasSubstr("Set-CASMailbox -Identity alerts@contoso.com "
                                            "-SmtpClientAuthenticationDisabled $false"));
    EXPECT_THAT(raised[0].text(),
                HasSubstr("mailroomctl settings test mailbox=alerts@contoso.com --to=ADDRESS"));
  }

  // A restarted broker keeps alerts@ on Graph and the default mailbox on SMTP.
  StartBroker();
  EXPECT_EQ(broker_->EffectiveTransport("alerts@contoso.com"), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);

  // A passed test of another mailbox does not move it back; its own does.
  clock_.Advance(absl::Hours(1));
  v1::TestConnectionRequest test;
  absl::StatusOr<v1::TestConnectionReport> tested =
      broker_->TestConnection(test, [](const v1::TestStep&) {});
  ASSERT_TRUE(tested.ok() && tested->passed());
  EXPECT_EQ(broker_->EffectiveTransport("alerts@contoso.com"), v1::MAIL_TRANSPORT_GRAPH);
  test.set_mailbox("alerts@contoso.com");
  tested = broker_->TestConnection(test, [](const v1::TestStep&) {});
  ASSERT_TRUE(tested.ok() && tested->passed());
  EXPECT_EQ(tester_.last_settings.username(), "alerts@contoso.com");
  EXPECT_EQ(tester_.last_settings.transport(), v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  EXPECT_EQ(broker_->EffectiveTransport("alerts@contoso.com"), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_EQ(broker_->GetAccessToken(request)->transport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_THAT(alarms_.Events(),
              ::testing::Contains("clear transport-fallback/alerts@contoso.com"));
  EXPECT_THAT(QuotaOf("alerts@contoso.com").transport().reason(),
              HasSubstr("SMTP Test Connection of the mailbox passed"));
}

TEST_F(BrokerPoolTest, AnSmtpOutageReportedForAPoolMailboxMovesThatMailboxOnly) {
  ConfigureFallbackPool();
  for (int i = 0; i < 6 && broker_->EffectiveTransport("alerts@contoso.com") ==
                               v1::MAIL_TRANSPORT_SMTP; ++i) {
    absl::StatusOr<v1::AcquireSendPermitResponse> permit =
        Acquire("alerts@contoso.com", absl::StrCat("c", i), 1);
    ASSERT_TRUE(permit.ok() && permit->granted()) << permit.status();
    v1::ReportSendResultRequest report;
    report.set_permit_id(permit->permit_id());
    report.set_connection_closed(true);
    v1::SendResult* result = report.add_results();
    result->set_outcome(v1::SEND_OUTCOME_TRANSIENT_FAILURE);
    *result->mutable_diagnosis() = MakeDiagnosis(cv1::FAILURE_CAUSE_CONNECTION_REFUSED);
    ASSERT_TRUE(broker_->ReportSendResult("psn1", report).ok());
    clock_.Advance(absl::Seconds(40));
  }
  EXPECT_EQ(broker_->EffectiveTransport("alerts@contoso.com"), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_THAT(QuotaOf("alerts@contoso.com").transport().reason(),
              HasSubstr("the SMTP endpoint was unreachable"));
}

// The default mailbox's state where the broker before per-mailbox fallback kept it (a record
// without pool_effective_transports) loads as before; a pool mailbox's rides in the same sealed
// record to a broker taking it up (ReloadSettings, as from etcd).
TEST_F(BrokerPoolTest, TheOldRecordLoadsAndPoolMailboxStatesRideInTheRecord) {
  ConfigureFallbackPool();
  SettingsStore leader(dir_ + "/state.bin", key_);
  absl::StatusOr<absl::optional<SavedSettings>> saved = leader.Load();
  ASSERT_TRUE(saved.ok() && saved->has_value());
  internal::BrokerState& state = (*saved)->state;
  EXPECT_EQ(state.pool_effective_transports_size(), 0);  // all on SMTP since the save
  state.mutable_effective_transport()->set_transport(v1::MAIL_TRANSPORT_GRAPH);
  state.mutable_effective_transport()->set_reason("psn1 got 535 5.7.139");
  ASSERT_TRUE(leader.Save(**saved).ok());
  StartBroker();
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(QuotaOf("noreply@contoso.com").transport().reason(), "psn1 got 535 5.7.139");
  EXPECT_EQ(broker_->EffectiveTransport("alerts@contoso.com"), v1::MAIL_TRANSPORT_SMTP);

  v1::EffectiveTransport graph;
  graph.set_transport(v1::MAIL_TRANSPORT_GRAPH);
  graph.set_reason("pan got 535 5.7.139");
  (*state.mutable_pool_effective_transports())["alerts@contoso.com"] = graph;
  state.mutable_effective_transport()->set_transport(v1::MAIL_TRANSPORT_SMTP);
  ASSERT_TRUE(leader.Save(**saved).ok());
  ASSERT_TRUE(broker_->ReloadSettings().ok());
  EXPECT_EQ(broker_->EffectiveTransport("alerts@contoso.com"), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(QuotaOf("alerts@contoso.com").transport().reason(), "pan got 535 5.7.139");
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
}

// SMTP AUTH disabled for a pool mailbox without fallback, reported with its token or with a send
// result, never moves the default mailbox to Graph.
TEST_F(BrokerPoolTest, SmtpAuthDisabledOnAPoolMailboxLeavesTheDefaultOnSmtp) {
  v1::SmtpSettings settings = PoolSettings();
  settings.set_transport(v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  Configure(settings);
  const std::string disabled = kSmtpAuthDisabled;
  v1::GetAccessTokenRequest request;
  request.set_mailbox("alerts@contoso.com");
  absl::StatusOr<v1::GetAccessTokenResponse> token = broker_->GetAccessToken(request);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_FALSE(token->graph_fallback());
  v1::InvalidateAccessTokenRequest invalidate =
      SmtpAuthDisabledReport(token->token_fingerprint(), "alerts@contoso.com");
  const int token_requests = transport_.request_count();
  absl::StatusOr<v1::InvalidateAccessTokenResponse> answer =
      broker_->InvalidateAccessToken(invalidate);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_FALSE(answer->invalidated());  // the token is good: no refresh
  EXPECT_EQ(transport_.request_count(), token_requests);
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);

  absl::StatusOr<v1::AcquireSendPermitResponse> permit = Acquire("alerts@contoso.com", "c1", 1);
  ASSERT_TRUE(permit.ok() && permit->granted());
  v1::ReportSendResultRequest report;
  report.set_permit_id(permit->permit_id());
  report.add_results()->set_reply_text(disabled);
  report.mutable_results(0)->set_outcome(v1::SEND_OUTCOME_PERMANENT_FAILURE);
  ASSERT_TRUE(broker_->ReportSendResult("psn1", report).ok());
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_TRUE(FallbackAlarmsRaised().empty());

  // The same from the default mailbox moves it.
  invalidate.clear_mailbox();
  ASSERT_TRUE(broker_->InvalidateAccessToken(invalidate).ok());
  EXPECT_EQ(broker_->EffectiveTransport(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(broker_->EffectiveTransport("alerts@contoso.com"), v1::MAIL_TRANSPORT_SMTP);
}

}  // namespace
}  // namespace mailroom::broker
