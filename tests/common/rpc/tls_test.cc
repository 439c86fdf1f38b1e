// Peer identity and mutual TLS, with certificates made by the real deploy/gen-certs.sh and a
// real gRPC server and client over loopback.
#include "common/rpc/tls.h"

#include <condition_variable>
#include <mutex>

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/grpc_server.h"
#include "common/base/metrics.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/testdata/test_messages.grpc.pb.h"
#include "tests/testing/test_certs.h"

namespace mailroom {
namespace {

using ::mailroom::testing::MakeTestCerts;
using ::mailroom::testing::NodeTlsFiles;
using ::mailroom::testing::WhoAmI;
using ::mailroom::testing::WhoAmIRequest;
using ::mailroom::testing::WhoAmIResponse;
using ::testing::HasSubstr;

class WhoAmIService final : public WhoAmI::Service {
  grpc::Status Echo(grpc::ServerContext*, const mailroom::testing::EchoRequest* request,
                    mailroom::testing::EchoResponse* response) override {
    response->set_text(request->text());
    return grpc::Status::OK;
  }
  grpc::Status Get(grpc::ServerContext* context, const WhoAmIRequest*,
                   WhoAmIResponse* response) override {
    absl::StatusOr<PeerIdentity> peer = PeerIdentityOf(*context->auth_context());
    if (!peer.ok()) return ToGrpcStatus(peer.status());
    response->set_role(std::string(RoleName(peer->role)));
    response->set_node_name(peer->node_name);
    return grpc::Status::OK;
  }
};

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new std::string(MakeTestCerts(
        "cluster", "mailroom cluster CA", "broker:broker psn1:psn pan1:pan mnt1:mnt admin:admin"));
    foreign_ = new std::string(MakeTestCerts("foreign", "some other CA", "psn9:psn"));
  }

  void SetUp() override {
    auto credentials = MakeServerCredentials(NodeTlsFiles(*cluster_, "broker"));
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    server_ = std::make_unique<GrpcServer>(
        GrpcServer::Options{"127.0.0.1:0", *credentials, {&service_}});
    ASSERT_TRUE(server_->Start().ok());
  }

  grpc::Status CallAs(std::shared_ptr<grpc::ChannelCredentials> credentials,
                      WhoAmIResponse* response) {
    grpc::ChannelArguments args;
    auto channel = grpc::CreateCustomChannel(absl::StrCat("localhost:", server_->port()),
                                             credentials, args);
    auto stub = WhoAmI::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->Get(&context, WhoAmIRequest(), response);
  }

  static std::string* cluster_;
  static std::string* foreign_;
  WhoAmIService service_;
  std::unique_ptr<GrpcServer> server_;
};

std::string* TlsTest::cluster_ = nullptr;
std::string* TlsTest::foreign_ = nullptr;

TEST_F(TlsTest, RoleAndNameAreReadFromTheCertificate) {
  for (const auto& [node, role] : {std::pair{"psn1", Role::kPsn}, std::pair{"pan1", Role::kPan},
                                   std::pair{"mnt1", Role::kMnt}, std::pair{"admin", Role::kAdmin},
                                   std::pair{"broker", Role::kBroker}}) {
    SCOPED_TRACE(node);
    auto pem = ReadFileToString(absl::StrCat(*cluster_, "/", node, ".pem"));
    ASSERT_TRUE(pem.ok());
    absl::StatusOr<PeerIdentity> identity = IdentityFromCertificatePem(*pem);
    ASSERT_TRUE(identity.ok()) << identity.status();
    EXPECT_EQ(identity->role, role);
    EXPECT_EQ(identity->node_name, node);
  }
}

TEST_F(TlsTest, CertificateWithoutRoleIsRefused) {
  auto pem = ReadFileToString(absl::StrCat(*cluster_, "/ca.pem"));
  ASSERT_TRUE(pem.ok());
  absl::StatusOr<PeerIdentity> identity = IdentityFromCertificatePem(*pem);
  EXPECT_EQ(identity.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(identity.status().message()), HasSubstr("urn:mailroom:role:"));
}

