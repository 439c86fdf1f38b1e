// The MnT end to end: the real mailroom-mnt process (its own outbox, tokens and permits from
// the real broker over mutual TLS) emails alarms through the real testbed (oidc-provider,
// Postfix with Dovecot validating XOAUTH2) to the admin recipient's Maildir. An alarm email
// arrives with its diagnosis; 50 repeats within the 15-second suppression window give one alarm
// email and one summary email counting the other 49, not 50 emails; a second real broker,
// configured with a client secret that expires in 20 days and with mnt_target pointing at the
// MnT, raises CLIENT_SECRET_EXPIRY and its email arrives; mailroomctl raises, lists and clears
// alarms; and bad input over the wire is refused by field with nothing queued.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/base/diagnosis.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/mailroomctl.h"
#include "tests/testing/mime_parse.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::CtlResult;
using ::mailroom::testing::DecodeHeaderText;
using ::mailroom::testing::Mailroomctl;
using ::mailroom::testing::MimeEntity;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ParseMime;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

// Long enough that 50 RaiseAlarm calls fall inside one window even on a loaded 2-core CI
// machine (they take well under a second): the window is a property of the test, not a race.
constexpr int kWindowSeconds = 15;

class MntE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker mnt1:mnt psn1:psn admin:admin"));
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        absl::StrCat(getenv("TEST_TMPDIR"), "/broker"), *certs_, *testbed_,
        "send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }");
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    ASSERT_TRUE(broker_->Configure(BrokerHarness::TestbedSettings(*testbed_)).ok());

    NodeSpec spec;
    spec.binary = "mnt/mailroom-mnt";
    spec.role = "ROLE_MNT";
    spec.node_name = "mnt1";
    spec.dir = absl::StrCat(getenv("TEST_TMPDIR"), "/mnt1");
    spec.certs = *certs_;
    spec.broker_target = broker_->target();
    spec.extra_config = absl::StrCat(
        "delivery { backoff_initial { seconds: 1 } backoff_max { seconds: 5 } }\n"
        "mnt { alarm_settings { include_system_alarms_in_emails: true\n"
        "  sender { address: \"",
        testbed_->Env("MAILBOX"),
        "\" display_name: \"mailroom alarms\" }\n"
        "  admin_recipients { address: \"noc@example.test\" }\n"
        "  suppression_window { seconds: ",
        kWindowSeconds, " } } }\n");
    absl::StatusOr<std::unique_ptr<NodeHarness>> mnt = NodeHarness::Start(spec);
    ASSERT_TRUE(mnt.ok()) << mnt.status();
    mnt_ = mnt->release();
  }
  static void TearDownTestSuite() {
    delete mnt_;
    delete broker_;
    delete testbed_;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "mailroom-mnt log:\n" << ReadAll(mnt_->log_path());
  }

  static std::unique_ptr<mv1::Alarms::Stub> Alarms(const std::string& as) {
    return mv1::Alarms::NewStub(mnt_->ChannelAs(as));
  }
  static void Deadline(grpc::ClientContext* context) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  }

  // Points the Alarm Settings at `recipient` (each test reads its own Maildir recipient).
  static void EmailTo(const std::string& recipient) {
    auto stub = Alarms("admin");
    mv1::GetAlarmSettingsResponse current;
    {
      grpc::ClientContext context;
      Deadline(&context);
      ASSERT_TRUE(stub->GetAlarmSettings(&context, {}, &current).ok());
    }
    mv1::SetAlarmSettingsRequest set;
    *set.mutable_settings() = current.settings();
    set.mutable_settings()->clear_admin_recipients();
    set.mutable_settings()->add_admin_recipients()->set_address(recipient);
    set.set_etag(current.settings().etag());
    grpc::ClientContext context;
    Deadline(&context);
    mv1::SetAlarmSettingsResponse saved;
    const grpc::Status status = stub->SetAlarmSettings(&context, set, &saved);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  static grpc::Status Raise(const std::string& as, const mv1::RaiseAlarmRequest& request,
                            mv1::RaiseAlarmResponse* response) {
    grpc::ClientContext context;
    Deadline(&context);
    return Alarms(as)->RaiseAlarm(&context, request, response);
  }

  static mv1::RaiseAlarmRequest Request(const std::string& key, const std::string& dedup_key,
                                        const std::string& text) {
    mv1::RaiseAlarmRequest request;
    request.set_type(mv1::ALARM_TYPE_GENERIC);
    request.set_source_node("psn1");
    request.set_dedup_key(dedup_key);
    request.set_text(text);
    request.set_idempotency_key(key);
    return request;
  }

  static mv1::ListAlarmsResponse List(const mv1::ListAlarmsRequest& request) {
    grpc::ClientContext context;
    Deadline(&context);
    mv1::ListAlarmsResponse response;
    const grpc::Status status = Alarms("admin")->ListAlarms(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static int64_t OutboxSize() {
    auto stub = cv1::OutboxAdmin::NewStub(mnt_->ChannelAs("admin"));
    grpc::ClientContext context;
    Deadline(&context);
    cv1::ListOutboxRequest request;
    cv1::ListOutboxResponse response;
    const grpc::Status status = stub->ListOutbox(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.page().total_size();
  }

  // A delivered message (Maildir: LF line endings, trace headers on top), parsed.
  static MimeEntity Parse(const std::string& delivered) {
    absl::StatusOr<MimeEntity> parsed = ParseMime(absl::StrReplaceAll(delivered, {{"\n", "\r\n"}}));
    EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << delivered;
    return parsed.value_or(MimeEntity());
  }
  static std::string Subject(const MimeEntity& message) {
    return DecodeHeaderText(message.Header("Subject")).value_or("");
  }

  // Runs mailroomctl with the admin identity; returns its exit code and output.
  int Ctl(const std::vector<std::string>& args, std::string* output) {
    static const Mailroomctl* const ctl =
        new Mailroomctl(absl::StrCat(getenv("TEST_TMPDIR"), "/ctl"), *certs_,
                        absl::StrCat("mnt_target: \"", mnt_->target(), "\""));
    const CtlResult result = ctl->Run(args);
    *output = result.output;
    return result.exit_code;
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  static NodeHarness* mnt_;
};

Testbed* MntE2eTest::testbed_ = nullptr;
std::string* MntE2eTest::certs_ = nullptr;
BrokerHarness* MntE2eTest::broker_ = nullptr;
NodeHarness* MntE2eTest::mnt_ = nullptr;

TEST_F(MntE2eTest, AlarmEmailArrivesAtTheAdminRecipientWithItsDiagnosis) {
  const std::string recipient = "alarm-first@example.test";
  ASSERT_NO_FATAL_FAILURE(EmailTo(recipient));
  mv1::RaiseAlarmRequest request =
      Request("first-1", "smtp-auth-failed/psn1", "Notification psn1/01H could not be sent");
  request.set_type(mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED);
  *request.mutable_diagnosis() = MakeDiagnosis(cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED,
                                               "535 5.7.3 Authentication unsuccessful");
  mv1::RaiseAlarmResponse response;
  const grpc::Status status = Raise("psn1", request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.disposition(), mv1::ALARM_DISPOSITION_EMAILED);

  const std::vector<std::string> delivered =
      testbed_->WaitForDelivered(recipient, 1, absl::Seconds(60));
  ASSERT_THAT(delivered, SizeIs(1));
  const MimeEntity message = Parse(delivered[0]);
  EXPECT_EQ(Subject(message), "[mailroom] CRITICAL alarm on psn1: SMTP authentication failed");
  EXPECT_THAT(message.Header("From"), HasSubstr(testbed_->Env("MAILBOX")));
  EXPECT_THAT(message.body, HasSubstr("Notification psn1/01H could not be sent"));
  EXPECT_THAT(message.body,
              HasSubstr(std::string(FailureTitle(cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED))));
  EXPECT_THAT(message.body,
              HasSubstr(MakeDiagnosis(cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED).fix()));

  // Its status, by the RaiseAlarm key, is SENT.
  mv1::GetNotificationStatusRequest by_key;
  by_key.set_idempotency_key("first-1");
  mv1::GetNotificationStatusResponse notification;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    grpc::ClientContext context;
    Deadline(&context);
    ASSERT_TRUE(Alarms("admin")->GetNotificationStatus(&context, by_key, &notification).ok());
    if (notification.notifications_size() == 1 &&
        notification.notifications(0).state() == cv1::NOTIFICATION_STATE_SENT) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  ASSERT_THAT(notification.notifications(), SizeIs(1));
  EXPECT_EQ(notification.notifications(0).state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(notification.notifications(0).id(), response.notification_id());
}

TEST_F(MntE2eTest, FiftyRepeatsGiveOneAlarmEmailAndOneSummaryNotFifty) {
  const std::string recipient = "alarm-repeats@example.test";
  ASSERT_NO_FATAL_FAILURE(EmailTo(recipient));
  const absl::Time start = absl::Now();
  int emailed = 0;
  int suppressed = 0;
  for (int i = 0; i < 50; ++i) {
    mv1::RaiseAlarmResponse response;
    const grpc::Status status =
        Raise("psn1", Request(absl::StrCat("repeat-", i), "disk/psn1", "Disk almost full on psn1"),
              &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    emailed += response.disposition() == mv1::ALARM_DISPOSITION_EMAILED;
    suppressed += response.disposition() == mv1::ALARM_DISPOSITION_SUPPRESSED;
  }
  const absl::Duration elapsed = absl::Now() - start;
  std::cout << "50 RaiseAlarm calls took " << elapsed << "\n";
  // All 50 fall inside one window only if they took less than it; else the test proves nothing.
  ASSERT_LT(elapsed, absl::Seconds(kWindowSeconds)) << "too slow to fit in one window";
  EXPECT_EQ(emailed, 1);
  EXPECT_EQ(suppressed, 49);

  // A retried request (same key, same content) is not a 51st occurrence.
  mv1::RaiseAlarmResponse retry;
  ASSERT_TRUE(
      Raise("psn1", Request("repeat-7", "disk/psn1", "Disk almost full on psn1"), &retry).ok());
  EXPECT_TRUE(retry.duplicate());

  const std::vector<std::string> delivered =
      testbed_->WaitForDelivered(recipient, 2, absl::Seconds(kWindowSeconds + 60));
  ASSERT_THAT(delivered, SizeIs(2));
  const MimeEntity alarm = Parse(delivered[0]);
  const MimeEntity summary = Parse(delivered[1]);
  EXPECT_EQ(Subject(alarm), "[mailroom] WARNING alarm on psn1: Disk almost full on psn1");
  EXPECT_EQ(Subject(summary),
            "[mailroom] Summary: Disk almost full on psn1 (psn1) repeated 49 times");
  EXPECT_THAT(summary.body, HasSubstr("occurred 49 times more"));
  EXPECT_THAT(summary.body, HasSubstr("Occurrences:   50"));

  mv1::ListAlarmsRequest request;
  request.set_source_node("psn1");
  request.add_types(mv1::ALARM_TYPE_GENERIC);
  const mv1::ListAlarmsResponse list = List(request);
  ASSERT_THAT(list.alarms(), SizeIs(1));
  EXPECT_EQ(list.alarms(0).dedup_key(), "disk/psn1");
  EXPECT_EQ(list.alarms(0).occurrence_count(), 50);
  EXPECT_EQ(list.alarms(0).suppressed_count(), 0);
  // Nothing else follows: the summary reset the suppressed count and the alarm holds exactly
  // the two notifications delivered, so no further mail is due without a new occurrence.
  EXPECT_EQ(list.alarms(0).notification_ids_size(), 2);
  EXPECT_THAT(testbed_->DeliveredTo(recipient), SizeIs(2));
}

TEST_F(MntE2eTest, BrokersSecretExpiryAlarmArrivesByEmail) {
  const std::string recipient = "alarm-secret@example.test";
  ASSERT_NO_FATAL_FAILURE(EmailTo(recipient));
  // A second real broker, whose alarms go to this MnT (the first one serves the MnT's own
  // tokens; a broker and an MnT cannot both be started knowing each other's port).
  absl::StatusOr<std::unique_ptr<BrokerHarness>> expiring =
      BrokerHarness::Start(absl::StrCat(getenv("TEST_TMPDIR"), "/broker-expiring"), *certs_,
                           *testbed_, "", absl::StrCat("mnt_target: \"", mnt_->target(), "\""));
  ASSERT_TRUE(expiring.ok()) << expiring.status();
  mailroom::broker::v1::SmtpSettings settings = BrokerHarness::TestbedSettings(*testbed_);
  settings.mutable_client_secret()->mutable_expire_time()->set_seconds(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 20)));
  const absl::Status configured = (*expiring)->Configure(settings);
  ASSERT_TRUE(configured.ok()) << configured << "\n" << ReadAll((*expiring)->log_path());

  const std::vector<std::string> delivered =
      testbed_->WaitForDelivered(recipient, 1, absl::Seconds(60));
  ASSERT_THAT(delivered, SizeIs(1)) << ReadAll((*expiring)->log_path());
  const MimeEntity message = Parse(delivered[0]);
  EXPECT_EQ(Subject(message),
            "[mailroom] WARNING alarm on broker: SMTP OAuth Client Secret expiry");
  EXPECT_THAT(message.body, StartsWith(absl::StrCat("SMTP OAuth Client Secret of app ",
                                                    testbed_->Env("CLIENT_ID"),
                                                    " expires in 19 days")));
  EXPECT_THAT(message.body, HasSubstr("What to do: Create a new client secret"));

  mv1::ListAlarmsRequest request;
  request.add_types(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  const mv1::ListAlarmsResponse list = List(request);
  ASSERT_THAT(list.alarms(), SizeIs(1));
  EXPECT_EQ(list.alarms(0).source_node(), "broker");
  EXPECT_EQ(list.alarms(0).source_role(), cv1::ROLE_BROKER);
  EXPECT_EQ(list.alarms(0).dedup_key(),
            absl::StrCat("client-secret-expiry/", testbed_->Env("CLIENT_ID")));
  EXPECT_EQ(list.alarms(0).state(), mv1::ALARM_STATE_ACTIVE);
}

TEST_F(MntE2eTest, MailroomctlRaisesListsAndClearsAlarms) {
  std::string out;
  ASSERT_EQ(Ctl({"alarm-settings", "show"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("include system alarms in emails: on"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("suppression window:  ", kWindowSeconds, "s")));

  ASSERT_EQ(Ctl({"alarm", "raise", "type=generic", "text=Backup job failed on psn1",
                 "dedup_key=backup/psn1", "key=cli-backup-1", "severity=info"},
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("emailed as mnt1/"));
  ASSERT_EQ(Ctl({"alarm", "raise", "type=generic", "text=Backup job failed on psn1",
                 "dedup_key=backup/psn1", "key=cli-backup-1", "severity=info"},
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("repeated request: nothing new"));

  ASSERT_EQ(Ctl({"alarm", "list", "severity=info", "state=active"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Backup job failed on psn1"));
  EXPECT_THAT(out, HasSubstr("1 of 1 alarm(s)"));
  ASSERT_EQ(Ctl({"--json", "alarm", "list", "severity=info"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("\"dedup_key\": \"backup/psn1\""));
  EXPECT_THAT(out, HasSubstr("\"source_role\": \"ROLE_ADMIN\""));

  ASSERT_EQ(Ctl({"alarm", "clear", "dedup_key=backup/psn1", "reason=job rerun"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("cleared"));
  ASSERT_EQ(Ctl({"alarm", "list", "severity=info", "state=active"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("no alarms"));

  EXPECT_EQ(Ctl({"alarm", "raise", "type=nonsense", "text=x"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("type: unknown alarm type \"nonsense\""));
  EXPECT_EQ(Ctl({"alarm-settings", "set", "recipients=not-an-address"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("settings.admin_recipients[0].address"));
  EXPECT_EQ(Ctl({"alarm", "clear", "99999"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("no alarm \"99999\""));
}

TEST_F(MntE2eTest, BadInputIsRefusedByFieldAndNothingIsQueued) {
  const int64_t queued = OutboxSize();
  mv1::RaiseAlarmResponse response;
  grpc::Status status =
      Raise("psn1", Request("bad-1", "x/psn1", "Disk\r\nBcc: victim@example.com"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("text: contains CR or LF"));
  status = Raise("psn1", Request("bad 2", "x/psn1", "ok"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("idempotency_key:"));
  status = Raise("psn1", Request("bad-3", "x/psn1", std::string(5000, 'x')), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("text: exceeds 4096 bytes"));
  mv1::RaiseAlarmRequest impostor = Request("bad-4", "x/psn1", "ok");
  impostor.set_source_node("broker");
  status = Raise("psn1", impostor, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  mv1::SetAlarmSettingsRequest set;
  set.mutable_settings()->set_include_system_alarms_in_emails(true);
  set.mutable_settings()->mutable_sender()->set_address(testbed_->Env("MAILBOX"));
  set.mutable_settings()->add_admin_recipients()->set_address("noc@example..test");
  grpc::ClientContext context;
  Deadline(&context);
  mv1::SetAlarmSettingsResponse saved;
  status = Alarms("admin")->SetAlarmSettings(&context, set, &saved);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("settings.admin_recipients[0].address:"));

  mv1::ListAlarmsRequest request;
  request.set_source_node("psn1");
  const mv1::ListAlarmsResponse list = List(request);
  for (const mv1::Alarm& alarm : list.alarms()) EXPECT_NE(alarm.dedup_key(), "x/psn1");
  EXPECT_EQ(OutboxSize(), queued);
}

}  // namespace
}  // namespace mailroom
