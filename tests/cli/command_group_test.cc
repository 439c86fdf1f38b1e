#include "cli/command_group.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::cli {
namespace {

using ::testing::HasSubstr;

// What the last command run was given.
std::vector<std::string> last_positional;
std::string last_key;

int Record(const Admin&, const Arguments& args) {
  last_positional = args.positional();
  last_key = args.Get("key");
  return 7;
}

int Unreachable(const Admin&, const Arguments&) { return 99; }

const CommandGroup& Group() {
  static const CommandGroup* const group = new CommandGroup{
      {"thing", "things"},
      "usage: thing show ID [key=K] | thing show all\n",
      {
          {"thing show", {{"key"}, {}, {"ID"}, 1}, Record, /*needs_admin=*/false},
          {"thing show all", {}, Record, /*needs_admin=*/false},
          {"thing remote", {}, Unreachable},
      }};
  return *group;
}

struct Result {
  absl::optional<int> code;
  std::string err;
};

Result RunGroup(const std::vector<std::string>& args) {
  std::ostringstream err;
  std::streambuf* old = std::cerr.rdbuf(err.rdbuf());
  Result result{RunCommandGroup(Group(), args), ""};
  std::cerr.rdbuf(old);
  result.err = err.str();
  return result;
}

TEST(CommandGroup, OtherWordsAreNotThisGroups) {
  EXPECT_FALSE(RunGroup({"alarm", "list"}).code.has_value());
  EXPECT_FALSE(RunGroup({}).code.has_value());
}

TEST(CommandGroup, RunsTheCommandWithItsParsedArguments) {
  EXPECT_EQ(RunGroup({"thing", "show", "psn1/01J", "key=k1"}).code, 7);
  EXPECT_EQ(last_positional, (std::vector<std::string>{"psn1/01J"}));
  EXPECT_EQ(last_key, "k1");
}

TEST(CommandGroup, TheLongestMatchingCommandWins) {
  EXPECT_EQ(RunGroup({"thing", "show", "all"}).code, 7);
  EXPECT_TRUE(last_positional.empty());
}

TEST(CommandGroup, HelpPrintsTheUsageAndSucceeds) {
  Result result = RunGroup({"thing", "help"});
  EXPECT_EQ(result.code, kExitOk);
  EXPECT_EQ(result.err, Group().usage);
}

TEST(CommandGroup, UnknownCommandsAndBadArgumentsAreUsageErrors) {
  Result result = RunGroup({"thing", "shw"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("mailroomctl: unknown command \"thing shw\"\n"));
  EXPECT_THAT(result.err, HasSubstr("usage: thing show"));

  result = RunGroup({"thing", "show", "one", "two"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("mailroomctl: thing show: unexpected argument \"two\""));

  result = RunGroup({"thing"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_EQ(result.err, Group().usage);
}

TEST(CommandGroup, ACommandNeedingTheAdminConfigRefusesToRunWithoutIt) {
  absl::SetFlag(&FLAGS_config, "");
  Result result = RunGroup({"thing", "remote"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_THAT(result.err, HasSubstr("--config is required"));
}

}  // namespace
}  // namespace mailroom::cli
