#include "pan/broker/send_quota.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"
#include "common/base/logging.h"

namespace mailroom::broker {
namespace {

namespace v1 = ::mailroom::broker::v1;

constexpr absl::Duration kMinute = absl::Minutes(1);
constexpr absl::Duration kDay = absl::Hours(24);
constexpr size_t kMaxMessagesPerRequest = 30;
constexpr size_t kMaxConnectionIdLength = 64;

std::string ConnectionKey(const std::string& node, const std::string& connection_id) {
  return absl::StrCat(node, "/", connection_id);
}

}  // namespace

SendLimitValues ResolveSendLimits(const v1::SendLimits& limits) {
  SendLimitValues values;
  if (limits.messages_per_minute() > 0) values.messages_per_minute = limits.messages_per_minute();
  if (limits.recipients_per_day() > 0) values.recipients_per_day = limits.recipients_per_day();
  if (limits.max_connections() > 0) values.max_connections = limits.max_connections();
  if (limits.max_recipients_per_message() > 0) {
    values.max_recipients_per_message = limits.max_recipients_per_message();
  }
  values.permit_lease = FromProtoOr(limits.permit_lease(), values.permit_lease);
  values.connection_idle_lease =
      FromProtoOr(limits.connection_idle_lease(), values.connection_idle_lease);
  return values;
}

SendQuota::SendQuota(const Clock* clock, SendLimitValues limits)
    : clock_(clock), limits_(limits) {}

void SendQuota::SetLimits(SendLimitValues limits) {
  absl::MutexLock lock(&mu_);
  limits_ = limits;
}

int64_t SendQuota::DayRecipients(const Mailbox& mailbox) {
  int64_t total = 0;
  for (const Grant& grant : mailbox.day) total += grant.recipients;
  return total;
}

void SendQuota::ExpireLocked(Mailbox& mailbox, absl::Time now) {
  while (!mailbox.minute.empty() && mailbox.minute.front().time + kMinute <= now) {
    mailbox.minute.pop_front();
  }
  while (!mailbox.day.empty() && mailbox.day.front().time + kDay <= now) {
    mailbox.day.pop_front();
  }
  // Permits whose lease ran out end; their unreported messages stay counted as sent.
  for (auto it = permits_.begin(); it != permits_.end();) {
    if (it->second.lease_end <= now) {
      MR_LOG(kDebug, kLogBroker) << "permit " << it->first << " of " << it->second.node
                                 << " expired with "
                                 << it->second.grants.size() - it->second.reported
                                 << " message(s) unreported; counted as sent";
      it = permits_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = mailbox.connections.begin(); it != mailbox.connections.end();) {
    it = it->second.lease_end <= now ? mailbox.connections.erase(it) : std::next(it);
  }
}

void SendQuota::RefundLocked(const Permit& permit, size_t from) {
  auto found = mailboxes_.find(permit.mailbox);
  if (found == mailboxes_.end()) return;
  Mailbox& mailbox = found->second;
  for (size_t i = from; i < permit.grants.size(); ++i) {
    const int64_t id = permit.grants[i].id;
    auto same = [id](const Grant& g) { return g.id == id; };
    mailbox.minute.erase(std::remove_if(mailbox.minute.begin(), mailbox.minute.end(), same),
                         mailbox.minute.end());
    mailbox.day.erase(std::remove_if(mailbox.day.begin(), mailbox.day.end(), same),
                      mailbox.day.end());
  }
}

absl::StatusOr<v1::AcquireSendPermitResponse> SendQuota::Acquire(
    const std::string& mailbox_name, const std::string& node, const std::string& connection_id,
    const std::vector<int>& recipient_counts) {
  absl::MutexLock lock(&mu_);
  if (connection_id.empty() || connection_id.size() > kMaxConnectionIdLength) {
    return absl::InvalidArgumentError("connection_id: required, at most 64 characters");
  }
  if (recipient_counts.empty() || recipient_counts.size() > kMaxMessagesPerRequest) {
    return absl::InvalidArgumentError("message_recipient_counts: 1 to 30 entries required");
  }
  for (size_t i = 0; i < recipient_counts.size(); ++i) {
    if (recipient_counts[i] < 1 || recipient_counts[i] > limits_.max_recipients_per_message) {
      return absl::InvalidArgumentError(
          absl::StrCat("message_recipient_counts[", i, "]: must be 1 to ",
                       limits_.max_recipients_per_message));
    }
  }

  const absl::Time now = clock_->Now();
  Mailbox& mailbox = mailboxes_[mailbox_name];
  ExpireLocked(mailbox, now);
  v1::AcquireSendPermitResponse response;
  auto deny = [&](v1::PermitDenialReason reason, absl::Duration wait) {
    response.set_granted(false);
    response.set_denial_reason(reason);
    ToProto(std::max(wait, absl::Milliseconds(100)), response.mutable_retry_after());
    return response;
  };

  if (mailbox.paused_until > now) {
    ToProto(mailbox.paused_until, response.mutable_paused_until());
    return deny(v1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED, mailbox.paused_until - now);
  }
  const std::string key = ConnectionKey(node, connection_id);
  if (mailbox.connections.count(key) == 0 &&
      static_cast<int>(mailbox.connections.size()) >= limits_.max_connections) {
    absl::Time soonest = absl::InfiniteFuture();
    for (const auto& [unused, connection] : mailbox.connections) {
      soonest = std::min(soonest, connection.lease_end);
    }
    return deny(v1::PERMIT_DENIAL_REASON_CONNECTIONS, soonest - now);
  }
  const int rate_room = limits_.messages_per_minute - static_cast<int>(mailbox.minute.size());
  if (rate_room <= 0) {
    return deny(v1::PERMIT_DENIAL_REASON_MESSAGE_RATE,
                mailbox.minute.front().time + kMinute - now);
  }
  int64_t day_room = limits_.recipients_per_day - DayRecipients(mailbox);
  if (recipient_counts[0] > day_room) {
    // Wait until enough of the oldest grants roll out of the window.
    int64_t needed = recipient_counts[0] - day_room;
    absl::Time when = now + kDay;
    for (const Grant& grant : mailbox.day) {
      needed -= grant.recipients;
      if (needed <= 0) {
        when = grant.time + kDay;
        break;
      }
    }
    return deny(v1::PERMIT_DENIAL_REASON_DAILY_RECIPIENTS, when - now);
  }

  Permit permit{mailbox_name, node, key, {}, 0, now + limits_.permit_lease};
  for (size_t i = 0; i < recipient_counts.size() && static_cast<int>(i) < rate_room; ++i) {
    if (recipient_counts[i] > day_room) break;
    day_room -= recipient_counts[i];
    Grant grant{next_id_++, now, recipient_counts[i], node};
    mailbox.minute.push_back(grant);
    mailbox.day.push_back(grant);
    permit.grants.push_back(grant);
  }
  mailbox.connections[key] = Connection{node, now + limits_.connection_idle_lease};
  const std::string permit_id = absl::StrCat("permit-", next_id_++);
  response.set_granted(true);
  response.set_permit_id(permit_id);
  response.set_granted_messages(static_cast<int>(permit.grants.size()));
  ToProto(limits_.permit_lease, response.mutable_lease());
  ToProto(limits_.connection_idle_lease, response.mutable_connection_lease());
  permits_.emplace(permit_id, std::move(permit));
  return response;
}

absl::StatusOr<v1::ReportSendResultResponse> SendQuota::Report(
    const std::string& node, const std::string& permit_id,
    const std::vector<v1::SendResult>& results, bool connection_closed) {
  absl::MutexLock lock(&mu_);
  auto it = permits_.find(permit_id);
  if (it == permits_.end() || it->second.node != node) {
    return absl::NotFoundError(absl::StrCat("permit_id: no open permit \"", permit_id,
                                            "\" for node ", node, " (it may have expired)"));
  }
  Permit& permit = it->second;
  if (permit.reported + results.size() > permit.grants.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("results: ", results.size(), " reported but only ",
                     permit.grants.size() - permit.reported, " message(s) remain on the permit"));
  }
  const absl::Time now = clock_->Now();
  Mailbox& mailbox = mailboxes_[permit.mailbox];
  v1::ReportSendResultResponse response;
  for (size_t i = 0; i < results.size(); ++i) {
    const v1::SendResult& result = results[i];
    const Grant& grant = permit.grants[permit.reported + i];
    if (result.outcome() == v1::SEND_OUTCOME_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat("results[", i, "].outcome: required"));
    }
    // Only accepted recipients of delivered mail count against the day.
    int counted = 0;
    if (result.outcome() == v1::SEND_OUTCOME_DELIVERED) {
      counted = result.accepted_recipients() > 0
                    ? std::min(grant.recipients, result.accepted_recipients())
                    : grant.recipients;
    }
    for (Grant& g : mailbox.day) {
      if (g.id == grant.id) g.recipients = counted;
    }
    if (result.outcome() == v1::SEND_OUTCOME_QUOTA_EXCEEDED) {
      const absl::Time oldest = mailbox.day.empty() ? now : mailbox.day.front().time;
      mailbox.paused_until = std::max(mailbox.paused_until, oldest + kDay);
      MR_LOG(kWarn, kLogBroker) << "mailbox " << permit.mailbox
                                << " paused until its daily window rolls over at "
                                << absl::FormatTime(mailbox.paused_until)
                                << " (reported by " << node << ")";
    }
  }
  permit.reported += results.size();
  auto connection = mailbox.connections.find(permit.connection_key);
  if (connection != mailbox.connections.end()) {
    if (connection_closed) {
      mailbox.connections.erase(connection);
    } else {
      connection->second.lease_end = now + limits_.connection_idle_lease;
    }
  }
  if (mailbox.paused_until > now) ToProto(mailbox.paused_until, response.mutable_mailbox_paused_until());
  if (permit.reported == permit.grants.size()) {
    permits_.erase(it);
    response.set_permit_closed(true);
  }
  return response;
}

