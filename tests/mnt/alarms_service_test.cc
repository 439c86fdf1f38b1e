// The Alarms gRPC service in process, over real mutual TLS with certificates from the real
// deploy/gen-certs.sh: who may call what, source_node bound to the caller's certificate, and
// errors (field names, reasons) as they arrive at a client.
#include "mnt/alarms_service.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "common/rpc/grpc_server.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mnt/alarm_test_env.h"
#include "tests/testing/test_certs.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::mailroom::mnt::testing::AlarmTestEnv;
using ::mailroom::mnt::testing::Request;
using ::mailroom::testing::MakeTestCerts;
using ::mailroom::testing::NodeTlsFiles;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class AlarmsServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(MakeTestCerts(
        "certs", "mailroom cluster CA",
        "broker:broker mnt1:mnt psn1:psn psn2:psn pan1:pan admin:admin portal1:portal"));
  }

  void SetUp() override {
    env_ = std::make_unique<AlarmTestEnv>();
    service_ = std::make_unique<AlarmsService>(&env_->manager());
    auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "mnt1"));
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    server_ = std::make_unique<GrpcServer>(
        GrpcServer::Options{"127.0.0.1:0", *credentials, {service_.get()}});
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    server_->Shutdown(absl::Seconds(1));
    server_->Wait();
  }

  std::unique_ptr<mv1::Alarms::Stub> StubAs(const std::string& node) {
    auto credentials = MakeChannelCredentials(NodeTlsFiles(*certs_, node), Role::kMnt);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return mv1::Alarms::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("localhost:", server_->port()), *credentials, args));
  }

  static void Deadline(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }

  grpc::Status Raise(const std::string& as, const mv1::RaiseAlarmRequest& request,
                     mv1::RaiseAlarmResponse* response) {
    grpc::ClientContext context;
    Deadline(&context);
    return StubAs(as)->RaiseAlarm(&context, request, response);
  }

  grpc::Status List(const std::string& as, mv1::ListAlarmsResponse* response) {
    grpc::ClientContext context;
    Deadline(&context);
    return StubAs(as)->ListAlarms(&context, mv1::ListAlarmsRequest(), response);
  }

  static std::string* certs_;
  std::unique_ptr<AlarmTestEnv> env_;
  std::unique_ptr<AlarmsService> service_;
  std::unique_ptr<GrpcServer> server_;
};

std::string* AlarmsServiceTest::certs_ = nullptr;

TEST_F(AlarmsServiceTest, EveryNodeRoleAndAdminsMayRaiseInTheirOwnName) {
  int n = 0;
  for (const auto& [node, role] :
       {std::pair{"broker", cv1::ROLE_BROKER}, std::pair{"pan1", cv1::ROLE_PAN},
        std::pair{"psn1", cv1::ROLE_PSN}, std::pair{"mnt1", cv1::ROLE_MNT},
        std::pair{"admin", cv1::ROLE_ADMIN}}) {
    SCOPED_TRACE(node);
    mv1::RaiseAlarmRequest request = Request(absl::StrCat("k", ++n), "", "Something happened");
    request.set_source_node(node);
    mv1::RaiseAlarmResponse response;
    const grpc::Status status = Raise(node, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.alarm().source_node(), node);
    EXPECT_EQ(response.alarm().source_role(), role);
    EXPECT_EQ(response.alarm().dedup_key(), absl::StrCat("generic/", node));
  }
}

TEST_F(AlarmsServiceTest, PortalsMayNotRaiseAndNodesMayNotImpersonate) {
  mv1::RaiseAlarmRequest request = Request("k1");
  request.set_source_node("portal1");
  mv1::RaiseAlarmResponse response;
  grpc::Status status = Raise("portal1", request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "ROLE_NOT_ALLOWED");

  request.set_source_node("psn2");
  status = Raise("psn1", request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), StartsWith("source_node:"));

  mv1::ListAlarmsResponse list;
  ASSERT_TRUE(List("admin", &list).ok());
  EXPECT_EQ(list.alarms_size(), 0);
}

