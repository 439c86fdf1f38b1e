#include "common/node/node_config.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "common/base/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/node_config_files.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
using ::testing::HasSubstr;
using ::testing::Not;

class NodeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("MAILROOM_NODE_NAME");
    dir_ = testing::MakeNodeConfigDir();
  }

  // A valid PSN config with `extra` appended; relative paths, as an operator writes them.
  std::string Write(const std::string& extra) { return testing::WritePsnConfig(dir_, extra); }

  std::string dir_;
};

TEST_F(NodeConfigTest, LoadsAndResolvesRelativePaths) {
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(Write(""), cv1::ROLE_PSN);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name(), "psn-1");
  EXPECT_EQ(config->data_dir(), dir_ + "/data");
  const TlsFiles files = TlsFilesOf(*config);
  EXPECT_EQ(files.ca_file, dir_ + "/ca.pem");
  EXPECT_EQ(files.cert_file, dir_ + "/node.pem");
  EXPECT_EQ(files.key_file, dir_ + "/node.key");
}

TEST_F(NodeConfigTest, EnvironmentNamesThePod) {
  setenv("MAILROOM_NODE_NAME", "psn-7", 1);
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(Write(""), cv1::ROLE_PSN);
  unsetenv("MAILROOM_NODE_NAME");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name(), "psn-7");
}

TEST_F(NodeConfigTest, EachBrokerPodAdvertisesItsOwnName) {
  const std::string path = dir_ + "/broker.textproto";
  std::ofstream(path) << R"(node_name: "broker"
role: ROLE_BROKER
listen_address: "[::]:7100"
tls { ca_file: "ca.pem" cert_file: "node.pem" key_file: "node.key" }
data_dir: "data"
broker { ha { etcd_endpoints: ["https://etcd-0.etcd:2379"]
              advertised_address: "{node_name}.broker-pods.mailroom.svc:7100" } }
)";
  setenv("MAILROOM_NODE_NAME", "mailroom-broker-1", 1);
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(path, cv1::ROLE_BROKER);
  unsetenv("MAILROOM_NODE_NAME");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->broker().ha().advertised_address(),
            "mailroom-broker-1.broker-pods.mailroom.svc:7100");
}

TEST_F(NodeConfigTest, WrongRoleAndBadFieldsAreAllNamed) {
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(
      Write("mnt_target: \"no-port\"\n"
            "delivery { smtp_connections: -1 backlog_alarm_queued: -2 "
            "backlog_alarm_age { seconds: -5 } }\n"),
      cv1::ROLE_MNT);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("role: must be ROLE_MNT for this program (is ROLE_PSN)"));
  EXPECT_THAT(message, HasSubstr("mnt_target: must be host:port"));
  EXPECT_THAT(message, HasSubstr("delivery.smtp_connections: must not be negative"));
  EXPECT_THAT(message, HasSubstr("delivery.backlog_alarm_queued: must not be negative"));
  EXPECT_THAT(message, HasSubstr("delivery.backlog_alarm_age: must not be negative"));
  EXPECT_THAT(message, HasSubstr("psn.textproto:"));  // the file (and line) is named
}

TEST_F(NodeConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(dir_ + "/absent.textproto", cv1::ROLE_PSN);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("absent.textproto"));
}

TEST_F(NodeConfigTest, ValidateChecksRequiredFieldsWithoutALocator) {
  NodeConfig config;
  config.set_role(cv1::ROLE_PAN);
  const absl::Status status = ValidateNodeConfig(config, cv1::ROLE_PAN, nullptr);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("node_name: is required"));
  EXPECT_THAT(message, HasSubstr("listen_address: is required"));
  EXPECT_THAT(message, HasSubstr("tls.ca_file: is required"));
  EXPECT_THAT(message, HasSubstr("broker_target: is required on PAN, PSN and MnT nodes"));
  EXPECT_THAT(message, HasSubstr("data_dir: is required"));
  EXPECT_THAT(message, Not(HasSubstr("role:")));
}

TEST_F(NodeConfigTest, BrokerLimitsAndAuthorityAreChecked) {
  NodeConfig config;
  config.set_role(cv1::ROLE_BROKER);
  config.mutable_broker()->add_secret_expiry_alarm_days(400);
  config.mutable_broker()->mutable_send_limits()->set_messages_per_minute(-1);
  config.mutable_broker()->set_default_authority_host("http://login.example");
  const std::string message(ValidateNodeConfig(config, cv1::ROLE_BROKER, nullptr).message());
  EXPECT_THAT(message, HasSubstr("broker.secret_expiry_alarm_days[0]: must be 0..365"));
  EXPECT_THAT(message, HasSubstr("broker.send_limits.messages_per_minute: must not be negative"));
  EXPECT_THAT(message, HasSubstr("broker.default_authority_host: must be an https:// URL"));
  EXPECT_THAT(message, Not(HasSubstr("broker_target")));  // the broker needs none
}

