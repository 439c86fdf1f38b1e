// Serving until a termination signal: the server stops when SIGTERM arrives, and a metrics
// address that cannot be bound fails the run before it waits.
#include "common/rpc/serve_until_terminated.h"

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/rpc/tls.h"
#include "gtest/gtest.h"
#include "tests/common/testdata/test_messages.grpc.pb.h"
#include "tests/testing/test_certs.h"
#include "third_party/grpc_health/health.grpc.pb.h"

namespace mailroom {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::mailroom::testing::MakeTestCerts;
using ::mailroom::testing::NodeTlsFiles;

class ServeUntilTerminatedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Before any gRPC thread starts, as in a real `main`, so every thread inherits the mask
    // and the SIGTERM below can only be taken by TerminationSignals::Wait.
    TerminationSignals::Block();
    certs_ = new std::string(MakeTestCerts("certs", "mailroom cluster CA", "mnt1:mnt psn1:psn"));
  }

  std::unique_ptr<GrpcServer> StartedServer() {
    auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "mnt1"));
    EXPECT_TRUE(credentials.ok());
    auto server = std::make_unique<GrpcServer>(
        GrpcServer::Options{"127.0.0.1:0", *credentials, {&service_}});
    EXPECT_TRUE(server->Start().ok());
    return server;
  }

  bool Serving(int port) {
    auto credentials = MakeChannelCredentials(NodeTlsFiles(*certs_, "psn1"), Role::kMnt);
    EXPECT_TRUE(credentials.ok());
    auto stub =
        Health::NewStub(grpc::CreateChannel(absl::StrCat("localhost:", port), *credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthCheckResponse response;
    return stub->Check(&context, HealthCheckRequest(), &response).ok() &&
           response.status() == HealthCheckResponse::SERVING;
  }

  mailroom::testing::WhoAmI::Service service_;  // any service will do
  static std::string* certs_;
};

std::string* ServeUntilTerminatedTest::certs_ = nullptr;

TEST_F(ServeUntilTerminatedTest, ShutsTheServerDownOnSigterm) {
  std::unique_ptr<GrpcServer> server = StartedServer();
  ASSERT_TRUE(Serving(server->port()));
  // Pending until Wait() takes it, since the signal is blocked.
  ASSERT_EQ(pthread_kill(pthread_self(), SIGTERM), 0);
  EXPECT_EQ(ServeUntilTerminated(*server, "127.0.0.1:0", absl::Seconds(1), kLogRpc), 0);
  EXPECT_FALSE(Serving(server->port()));
}

TEST_F(ServeUntilTerminatedTest, FailsWithoutWaitingWhenMetricsCannotListen) {
  std::unique_ptr<GrpcServer> server = StartedServer();
  // No signal is pending: were the metrics failure ignored, this would wait forever.
  EXPECT_EQ(ServeUntilTerminated(*server, "not-an-address", absl::Seconds(1), kLogRpc), 1);
  EXPECT_TRUE(Serving(server->port()));
}

}  // namespace
}  // namespace mailroom
