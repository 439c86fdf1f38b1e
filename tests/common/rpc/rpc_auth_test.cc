// AuthorizeCaller over a real mutual-TLS gRPC server on loopback with certificates made by
// deploy/gen-certs.sh: allowed roles, named admin identities, the node a request claims to
// speak for, and a caller without a verified certificate.
#include "common/rpc/rpc_auth.h"

#include <memory>
#include <string>
#include <vector>

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

// Echo authorizes with the check the test configured, the request's text being the claimed
// node, and answers "<role> <node name>".
class CheckedService final : public WhoAmI::Service {
 public:
  std::vector<Role> roles;
  std::vector<std::string> admin_identities;
  std::string refusal_note;

  grpc::Status Echo(grpc::ServerContext* context, const EchoRequest* request,
                    EchoResponse* response) override {
    const CallerCheck check{"Echo", roles, "source_node", request->text(), &admin_identities,
                            refusal_note};
    absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, check);
    if (!peer.ok()) return ToGrpcStatus(peer.status());
    response->set_text(absl::StrCat(RoleName(peer->role), " ", peer->node_name));
    return grpc::Status::OK;
  }
};

class RpcAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(MakeTestCerts(
        "certs", "mailroom cluster CA", "psn1:psn pan1:pan admin:admin ops:admin portal:portal"));
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

  absl::StatusOr<std::string> CallAs(const std::string& node, const std::string& claimed = "") {
    auto credentials = MakeChannelCredentials(NodeTlsFiles(*certs_, node), Role::kPsn);
    EXPECT_TRUE(credentials.ok());
    return Call(absl::StrCat("localhost:", server_->port()), *credentials, claimed);
  }

  static absl::StatusOr<std::string> Call(const std::string& target,
                                          std::shared_ptr<grpc::ChannelCredentials> credentials,
                                          const std::string& claimed) {
    auto stub = WhoAmI::NewStub(
        grpc::CreateCustomChannel(target, credentials, grpc::ChannelArguments()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    EchoRequest request;
    request.set_text(claimed);
    EchoResponse response;
    const grpc::Status status = stub->Echo(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response.text();
  }

  static std::string* certs_;
  CheckedService service_;
  std::unique_ptr<GrpcServer> server_;
};

std::string* RpcAuthTest::certs_ = nullptr;

TEST_F(RpcAuthTest, AnAllowedRoleGetsItsIdentity) {
  service_.roles = {Role::kPsn, Role::kAdmin};
  EXPECT_EQ(*CallAs("psn1"), "psn psn1");
  EXPECT_EQ(*CallAs("admin"), "admin admin");
}

TEST_F(RpcAuthTest, AnotherRoleIsPermissionDeniedWithItsReason) {
  service_.roles = {Role::kPsn};
  absl::StatusOr<std::string> result = CallAs("portal");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(result.status().message(), "Echo is not allowed for role portal");
  EXPECT_EQ(ReasonOf(result.status()), "ROLE_NOT_ALLOWED");
}

TEST_F(RpcAuthTest, TheRefusalNoteIsAppended) {
  service_.roles = {Role::kAdmin};
  service_.refusal_note = " (admin only)";
  EXPECT_EQ(CallAs("pan1").status().message(), "Echo is not allowed for role pan (admin only)");
}

TEST_F(RpcAuthTest, NamedAdminIdentitiesRestrictAdminsOnly) {
  service_.roles = {Role::kPsn, Role::kAdmin};
  service_.admin_identities = {"ops"};
  EXPECT_EQ(*CallAs("ops"), "admin ops");
  EXPECT_EQ(*CallAs("psn1"), "psn psn1");
  absl::StatusOr<std::string> result = CallAs("admin");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(result.status().message(), "Echo is not allowed for role admin");
  EXPECT_EQ(ReasonOf(result.status()), "ROLE_NOT_ALLOWED");
}

TEST_F(RpcAuthTest, AnEmptyListOfAdminIdentitiesAllowsEveryAdmin) {
  service_.roles = {Role::kAdmin};
  EXPECT_TRUE(CallAs("admin").ok());
  EXPECT_TRUE(CallAs("ops").ok());
}

TEST_F(RpcAuthTest, ARequestMayOnlySpeakForTheCallersOwnNode) {
  service_.roles = {Role::kPsn, Role::kPan};
  EXPECT_EQ(*CallAs("psn1", "psn1"), "psn psn1");
  absl::StatusOr<std::string> result = CallAs("pan1", "psn1");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(result.status().message(),
            "source_node: \"psn1\" is not the caller's certificate name \"pan1\"");
  EXPECT_EQ(ReasonOf(result.status()), "ROLE_NOT_ALLOWED");
}

TEST_F(RpcAuthTest, ACallerWithoutAVerifiedCertificateIsUnauthenticated) {
  // Mailroom's servers never accept plaintext; a plaintext server is the way to reach the
  // handler without a certificate.
  CheckedService service;
  service.roles = {Role::kPsn, Role::kPan, Role::kAdmin, Role::kPortal};
  GrpcServer plaintext(
      GrpcServer::Options{"127.0.0.1:0", grpc::InsecureServerCredentials(), {&service}});
  ASSERT_TRUE(plaintext.Start().ok());
  absl::StatusOr<std::string> result =
      Call(absl::StrCat("localhost:", plaintext.port()), grpc::InsecureChannelCredentials(), "");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
  plaintext.Shutdown(absl::Seconds(1));
  plaintext.Wait();
}

}  // namespace
}  // namespace mailroom