TEST_F(AlarmsServiceTest, AdminOnlyRpcsRefuseNodes) {
  mv1::ListAlarmsResponse list;
  EXPECT_EQ(List("psn1", &list).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(List("broker", &list).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  {
    grpc::ClientContext context;
    Deadline(&context);
    mv1::GetAlarmSettingsResponse settings;
    EXPECT_EQ(StubAs("mnt1")
                  ->GetAlarmSettings(&context, mv1::GetAlarmSettingsRequest(), &settings)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    Deadline(&context);
    mv1::SetAlarmSettingsRequest set;
    mv1::SetAlarmSettingsResponse saved;
    EXPECT_EQ(StubAs("pan1")->SetAlarmSettings(&context, set, &saved).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    Deadline(&context);
    mv1::GetNotificationStatusRequest request;
    request.set_idempotency_key("k");
    mv1::GetNotificationStatusResponse status;
    EXPECT_EQ(StubAs("psn1")->GetNotificationStatus(&context, request, &status).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
}

TEST_F(AlarmsServiceTest, ErrorsReachTheClientWithFieldAndReason) {
  mv1::RaiseAlarmRequest request = Request("k1");
  request.set_text("two\r\nlines");
  mv1::RaiseAlarmResponse response;
  grpc::Status status = Raise("psn1", request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("text: contains CR or LF"));
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "INVALID_FIELD");

  ASSERT_TRUE(Raise("psn1", Request("k1"), &response).ok());
  EXPECT_EQ(response.disposition(), mv1::ALARM_DISPOSITION_EMAILED);
  ASSERT_TRUE(Raise("psn1", Request("k1"), &response).ok());
  EXPECT_TRUE(response.duplicate());
  status = Raise("psn1", Request("k1", "other/psn1"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "IDEMPOTENCY_KEY_REUSED");
}

TEST_F(AlarmsServiceTest, NodesClearOnlyTheirOwnAlarmsAdminsClearAny) {
  mv1::RaiseAlarmRequest secret = Request("secret", "client-secret-expiry/app", "expires soon");
  secret.set_type(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  secret.set_source_node("broker");
  mv1::RaiseAlarmResponse raised;
  ASSERT_TRUE(Raise("broker", secret, &raised).ok());
  ASSERT_TRUE(Raise("psn1", Request("disk"), &raised).ok());

  auto clear = [&](const std::string& as, const std::string& key, mv1::ClearAlarmResponse* out) {
    grpc::ClientContext context;
    Deadline(&context);
    mv1::ClearAlarmRequest request;
    request.set_dedup_key(key);
    request.set_reason("new secret saved");
    return StubAs(as)->ClearAlarm(&context, request, out);
  };
  mv1::ClearAlarmResponse cleared;
  EXPECT_EQ(clear("psn1", "client-secret-expiry/app", &cleared).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(clear("portal1", "disk/psn1", &cleared).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(clear("broker", "client-secret-expiry/app", &cleared).ok());
  EXPECT_EQ(cleared.alarm().state(), mv1::ALARM_STATE_CLEARED);
  EXPECT_EQ(cleared.alarm().cleared_by(), "broker");
  ASSERT_TRUE(clear("admin", "disk/psn1", &cleared).ok());
  EXPECT_EQ(cleared.alarm().cleared_by(), "admin");
}

TEST_F(AlarmsServiceTest, AdminReadsAndChangesSettings) {
  auto stub = StubAs("admin");
  mv1::GetAlarmSettingsResponse current;
  {
    grpc::ClientContext context;
    Deadline(&context);
    ASSERT_TRUE(stub->GetAlarmSettings(&context, mv1::GetAlarmSettingsRequest(), &current).ok());
  }
  mv1::SetAlarmSettingsRequest set;
  *set.mutable_settings() = current.settings();
  set.mutable_settings()->set_include_system_alarms_in_emails(false);
  set.set_etag(current.settings().etag());
  mv1::SetAlarmSettingsResponse saved;
  {
    grpc::ClientContext context;
    Deadline(&context);
    ASSERT_TRUE(stub->SetAlarmSettings(&context, set, &saved).ok());
  }
  EXPECT_FALSE(saved.settings().include_system_alarms_in_emails());
  {
    grpc::ClientContext context;
    Deadline(&context);
    const grpc::Status stale = stub->SetAlarmSettings(&context, set, &saved);
    EXPECT_EQ(stale.error_code(), grpc::StatusCode::ABORTED);
    EXPECT_EQ(ReasonOf(FromGrpcStatus(stale)), "ETAG_MISMATCH");
  }
  mv1::RaiseAlarmResponse raised;
  ASSERT_TRUE(Raise("psn1", Request("k"), &raised).ok());
  EXPECT_EQ(raised.disposition(), mv1::ALARM_DISPOSITION_NOT_EMAILED);
}

}  // namespace
}  // namespace mailroom::mnt
