// The mailbox pool's rules (pan/broker/mailbox_pool.h): validation that names the field,
// lookup, routing by purpose, Send As with addresses and @domains, the From check, and
// settings saved before the pool meaning a pool of one.
#include "pan/broker/mailbox_pool.h"

#include "common/mail/mail_purpose.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pan/broker/smtp_settings.h"

namespace mailroom::broker {
namespace {

namespace v1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::SmtpSettings Legacy() {
  v1::SmtpSettings settings;
  settings.set_username("noreply@contoso.com");
  return settings;
}

// noreply (default), alerts (Graph, 10/min) and guests (20/min, send as @guests.contoso.com
// and welcome@contoso.com); alarms → alerts then noreply, guest credentials → guests.
v1::SmtpSettings Pool() {
  v1::SmtpSettings settings = Legacy();
  v1::PoolMailbox* alerts = settings.add_mailboxes();
  alerts->set_address("alerts@contoso.com");
  alerts->set_transport(v1::MAIL_TRANSPORT_GRAPH);
  alerts->mutable_limits()->set_messages_per_minute(10);
  v1::PoolMailbox* guests = settings.add_mailboxes();
  guests->set_address("Guests@Contoso.com");
  guests->set_credential("default");
  guests->mutable_limits()->set_messages_per_minute(20);
  guests->mutable_limits()->set_max_connections(2);
  guests->add_send_as("@guests.contoso.com");
  guests->add_send_as("welcome@contoso.com");
  v1::MailRoute* alarms = settings.add_routes();
  alarms->set_purpose(cv1::MAIL_PURPOSE_ALARMS);
  alarms->add_mailboxes("alerts@contoso.com");
  alarms->add_mailboxes("noreply@contoso.com");
  v1::MailRoute* credentials = settings.add_routes();
  credentials->set_purpose(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS);
  credentials->add_mailboxes("guests@contoso.com");
  return settings;
}

std::vector<std::string> Addresses(const std::vector<const PoolMember*>& members) {
  std::vector<std::string> out;
  for (const PoolMember* member : members) out.push_back(member->address);
  return out;
}

TEST(MailboxPoolTest, SettingsSavedBeforeThePoolAreAPoolOfOne) {
  const v1::SmtpSettings legacy = Legacy();
  ASSERT_TRUE(ValidateMailboxPool(legacy, "settings").ok());
  SendLimitValues defaults;
  defaults.messages_per_minute = 25;
  MailboxPool pool(legacy, defaults);
  ASSERT_EQ(pool.members().size(), 1u);
  EXPECT_TRUE(pool.default_mailbox().is_default);
  EXPECT_EQ(pool.default_mailbox().limits.messages_per_minute, 25);
  EXPECT_EQ(pool.default_mailbox().transport, v1::MAIL_TRANSPORT_SMTP);
  for (int purpose = cv1::MailPurpose_MIN; purpose <= cv1::MailPurpose_MAX; ++purpose) {
    EXPECT_THAT(Addresses(pool.Route(static_cast<MailPurpose>(purpose))),
                ElementsAre("noreply@contoso.com"));
    EXPECT_FALSE(pool.IsRouted(static_cast<MailPurpose>(purpose)));
  }
  // Nothing declared: the default mailbox's From is not checked (Exchange decides).
  EXPECT_TRUE(MailboxPool::CanSendAs(pool.default_mailbox(), "anyone@fabrikam.com"));
  EXPECT_TRUE(pool.CheckFrom(cv1::MAIL_PURPOSE_ALARMS, "anyone@fabrikam.com", "from").ok());
  absl::StatusOr<const PoolMember*> found = pool.Resolve("", "mailbox");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ((*found)->address, "noreply@contoso.com");
}

TEST(MailboxPoolTest, FindsMailboxesWithoutRegardToCaseAndRefusesOthersNamingTheField) {
  MailboxPool pool(Pool(), SendLimitValues());
  ASSERT_NE(pool.Find("GUESTS@contoso.COM"), nullptr);
  EXPECT_EQ(pool.Find("guests@contoso.com")->address, "Guests@Contoso.com");
  EXPECT_EQ(pool.Find("NoReply@Contoso.com"), &pool.default_mailbox());
  absl::StatusOr<const PoolMember*> unknown = pool.Resolve("other@contoso.com", "mailbox");
  ASSERT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("mailbox: \"other@contoso.com\""));
}

TEST(MailboxPoolTest, PoolMailboxesHaveTheirOwnLimitsAndTransport) {
  SendLimitValues defaults;
  defaults.messages_per_minute = 30;
  defaults.max_connections = 3;
  defaults.recipients_per_day = 5000;
  MailboxPool pool(Pool(), defaults);
  const PoolMember* alerts = pool.Find("alerts@contoso.com");
  const PoolMember* guests = pool.Find("guests@contoso.com");
  ASSERT_NE(alerts, nullptr);
  ASSERT_NE(guests, nullptr);
  EXPECT_EQ(alerts->transport, v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(alerts->limits.messages_per_minute, 10);
  EXPECT_EQ(alerts->limits.max_connections, 3);  // zero: the broker's limit
  EXPECT_EQ(guests->transport, v1::MAIL_TRANSPORT_SMTP);
  EXPECT_EQ(guests->limits.messages_per_minute, 20);
  EXPECT_EQ(guests->limits.max_connections, 2);
  EXPECT_EQ(guests->limits.recipients_per_day, 5000);
  const std::map<std::string, SendLimitValues> limits = pool.Limits();
  ASSERT_EQ(limits.size(), 3u);
  EXPECT_EQ(limits.at("Guests@Contoso.com").messages_per_minute, 20);
  EXPECT_EQ(limits.at("noreply@contoso.com").messages_per_minute, 30);
}

TEST(MailboxPoolTest, RoutesByPurposeInOrderAndUnroutedGoesToTheDefault) {
  MailboxPool pool(Pool(), SendLimitValues());
  EXPECT_THAT(Addresses(pool.Route(cv1::MAIL_PURPOSE_ALARMS)),
              ElementsAre("alerts@contoso.com", "noreply@contoso.com"));
  EXPECT_THAT(Addresses(pool.Route(PurposeOf(cv1::NOTIFICATION_KIND_PASSWORD_RESET))),
              ElementsAre("Guests@Contoso.com"));
  EXPECT_THAT(Addresses(pool.Route(cv1::MAIL_PURPOSE_REMINDERS)),
              ElementsAre("noreply@contoso.com"));
  EXPECT_TRUE(pool.IsRouted(cv1::MAIL_PURPOSE_ALARMS));
  EXPECT_FALSE(pool.IsRouted(cv1::MAIL_PURPOSE_REMINDERS));
}

TEST(MailboxPoolTest, SendAsAddressesAndDomains) {
  MailboxPool pool(Pool(), SendLimitValues());
  const PoolMember& guests = *pool.Find("guests@contoso.com");
  EXPECT_TRUE(MailboxPool::CanSendAs(guests, "guests@contoso.com"));          // its own
  EXPECT_TRUE(MailboxPool::CanSendAs(guests, "Welcome@CONTOSO.com"));         // an address
  EXPECT_TRUE(MailboxPool::CanSendAs(guests, "lobby@guests.contoso.com"));    // @domain
  EXPECT_TRUE(MailboxPool::CanSendAs(guests, "LOBBY@Guests.Contoso.Com"));
  EXPECT_FALSE(MailboxPool::CanSendAs(guests, "lobby@sub.guests.contoso.com"));  // not a subdomain
  EXPECT_FALSE(MailboxPool::CanSendAs(guests, "other@contoso.com"));
  EXPECT_FALSE(MailboxPool::CanSendAs(guests, "not an address"));
  // A pool mailbox without send_as sends as itself only.
  const PoolMember& alerts = *pool.Find("alerts@contoso.com");
  EXPECT_TRUE(MailboxPool::CanSendAs(alerts, "alerts@contoso.com"));
  EXPECT_FALSE(MailboxPool::CanSendAs(alerts, "noreply@contoso.com"));
}

TEST(MailboxPoolTest, FromCheckNamesTheFieldTheMailboxesAndTheFix) {
  MailboxPool pool(Pool(), SendLimitValues());
  absl::StatusOr<const PoolMember*> ok =
      pool.CheckFrom(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS, "desk@guests.contoso.com", "from");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->address, "Guests@Contoso.com");
  // Alarms go through alerts@, then the default mailbox (unchecked: it may send as anything).
  ok = pool.CheckFrom(cv1::MAIL_PURPOSE_ALARMS, "alerts@contoso.com", "from");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->address, "alerts@contoso.com");
  // The default mailbox may send as ise@, but alerts@, which carries alarms first, may not:
  // Exchange would refuse the alarm mail (550 5.7.60).
  absl::StatusOr<const PoolMember*> first_refuses =
      pool.CheckFrom(cv1::MAIL_PURPOSE_ALARMS, "ise@contoso.com", "from");
  ASSERT_EQ(first_refuses.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(first_refuses.status().message(),
              HasSubstr("every mailbox carrying alarms may send as (not: alerts@contoso.com;"));
  absl::StatusOr<const PoolMember*> refused =
      pool.CheckFrom(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS, "sponsor@contoso.com",
                     "portal.from_address");
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("portal.from_address: \"sponsor@contoso.com\" is not an address"));
  EXPECT_THAT(refused.status().message(),
              HasSubstr("the mailbox carrying guest credentials may send as (Guests@Contoso.com;"));
  EXPECT_THAT(refused.status().message(), HasSubstr("send_as"));
  EXPECT_EQ(pool.CheckFrom(cv1::MAIL_PURPOSE_ALARMS, "bad address", "from").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MailboxPoolTest, DefaultMailboxWithSendAsIsChecked) {
  v1::SmtpSettings settings = Legacy();
  settings.add_send_as("@contoso.com");
  ASSERT_TRUE(ValidateMailboxPool(settings, "settings").ok());
  MailboxPool pool(settings, SendLimitValues());
  EXPECT_TRUE(pool.CheckFrom(cv1::MAIL_PURPOSE_UNSPECIFIED, "ise@contoso.com", "from").ok());
  EXPECT_FALSE(pool.CheckFrom(cv1::MAIL_PURPOSE_UNSPECIFIED, "ise@fabrikam.com", "from").ok());
}

TEST(MailboxPoolTest, ValidPoolPasses) {
  EXPECT_TRUE(ValidateMailboxPool(Pool(), "settings").ok())
      << ValidateMailboxPool(Pool(), "settings");
}

TEST(MailboxPoolTest, APoolMailboxMayHaveSmtpWithGraphFallback) {
  v1::SmtpSettings settings = Pool();
  settings.mutable_mailboxes(1)->set_transport(v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  settings.mutable_mailboxes(0)->set_transport(v1::MAIL_TRANSPORT_SMTP);
  EXPECT_TRUE(ValidateMailboxPool(settings, "settings").ok());
  EXPECT_TRUE(PoolUsesGraph(settings));  // graph_endpoint is needed for its fallback
  const MailboxPool pool(settings, SendLimitValues());
  const PoolMember* guests = pool.Find("guests@contoso.com");
  ASSERT_NE(guests, nullptr);
  EXPECT_EQ(guests->transport, v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  const v1::SmtpSettings tested = SettingsOfMailbox(settings, *guests);
  EXPECT_EQ(tested.username(), "Guests@Contoso.com");
  EXPECT_EQ(tested.transport(), v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
}

std::string ErrorOf(const v1::SmtpSettings& settings) {
  return std::string(ValidateMailboxPool(settings, "settings").message());
}

TEST(MailboxPoolTest, ValidationNamesEachBadField) {
  v1::SmtpSettings settings = Pool();
  settings.mutable_mailboxes(1)->set_send_as(0, "x");
  EXPECT_THAT(ErrorOf(settings),
              HasSubstr("settings.mailboxes[1].send_as[0]: \"x\" is not an address or @domain"));
  settings = Pool();
  settings.mutable_mailboxes(1)->set_send_as(1, "@-bad-.example");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[1].send_as[1]:"));
  settings = Pool();
  settings.add_send_as("nobody");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.send_as[0]: \"nobody\""));

  settings = Pool();
  settings.mutable_mailboxes(1)->set_address("ALERTS@contoso.com");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[1].address: \"ALERTS@contoso.com\" "
                                           "is already mailboxes[0].address"));
  settings = Pool();
  settings.mutable_mailboxes(0)->set_address("NoReply@contoso.com");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[0].address: \"NoReply@contoso.com\" "
                                           "is already the default mailbox (username)"));
  settings = Pool();
  settings.mutable_mailboxes(0)->set_address("");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[0].address: is required"));
  settings = Pool();
  settings.mutable_mailboxes(0)->set_address("alerts");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[0].address: \"alerts\" is not"));

  settings = Pool();
  settings.mutable_mailboxes(0)->set_credential("second-app");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[0].credential: \"second-app\" "
                                           "names no credential"));
  settings = Pool();
  settings.mutable_mailboxes(0)->set_transport(static_cast<v1::MailTransport>(99));
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[0].transport: must be SMTP, "
                                           "GRAPH or SMTP_WITH_GRAPH_FALLBACK"));
  settings = Pool();
  settings.set_use_authentication(false);
  settings.mutable_mailboxes(0)->set_transport(v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[0].transport: "
                                           "SMTP_WITH_GRAPH_FALLBACK needs use_authentication"));
  settings = Pool();
  settings.set_use_authentication(false);
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[0].transport: GRAPH needs "
                                           "use_authentication"));
}

