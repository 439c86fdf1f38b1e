// PsnNotifier against a real outbox (SQLite under TEST_TMPDIR) with a fake clock: what each
// send RPC queues (read back with an independent MIME parser), idempotency, the Guest Email
// Settings switch, bad input queuing nothing, status queries, and no password in any log line.
#include "psn/psn_notifier.h"

#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "tests/testing/capturing_log_sink.h"
#include "tests/testing/fake_clock.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/psn/test_util.h"
#include "tests/testing/fake_mail_route_resolver.h"
#include "tests/testing/mime_parse.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
namespace cv1 = ::mailroom::common::v1;
using ::mailroom::psn::testing::IsInvalidField;
using ::mailroom::psn::testing::TestDir;
using ::mailroom::testing::DecodeHeaderText;
using ::mailroom::testing::MimeEntity;
using ::mailroom::testing::ParseAddressList;
using ::mailroom::testing::ParsedMailbox;
using ::mailroom::testing::ParseMime;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFrom[] = "no-reply@example.test";

v1::Guest Guest(const std::string& name, const std::string& password) {
  v1::Guest guest;
  guest.set_username(name);
  guest.set_password(password);
  guest.set_first_name("小明");
  guest.set_last_name("王");
  guest.mutable_email()->set_address(name + "@example.test");
  guest.mutable_valid_from()->set_seconds(1'800'000'000);     // 2027-01-15 08:00 UTC
  guest.mutable_valid_until()->set_seconds(1'800'000'000 + 86400);
  return guest;
}

v1::Sponsor Sponsor() {
  v1::Sponsor sponsor;
  sponsor.set_username("sam");
  sponsor.mutable_email()->set_address("sam@example.test");
  sponsor.mutable_email()->set_display_name("Sam Sponsor");
  return sponsor;
}

// The decoded text of every leaf part, concatenated.
std::string AllText(const MimeEntity& entity) {
  if (entity.parts.empty()) return entity.body;
  std::string text;
  for (const MimeEntity& part : entity.parts) text += AllText(part) + "\n";
  return text;
}

const MimeEntity* Part(const MimeEntity& entity, const std::string& type) {
  if (entity.content_type == type) return &entity;
  for (const MimeEntity& part : entity.parts) {
    if (const MimeEntity* found = Part(part, type)) return found;
  }
  return nullptr;
}

class PsnNotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sink_ = std::make_shared<::mailroom::testing::CapturingLogSink>();
    Logging::SetSink(sink_);
    Logging::SetDefaultLevel(LogLevel::kTrace);
    dir_ = TestDir();
    OutboxOptions options;
    options.node_name = "psn1";
    options.sync_every_commit = false;
    auto outbox = Outbox::Open(dir_ + "/outbox.db", &clock_, options);
    ASSERT_TRUE(outbox.ok()) << outbox.status();
    outbox_ = *std::move(outbox);
    GuestEmailSettings settings;
    settings.set_notifications_enabled(true);
    settings.mutable_default_from()->set_address(kFrom);
    settings.mutable_default_from()->set_display_name("訪客服務");
    auto settings_store = GuestEmailSettingsStore::Open(dir_ + "/s.pb", settings, &clock_);
    ASSERT_TRUE(settings_store.ok());
    settings_ = *std::move(settings_store);
    auto templates = TemplateStore::Open(dir_ + "/t.pb", "", &clock_);
    ASSERT_TRUE(templates.ok());
    templates_ = *std::move(templates);
    MakeNotifier(kDefaultMaxMessageBytes);
  }

  void TearDown() override {
    Logging::Reset();
    const std::string log = sink_->Text();
    for (const std::string& password : passwords_) {
      EXPECT_THAT(log, Not(HasSubstr(password))) << "a guest password reached the log";
    }
  }

  void MakeNotifier(size_t max_bytes) {
    NotifierOptions options;
    options.max_message_bytes = max_bytes;
    options.sending_mailbox = [] { return std::string("mailbox@example.test"); };
    options.mail_routes = &mail_routes_;
    notifier_ = std::make_unique<PsnNotifier>(outbox_.get(), settings_.get(), templates_.get(),
                                              &clock_, options);
  }

  std::string Password(const std::string& suffix) {
    passwords_.push_back("Secr3t-" + suffix + "-Zq9");
    return passwords_.back();
  }

  int64_t Queued() {
    absl::StatusOr<cv1::OutboxCounts> counts = outbox_->Counts();
    EXPECT_TRUE(counts.ok());
    return counts->queued() + counts->sending() + counts->sent() + counts->failed();
  }

  // Every queued message, parsed, in queue order.
  std::vector<std::pair<ClaimedNotification, MimeEntity>> Claim() {
    std::vector<std::pair<ClaimedNotification, MimeEntity>> out;
    absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox_->ClaimDue(1000);
    EXPECT_TRUE(claimed.ok());
    for (ClaimedNotification& n : *claimed) {
      absl::StatusOr<MimeEntity> parsed = ParseMime(n.message);
      EXPECT_TRUE(parsed.ok()) << parsed.status();
      out.emplace_back(std::move(n), parsed.ok() ? *parsed : MimeEntity());
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.first.create_time < b.first.create_time ||
             (a.first.create_time == b.first.create_time && a.first.id < b.first.id);
    });
    return out;
  }

  v1::NotifySelfRegistrationRequest SelfRegistration(const std::string& key) {
    v1::NotifySelfRegistrationRequest request;
    *request.mutable_guest() = Guest("alice", Password("alice"));
    request.set_portal_id("lobby");
    request.set_language("zh-TW");
    request.set_idempotency_key(key);
    return request;
  }

  FakeClock clock_;
  // No route of its own for any purpose until a test sets one: every From passes.
  ::mailroom::testing::FakeMailRouteResolver mail_routes_;
  std::shared_ptr<::mailroom::testing::CapturingLogSink> sink_;
  std::vector<std::string> passwords_;
  std::string dir_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<GuestEmailSettingsStore> settings_;
  std::unique_ptr<TemplateStore> templates_;
  std::unique_ptr<PsnNotifier> notifier_;
};

