// Provides BrokerHarness, which runs the real mailroom-broker binary for end-to-end tests:
// writes its node config (pointing at a running Testbed's token endpoint), starts it on a
// free loopback port with certificates made by deploy/gen-certs.sh, and gives gRPC channels
// that authenticate as any node of the test cluster. Not thread-safe.
#ifndef MAILROOM_TESTS_TESTING_BROKER_HARNESS_H_
#define MAILROOM_TESTS_TESTING_BROKER_HARNESS_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "proto/mailroom/broker/v1/broker.grpc.pb.h"
#include "tests/testing/process.h"
#include "tests/testing/testbed.h"
#include "third_party/grpc_health/health.grpc.pb.h"

namespace mailroom::testing {

class BrokerHarness {
 public:
  // `dir` holds the broker's config, data and log; `certs` a gen-certs.sh directory with at
  // least a "broker" node. `broker_section` is added inside the config's `broker { }` (text
  // format), e.g. "send_limits { messages_per_minute: 100000 }". `top_level_config` is added
  // at the top level of the NodeConfig, e.g. "mnt_target: \"localhost:7104\"".
  static absl::StatusOr<std::unique_ptr<BrokerHarness>> Start(
      const std::string& dir, const std::string& certs, const Testbed& testbed,
      const std::string& broker_section = "", const std::string& top_level_config = "");
  // The same without a testbed: `authority_host` is the broker's default_authority_host.
  // "$PORT" in `broker_section` stands for the broker's port (e.g. in
  // ha { advertised_address: "localhost:$PORT" }).
  static absl::StatusOr<std::unique_ptr<BrokerHarness>> StartWithAuthority(
      const std::string& dir, const std::string& certs, const std::string& authority_host,
      const std::string& broker_section = "", const std::string& top_level_config = "");
  // The same placed on the network as `placement` says: listening on its listen_host, named
  // by its name (target(), and "$NAME" in `broker_section`), run in its namespace.
  static absl::StatusOr<std::unique_ptr<BrokerHarness>> StartPlaced(
      const NetworkPlacement& placement, const std::string& dir, const std::string& certs,
      const std::string& authority_host, const std::string& broker_section = "",
      const std::string& top_level_config = "");
  ~BrokerHarness();

  int port() const { return port_; }
  std::string target() const;
  const std::string& log_path() const { return process_->log_path(); }
  ChildProcess& process() { return *process_; }
  // Starts the same broker again (same config, data and port) after it was stopped.
  absl::Status Restart();

  // A channel authenticated with `node`'s certificate from `certs` (e.g. "admin", "psn1").
  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& node) const;
  std::unique_ptr<mailroom::broker::v1::TokenBroker::Stub> StubAs(const std::string& node) const;

  // Its gRPC health as `node` sees it (an HA leader SERVING, a standby NOT_SERVING); UNKNOWN
  // when it does not answer within 2 s.
  grpc::health::v1::HealthCheckResponse::ServingStatus Health(
      const std::string& node = "psn1") const;

  // Gives the broker that will run in `dir` (the `dir` of its Start) this broker's key, as the
  // admin provisions the secondary of an HA pair: its settings come from etcd.
  absl::Status ProvisionStandby(const std::string& dir) const;

  // Settings that work against the testbed (the good app, the mailbox, the trusted CA).
  static mailroom::broker::v1::SmtpSettings TestbedSettings(const Testbed& testbed);

  // Runs Test Connection as admin; collects the streamed steps into the report.
  absl::StatusOr<mailroom::broker::v1::TestConnectionReport> TestConnection(
      const mailroom::broker::v1::SmtpSettings& settings, const std::string& test_recipient = "");
  // Test Connection, then UpdateSettings with its test id.
  absl::Status Configure(const mailroom::broker::v1::SmtpSettings& settings);

 private:
  BrokerHarness() = default;
  absl::Status Launch();

  NetworkPlacement placement_;
  std::string dir_;
  std::string certs_;
  std::string config_path_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_BROKER_HARNESS_H_
