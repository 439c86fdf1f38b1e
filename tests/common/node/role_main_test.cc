// The shared start of the node binaries: flags, configuration checks, the role's own check,
// and what reaches the role's run.
#include "common/node/role_main.h"

#include <stdlib.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "gtest/gtest.h"
#include "tests/testing/node_config_files.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;

class RoleMainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("MAILROOM_NODE_NAME");
    dir_ = testing::MakeNodeConfigDir();
    config_path_ = testing::WritePsnConfig(dir_);
  }

  // Runs RoleMain with `args` after the program name and exits with its code. absl parses a
  // command line once per process, so each call runs in a death test's child process. The
  // role's run prints what it was given and returns 7.
  static void Main(const RoleProgram& program, std::vector<std::string> args) {
    std::vector<char*> argv = {const_cast<char*>("mailroom-test")};
    for (std::string& arg : args) argv.push_back(arg.data());
    exit(RoleMain(static_cast<int>(argv.size()), argv.data(), program,
                  [](const RoleStart& start) {
                    std::cerr << "run: " << start.config.node_name() << " port_file="
                              << start.port_file << "\n";
                    return 7;
                  }));
  }

  std::string dir_;
  std::string config_path_;
};

TEST_F(RoleMainTest, RunsTheRoleWithTheLoadedConfigAndPortFile) {
  EXPECT_EXIT(Main({"mailroom-psn", cv1::ROLE_PSN, "usage"},
                   {"--config=" + config_path_, "--port_file=/run/psn.port"}),
              ::testing::ExitedWithCode(7), "run: psn-1 port_file=/run/psn.port");
}

TEST_F(RoleMainTest, ARunThatCannotStartExitsOneAndLogsWhy) {
  auto main = [this] {
    std::string config = "--config=" + config_path_;
    char* argv[] = {const_cast<char*>("mailroom-test"), config.data()};
    exit(RoleMain(2, argv, {"mailroom-psn", cv1::ROLE_PSN, "usage", nullptr, kLogPsn},
                  [](const RoleStart&) -> absl::StatusOr<int> {
                    return absl::FailedPreconditionError("/var/lib/x/outbox.db is locked");
                  }));
  };
  EXPECT_EXIT(main(), ::testing::ExitedWithCode(1),
              "guestaccess[^\n]*cannot start: /var/lib/x/outbox.db is locked");
}

TEST_F(RoleMainTest, RequiresConfig) {
  EXPECT_EXIT(Main({"mailroom-psn", cv1::ROLE_PSN, "usage"}, {}), ::testing::ExitedWithCode(2),
              "^mailroom-psn: --config is required\n$");
}

TEST_F(RoleMainTest, RejectsAConfigForAnotherRole) {
  EXPECT_EXIT(Main({"mailroom-mnt", cv1::ROLE_MNT, "usage"}, {"--config=" + config_path_}),
              ::testing::ExitedWithCode(2), "^mailroom-mnt: [^\n]*role");
}

TEST_F(RoleMainTest, ReportsTheRolesOwnCheckWithThePath) {
  RoleProgram program{"mailroom-psn", cv1::ROLE_PSN, "usage", [](const NodeConfig& config) {
                        return absl::InvalidArgumentError(
                            absl::StrCat("psn: not for ", config.node_name()));
                      }};
  EXPECT_EXIT(Main(program, {"--config=" + config_path_}), ::testing::ExitedWithCode(2),
              absl::StrCat("^mailroom-psn: ", config_path_, ": psn: not for psn-1\n$"));
}

}  // namespace
}  // namespace mailroom
