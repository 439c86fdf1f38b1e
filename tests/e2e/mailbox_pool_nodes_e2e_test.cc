// Issue 13's acceptance for the mailbox pool with real role nodes: the testbed (oidc-provider,
// Postfix, Dovecot checking that the app was granted each XOAUTH2 user's mailbox) with MtaMeter
// counting each mailbox's messages at the MTA by SASL login, a mailroom-broker whose settings
// hold two pool mailboxes beside the default one, a mailroom-psn sending guest mail and a
// mailroom-mnt sending alarm mail, all real processes talking gRPC over mutual TLS.
//
//   guests@  120 messages/minute  GUEST_CREDENTIALS [guests@, default]; SPONSOR_MAIL [guests@]
//   alerts@   30 messages/minute  ALARMS [alerts@]
//   default   30 messages/minute  (noreply@: the broker's send_limits)
//
// Scaling: Exchange allows 30 messages a minute per mailbox, at which the 500 guests
// take 17 minutes to drain; guests@ is given four times that (120/minute) so that the backlog
// lasts about four minutes, long enough for alarms raised all along it. alerts@ keeps
// Exchange's 30, and the alarm storm (20 at once, then one every 30 s) stays within it: the
// point is that alarms never wait behind the guests, not that alarms exceed their own limit.
//
// (A) 500 sponsor-created guests and an alarm storm at once: every alarm mail is in the Maildir
//     within 10 s of being raised while the guest mail drains at guests@'s limit, nothing of it
//     through another mailbox, and no rolling minute at the MTA is over either mailbox's limit.
// (B) Exchange's 554 5.2.0 for everything guests@ submits: the broker pauses guests@ only
//     (`mailroomctl quota` shows it); alarms keep arriving through alerts@; guest credentials,
//     whose route goes on to the default mailbox, arrive through it; sponsor mail, whose route
//     is guests@ alone, waits in the outbox (QUEUED, none FAILED) and goes out once the quota
//     is back and the admin resumes the mailbox.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/guest_burst.h"
#include "tests/testing/mailroomctl.h"
#include "tests/testing/mta_meter.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/rolling_window.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
namespace pv1 = ::mailroom::psn::v1;
using ::mailroom::testing::ArrivalsPerTenSeconds;
using ::mailroom::testing::AwaitDelivered;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::CtlResult;
using ::mailroom::testing::DeliveredMessage;
using ::mailroom::testing::GuestPsnSpec;
using ::mailroom::testing::Mailroomctl;
using ::mailroom::testing::MostInWindow;
using ::mailroom::testing::MntSpec;
using ::mailroom::testing::MtaMeter;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::SponsorCreatedAccounts;
using ::mailroom::testing::Testbed;
using ::testing::HasSubstr;

constexpr char kGuestsMailbox[] = "guests@example.test";
constexpr char kAlertsMailbox[] = "alerts@example.test";
constexpr int kGuestsPerMinute = 120;  // Exchange's 30, scaled by 4 (see the file comment)
constexpr int kAlertsPerMinute = 30;   // Exchange's own
constexpr int kDefaultPerMinute = 30;
constexpr int kGuests = 500;
constexpr int kStormAlarms = 20;
constexpr int kLaterAlarms = 6;
constexpr absl::Duration kLaterAlarmEvery = absl::Seconds(30);
constexpr absl::Duration kAlarmWithin = absl::Seconds(10);
constexpr absl::Duration kMinute = absl::Seconds(60);

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return context;
}

// The alarm mail of `token` among `messages`: its text, "Storm alarm <token>.", ends the
// mail's Subject (the alarm's text, unencoded while it is ASCII); nullptr if none.
const DeliveredMessage* AlarmMailOf(const std::vector<DeliveredMessage>& messages,
                                    const std::string& token) {
  for (const DeliveredMessage& message : messages) {
    if (absl::StrContains(message.text, absl::StrCat(": Storm alarm ", token, ".\n"))) {
      return &message;
    }
  }
  return nullptr;
}

