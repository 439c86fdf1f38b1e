// NodeStatusService in process, over real mutual TLS with certificates from the real
// deploy/gen-certs.sh: an admin gets the node's identity, version and the filler's part; role
// nodes and admins outside a configured list of admin identities are refused; a filler's
// failure reaches the caller as a gRPC error; an admin sets a component's log level for a
// while and sees it revert on the (fake) clock, bad input is refused naming the field, and
// role nodes may not change log levels. And FillTokenTimes.
#include "common/node/node_status_service.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/base/logging.h"
#include "common/base/proto_time.h"
#include "common/base/version.h"
#include "common/rpc/grpc_server.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/test_certs.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace sv1 = ::mailroom::status::v1;
using ::mailroom::testing::MakeTestCerts;
using ::mailroom::testing::NodeTlsFiles;
using ::testing::HasSubstr;

class NodeStatusServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(
        MakeTestCerts("certs", "mailroom cluster CA", "psn1:psn admin:admin ops:admin pan1:pan"));
  }

  // Serves a NodeStatusService as psn1 that fills with `fill`.
  void Serve(NodeStatusService::Filler fill,
             const std::vector<std::string>* admin_identities = nullptr) {
    service_ = std::make_unique<NodeStatusService>(
        NodeStatusService::Identity{"psn1", cv1::ROLE_PSN, start_}, &clock_, std::move(fill),
        admin_identities);
    auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "psn1"));
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    server_ = std::make_unique<GrpcServer>(
        GrpcServer::Options{"127.0.0.1:0", *credentials, {service_.get()}});
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_ != nullptr) {
      server_->Shutdown(absl::Seconds(1));
      server_->Wait();
    }
  }

  // Calls `method` on the service as `as` (a certificate name).
  template <typename Request, typename Response>
  grpc::Status CallAs(const std::string& as,
                      grpc::Status (sv1::NodeStatus::Stub::*method)(grpc::ClientContext*,
                                                                   const Request&, Response*),
                      const Request& request, Response* response) {
    auto credentials = MakeChannelCredentials(NodeTlsFiles(*certs_, as), Role::kPsn);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = sv1::NodeStatus::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("localhost:", server_->port()), *credentials, args));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub.get()->*method)(&context, request, response);
  }
  grpc::Status Get(const std::string& as, sv1::GetNodeStatusResponse* response) {
    return CallAs(as, &sv1::NodeStatus::Stub::GetNodeStatus, {}, response);
  }
  grpc::Status SetLevel(const std::string& as, const std::string& component,
                        const std::string& level, absl::Duration duration,
                        sv1::SetLogLevelResponse* response) {
    sv1::SetLogLevelRequest request;
    request.set_component(component);
    request.set_level(level);
    if (duration != absl::ZeroDuration()) ToProto(duration, request.mutable_duration());
    return CallAs(as, &sv1::NodeStatus::Stub::SetLogLevel, request, response);
  }
  // The component's entry in GetLogLevels, as the admin gets it.
  sv1::ComponentLogLevel LevelOf(const std::string& component) {
    sv1::GetLogLevelsResponse response;
    const grpc::Status status =
        CallAs("admin", &sv1::NodeStatus::Stub::GetLogLevels, {}, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.node(), "psn1");
    for (const sv1::ComponentLogLevel& entry : response.components()) {
      if (entry.component() == component) return entry;
    }
    ADD_FAILURE() << "not listed: " << component;
    return {};
  }

  static std::string* certs_;
  FakeClock clock_;
  const absl::Time start_ = clock_.Now();
  std::unique_ptr<NodeStatusService> service_;
  std::unique_ptr<GrpcServer> server_;
};

std::string* NodeStatusServiceTest::certs_ = nullptr;

TEST_F(NodeStatusServiceTest, AnAdminGetsTheIdentityAndTheNodesOwnPart) {
  ASSERT_NO_FATAL_FAILURE(Serve([](sv1::GetNodeStatusResponse* response) {
    response->mutable_delivery()->set_unsent(7);
    return absl::OkStatus();
  }));
  clock_.Advance(absl::Minutes(90));
  sv1::GetNodeStatusResponse response;
  const grpc::Status status = Get("admin", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.node(), "psn1");
  EXPECT_EQ(response.role(), cv1::ROLE_PSN);
  EXPECT_EQ(response.version(), kMailroomVersion);
  EXPECT_EQ(FromProto(response.start_time()), start_);
  EXPECT_EQ(FromProto(response.time()), start_ + absl::Minutes(90));
  EXPECT_EQ(response.delivery().unsent(), 7);
}

TEST_F(NodeStatusServiceTest, RoleNodesAreRefused) {
  ASSERT_NO_FATAL_FAILURE(Serve(nullptr));
  for (const char* node : {"psn1", "pan1"}) {
    sv1::GetNodeStatusResponse response;
    const grpc::Status status = Get(node, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << node;
    EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "ROLE_NOT_ALLOWED");
    EXPECT_THAT(status.error_message(), HasSubstr("admin only"));
  }
}

