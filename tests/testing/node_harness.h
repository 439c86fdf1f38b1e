// Provides NodeHarness, which runs a real mailroom role binary (mailroom-psn, mailroom-pan,
// mailroom-mnt) for end-to-end tests: writes its NodeConfig (text format) into its own
// directory, starts it on a free loopback port with certificates made by deploy/gen-certs.sh,
// and restarts or kills it on demand. Not thread-safe.
#ifndef MAILROOM_TESTS_TESTING_NODE_HARNESS_H_
#define MAILROOM_TESTS_TESTING_NODE_HARNESS_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "tests/testing/process.h"

namespace mailroom::testing {

struct NodeSpec {
  std::string binary;     // workspace path, e.g. "psn/mailroom-psn"
  std::string role;       // "ROLE_PSN", "ROLE_PAN", "ROLE_MNT"
  std::string node_name;  // must have a certificate in `certs`
  std::string dir;        // config, data and log go here
  std::string certs;      // gen-certs.sh directory
  std::string broker_target;
  // The brokers of an HA pair, in the order the node tries them; written as broker_targets
  // in place of broker_target when not empty.
  std::vector<std::string> broker_targets;
  std::string mnt_target;  // empty: alarms are only logged
  // Text-format fields added to the NodeConfig, e.g. "psn { ... }" or
  // "delivery { backoff_initial { seconds: 1 } }".
  std::string extra_config;
  // The NodeConfig's logging section.
  std::string logging = "logging { default_level: LOG_LEVEL_DEBUG }";
  // The port to listen on; 0 picks a free one (set it when another node's config must name
  // this node's address before it starts).
  int port = 0;
};

class NodeHarness {
 public:
  static absl::StatusOr<std::unique_ptr<NodeHarness>> Start(NodeSpec spec);
  ~NodeHarness();

  int port() const { return port_; }
  std::string target() const;
  const std::string& log_path() const { return process_->log_path(); }
  ChildProcess& process() { return *process_; }
  // Starts it again (same config, data and port) after Kill() or Stop().
  absl::Status Restart();
  void Kill() { process_->Kill(); }
  int Stop() { return process_->Terminate(); }

  // A channel authenticated as `node` (a certificate in the spec's `certs`).
  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& node) const;

 private:
  NodeHarness() = default;
  absl::Status Launch();

  NodeSpec spec_;
  std::string config_path_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_NODE_HARNESS_H_
