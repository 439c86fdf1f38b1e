#include "common/base/text_config.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/testdata/test_messages.pb.h"

namespace mailroom {
namespace {

using ::mailroom::testing::TestConfig;
using ::testing::HasSubstr;

TEST(TextConfig, ParsesValidText) {
  TestConfig config;
  ASSERT_TRUE(ParseTextConfig(R"(
    node_name: "psn1"
    port: 7443
    limits { messages_per_minute: 30 }
  )", "node.textproto", &config).ok());
  EXPECT_EQ(config.node_name(), "psn1");
  EXPECT_EQ(config.port(), 7443);
  EXPECT_EQ(config.limits().messages_per_minute(), 30);
}

TEST(TextConfig, UnknownFieldErrorNamesFieldFileAndLine) {
  TestConfig config;
  const absl::Status status = ParseTextConfig("node_name: \"psn1\"\n\nlimits {\n  mesages_per_minute: 30\n}\n",
                                              "node.textproto", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("node.textproto:4:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("mesages_per_minute"));
}

TEST(TextConfig, WrongTypeErrorNamesTheField) {
  TestConfig config;
  const absl::Status status = ParseTextConfig("port: \"seven\"\n", "node.textproto", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("node.textproto:1:"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("port"));
}

TEST(TextConfig, ABadValueAfterSpacesAndDigitsStillNamesItsField) {
  TestConfig config;
  const absl::Status status =
      ParseTextConfig("node_name: \"a\" 9limits  {\n}\nport  :  x\n", "node.textproto", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("node.textproto:"));
}

// Found by tests/fuzz/text_config_fuzzer.cc: the field name of an error was found with
// std::regex, which recursed once per character of the line and overflowed the stack.
TEST(TextConfig, AVeryLongLineIsAnErrorNotACrash) {
  TestConfig config;
  const std::string line = "node_name: \"a\"\n" + std::string(1000000, 'x') + ": 7\n";
  const absl::Status status = ParseTextConfig(line, "node.textproto", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("node.textproto:2:"));
}

TEST(TextConfig, SemanticErrorsNameFieldPathAndLine) {
  TestConfig config;
  FieldLocator locator("node.textproto", &config);
  ASSERT_TRUE(ParseTextConfig("node_name: \"psn1\"\nlimits {\n  max_connections: 0\n}\n"
                              "components { name: \"smtp\" level: \"INFO\" }\n"
                              "components { name: \"token\" level: \"LOUD\" }\n",
                              "node.textproto", &config, &locator)
                  .ok());
  ConfigErrors errors(&locator);
  errors.Add("limits.max_connections", "must be between 1 and 3");
  errors.Add("components[1].level", "unknown log level \"LOUD\"");
  errors.Add("port", "is required");
  const absl::Status status = errors.ToStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("node.textproto:3:3: limits.max_connections: must be between 1 and 3"));
  EXPECT_THAT(message, HasSubstr("node.textproto:6:"));
  EXPECT_THAT(message, HasSubstr("components[1].level: unknown log level"));
  // A field that was never written has no line, but is still named.
  EXPECT_THAT(message, HasSubstr("node.textproto: port: is required"));
}

TEST(TextConfig, NoErrorsIsOk) {
  ConfigErrors errors(nullptr);
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(errors.ToStatus().ok());
}

TEST(TextConfig, MissingFileIsNotFoundNamingThePath) {
  TestConfig config;
  const absl::Status status = LoadTextConfigFile("/nonexistent/mailroom.textproto", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("/nonexistent/mailroom.textproto"));
}

TEST(TextConfig, LoadsAFile) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/node.textproto";
  std::ofstream(path) << "node_name: \"mnt1\"\nport: 0\n";
  TestConfig config;
  ASSERT_TRUE(LoadTextConfigFile(path, &config).ok());
  EXPECT_EQ(config.node_name(), "mnt1");
}

}  // namespace
}  // namespace mailroom