TEST_F(PsnNotifierTest, SelfRegistrationQueuesTheCredentialsWithTheChineseNameIntact) {
  const v1::NotifySelfRegistrationRequest request = SelfRegistration("reg-1");
  auto response = notifier_->NotifySelfRegistration(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_FALSE(response->duplicate());
  EXPECT_TRUE(absl::StartsWith(response->notification().notification_id(), "psn1/"));
  EXPECT_EQ(response->notification().kind(), cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION);
  auto messages = Claim();
  ASSERT_EQ(messages.size(), 1u);
  const MimeEntity& mail = messages[0].second;
  EXPECT_EQ(*DecodeHeaderText(mail.Header("Subject")), "您的 lobby 訪客帳號");
  absl::StatusOr<std::vector<ParsedMailbox>> to = ParseAddressList(mail.Header("To"));
  ASSERT_TRUE(to.ok());
  ASSERT_EQ(to->size(), 1u);
  EXPECT_EQ((*to)[0].address, "alice@example.test");
  EXPECT_EQ((*to)[0].display_name, "小明 王");
  absl::StatusOr<std::vector<ParsedMailbox>> from = ParseAddressList(mail.Header("From"));
  ASSERT_TRUE(from.ok());
  EXPECT_EQ((*from)[0].display_name, "訪客服務");
  EXPECT_EQ(mail.Header("Message-ID"), "<" + response->notification().message_id() + ">");
  EXPECT_EQ(mail.Header("Auto-Submitted"), "auto-generated");
  const std::string text = Part(mail, "text/plain")->body;
  EXPECT_THAT(text, HasSubstr("王小明 您好"));
  EXPECT_THAT(text, HasSubstr(request.guest().password()));
  EXPECT_THAT(text, HasSubstr("2027-01-16 08:00"));
  ASSERT_NE(Part(mail, "text/html"), nullptr);
  EXPECT_EQ(messages[0].first.recipients.size(), 1u);
}

TEST_F(PsnNotifierTest, ValuesAreHtmlEscapedInTheHtmlPart) {
  v1::NotifySelfRegistrationRequest request = SelfRegistration("esc");
  request.set_language("en");
  request.mutable_guest()->set_first_name("<b>Eve</b>");
  request.mutable_guest()->set_password("p<&>\"'w" + Password("esc"));
  ASSERT_TRUE(notifier_->NotifySelfRegistration(request).ok());
  auto messages = Claim();
  ASSERT_EQ(messages.size(), 1u);
  const std::string html = Part(messages[0].second, "text/html")->body;
  EXPECT_THAT(html, HasSubstr("&lt;b&gt;Eve&lt;/b&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<b>Eve</b>")));
  EXPECT_THAT(html, HasSubstr("p&lt;&amp;&gt;&quot;&#39;w"));
  EXPECT_THAT(Part(messages[0].second, "text/plain")->body, HasSubstr("<b>Eve</b>"));
}

