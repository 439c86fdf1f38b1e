// The PSN service end to end, every piece its own process over mutual TLS: the real testbed
// (oidc-provider as Entra ID, Postfix + Dovecot checking XOAUTH2), the real mailroom-broker,
// and two real mailroom-psn processes, called as a portal and as an admin would. A
// self-registered guest's credentials arrive with a Chinese name intact; a sponsor's Resend
// with "Copy me" reaches guest and sponsor, and the summary the sponsor; a retried request
// sends once; kill -9 of a PSN in the middle of a burst of 200 registrations loses no
// acknowledged notification; bad input is INVALID_ARGUMENT naming the field with nothing
// queued; Send Test Email works while notifications are off.
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/common/v1/outbox.grpc.pb.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/mailroomctl.h"
#include "tests/testing/mime_parse.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::psn::v1;
namespace cv1 = ::mailroom::common::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::CtlResult;
using ::mailroom::testing::DecodeHeaderText;
using ::mailroom::testing::Mailroomctl;
using ::mailroom::testing::MimeEntity;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ParseAddressList;
using ::mailroom::testing::ParseMime;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::testing::HasSubstr;

constexpr absl::Duration kDelivery = absl::Seconds(60);

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(20)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

// A delivered message (LF line endings from the Maildir), parsed.
MimeEntity Parse(const std::string& maildir_message) {
  absl::StatusOr<MimeEntity> parsed =
      ParseMime(absl::StrReplaceAll(maildir_message, {{"\r\n", "\n"}, {"\n", "\r\n"}}));
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : MimeEntity();
}

std::string AllText(const MimeEntity& entity) {
  if (entity.parts.empty()) return entity.body;
  std::string text;
  for (const MimeEntity& part : entity.parts) text += AllText(part) + "\n";
  return text;
}

std::string MessageId(const std::string& maildir_message) {
  for (absl::string_view line : absl::StrSplit(maildir_message, '\n')) {
    if (absl::StartsWithIgnoreCase(line, "Message-ID:")) {
      return std::string(absl::StripAsciiWhitespace(line.substr(11)));
    }
  }
  return "";
}

v1::Guest MakeGuest(const std::string& username, const std::string& address) {
  v1::Guest guest;
  guest.set_username(username);
  guest.set_password(absl::StrCat("Pw-", username, "-8kQ"));
  guest.set_first_name("小明");
  guest.set_last_name("王");
  guest.mutable_email()->set_address(address);
  // One instant for the whole run: a request resent after a crash (kill -9) must be
  // byte-identical to the first, or the PSN rightly refuses its reused idempotency key.
  static const int64_t now = absl::ToUnixSeconds(absl::Now());
  guest.mutable_valid_from()->set_seconds(now);
  guest.mutable_valid_until()->set_seconds(now + 86400);
  return guest;
}

v1::NotifySelfRegistrationRequest Registration(const std::string& username,
                                               const std::string& address,
                                               const std::string& key) {
  v1::NotifySelfRegistrationRequest request;
  *request.mutable_guest() = MakeGuest(username, address);
  request.set_portal_id("lobby");
  request.set_language("zh-TW");
  request.set_idempotency_key(key);
  return request;
}

