// What `mailroomctl status` makes of a ClusterStatus: nothing needs an admin on a healthy
// cluster; each condition that does is named once; the screen shows every node, the broker's
// token, quota and credential, each outbox, the alarms and the findings.
#include "cli/status_format.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/base/diagnosis.h"
#include "common/base/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::cli {
namespace {

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
namespace sv1 = ::mailroom::status::v1;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

sv1::NodeReport Node(const std::string& name, cv1::Role role) {
  sv1::NodeReport node;
  node.set_name(name);
  node.set_address("127.0.0.1:7100");
  node.set_health(sv1::NODE_HEALTH_SERVING);
  sv1::GetNodeStatusResponse* status = node.mutable_status();
  status->set_node(name);
  status->set_role(role);
  status->set_version("0.1.0");
  ToProto(kNow - absl::Hours(2), status->mutable_start_time());
  ToProto(kNow, status->mutable_time());
  sv1::TokenStatus* token = status->mutable_token();
  token->set_held(true);
  token->set_usable(true);
  token->set_authentication(true);
  ToProto(absl::Minutes(12), token->mutable_age());
  ToProto(kNow + absl::Minutes(48), token->mutable_expire_time());
  ToProto(absl::Hours(1), token->mutable_lifetime());
  return node;
}

sv1::NodeReport Sender(const std::string& name, cv1::Role role) {
  sv1::NodeReport node = Node(name, role);
  sv1::DeliveryStatus* delivery = node.mutable_status()->mutable_delivery();
  delivery->mutable_outbox()->set_sent(120);
  delivery->set_backlog_alarm_queued(1000);
  ToProto(absl::Hours(1), delivery->mutable_backlog_alarm_age());
  delivery->mutable_latency()->set_count(120);
  ToProto(absl::Milliseconds(240), delivery->mutable_latency()->mutable_p50());
  ToProto(absl::Milliseconds(1800), delivery->mutable_latency()->mutable_p99());
  return node;
}

sv1::ClusterStatus Healthy() {
  sv1::ClusterStatus status;
  ToProto(kNow, status.mutable_time());
  sv1::NodeReport broker = Node("broker", cv1::ROLE_BROKER);
  sv1::BrokerStatus* b = broker.mutable_status()->mutable_broker();
  b->set_configured(true);
  b->set_mailbox("no-reply@example.test");
  b->set_token_health(sv1::TOKEN_HEALTH_STATE_HEALTHY);
  b->set_token_fetches(3);
  bv1::MailboxQuota* quota = b->add_mailboxes();
  quota->set_mailbox("no-reply@example.test");
  quota->set_messages_last_minute(4);
  quota->mutable_limits()->set_messages_per_minute(30);
  quota->mutable_limits()->set_recipients_per_day(10000);
  quota->mutable_limits()->set_max_connections(3);
  bv1::CredentialStatus* credential = b->mutable_secret()->mutable_credential_status();
  ToProto(kNow + absl::Hours(24 * 90), credential->mutable_expire_time());
  credential->set_days_left(90);
  *status.add_nodes() = broker;
  *status.add_nodes() = Sender("pan", cv1::ROLE_PAN);
  *status.add_nodes() = Sender("psn1", cv1::ROLE_PSN);
  *status.add_nodes() = Sender("mnt", cv1::ROLE_MNT);
  status.set_alarms_listed(true);
  return status;
}

sv1::BrokerStatus* BrokerOf(sv1::ClusterStatus* status) {
  return status->mutable_nodes(0)->mutable_status()->mutable_broker();
}

TEST(StatusFormatTest, AHealthyClusterNeedsNothing) {
  sv1::ClusterStatus status = Healthy();
  EXPECT_THAT(AttentionOf(status), IsEmpty());
  // An INFO alarm is listed but needs nothing.
  mv1::Alarm* info = status.add_active_alarms();
  info->set_severity(mv1::ALARM_SEVERITY_INFO);
  info->set_type(mv1::ALARM_TYPE_GENERIC);
  info->set_text("Backup done");
  EXPECT_THAT(AttentionOf(status), IsEmpty());

  const std::string screen = FormatClusterStatus(status);
  EXPECT_THAT(screen, HasSubstr("mailroom cluster at 2027-01-15 08:00:00 UTC"));
  EXPECT_THAT(screen, HasSubstr("psn1     SERVING     0.1.0    2h        127.0.0.1:7100"));
  EXPECT_THAT(screen, HasSubstr("Broker (broker): mailbox no-reply@example.test, token HEALTHY, "
                                "12m old, expires in 48m (08:48:00 UTC)"));
  EXPECT_THAT(screen, HasSubstr("quota no-reply@example.test: 4/30 messages this minute"));
  EXPECT_THAT(screen, HasSubstr("client secret expires 2027-04-15 (90 days left)"));
  EXPECT_THAT(screen, HasSubstr("psn1          0       0     120      0  -             "
                                "240ms/1.8s (120)"));
  EXPECT_THAT(screen, HasSubstr("INFO     GENERIC"));
  EXPECT_THAT(screen, HasSubstr("Nothing needs an admin."));
}

TEST(StatusFormatTest, ADownNodeIsNamedWithItsErrorAndTheRestIsShown) {
  sv1::ClusterStatus status = Healthy();
  sv1::NodeReport* psn = status.mutable_nodes(2);
  psn->clear_status();
  psn->set_health(sv1::NODE_HEALTH_DOWN);
  psn->set_error("failed to connect to all addresses");
  EXPECT_THAT(AttentionOf(status),
              ElementsAre("psn1 (127.0.0.1:7100) is DOWN: failed to connect to all addresses"));
  const std::string screen = FormatClusterStatus(status);
  EXPECT_THAT(screen, HasSubstr("psn1     DOWN        -        -         127.0.0.1:7100  failed"));
  EXPECT_THAT(screen, HasSubstr("pan      SERVING"));
  EXPECT_THAT(screen, HasSubstr("mnt           0       0     120"));
}

TEST(StatusFormatTest, AStandbyBrokerNeedsNothingButIsShown) {
  sv1::ClusterStatus status = Healthy();
  sv1::NodeReport standby = Node("broker2", cv1::ROLE_BROKER);
  standby.set_health(sv1::NODE_HEALTH_STANDBY);
  standby.mutable_status()->mutable_broker()->set_token_health(
      sv1::TOKEN_HEALTH_STATE_NO_VALID_TOKEN);  // a standby fetches no token
  *status.add_nodes() = standby;
  EXPECT_THAT(AttentionOf(status), IsEmpty());
  EXPECT_THAT(FormatClusterStatus(status), HasSubstr("broker2  STANDBY"));

  status.mutable_nodes(0)->set_health(sv1::NODE_HEALTH_NOT_SERVING);
  EXPECT_THAT(AttentionOf(status), ElementsAre(HasSubstr("broker (127.0.0.1:7100) is NOT_SERVING")));
}

TEST(StatusFormatTest, ABacklogAndItsCauseAreShown) {
  sv1::ClusterStatus status = Healthy();
  sv1::DeliveryStatus* d = status.mutable_nodes(2)->mutable_status()->mutable_delivery();
  d->set_backlog_over_threshold(true);
  d->set_unsent(7);
  d->mutable_outbox()->set_queued(7);
  ToProto(absl::Seconds(75), d->mutable_oldest_unsent_age());
  d->set_oldest_unsent_reason("backoff after connection refused until 2027-01-15T08:00:02Z");
  sv1::DeliveryError* error = d->mutable_last_error();
  ToProto(kNow - absl::Seconds(1), error->mutable_time());
  error->set_outcome("retried");
  *error->mutable_diagnosis() = MakeDiagnosis(cv1::FAILURE_CAUSE_CONNECTION_REFUSED);
  EXPECT_THAT(AttentionOf(status),
              ElementsAre("psn1: 7 notification(s) not delivered, the oldest queued 1m15s ago: "
                          "over the backlog threshold"));
  const std::string screen = FormatClusterStatus(status);
  EXPECT_THAT(screen, HasSubstr("psn1          7       0     120      0  1m15s"));
  EXPECT_THAT(screen, HasSubstr("psn1: BACKLOG over its threshold"));
  EXPECT_THAT(screen, HasSubstr("psn1: the oldest waits: backoff after connection refused"));
  EXPECT_THAT(screen, HasSubstr("psn1: last delivery error 2027-01-15 07:59:59 UTC: Connection "
                                "refused, retried; fix: "));
}

TEST(StatusFormatTest, BrokerTroublesAreEachNamed) {
  sv1::ClusterStatus status = Healthy();
  BrokerOf(&status)->set_token_health(sv1::TOKEN_HEALTH_STATE_REFRESH_FAILING);
  status.mutable_nodes(0)->mutable_status()->mutable_token()->set_last_error(
      "Invalid client secret: AADSTS7000215");
  bv1::MailboxQuota* quota = BrokerOf(&status)->mutable_mailboxes(0);
  ToProto(kNow + absl::Hours(3), quota->mutable_paused_until());
  *quota->mutable_pause_diagnosis() =
      MakeDiagnosis(cv1::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED);
  bv1::CredentialStatus* credential = BrokerOf(&status)->mutable_secret()->mutable_credential_status();
  credential->set_days_left(14);
  ToProto(kNow + absl::Hours(24 * 14), credential->mutable_expire_time());
  const std::vector<std::string> attention = AttentionOf(status);
  ASSERT_THAT(attention, SizeIs(3));
  EXPECT_EQ(attention[0],
            "the broker cannot renew its access token (REFRESH_FAILING): Invalid client secret: "
            "AADSTS7000215");
  EXPECT_THAT(attention[1], HasSubstr("mailbox no-reply@example.test is paused until "
                                      "2027-01-15 11:00:00 UTC: "));
  EXPECT_EQ(attention[2], "the client secret expires 2027-01-29 (14 days left)");
  EXPECT_THAT(FormatClusterStatus(status), HasSubstr("PAUSED until 2027-01-15 11:00:00 UTC"));

  credential->set_days_left(15);
  BrokerOf(&status)->set_token_health(sv1::TOKEN_HEALTH_STATE_HEALTHY);
  BrokerOf(&status)->mutable_mailboxes(0)->clear_paused_until();
  EXPECT_THAT(AttentionOf(status), IsEmpty());
  BrokerOf(&status)->set_configured(false);
  EXPECT_THAT(AttentionOf(status), ElementsAre(HasSubstr("no SMTP settings saved")));
}

TEST(StatusFormatTest, WarningAndCriticalAlarmsAndUnlistableAlarmsNeedAnAdmin) {
  sv1::ClusterStatus status = Healthy();
  mv1::Alarm* alarm = status.add_active_alarms();
  alarm->set_severity(mv1::ALARM_SEVERITY_WARNING);
  alarm->set_type(mv1::ALARM_TYPE_QUEUE_BACKLOG);
  alarm->set_source_node("psn1");
  alarm->set_text(std::string(500, 'x'));
  std::vector<std::string> attention = AttentionOf(status);
  ASSERT_THAT(attention, SizeIs(1));
  EXPECT_THAT(attention[0], HasSubstr("WARNING alarm QUEUE_BACKLOG on psn1: xxx"));
  EXPECT_LT(attention[0].size(), 300u);  // shortened on the screen
  EXPECT_THAT(FormatClusterStatus(status), HasSubstr("WARNING  QUEUE_BACKLOG        psn1"));

  status.clear_active_alarms();
  status.set_alarms_listed(false);
  status.set_alarms_error("failed to connect to all addresses");
  EXPECT_THAT(AttentionOf(status),
              ElementsAre("cannot list the MnT's alarms: failed to connect to all addresses"));
}

TEST(StatusFormatTest, ASendingNodeWithoutAUsableTokenNeedsAnAdmin) {
  sv1::ClusterStatus status = Healthy();
  sv1::TokenStatus* token = status.mutable_nodes(1)->mutable_status()->mutable_token();
  token->set_usable(false);
  token->set_last_error("no valid access token: the broker is unreachable");
  EXPECT_THAT(AttentionOf(status),
              ElementsAre("pan has no usable access token: no valid access token: the broker "
                          "is unreachable"));
  EXPECT_THAT(FormatClusterStatus(status), HasSubstr(", NOT usable; last attempt failed: "));
  // A node that has not asked yet, or uses no authentication, needs nothing.
  token->Clear();
  EXPECT_THAT(AttentionOf(status), IsEmpty());
  EXPECT_THAT(FormatClusterStatus(status), HasSubstr("not used (the settings use no "));
}

// Two brokers elected through etcd: `broker` leads (since 3 minutes, term 42), broker2
// stands by; both reach all three etcd members.
sv1::EtcdHealth ThreeMembers() {
  sv1::EtcdHealth etcd;
  const char* ids[] = {"a1", "b2", "c3"};
  for (int i = 0; i < 3; ++i) {
    sv1::EtcdMemberHealth* member = etcd.add_members();
    member->set_endpoint(absl::StrCat("http://10.0.0.", i + 1, ":2379"));
    member->set_reachable(true);
    member->set_member_id(ids[i]);
    member->set_leader_id("b2");
    member->set_raft_term(4);
    member->set_version("3.4.23");
  }
  etcd.set_reachable(3);
  etcd.set_leader_id("b2");
  etcd.set_leader_endpoint("http://10.0.0.2:2379");
  etcd.set_healthy(true);
  return etcd;
}

sv1::BrokerElection Election(bool leading, const std::string& self) {
  sv1::BrokerElection election;
  election.set_advertised_address(self);
  election.set_leading(leading);
  election.set_leader_address("pan1:7100");
  election.set_term(42);
  election.set_election_key("/mailroom/broker/leader");
  ToProto(absl::Seconds(5), election.mutable_lease_ttl());
  if (leading) {
    ToProto(kNow - absl::Minutes(3), election.mutable_leader_since());
    ToProto(absl::Seconds(4), election.mutable_remaining_term());
  }
  *election.mutable_etcd() = ThreeMembers();
  return election;
}

sv1::ClusterStatus TwoElectedBrokers() {
  sv1::ClusterStatus status = Healthy();
  *BrokerOf(&status)->mutable_election() = Election(true, "pan1:7100");
  sv1::NodeReport standby = Node("broker2", cv1::ROLE_BROKER);
  standby.set_health(sv1::NODE_HEALTH_STANDBY);
  *standby.mutable_status()->mutable_broker()->mutable_election() =
      Election(false, "pan2:7100");
  *status.mutable_nodes()->Add() = standby;
  return status;
}

TEST(StatusFormatTest, ElectedBrokersShowWhoLeadsSinceWhenAndEtcdsHealth) {
  const sv1::ClusterStatus status = TwoElectedBrokers();
  EXPECT_THAT(AttentionOf(status), IsEmpty());
  const std::string screen = FormatClusterStatus(status);
  EXPECT_THAT(screen, HasSubstr("Brokers elected through etcd (key /mailroom/broker/leader, "
                                "lease TTL 5s):\n"));
  EXPECT_THAT(screen, HasSubstr("  broker   LEADER  pan1:7100  leads since 2027-01-15 07:57:00 UTC"
                                " (3m), term 42\n"));
  EXPECT_THAT(screen, HasSubstr("  broker2  STANDBY pan2:7100  stands by; the leader is "
                                "pan1:7100 (term 42)\n"));
  EXPECT_THAT(screen, HasSubstr("etcd as broker sees it: healthy, 3/3 members answer, leader "
                                "http://10.0.0.2:2379 (member b2)\n"));
  EXPECT_THAT(screen, HasSubstr("  http://10.0.0.1:2379  member a1, follower, raft term 4, "
                                "etcd 3.4.23\n"));
  EXPECT_THAT(screen, HasSubstr("  http://10.0.0.2:2379  member b2, leader, raft term 4"));
  // The standby's view is summed up in a line when it sees what the leader sees.
  EXPECT_THAT(screen, HasSubstr("etcd as broker2 sees it: healthy, 3/3 members answer"));
  size_t member_lines = 0;
  for (size_t at = screen.find("  http://10.0.0.1:2379"); at != std::string::npos;
       at = screen.find("  http://10.0.0.1:2379", at + 1)) {
    ++member_lines;
  }
  EXPECT_EQ(member_lines, 1u);
  // Single-broker mode shows no election.
  EXPECT_THAT(FormatClusterStatus(Healthy()), Not(HasSubstr("etcd")));
}

TEST(StatusFormatTest, AnEtcdMemberThatDoesNotAnswerNeedsAnAdmin) {
  sv1::ClusterStatus status = TwoElectedBrokers();
  sv1::EtcdHealth* etcd = BrokerOf(&status)->mutable_election()->mutable_etcd();
  etcd->mutable_members(2)->set_reachable(false);
  etcd->mutable_members(2)->set_error("Couldn't connect to server");
  etcd->set_reachable(2);
  EXPECT_THAT(AttentionOf(status),
              ElementsAre("etcd member http://10.0.0.3:2379 does not answer broker: Couldn't "
                          "connect to server"));
  const std::string screen = FormatClusterStatus(status);
  EXPECT_THAT(screen, HasSubstr("etcd as broker sees it: healthy, 2/3 members answer"));
  EXPECT_THAT(screen, HasSubstr("  http://10.0.0.3:2379  DOES NOT ANSWER: Couldn't connect"));
}

TEST(StatusFormatTest, EtcdWithoutQuorumAndNoBrokerLeadingNeedAnAdmin) {
  sv1::ClusterStatus status = TwoElectedBrokers();
  sv1::EtcdHealth lost;
  for (int i = 0; i < 3; ++i) {
    sv1::EtcdMemberHealth* member = lost.add_members();
    member->set_endpoint(absl::StrCat("http://10.0.0.", i + 1, ":2379"));
    member->set_error("refused");
  }
  lost.mutable_members(2)->set_reachable(true);
  lost.mutable_members(2)->set_member_id("c3");
  lost.mutable_members(2)->set_error("etcdserver: no leader");
  lost.set_reachable(1);
  for (int i : {0, 4}) {
    sv1::BrokerElection* election =
        status.mutable_nodes(i)->mutable_status()->mutable_broker()->mutable_election();
    election->set_leading(false);
    election->clear_leader_address();
    *election->mutable_etcd() = lost;
  }
  status.mutable_nodes(0)->set_health(sv1::NODE_HEALTH_NOT_SERVING);
  status.mutable_nodes(4)->set_health(sv1::NODE_HEALTH_NOT_SERVING);
  const std::vector<std::string> attention = AttentionOf(status);
  EXPECT_THAT(attention, Contains("etcd as broker sees it has no leader (1/3 members answer): "
                                  "no broker can lead or renew its term"));
  EXPECT_THAT(attention, Contains("etcd member http://10.0.0.3:2379 reports to broker2: "
                                  "etcdserver: no leader"));
  EXPECT_THAT(attention, Contains("no broker leads: role nodes wait for an election, then send "
                                  "within their offline allowance"));
  const std::string screen = FormatClusterStatus(status);
  EXPECT_THAT(screen, HasSubstr("  broker   STANDBY pan1:7100  stands by; no broker leads\n"));
  EXPECT_THAT(screen, HasSubstr("etcd as broker sees it: NOT HEALTHY, 1/3 members answer, NO "
                                "etcd leader\n"));
  EXPECT_THAT(screen, HasSubstr("  http://10.0.0.3:2379  member c3, knows no leader, raft term 0"
                                ", etcd ; etcdserver: no leader\n"));
}

TEST(StatusFormatTest, AMailboxQuotaLine) {
  bv1::MailboxQuota quota;
  quota.set_mailbox("a@b.test");
  quota.set_recipients_last_day(12);
  quota.mutable_limits()->set_recipients_per_day(10000);
  EXPECT_EQ(FormatMailboxQuota(quota),
            "a@b.test: 0/0 messages this minute, 12/10000 recipients today, 0/0 connections\n");
}

TEST(StatusFormatTest, MailboxQuotaShowsTheEffectiveTransportSinceWhenAndWhy) {
  bv1::MailboxQuota quota;
  quota.set_mailbox("a@b.test");
  quota.mutable_transport()->set_transport(bv1::MAIL_TRANSPORT_GRAPH);
  quota.mutable_transport()->mutable_since()->set_seconds(1800000000);
  quota.mutable_transport()->set_reason("psn1 got \"535 5.7.139 ...\" from the SMTP server");
  EXPECT_THAT(FormatMailboxQuota(quota),
              ::testing::HasSubstr("\n  transport GRAPH since 2027-01-15 08:00:00 UTC: psn1 got "
                                   "\"535 5.7.139 ...\" from the SMTP server\n"));
}

TEST(StatusFormatTest, MailboxPoolShowsEachMailboxAndWhichMailGoesWhere) {
  bv1::SmtpSettings settings;
  settings.set_username("noreply@contoso.com");
  bv1::PoolMailbox* alerts = settings.add_mailboxes();
  alerts->set_address("alerts@contoso.com");
  alerts->set_transport(bv1::MAIL_TRANSPORT_GRAPH);
  alerts->mutable_limits()->set_messages_per_minute(10);
  alerts->add_send_as("@alerts.contoso.com");
  bv1::MailRoute* route = settings.add_routes();
  route->set_purpose(::mailroom::common::v1::MAIL_PURPOSE_ALARMS);
  route->add_mailboxes("alerts@contoso.com");
  route->add_mailboxes("noreply@contoso.com");
  EXPECT_EQ(FormatMailboxPool(settings),
            "Mailboxes:          2 (tokens of the one credential for each)\n"
            "  noreply@contoso.com (default): SMTP, the broker's limits; sends as "
            "noreply@contoso.com (others not checked)\n"
            "  alerts@contoso.com: GRAPH, 10 messages/minute, the broker's recipients/day, the "
            "broker's connection(s); sends as alerts@contoso.com, @alerts.contoso.com\n"
            "Routes:\n"
            "  ALARMS -> alerts@contoso.com, noreply@contoso.com\n"
            "  GUEST_CREDENTIALS, SPONSOR_MAIL, REMINDERS, TEST_MAIL -> noreply@contoso.com "
            "(default: no route)\n");
}

}  // namespace
}  // namespace mailroom::cli