TEST_F(PsnNotifierTest, AnIdempotentRetryQueuesNothingAndReturnsTheOriginal) {
  const v1::NotifySelfRegistrationRequest request = SelfRegistration("same-key");
  auto first = notifier_->NotifySelfRegistration(request);
  clock_.Advance(absl::Seconds(3));
  auto second = notifier_->NotifySelfRegistration(request);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_TRUE(second->duplicate());
  EXPECT_EQ(second->notification().notification_id(), first->notification().notification_id());
  EXPECT_EQ(second->notification().message_id(), first->notification().message_id());
  EXPECT_EQ(Queued(), 1);
  // The same key with other content, or for another RPC, is refused.
  v1::NotifySelfRegistrationRequest changed = request;
  changed.mutable_guest()->set_username("mallory");
  absl::Status reused = notifier_->NotifySelfRegistration(changed).status();
  EXPECT_EQ(reused.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ReasonOf(reused), "IDEMPOTENCY_KEY_REUSED");
  EXPECT_THAT(reused.message(), HasSubstr("idempotency_key"));
  v1::SendPasswordResetRequest reset;
  *reset.mutable_guest() = request.guest();
  reset.set_portal_id("lobby");
  reset.set_idempotency_key("same-key");
  EXPECT_EQ(notifier_->SendPasswordReset(reset).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Queued(), 1);
}

TEST_F(PsnNotifierTest, ResendWithCopyMeAndSummary) {
  v1::ResendRequest request;
  *request.add_guests() = Guest("ann", Password("ann"));
  *request.add_guests() = Guest("bob", Password("bob"));
  *request.mutable_sponsor() = Sponsor();
  request.set_portal_id("sponsor-portal");
  request.set_copy_me(true);
  request.set_send_summary(true);
  request.set_idempotency_key("resend-1");
  auto response = notifier_->Resend(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->notifications_size(), 3);
  EXPECT_EQ(response->notifications(0).kind(), cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS_RESEND);
  EXPECT_EQ(response->notifications(2).kind(), cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY);
  ASSERT_EQ(response->notifications(0).recipients_size(), 2);
  EXPECT_EQ(response->notifications(0).recipients(1).address(), "sam@example.test");

  auto messages = Claim();
  ASSERT_EQ(messages.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    const MimeEntity& mail = messages[i].second;
    EXPECT_EQ(ParseAddressList(mail.Header("Cc"))->at(0).address, "sam@example.test");
    EXPECT_EQ(*DecodeHeaderText(mail.Header("Subject")), "Your guest account from Sam Sponsor");
    EXPECT_THAT(AllText(mail), HasSubstr(request.guests(i).password()));
    ASSERT_EQ(messages[i].first.recipients.size(), 2u);
    EXPECT_EQ(messages[i].first.recipients[1].type(), cv1::RECIPIENT_TYPE_CC);
  }
  const MimeEntity& summary = messages[2].second;
  EXPECT_EQ(ParseAddressList(summary.Header("To"))->at(0).address, "sam@example.test");
  EXPECT_EQ(summary.HeaderCount("Cc"), 0);
  const std::string text = Part(summary, "text/plain")->body;
  EXPECT_THAT(text, HasSubstr("Username | Password"));
  EXPECT_THAT(text, HasSubstr("ann"));
  EXPECT_THAT(text, HasSubstr(request.guests(1).password()));
  EXPECT_THAT(text, HasSubstr("小明 王"));
  EXPECT_THAT(Part(summary, "text/html")->body, HasSubstr("<td>bob@example.test</td>"));
  EXPECT_EQ(*DecodeHeaderText(summary.Header("Subject")), "Guest accounts on sponsor-portal: 2");

  // Status by key returns all three; by id one.
  v1::GetNotificationStatusRequest by_key;
  by_key.set_idempotency_key("resend-1");
  auto status = notifier_->GetNotificationStatus(by_key);
  ASSERT_TRUE(status.ok()) << status.status();
  ASSERT_EQ(status->notifications_size(), 3);
  EXPECT_EQ(status->notifications(2).id(), response->notifications(2).notification_id());
  for (const cv1::Notification& n : status->notifications()) {
    EXPECT_EQ(n.idempotency_key(), "resend-1") << "the caller's key, not the outbox's";
  }
  v1::GetNotificationStatusRequest by_id;
  by_id.set_notification_id(response->notifications(1).notification_id());
  status = notifier_->GetNotificationStatus(by_id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->notifications(0).state(), cv1::NOTIFICATION_STATE_SENDING);
}

