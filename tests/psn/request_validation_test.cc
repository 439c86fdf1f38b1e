// Bad input at every GuestNotifications request is INVALID_ARGUMENT naming the field: empty
// required fields, CR/LF, invalid addresses, oversized values, malformed UTF-8.
#include "psn/request_validation.h"

#include <functional>

#include "gtest/gtest.h"
#include "tests/psn/test_util.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
namespace cv1 = ::mailroom::common::v1;
using ::mailroom::psn::testing::IsInvalidField;

v1::Guest GoodGuest(const std::string& name = "alice") {
  v1::Guest guest;
  guest.set_guest_id("g-1");
  guest.set_username(name);
  guest.set_password("Pw-123456");
  guest.set_first_name("小明");
  guest.set_last_name("王");
  guest.mutable_email()->set_address(name + "@example.test");
  guest.mutable_valid_from()->set_seconds(1'800'000'000);
  guest.mutable_valid_until()->set_seconds(1'800'086'400);
  return guest;
}

v1::Sponsor GoodSponsor() {
  v1::Sponsor sponsor;
  sponsor.set_username("sam");
  sponsor.mutable_email()->set_address("sam@example.test");
  return sponsor;
}

v1::NotifySelfRegistrationRequest GoodSelfRegistration() {
  v1::NotifySelfRegistrationRequest request;
  *request.mutable_guest() = GoodGuest();
  request.set_portal_id("lobby");
  request.set_language("zh-TW");
  request.set_idempotency_key("k-1");
  return request;
}

v1::ResendRequest GoodResend() {
  v1::ResendRequest request;
  *request.add_guests() = GoodGuest("a");
  *request.add_guests() = GoodGuest("b");
  *request.mutable_sponsor() = GoodSponsor();
  request.set_portal_id("sponsor");
  request.set_copy_me(true);
  request.set_send_summary(true);
  request.set_idempotency_key("k-2");
  return request;
}

template <typename Request>
void ExpectInvalid(const Request& good, const std::string& field,
                   const std::function<void(Request*)>& spoil) {
  ASSERT_TRUE(ValidateRequest(good).ok()) << ValidateRequest(good);
  Request bad = good;
  spoil(&bad);
  EXPECT_TRUE(IsInvalidField(ValidateRequest(bad), field)) << field;
}

TEST(RequestValidationTest, SelfRegistration) {
  using R = v1::NotifySelfRegistrationRequest;
  const R good = GoodSelfRegistration();
  ExpectInvalid<R>(good, "guest.username", [](R* r) { r->mutable_guest()->clear_username(); });
  ExpectInvalid<R>(good, "guest.username",
                   [](R* r) { r->mutable_guest()->set_username(std::string(257, 'u')); });
  ExpectInvalid<R>(good, "guest.password", [](R* r) { r->mutable_guest()->clear_password(); });
  ExpectInvalid<R>(good, "guest.password",
                   [](R* r) { r->mutable_guest()->set_password("pw\r\n"); });
  ExpectInvalid<R>(good, "guest.first_name",
                   [](R* r) { r->mutable_guest()->set_first_name("A\r\nBcc: x@evil.test"); });
  ExpectInvalid<R>(good, "guest.last_name",
                   [](R* r) { r->mutable_guest()->set_last_name("\xE7\x8E"); });
  ExpectInvalid<R>(good, "guest.guest_id",
                   [](R* r) { r->mutable_guest()->set_guest_id(std::string(129, 'g')); });
  ExpectInvalid<R>(good, "guest.email.address",
                   [](R* r) { r->mutable_guest()->clear_email(); });
  ExpectInvalid<R>(good, "guest.email.address",
                   [](R* r) { r->mutable_guest()->mutable_email()->set_address("alice@"); });
  ExpectInvalid<R>(good, "guest.email.address", [](R* r) {
    r->mutable_guest()->mutable_email()->set_address("Alice <alice@example.test>");
  });
  ExpectInvalid<R>(good, "guest.email.display_name", [](R* r) {
    r->mutable_guest()->mutable_email()->set_display_name("x\ny");
  });
  ExpectInvalid<R>(good, "guest.valid_from",
                   [](R* r) { r->mutable_guest()->clear_valid_from(); });
  ExpectInvalid<R>(good, "guest.valid_until",
                   [](R* r) { r->mutable_guest()->clear_valid_until(); });
  ExpectInvalid<R>(good, "guest.valid_until", [](R* r) {
    r->mutable_guest()->mutable_valid_until()->set_seconds(1'700'000'000);
  });
  ExpectInvalid<R>(good, "portal_id", [](R* r) { r->clear_portal_id(); });
  ExpectInvalid<R>(good, "portal_id", [](R* r) { r->set_portal_id("lobby\n"); });
  ExpectInvalid<R>(good, "language", [](R* r) { r->set_language("zh TW"); });
  ExpectInvalid<R>(good, "idempotency_key", [](R* r) { r->clear_idempotency_key(); });
  ExpectInvalid<R>(good, "idempotency_key", [](R* r) { r->set_idempotency_key("a b"); });
}

TEST(RequestValidationTest, EveryBadFieldIsNamedFirstOneFirst) {
  v1::NotifySelfRegistrationRequest request = GoodSelfRegistration();
  request.mutable_guest()->set_first_name("A\r\nBcc: x@evil.test");
  request.set_portal_id("");
  request.set_idempotency_key("a b");
  const absl::Status status = ValidateRequest(request);
  EXPECT_TRUE(IsInvalidField(status, "guest.first_name"));
  EXPECT_EQ(status.message(),
            "guest.first_name: contains CR or LF (a line break); portal_id: is required; "
            "idempotency_key: must be printable ASCII without spaces");
}

TEST(RequestValidationTest, SponsorCreatedAccounts) {
  using R = v1::NotifySponsorCreatedAccountsRequest;
  R good;
  *good.add_guests() = GoodGuest("a");
  *good.mutable_sponsor() = GoodSponsor();
  good.set_portal_id("sponsor");
  good.set_idempotency_key("k");
  ExpectInvalid<R>(good, "guests", [](R* r) { r->clear_guests(); });
  ExpectInvalid<R>(good, "guests", [](R* r) {
    for (int i = 0; i < 500; ++i) *r->add_guests() = GoodGuest("x");
  });
  ExpectInvalid<R>(good, "guests[1].email.address", [](R* r) {
    v1::Guest* guest = r->add_guests();
    *guest = GoodGuest("b");
    guest->clear_email();
  });
  ExpectInvalid<R>(good, "guests[0].password",
                   [](R* r) { r->mutable_guests(0)->clear_password(); });
  ExpectInvalid<R>(good, "sponsor.username", [](R* r) { r->clear_sponsor(); });
  ExpectInvalid<R>(good, "sponsor.email.address", [](R* r) {
    r->set_copy_me(true);
    r->mutable_sponsor()->clear_email();
  });
  ExpectInvalid<R>(good, "sponsor.email.address", [](R* r) {
    r->mutable_sponsor()->mutable_email()->set_address("sam@exa mple.test");
  });
  // A guest without an address is fine when the sponsor gets the summary.
  R summary_only = good;
  summary_only.set_send_summary(true);
  summary_only.mutable_guests(0)->clear_email();
  EXPECT_TRUE(ValidateRequest(summary_only).ok()) << ValidateRequest(summary_only);
}

TEST(RequestValidationTest, Resend) {
  using R = v1::ResendRequest;
  const R good = GoodResend();
  ExpectInvalid<R>(good, "guests[1].email.address",
                   [](R* r) { r->mutable_guests(1)->clear_email(); });
  ExpectInvalid<R>(good, "guests[0].valid_until",
                   [](R* r) { r->mutable_guests(0)->clear_valid_until(); });
  ExpectInvalid<R>(good, "delivery", [](R* r) { r->set_delivery(static_cast<v1::DeliveryMethod>(7)); });
  ExpectInvalid<R>(good, "sponsor.email.address",
                   [](R* r) { r->mutable_sponsor()->clear_email(); });
  ExpectInvalid<R>(good, "sponsor.username", [](R* r) {
    r->mutable_sponsor()->set_username("sam\r\n");
  });
}

TEST(RequestValidationTest, PasswordReset) {
  using R = v1::SendPasswordResetRequest;
  R good;
  *good.mutable_guest() = GoodGuest();
  good.mutable_guest()->clear_valid_from();
  good.mutable_guest()->clear_valid_until();
  good.set_portal_id("lobby");
  good.set_idempotency_key("k");
  ExpectInvalid<R>(good, "guest.password", [](R* r) { r->mutable_guest()->clear_password(); });
  ExpectInvalid<R>(good, "guest.email.address", [](R* r) { r->mutable_guest()->clear_email(); });
  ExpectInvalid<R>(good, "sponsor.email.address", [](R* r) { r->set_copy_me(true); });
}

TEST(RequestValidationTest, TestEmail) {
  using R = v1::SendTestEmailRequest;
  R good;
  good.set_portal_id("lobby");
  good.mutable_to()->set_address("admin@example.test");
  good.set_idempotency_key("k");
  ExpectInvalid<R>(good, "to.address", [](R* r) { r->clear_to(); });
  ExpectInvalid<R>(good, "to.address", [](R* r) { r->mutable_to()->set_address("x@y"); });
  ExpectInvalid<R>(good, "kind", [](R* r) { r->set_kind(static_cast<v1::TemplateKind>(99)); });
  ExpectInvalid<R>(good, "portal_id", [](R* r) { r->clear_portal_id(); });
}

TEST(RequestValidationTest, StatusAndListing) {
  using S = v1::GetNotificationStatusRequest;
  S by_id;
  by_id.set_notification_id("psn1/01ABC");
  ExpectInvalid<S>(by_id, "notification_id", [](S* r) { r->set_idempotency_key("k"); });
  ExpectInvalid<S>(by_id, "notification_id", [](S* r) { r->clear_notification_id(); });
  using L = v1::ListNotificationsRequest;
  L list;
  ExpectInvalid<L>(list, "kinds[0]",
                   [](L* r) { r->add_kinds(cv1::NOTIFICATION_KIND_ALARM); });
  ExpectInvalid<L>(list, "recipient", [](L* r) { r->set_recipient("a@b.test\n"); });
  ExpectInvalid<L>(list, "page.page_size", [](L* r) { r->mutable_page()->set_page_size(-1); });
}

TEST(RequestValidationTest, TemplateKeys) {
  using G = v1::GetTemplateRequest;
  G get;
  get.set_kind(v1::TEMPLATE_KIND_PASSWORD_RESET);
  ExpectInvalid<G>(get, "kind", [](G* r) { r->clear_kind(); });
  ExpectInvalid<G>(get, "language", [](G* r) { r->set_language("??"); });
  using D = v1::DeleteTemplateRequest;
  D del;
  del.set_kind(v1::TEMPLATE_KIND_SELF_REGISTRATION);
  ExpectInvalid<D>(del, "portal_id", [](D* r) { r->set_portal_id("a\rb"); });
}

}  // namespace
}  // namespace mailroom::psn
