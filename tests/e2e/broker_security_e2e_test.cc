// The secret lives on the broker only: with the real broker at TRACE logging serving a PSN
// and an admin, the client secret appears in no log line, no RPC response and no file in the
// clear; tokens appear in no log line. And the broker refuses whoever should be refused: a
// client without a certificate, one from another CA, plaintext, a PSN calling admin RPCs, an
// admin asking for tokens, and a node speaking for another node. An admin cannot point the
// stored secret, or a token bought with it, at an endpoint of its choosing.
#include <dirent.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::Testbed;
using ::testing::HasSubstr;
using ::testing::Not;

grpc::ClientContext* WithDeadline(grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return context;
}

class BrokerSecurityE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker psn1:psn psn2:psn admin:admin"));
    foreign_ = new std::string(
        mailroom::testing::MakeTestCerts("foreign", "another CA", "psn1:psn admin:admin"));
    dir_ = new std::string(absl::StrCat(getenv("TEST_TMPDIR"), "/broker"));
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker =
        BrokerHarness::Start(*dir_, *certs_, *testbed_);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    ASSERT_TRUE(broker_->Configure(BrokerHarness::TestbedSettings(*testbed_)).ok());
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete testbed_;
  }

  static std::shared_ptr<grpc::Channel> Channel(std::shared_ptr<grpc::ChannelCredentials> creds) {
    return grpc::CreateChannel(broker_->target(), creds);
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static std::string* foreign_;
  static std::string* dir_;
  static BrokerHarness* broker_;
};

Testbed* BrokerSecurityE2eTest::testbed_ = nullptr;
std::string* BrokerSecurityE2eTest::certs_ = nullptr;
std::string* BrokerSecurityE2eTest::foreign_ = nullptr;
std::string* BrokerSecurityE2eTest::dir_ = nullptr;
BrokerHarness* BrokerSecurityE2eTest::broker_ = nullptr;

TEST_F(BrokerSecurityE2eTest, TheSecretIsInNoLogNoResponseAndNoFileInTheClear) {
  const std::string secret = testbed_->Env("CLIENT_SECRET");
  ASSERT_GE(secret.size(), 8u);
  std::vector<std::string> responses;
  std::vector<std::string> tokens;

  auto psn = broker_->StubAs("psn1");
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext context;
    v1::GetAccessTokenRequest request;
    request.set_node("psn1");
    v1::GetAccessTokenResponse response;
    ASSERT_TRUE(psn->GetAccessToken(WithDeadline(&context), request, &response).ok());
    tokens.push_back(response.access_token());
    responses.push_back(response.DebugString());
  }
  {
    grpc::ClientContext context;
    v1::AcquireSendPermitRequest request;
    request.set_node("psn1");
    request.set_connection_id("c1");
    request.add_message_recipient_counts(1);
    v1::AcquireSendPermitResponse response;
    ASSERT_TRUE(psn->AcquireSendPermit(WithDeadline(&context), request, &response).ok());
    responses.push_back(response.DebugString());
  }
  for (const std::string& node : {"psn1", "admin"}) {
    grpc::ClientContext context;
    v1::GetSecretStatusResponse response;
    ASSERT_TRUE(broker_->StubAs(node)->GetSecretStatus(WithDeadline(&context), {}, &response).ok());
    responses.push_back(response.DebugString());
  }
  {
    grpc::ClientContext context;
    v1::GetSettingsResponse response;
    ASSERT_TRUE(broker_->StubAs("admin")->GetSettings(WithDeadline(&context), {}, &response).ok());
    EXPECT_TRUE(response.credential_status().is_set());
    responses.push_back(response.DebugString());
  }
  {
    // Test Connection on the saved settings, and on settings with the secret left out (kept).
    v1::SmtpSettings keep = BrokerHarness::TestbedSettings(*testbed_);
    keep.mutable_client_secret()->clear_secret();
    absl::StatusOr<v1::TestConnectionReport> report = broker_->TestConnection(keep, "sec@example.test");
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_TRUE(report->passed()) << report->DebugString();
    responses.push_back(report->DebugString());
    // A near miss of the secret under test must not be logged either.
    v1::SmtpSettings near_miss = BrokerHarness::TestbedSettings(*testbed_);
    near_miss.mutable_client_secret()->set_secret(secret + "x");
    report = broker_->TestConnection(near_miss);
    ASSERT_TRUE(report.ok());
    EXPECT_FALSE(report->passed());
    responses.push_back(report->DebugString());
  }

  const std::string log = mailroom::testing::ReadAll(broker_->log_path());
  ASSERT_THAT(log, HasSubstr("TRACE"));  // the most verbose level was really on
  const std::string forms[] = {secret, absl::Base64Escape(secret)};
  for (const std::string& form : forms) {
    EXPECT_THAT(log, Not(HasSubstr(form)));
    for (const std::string& response : responses) EXPECT_THAT(response, Not(HasSubstr(form)));
  }
  for (const std::string& token : tokens) EXPECT_THAT(log, Not(HasSubstr(token)));

  // The saved settings are on disk, the secret only sealed.
  DIR* data = opendir(absl::StrCat(*dir_, "/data").c_str());
  ASSERT_NE(data, nullptr);
  int files = 0;
  while (dirent* entry = readdir(data)) {
    if (entry->d_name[0] == '.') continue;
    ++files;
    const std::string content =
        mailroom::testing::ReadAll(absl::StrCat(*dir_, "/data/", entry->d_name));
    EXPECT_THAT(content, Not(HasSubstr(secret))) << entry->d_name;
  }
  closedir(data);
  EXPECT_GE(files, 2);  // the state file and its key
}

