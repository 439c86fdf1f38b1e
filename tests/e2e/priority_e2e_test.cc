// Issue 13's acceptance for priorities on one mailbox: a password reset queued behind a backlog
// of reminders goes out within one limit window. Every part is real and its own process: the
// testbed (oidc-provider, Postfix with Dovecot validating XOAUTH2) with MtaMeter counting at the
// MTA, the token broker limiting the mailbox to 20 messages a minute (3 connections), a
// mailroom-pan queuing password-expiry reminders (BULK) and a mailroom-psn queuing the reset
// (URGENT) through their gRPC APIs. The reset is queued once the reminders have filled the
// mailbox's minute; it must arrive in the Maildir within 60 s, the MTA must never see more than
// 20 messages in any rolling 60 s, and every reminder must still arrive.
//
// Without priorities the reminders' three connections ask for the room that frees a minute on
// as often as the PSN does and take it in batches of ten, so the reset waits another minute.
// MAILROOM_PRIORITY_REMINDERS sets how many reminders (default 60, three minutes of the
// mailbox's rate; the figure is 300).
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/pan/v1/pan.grpc.pb.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/guest_burst.h"
#include "tests/testing/mta_meter.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/rolling_window.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

using ::mailroom::testing::ArrivalsPerTenSeconds;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::GuestPsnSpec;
using ::mailroom::testing::MostInWindow;
using ::mailroom::testing::MtaMeter;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::Testbed;

constexpr int kPerMinute = 20;
constexpr absl::Duration kWindow = absl::Seconds(60);

int Reminders() {
  const char* value = std::getenv("MAILROOM_PRIORITY_REMINDERS");
  return value != nullptr && std::atoi(value) > 0 ? std::atoi(value) : 60;
}

// A PAN in `dir` that sends password-expiry reminders 14 days ahead from `mailbox`.
NodeSpec ReminderPanSpec(const std::string& dir, const std::string& certs,
                         const std::string& mailbox, const std::string& broker) {
  NodeSpec spec;
  spec.binary = "pan/mailroom-pan";
  spec.role = "ROLE_PAN";
  spec.node_name = "pan1";
  spec.dir = dir;
  spec.certs = certs;
  spec.broker_target = broker;
  spec.logging = "logging { default_level: LOG_LEVEL_INFO }";
  spec.extra_config = absl::StrCat(
      "pan { scan_interval { seconds: 1 } reminder_settings {"
      " password_expiry_lead_times { seconds: ", 14 * 86400, " }"
      " from { address: \"", mailbox, "\" display_name: \"Network Access\" } } }\n"
      "delivery { backoff_initial { seconds: 1 } backoff_max { seconds: 5 } }\n");
  return spec;
}

grpc::Status QueueReminder(NodeHarness& pan, int index, const std::string& to) {
  mailroom::pan::v1::UpsertUserAccountRequest request;
  mailroom::pan::v1::UserAccount* user = request.mutable_account();
  user->set_id(absl::StrCat("idstore-user-", index));
  user->set_kind(mailroom::pan::v1::USER_KIND_ADMIN);
  user->set_username(absl::StrCat("admin", index));
  user->mutable_email()->set_address(to);
  user->set_first_name("Admin");
  user->set_last_name(absl::StrCat("Number ", index));
  user->mutable_password_expire_time()->set_seconds(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 10)));
  mailroom::pan::v1::UpsertUserAccountResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return mailroom::pan::v1::Reminders::NewStub(pan.ChannelAs("portal"))
      ->UpsertUserAccount(&context, request, &response);
}

grpc::Status QueuePasswordReset(NodeHarness& psn, const std::string& to) {
  mailroom::psn::v1::SendPasswordResetRequest request;
  *request.mutable_guest() = mailroom::testing::GuestRegistration("reset", 1, to).guest();
  request.set_portal_id("lobby");
  request.set_idempotency_key("priority-reset-1");
  mailroom::psn::v1::SendPasswordResetResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return mailroom::psn::v1::GuestNotifications::NewStub(psn.ChannelAs("portal"))
      ->SendPasswordReset(&context, request, &response);
}

int ArrivalsBetween(const std::vector<absl::Time>& arrivals, absl::Time from, absl::Time to) {
  int n = 0;
  for (absl::Time t : arrivals) n += t > from && t <= to;
  return n;
}