TEST_F(NodeConfigTest, SeveralBrokersAreListedOnceEachAndNotBesideASingleTarget) {
  NodeConfig config;
  config.set_role(cv1::ROLE_PSN);
  config.add_broker_targets("pan-1.example:7100");
  config.add_broker_targets("pan-2");
  config.add_broker_targets("pan-1.example:7100");
  std::string message(ValidateNodeConfig(config, cv1::ROLE_PSN, nullptr).message());
  EXPECT_THAT(message, HasSubstr("broker_targets[1]: must be host:port"));
  EXPECT_THAT(message, HasSubstr("broker_targets[2]: repeats broker_targets[0]"));
  EXPECT_THAT(message, Not(HasSubstr("broker_target: is required")));

  config.set_broker_target("pan-1.example:7100");
  message = std::string(ValidateNodeConfig(config, cv1::ROLE_PSN, nullptr).message());
  EXPECT_THAT(message, HasSubstr("broker_targets: set either broker_target (one broker) or "
                                 "broker_targets, not both"));
}

TEST_F(NodeConfigTest, BrokerHaIsChecked) {
  NodeConfig config;
  config.set_role(cv1::ROLE_BROKER);
  config::v1::BrokerHaConfig* ha = config.mutable_broker()->mutable_ha();
  ha->add_etcd_endpoints("http://etcd.example:2379");
  ha->add_etcd_endpoints("https://etcd.example:2379");
  ha->mutable_lease_ttl()->set_seconds(1);
  ha->set_etcd_cert_file("etcd.pem");
  const std::string message(ValidateNodeConfig(config, cv1::ROLE_BROKER, nullptr).message());
  EXPECT_THAT(message, HasSubstr("broker.ha.etcd_endpoints[0]: must be an https:// URL"));
  EXPECT_THAT(message, Not(HasSubstr("etcd_endpoints[1]")));
  EXPECT_THAT(message, HasSubstr("broker.ha.advertised_address: must be host:port"));
  EXPECT_THAT(message, HasSubstr("broker.ha.lease_ttl: must be at least 2 seconds"));
  EXPECT_THAT(message, HasSubstr("etcd_cert_file and etcd_key_file go together"));
}

// L13: metrics are served without authentication, so beyond loopback only on request.
TEST_F(NodeConfigTest, MetricsBeyondLoopbackNeedAnExplicitOptIn) {
  for (const char* address : {"127.0.0.1:9103", "[::1]:9103", "localhost:9103", "127.1.2.3:1"}) {
    EXPECT_TRUE(LoadNodeConfig(Write(absl::StrCat("metrics_listen_address: \"", address, "\"")),
                               cv1::ROLE_PSN)
                    .ok())
        << address;
  }
  for (const char* address : {"0.0.0.0:9103", "[::]:9103", "10.0.0.5:9103", "127.0.0.300:1"}) {
    absl::StatusOr<NodeConfig> config = LoadNodeConfig(
        Write(absl::StrCat("metrics_listen_address: \"", address, "\"")), cv1::ROLE_PSN);
    EXPECT_FALSE(config.ok()) << address;
    EXPECT_THAT(std::string(config.status().message()),
                HasSubstr("metrics_listen_address: is not a loopback address"));
  }
  EXPECT_TRUE(LoadNodeConfig(Write("metrics_listen_address: \"0.0.0.0:9103\"\n"
                                   "metrics_allow_remote: true"),
                             cv1::ROLE_PSN)
                  .ok());
}

// L13: the log file was created with the umask's mode (0644 under a default umask).
TEST_F(NodeConfigTest, TheLogFileIsCreatedOwnerOnly) {
  const mode_t old_umask = umask(022);
  mailroom::config::v1::LoggingConfig logging;
  logging.set_file(dir_ + "/node.log");
  const absl::Status applied = ApplyLoggingConfig(logging);
  umask(old_umask);
  ASSERT_TRUE(applied.ok()) << applied;
  MR_LOG(kWarn, kLogConfig) << "a line for the file";
  Logging::SetSink(std::make_shared<StderrLogSink>());
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/node.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(dir_ + "/node.log");
  std::string line;
  std::getline(in, line);
  EXPECT_THAT(line, HasSubstr("a line for the file"));
}

TEST(LogComponentName, NamesEveryComponent) {
  EXPECT_STREQ(LogComponentName(config::v1::LOG_COMPONENT_SMTP), kLogSmtp);
  EXPECT_EQ(LogComponentName(config::v1::LOG_COMPONENT_UNSPECIFIED), nullptr);
}

}  // namespace
}  // namespace mailroom