absl::StatusOr<v1::ReleaseSendPermitResponse> SendQuota::Release(
    const std::string& node, const std::string& permit_id, const std::string& connection_id,
    bool connection_closed) {
  absl::MutexLock lock(&mu_);
  v1::ReleaseSendPermitResponse response;
  std::string mailbox_name;
  if (!permit_id.empty()) {
    auto it = permits_.find(permit_id);
    if (it == permits_.end() || it->second.node != node) {
      return absl::NotFoundError(absl::StrCat("permit_id: no open permit \"", permit_id, "\""));
    }
    response.set_refunded_messages(
        static_cast<int>(it->second.grants.size() - it->second.reported));
    RefundLocked(it->second, it->second.reported);
    mailbox_name = it->second.mailbox;
    permits_.erase(it);
  }
  if (connection_closed && !connection_id.empty()) {
    const std::string key = ConnectionKey(node, connection_id);
    for (auto& [name, mailbox] : mailboxes_) {
      if (!mailbox_name.empty() && name != mailbox_name) continue;
      mailbox.connections.erase(key);
    }
  }
  return response;
}

void SendQuota::Pause(const std::string& mailbox, absl::Time until) {
  absl::MutexLock lock(&mu_);
  Mailbox& state = mailboxes_[mailbox];
  state.paused_until = std::max(state.paused_until, until);
}