TEST(PriorityE2eTest, APasswordResetQueuedBehindRemindersGoesOutWithinOneLimitWindow) {
  const absl::Time began = absl::Now();
  const int reminders = Reminders();
  absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
  ASSERT_TRUE(testbed.ok()) << testbed.status();
  absl::StatusOr<std::unique_ptr<MtaMeter>> meter = MtaMeter::Attach(**testbed);
  ASSERT_TRUE(meter.ok()) << meter.status();
  const std::string tmp = std::getenv("TEST_TMPDIR");
  const std::string certs = mailroom::testing::MakeTestCerts(
      "certs", "mailroom cluster CA", "broker:broker pan1:pan psn1:psn portal:portal admin:admin");
  absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
      tmp + "/broker", certs, **testbed,
      absl::StrCat("send_limits { messages_per_minute: ", kPerMinute, " }"));
  ASSERT_TRUE(broker.ok()) << broker.status();
  ASSERT_TRUE((*broker)->Configure(BrokerHarness::TestbedSettings(**testbed)).ok());

  const std::string mailbox = (*testbed)->Env("MAILBOX");
  absl::StatusOr<std::unique_ptr<NodeHarness>> pan =
      NodeHarness::Start(ReminderPanSpec(tmp + "/pan1", certs, mailbox, (*broker)->target()));
  ASSERT_TRUE(pan.ok()) << pan.status();
  NodeSpec psn_spec = GuestPsnSpec("psn1", tmp + "/psn1", certs, mailbox);
  psn_spec.broker_target = (*broker)->target();
  psn_spec.logging = "logging { default_level: LOG_LEVEL_INFO }";
  absl::StatusOr<std::unique_ptr<NodeHarness>> psn = NodeHarness::Start(psn_spec);
  ASSERT_TRUE(psn.ok()) << psn.status();

  const std::string reminder_to = "priority-reminders@example.test";
  const std::string reset_to = "priority-reset@example.test";
  const absl::Time reminders_began = absl::Now();
  for (int i = 0; i < reminders; ++i) {
    const grpc::Status queued = QueueReminder(**pan, i, reminder_to);
    ASSERT_TRUE(queued.ok()) << i << ": " << queued.error_message();
  }
  // The reminders fill the mailbox's minute at once; the reset comes a third of a minute
  // later, so that its minute is full and has 40 s to run (the wait is then the same with
  // priorities on every run, and the 60 s bound has a margin for a loaded machine).
  for (const absl::Time deadline = absl::Now() + absl::Seconds(120);
       (*meter)->Arrivals(mailbox).size() < static_cast<size_t>(kPerMinute) &&
       absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GE((*meter)->Arrivals(mailbox).size(), static_cast<size_t>(kPerMinute));
  const absl::Time window_filled = absl::Now();
  absl::SleepFor(absl::Seconds(20));

  const size_t reminders_before = (*testbed)->DeliveredTo(reminder_to).size();
  const grpc::Status reset = QueuePasswordReset(**psn, reset_to);
  const absl::Time queued = absl::Now();
  ASSERT_TRUE(reset.ok()) << reset.error_message();
  absl::Time arrived = absl::InfiniteFuture();
  for (const absl::Time deadline = queued + 3 * kWindow; absl::Now() < deadline;) {
    if (!(*testbed)->DeliveredTo(reset_to).empty()) {
      arrived = absl::Now();
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  const size_t reminders_at_reset = (*testbed)->DeliveredTo(reminder_to).size();

  const std::vector<std::string> drained = (*testbed)->WaitForDelivered(
      reminder_to, reminders, absl::Minutes(2) + kWindow * (reminders / kPerMinute + 1));
  const std::vector<absl::Time> at_mta = (*meter)->Arrivals(mailbox);
  const int most_in_a_minute = MostInWindow(at_mta, kWindow);
  std::cout << reminders << " password-expiry reminders queued on pan1 (limit " << kPerMinute
            << "/minute, one mailbox); the minute filled "
            << absl::FormatDuration(window_filled - reminders_began)
            << " after the first, the reset queued on psn1 "
            << absl::FormatDuration(queued - window_filled) << " later with "
            << reminders - reminders_before << " reminders not yet in the Maildir; the reset "
            << "arrived in the Maildir " << absl::FormatDuration(arrived - queued)
            << " after it was queued; meanwhile " << ArrivalsBetween(at_mta, queued, arrived) - 1
            << " reminder(s) reached the MTA (" << reminders_at_reset - reminders_before
            << " in the Maildir); reminders delivered in the end: " << drained.size() << " of "
            << reminders << " (the last " << absl::FormatDuration(absl::Now() - queued)
            << " after the reset was queued); at the MTA: " << at_mta.size()
            << " messages, most in any rolling 60 s = " << most_in_a_minute << " (limit "
            << kPerMinute << "), most sessions at once = " << (*meter)->MostConcurrentSessions()
            << "; arrivals per 10 s: " << ArrivalsPerTenSeconds(at_mta, reminders_began)
            << "; test ran " << absl::FormatDuration(absl::Now() - began) << std::endl;
  EXPECT_LE(arrived - queued, kWindow);
  EXPECT_EQ(drained.size(), static_cast<size_t>(reminders));
  EXPECT_EQ((*testbed)->DeliveredTo(reset_to).size(), 1u);
  EXPECT_LE(most_in_a_minute, kPerMinute);
}

}  // namespace
}  // namespace mailroom
