// The GuestNotifications gRPC edge over mutual TLS (certificates from deploy/gen-certs.sh):
// which roles may call which RPC, and how errors travel (INVALID_ARGUMENT naming the field,
// reasons in the binary error details).
#include "psn/psn_service.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "tests/testing/fake_clock.h"
#include "common/rpc/grpc_server.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/psn/test_util.h"
#include "tests/testing/test_certs.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
using ::mailroom::psn::testing::TestDir;
using ::mailroom::testing::MakeTestCerts;
using ::mailroom::testing::NodeTlsFiles;
using ::testing::HasSubstr;

class PsnServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(
        MakeTestCerts("certs", "mailroom cluster CA", "psn1:psn portal:portal admin:admin mnt:mnt"));
  }

  void SetUp() override {
    const std::string dir = TestDir();
    OutboxOptions options;
    options.node_name = "psn1";
    options.sync_every_commit = false;
    outbox_ = *Outbox::Open(dir + "/outbox.db", &clock_, options);
    GuestEmailSettings settings;
    settings.set_notifications_enabled(true);
    settings.mutable_default_from()->set_address("no-reply@example.test");
    settings_ = *GuestEmailSettingsStore::Open(dir + "/s.pb", settings, &clock_);
    templates_ = *TemplateStore::Open(dir + "/t.pb", "", &clock_);
    notifier_ = std::make_unique<PsnNotifier>(outbox_.get(), settings_.get(), templates_.get(),
                                              &clock_, NotifierOptions());
    service_ = std::make_unique<PsnService>(notifier_.get());
    auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "psn1"));
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    server_ = std::make_unique<GrpcServer>(
        GrpcServer::Options{"127.0.0.1:0", *credentials, {service_.get()}});
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    server_->Shutdown(absl::Seconds(1));
    server_->Wait();
  }

  std::unique_ptr<v1::GuestNotifications::Stub> StubAs(const std::string& node) {
    auto credentials = MakeChannelCredentials(NodeTlsFiles(*certs_, node), Role::kPsn);
    EXPECT_TRUE(credentials.ok());
    return v1::GuestNotifications::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("localhost:", server_->port()), *credentials, grpc::ChannelArguments()));
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return context;
  }

  static v1::NotifySelfRegistrationRequest Registration(const std::string& key) {
    v1::NotifySelfRegistrationRequest request;
    v1::Guest* guest = request.mutable_guest();
    guest->set_username("alice");
    guest->set_password("Pw-77x");
    guest->mutable_email()->set_address("alice@example.test");
    guest->mutable_valid_from()->set_seconds(1'800'000'000);
    guest->mutable_valid_until()->set_seconds(1'800'003'600);
    request.set_portal_id("lobby");
    request.set_idempotency_key(key);
    return request;
  }

  static std::string* certs_;
  FakeClock clock_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<GuestEmailSettingsStore> settings_;
  std::unique_ptr<TemplateStore> templates_;
  std::unique_ptr<PsnNotifier> notifier_;
  std::unique_ptr<PsnService> service_;
  std::unique_ptr<GrpcServer> server_;
};

std::string* PsnServiceTest::certs_ = nullptr;

TEST_F(PsnServiceTest, PortalsAndAdminsSendOtherRolesAreRefused) {
  v1::NotifySelfRegistrationResponse response;
  EXPECT_TRUE(StubAs("portal")->NotifySelfRegistration(Context().get(), Registration("a"),
                                                       &response).ok());
  EXPECT_TRUE(StubAs("admin")->NotifySelfRegistration(Context().get(), Registration("b"),
                                                      &response).ok());
  for (const char* node : {"mnt", "psn1"}) {
    const grpc::Status status =
        StubAs(node)->NotifySelfRegistration(Context().get(), Registration("c"), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << node;
    EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "ROLE_NOT_ALLOWED");
  }
  EXPECT_EQ(outbox_->Counts()->queued(), 2);
}

TEST_F(PsnServiceTest, OnlyAdminsChangeSettingsAndTemplatesPortalsMayReadThem) {
  auto portal = StubAs("portal");
  auto admin = StubAs("admin");
  v1::SetGuestEmailSettingsRequest set;
  set.mutable_settings()->set_notifications_enabled(false);
  v1::SetGuestEmailSettingsResponse set_response;
  EXPECT_EQ(portal->SetGuestEmailSettings(Context().get(), set, &set_response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::PutTemplateRequest put;
  put.mutable_template_()->set_kind(v1::TEMPLATE_KIND_PASSWORD_RESET);
  put.mutable_template_()->set_subject("Reset");
  put.mutable_template_()->set_text_body("{{password}}");
  v1::PutTemplateResponse put_response;
  EXPECT_EQ(portal->PutTemplate(Context().get(), put, &put_response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::DeleteTemplateRequest del;
  del.set_kind(v1::TEMPLATE_KIND_PASSWORD_RESET);
  v1::DeleteTemplateResponse del_response;
  EXPECT_EQ(portal->DeleteTemplate(Context().get(), del, &del_response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  ASSERT_TRUE(admin->PutTemplate(Context().get(), put, &put_response).ok());
  EXPECT_FALSE(put_response.template_().etag().empty());
  v1::GetTemplateRequest get;
  get.set_kind(v1::TEMPLATE_KIND_PASSWORD_RESET);
  v1::GetTemplateResponse get_response;
  ASSERT_TRUE(portal->GetTemplate(Context().get(), get, &get_response).ok());
  EXPECT_EQ(get_response.template_().etag(), put_response.template_().etag());
  v1::GetGuestEmailSettingsResponse settings;
  ASSERT_TRUE(portal->GetGuestEmailSettings(Context().get(), {}, &settings).ok());
  EXPECT_TRUE(settings.settings().notifications_enabled());
  ASSERT_TRUE(admin->SetGuestEmailSettings(Context().get(), set, &set_response).ok());
  EXPECT_FALSE(set_response.settings().notifications_enabled());
  ASSERT_TRUE(admin->DeleteTemplate(Context().get(), del, &del_response).ok());
}

TEST_F(PsnServiceTest, ErrorsCarryTheFieldAndTheReason) {
  auto portal = StubAs("portal");
  v1::NotifySelfRegistrationRequest bad = Registration("bad");
  bad.mutable_guest()->set_username("alice\r\nBcc: x@example.test");
  v1::NotifySelfRegistrationResponse response;
  grpc::Status status = portal->NotifySelfRegistration(Context().get(), bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("guest.username: contains CR or LF"));
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "INVALID_FIELD");

  v1::PutTemplateRequest put;
  put.mutable_template_()->set_kind(v1::TEMPLATE_KIND_SELF_REGISTRATION);
  put.mutable_template_()->set_subject("Hi");
  put.mutable_template_()->set_html_body("{{pasword}}");
  v1::PutTemplateResponse put_response;
  status = StubAs("admin")->PutTemplate(Context().get(), put, &put_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("template.html_body: unknown variable {{pasword}}"));

  v1::SetGuestEmailSettingsRequest off;
  v1::SetGuestEmailSettingsResponse off_response;
  ASSERT_TRUE(StubAs("admin")->SetGuestEmailSettings(Context().get(), off, &off_response).ok());
  status = portal->NotifySelfRegistration(Context().get(), Registration("off"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "NOTIFICATIONS_DISABLED");
  EXPECT_EQ(outbox_->Counts()->queued(), 0);
}

}  // namespace
}  // namespace mailroom::psn