// M5: every cluster certificate is signed by the one CA and names localhost, so a client must
// check the server's role: a PSN (or anyone) listening where the broker should be must not
// receive what the admin meant for the broker.
TEST_F(TlsTest, AClientAcceptsOnlyAServerOfTheRoleItCalls) {
  WhoAmIResponse response;
  ASSERT_TRUE(CallAs(*MakeChannelCredentials(NodeTlsFiles(*cluster_, "admin"), Role::kBroker),
                     &response)
                  .ok());
  for (Role expected : {Role::kPsn, Role::kMnt, Role::kPan}) {
    SCOPED_TRACE(RoleName(expected));
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MakeChannelCredentials(NodeTlsFiles(*cluster_, "admin"), expected);
    ASSERT_TRUE(credentials.ok()) << credentials.status();
    const grpc::Status status = CallAs(*credentials, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }
}

// The same from the other side: a PSN's certificate on the broker's port is refused by a
// client that expects the broker, before any request leaves the client.
TEST_F(TlsTest, APsnImpersonatingTheBrokerGetsNoRequest) {
  auto psn_credentials = MakeServerCredentials(NodeTlsFiles(*cluster_, "psn1"));
  ASSERT_TRUE(psn_credentials.ok());
  WhoAmIService impostor_service;
  GrpcServer impostor(GrpcServer::Options{"127.0.0.1:0", *psn_credentials, {&impostor_service}});
  ASSERT_TRUE(impostor.Start().ok());
  auto stub = WhoAmI::NewStub(grpc::CreateChannel(
      absl::StrCat("localhost:", impostor.port()),
      *MakeChannelCredentials(NodeTlsFiles(*cluster_, "admin"), Role::kBroker)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  mailroom::testing::EchoRequest request;
  request.set_text("client_secret=never-sent");
  mailroom::testing::EchoResponse echoed;
  const grpc::Status status = stub->Echo(&context, request, &echoed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(echoed.text().empty());
}

TEST_F(TlsTest, EveryRpcIsTimedInTheMetrics) {
  auto credentials = MakeChannelCredentials(NodeTlsFiles(*cluster_, "psn1"), Role::kBroker);
  ASSERT_TRUE(credentials.ok());
  WhoAmIResponse response;
  ASSERT_TRUE(CallAs(*credentials, &response).ok());
  const std::string text = Metrics::Global().Render();
  EXPECT_THAT(text, HasSubstr("mailroom_rpc_latency_seconds_count{method=\"/mailroom.testing.WhoAmI/Get\"}"));
  EXPECT_THAT(text, HasSubstr("mailroom_rpcs_total{method=\"/mailroom.testing.WhoAmI/Get\",code=\"0\"}"));
}

// A string field with malformed UTF-8 is refused by protobuf before the service runs; the
// caller must still get INVALID_ARGUMENT, not INTERNAL.
TEST_F(TlsTest, MalformedUtf8IsInvalidArgument) {
  auto credentials = MakeChannelCredentials(NodeTlsFiles(*cluster_, "psn1"), Role::kBroker);
  ASSERT_TRUE(credentials.ok());
  auto channel = grpc::CreateChannel(absl::StrCat("localhost:", server_->port()), *credentials);
  grpc::GenericStub stub(channel);
  // Field 1 (text), wire type 2, length 2: "\xC3\x28" is not UTF-8.
  const std::string bytes("\x0a\x02\xc3\x28", 4);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/mailroom.testing.WhoAmI/Echo", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = s;
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("UTF-8"));
}

TEST_F(TlsTest, ServerSeesTheVerifiedPeerRole) {
  auto credentials = MakeChannelCredentials(NodeTlsFiles(*cluster_, "psn1"), Role::kBroker);
  ASSERT_TRUE(credentials.ok());
  WhoAmIResponse response;
  grpc::Status status = CallAs(*credentials, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.role(), "psn");
  EXPECT_EQ(response.node_name(), "psn1");
}

TEST_F(TlsTest, CertificateFromAnotherCaIsRefused) {
  // The foreign node trusts our CA (so it could verify the server), but its own certificate
  // is signed by another CA: the server must refuse the handshake.
  TlsFiles files = NodeTlsFiles(*foreign_, "psn9");
  files.ca_file = absl::StrCat(*cluster_, "/ca.pem");
  auto credentials = MakeChannelCredentials(files, Role::kBroker);
  ASSERT_TRUE(credentials.ok());
  WhoAmIResponse response;
  grpc::Status status = CallAs(*credentials, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(response.role().empty());
}

TEST_F(TlsTest, ClientWithoutCertificateIsRefused) {
  auto ca = ReadFileToString(absl::StrCat(*cluster_, "/ca.pem"));
  ASSERT_TRUE(ca.ok());
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *ca;
  WhoAmIResponse response;
  grpc::Status status = CallAs(grpc::SslCredentials(options), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(response.role().empty());
}

TEST_F(TlsTest, PlaintextIsRefused) {
  WhoAmIResponse response;
  grpc::Status status = CallAs(grpc::InsecureChannelCredentials(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST(TlsFilesTest, MissingFileNamesTheField) {
  auto credentials = MakeServerCredentials({"/nonexistent/ca.pem", "/x.pem", "/x.key"});
  EXPECT_EQ(credentials.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(credentials.status().message()), HasSubstr("tls.ca_file"));
  EXPECT_THAT(std::string(credentials.status().message()), HasSubstr("/nonexistent/ca.pem"));
}

}  // namespace
}  // namespace mailroom

namespace mailroom {
namespace {

// A graceful shutdown must not wait out its whole grace period just because a client still
// holds an idle connection.
TEST_F(TlsTest, ShutdownIsPromptWithAnIdleClientConnected) {
  auto credentials = MakeChannelCredentials(NodeTlsFiles(*cluster_, "psn1"), Role::kBroker);
  ASSERT_TRUE(credentials.ok());
  grpc::ChannelArguments args;
  auto channel = grpc::CreateCustomChannel(absl::StrCat("localhost:", server_->port()),
                                           *credentials, args);
  auto stub = WhoAmI::NewStub(channel);
  grpc::ClientContext context;
  WhoAmIResponse response;
  ASSERT_TRUE(stub->Get(&context, WhoAmIRequest(), &response).ok());
  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(10));
  server_->Wait();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace mailroom