class PsnE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker psn1:psn psn2:psn portal:portal admin:admin"));
    // The testbed is not Exchange: lift the per-minute limit for the burst.
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        absl::StrCat(getenv("TEST_TMPDIR"), "/broker"), *certs_, *testbed_,
        "send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }");
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    // The default mailbox may send as every address of example.test, and as nothing else: a
    // From outside it is refused when a PSN's admin saves it (README "Mailbox pool").
    mailroom::broker::v1::SmtpSettings settings = BrokerHarness::TestbedSettings(*testbed_);
    settings.add_send_as("@example.test");
    absl::Status configured = broker_->Configure(settings);
    ASSERT_TRUE(configured.ok()) << configured;
    for (const char* name : {"psn1", "psn2"}) {
      NodeSpec spec;
      spec.binary = "psn/mailroom-psn";
      spec.role = "ROLE_PSN";
      spec.node_name = name;
      spec.dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
      spec.certs = *certs_;
      spec.broker_target = broker_->target();
      spec.extra_config = absl::StrCat(
          "delivery { backoff_initial { seconds: 1 } backoff_max { seconds: 5 } }\n"
          "psn { guest_email_settings { notifications_enabled: true default_from { address: \"",
          testbed_->Env("MAILBOX"), "\" display_name: \"訪客服務 Guest Access\" } } }\n");
      absl::StatusOr<std::unique_ptr<NodeHarness>> node = NodeHarness::Start(spec);
      ASSERT_TRUE(node.ok()) << node.status();
      (std::string(name) == "psn1" ? psn1_ : psn2_) = node->release();
    }
  }

  static void TearDownTestSuite() {
    delete psn2_;
    delete psn1_;
    delete broker_;
    delete testbed_;
  }

  static std::unique_ptr<v1::GuestNotifications::Stub> Psn(NodeHarness* node,
                                                           const std::string& as) {
    return v1::GuestNotifications::NewStub(node->ChannelAs(as));
  }

  // Every entry of `node`'s outbox, whatever its state, as the admin sees it.
  static int64_t OutboxTotal(NodeHarness* node) {
    auto stub = cv1::OutboxAdmin::NewStub(node->ChannelAs("admin"));
    cv1::ListOutboxRequest request;
    request.mutable_page()->set_page_size(1);
    cv1::ListOutboxResponse response;
    const grpc::Status status = stub->ListOutbox(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    const cv1::OutboxCounts& c = response.counts();
    return c.queued() + c.sending() + c.sent() + c.failed();
  }

  // Polls GetNotificationStatus until the notification is SENT (or the time is up).
  static cv1::NotificationState WaitForState(NodeHarness* node, const std::string& id) {
    auto stub = Psn(node, "portal");
    v1::GetNotificationStatusRequest request;
    request.set_notification_id(id);
    cv1::NotificationState state = cv1::NOTIFICATION_STATE_UNSPECIFIED;
    for (absl::Time deadline = absl::Now() + kDelivery; absl::Now() < deadline;) {
      v1::GetNotificationStatusResponse response;
      if (stub->GetNotificationStatus(Context().get(), request, &response).ok() &&
          response.notifications_size() == 1) {
        state = response.notifications(0).state();
        if (state == cv1::NOTIFICATION_STATE_SENT || state == cv1::NOTIFICATION_STATE_FAILED) break;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return state;
  }

  // Runs the real mailroomctl with an admin certificate against both PSNs.
  static CtlResult Cli(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    static const Mailroomctl* const ctl = new Mailroomctl(
        absl::StrCat(getenv("TEST_TMPDIR"), "/cli"), *certs_,
        absl::StrCat("psn_targets: \"", psn1_->target(), "\"\npsn_targets: \"",
                     psn2_->target(), "\""));
    return ctl->Run(args, stdin_text);
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  static NodeHarness* psn1_;
  static NodeHarness* psn2_;
};

Testbed* PsnE2eTest::testbed_ = nullptr;
std::string* PsnE2eTest::certs_ = nullptr;
BrokerHarness* PsnE2eTest::broker_ = nullptr;
NodeHarness* PsnE2eTest::psn1_ = nullptr;
NodeHarness* PsnE2eTest::psn2_ = nullptr;

TEST_F(PsnE2eTest, SelfRegisteredGuestGetsCredentialsWithTheChineseNameIntact) {
  const std::string to = "zh-guest@example.test";
  const v1::NotifySelfRegistrationRequest request = Registration("xiaoming", to, "self-reg-1");
  v1::NotifySelfRegistrationResponse response;
  const grpc::Status status =
      Psn(psn1_, "portal")->NotifySelfRegistration(Context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(absl::StartsWith(response.notification().notification_id(), "psn1/"));
  const std::vector<std::string> delivered = testbed_->WaitForDelivered(to, 1, kDelivery);
  ASSERT_EQ(delivered.size(), 1u) << ReadAll(psn1_->log_path());
  const MimeEntity mail = Parse(delivered[0]);
  EXPECT_EQ(*DecodeHeaderText(mail.Header("Subject")), "您的 lobby 訪客帳號");
  absl::StatusOr<std::vector<mailroom::testing::ParsedMailbox>> to_list =
      ParseAddressList(mail.Header("To"));
  ASSERT_TRUE(to_list.ok()) << to_list.status();
  EXPECT_EQ((*to_list)[0].display_name, "小明 王");
  EXPECT_EQ((*to_list)[0].address, to);
  EXPECT_EQ(ParseAddressList(mail.Header("From"))->at(0).display_name, "訪客服務 Guest Access");
  EXPECT_EQ(MessageId(delivered[0]), "<" + response.notification().message_id() + ">");
  const std::string text = AllText(mail);
  EXPECT_THAT(text, HasSubstr("王小明 您好"));
  EXPECT_THAT(text, HasSubstr("xiaoming"));
  EXPECT_THAT(text, HasSubstr(request.guest().password()));
  EXPECT_EQ(WaitForState(psn1_, response.notification().notification_id()),
            cv1::NOTIFICATION_STATE_SENT);
  // The password is in the delivered mail only, never in the PSN's log.
  EXPECT_THAT(ReadAll(psn1_->log_path()), ::testing::Not(HasSubstr(request.guest().password())));
}

TEST_F(PsnE2eTest, ResendWithCopyMeReachesGuestsAndSponsorAndTheSummaryTheSponsor) {
  v1::ResendRequest request;
  *request.add_guests() = MakeGuest("ann", "resend-ann@example.test");
  *request.add_guests() = MakeGuest("bob", "resend-bob@example.test");
  request.mutable_sponsor()->set_username("sam");
  request.mutable_sponsor()->mutable_email()->set_address("sponsor-sam@example.test");
  request.mutable_sponsor()->mutable_email()->set_display_name("Sam 贊助者");
  request.set_portal_id("sponsor-portal");
  request.set_delivery(v1::DELIVERY_METHOD_EMAIL);
  request.set_copy_me(true);
  request.set_send_summary(true);
  request.set_idempotency_key("resend-1");
  v1::ResendResponse response;
  const grpc::Status status = Psn(psn2_, "portal")->Resend(Context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.notifications_size(), 3);

  for (const char* guest : {"resend-ann@example.test", "resend-bob@example.test"}) {
    const std::vector<std::string> mails = testbed_->WaitForDelivered(guest, 1, kDelivery);
    ASSERT_EQ(mails.size(), 1u) << guest;
    const MimeEntity mail = Parse(mails[0]);
    EXPECT_EQ(ParseAddressList(mail.Header("Cc"))->at(0).address, "sponsor-sam@example.test");
    EXPECT_EQ(*DecodeHeaderText(mail.Header("Subject")), "Your guest account from Sam 贊助者");
  }
  // The sponsor: a copy of each guest's mail, and the summary.
  const std::vector<std::string> sponsor =
      testbed_->WaitForDelivered("sponsor-sam@example.test", 3, kDelivery);
  ASSERT_EQ(sponsor.size(), 3u);
  int summaries = 0;
  for (const std::string& message : sponsor) {
    const MimeEntity mail = Parse(message);
    const std::string subject = *DecodeHeaderText(mail.Header("Subject"));
    if (subject != "Guest accounts on sponsor-portal: 2") continue;
    ++summaries;
    const std::string text = AllText(mail);
    EXPECT_THAT(text, HasSubstr("ann"));
    EXPECT_THAT(text, HasSubstr(request.guests(1).password()));
    EXPECT_THAT(text, HasSubstr("resend-bob@example.test"));
  }
  EXPECT_EQ(summaries, 1);
  std::set<std::string> ids;
  for (const std::string& message : sponsor) ids.insert(MessageId(message));
  EXPECT_EQ(ids.size(), 3u);
}

TEST_F(PsnE2eTest, AnIdempotentRetrySendsOnce) {
  const std::string to = "retry@example.test";
  const v1::NotifySelfRegistrationRequest request = Registration("retry", to, "retry-key-1");
  auto stub = Psn(psn1_, "portal");
  v1::NotifySelfRegistrationResponse first;
  v1::NotifySelfRegistrationResponse second;
  ASSERT_TRUE(stub->NotifySelfRegistration(Context().get(), request, &first).ok());
  ASSERT_TRUE(stub->NotifySelfRegistration(Context().get(), request, &second).ok());
  EXPECT_FALSE(first.duplicate());
  EXPECT_TRUE(second.duplicate());
  EXPECT_EQ(second.notification().notification_id(), first.notification().notification_id());
  ASSERT_EQ(WaitForState(psn1_, first.notification().notification_id()),
            cv1::NOTIFICATION_STATE_SENT);
  // After delivery, the retry is still recognised: no second mail.
  v1::NotifySelfRegistrationResponse third;
  ASSERT_TRUE(stub->NotifySelfRegistration(Context().get(), request, &third).ok());
  EXPECT_TRUE(third.duplicate());
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(testbed_->DeliveredTo(to).size(), 1u);
  // The same key with other content is refused.
  v1::NotifySelfRegistrationRequest other = request;
  other.mutable_guest()->set_username("someone-else");
  const grpc::Status reused = stub->NotifySelfRegistration(Context().get(), other, &third);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(reused)), "IDEMPOTENCY_KEY_REUSED");
}

TEST_F(PsnE2eTest, BadInputAtEveryRpcIsInvalidArgumentNamingTheFieldAndNothingIsQueued) {
  auto portal = Psn(psn1_, "portal");
  auto admin = Psn(psn1_, "admin");
  const int64_t before = OutboxTotal(psn1_);
  std::vector<std::pair<std::string, grpc::Status>> results;

  v1::NotifySelfRegistrationResponse self_response;
  v1::NotifySelfRegistrationRequest self = Registration("eve", "eve@example.test", "bad-1");
  self.mutable_guest()->set_first_name("Eve\r\nBcc: all@example.test");
  results.push_back({"guest.first_name", portal->NotifySelfRegistration(Context().get(), self,
                                                                        &self_response)});
  self = Registration("eve", "eve@example", "bad-2");
  results.push_back({"guest.email.address",
                     portal->NotifySelfRegistration(Context().get(), self, &self_response)});
  self = Registration("", "eve@example.test", "bad-4");
  results.push_back({"guest.username",
                     portal->NotifySelfRegistration(Context().get(), self, &self_response)});
  self = Registration("eve", "eve@example.test", "bad-5");
  self.mutable_guest()->set_password(std::string(300, 'p'));
  results.push_back({"guest.password",
                     portal->NotifySelfRegistration(Context().get(), self, &self_response)});
  self = Registration("eve", "eve@example.test", "");
  results.push_back({"idempotency_key",
                     portal->NotifySelfRegistration(Context().get(), self, &self_response)});

  v1::NotifySponsorCreatedAccountsRequest created;
  for (int i = 0; i < 3; ++i) {
    *created.add_guests() = MakeGuest(absl::StrCat("c", i), absl::StrCat("c", i, "@example.test"));
  }
  created.mutable_guests(2)->mutable_email()->set_address("c2@@example.test");
  created.mutable_sponsor()->set_username("sam");
  created.set_portal_id("sponsor");
  created.set_idempotency_key("bad-6");
  v1::NotifySponsorCreatedAccountsResponse created_response;
  results.push_back({"guests[2].email.address",
                     portal->NotifySponsorCreatedAccounts(Context().get(), created,
                                                          &created_response)});

  v1::ResendRequest resend;
  *resend.add_guests() = MakeGuest("r", "r@example.test");
  resend.mutable_sponsor()->set_username("sam");
  resend.set_portal_id("sponsor");
  resend.set_copy_me(true);
  resend.set_idempotency_key("bad-7");
  v1::ResendResponse resend_response;
  results.push_back({"sponsor.email.address",
                     portal->Resend(Context().get(), resend, &resend_response)});

  v1::SendPasswordResetRequest reset;
  *reset.mutable_guest() = MakeGuest("r", "r@example.test");
  reset.set_portal_id("lobby\nX-Injected: 1");
  reset.set_idempotency_key("bad-8");
  v1::SendPasswordResetResponse reset_response;
  results.push_back({"portal_id",
                     portal->SendPasswordReset(Context().get(), reset, &reset_response)});

  v1::SendTestEmailRequest test;
  test.set_portal_id("lobby");
  test.mutable_to()->set_address("admin@example.test\r\nRCPT TO:<x@example.test>");
  test.set_idempotency_key("bad-9");
  v1::SendTestEmailResponse test_response;
  results.push_back({"to.address", admin->SendTestEmail(Context().get(), test, &test_response)});

  v1::PutTemplateRequest put;
  put.mutable_template_()->set_portal_id("lobby");
  put.mutable_template_()->set_kind(v1::TEMPLATE_KIND_SELF_REGISTRATION);
  put.mutable_template_()->set_subject("Welcome {{first_name}}");
  put.mutable_template_()->set_html_body("<p>{{pasword}}</p>");
  v1::PutTemplateResponse put_response;
  results.push_back({"template.html_body",
                     admin->PutTemplate(Context().get(), put, &put_response)});

  for (const auto& [field, status] : results) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_TRUE(absl::StartsWith(status.error_message(), field + ": "))
        << field << " / " << status.error_message();
    EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "INVALID_FIELD") << field;
  }
  EXPECT_THAT(results.back().second.error_message(), HasSubstr("unknown variable {{pasword}}"));

  // Malformed UTF-8 in a string field never reaches the service over gRPC: protobuf's parser
  // refuses the request on the server (proto3 strings must be UTF-8) before any PSN code runs,
  // and the server's interceptor answers INVALID_ARGUMENT ("request: ... malformed UTF-8";
  // which field, protobuf does not say). In-process callers get INVALID_ARGUMENT naming the
  // field (tests/psn). Either way nothing is queued.
  self = Registration("eve", "eve@example.test", "bad-3");
  self.mutable_guest()->set_last_name("\xE7\x8E");
  const grpc::Status utf8 = portal->NotifySelfRegistration(Context().get(), self, &self_response);
  EXPECT_EQ(utf8.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << utf8.error_message();
  EXPECT_THAT(utf8.error_message(), HasSubstr("UTF-8"));
  std::cout << "malformed UTF-8 over gRPC: code " << utf8.error_code() << " \""
            << utf8.error_message() << "\"" << std::endl;
  EXPECT_EQ(OutboxTotal(psn1_), before) << "bad input queued something";
  v1::GetTemplateRequest get;
  get.set_portal_id("lobby");
  get.set_kind(v1::TEMPLATE_KIND_SELF_REGISTRATION);
  v1::GetTemplateResponse get_response;
  EXPECT_EQ(admin->GetTemplate(Context().get(), get, &get_response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(PsnE2eTest, TestEmailArrivesWhileNotificationsAreOff) {
  auto admin = Psn(psn2_, "admin");
  v1::GetGuestEmailSettingsResponse current;
  ASSERT_TRUE(admin->GetGuestEmailSettings(Context().get(), {}, &current).ok());
  v1::SetGuestEmailSettingsRequest off;
  *off.mutable_settings() = current.settings();
  off.mutable_settings()->set_notifications_enabled(false);
  off.set_etag(current.settings().etag());
  v1::SetGuestEmailSettingsResponse saved;
  ASSERT_TRUE(admin->SetGuestEmailSettings(Context().get(), off, &saved).ok());

  v1::NotifySelfRegistrationResponse refused;
  const grpc::Status status = Psn(psn2_, "portal")->NotifySelfRegistration(
      Context().get(), Registration("off", "off@example.test", "off-1"), &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReasonOf(FromGrpcStatus(status)), "NOTIFICATIONS_DISABLED");

  v1::SendTestEmailRequest test;
  test.set_portal_id("lobby");
  test.set_language("en");
  test.mutable_to()->set_address("portal-admin@example.test");
  test.set_idempotency_key("test-email-1");
  v1::SendTestEmailResponse response;
  ASSERT_TRUE(admin->SendTestEmail(Context().get(), test, &response).ok());
  const std::vector<std::string> mails =
      testbed_->WaitForDelivered("portal-admin@example.test", 1, kDelivery);
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_THAT(AllText(Parse(mails[0])), HasSubstr("testuser"));

  v1::SetGuestEmailSettingsRequest on;
  *on.mutable_settings() = current.settings();
  on.set_etag(saved.settings().etag());
  ASSERT_TRUE(admin->SetGuestEmailSettings(Context().get(), on, &saved).ok());
  EXPECT_EQ(saved.settings().etag(), current.settings().etag()) << "etags are content hashes";
  EXPECT_TRUE(testbed_->DeliveredTo("off@example.test").empty());
}

TEST_F(PsnE2eTest, RefusesADefaultFromNoMailboxOfTheRouteMaySendAs) {
  auto admin = Psn(psn1_, "admin");
  v1::GetGuestEmailSettingsResponse current;
  ASSERT_TRUE(admin->GetGuestEmailSettings(Context().get(), {}, &current).ok());
  v1::SetGuestEmailSettingsRequest request;
  *request.mutable_settings() = current.settings();
  request.mutable_settings()->mutable_default_from()->set_address("x@fabrikam.test");
  request.set_etag(current.settings().etag());
  v1::SetGuestEmailSettingsResponse saved;
  const grpc::Status refused = admin->SetGuestEmailSettings(Context().get(), request, &saved);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(),
              HasSubstr(absl::StrCat("settings.default_from: \"x@fabrikam.test\" is not an "
                                     "address that the mailbox carrying guest credentials "
                                     "may send as (", testbed_->Env("MAILBOX"), ";")));
  v1::GetGuestEmailSettingsResponse after;
  ASSERT_TRUE(admin->GetGuestEmailSettings(Context().get(), {}, &after).ok());
  EXPECT_EQ(after.settings().etag(), current.settings().etag()) << "nothing is saved";

  // An address of the mailbox's @domain is saved; then the settings go back as they were.
  request.mutable_settings()->mutable_default_from()->set_address("lobby@example.test");
  ASSERT_TRUE(admin->SetGuestEmailSettings(Context().get(), request, &saved).ok());
  EXPECT_EQ(saved.settings().default_from().address(), "lobby@example.test");
  request.mutable_settings()->mutable_default_from()->set_address(
      current.settings().default_from().address());
  request.set_etag(saved.settings().etag());
  ASSERT_TRUE(admin->SetGuestEmailSettings(Context().get(), request, &saved).ok());
}

TEST_F(PsnE2eTest, AdminCliDrivesEveryPsn) {
  // Settings of both PSNs, read and changed on one.
  CtlResult r = Cli({"psn-settings", "show"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("psn1 ("));
  EXPECT_THAT(r.output, HasSubstr("psn2 ("));
  EXPECT_THAT(r.output, HasSubstr("Email notifications to guests: enabled"));
  r = Cli({"psn-settings", "set", "notifications=off", "psn=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = Cli({"psn-settings", "show"});
  EXPECT_THAT(r.output, HasSubstr("DISABLED"));
  EXPECT_THAT(r.output, HasSubstr("WARNING: the PSNs' settings differ"));
  r = Cli({"psn-settings", "set", "notifications=on"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(Cli({"psn-settings", "show"}).output, ::testing::Not(HasSubstr("WARNING")));

  // A template goes to every PSN with the same etag; an unknown variable is refused by name.
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/cli");
  std::ofstream(dir + "/reset.txt") << "{{first_name}}, your new password: {{password}}\n";
  std::ofstream(dir + "/bad.html") << "<p>{{pasword}}</p>\n";
  r = Cli({"template", "put", "kind=password_reset", "portal=lobby",
           "subject=Reset for {{username}}", "text_file=" + dir + "/reset.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> etags;
  for (absl::string_view line : absl::StrSplit(r.output, '\n', absl::SkipEmpty())) {
    etags.push_back(std::string(line.substr(line.rfind(' ') + 1)));
  }
  ASSERT_EQ(etags.size(), 2u) << r.output;
  EXPECT_EQ(etags[0], etags[1]);
  r = Cli({"template", "put", "kind=password_reset", "subject=x", "html_file=" + dir + "/bad.html"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("template.html_body: unknown variable {{pasword}}"));
  r = Cli({"template", "get", "kind=password_reset", "portal=lobby", "language=fr", "resolve",
           "psn=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("subject: Reset for {{username}}"));
  r = Cli({"--json", "template", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"kind\": \"TEMPLATE_KIND_PASSWORD_RESET\""));

  // Portal calls: register (retried with the same key: one mail), reset, status.
  const std::vector<std::string> registration = {
      "guest", "register", "portal=lobby", "username=cli-user", "email=cli-guest@example.test",
      "first_name=美玲", "last_name=林", "language=zh-TW", "password_file=-", "key=cli-key-1"};
  r = Cli(registration, "Cli-Pw-123\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("queued psn1/"));
  // Retry as the output says: the same command with the printed key= and validity.
  const size_t hint = r.output.find("repeat the command with ");
  ASSERT_NE(hint, std::string::npos) << r.output;
  const std::string retry_options =
      r.output.substr(hint + 24, r.output.find(')', hint) - hint - 24);
  std::vector<std::string> retry = registration;
  for (absl::string_view option : absl::StrSplit(retry_options, ' ', absl::SkipEmpty())) {
    retry.push_back(std::string(option));
  }
  EXPECT_THAT(retry_options, HasSubstr("valid_from="));
  absl::SleepFor(absl::Seconds(1));  // the clock moves on; the retry must not care
  r = Cli(retry, "Cli-Pw-123\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("a repeated request: nothing new was queued"));
  r = Cli({"guest", "register", "portal=lobby", "username=x", "email=x@example.test",
           "password=on-the-command-line"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("never taken on the command line"));
  r = Cli({"guest", "reset-password", "portal=lobby", "username=cli-user", "first_name=美玲",
           "email=cli-guest@example.test", "password_file=-", "psn=2", "key=cli-reset-1"},
          "New-Pw-456\n");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("queued psn2/"));
  const std::vector<std::string> mails =
      testbed_->WaitForDelivered("cli-guest@example.test", 2, kDelivery);
  ASSERT_EQ(mails.size(), 2u);
  std::set<std::string> subjects;
  for (const std::string& mail : mails) subjects.insert(*DecodeHeaderText(Parse(mail).Header("Subject")));
  EXPECT_EQ(subjects, (std::set<std::string>{"您的 lobby 訪客帳號", "Reset for cli-user"}));
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(testbed_->DeliveredTo("cli-guest@example.test").size(), 2u);
  for (absl::Time deadline = absl::Now() + kDelivery; absl::Now() < deadline;) {
    r = Cli({"--json", "guest", "status", "key=cli-key-1"});
    if (absl::StrContains(r.output, "NOTIFICATION_STATE_SENT")) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  EXPECT_THAT(r.output, HasSubstr("NOTIFICATION_STATE_SENT"));
  r = Cli({"guest", "list", "recipient=cli-guest@example.test", "psn=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("PASSWORD_RESET"));
  r = Cli({"template", "delete", "kind=password_reset", "portal=lobby"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("psn2 ("));
}

TEST_F(PsnE2eTest, KillNineInTheMiddleOfABurstLosesNoAcknowledgedNotification) {
  const std::string to = "burst@example.test";
  constexpr int kRequests = 200;
  constexpr int kThreads = 4;
  std::mutex mu;
  std::map<int, std::string> acked;  // request index → Message-ID
  std::vector<int> unacked;
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto stub = Psn(psn2_, "portal");
      for (int i = next++; i < kRequests; i = next++) {
        v1::NotifySelfRegistrationResponse response;
        const grpc::Status status = stub->NotifySelfRegistration(
            Context(absl::Seconds(5)).get(),
            Registration(absl::StrCat("burst", i), to, absl::StrCat("burst-", i)), &response);
        std::lock_guard<std::mutex> lock(mu);
        if (status.ok()) {
          acked[i] = response.notification().message_id();
        } else {
          unacked.push_back(i);
        }
      }
    });
  }
  // Kill the PSN without warning once a third of the burst is acknowledged.
  for (absl::Time deadline = absl::Now() + absl::Seconds(60); absl::Now() < deadline;) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (acked.size() >= kRequests / 3) break;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  const absl::Duration until_kill = absl::Now() - start;
  psn2_->Kill();
  for (std::thread& thread : threads) thread.join();
  const size_t acked_before_kill = acked.size();
  const size_t delivered_at_kill = testbed_->DeliveredTo(to).size();
  ASSERT_GE(acked_before_kill, static_cast<size_t>(kRequests / 3));
  ASSERT_FALSE(unacked.empty()) << "the kill came too late to test anything";

  // Restart on the same data dir; the portal retries what was not acknowledged, with the same
  // keys (those committed just before the kill come back as duplicates).
  ASSERT_TRUE(psn2_->Restart().ok());
  auto stub = Psn(psn2_, "portal");
  int duplicates_on_retry = 0;
  for (int i : unacked) {
    v1::NotifySelfRegistrationResponse response;
    const grpc::Status status = stub->NotifySelfRegistration(
        Context().get(), Registration(absl::StrCat("burst", i), to, absl::StrCat("burst-", i)),
        &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    duplicates_on_retry += response.duplicate();
    acked[i] = response.notification().message_id();
  }
  ASSERT_EQ(acked.size(), static_cast<size_t>(kRequests));
  testbed_->WaitForDelivered(to, kRequests, absl::Seconds(180));
  std::map<std::string, int> copies;
  for (const std::string& message : testbed_->DeliveredTo(to)) ++copies[MessageId(message)];
  int lost = 0;
  int duplicate_copies = 0;
  for (const auto& [index, message_id] : acked) {
    const auto it = copies.find("<" + message_id + ">");
    if (it == copies.end()) {
      ++lost;
      ADD_FAILURE() << "acknowledged notification " << index << " <" << message_id
                    << "> never arrived";
      continue;
    }
    duplicate_copies += it->second - 1;
  }
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(copies.size(), static_cast<size_t>(kRequests)) << "each request is one message";
  std::cout << "kill -9 after " << acked_before_kill << " of " << kRequests
            << " registrations acknowledged (" << delivered_at_kill << " delivered); "
            << unacked.size() << " retried after restart (" << duplicates_on_retry
            << " already committed before the kill); " << copies.size()
            << " distinct messages delivered, " << lost << " lost, " << duplicate_copies
            << " duplicate copies (same Message-ID); " << kThreads << " portal threads got "
            << absl::StrFormat("%.0f", acked_before_kill / absl::ToDoubleSeconds(until_kill))
            << " durable acknowledgements/s before the kill" << std::endl;
}

}  // namespace
}  // namespace mailroom
