// Mail delivery end to end: a real sending process (tests/e2e/tools/mail_sender: a durable
// outbox plus the delivery worker) gets tokens and send permits from the real broker and
// submits over STARTTLS + XOAUTH2 to the real testbed Postfix. Messages arrive byte-correct
// (Chinese subject and names included); an MTA outage only delays them; and kill -9 of the
// sender in the middle of 1,000 queued messages loses none.
#include <dirent.h>

#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::ChildProcess;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::mailroom::testing::TestbedRunfile;

class DeliveryE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker psn1:psn admin:admin"));
    // The testbed is not Exchange: lift the per-minute limit so 1,000 messages take seconds.
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        absl::StrCat(getenv("TEST_TMPDIR"), "/broker"), *certs_, *testbed_,
        "send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }");
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    ASSERT_TRUE(broker_->Configure(BrokerHarness::TestbedSettings(*testbed_)).ok());
  }
  static void TearDownTestSuite() {
    delete broker_;
    delete testbed_;
  }

  void SetUp() override {
    dir_ = absl::StrCat(getenv("TEST_TMPDIR"), "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(system(absl::StrCat("rm -rf '", dir_, "' && mkdir -p '", dir_, "/dump'").c_str()), 0);
  }

  std::unique_ptr<ChildProcess> Sender(const std::string& to, int enqueue, int first,
                                       bool exit_when_drained, bool deliver = true,
                                       int lifetime_s = 86400, int enqueue_delay_ms = 0) {
    std::vector<std::string> argv = {
        TestbedRunfile("tests/e2e/tools/mail_sender"),
        absl::StrCat("--outbox=", dir_, "/outbox.db"),
        absl::StrCat("--broker=", broker_->target()),
        absl::StrCat("--certs=", *certs_),
        "--node=psn1",
        absl::StrCat("--from=", testbed_->Env("MAILBOX")),
        absl::StrCat("--to=", to),
        absl::StrCat("--enqueue=", enqueue),
        absl::StrCat("--first=", first),
        absl::StrCat("--ack_file=", dir_, "/acks"),
        absl::StrCat("--dump_dir=", dir_, "/dump")};
    if (exit_when_drained) argv.push_back("--exit_when_drained");
    if (!deliver) argv.push_back("--deliver=false");
    argv.push_back(absl::StrCat("--lifetime_s=", lifetime_s));
    argv.push_back(absl::StrCat("--enqueue_delay_ms=", enqueue_delay_ms));
    argv.push_back(absl::StrCat("--offline_grace_s=", offline_grace_s_));
    return std::make_unique<ChildProcess>(argv, absl::StrCat(dir_, "/sender.log"));
  }

  // Waits for the process to exit by itself; returns its exit code (-1 on timeout).
  static int WaitExit(ChildProcess& process, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (process.running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
    return process.running() ? -1 : process.Terminate();
  }

  // Message-ID → number of copies delivered to `to`.
  std::map<std::string, int> DeliveredMessageIds(const std::string& to) {
    std::map<std::string, int> ids;
    for (const std::string& message : testbed_->DeliveredTo(to)) {
      for (absl::string_view line : absl::StrSplit(message, '\n')) {
        if (absl::StartsWithIgnoreCase(line, "Message-ID:")) {
          ++ids[std::string(absl::StripAsciiWhitespace(line.substr(11)))];
          break;
        }
      }
    }
    return ids;
  }

  std::vector<std::string> Acked() {
    std::vector<std::string> ids;
    for (absl::string_view line : absl::StrSplit(ReadAll(dir_ + "/acks"), '\n', absl::SkipEmpty())) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ');
      if (parts.size() == 2) ids.push_back(absl::StrCat("<", parts[1], ">"));
    }
    return ids;
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  std::string dir_;
  // DeliveryOptions::offline_grace of the senders (the default unless a test shortens it).
  int offline_grace_s_ = 75;
};

Testbed* DeliveryE2eTest::testbed_ = nullptr;
std::string* DeliveryE2eTest::certs_ = nullptr;
BrokerHarness* DeliveryE2eTest::broker_ = nullptr;

TEST_F(DeliveryE2eTest, ChineseMessagesArriveByteCorrect) {
  const std::string to = "guest-zh@example.test";
  auto sender = Sender(to, 3, 0, true);
  ASSERT_EQ(WaitExit(*sender, absl::Seconds(60)), 0) << ReadAll(sender->log_path());
  const std::vector<std::string> delivered = testbed_->WaitForDelivered(to, 3, absl::Seconds(20));
  ASSERT_EQ(delivered.size(), 3u);
  for (int n = 0; n < 3; ++n) {
    // The Maildir stores LF line endings and the MTA's trace headers on top; after those the
    // message must be exactly what was queued.
    const std::string queued =
        absl::StrReplaceAll(ReadAll(absl::StrCat(dir_, "/dump/", n, ".eml")), {{"\r\n", "\n"}});
    ASSERT_FALSE(queued.empty());
    int found = 0;
    for (const std::string& message : delivered) found += absl::EndsWith(message, queued);
    EXPECT_EQ(found, 1) << "message " << n << " not delivered byte-correct";
    // RFC 2047: the Chinese subject travels as UTF-8 encoded-words.
    EXPECT_THAT(queued, ::testing::HasSubstr("Subject: =?UTF-8?"));
  }
}

TEST_F(DeliveryE2eTest, MessagesWaitOutAnMtaOutageAndAllArrive) {
  const std::string to = "outage@example.test";
  ASSERT_EQ(testbed_->RunScript({"svc-stop", testbed_->dir(), "postfix"}), 0);
  auto sender = Sender(to, 20, 0, true);
  absl::SleepFor(absl::Seconds(6));  // several delivery attempts fail meanwhile
  EXPECT_TRUE(sender->running());
  EXPECT_TRUE(testbed_->DeliveredTo(to).empty());
  ASSERT_EQ(testbed_->RunScript({"svc-start", testbed_->dir(), "postfix"}), 0);
  ASSERT_EQ(WaitExit(*sender, absl::Seconds(90)), 0) << ReadAll(sender->log_path());
  const std::map<std::string, int> ids = DeliveredMessageIds(to);
  std::vector<std::string> acked = Acked();
  ASSERT_EQ(acked.size(), 20u);
  for (const std::string& id : acked) EXPECT_EQ(ids.count(id), 1u) << id;
}

// Faults from the real MTA after AUTH (the testbed's reject@ / tempfail@ recipients): a 5xx
// fails the message at once with its cause; a 4xx is retried until the retry lifetime runs
// out, and only then fails.
TEST_F(DeliveryE2eTest, PermanentAndTransientRepliesEndInTheRightState) {
  auto rejected = Sender("reject@example.test", 1, 0, true);
  ASSERT_EQ(WaitExit(*rejected, absl::Seconds(60)), 0);
  std::string log = ReadAll(rejected->log_path());
  EXPECT_THAT(log, ::testing::HasSubstr(
                       "NOTIFICATION_STATE_FAILED attempts=1 reply=550 "
                       "cause=FAILURE_CAUSE_RECIPIENT_REJECTED"))
      << log;

  ASSERT_EQ(system(absl::StrCat("rm -rf '", dir_, "/outbox.db'*").c_str()), 0);
  auto deferred = Sender("tempfail@example.test", 1, 0, true, true, /*lifetime_s=*/6);
  ASSERT_EQ(WaitExit(*deferred, absl::Seconds(60)), 0);
  log = ReadAll(deferred->log_path());
  EXPECT_THAT(log, ::testing::HasSubstr("NOTIFICATION_STATE_FAILED")) << log;
  EXPECT_THAT(log, ::testing::HasSubstr("reply=451 cause=FAILURE_CAUSE_SMTP_TRANSIENT")) << log;
  EXPECT_THAT(log, ::testing::Not(::testing::HasSubstr("attempts=1 reply=451"))) << log;
}

// The broker stops: once offline_grace has passed (shortened here to 3 s) the node keeps
// sending a small allowance (10 a minute) on its cached token, the rest waits in the outbox,
// and everything drains once the broker is back, which first counts what was sent without it.
TEST_F(DeliveryE2eTest, ABrokerOutageSlowsButDoesNotStopOrLoseMail) {
  const std::string to = "broker-outage@example.test";
  offline_grace_s_ = 3;
  auto sender = Sender(to, 15, 0, true, true, 86400, /*enqueue_delay_ms=*/2500);
  absl::SleepFor(absl::Seconds(1));  // the sender has its token and settings by now
  broker_->process().Terminate();
  // Ten are enqueued 2.5 s apart (22.5 s); wait for them on the condition, well inside the
  // minute the allowance covers.
  for (int i = 0; i < 450 && testbed_->DeliveredTo(to).size() < 10; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  absl::SleepFor(absl::Seconds(2));
  const size_t during_outage = testbed_->DeliveredTo(to).size();
  EXPECT_EQ(during_outage, 10u);  // the offline allowance, on the cached token
  EXPECT_TRUE(sender->running());
  ASSERT_TRUE(broker_->Restart().ok());
  ASSERT_EQ(WaitExit(*sender, absl::Seconds(90)), 0) << ReadAll(sender->log_path());
  EXPECT_EQ(DeliveredMessageIds(to).size(), 15u);
  // The node told the restarted broker what it had sent without a permit.
  EXPECT_THAT(ReadAll(broker_->log_path()),
              ::testing::HasSubstr("without a permit while no broker led"))
      << "the offline sends were not reported to the broker";
  std::cout << "broker stopped: " << during_outage << during_outage << " of 15 sent on the cached token; "
            << DeliveredMessageIds(to).size() << " after it returned" << std::endl;
}

TEST_F(DeliveryE2eTest, KillNineInTheMiddleOfAThousandLosesNothing) {
  const std::string to = "bulk@example.test";
  // Queue all 1,000 first (every one acknowledged, i.e. durably committed)...
  auto queue = Sender(to, 1000, 0, false, /*deliver=*/false);
  ASSERT_EQ(WaitExit(*queue, absl::Seconds(120)), 0) << ReadAll(queue->log_path());
  ASSERT_EQ(Acked().size(), 1000u);
  // ...then let a sender deliver part of them, and kill it without warning.
  auto sender = Sender(to, 0, 0, false);
  for (int i = 0; i < 600 && DeliveredMessageIds(to).size() < 150; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  sender->Kill();
  const size_t before_restart = DeliveredMessageIds(to).size();
  const std::vector<std::string> acked = Acked();
  EXPECT_GT(before_restart, 0u);
  EXPECT_LT(before_restart, 1000u) << "the kill came too late to test anything";
  // Restart on the same outbox: the interrupted sends are re-queued and everything drains.
  auto restarted = Sender(to, 0, 0, true);
  ASSERT_EQ(WaitExit(*restarted, absl::Seconds(240)), 0) << ReadAll(restarted->log_path());
  testbed_->WaitForDelivered(to, 1000, absl::Seconds(60));
  const std::map<std::string, int> ids = DeliveredMessageIds(to);
  const std::vector<std::string> all_acked = Acked();
  std::set<std::string> distinct_acked(all_acked.begin(), all_acked.end());
  EXPECT_EQ(distinct_acked.size(), 1000u);
  int duplicates = 0;
  for (const std::string& id : distinct_acked) {
    ASSERT_EQ(ids.count(id), 1u) << "lost: " << id;
    duplicates += ids.at(id) - 1;
  }
  // At-least-once: a copy sent twice carries the same Message-ID (counted above), never a new one.
  EXPECT_EQ(ids.size(), 1000u);
  std::cout << "kill -9 after " << before_restart << " delivered of " << acked.size()
            << " acknowledged; after restart: " << ids.size() << " distinct delivered, "
            << duplicates << " duplicate copies (same Message-ID)" << std::endl;
}

}  // namespace
}  // namespace mailroom
