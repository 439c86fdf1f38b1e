#include "cli/arguments.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const ArgumentSpec kSpec = {{"portal", "email", "key"}, {"copy_me", "resolve"}, {"ID"}, 0};

absl::StatusOr<Arguments> Parse(const std::vector<std::string>& words,
                                const ArgumentSpec& spec = kSpec) {
  return Arguments::Parse(words, spec);
}

TEST(Arguments, OptionsSwitchesAndPositionalInAnyOrder) {
  absl::StatusOr<Arguments> args =
      Parse({"copy_me", "portal=lobby", "psn2/01J0000000000000000000000", "email=a=b@x.test"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->Has("copy_me"));
  EXPECT_EQ(args->Get("copy_me"), "");
  EXPECT_FALSE(args->Has("resolve"));
  EXPECT_EQ(args->Get("portal"), "lobby");
  // Only the first '=' separates the name from the value.
  EXPECT_EQ(args->Get("email"), "a=b@x.test");
  EXPECT_THAT(args->positional(), ElementsAre("psn2/01J0000000000000000000000"));
}

TEST(Arguments, ABareWordWithoutASlashIsPositionalToo) {
  // The PSN's parser took only words with a "/" as positional; now any non-switch word is.
  absl::StatusOr<Arguments> args = Parse({"99999"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positional(), ElementsAre("99999"));
}

TEST(Arguments, AnEmptyValueIsGivenAndTheLastValueWins) {
  absl::StatusOr<Arguments> args = Parse({"key=", "portal=a", "portal=b"});
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_TRUE(args->Has("key"));
  EXPECT_EQ(args->Get("key", "fallback"), "");
  EXPECT_EQ(args->Get("email", "fallback"), "fallback");
  EXPECT_EQ(args->Get("portal"), "b");
  EXPECT_EQ(args->named().size(), 2u);
}

TEST(Arguments, AnUnknownOptionIsRefusedByName) {
  absl::StatusOr<Arguments> args = Parse({"portal=lobby", "prtal=lobby"});
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("\"prtal=lobby\": unknown option \"prtal\""));
  EXPECT_THAT(args.status().message(), HasSubstr("known: portal, email, key, copy_me, resolve"));
}

TEST(Arguments, ASwitchTakesNoValue) {
  absl::StatusOr<Arguments> args = Parse({"copy_me=yes"});
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("\"copy_me=yes\": copy_me is a switch"));
}

TEST(Arguments, AWordStartingWithEqualsIsRefused) {
  absl::StatusOr<Arguments> args = Parse({"=lobby"});
  EXPECT_THAT(args.status().message(), HasSubstr("\"=lobby\": expected NAME=VALUE"));
}

TEST(Arguments, AnExtraWordIsRefusedByName) {
  absl::StatusOr<Arguments> args = Parse({"first-id", "second-id"});
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(args.status().message(), HasSubstr("unexpected argument \"second-id\""));
  EXPECT_THAT(args.status().message(), HasSubstr("takes ID"));
  EXPECT_THAT(Parse({"x"}, {{"portal"}}).status().message(),
              HasSubstr("unexpected argument \"x\" (this command takes no positional"));
}

TEST(Arguments, AnOptionNameWithoutAValueSaysSo) {
  // With the ID slot free, a bare "portal" is the ID; once taken, it must be an option.
  absl::StatusOr<Arguments> args = Parse({"an-id", "portal"});
  EXPECT_THAT(args.status().message(), HasSubstr("\"portal\": an option needs a value"));
}

TEST(Arguments, AMissingRequiredPositionalIsNamed) {
  const ArgumentSpec spec = {{}, {}, {"NODE", "ID"}, 2};
  EXPECT_THAT(Parse({}, spec).status().message(), HasSubstr("missing NODE"));
  EXPECT_THAT(Parse({"psn1"}, spec).status().message(), HasSubstr("missing ID"));
  absl::StatusOr<Arguments> args = Parse({"psn1", "psn1/01J"}, spec);
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_THAT(args->positional(), ElementsAre("psn1", "psn1/01J"));
}

TEST(Arguments, NoWordsIsFineWhenNothingIsRequired) {
  absl::StatusOr<Arguments> args = Parse({});
  ASSERT_TRUE(args.ok());
  EXPECT_TRUE(args->named().empty());
  EXPECT_TRUE(args->positional().empty());
}

}  // namespace
}  // namespace mailroom::cli