class MailboxPoolNodesE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    const std::vector<std::string> pool = testbed_->PoolMailboxes();
    ASSERT_NE(std::find(pool.begin(), pool.end(), kGuestsMailbox), pool.end());
    ASSERT_NE(std::find(pool.begin(), pool.end(), kAlertsMailbox), pool.end());
    absl::StatusOr<std::unique_ptr<MtaMeter>> meter = MtaMeter::Attach(*testbed_);
    ASSERT_TRUE(meter.ok()) << meter.status();
    meter_ = meter->release();
    const std::string tmp = std::getenv("TEST_TMPDIR");
    const std::string certs = mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA",
        "broker:broker psn1:psn mnt1:mnt portal:portal admin:admin");

    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        tmp + "/broker", certs, *testbed_,
        absl::StrCat("send_limits { messages_per_minute: ", kDefaultPerMinute, " }"));
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    broker::v1::SmtpSettings settings = BrokerHarness::TestbedSettings(*testbed_);
    ASSERT_TRUE(google::protobuf::TextFormat::MergeFromString(
        absl::StrCat("mailboxes { address: \"", kGuestsMailbox,
                     "\" limits { messages_per_minute: ", kGuestsPerMinute, " } }\n",
                     "mailboxes { address: \"", kAlertsMailbox,
                     "\" limits { messages_per_minute: ", kAlertsPerMinute, " } }\n",
                     "routes { purpose: MAIL_PURPOSE_GUEST_CREDENTIALS mailboxes: [\"",
                     kGuestsMailbox, "\", \"", testbed_->Env("MAILBOX"), "\"] }\n",
                     "routes { purpose: MAIL_PURPOSE_SPONSOR_MAIL mailboxes: \"", kGuestsMailbox,
                     "\" }\n",
                     "routes { purpose: MAIL_PURPOSE_ALARMS mailboxes: \"", kAlertsMailbox,
                     "\" }\n"),
        &settings));
    const absl::Status configured = broker_->Configure(settings);
    ASSERT_TRUE(configured.ok()) << configured;

    NodeSpec psn_spec = GuestPsnSpec("psn1", tmp + "/psn1", certs, kGuestsMailbox);
    psn_spec.broker_target = broker_->target();
    psn_spec.logging = "logging { default_level: LOG_LEVEL_INFO }";
    absl::StatusOr<std::unique_ptr<NodeHarness>> psn = NodeHarness::Start(psn_spec);
    ASSERT_TRUE(psn.ok()) << psn.status();
    psn_ = psn->release();

    NodeSpec mnt_spec = MntSpec(
        tmp + "/mnt1", certs,
        absl::StrCat("alarm_settings { include_system_alarms_in_emails: true\n"
                     "  sender { address: \"", kAlertsMailbox,
                     "\" display_name: \"mailroom alarms\" }\n"
                     "  admin_recipients { address: \"noc-placeholder@example.test\" }\n"
                     "  suppression_window { seconds: 5 } }"),
        "LOG_LEVEL_INFO");
    mnt_spec.broker_target = broker_->target();
    mnt_spec.extra_config = absl::StrCat(
        "delivery { backoff_initial { seconds: 1 } backoff_max { seconds: 5 } }\n",
        mnt_spec.extra_config);
    absl::StatusOr<std::unique_ptr<NodeHarness>> mnt = NodeHarness::Start(mnt_spec);
    ASSERT_TRUE(mnt.ok()) << mnt.status();
    mnt_ = mnt->release();

    ctl_ = new Mailroomctl(tmp + "/ctl", certs,
                           absl::StrCat("broker_target: \"", broker_->target(),
                                        "\"\nrpc_timeout { seconds: 10 }"));
  }

  static void TearDownTestSuite() {
    delete ctl_;
    delete mnt_;
    delete psn_;
    delete broker_;
    delete meter_;
    delete testbed_;
  }

  void TearDown() override {
    if (!HasFailure() || mnt_ == nullptr) return;
    std::cerr << "broker log (tail):\n" << Tail(ReadAll(broker_->log_path()))
              << "\npsn1 log (tail):\n" << Tail(ReadAll(psn_->log_path()))
              << "\nmnt1 log (tail):\n" << Tail(ReadAll(mnt_->log_path()));
  }

  static std::string Tail(const std::string& log) {
    return log.size() > 20000 ? log.substr(log.size() - 20000) : log;
  }

  // Points the MnT's alarm mail at `recipient` (each test reads its own Maildir recipient).
  static void AlarmsTo(const std::string& recipient) {
    auto stub = mv1::Alarms::NewStub(mnt_->ChannelAs("admin"));
    mv1::GetAlarmSettingsResponse current;
    ASSERT_TRUE(stub->GetAlarmSettings(Context().get(), {}, &current).ok());
    mv1::SetAlarmSettingsRequest set;
    *set.mutable_settings() = current.settings();
    set.mutable_settings()->clear_admin_recipients();
    set.mutable_settings()->add_admin_recipients()->set_address(recipient);
    set.set_etag(current.settings().etag());
    mv1::SetAlarmSettingsResponse saved;
    const grpc::Status status = stub->SetAlarmSettings(Context().get(), set, &saved);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // Raises a distinct alarm (its own dedup key, so it is mailed, not suppressed) whose text
  // says "<token>."; returns when the MnT acknowledged it.
  static grpc::Status RaiseAlarm(const std::string& token) {
    mv1::RaiseAlarmRequest request;
    request.set_type(mv1::ALARM_TYPE_GENERIC);
    request.set_source_node("psn1");
    request.set_dedup_key(token);
    request.set_idempotency_key(token);
    request.set_text(absl::StrCat("Storm alarm ", token, "."));
    mv1::RaiseAlarmResponse response;
    return mv1::Alarms::NewStub(mnt_->ChannelAs("psn1"))
        ->RaiseAlarm(Context().get(), request, &response);
  }

  // The sponsor's accounts for `count` guests `tag`0.. at `to`, optionally with the sponsor's
  // summary (SPONSOR_MAIL); returns Message-ID by guest index, plus the summary's at -1.
  static std::map<int, std::string> CreateGuests(const std::string& tag, int count,
                                                 const std::string& to, bool summary) {
    pv1::NotifySponsorCreatedAccountsRequest request = SponsorCreatedAccounts(tag, count, to);
    request.set_send_summary(summary);
    pv1::NotifySponsorCreatedAccountsResponse response;
    const grpc::Status status = pv1::GuestNotifications::NewStub(psn_->ChannelAs("portal"))
                                    ->NotifySponsorCreatedAccounts(Context().get(), request,
                                                                   &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<int, std::string> message_ids;
    for (int i = 0; i < response.notifications_size(); ++i) {
      const cv1::QueuedNotification& queued = response.notifications(i);
      message_ids[queued.kind() == cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY ? -1 : i] =
          queued.message_id();
    }
    return message_ids;
  }

  static cv1::OutboxCounts PsnOutbox() {
    cv1::ListOutboxRequest request;
    request.mutable_page()->set_page_size(1);
    cv1::ListOutboxResponse response;
    const grpc::Status status =
        cv1::OutboxAdmin::NewStub(psn_->ChannelAs("admin"))
            ->ListOutbox(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.counts();
  }

  static Testbed* testbed_;
  static MtaMeter* meter_;
  static BrokerHarness* broker_;
  static NodeHarness* psn_;
  static NodeHarness* mnt_;
  static Mailroomctl* ctl_;
};

Testbed* MailboxPoolNodesE2eTest::testbed_ = nullptr;
MtaMeter* MailboxPoolNodesE2eTest::meter_ = nullptr;
BrokerHarness* MailboxPoolNodesE2eTest::broker_ = nullptr;
NodeHarness* MailboxPoolNodesE2eTest::psn_ = nullptr;
NodeHarness* MailboxPoolNodesE2eTest::mnt_ = nullptr;
Mailroomctl* MailboxPoolNodesE2eTest::ctl_ = nullptr;

// First: the 5.2.0 fault reaches the SMTP sessions opened after it is set (testbed.sh), and
// guests@ has none open before this test, as it would after the other.
TEST_F(MailboxPoolNodesE2eTest, QuotaExceededOnOneMailboxPausesItAloneAndOtherRoutesFlow) {
  const std::string guests_to = "pool-paused@example.test";
  const std::string noc = "pool-noc-paused@example.test";
  ASSERT_NO_FATAL_FAILURE(AlarmsTo(noc));
  const std::string default_mailbox = testbed_->Env("MAILBOX");
  const size_t default_before = meter_->Arrivals(default_mailbox).size();
  const size_t guests_before = meter_->Arrivals(kGuestsMailbox).size();
  ASSERT_TRUE(testbed_->SetMailboxQuotaExceeded(kGuestsMailbox, true).ok());

  constexpr int kPausedGuests = 10;
  std::map<int, std::string> guests = CreateGuests("paused", kPausedGuests, guests_to, true);
  ASSERT_EQ(guests.count(-1), 1u);
  const std::string summary_id = guests[-1];
  guests.erase(-1);
  ASSERT_EQ(guests.size(), static_cast<size_t>(kPausedGuests));

  // The guests' credentials fall over to the default mailbox, as their route says.
  std::map<std::string, int> copies;
  EXPECT_EQ(AwaitDelivered(*testbed_, guests_to, guests, absl::Seconds(90), &copies), 0);
  const size_t through_default = meter_->Arrivals(default_mailbox).size() - default_before;
  EXPECT_GE(through_default, static_cast<size_t>(kPausedGuests));
  // guests@ sent nothing: every submission was refused with 5.2.0.
  EXPECT_EQ(meter_->Arrivals(kGuestsMailbox).size(), guests_before);

  // The broker paused guests@ alone.
  const CtlResult quota = ctl_->Run({"quota"});
  EXPECT_EQ(quota.exit_code, 0) << quota.output;
  EXPECT_THAT(quota.output,
              HasSubstr(absl::StrCat("(quota exceeded; mailroomctl quota resume ", kGuestsMailbox)));
  const std::vector<absl::string_view> around_pauses = absl::StrSplit(quota.output, "PAUSED until");
  EXPECT_EQ(around_pauses.size(), 2u)
      << "only one mailbox may be paused:\n" << quota.output;

  // Alarms keep flowing through alerts@ while guests@ is paused.
  const absl::Time raised = absl::Now();
  ASSERT_TRUE(RaiseAlarm("paused-alarm").ok());
  const std::vector<std::string> alarm_mail =
      testbed_->WaitForDelivered(noc, 1, absl::Seconds(30));
  ASSERT_EQ(alarm_mail.size(), 1u);
  const absl::Duration alarm_took = absl::Now() - raised;
  EXPECT_LE(alarm_took, kAlarmWithin);

  // The sponsor's summary (route: guests@ alone) waits, not failed, not lost.
  const std::string sponsor_to = "sponsor-paused@example.test";
  absl::SleepFor(absl::Seconds(5));
  EXPECT_TRUE(testbed_->DeliveredTo(sponsor_to).empty());
  const cv1::OutboxCounts waiting = PsnOutbox();
  EXPECT_EQ(waiting.failed(), 0);
  EXPECT_EQ(waiting.queued() + waiting.sending(), 1);

  // The quota is back and the admin resumes the mailbox: the summary goes out through guests@.
  ASSERT_TRUE(testbed_->SetMailboxQuotaExceeded(kGuestsMailbox, false).ok());
  const CtlResult resumed = ctl_->Run({"quota", "resume", kGuestsMailbox});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resumed"));
  const absl::Time resumed_at = absl::Now();
  std::map<int, std::string> summary = {{0, summary_id}};
  EXPECT_EQ(AwaitDelivered(*testbed_, sponsor_to, summary, absl::Seconds(150), &copies), 0);
  const cv1::OutboxCounts after = PsnOutbox();
  std::cout << "guests@ answered 554 5.2.0: " << through_default
            << " message(s) went through the default mailbox for " << kPausedGuests
            << " guests (0 through guests@); the alarm raised meanwhile arrived in "
            << absl::FormatDuration(alarm_took) << "; the sponsor summary waited QUEUED and "
            << "arrived " << absl::FormatDuration(absl::Now() - resumed_at)
            << " after `mailroomctl quota resume`; psn1 outbox: " << after.queued()
            << " queued, " << after.sending() << " sending, " << after.sent() << " sent, "
            << after.failed() << " failed\n`mailroomctl quota` while paused:\n"
            << quota.output << std::endl;
  EXPECT_EQ(after.failed(), 0);
  EXPECT_EQ(after.queued() + after.sending(), 0);
}

TEST_F(MailboxPoolNodesE2eTest, AlarmsArriveWithinTenSecondsWhileFiveHundredGuestsDrain) {
  const std::string guests_to = "pool-guests@example.test";
  const std::string noc = "pool-noc@example.test";
  ASSERT_NO_FATAL_FAILURE(AlarmsTo(noc));
  const std::string default_mailbox = testbed_->Env("MAILBOX");
  const size_t default_before = meter_->Arrivals(default_mailbox).size();
  const size_t alerts_before = meter_->Arrivals(kAlertsMailbox).size();

  const absl::Time began = absl::Now();
  const std::map<int, std::string> guests = CreateGuests("storm", kGuests, guests_to, false);
  ASSERT_EQ(guests.size(), static_cast<size_t>(kGuests));
  const absl::Time guests_queued = absl::Now();
  // token -> when it was raised (just before the call: the 10 s include the MnT's queuing).
  std::map<std::string, absl::Time> raised;
  for (int i = 0; i < kStormAlarms; ++i) {
    const std::string token = absl::StrCat("storm-", i);
    raised[token] = absl::Now();
    const grpc::Status status = RaiseAlarm(token);
    ASSERT_TRUE(status.ok()) << token << ": " << status.error_message();
  }
  for (int i = 0; i < kLaterAlarms; ++i) {
    absl::SleepFor(kLaterAlarmEvery);
    const std::string token = absl::StrCat("later-", i);
    raised[token] = absl::Now();
    const grpc::Status status = RaiseAlarm(token);
    ASSERT_TRUE(status.ok()) << token << ": " << status.error_message();
  }
  const absl::Time last_alarm = absl::Now();
  testbed_->WaitForDelivered(noc, raised.size(), kAlarmWithin + absl::Seconds(20));
  const std::vector<DeliveredMessage> alarm_mail = testbed_->DeliveredWithTimes(noc);
  const size_t guests_at_last_alarm = testbed_->DeliveredTo(guests_to).size();

  std::map<std::string, int> copies;
  const int undelivered =
      AwaitDelivered(*testbed_, guests_to, guests,
                     absl::Minutes(2) + kMinute * (kGuests / kGuestsPerMinute + 1), &copies);
  const absl::Time drained = absl::Now();

  absl::Duration slowest_alarm;
  int late_or_missing = 0;
  for (const auto& [token, at] : raised) {
    const DeliveredMessage* mail = AlarmMailOf(alarm_mail, token);
    if (mail == nullptr || mail->delivered - at > kAlarmWithin) {
      ++late_or_missing;
      ADD_FAILURE() << "alarm " << token << (mail == nullptr ? " never arrived" : " arrived ")
                    << (mail == nullptr ? "" : absl::FormatDuration(mail->delivered - at))
                    << " after it was raised";
    }
    if (mail != nullptr) slowest_alarm = std::max(slowest_alarm, mail->delivered - at);
  }
  const std::vector<absl::Time> at_guests = meter_->Arrivals(kGuestsMailbox);
  const std::vector<absl::Time> at_alerts = meter_->Arrivals(kAlertsMailbox);
  const int guests_most = MostInWindow(at_guests, kMinute);
  const int alerts_most = MostInWindow(at_alerts, kMinute);
  const size_t through_default = meter_->Arrivals(default_mailbox).size() - default_before;
  std::cout << kGuests << " sponsor-created guests queued on psn1 in "
            << absl::FormatDuration(guests_queued - began) << ", " << raised.size()
            << " alarms raised on mnt1 (" << kStormAlarms << " at once, then one every "
            << absl::FormatDuration(kLaterAlarmEvery) << "): slowest alarm mail "
            << absl::FormatDuration(slowest_alarm) << " from RaiseAlarm to the Maildir, "
            << late_or_missing << " later than " << absl::FormatDuration(kAlarmWithin)
            << " or missing; guest mail in the Maildir when the last alarm was raised: "
            << guests_at_last_alarm << " of " << kGuests << "; all delivered after "
            << absl::FormatDuration(drained - guests_queued) << " (" << undelivered
            << " missing); at the MTA: guests@ " << at_guests.size()
            << " messages, most in any rolling 60 s = " << guests_most << " (limit "
            << kGuestsPerMinute << "), alerts@ " << at_alerts.size() - alerts_before << ", most in 60 s = "
            << alerts_most << " (limit " << kAlertsPerMinute << "), the default mailbox "
            << through_default << "; guests@ per 10 s: "
            << ArrivalsPerTenSeconds(at_guests, guests_queued) << std::endl;

  EXPECT_EQ(late_or_missing, 0);
  EXPECT_EQ(undelivered, 0);
  // The alarms were raised while the guest backlog was there, not after it.
  EXPECT_LT(guests_at_last_alarm, static_cast<size_t>(kGuests));
  EXPECT_LT(last_alarm, drained);
  // Each mailbox within its limit as the MTA counts, guests@ using its own (a drain at its
  // limit, not a trickle), and none of it through the default mailbox.
  EXPECT_LE(guests_most, kGuestsPerMinute);
  EXPECT_LE(alerts_most, kAlertsPerMinute);
  EXPECT_GE(guests_most, kGuestsPerMinute * 9 / 10);
  EXPECT_EQ(at_alerts.size() - alerts_before, raised.size());
  EXPECT_EQ(through_default, 0u);
}

}  // namespace
}  // namespace mailroom