TEST_F(NodeStatusServiceTest, AListOfAdminIdentitiesRestrictsAdmins) {
  const std::vector<std::string> admins = {"ops"};
  ASSERT_NO_FATAL_FAILURE(Serve(nullptr, &admins));
  sv1::GetNodeStatusResponse response;
  EXPECT_EQ(Get("admin", &response).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Get("ops", &response).ok());
}

TEST_F(NodeStatusServiceTest, AFillersFailureReachesTheCaller) {
  ASSERT_NO_FATAL_FAILURE(Serve([](sv1::GetNodeStatusResponse*) {
    return absl::UnavailableError("outbox: database is locked");
  }));
  sv1::GetNodeStatusResponse response;
  const grpc::Status status = Get("admin", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("database is locked"));
}

TEST_F(NodeStatusServiceTest, AnAdminSetsALogLevelForAWhileAndItReverts) {
  Logging::Reset();
  ASSERT_NO_FATAL_FAILURE(Serve(nullptr));
  EXPECT_EQ(LevelOf(kLogPsn).level(), "INFO");
  sv1::SetLogLevelResponse response;
  const grpc::Status status = SetLevel("admin", kLogPsn, "debug", absl::Minutes(30), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.component().level(), "DEBUG");
  EXPECT_EQ(response.component().configured_level(), "INFO");
  EXPECT_TRUE(response.component().overridden());
  EXPECT_EQ(FromProto(response.component().revert_time()), start_ + absl::Minutes(30));
  EXPECT_TRUE(Logging::IsEnabled(kLogPsn, LogLevel::kDebug));
  EXPECT_EQ(LevelOf(kLogPsn).level(), "DEBUG");

  clock_.Advance(absl::Minutes(30));
  // The service's expiry thread is the clock's one waiter: once it waits again, it has
  // reverted.
  ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10)));
  const sv1::ComponentLogLevel reverted = LevelOf(kLogPsn);
  EXPECT_EQ(reverted.level(), "INFO");
  EXPECT_FALSE(reverted.overridden());
  EXPECT_FALSE(reverted.has_revert_time());
  EXPECT_FALSE(Logging::IsEnabled(kLogPsn, LogLevel::kDebug));
}

TEST_F(NodeStatusServiceTest, BadLogLevelRequestsAreRefusedNamingTheField) {
  Logging::Reset();
  ASSERT_NO_FATAL_FAILURE(Serve(nullptr));
  struct Case {
    std::string component, level;
    absl::Duration duration;
    std::string expected;
  };
  for (const Case& c : {Case{"guest", "DEBUG", absl::ZeroDuration(), "component: unknown"},
                        Case{kLogPsn, "LOUD", absl::ZeroDuration(), "level: unknown log level"},
                        Case{kLogPsn, "DEBUG", absl::Seconds(-5), "duration: must not be"}}) {
    sv1::SetLogLevelResponse response;
    const grpc::Status status = SetLevel("admin", c.component, c.level, c.duration, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.expected;
    EXPECT_THAT(status.error_message(), HasSubstr(c.expected));
  }
  EXPECT_FALSE(LevelOf(kLogPsn).overridden());
}

TEST_F(NodeStatusServiceTest, RoleNodesMayNotChangeLogLevels) {
  Logging::Reset();
  ASSERT_NO_FATAL_FAILURE(Serve(nullptr));
  sv1::SetLogLevelResponse response;
  const grpc::Status status = SetLevel("pan1", kLogPsn, "TRACE", absl::ZeroDuration(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(LevelOf(kLogPsn).level(), "INFO");
}

TEST(FillTokenTimesTest, AgeIsTheLifetimeLessTheTimeLeft) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  sv1::TokenStatus token;
  FillTokenTimes(now + absl::Minutes(45), absl::Hours(1), absl::OkStatus(), now, &token);
  EXPECT_EQ(FromProto(token.age()), absl::Minutes(15));
  EXPECT_EQ(FromProto(token.expire_time()), now + absl::Minutes(45));
  EXPECT_EQ(FromProto(token.lifetime()), absl::Hours(1));
  EXPECT_EQ(token.last_error(), "");
  EXPECT_FALSE(token.has_diagnosis());
}

TEST(FillTokenTimesTest, NoTokenHasNoTimesButItsFailureWithTheDiagnosis) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  sv1::TokenStatus token;
  FillTokenTimes(absl::InfinitePast(), absl::ZeroDuration(),
                 DiagnosedError(MakeDiagnosis(cv1::FAILURE_CAUSE_INVALID_CLIENT_SECRET,
                                              "AADSTS7000215: Invalid client secret provided.")),
                 now, &token);
  EXPECT_FALSE(token.has_expire_time());
  EXPECT_FALSE(token.has_age());
  EXPECT_THAT(token.last_error(), HasSubstr("Invalid client secret"));
  EXPECT_EQ(token.diagnosis().cause(), cv1::FAILURE_CAUSE_INVALID_CLIENT_SECRET);
}

}  // namespace
}  // namespace mailroom
