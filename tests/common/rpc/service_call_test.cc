// ServeCall over a real mutual-TLS gRPC server on loopback (certificates from
// deploy/gen-certs.sh), in both gRPC APIs: a refused caller gets PERMISSION_DENIED or
// UNAUTHENTICATED and the body does not run; an allowed one gets the body's response; the
// body's absl status crosses the edge with its code, message and reason.
#include "common/rpc/service_call.h"

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/rpc/grpc_server.h"
#include "common/rpc/status_grpc.h"
#include "gtest/gtest.h"
#include "tests/common/testdata/test_messages.grpc.pb.h"
#include "tests/testing/test_certs.h"

namespace mailroom {
namespace {

using ::mailroom::testing::EchoRequest;
using ::mailroom::testing::EchoResponse;
using ::mailroom::testing::MakeTestCerts;
using ::mailroom::testing::NodeTlsFiles;
using ::mailroom::testing::WhoAmI;
using ::mailroom::testing::WhoAmIRequest;
using ::mailroom::testing::WhoAmIResponse;

constexpr std::initializer_list<Role> kPsnOrAdmin = {Role::kPsn, Role::kAdmin};

// Echo (sync API) answers according to its text:
//   "fail <code>"   the body returns that absl code, message "failed", reason "WHY"
//   "status"        the body returns absl::Status and fills the response itself
//   "plain"         the body returns a plain response
//   "bare"          the response-less overload (as a streaming call uses)
//   anything else   the body returns StatusOr<EchoResponse> with "<node>: <text>"
// Get (callback API) answers with the caller's identity. Both count the bodies run.
class TestService final : public WhoAmI::WithCallbackMethod_Get<WhoAmI::Service> {
 public:
  std::atomic<int> bodies_run{0};

  grpc::Status Echo(grpc::ServerContext* context, const EchoRequest* request,
                    EchoResponse* response) override {
    const CallerCheck check{"Echo", kPsnOrAdmin};
    const std::string& text = request->text();
    if (text.rfind("fail ", 0) == 0) {
      return ServeCall(context, check, response, [&]() -> absl::StatusOr<EchoResponse> {
        ++bodies_run;
        return WithReason(
            absl::Status(static_cast<absl::StatusCode>(std::stoi(text.substr(5))), "failed"),
            "WHY");
      });
    }
    if (text == "status") {
      return ServeCall(context, check, response, [&] {
        ++bodies_run;
        response->set_text("filled");
        return absl::OkStatus();
      });
    }
    if (text == "plain") {
      return ServeCall(context, check, response, [&] {
        ++bodies_run;
        EchoResponse plain;
        plain.set_text("plain");
        return plain;
      });
    }
    if (text == "standby") {
      // A precondition that refuses (a standby broker): checked after the caller is authorized.
      const std::function<absl::Status()> not_leader = [] {
        return WithReason(absl::UnavailableError("standby"), "NOT_LEADER");
      };
      CallerCheck guarded = check;
      guarded.precondition = &not_leader;
      return ServeCall(context, guarded, response, [&] {
        ++bodies_run;
        return EchoResponse();
      });
    }
    if (text == "bare") {
      return ServeCall(context, check, [&] {
        ++bodies_run;
        return absl::NotFoundError("nothing here");
      });
    }
    return ServeCall(context, check, response,
                     [&](const PeerIdentity& peer) -> absl::StatusOr<EchoResponse> {
                       ++bodies_run;
                       EchoResponse out;
                       out.set_text(absl::StrCat(peer.node_name, ": ", text));
                       return out;
                     });
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context, const WhoAmIRequest*,
                                WhoAmIResponse* response) override {
    return ServeCall(context, {"Get", kPsnOrAdmin}, response,
                     [&](const PeerIdentity& peer) -> absl::StatusOr<WhoAmIResponse> {
                       ++bodies_run;
                       if (peer.node_name == "admin") return absl::AbortedError("not today");
                       WhoAmIResponse out;
                       out.set_role(std::string(RoleName(peer.role)));
                       out.set_node_name(peer.node_name);
                       return out;
                     });
  }
};

class ServiceCallTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(
        MakeTestCerts("certs", "mailroom cluster CA", "psn1:psn admin:admin portal:portal"));
  }