TEST_F(BrokerSecurityE2eTest, ClientWithoutCertificateIsRefused) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *ReadFileToString(absl::StrCat(*certs_, "/ca.pem"));
  auto stub = v1::TokenBroker::NewStub(Channel(grpc::SslCredentials(options)));
  grpc::ClientContext context;
  v1::GetAccessTokenResponse response;
  const grpc::Status status = stub->GetAccessToken(WithDeadline(&context), {}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(response.access_token().empty());
}

TEST_F(BrokerSecurityE2eTest, CertificateFromAnotherCaIsRefused) {
  for (const std::string node : {"psn1", "admin"}) {
    TlsFiles files{absl::StrCat(*certs_, "/ca.pem"), absl::StrCat(*foreign_, "/", node, ".pem"),
                   absl::StrCat(*foreign_, "/", node, ".key")};
    auto stub = v1::TokenBroker::NewStub(Channel(*MakeChannelCredentials(files, Role::kBroker)));
    grpc::ClientContext context;
    v1::GetSettingsResponse response;
    const grpc::Status status = stub->GetSettings(WithDeadline(&context), {}, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << node;
    EXPECT_FALSE(response.configured());
  }
}

TEST_F(BrokerSecurityE2eTest, PlaintextIsRefused) {
  auto stub = v1::TokenBroker::NewStub(Channel(grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  v1::GetAccessTokenResponse response;
  EXPECT_EQ(stub->GetAccessToken(WithDeadline(&context), {}, &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(BrokerSecurityE2eTest, PsnCannotCallAdminRpcs) {
  auto psn = broker_->StubAs("psn1");
  {
    grpc::ClientContext context;
    v1::GetSettingsResponse response;
    const absl::Status status =
        FromGrpcStatus(psn->GetSettings(WithDeadline(&context), {}, &response));
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(ReasonOf(status), "ROLE_NOT_ALLOWED");
    EXPECT_FALSE(response.configured());
  }
  {
    grpc::ClientContext context;
    v1::UpdateSettingsRequest request;
    *request.mutable_settings() = BrokerHarness::TestbedSettings(*testbed_);
    v1::UpdateSettingsResponse response;
    EXPECT_EQ(psn->UpdateSettings(WithDeadline(&context), request, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    v1::TestConnectionRequest request;
    auto reader = psn->TestConnection(WithDeadline(&context), request);
    v1::TestConnectionResponse event;
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
}

// H1: Test Connection with a changed destination and no credential would have had the broker
// POST client_secret=<stored> to the new authority, or present a fresh token to the new SMTP
// host. The broker refuses, naming the field, and the listener standing in for the attacker
// hears nothing.
TEST_F(BrokerSecurityE2eTest, AnAdminCannotSendTheStoredSecretOrATokenElsewhere) {
  const std::string secret = testbed_->Env("CLIENT_SECRET");
  mailroom::testing::RecordingListener attacker;
  ASSERT_NE(attacker.port(), 0);
  struct Case {
    const char* field;
    v1::SmtpSettings settings;
  };
  std::vector<Case> cases;
  v1::SmtpSettings authority = BrokerHarness::TestbedSettings(*testbed_);
  authority.clear_client_secret();
  authority.set_authority_host(absl::StrCat("http://127.0.0.1:", attacker.port()));
  authority.clear_authority_trust_store();
  cases.push_back({"authority_host", authority});
  v1::SmtpSettings smtp = BrokerHarness::TestbedSettings(*testbed_);
  smtp.mutable_client_secret()->clear_secret();
  smtp.set_smtp_host("127.0.0.1");
  smtp.set_port(attacker.port());
  cases.push_back({"port", smtp});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    absl::StatusOr<v1::TestConnectionReport> report = broker_->TestConnection(c.settings);
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(report.status().message(), HasSubstr(absl::StrCat("settings.", c.field)));
  }
  absl::SleepFor(absl::Seconds(1));  // anything already sent has arrived by now
  EXPECT_EQ(attacker.connections(), 0);
  EXPECT_THAT(attacker.received(), Not(HasSubstr(secret)));
  EXPECT_THAT(attacker.received(), Not(HasSubstr("client_secret")));
  // The saved settings still work: nothing above changed them.
  absl::StatusOr<v1::TestConnectionReport> saved =
      broker_->TestConnection(BrokerHarness::TestbedSettings(*testbed_));
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_TRUE(saved->passed()) << saved->diagnosis().title();
}

TEST_F(BrokerSecurityE2eTest, AdminCannotTakeTokens) {
  grpc::ClientContext context;
  v1::GetAccessTokenResponse response;
  EXPECT_EQ(broker_->StubAs("admin")->GetAccessToken(WithDeadline(&context), {}, &response)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(response.access_token().empty());
}

TEST_F(BrokerSecurityE2eTest, ANodeCannotSpeakForAnother) {
  grpc::ClientContext context;
  v1::GetAccessTokenRequest request;
  request.set_node("psn2");
  v1::GetAccessTokenResponse response;
  const absl::Status status = FromGrpcStatus(
      broker_->StubAs("psn1")->GetAccessToken(WithDeadline(&context), request, &response));
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(status.message()), HasSubstr("psn2"));
}

}  // namespace
}  // namespace mailroom
