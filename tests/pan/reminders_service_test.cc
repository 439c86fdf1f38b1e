// The Reminders gRPC surface over real mutual TLS with certificates from deploy/gen-certs.sh:
// each RPC admits exactly the roles pan.proto documents (refusals are PERMISSION_DENIED with
// reason ROLE_NOT_ALLOWED, and change nothing), and errors cross the edge with their code,
// field-naming message and reason.
#include "pan/reminders_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/fake_clock.h"
#include "common/rpc/grpc_server.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/pan/pan_fixtures.h"
#include "tests/testing/test_certs.h"

namespace mailroom::pan {
namespace {

using ::mailroom::pan::testing::FreshTestDir;
using ::mailroom::pan::testing::Guest;
using ::mailroom::pan::testing::SettingsWithLeads;
using ::mailroom::pan::testing::User;
using ::mailroom::testing::MakeTestCerts;
using ::mailroom::testing::NodeTlsFiles;
using ::testing::StartsWith;

constexpr absl::Duration kDay = absl::Hours(24);

class RemindersServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(MakeTestCerts("certs", "mailroom cluster CA",
                                           "pan1:pan portal:portal admin:admin psn1:psn"));
  }

  void SetUp() override {
    Logging::SetDefaultLevel(LogLevel::kOff);
    const std::string dir = FreshTestDir();
    registry_ = *AccountRegistry::Open(dir + "/pan.db");
    ASSERT_TRUE(registry_->InitSettings(SettingsWithLeads({3, 1}, {14}), clock_.Now()).ok());
    OutboxOptions options;
    options.node_name = "pan1";
    outbox_ = *Outbox::Open(dir + "/outbox.db", &clock_, options);
    reminders_ =
        std::make_unique<Reminders>(registry_.get(), outbox_.get(), &clock_, RemindersOptions());
    service_ = std::make_unique<RemindersService>(reminders_.get());
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        MakeServerCredentials(NodeTlsFiles(*certs_, "pan1"));
    ASSERT_TRUE(credentials.ok());
    server_ = std::make_unique<GrpcServer>(
        GrpcServer::Options{"127.0.0.1:0", *credentials, {service_.get()}});
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    server_->Shutdown(absl::Seconds(1));
    server_->Wait();
    Logging::Reset();
  }

  std::unique_ptr<v1::Reminders::Stub> StubAs(const std::string& node) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MakeChannelCredentials(NodeTlsFiles(*certs_, node), Role::kPan);
    EXPECT_TRUE(credentials.ok());
    return v1::Reminders::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", server_->port()), *credentials));
  }

  template <typename Method, typename Request, typename Response>
  absl::Status Call(const std::string& node, Method method, const Request& request,
                    Response* response) {
    std::unique_ptr<v1::Reminders::Stub> stub = StubAs(node);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return FromGrpcStatus(((*stub).*method)(&context, request, response));
  }

  static void ExpectDenied(const absl::Status& status) {
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
    EXPECT_EQ(ReasonOf(status), "ROLE_NOT_ALLOWED");
  }

  static std::string* certs_;
  FakeClock clock_;
  std::unique_ptr<AccountRegistry> registry_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Reminders> reminders_;
  std::unique_ptr<RemindersService> service_;
  std::unique_ptr<GrpcServer> server_;
};

std::string* RemindersServiceTest::certs_ = nullptr;

TEST_F(RemindersServiceTest, PortalsAndAdminsWriteAccountsOtherRolesCannot) {
  v1::UpsertGuestAccountRequest guest;
  *guest.mutable_account() = Guest("g1", clock_.Now() + 10 * kDay);
  v1::UpsertGuestAccountResponse guest_response;
  ASSERT_TRUE(
      Call("portal", &v1::Reminders::Stub::UpsertGuestAccount, guest, &guest_response).ok());
  EXPECT_TRUE(guest_response.created());
  EXPECT_EQ(guest_response.reminders_size(), 2);
  ASSERT_TRUE(Call("admin", &v1::Reminders::Stub::UpsertGuestAccount, guest, &guest_response).ok());
  EXPECT_FALSE(guest_response.created());

  *guest.mutable_account() = Guest("g-psn", clock_.Now() + 10 * kDay);
  ExpectDenied(Call("psn1", &v1::Reminders::Stub::UpsertGuestAccount, guest, &guest_response));
  ExpectDenied(Call("pan1", &v1::Reminders::Stub::UpsertGuestAccount, guest, &guest_response));
  EXPECT_FALSE(registry_->GetAccount(AccountSpace::kGuest, "g-psn")->has_value());

  v1::UpsertUserAccountRequest user;
  *user.mutable_account() = User("u1", clock_.Now() + 30 * kDay);
  v1::UpsertUserAccountResponse user_response;
  ASSERT_TRUE(Call("portal", &v1::Reminders::Stub::UpsertUserAccount, user, &user_response).ok());
  v1::DeleteUserAccountRequest delete_user;
  delete_user.set_id("u1");
  v1::DeleteUserAccountResponse deleted;
  ExpectDenied(Call("psn1", &v1::Reminders::Stub::DeleteUserAccount, delete_user, &deleted));
  ASSERT_TRUE(Call("portal", &v1::Reminders::Stub::DeleteUserAccount, delete_user, &deleted).ok());
  EXPECT_TRUE(deleted.found());
  v1::DeleteGuestAccountRequest delete_guest;
  delete_guest.set_id("g1");
  v1::DeleteGuestAccountResponse guest_deleted;
  ASSERT_TRUE(
      Call("admin", &v1::Reminders::Stub::DeleteGuestAccount, delete_guest, &guest_deleted).ok());
  EXPECT_EQ(guest_deleted.canceled_reminders(), 2);
}