  void SetUp() override {
    auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "psn1"));
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    server_ = std::make_unique<GrpcServer>(
        GrpcServer::Options{"127.0.0.1:0", *credentials, {&service_}});
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    server_->Shutdown(absl::Seconds(1));
    server_->Wait();
  }

  std::unique_ptr<WhoAmI::Stub> StubAs(const std::string& node) {
    auto credentials = MakeChannelCredentials(NodeTlsFiles(*certs_, node), Role::kPsn);
    EXPECT_TRUE(credentials.ok());
    return WhoAmI::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("localhost:", server_->port()), *credentials, grpc::ChannelArguments()));
  }

  static grpc::Status Echo(WhoAmI::Stub* stub, const std::string& text, EchoResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    EchoRequest request;
    request.set_text(text);
    return stub->Echo(&context, request, response);
  }

  static grpc::Status Get(WhoAmI::Stub* stub, WhoAmIResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub->Get(&context, WhoAmIRequest(), response);
  }

  static std::string* certs_;
  TestService service_;
  std::unique_ptr<GrpcServer> server_;
};

std::string* ServiceCallTest::certs_ = nullptr;

TEST_F(ServiceCallTest, AnAllowedCallerGetsTheBodysResponse) {
  EchoResponse response;
  ASSERT_TRUE(Echo(StubAs("psn1").get(), "hello", &response).ok());
  EXPECT_EQ(response.text(), "psn1: hello");
  ASSERT_TRUE(Echo(StubAs("admin").get(), "status", &response).ok());
  EXPECT_EQ(response.text(), "filled");
  ASSERT_TRUE(Echo(StubAs("admin").get(), "plain", &response).ok());
  EXPECT_EQ(response.text(), "plain");
  EXPECT_EQ(service_.bodies_run, 3);
}

TEST_F(ServiceCallTest, AFailedPreconditionIsTheAnswerAndTheBodyDoesNotRun) {
  EchoResponse echo;
  const grpc::Status status = Echo(StubAs("psn1").get(), "standby", &echo);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "NOT_LEADER");
  EXPECT_EQ(service_.bodies_run, 0);
}

TEST_F(ServiceCallTest, ARefusedCallerIsPermissionDeniedAndTheBodyDoesNotRun) {
  auto portal = StubAs("portal");
  EchoResponse echo;
  for (const char* text : {"hello", "status", "plain", "bare", "fail 5", "standby"}) {
    const grpc::Status status = Echo(portal.get(), text, &echo);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << text;
    EXPECT_EQ(status.error_message(), "Echo is not allowed for role portal");
    EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "ROLE_NOT_ALLOWED");
  }
  EXPECT_TRUE(echo.text().empty());
  WhoAmIResponse who;
  const grpc::Status status = Get(portal.get(), &who);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(), "Get is not allowed for role portal");
  EXPECT_TRUE(who.node_name().empty());
  EXPECT_EQ(service_.bodies_run, 0);
}

TEST_F(ServiceCallTest, ACallerWithoutACertificateIsUnauthenticatedAndTheBodyDoesNotRun) {
  TestService service;
  GrpcServer plaintext(
      GrpcServer::Options{"127.0.0.1:0", grpc::InsecureServerCredentials(), {&service}});
  ASSERT_TRUE(plaintext.Start().ok());
  auto stub = WhoAmI::NewStub(grpc::CreateChannel(absl::StrCat("localhost:", plaintext.port()),
                                                  grpc::InsecureChannelCredentials()));
  EchoResponse echo;
  EXPECT_EQ(Echo(stub.get(), "hello", &echo).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  WhoAmIResponse who;
  EXPECT_EQ(Get(stub.get(), &who).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(service.bodies_run, 0);
  plaintext.Shutdown(absl::Seconds(1));
  plaintext.Wait();
}

TEST_F(ServiceCallTest, EveryAbslCodeCrossesTheEdgeAsTheSameGrpcCode) {
  auto stub = StubAs("psn1");
  for (int code = 1; code <= 16; ++code) {
    SCOPED_TRACE(code);
    EchoResponse response;
    const grpc::Status status = Echo(stub.get(), absl::StrCat("fail ", code), &response);
    EXPECT_EQ(static_cast<int>(status.error_code()), code);
    EXPECT_EQ(status.error_message(), "failed");
    const absl::Status back = FromGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(back.code()), code);
    EXPECT_EQ(ReasonOf(back), "WHY");
  }
  EchoResponse response;
  const grpc::Status bare = Echo(stub.get(), "bare", &response);
  EXPECT_EQ(bare.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(bare.error_message(), "nothing here");
}

TEST_F(ServiceCallTest, TheCallbackApiFinishesTheCallWithTheBodysResult) {
  WhoAmIResponse response;
  ASSERT_TRUE(Get(StubAs("psn1").get(), &response).ok());
  EXPECT_EQ(response.role(), "psn");
  EXPECT_EQ(response.node_name(), "psn1");
  WhoAmIResponse refused;
  const grpc::Status status = Get(StubAs("admin").get(), &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(status.error_message(), "not today");
  EXPECT_EQ(service_.bodies_run, 2);
}

}  // namespace
}  // namespace mailroom
