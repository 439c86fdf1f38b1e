// NodeWatch with a fake clock and a scripted probe: a node silent past down_after raises
// NODE_DOWN once, naming the node, its role and since when; its return clears it; a node
// that never answered is reported from the watch's start.
#include "mnt/node_watch.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/capturing_alarms.h"
#include "tests/testing/fake_clock.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

WatchedNode Node(const std::string& name, cv1::Role role) {
  WatchedNode node;
  node.set_name(name);
  node.set_target(name + ".example.net:7103");
  node.set_role(role);
  return node;
}

class NodeWatchTest : public ::testing::Test {
 protected:
  NodeWatchTest()
      : watch_({Node("psn1", cv1::ROLE_PSN), Node("pan", cv1::ROLE_PAN)},
               [this](const WatchedNode& node) {
                 return up_[node.name()] ? absl::OkStatus()
                                         : absl::UnavailableError("connection refused");
               },
               &alarms_, &clock_, Options()) {}

  static NodeWatchOptions Options() {
    NodeWatchOptions options;
    options.mnt_node_name = "mnt1";
    options.down_after = absl::Seconds(30);
    return options;
  }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  std::map<std::string, bool> up_{{"psn1", true}, {"pan", true}};
  ::mailroom::testing::CapturingAlarms alarms_;
  NodeWatch watch_;
};

TEST_F(NodeWatchTest, ASilentNodeIsDownOnceAndClearsWhenItReturns) {
  watch_.CheckAll();
  up_["psn1"] = false;
  for (int i = 0; i < 3; ++i) {  // 10, 20 and 29 s of silence: not yet
    clock_.Advance(i == 2 ? absl::Seconds(9) : absl::Seconds(10));
    watch_.CheckAll();
  }
  EXPECT_TRUE(alarms_.Events().empty());
  clock_.Advance(absl::Seconds(1));  // 30 s since the last good answer
  watch_.CheckAll();
  for (int i = 0; i < 5; ++i) {  // still down: nothing more is raised
    clock_.Advance(absl::Seconds(10));
    watch_.CheckAll();
  }
  ASSERT_THAT(alarms_.Events(), ElementsAre("raise node-down/psn1 ALARM_SEVERITY_CRITICAL"));
  const RaiseAlarmRequest alarm = alarms_.raised[0];
  EXPECT_EQ(alarm.type(), mv1::ALARM_TYPE_NODE_DOWN);
  EXPECT_EQ(alarm.source_node(), "mnt1");
  EXPECT_THAT(alarm.text(), HasSubstr("Node psn1 (ROLE_PSN at psn1.example.net:7103)"));
  EXPECT_THAT(alarm.text(), HasSubstr("has not answered since 2027-01-15 08:00:00 UTC"));
  EXPECT_THAT(alarm.text(), HasSubstr("connection refused"));
  EXPECT_THAT(alarm.text(), HasSubstr("Guests and sponsors"));
  EXPECT_TRUE(watch_.sightings()["psn1"].down);
  up_["psn1"] = true;
  clock_.Advance(absl::Seconds(10));
  watch_.CheckAll();
  EXPECT_THAT(alarms_.Events(), ElementsAre("raise node-down/psn1 ALARM_SEVERITY_CRITICAL",
                                            "clear node-down/psn1"));
  EXPECT_FALSE(watch_.sightings()["psn1"].down);
}

TEST_F(NodeWatchTest, ANodeThatNeverAnsweredIsDownFromTheWatchsStart) {
  up_["pan"] = false;
  watch_.CheckAll();
  clock_.Advance(absl::Seconds(30));
  watch_.CheckAll();
  ASSERT_THAT(alarms_.Events(), ElementsAre("raise node-down/pan ALARM_SEVERITY_CRITICAL"));
  EXPECT_THAT(alarms_.raised[0].text(), HasSubstr("since the MnT started watching it"));
  EXPECT_THAT(alarms_.raised[0].text(), HasSubstr("reminders are not sent"));
}

}  // namespace
}  // namespace mailroom::mnt