TEST_F(PsnNotifierTest, SponsorCreatedGuestsWithoutAddressAppearOnlyInTheSummary) {
  v1::NotifySponsorCreatedAccountsRequest request;
  *request.add_guests() = Guest("ann", Password("ann2"));
  *request.add_guests() = Guest("kiosk", Password("kiosk"));
  request.mutable_guests(1)->clear_email();
  *request.mutable_sponsor() = Sponsor();
  request.set_portal_id("sponsor-portal");
  request.set_language("zh-TW");
  request.set_send_summary(true);
  request.set_idempotency_key("created-1");
  auto response = notifier_->NotifySponsorCreatedAccounts(request);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->notifications_size(), 2);
  EXPECT_EQ(response->notifications(0).kind(), cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS);
  EXPECT_EQ(response->notifications(1).kind(), cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY);
  auto messages = Claim();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].second.HeaderCount("Cc"), 0) << "no copy_me, no Cc";
  const std::string summary = Part(messages[1].second, "text/plain")->body;
  EXPECT_THAT(summary, HasSubstr("使用者名稱"));
  EXPECT_THAT(summary, HasSubstr("kiosk"));
  EXPECT_THAT(summary, HasSubstr("王小明"));
}

TEST_F(PsnNotifierTest, PasswordResetCopiesTheSponsor) {
  v1::SendPasswordResetRequest request;
  *request.mutable_guest() = Guest("ann", Password("reset"));
  request.mutable_guest()->clear_valid_from();
  request.mutable_guest()->clear_valid_until();
  *request.mutable_sponsor() = Sponsor();
  request.set_portal_id("lobby");
  request.set_copy_me(true);
  request.set_idempotency_key("reset-1");
  auto response = notifier_->SendPasswordReset(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->notification().kind(), cv1::NOTIFICATION_KIND_PASSWORD_RESET);
  auto messages = Claim();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(*DecodeHeaderText(messages[0].second.Header("Subject")),
            "Your guest password has been reset");
  EXPECT_THAT(AllText(messages[0].second), HasSubstr(request.guest().password()));
  EXPECT_EQ(ParseAddressList(messages[0].second.Header("Cc"))->at(0).address,
            "sam@example.test");
}

TEST_F(PsnNotifierTest, DisabledNotificationsQueueNothingButTestEmailStillWorks) {
  GuestEmailSettings off;
  ASSERT_TRUE(settings_->Set(off, "").ok());
  absl::Status status = notifier_->NotifySelfRegistration(SelfRegistration("off-1")).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReasonOf(status), "NOTIFICATIONS_DISABLED");
  v1::ResendRequest resend;
  *resend.add_guests() = Guest("ann", Password("off"));
  *resend.mutable_sponsor() = Sponsor();
  resend.set_portal_id("p");
  resend.set_idempotency_key("off-2");
  EXPECT_EQ(ReasonOf(notifier_->Resend(resend).status()), "NOTIFICATIONS_DISABLED");
  EXPECT_EQ(Queued(), 0);

  // Send Test Email works, from the broker's mailbox since no From is set.
  v1::SendTestEmailRequest test;
  test.set_portal_id("lobby");
  test.set_kind(v1::TEMPLATE_KIND_SPONSOR_SUMMARY);
  test.mutable_to()->set_address("admin@example.test");
  test.set_idempotency_key("test-1");
  auto response = notifier_->SendTestEmail(test);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->notification().kind(), cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL);
  auto messages = Claim();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].first.from.address(), "mailbox@example.test");
  const std::string text = AllText(messages[0].second);
  EXPECT_THAT(text, HasSubstr("testuser"));
  EXPECT_THAT(text, HasSubstr("********"));
  EXPECT_THAT(text, HasSubstr("Hello sponsor"));
}

