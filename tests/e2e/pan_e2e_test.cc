// The PAN service end to end, every part its own process over mutual TLS: the real testbed
// (oidc-provider, Postfix with Dovecot validating XOAUTH2), the real token broker, and the
// real mailroom-pan, called as a portal and as an admin (gRPC and mailroomctl). A guest
// expiring within the lead time gets exactly one warning, with its Chinese name intact, and
// still exactly one after the PAN restarts and the portal sends the account again; a password
// expiry reminder arrives; bad input is refused naming the field and queues nothing.
#include <sys/wait.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"
#include "proto/mailroom/pan/v1/pan.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/mime_parse.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::pan::v1;
namespace cv1 = ::mailroom::common::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::mailroom::testing::TestbedRunfile;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kDaySeconds = 86400;

google::protobuf::Timestamp FromNow(absl::Duration d) {
  google::protobuf::Timestamp t;
  t.set_seconds(absl::ToUnixSeconds(absl::Now() + d));
  return t;
}

class PanE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker pan1:pan portal:portal admin:admin"));
    const std::string tmp = getenv("TEST_TMPDIR");
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        absl::StrCat(tmp, "/broker"), *certs_, *testbed_,
        "send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }");
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    ASSERT_TRUE(broker_->Configure(BrokerHarness::TestbedSettings(*testbed_)).ok());

    // Guest warnings 3 days ahead, password reminders 14 days ahead, a 1 s scan: an account
    // expiring in 2 (or 10) days is due at once.
    NodeSpec spec;
    spec.binary = "pan/mailroom-pan";
    spec.role = "ROLE_PAN";
    spec.node_name = "pan1";
    spec.dir = absl::StrCat(tmp, "/pan1");
    spec.certs = *certs_;
    spec.broker_target = broker_->target();
    spec.extra_config = absl::StrCat(
        "pan { scan_interval { seconds: 1 } reminder_settings {"
        " guest_expiry_lead_times { seconds: ",
        3 * kDaySeconds,
        " }"
        " password_expiry_lead_times { seconds: ",
        14 * kDaySeconds,
        " }"
        " from { address: \"",
        testbed_->Env("MAILBOX"),
        "\" display_name: \"Network Access\" }"
        " } }\n"
        "delivery { backoff_initial { seconds: 1 } }\n");
    absl::StatusOr<std::unique_ptr<NodeHarness>> pan = NodeHarness::Start(spec);
    ASSERT_TRUE(pan.ok()) << pan.status();
    pan_ = pan->release();
  }
  static void TearDownTestSuite() {
    delete pan_;
    delete broker_;
    delete testbed_;
  }

  static std::unique_ptr<v1::Reminders::Stub> StubAs(const std::string& node) {
    return v1::Reminders::NewStub(pan_->ChannelAs(node));
  }

  template <typename Method, typename Request, typename Response>
  static absl::Status Call(const std::string& node, Method method, const Request& request,
                           Response* response) {
    std::unique_ptr<v1::Reminders::Stub> stub = StubAs(node);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return FromGrpcStatus(((*stub).*method)(&context, request, response));
  }

  static int64_t OutboxSize() {
    auto stub = cv1::OutboxAdmin::NewStub(pan_->ChannelAs("admin"));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    cv1::ListOutboxRequest request;
    cv1::ListOutboxResponse response;
    const grpc::Status status = stub->ListOutbox(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    const cv1::OutboxCounts& c = response.counts();
    return c.queued() + c.sending() + c.sent() + c.failed();
  }

  // The reminders of one account, as an admin sees them.
  static std::vector<v1::PlannedReminder> PlanOf(const std::string& id, v1::AccountKind kind) {
    v1::ListPlannedRemindersRequest request;
    request.set_account_id(id);
    request.set_account_kind(kind);
    v1::ListPlannedRemindersResponse response;
    const absl::Status status =
        Call("admin", &v1::Reminders::Stub::ListPlannedReminders, request, &response);
    EXPECT_TRUE(status.ok()) << status;
    return {response.reminders().begin(), response.reminders().end()};
  }

  // A delivered message (LF line endings in the Maildir) parsed back.
  static mailroom::testing::MimeEntity Parse(const std::string& delivered) {
    absl::StatusOr<mailroom::testing::MimeEntity> message =
        mailroom::testing::ParseMime(absl::StrReplaceAll(delivered, {{"\n", "\r\n"}}));
    EXPECT_TRUE(message.ok()) << message.status();
    return message.value_or(mailroom::testing::MimeEntity());
  }

  // Runs mailroomctl with the admin identity; returns its exit code and output.
  static int Ctl(const std::vector<std::string>& args, std::string* output) {
    const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/ctl");
    const std::string config = absl::StrCat(dir, "/admin.textproto");
    if (system(absl::StrCat("mkdir -p '", dir, "'").c_str()) != 0) return -1;
    FILE* f = fopen(config.c_str(), "w");
    if (f == nullptr) return -1;
    fprintf(
        f,
        "tls { ca_file: \"%s/ca.pem\" cert_file: \"%s/admin.pem\" key_file: \"%s/admin.key\" }\n"
        "pan_target: \"%s\"\n",
        certs_->c_str(), certs_->c_str(), certs_->c_str(), pan_->target().c_str());
    fclose(f);
    std::string command =
        absl::StrCat("'", TestbedRunfile("cli/mailroomctl"), "' --config='", config, "'");
    for (const std::string& arg : args) {
      absl::StrAppend(&command, " '", absl::StrReplaceAll(arg, {{"'", "'\\''"}}), "'");
    }
    absl::StrAppend(&command, " 2>&1");
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return -1;
    output->clear();
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
    const int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  static NodeHarness* pan_;
};

Testbed* PanE2eTest::testbed_ = nullptr;
std::string* PanE2eTest::certs_ = nullptr;
BrokerHarness* PanE2eTest::broker_ = nullptr;
NodeHarness* PanE2eTest::pan_ = nullptr;

TEST_F(PanE2eTest, AGuestExpiringWithinTheLeadTimeGetsExactlyOneWarningAcrossARestart) {
  const std::string address = "pan-guest@example.test";
  v1::UpsertGuestAccountRequest request;
  v1::GuestAccount* guest = request.mutable_account();
  guest->set_id("portal-guest-0001");
  guest->set_username("xiaoming.wang");
  guest->mutable_email()->set_address(address);
  guest->set_first_name("小明");
  guest->set_last_name("王");
  guest->set_portal_id("Lobby");
  *guest->mutable_expire_time() = FromNow(absl::Hours(48));
  v1::UpsertGuestAccountResponse response;
  ASSERT_TRUE(Call("portal", &v1::Reminders::Stub::UpsertGuestAccount, request, &response).ok());
  EXPECT_TRUE(response.created());
  ASSERT_EQ(response.reminders_size(), 1);
  const v1::PlannedReminder reminder = response.reminders(0);
  EXPECT_EQ(reminder.state(), v1::REMINDER_STATE_QUEUED);
  EXPECT_THAT(reminder.notification_id(), StartsWith("pan1/"));

  const std::vector<std::string> delivered =
      testbed_->WaitForDelivered(address, 1, absl::Seconds(60));
  ASSERT_EQ(delivered.size(), 1u) << ReadAll(pan_->log_path());
  const mailroom::testing::MimeEntity message = Parse(delivered[0]);
  absl::StatusOr<std::vector<mailroom::testing::ParsedMailbox>> to =
      mailroom::testing::ParseAddressList(message.Header("To"));
  ASSERT_TRUE(to.ok() && to->size() == 1u);
  EXPECT_EQ((*to)[0].display_name, "王小明");
  EXPECT_EQ((*to)[0].address, address);
  EXPECT_THAT(mailroom::testing::DecodeHeaderText(message.Header("Subject")).value_or(""),
              StartsWith("Your guest account expires on "));
  EXPECT_EQ(message.Header("X-Mailroom-Reminder"), reminder.id());
  bool greeted = false;
  for (const auto& part : message.parts) greeted |= absl::StrContains(part.body, "Hello 王小明,");
  EXPECT_TRUE(greeted) << delivered[0];

  // The portal sends the same account again (e.g. its own retry): nothing new.
  ASSERT_TRUE(Call("portal", &v1::Reminders::Stub::UpsertGuestAccount, request, &response).ok());
  EXPECT_FALSE(response.created());
  ASSERT_EQ(response.reminders_size(), 1);
  EXPECT_EQ(response.reminders(0).notification_id(), reminder.notification_id());

  // Restart the PAN; give its 1 s scheduler several scans.
  ASSERT_TRUE(pan_->Restart().ok());
  absl::SleepFor(absl::Seconds(5));
  ASSERT_TRUE(Call("portal", &v1::Reminders::Stub::UpsertGuestAccount, request, &response).ok());
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(testbed_->DeliveredTo(address).size(), 1u);
  const std::vector<v1::PlannedReminder> plan = PlanOf("portal-guest-0001", v1::ACCOUNT_KIND_GUEST);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].state(), v1::REMINDER_STATE_QUEUED);
  EXPECT_EQ(plan[0].notification_id(), reminder.notification_id());

  v1::GetNotificationStatusRequest status_request;
  status_request.set_notification_id(reminder.notification_id());
  v1::GetNotificationStatusResponse status;
  ASSERT_TRUE(
      Call("portal", &v1::Reminders::Stub::GetNotificationStatus, status_request, &status).ok());
  EXPECT_EQ(status.notification().state(), cv1::NOTIFICATION_STATE_SENT);
  EXPECT_EQ(status.notification().kind(), cv1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING);
}

