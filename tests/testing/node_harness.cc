#include "tests/testing/node_harness.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "common/rpc/tls.h"
#include "tests/testing/testbed.h"

namespace mailroom::testing {

absl::StatusOr<std::unique_ptr<NodeHarness>> NodeHarness::Start(NodeSpec spec) {
  std::unique_ptr<NodeHarness> node(new NodeHarness());
  node->spec_ = std::move(spec);
  const NodeSpec& s = node->spec_;
  if (system(absl::StrCat("mkdir -p '", s.dir, "/data'").c_str()) != 0) {
    return absl::InternalError("cannot create the node's directory");
  }
  node->port_ = s.port != 0 ? s.port : UnusedLoopbackPort();
  node->config_path_ = absl::StrCat(s.dir, "/node.textproto");
  std::ofstream(node->config_path_) << absl::StrCat(
      "node_name: \"", s.node_name, "\"\n", "role: ", s.role, "\n",
      "listen_address: \"127.0.0.1:", node->port_, "\"\n", "tls { ca_file: \"", s.certs,
      "/ca.pem\" cert_file: \"", s.certs, "/", s.node_name, ".pem\" key_file: \"", s.certs, "/",
      s.node_name, ".key\" }\n", s.broker_targets.empty()
          ? absl::StrCat("broker_target: \"", s.broker_target, "\"\n")
          : absl::StrCat("broker_targets: [\"", absl::StrJoin(s.broker_targets, "\", \""),
                         "\"]\n"),
      s.mnt_target.empty() ? "" : absl::StrCat("mnt_target: \"", s.mnt_target, "\"\n"),
      "data_dir: \"", s.dir, "/data\"\n", s.logging, "\n",
      s.extra_config, "\n");
  if (absl::Status status = node->Launch(); !status.ok()) return status;
  return node;
}

NodeHarness::~NodeHarness() {
  if (process_ != nullptr) process_->Terminate();
}

std::string NodeHarness::target() const { return absl::StrCat("localhost:", port_); }

absl::Status NodeHarness::Launch() {
  const std::string port_file = absl::StrCat(spec_.dir, "/port");
  std::remove(port_file.c_str());
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{TestbedRunfile(spec_.binary),
                               absl::StrCat("--config=", config_path_),
                               absl::StrCat("--port_file=", port_file)},
      absl::StrCat(spec_.dir, "/node.log"));
  if (WaitForFile(port_file, absl::Seconds(20)).empty()) {
    return absl::UnavailableError(absl::StrCat(spec_.binary, " did not start; its log:\n",
                                               ReadAll(absl::StrCat(spec_.dir, "/node.log"))));
  }
  return absl::OkStatus();
}

absl::Status NodeHarness::Restart() {
  if (process_ != nullptr && process_->running()) process_->Terminate();
  return Launch();
}

std::shared_ptr<grpc::Channel> NodeHarness::ChannelAs(const std::string& node) const {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = MakeChannelCredentials(
      {absl::StrCat(spec_.certs, "/ca.pem"), absl::StrCat(spec_.certs, "/", node, ".pem"),
       absl::StrCat(spec_.certs, "/", node, ".key")},
      *ParseRole(absl::AsciiStrToLower(absl::StripPrefix(spec_.role, "ROLE_"))));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target(), *credentials, args);
}

}  // namespace mailroom::testing