bool SendQuota::Resume(const std::string& mailbox) {
  absl::MutexLock lock(&mu_);
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end() || it->second.paused_until <= clock_->Now()) return false;
  it->second.paused_until = absl::InfinitePast();
  return true;
}

absl::Time SendQuota::PausedUntil(const std::string& mailbox) {
  absl::MutexLock lock(&mu_);
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end() || it->second.paused_until <= clock_->Now()) {
    return absl::InfinitePast();
  }
  return it->second.paused_until;
}

std::vector<v1::MailboxQuota> SendQuota::Status(const std::string& mailbox_filter) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<v1::MailboxQuota> out;
  for (auto& [name, mailbox] : mailboxes_) {
    if (!mailbox_filter.empty() && name != mailbox_filter) continue;
    ExpireLocked(mailbox, now);
    v1::MailboxQuota quota;
    quota.set_mailbox(name);
    v1::SendLimits* limits = quota.mutable_limits();
    limits->set_messages_per_minute(limits_.messages_per_minute);
    limits->set_recipients_per_day(limits_.recipients_per_day);
    limits->set_max_connections(limits_.max_connections);
    limits->set_max_recipients_per_message(limits_.max_recipients_per_message);
    ToProto(limits_.permit_lease, limits->mutable_permit_lease());
    ToProto(limits_.connection_idle_lease, limits->mutable_connection_idle_lease());
    quota.set_messages_last_minute(static_cast<int>(mailbox.minute.size()));
    quota.set_recipients_last_day(DayRecipients(mailbox));
    quota.set_open_connections(static_cast<int>(mailbox.connections.size()));
    int outstanding = 0;
    for (const auto& [id, permit] : permits_) {
      if (permit.mailbox == name) ++outstanding;
    }
    quota.set_outstanding_permits(outstanding);
    if (mailbox.paused_until > now) ToProto(mailbox.paused_until, quota.mutable_paused_until());
    std::map<std::string, v1::NodeQuotaUsage> nodes;
    for (const auto& [key, connection] : mailbox.connections) {
      v1::NodeQuotaUsage& usage = nodes[connection.node];
      usage.set_node(connection.node);
      usage.set_connections(usage.connections() + 1);
    }
    for (const Grant& grant : mailbox.day) {
      v1::NodeQuotaUsage& usage = nodes[grant.node];
      usage.set_node(grant.node);
      usage.set_messages_last_day(usage.messages_last_day() + 1);
      usage.set_recipients_last_day(usage.recipients_last_day() + grant.recipients);
    }
    for (const auto& [id, permit] : permits_) {
      if (permit.mailbox != name) continue;
      v1::NodeQuotaUsage& usage = nodes[permit.node];
      usage.set_node(permit.node);
      usage.set_outstanding_messages(usage.outstanding_messages() +
                                     static_cast<int>(permit.grants.size() - permit.reported));
    }
    for (auto& [node, usage] : nodes) *quota.add_nodes() = usage;
    out.push_back(std::move(quota));
  }
  return out;
}

}  // namespace mailroom::broker