TEST_F(PanE2eTest, APasswordExpiryReminderArrives) {
  const std::string address = "pan-admin@example.test";
  v1::UpsertUserAccountRequest request;
  v1::UserAccount* user = request.mutable_account();
  user->set_id("idstore-admin-7");
  user->set_kind(v1::USER_KIND_ADMIN);
  user->set_username("grace");
  user->mutable_email()->set_address(address);
  user->set_first_name("Grace");
  user->set_last_name("Hopper");
  *user->mutable_password_expire_time() = FromNow(absl::Hours(24 * 10));
  v1::UpsertUserAccountResponse response;
  ASSERT_TRUE(Call("portal", &v1::Reminders::Stub::UpsertUserAccount, request, &response).ok());
  ASSERT_EQ(response.reminders_size(), 1);
  EXPECT_EQ(response.reminders(0).state(), v1::REMINDER_STATE_QUEUED);
  const std::vector<std::string> delivered =
      testbed_->WaitForDelivered(address, 1, absl::Seconds(60));
  ASSERT_EQ(delivered.size(), 1u) << ReadAll(pan_->log_path());
  const mailroom::testing::MimeEntity message = Parse(delivered[0]);
  EXPECT_THAT(mailroom::testing::DecodeHeaderText(message.Header("Subject")).value_or(""),
              StartsWith("Your password expires on "));
  bool body = false;
  for (const auto& part : message.parts) {
    body |= absl::StrContains(part.body, "Hello Grace Hopper,") &&
            absl::StrContains(part.body, "in 10 day(s)");
  }
  EXPECT_TRUE(body) << delivered[0];
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(testbed_->DeliveredTo(address).size(), 1u);
}

