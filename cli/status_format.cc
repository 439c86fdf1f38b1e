#include "cli/status_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/proto_words.h"
#include "common/base/proto_time.h"

namespace mailroom::cli {
namespace {

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
namespace sv1 = ::mailroom::status::v1;

// Alarm texts and errors are cut to this many bytes on the screen (--json has them whole).
constexpr size_t kLineBytes = 200;

std::string Shortened(const std::string& text, size_t bytes = kLineBytes) {
  if (text.size() <= bytes) return text;
  size_t cut = bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return absl::StrCat(text.substr(0, cut), "...");
}

// "2h5m", "13s": a span to the second.
std::string Span(absl::Duration span) {
  const absl::Duration whole = absl::Trunc(span, absl::Seconds(1));
  return whole == absl::ZeroDuration() ? "0s" : absl::FormatDuration(whole);
}
std::string Span(const google::protobuf::Duration& span) { return Span(FromProto(span)); }

std::string Utc(const google::protobuf::Timestamp& time) {
  return FormatTimestamp(time, "%Y-%m-%d %H:%M:%S UTC");
}

std::string HealthName(sv1::NodeHealth health) {
  return WithoutPrefix(sv1::NodeHealth_Name(health), "NODE_HEALTH_");
}

bool Usable(const sv1::TokenStatus& token) {
  return !token.authentication() || (token.held() && token.usable());
}

// The token as a node holds it, ages as of the node's clock `now`.
std::string TokenText(const sv1::TokenStatus& token, const google::protobuf::Timestamp& now) {
  if (!token.authentication() && token.last_error().empty()) {
    return "not used (the settings use no authentication)";
  }
  if (!token.held() || !token.has_expire_time()) {
    return token.last_error().empty() ? "none yet"
                                      : absl::StrCat("NONE: ", Shortened(token.last_error()));
  }
  std::string text =
      absl::StrCat(Span(token.age()), " old, expires in ",
                   Span(FromProto(token.expire_time()) - FromProto(now)), " (",
                   FormatTimestamp(token.expire_time(), "%H:%M:%S UTC"), ")");
  if (!token.usable()) absl::StrAppend(&text, ", NOT usable");
  if (!token.last_error().empty()) {
    absl::StrAppend(&text, "; last attempt failed: ", Shortened(token.last_error()));
  }
  return text;
}

std::string TokenHealthName(sv1::TokenHealthState state) {
  return WithoutPrefix(sv1::TokenHealthState_Name(state), "TOKEN_HEALTH_STATE_");
}

std::string CredentialText(const bv1::CredentialStatus& credential) {
  const char* what =
      credential.type() == bv1::CREDENTIAL_TYPE_CERTIFICATE ? "certificate" : "client secret";
  if (!credential.has_expire_time()) return absl::StrCat(what, ": no expiry date set");
  return absl::StrCat(what, " expires ", FormatTimestamp(credential.expire_time(), "%Y-%m-%d"),
                      credential.expired() ? " (EXPIRED)"
                                           : absl::StrCat(" (", credential.days_left(),
                                                          " days left)"));
}

void AppendNodes(const sv1::ClusterStatus& status, std::string* out) {
  absl::StrAppendFormat(out, "%-8s %-11s %-8s %-9s %s\n", "NODE", "HEALTH", "VERSION", "UP",
                        "ADDRESS");
  for (const sv1::NodeReport& node : status.nodes()) {
    const bool has = node.has_status();
    absl::StrAppendFormat(
        out, "%-8s %-11s %-8s %-9s %s%s\n", node.name(), HealthName(node.health()),
        has ? node.status().version() : "-",
        has ? Span(FromProto(node.status().time()) - FromProto(node.status().start_time()))
            : "-",
        node.address(), node.error().empty() ? "" : absl::StrCat("  ", Shortened(node.error())));
  }
}

bool Elected(const sv1::NodeReport& node) {
  return node.status().broker().has_election();
}

// Which broker leads, and etcd as each broker sees it: the leader's view (or, with no
// leader, the first broker's) member by member, the others' only where they differ from
// health (a member that broker cannot reach).
void AppendElection(const sv1::ClusterStatus& status, std::string* out) {
  const sv1::NodeReport* detailed = nullptr;
  for (const sv1::NodeReport& node : status.nodes()) {
    if (!Elected(node)) continue;
    if (detailed == nullptr || node.status().broker().election().leading()) detailed = &node;
  }
  if (detailed == nullptr) return;
  const sv1::BrokerElection& view = detailed->status().broker().election();
  absl::StrAppend(out, "\nBrokers elected through etcd (key ", view.election_key(),
                  ", lease TTL ", Span(view.lease_ttl()), "):\n");
  for (const sv1::NodeReport& node : status.nodes()) {
    if (!Elected(node)) continue;
    absl::StrAppendFormat(out, "  %-8s %-7s %s  %s\n", node.name(),
                          node.status().broker().election().leading() ? "LEADER" : "STANDBY",
                          node.status().broker().election().advertised_address(),
                          ElectionText(node.status().broker().election(), node.status().time()));
  }
  absl::StrAppend(out, FormatEtcdHealth(detailed->name(), view.etcd(), true));
  for (const sv1::NodeReport& node : status.nodes()) {
    if (!Elected(node) || &node == detailed) continue;
    absl::StrAppend(out, FormatEtcdHealth(node.name(), node.status().broker().election().etcd(),
                                          false));
  }
}

void AppendBroker(const sv1::NodeReport& node, std::string* out) {
  const sv1::BrokerStatus& broker = node.status().broker();
  if (!broker.configured()) {
    absl::StrAppend(out, "\nBroker (", node.name(), "): no SMTP settings saved\n");
    return;
  }
  absl::StrAppend(out, "\nBroker (", node.name(), "): mailbox ", broker.mailbox(), ", token ",
                  TokenHealthName(broker.token_health()), ", ",
                  TokenText(node.status().token(), node.status().time()), "; ",
                  broker.token_fetches(), " token request(s), ", broker.token_fetch_failures(),
                  " failed\n");
  for (const bv1::MailboxQuota& quota : broker.mailboxes()) {
    absl::StrAppend(out, "  quota ", FormatMailboxQuota(quota));
  }
  if (broker.secret().has_credential_status()) {
    absl::StrAppend(out, "  ", CredentialText(broker.secret().credential_status()), "\n");
  }
}

void AppendDelivery(const sv1::ClusterStatus& status, std::string* out) {
  bool header = false;
  for (const sv1::NodeReport& node : status.nodes()) {
    if (!node.status().has_delivery()) continue;
    const sv1::DeliveryStatus& d = node.status().delivery();
    if (!header) {
      absl::StrAppendFormat(out, "\n%-8s %6s %7s %7s %6s  %-13s %-19s %s\n", "OUTBOX", "QUEUED",
                            "SENDING", "SENT", "FAILED", "OLDEST UNSENT", "LATENCY p50/p99",
                            "TOKEN");
      header = true;
    }
    const std::string latency =
        d.latency().count() == 0
            ? "-"
            : absl::StrCat(absl::FormatDuration(absl::Trunc(FromProto(d.latency().p50()),
                                                            absl::Milliseconds(1))),
                           "/",
                           absl::FormatDuration(absl::Trunc(FromProto(d.latency().p99()),
                                                            absl::Milliseconds(1))),
                           " (", d.latency().count(), ")");
    absl::StrAppendFormat(out, "%-8s %6d %7d %7d %6d  %-13s %-19s %s\n", node.name(),
                          d.outbox().queued(), d.outbox().sending(), d.outbox().sent(),
                          d.outbox().failed(),
                          d.has_oldest_unsent_age() ? Span(d.oldest_unsent_age()) : "-", latency,
                          TokenText(node.status().token(), node.status().time()));
    if (d.backlog_over_threshold()) {
      absl::StrAppend(out, "  ", node.name(), ": BACKLOG over its threshold (alarm above ",
                      d.backlog_alarm_queued(), " unsent or ", Span(d.backlog_alarm_age()),
                      " old)\n");
    }
    if (d.unsent() > 0 && !d.oldest_unsent_reason().empty()) {
      absl::StrAppend(out, "  ", node.name(), ": the oldest waits: ",
                      Shortened(d.oldest_unsent_reason()), "\n");
    }
    if (d.has_last_error()) {
      const sv1::DeliveryError& e = d.last_error();
      absl::StrAppend(out, "  ", node.name(), ": last delivery error ", Utc(e.time()), ": ",
                      e.diagnosis().title(), e.reply_code() == 0 ? "" : " (",
                      e.reply_code() == 0 ? "" : absl::StrCat(e.reply_code()),
                      e.reply_code() == 0 ? "" : ")", ", ", e.outcome(), "; fix: ",
                      Shortened(e.diagnosis().fix()), "\n");
    }
  }
}

void AppendAlarms(const sv1::ClusterStatus& status, std::string* out) {
  if (!status.alarms_error().empty()) {
    absl::StrAppend(out, "\nActive alarms: cannot list them: ", status.alarms_error(), "\n");
    return;
  }
  if (!status.alarms_listed()) return;  // no MnT configured
  if (status.active_alarms().empty()) {
    absl::StrAppend(out, "\nActive alarms: none\n");
    return;
  }
  absl::StrAppend(out, "\nActive alarms:\n");
  for (const mv1::Alarm& alarm : status.active_alarms()) {
    absl::StrAppendFormat(out, "  %-8s %-20s %-8s %s\n",
                          WithoutPrefix(mv1::AlarmSeverity_Name(alarm.severity()),
                                        "ALARM_SEVERITY_"),
                          WithoutPrefix(mv1::AlarmType_Name(alarm.type()), "ALARM_TYPE_"),
                          alarm.source_node(), Shortened(alarm.text()));
  }
}

}  // namespace

std::string FormatMailboxQuota(const bv1::MailboxQuota& q) {
  std::string out = absl::StrCat(
      q.mailbox(), ": ", q.messages_last_minute(), "/", q.limits().messages_per_minute(),
      " messages this minute, ", q.recipients_last_day(), "/", q.limits().recipients_per_day(),
      " recipients today, ", q.open_connections(), "/", q.limits().max_connections(),
      " connections\n");
  if (q.has_transport()) {
    const bv1::EffectiveTransport& t = q.transport();
    absl::StrAppend(&out, "  transport ", WithoutPrefix(bv1::MailTransport_Name(t.transport()),
                                                        "MAIL_TRANSPORT_"),
                    t.has_since() ? absl::StrCat(" since ", Utc(t.since())) : "",
                    t.reason().empty() ? "" : absl::StrCat(": ", t.reason()), "\n");
  }
  if (q.has_paused_until()) {
    absl::StrAppend(&out, "  PAUSED until ", Utc(q.paused_until()),
                    " (quota exceeded; mailroomctl quota resume ", q.mailbox(),
                    " once the cause is fixed)\n");
  }
  return out;
}

std::string FormatMailboxPool(const bv1::SmtpSettings& settings) {
  auto transport = [](bv1::MailTransport t) {
    return t == bv1::MAIL_TRANSPORT_UNSPECIFIED
               ? std::string("SMTP")
               : WithoutPrefix(bv1::MailTransport_Name(t), "MAIL_TRANSPORT_");
  };
  // ", a@b, @domain" for send_as entries beyond the mailbox's own address.
  auto also = [](const google::protobuf::RepeatedPtrField<std::string>& entries) {
    return entries.empty() ? std::string() : absl::StrCat(", ", absl::StrJoin(entries, ", "));
  };
  std::string out = absl::StrCat(
      "Mailboxes:          ", 1 + settings.mailboxes_size(),
      " (tokens of the one credential for each)\n  ", settings.username(), " (default): ",
      transport(settings.transport()), ", the broker's limits; sends as ", settings.username(),
      settings.send_as().empty() ? " (others not checked)" : also(settings.send_as()),
      "\n");
  for (const bv1::PoolMailbox& mailbox : settings.mailboxes()) {
    const bv1::SendLimits& l = mailbox.limits();
    auto limit = [](int64_t value, absl::string_view unit) {
      return value > 0 ? absl::StrCat(value, " ", unit) : absl::StrCat("the broker's ", unit);
    };
    absl::StrAppend(&out, "  ", mailbox.address(), ": ", transport(mailbox.transport()), ", ",
                    limit(l.messages_per_minute(), "messages/minute"), ", ",
                    limit(l.recipients_per_day(), "recipients/day"), ", ",
                    limit(l.max_connections(), "connection(s)"), "; sends as ", mailbox.address(),
                    also(mailbox.send_as()), "\n");
  }
  absl::StrAppend(&out, "Routes:\n");
  std::vector<std::string> unrouted;
  for (int p = cv1::MailPurpose_MIN + 1; p <= cv1::MailPurpose_MAX; ++p) {
    if (!cv1::MailPurpose_IsValid(p)) continue;
    const std::string name = WithoutPrefix(cv1::MailPurpose_Name(p), "MAIL_PURPOSE_");
    const bv1::MailRoute* found = nullptr;
    for (const bv1::MailRoute& route : settings.routes()) {
      if (route.purpose() == p) found = &route;
    }
    if (found == nullptr) {
      unrouted.push_back(name);
    } else {
      absl::StrAppend(&out, "  ", name, " -> ", absl::StrJoin(found->mailboxes(), ", "), "\n");
    }
  }
  if (!unrouted.empty()) {
    absl::StrAppend(&out, "  ", absl::StrJoin(unrouted, ", "), " -> ", settings.username(),
                    " (default: no route)\n");
  }
  return out;
}

std::string ElectionText(const sv1::BrokerElection& election,
                         const google::protobuf::Timestamp& node_time) {
  if (election.leading()) {
    return absl::StrCat("leads since ", Utc(election.leader_since()), " (",
                        Span(FromProto(node_time) - FromProto(election.leader_since())),
                        "), term ", election.term());
  }
  if (election.leader_address().empty()) return "stands by; no broker leads";
  return absl::StrCat("stands by; the leader is ", election.leader_address(), " (term ",
                      election.term(), ")");
}

std::string FormatEtcdHealth(const std::string& broker, const sv1::EtcdHealth& etcd,
                             bool every_member) {
  std::string out = absl::StrCat(
      "etcd as ", broker, " sees it: ", etcd.healthy() ? "healthy" : "NOT HEALTHY", ", ",
      etcd.reachable(), "/", etcd.members_size(), " members answer, ",
      etcd.leader_id().empty()
          ? std::string("NO etcd leader")
          : absl::StrCat("leader ",
                         etcd.leader_endpoint().empty() ? "(not reachable)"
                                                        : etcd.leader_endpoint(),
                         " (member ", etcd.leader_id(), ")"),
      "\n");
  for (const sv1::EtcdMemberHealth& member : etcd.members()) {
    if (!every_member && member.reachable() && member.error().empty()) continue;
    if (!member.reachable()) {
      absl::StrAppend(&out, "  ", member.endpoint(), "  DOES NOT ANSWER: ",
                      Shortened(member.error()), "\n");
      continue;
    }
    absl::StrAppend(
        &out, "  ", member.endpoint(), "  member ", member.member_id(), ", ",
        member.leader_id().empty()           ? "knows no leader"
        : member.leader_id() == member.member_id() ? "leader"
                                             : "follower",
        ", raft term ", member.raft_term(), ", etcd ", member.version(),
        member.error().empty() ? "" : absl::StrCat("; ", Shortened(member.error())), "\n");
  }
  return out;
}

std::vector<std::string> EtcdAttentionOf(const std::string& broker, const sv1::EtcdHealth& etcd) {
  std::vector<std::string> found;
  if (!etcd.healthy()) {
    found.push_back(absl::StrCat(
        "etcd as ", broker, " sees it has ",
        etcd.leader_id().empty() ? "no leader" : "no quorum", " (", etcd.reachable(), "/",
        etcd.members_size(), " members answer): no broker can lead or renew its term"));
  }
  for (const sv1::EtcdMemberHealth& member : etcd.members()) {
    if (member.reachable() && member.error().empty()) continue;
    found.push_back(absl::StrCat("etcd member ", member.endpoint(),
                                 member.reachable() ? " reports to " : " does not answer ",
                                 broker, ": ", Shortened(member.error())));
  }
  return found;
}

namespace {

// The election's findings: etcd as each broker sees it, and no broker leading.
void AppendElectionAttention(const sv1::ClusterStatus& status, std::vector<std::string>* found) {
  bool elected = false;
  bool led = false;
  for (const sv1::NodeReport& node : status.nodes()) {
    if (!Elected(node)) continue;
    elected = true;
    led = led || node.status().broker().election().leading();
    for (std::string& line : EtcdAttentionOf(node.name(), node.status().broker().election().etcd())) {
      found->push_back(std::move(line));
    }
  }
  if (elected && !led) {
    found->push_back(
        "no broker leads: role nodes wait for an election, then send within their offline "
        "allowance");
  }
}

}  // namespace

std::vector<std::string> AttentionOf(const sv1::ClusterStatus& status) {
  std::vector<std::string> found;
  for (const sv1::NodeReport& node : status.nodes()) {
    if (node.health() == sv1::NODE_HEALTH_STANDBY) continue;  // another broker leads
    if (node.health() != sv1::NODE_HEALTH_SERVING) {
      found.push_back(absl::StrCat(node.name(), " (", node.address(), ") is ",
                                   HealthName(node.health()),
                                   node.error().empty() ? "" : ": ", Shortened(node.error())));
      continue;
    }
    if (!node.has_status()) {
      found.push_back(absl::StrCat(node.name(), " gives no status: ", Shortened(node.error())));
      continue;
    }
    const sv1::GetNodeStatusResponse& s = node.status();
    if (s.has_delivery()) {
      const sv1::DeliveryStatus& d = s.delivery();
      if (d.backlog_over_threshold()) {
        found.push_back(absl::StrCat(node.name(), ": ", d.unsent(),
                                     " notification(s) not delivered, the oldest queued ",
                                     Span(d.oldest_unsent_age()),
                                     " ago: over the backlog threshold"));
      }
      if (!Usable(s.token()) && !s.token().last_error().empty()) {
        found.push_back(absl::StrCat(node.name(), " has no usable access token: ",
                                     Shortened(s.token().last_error())));
      }
    }
    if (s.has_broker()) {
      const sv1::BrokerStatus& b = s.broker();
      if (!b.configured()) {
        found.push_back(absl::StrCat(node.name(),
                                     ": no SMTP settings saved, so no mail can be sent "
                                     "(mailroomctl settings set)"));
      }
      if (b.token_health() == sv1::TOKEN_HEALTH_STATE_REFRESH_FAILING ||
          b.token_health() == sv1::TOKEN_HEALTH_STATE_NO_VALID_TOKEN ||
          b.token_health() == sv1::TOKEN_HEALTH_STATE_SHORT_LIVED) {
        found.push_back(absl::StrCat(
            "the broker cannot renew its access token (", TokenHealthName(b.token_health()), ")",
            s.token().last_error().empty() ? "" : ": ", Shortened(s.token().last_error())));
      }
      for (const bv1::MailboxQuota& quota : b.mailboxes()) {
        if (!quota.has_paused_until()) continue;
        found.push_back(absl::StrCat("mailbox ", quota.mailbox(), " is paused until ",
                                     Utc(quota.paused_until()),
                                     quota.pause_diagnosis().title().empty() ? "" : ": ",
                                     quota.pause_diagnosis().title()));
      }
      const bv1::CredentialStatus& credential = b.secret().credential_status();
      if (credential.has_expire_time() &&
          (credential.expired() || credential.days_left() <= kSecretAttentionDays)) {
        found.push_back(absl::StrCat("the ", CredentialText(credential)));
      }
    }
  }
  AppendElectionAttention(status, &found);
  for (const mv1::Alarm& alarm : status.active_alarms()) {
    if (alarm.severity() != mv1::ALARM_SEVERITY_CRITICAL &&
        alarm.severity() != mv1::ALARM_SEVERITY_WARNING) {
      continue;
    }
    found.push_back(absl::StrCat(
        WithoutPrefix(mv1::AlarmSeverity_Name(alarm.severity()), "ALARM_SEVERITY_"), " alarm ",
        WithoutPrefix(mv1::AlarmType_Name(alarm.type()), "ALARM_TYPE_"), " on ",
        alarm.source_node(), ": ", Shortened(alarm.text())));
  }
  if (!status.alarms_error().empty()) {
    found.push_back(absl::StrCat("cannot list the MnT's alarms: ", status.alarms_error()));
  }
  return found;
}

std::string FormatClusterStatus(const sv1::ClusterStatus& status) {
  std::string out = absl::StrCat("mailroom cluster at ", Utc(status.time()), "\n\n");
  AppendNodes(status, &out);
  AppendElection(status, &out);
  for (const sv1::NodeReport& node : status.nodes()) {
    if (node.status().has_broker()) AppendBroker(node, &out);
  }
  AppendDelivery(status, &out);
  AppendAlarms(status, &out);
  if (status.attention().empty()) {
    absl::StrAppend(&out, "\nNothing needs an admin.\n");
  } else {
    absl::StrAppend(&out, "\nNeeds an admin:\n");
    for (const std::string& line : status.attention()) absl::StrAppend(&out, "  - ", line, "\n");
  }
  return out;
}

}  // namespace mailroom::cli