TEST_F(PsnNotifierTest, BadInputIsInvalidArgumentNamingTheFieldAndQueuesNothing) {
  v1::NotifySelfRegistrationRequest request = SelfRegistration("bad-1");
  request.mutable_guest()->set_first_name("Eve\r\nBcc: everyone@example.test");
  EXPECT_TRUE(IsInvalidField(notifier_->NotifySelfRegistration(request).status(),
                             "guest.first_name"));
  request = SelfRegistration("bad-2");
  request.mutable_guest()->mutable_email()->set_address("not an address");
  EXPECT_TRUE(IsInvalidField(notifier_->NotifySelfRegistration(request).status(),
                             "guest.email.address"));
  request = SelfRegistration("bad-3");
  request.mutable_guest()->set_last_name("\xF0\x28\x8C\x28");
  EXPECT_TRUE(IsInvalidField(notifier_->NotifySelfRegistration(request).status(),
                             "guest.last_name"));
  // One bad guest among many: nothing of the request is queued.
  v1::ResendRequest resend;
  for (int i = 0; i < 5; ++i) *resend.add_guests() = Guest("g" + std::to_string(i), "pw-1234");
  resend.mutable_guests(3)->mutable_email()->set_address("g3@");
  *resend.mutable_sponsor() = Sponsor();
  resend.set_portal_id("p");
  resend.set_idempotency_key("bad-4");
  EXPECT_TRUE(IsInvalidField(notifier_->Resend(resend).status(), "guests[3].email.address"));
  EXPECT_EQ(Queued(), 0);
}

TEST_F(PsnNotifierTest, OversizedRenderingIsRefusedNamingTheGuest) {
  MakeNotifier(4096);
  v1::Template big;
  big.set_kind(v1::TEMPLATE_KIND_SELF_REGISTRATION);
  big.set_subject("Hi");
  big.set_text_body(std::string(8000, 'x') + "{{username}}");
  ASSERT_TRUE(templates_->Put(big, false).ok());
  absl::Status status = notifier_->NotifySelfRegistration(SelfRegistration("big")).status();
  EXPECT_TRUE(IsInvalidField(status, "guest")) << status;
  EXPECT_EQ(Queued(), 0);
}

TEST_F(PsnNotifierTest, CustomTemplatesAndTimeZonesAreUsed) {
  v1::PutTemplateRequest put;
  v1::Template* t = put.mutable_template_();
  t->set_portal_id("lobby");
  t->set_kind(v1::TEMPLATE_KIND_SELF_REGISTRATION);
  t->set_subject("Welcome to {{portal}}, {{first_name}}");
  t->set_text_body("until {{valid_until}}");
  t->set_time_zone("Asia/Taipei");
  ASSERT_TRUE(notifier_->PutTemplate(put).ok());
  ASSERT_TRUE(notifier_->NotifySelfRegistration(SelfRegistration("tz")).ok());
  auto messages = Claim();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(*DecodeHeaderText(messages[0].second.Header("Subject")), "Welcome to lobby, 小明");
  EXPECT_THAT(messages[0].second.body, HasSubstr("until 2027-01-16 16:00"));
  EXPECT_TRUE(messages[0].second.parts.empty());

  v1::GetTemplateRequest get;
  get.set_portal_id("lobby");
  get.set_language("zh-TW");
  get.set_kind(v1::TEMPLATE_KIND_SELF_REGISTRATION);
  EXPECT_EQ(notifier_->GetTemplate(get).status().code(), absl::StatusCode::kNotFound);
  get.set_resolve(true);
  auto resolved = notifier_->GetTemplate(get);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->template_().language(), "");
  EXPECT_EQ(resolved->template_().portal_id(), "lobby");
}

TEST_F(PsnNotifierTest, ListNotificationsFiltersByKindAndRecipientWithPaging) {
  for (int i = 0; i < 7; ++i) {
    v1::NotifySelfRegistrationRequest request = SelfRegistration("list-" + std::to_string(i));
    request.mutable_guest()->mutable_email()->set_address(i % 2 == 0 ? "even@example.test"
                                                                     : "odd@example.test");
    ASSERT_TRUE(notifier_->NotifySelfRegistration(request).ok());
    clock_.Advance(absl::Seconds(1));
  }
  v1::SendTestEmailRequest test;
  test.set_portal_id("lobby");
  test.mutable_to()->set_address("even@example.test");
  test.set_idempotency_key("list-test");
  ASSERT_TRUE(notifier_->SendTestEmail(test).ok());

  v1::ListNotificationsRequest request;
  request.set_recipient("EVEN@example.test");
  request.add_kinds(cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION);
  request.mutable_page()->set_page_size(3);
  auto first = notifier_->ListNotifications(request);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->notifications_size(), 3);
  EXPECT_EQ(first->notifications(0).recipients(0).address().address(), "even@example.test");
  ASSERT_FALSE(first->page().next_page_token().empty());
  request.mutable_page()->set_page_token(first->page().next_page_token());
  auto second = notifier_->ListNotifications(request);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->notifications_size(), 1);
  EXPECT_TRUE(second->page().next_page_token().empty());
  EXPECT_GT(first->notifications(2).create_time().seconds(),
            second->notifications(0).create_time().seconds());
  request.set_recipient("odd@example.test");
  EXPECT_TRUE(IsInvalidField(notifier_->ListNotifications(request).status(), "page.page_token"));

  v1::ListNotificationsRequest all;
  auto everything = notifier_->ListNotifications(all);
  ASSERT_TRUE(everything.ok());
  EXPECT_EQ(everything->notifications_size(), 8);
  EXPECT_EQ(everything->notifications(0).kind(), cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL);
}

