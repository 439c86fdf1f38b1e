#include "tests/testing/node_config_files.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mailroom::testing {
namespace {

void WriteFile(const std::string& path, absl::string_view content) {
  std::ofstream out(path);
  out << content;
}

}  // namespace

std::string MakeNodeConfigDir() {
  const std::string dir = absl::StrCat(
      getenv("TEST_TMPDIR"), "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
  mkdir(dir.c_str(), 0700);
  mkdir((dir + "/data").c_str(), 0700);
  for (const char* name : {"ca.pem", "node.pem", "node.key"}) WriteFile(dir + "/" + name, "x");
  return dir;
}

std::string WritePsnConfig(const std::string& dir, absl::string_view extra) {
  const std::string path = dir + "/psn.textproto";
  WriteFile(path, absl::StrCat(R"(
node_name: "psn-1"
role: ROLE_PSN
listen_address: "[::]:7100"
tls { ca_file: "ca.pem" cert_file: "node.pem" key_file: "node.key" }
broker_target: "broker:7000"
data_dir: "data"
)",
                               extra));
  return path;
}

}  // namespace mailroom::testing
