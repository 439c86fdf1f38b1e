// Debug logging changed at run time, end to end: a real mailroom-psn process and the real
// mailroomctl over mutual TLS. `log show` lists the PSN's components at their configured
// levels; a portal test email leaves no DEBUG line in the PSN's log; `log set psn1
// guestaccess DEBUG for=10s` makes the next one write "rendered template" at DEBUG, and `log
// show` names the override and when it reverts; about ten seconds later (real clock) the level
// is back to INFO by itself and a further test email writes no DEBUG line. A bad component,
// level or duration is refused naming the field. No broker or MTA is needed: rendering
// happens when the PSN queues the mail, and the mail stays queued.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/mailroomctl.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"

namespace mailroom {
namespace {

using ::mailroom::testing::CtlResult;
using ::mailroom::testing::Mailroomctl;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRenderedLine[] = "DEBUG [guestaccess] rendered template";

// How many lines of `text` contain `needle`.
int CountLines(const std::string& text, const std::string& needle) {
  int count = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, needle)) ++count;
  }
  return count;
}

// The line of `component` in `log show` output.
std::string ComponentLine(const std::string& output, const std::string& component) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), absl::StrCat(component, " "))) {
      return std::string(line);
    }
  }
  return "";
}

class LogLevelE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string tmp = getenv("TEST_TMPDIR");
    certs_ = mailroom::testing::MakeTestCerts("certs", "mailroom cluster CA",
                                              "psn1:psn admin:admin");
    NodeSpec spec;
    spec.binary = "psn/mailroom-psn";
    spec.role = "ROLE_PSN";
    spec.node_name = "psn1";
    spec.dir = absl::StrCat(tmp, "/psn1");
    spec.certs = certs_;
    // Nothing listens there: the mail stays queued, which is all this test needs.
    spec.broker_target = "localhost:1";
    // Everything at DEBUG (for a failure's log) but guestaccess, configured at INFO.
    spec.logging =
        "logging { default_level: LOG_LEVEL_DEBUG component_levels {"
        " component: LOG_COMPONENT_PSN level: LOG_LEVEL_INFO } }";
    spec.extra_config =
        "psn { guest_email_settings { notifications_enabled: true"
        " default_from { address: \"noreply@example.test\" } } }\n";
    absl::StatusOr<std::unique_ptr<NodeHarness>> psn = NodeHarness::Start(spec);
    ASSERT_TRUE(psn.ok()) << psn.status();
    psn_ = *std::move(psn);
    ctl_ = std::make_unique<Mailroomctl>(
        absl::StrCat(tmp, "/ctl"), certs_,
        absl::StrCat("broker_target: \"localhost:1\"\npsn_targets: \"", psn_->target(),
                     "\"\nrpc_timeout { seconds: 10 }"));
  }

  void TearDown() override {
    if (HasFailure() && psn_ != nullptr) std::cerr << "---- psn1 log\n" << ReadAll(psn_->log_path());
  }

  // A portal test email through the PSN (rendered when it is queued).
  void SendTestEmail(const std::string& key) {
    const CtlResult sent = ctl_->Run({"guest", "test-email", "portal=lobby",
                                      "to=guest@example.test", absl::StrCat("key=", key)});
    ASSERT_EQ(sent.exit_code, 0) << sent.output;
  }
  int RenderedLines() { return CountLines(ReadAll(psn_->log_path()), kRenderedLine); }

  std::string certs_;
  std::unique_ptr<NodeHarness> psn_;
  std::unique_ptr<Mailroomctl> ctl_;
};

TEST_F(LogLevelE2eTest, SetForTenSecondsChangesTheRunningNodeAndRevertsOnTime) {
  const CtlResult before = ctl_->Run({"log", "show", "psn1"});
  ASSERT_EQ(before.exit_code, 0) << before.output;
  EXPECT_THAT(before.output, HasSubstr("psn1 log levels (default DEBUG)"));
  EXPECT_THAT(ComponentLine(before.output, "guestaccess"), HasSubstr("INFO"));
  EXPECT_THAT(ComponentLine(before.output, "smtp"), HasSubstr("DEBUG"));
  ASSERT_NO_FATAL_FAILURE(SendTestEmail("before"));
  EXPECT_EQ(RenderedLines(), 0);

  const absl::Time set_time = absl::Now();
  const CtlResult set = ctl_->Run({"log", "set", "psn1", "guestaccess", "debug", "for=10s"});
  ASSERT_EQ(set.exit_code, 0) << set.output;
  EXPECT_THAT(set.output, HasSubstr("psn1: guestaccess at DEBUG (back to INFO at "));
  const CtlResult during = ctl_->Run({"log", "show", "psn1"});
  EXPECT_THAT(ComponentLine(during.output, "guestaccess"), HasSubstr("DEBUG (back to INFO at"));
  const CtlResult json = ctl_->Run({"--json", "log", "show", "psn1"});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_THAT(json.output, HasSubstr("\"overridden\": true"));
  EXPECT_THAT(json.output, HasSubstr("\"revert_time\""));
  ASSERT_NO_FATAL_FAILURE(SendTestEmail("during"));
  EXPECT_EQ(RenderedLines(), 1) << "raising guestaccess to DEBUG shows each rendered template";
  EXPECT_THAT(ReadAll(psn_->log_path()), Not(HasSubstr("********")));
  EXPECT_THAT(ReadAll(psn_->log_path()),
              HasSubstr("log level of guestaccess set to DEBUG for 10s (by admin)"));

  // Back by itself, on the node's real clock.
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string line =
            ComponentLine(ctl_->Run({"log", "show", "psn1"}).output, "guestaccess");
        return absl::StrContains(line, "INFO") && !absl::StrContains(line, "back to");
      },
      absl::Seconds(20)));
  const absl::Duration reverted_after = absl::Now() - set_time;
  EXPECT_GE(reverted_after, absl::Seconds(9));
  EXPECT_LE(reverted_after, absl::Seconds(15));
  EXPECT_THAT(ReadAll(psn_->log_path()),
              HasSubstr("log level of guestaccess back to INFO (the override's time is over)"));
  ASSERT_NO_FATAL_FAILURE(SendTestEmail("after"));
  EXPECT_EQ(RenderedLines(), 1);
}

TEST_F(LogLevelE2eTest, BadInputIsRefusedNamingTheField) {
  const CtlResult component = ctl_->Run({"log", "set", "psn1", "guest-access", "DEBUG"});
  EXPECT_EQ(component.exit_code, 1);
  EXPECT_THAT(component.output, HasSubstr("component: unknown log component \"guest-access\""));
  const CtlResult level = ctl_->Run({"log", "set", "psn1", "guestaccess", "LOUD"});
  EXPECT_EQ(level.exit_code, 1);
  EXPECT_THAT(level.output, HasSubstr("level: unknown log level \"LOUD\""));
  const CtlResult duration = ctl_->Run({"log", "set", "psn1", "guestaccess", "DEBUG", "for=soon"});
  EXPECT_EQ(duration.exit_code, 2);
  EXPECT_THAT(duration.output, HasSubstr("for: bad duration \"soon\""));
  const CtlResult node = ctl_->Run({"log", "show", "psn7"});
  EXPECT_EQ(node.exit_code, 1);
  EXPECT_THAT(node.output, HasSubstr("unknown node \"psn7\""));
  EXPECT_THAT(ComponentLine(ctl_->Run({"log", "show", "psn1"}).output, "guestaccess"),
              HasSubstr("INFO"));
}

}  // namespace
}  // namespace mailroom