TEST_F(PsnNotifierTest, UnknownStatusIsNotFound) {
  v1::GetNotificationStatusRequest request;
  request.set_idempotency_key("never-used");
  EXPECT_EQ(notifier_->GetNotificationStatus(request).status().code(),
            absl::StatusCode::kNotFound);
  request.Clear();
  request.set_notification_id("psn1/nothing");
  EXPECT_EQ(notifier_->GetNotificationStatus(request).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PsnNotifierTest, ADefaultFromNoMailboxOfAPsnRouteMaySendAsIsRefusedAndNotSaved) {
  mail_routes_.Route(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS,
                     {"guests@example.test", "noreply@example.test"},
                     {kFrom, "lobby@example.test"});
  mail_routes_.Route(cv1::MAIL_PURPOSE_SPONSOR_MAIL, {"noreply@example.test"}, {kFrom});
  const GuestEmailSettings before = settings_->Get();
  v1::SetGuestEmailSettingsRequest request;
  *request.mutable_settings() = before;
  request.mutable_settings()->mutable_default_from()->set_address("x@fabrikam.test");
  absl::StatusOr<v1::SetGuestEmailSettingsResponse> saved =
      notifier_->SetGuestEmailSettings(request);
  EXPECT_EQ(saved.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(saved.status().message()),
              HasSubstr("settings.default_from: \"x@fabrikam.test\" is not an address that any "
                        "of the mailboxes carrying guest credentials (guests@example.test, "
                        "noreply@example.test)"));
  EXPECT_EQ(settings_->Get().etag(), before.etag());

  // Guest credentials may use it, sponsor summaries (the same From) may not.
  request.mutable_settings()->mutable_default_from()->set_address("lobby@example.test");
  saved = notifier_->SetGuestEmailSettings(request);
  EXPECT_THAT(std::string(saved.status().message()),
              HasSubstr("carrying sponsor mail (noreply@example.test)"));
  EXPECT_EQ(settings_->Get().default_from().address(), kFrom);

  request.mutable_settings()->mutable_default_from()->set_address(kFrom);
  request.mutable_settings()->mutable_default_from()->set_display_name("Guests");
  saved = notifier_->SetGuestEmailSettings(request);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(settings_->Get().default_from().display_name(), "Guests");
}

TEST_F(PsnNotifierTest, ADefaultFromIsSavedUncheckedWhileTheBrokerCannotAnswer) {
  mail_routes_.Route(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS, {"guests@example.test"}, {kFrom});
  mail_routes_.SetUnanswered(absl::UnavailableError("no broker leads"));
  v1::SetGuestEmailSettingsRequest request;
  *request.mutable_settings() = settings_->Get();
  request.mutable_settings()->mutable_default_from()->set_address("x@fabrikam.test");
  absl::StatusOr<v1::SetGuestEmailSettingsResponse> saved =
      notifier_->SetGuestEmailSettings(request);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(settings_->Get().default_from().address(), "x@fabrikam.test");
  EXPECT_THAT(sink_->Text(), HasSubstr("settings.default_from \"x@fabrikam.test\" saved without "
                                       "checking it"));
}

TEST(NotificationKeyTest, DerivedKeysNeverCollide) {
  EXPECT_EQ(PsnNotifier::NotificationKey("abc", 0), "abc#0");
  EXPECT_NE(PsnNotifier::NotificationKey("abc#0", 0), PsnNotifier::NotificationKey("abc", 0));
  EXPECT_NE(PsnNotifier::NotificationKey("a#1", 2), PsnNotifier::NotificationKey("a", 12));
}

}  // namespace
}  // namespace mailroom::psn
