// The server runner: health service over mutual TLS, graceful shutdown, termination signals.
#include "common/rpc/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>

#include <signal.h>

#include "absl/strings/str_cat.h"
#include "common/rpc/tls.h"
#include "gmock/gmock.h"
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

class GrpcServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(MakeTestCerts("certs", "mailroom cluster CA", "mnt1:mnt psn1:psn"));
  }

  std::unique_ptr<Health::Stub> HealthStub(int port) {
    auto credentials = MakeChannelCredentials(NodeTlsFiles(*certs_, "psn1"), Role::kMnt);
    EXPECT_TRUE(credentials.ok());
    return Health::NewStub(
        grpc::CreateChannel(absl::StrCat("localhost:", port), *credentials));
  }

  static grpc::Status Check(Health::Stub* stub, HealthCheckResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->Check(&context, HealthCheckRequest(), response);
  }

  static std::string* certs_;
  // Any service will do: these tests are about the server, its health and reflection.
  mailroom::testing::WhoAmI::Service service_;
};

std::string* GrpcServerTest::certs_ = nullptr;

TEST_F(GrpcServerTest, HealthAnswersServing) {
  auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "mnt1"));
  ASSERT_TRUE(credentials.ok());
  GrpcServer server({"127.0.0.1:0", *credentials, {&service_}});
  ASSERT_TRUE(server.Start().ok());
  EXPECT_GT(server.port(), 0);
  auto stub = HealthStub(server.port());
  HealthCheckResponse response;
  grpc::Status status = Check(stub.get(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
}

TEST_F(GrpcServerTest, AStandbyStartsNotServingAndSetServingSwitchesHealth) {
  auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "mnt1"));
  ASSERT_TRUE(credentials.ok());
  GrpcServer server({"127.0.0.1:0", *credentials, {&service_}, false, /*start_serving=*/false});
  ASSERT_TRUE(server.Start().ok());
  auto stub = HealthStub(server.port());
  HealthCheckResponse response;
  ASSERT_TRUE(Check(stub.get(), &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  server.SetServing(true);
  ASSERT_TRUE(Check(stub.get(), &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  server.SetServing(false);
  ASSERT_TRUE(Check(stub.get(), &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  server.Shutdown(absl::Seconds(1));
  server.SetServing(true);  // ignored once shut down
}

// Calls ServerReflectionInfo with one list_services request, as grpcurl would, on a raw
// bidirectional generic stream; returns the call's status (OK once a response came).
grpc::Status AskForServices(std::shared_ptr<grpc::Channel> channel) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  cq.Next(&tag, &ok);
  const std::string request("\x3a\x01*", 3);  // field 7 (list_services) = "*"
  grpc::Slice slice(request);
  grpc::ByteBuffer buffer(&slice, 1);
  call->Write(buffer, reinterpret_cast<void*>(2));
  cq.Next(&tag, &ok);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  const bool answered = ok;
  call->WritesDone(reinterpret_cast<void*>(4));
  cq.Next(&tag, &ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(5)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return answered ? grpc::Status::OK : status;
}

// L13: reflection hands every service's schema to any cluster certificate; it is off unless
// the node's config asks for it.
TEST_F(GrpcServerTest, ReflectionIsOffUnlessAskedFor) {
  auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "mnt1"));
  ASSERT_TRUE(credentials.ok());
  auto client = MakeChannelCredentials(NodeTlsFiles(*certs_, "psn1"), Role::kMnt);
  ASSERT_TRUE(client.ok());
  GrpcServer server({"127.0.0.1:0", *credentials, {&service_}});
  ASSERT_TRUE(server.Start().ok());
  const grpc::Status status = AskForServices(
      grpc::CreateChannel(absl::StrCat("localhost:", server.port()), *client));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << status.error_message();
  server.Shutdown(absl::ZeroDuration());

  GrpcServer debugging({"127.0.0.1:0", *credentials, {&service_}, /*reflection=*/true});
  ASSERT_TRUE(debugging.Start().ok());
  EXPECT_TRUE(AskForServices(grpc::CreateChannel(
                  absl::StrCat("localhost:", debugging.port()), *client))
                  .ok());
}

TEST_F(GrpcServerTest, ShutdownStopsServing) {
  auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "mnt1"));
  ASSERT_TRUE(credentials.ok());
  GrpcServer server({"127.0.0.1:0", *credentials, {&service_}});
  ASSERT_TRUE(server.Start().ok());
  auto stub = HealthStub(server.port());
  server.Shutdown(absl::Seconds(1));
  server.Wait();
  HealthCheckResponse response;
  EXPECT_FALSE(Check(stub.get(), &response).ok());
}

TEST_F(GrpcServerTest, RefusesToStartWithoutTls) {
  GrpcServer server({"127.0.0.1:0", nullptr, {&service_}});
  EXPECT_EQ(server.Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GrpcServerTest, ReportsAnAddressInUse) {
  auto credentials = MakeServerCredentials(NodeTlsFiles(*certs_, "mnt1"));
  ASSERT_TRUE(credentials.ok());
  GrpcServer first({"127.0.0.1:0", *credentials, {&service_}});
  ASSERT_TRUE(first.Start().ok());
  GrpcServer second({absl::StrCat("127.0.0.1:", first.port()), *credentials, {&service_}});
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(absl::StrCat(first.port())), absl::string_view::npos);
}

TEST(TerminationSignals, SigtermIsDeliveredToWait) {
  // Other tests' gRPC threads exist already and do not block SIGTERM, so the signal is
  // aimed at this thread; a real `main` calls Block() before any thread starts.
  TerminationSignals::Block();
  ASSERT_EQ(pthread_kill(pthread_self(), SIGTERM), 0);
  EXPECT_EQ(TerminationSignals::Wait(), SIGTERM);
}

}  // namespace
}  // namespace mailroom