TEST_F(PanE2eTest, BadInputIsRefusedNamingTheFieldAndNothingIsQueued) {
  const int64_t before = OutboxSize();
  v1::UpsertGuestAccountRequest request;
  v1::GuestAccount* guest = request.mutable_account();
  guest->set_id("bad-guest");
  guest->set_username("bad");
  guest->mutable_email()->set_address("pan-bad@example.test");
  guest->set_last_name("Smith\r\nBcc: everyone@example.test");
  *guest->mutable_expire_time() = FromNow(absl::Hours(1));
  v1::UpsertGuestAccountResponse response;
  absl::Status status =
      Call("portal", &v1::Reminders::Stub::UpsertGuestAccount, request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("account.last_name: contains CR or LF"));
  EXPECT_EQ(ReasonOf(status), "INVALID_FIELD");

  guest->set_last_name("Smith");
  guest->mutable_email()->set_address("pan-bad@@example.test");
  status = Call("portal", &v1::Reminders::Stub::UpsertGuestAccount, request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("account.email.address: "));

  v1::SetReminderSettingsRequest settings;
  settings.mutable_settings()->add_guest_expiry_lead_times()->set_seconds(kDaySeconds);
  settings.mutable_settings()->mutable_from()->set_address(testbed_->Env("MAILBOX"));
  settings.mutable_settings()->mutable_guest_expiry_template()->set_subject("{{pasword}}");
  settings.mutable_settings()->mutable_guest_expiry_template()->set_text_body("x");
  v1::SetReminderSettingsResponse set;
  status = Call("portal", &v1::Reminders::Stub::SetReminderSettings, settings, &set);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  status = Call("admin", &v1::Reminders::Stub::SetReminderSettings, settings, &set);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              StartsWith("settings.guest_expiry_template.subject: unknown variable"));

  EXPECT_TRUE(PlanOf("bad-guest", v1::ACCOUNT_KIND_GUEST).empty());
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(OutboxSize(), before);
  EXPECT_TRUE(testbed_->DeliveredTo("pan-bad@example.test").empty());
}

TEST_F(PanE2eTest, MailroomctlRegistersAccountsAndShowsThePlan) {
  std::string out;
  ASSERT_EQ(Ctl({"account", "upsert-guest", "cli-guest", "email=pan-cli@example.test",
                 "expires=+2d", "first=Ada", "last=Lovelace"},
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("guest cli-guest created"));
  EXPECT_THAT(out, HasSubstr("QUEUED  3d before account expiry"));
  ASSERT_EQ(Ctl({"account", "upsert-user", "cli-user", "kind=internal",
                 "email=pan-cli-user@example.test", "password-expires=+30d"},
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("PLANNED  14d before password expiry"));

  ASSERT_EQ(Ctl({"--json", "reminders", "plan", "guest=cli-guest"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("\"state\": \"REMINDER_STATE_QUEUED\""));
  EXPECT_THAT(out, HasSubstr("\"account_id\": \"cli-guest\""));
  ASSERT_EQ(Ctl({"account", "list", "kind=guest", "prefix=cli"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("cli-guest"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("cli-user")));
  ASSERT_EQ(Ctl({"reminders", "settings", "show"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Guest-expiry warnings:     3d before"));
  EXPECT_THAT(out, HasSubstr("Password-expiry reminders: 14d before"));
  // Bad input through the CLI: the server's field-naming error, a failing exit code.
  EXPECT_EQ(
      Ctl({"account", "upsert-guest", "cli-bad", "email=not-an-address", "expires=+2d"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("account.email.address"));
  EXPECT_EQ(testbed_->WaitForDelivered("pan-cli@example.test", 1, absl::Seconds(60)).size(), 1u);
  ASSERT_EQ(Ctl({"account", "delete-user", "cli-user"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("1 pending reminder(s) canceled"));
}

}  // namespace
}  // namespace mailroom