TEST_F(RemindersServiceTest, OnlyAdminsChangeSettingsAndListPlannedReminders) {
  v1::SetReminderSettingsRequest set;
  *set.mutable_settings() = SettingsWithLeads({2}, {});
  v1::SetReminderSettingsResponse set_response;
  ExpectDenied(Call("portal", &v1::Reminders::Stub::SetReminderSettings, set, &set_response));
  v1::GetReminderSettingsResponse got;
  ASSERT_TRUE(Call("portal", &v1::Reminders::Stub::GetReminderSettings,
                   v1::GetReminderSettingsRequest(), &got)
                  .ok());
  EXPECT_EQ(got.settings().guest_expiry_lead_times_size(), 2);  // unchanged
  ExpectDenied(Call("psn1", &v1::Reminders::Stub::GetReminderSettings,
                    v1::GetReminderSettingsRequest(), &got));
  ASSERT_TRUE(Call("admin", &v1::Reminders::Stub::SetReminderSettings, set, &set_response).ok());
  EXPECT_EQ(set_response.settings().guest_expiry_lead_times_size(), 1);
  EXPECT_FALSE(set_response.settings().etag().empty());

  v1::ListPlannedRemindersResponse planned;
  ExpectDenied(Call("portal", &v1::Reminders::Stub::ListPlannedReminders,
                    v1::ListPlannedRemindersRequest(), &planned));
  EXPECT_TRUE(Call("admin", &v1::Reminders::Stub::ListPlannedReminders,
                   v1::ListPlannedRemindersRequest(), &planned)
                  .ok());
  v1::ListAccountsResponse accounts;
  EXPECT_TRUE(
      Call("portal", &v1::Reminders::Stub::ListAccounts, v1::ListAccountsRequest(), &accounts)
          .ok());
  ExpectDenied(
      Call("psn1", &v1::Reminders::Stub::ListAccounts, v1::ListAccountsRequest(), &accounts));
  v1::GetNotificationStatusRequest status;
  status.set_notification_id("pan1/unknown");
  v1::GetNotificationStatusResponse status_response;
  EXPECT_EQ(
      Call("portal", &v1::Reminders::Stub::GetNotificationStatus, status, &status_response).code(),
      absl::StatusCode::kNotFound);
  ExpectDenied(Call("psn1", &v1::Reminders::Stub::GetNotificationStatus, status, &status_response));
}

TEST_F(RemindersServiceTest, InvalidArgumentCrossesTheEdgeNamingTheField) {
  v1::UpsertGuestAccountRequest guest;
  *guest.mutable_account() = Guest("g1", clock_.Now() + 10 * kDay);
  guest.mutable_account()->set_first_name("小明\r\nBcc: x@example.test");
  v1::UpsertGuestAccountResponse response;
  const absl::Status status =
      Call("portal", &v1::Reminders::Stub::UpsertGuestAccount, guest, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("account.first_name: contains CR or LF"));
  EXPECT_EQ(ReasonOf(status), "INVALID_FIELD");
  EXPECT_FALSE(registry_->GetAccount(AccountSpace::kGuest, "g1")->has_value());
  EXPECT_EQ(outbox_->Counts()->queued(), 0);

  v1::SetReminderSettingsRequest stale;
  *stale.mutable_settings() = SettingsWithLeads({2}, {});
  stale.set_etag("old");
  v1::SetReminderSettingsResponse set_response;
  const absl::Status aborted =
      Call("admin", &v1::Reminders::Stub::SetReminderSettings, stale, &set_response);
  EXPECT_EQ(aborted.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReasonOf(aborted), "ETAG_MISMATCH");
}

}  // namespace
}  // namespace mailroom::pan