TEST(MailboxPoolTest, LimitsOutOfRangeAreRefused) {
  v1::SmtpSettings settings = Pool();
  settings.mutable_mailboxes(0)->mutable_limits()->set_messages_per_minute(-1);
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[0].limits.messages_per_minute: "
                                           "must be 0 (the broker's limit) to 10000"));
  settings = Pool();
  settings.mutable_mailboxes(1)->mutable_limits()->set_max_connections(101);
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[1].limits.max_connections"));
  settings = Pool();
  settings.mutable_mailboxes(1)->mutable_limits()->mutable_permit_lease()->set_seconds(2);
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[1].limits.permit_lease"));
  settings = Pool();
  settings.mutable_mailboxes(1)->mutable_limits()->set_recipients_per_day(2000000);
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.mailboxes[1].limits.recipients_per_day"));
}

TEST(MailboxPoolTest, RoutesMustNameKnownMailboxesAndEachPurposeOnce) {
  v1::SmtpSettings settings = Pool();
  settings.mutable_routes(0)->add_mailboxes("ghost@contoso.com");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.routes[0].mailboxes[2]: \"ghost@contoso.com\" "
                                           "is neither the default mailbox"));
  settings = Pool();
  settings.mutable_routes(0)->add_mailboxes("ALERTS@contoso.com");
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.routes[0].mailboxes[2]: "
                                           "\"ALERTS@contoso.com\" is named twice"));
  settings = Pool();
  settings.mutable_routes(1)->set_purpose(cv1::MAIL_PURPOSE_ALARMS);
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.routes[1].purpose: MAIL_PURPOSE_ALARMS is "
                                           "routed already by routes[0]"));
  settings = Pool();
  settings.mutable_routes(1)->set_purpose(cv1::MAIL_PURPOSE_UNSPECIFIED);
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.routes[1].purpose: must be"));
  settings = Pool();
  settings.mutable_routes(1)->clear_mailboxes();
  EXPECT_THAT(ErrorOf(settings), HasSubstr("settings.routes[1].mailboxes: name at least one"));
}

TEST(MailboxPoolTest, SmtpSettingsValidationIncludesThePool) {
  v1::SmtpSettings settings = Pool();
  settings.set_tenant_id("11111111-2222-3333-4444-555555555555");
  settings.set_client_id("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  settings.mutable_client_secret()->set_secret("s3cret");
  settings.mutable_client_secret()->mutable_expire_time()->set_seconds(1900000000);
  v1::SmtpSettings resolved = ResolveDefaults(settings, "");
  // A Graph pool mailbox gets Graph's endpoint although the default mailbox uses SMTP.
  EXPECT_EQ(resolved.graph_endpoint(), kDefaultGraphEndpoint);
  EXPECT_TRUE(ValidateSmtpSettings(resolved, "settings").ok())
      << ValidateSmtpSettings(resolved, "settings");
  resolved.mutable_routes(0)->set_mailboxes(0, "ghost@contoso.com");
  EXPECT_THAT(std::string(ValidateSmtpSettings(resolved, "settings").message()),
              HasSubstr("settings.routes[0].mailboxes[0]"));
}

}  // namespace
}  // namespace mailroom::broker
