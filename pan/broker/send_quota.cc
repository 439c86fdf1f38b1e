#include "pan/broker/send_quota.h"

#include <algorithm>
#include <array>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"
#include "common/base/logging.h"
#include "common/node/offline_allowance.h"  // kMaxOfflineSendsPerReport, the nodes' limit too

namespace mailroom::broker {
namespace {

namespace v1 = ::mailroom::broker::v1;

constexpr absl::Duration kMinute = absl::Minutes(1);
constexpr absl::Duration kDay = absl::Hours(24);
constexpr size_t kMaxMessagesPerRequest = 30;
constexpr size_t kMaxConnectionIdLength = 64;
// A message whose window end is t counts at t + window too (windows are closed): room comes
// back just after.
constexpr absl::Duration kAfterWindow = absl::Milliseconds(1);
// While more urgent mail waits, a request is told to come back this much later than the room
// frees, so that the more urgent one usually asks for it first.
constexpr absl::Duration kPriorityLag = absl::Seconds(1);
// Waiting demand is forgotten this long after the retry_after it was given: a node under load
// comes back a little late, and a node that stopped asking holds nothing back for longer.
constexpr absl::Duration kDemandGrace = absl::Seconds(5);
// A request waiting for a connection slot that lower-ranked holders will yield asks again
// this soon rather than at the end of their leases.
constexpr absl::Duration kSlotRecheck = absl::Seconds(2);
constexpr int kLevels = 3;

std::string ConnectionKey(const std::string& node, const std::string& connection_id) {
  return absl::StrCat(node, "/", connection_id);
}

}  // namespace

SendLimitValues ResolveSendLimits(const v1::SendLimits& limits, const SendLimitValues& defaults) {
  SendLimitValues values = defaults;
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

void SendQuota::SetMailboxLimits(std::map<std::string, SendLimitValues> limits) {
  absl::MutexLock lock(&mu_);
  mailbox_limits_ = std::move(limits);
  for (const auto& [name, values] : mailbox_limits_) mailboxes_[name];
}

const SendLimitValues& SendQuota::LimitsLocked(const std::string& mailbox) const {
  auto it = mailbox_limits_.find(mailbox);
  return it == mailbox_limits_.end() ? limits_ : it->second;
}

std::string SendQuota::PermitMailbox(const std::string& permit_id) {
  absl::MutexLock lock(&mu_);
  auto it = permits_.find(permit_id);
  return it == permits_.end() ? std::string() : it->second.mailbox;
}

int64_t SendQuota::DayRecipients(const Mailbox& mailbox) {
  int64_t total = 0;
  for (const auto& [id, grant] : mailbox.grants) total += grant.recipients;
  return total;
}

void SendQuota::ExpireLocked(Mailbox& mailbox, absl::Time now) {
  // A message counts in a window while its end is in it: end >= now - window.
  for (auto it = mailbox.grants.begin(); it != mailbox.grants.end();) {
    it = it->second.end < now - kDay ? mailbox.grants.erase(it) : std::next(it);
  }
  mailbox.minute.erase(std::remove_if(mailbox.minute.begin(), mailbox.minute.end(),
                                      [&](int64_t id) {
                                        auto grant = mailbox.grants.find(id);
                                        return grant == mailbox.grants.end() ||
                                               grant->second.end < now - kMinute;
                                      }),
                       mailbox.minute.end());
  // Permits whose lease ran out end; their unreported messages count until the lease end.
  for (auto it = permits_.begin(); it != permits_.end();) {
    if (it->second.lease_end <= now) {
      MR_LOG(kDebug, kLogBroker) << "permit " << it->first << " of " << it->second.node
                                 << " expired with "
                                 << it->second.grants.size() - it->second.reported
                                 << " message(s) unreported; counted as sent at its lease end";
      it = permits_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = mailbox.connections.begin(); it != mailbox.connections.end();) {
    it = it->second.lease_end <= now ? mailbox.connections.erase(it) : std::next(it);
  }
  for (auto it = mailbox.waiting.begin(); it != mailbox.waiting.end();) {
    it = it->second.until <= now ? mailbox.waiting.erase(it) : std::next(it);
  }
}

SendQuota::Permit* SendQuota::FindPermitLocked(const std::string& node,
                                               const std::string& permit_id, absl::Time now) {
  auto it = permits_.find(permit_id);
  if (it == permits_.end() || it->second.node != node) return nullptr;
  if (it->second.lease_end <= now) {  // the node may no longer send on it, nor report it
    permits_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void SendQuota::RefundLocked(const Permit& permit, size_t from) {
  auto found = mailboxes_.find(permit.mailbox);
  if (found == mailboxes_.end()) return;
  Mailbox& mailbox = found->second;
  for (size_t i = from; i < permit.grants.size(); ++i) {
    const int64_t id = permit.grants[i];
    mailbox.grants.erase(id);
    mailbox.minute.erase(std::remove(mailbox.minute.begin(), mailbox.minute.end(), id),
                         mailbox.minute.end());
  }
}

absl::StatusOr<v1::AcquireSendPermitResponse> SendQuota::Acquire(
    const std::string& mailbox_name, const std::string& node, const std::string& connection_id,
    const std::vector<int>& recipient_counts, SendPriority priority, absl::Duration lease_cap) {
  absl::MutexLock lock(&mu_);
  if (recipient_counts.empty() || recipient_counts.size() > kMaxMessagesPerRequest) {
    return absl::InvalidArgumentError("message_recipient_counts: 1 to 30 entries required");
  }
  const SendLimitValues& limits = LimitsLocked(mailbox_name);
  return AcquireLocked(mailbox_name, node, connection_id, recipient_counts,
                       PriorityLevel(priority), std::min(limits.permit_lease, lease_cap),
                       std::min(limits.connection_idle_lease, lease_cap));
}

absl::StatusOr<v1::AcquireSendPermitResponse> SendQuota::AcquireUnleased(
    const std::string& mailbox_name, const std::string& holder, const std::string& connection_id,
    bool with_message) {
  absl::MutexLock lock(&mu_);
  return AcquireLocked(mailbox_name, holder, connection_id,
                       with_message ? std::vector<int>{1} : std::vector<int>{},
                       PriorityLevel(::mailroom::common::v1::SEND_PRIORITY_URGENT),
                       absl::InfiniteDuration(), absl::InfiniteDuration());
}

absl::StatusOr<v1::AcquireSendPermitResponse> SendQuota::AcquireLocked(
    const std::string& mailbox_name, const std::string& node, const std::string& connection_id,
    const std::vector<int>& recipient_counts, int level, absl::Duration permit_lease,
    absl::Duration connection_lease) {
  if (connection_id.empty() || connection_id.size() > kMaxConnectionIdLength) {
    return absl::InvalidArgumentError("connection_id: required, at most 64 characters");
  }
  const SendLimitValues& limits = LimitsLocked(mailbox_name);
  for (size_t i = 0; i < recipient_counts.size(); ++i) {
    if (recipient_counts[i] < 1 || recipient_counts[i] > limits.max_recipients_per_message) {
      return absl::InvalidArgumentError(
          absl::StrCat("message_recipient_counts[", i, "]: must be 1 to ",
                       limits.max_recipients_per_message));
    }
  }

  const absl::Time now = clock_->Now();
  Mailbox& mailbox = mailboxes_[mailbox_name];
  ExpireLocked(mailbox, now);
  v1::AcquireSendPermitResponse response;
  const std::string key = ConnectionKey(node, connection_id);
  const bool holds_slot = mailbox.connections.count(key) > 0;
  auto deny = [&](v1::PermitDenialReason reason, absl::Duration wait) {
    response.set_granted(false);
    response.set_denial_reason(reason);
    ToProto(std::max(wait, absl::Milliseconds(100)), response.mutable_retry_after());
    return response;
  };
  // A refusal for want of room: remembered, so that freed room goes to it if it ranks first.
  auto wait_for_room = [&](v1::PermitDenialReason reason, absl::Duration wait,
                           bool needs_slot) {
    deny(reason, wait);
    const absl::Time retry_at = now + FromProto(response.retry_after());
    mailbox.waiting[key] = Demand{node, level, static_cast<int>(recipient_counts.size()),
                                  needs_slot, retry_at, retry_at + kDemandGrace};
    return response;
  };
  // When a counted message leaves a window at the soonest: just after `end` + window, and
  // an unreported one (end still ahead) no sooner than if it were reported now.
  auto leaves = [now](const Grant& grant, absl::Duration window) {
    return std::min(grant.end, now) + window + kAfterWindow;
  };

  if (mailbox.paused_until > now) {
    ToProto(mailbox.paused_until, response.mutable_paused_until());
    return deny(v1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED, mailbox.paused_until - now);
  }
  if (const absl::Time held = std::max(mailbox.offline_hold_until, hold_all_until_); held > now) {
    return deny(v1::PERMIT_DENIAL_REASON_OFFLINE_RECOVERY, held - now);
  }
  // What waiting demand of others holds (see "Priorities" in the header): per class, the
  // messages counted in the minute and those asked for by refused requests.
  const int share =
      std::max(1, limits.messages_per_minute * limits.guaranteed_share_percent / 100);
  std::array<int, kLevels> counted{};
  for (int64_t id : mailbox.minute) {
    const int grant_level = mailbox.grants.at(id).level;
    if (grant_level >= 0 && grant_level < kLevels) ++counted[grant_level];
  }
  // For connection slots: a class under its share goes before every class that is not.
  auto rank = [&](int l) {
    if (l < 0 || l >= kLevels) return kLevels;  // not a class (kUnknownLevel): behind all
    return counted[l] < share ? l - kLevels : l;
  };
  std::array<int, kLevels> waiting{};
  int held_slots = 0;
  absl::Time ahead_retry = now;
  for (const auto& [other, demand] : mailbox.waiting) {
    if (other == key) continue;
    waiting[demand.level] += demand.messages;
    if (demand.level < level || rank(demand.level) < rank(level)) {
      ahead_retry = std::max(ahead_retry, demand.retry_at);
    }
    if (rank(demand.level) < rank(level)) held_slots += demand.needs_slot;
  }
  // Messages: room is claimed first by each class for what is left of its share, most urgent
  // first, then by each class for the rest it waits for, most urgent first. This request's
  // class may take what the claims ahead of its own leave.
  int held = 0;           // ahead of the rest this class asks for
  int reserved_ahead = 0;  // ahead of what is left of its share
  int more_urgent = held_slots;
  for (int l = 0; l < kLevels; ++l) {
    if (l == level) continue;
    const int reserved = std::min(waiting[l], std::max(0, share - counted[l]));
    if (l < level) {
      held += waiting[l];
      reserved_ahead += reserved;
      more_urgent += waiting[l];
    } else {
      held += reserved;
    }
  }
  const int own_share = std::max(0, share - counted[level]);
  const absl::Duration lag = more_urgent > 0 ? kPriorityLag : absl::ZeroDuration();
  if (!holds_slot && static_cast<int>(mailbox.connections.size()) >= limits.max_connections) {
    absl::Time soonest = absl::InfiniteFuture();
    bool lower_holder = false;
    for (const auto& [unused, connection] : mailbox.connections) {
      soonest = std::min(soonest, connection.lease_end);
      lower_holder |= rank(connection.level) > rank(level);
    }
    // A lower-ranked holder is told to yield its slot when it next asks.
    if (lower_holder) soonest = std::min(soonest, now + kSlotRecheck);
    return wait_for_room(v1::PERMIT_DENIAL_REASON_CONNECTIONS, soonest - now + lag, true);
  }
  const int rate_room = limits.messages_per_minute - static_cast<int>(mailbox.minute.size());
  if (!recipient_counts.empty() && rate_room <= 0) {
    absl::Time soonest = now + kMinute + kAfterWindow;
    for (int64_t id : mailbox.minute) {
      soonest = std::min(soonest, leaves(mailbox.grants.at(id), kMinute));
    }
    return wait_for_room(v1::PERMIT_DENIAL_REASON_MESSAGE_RATE, soonest - now + lag, !holds_slot);
  }
  int64_t day_room = limits.recipients_per_day - DayRecipients(mailbox);
  if (!recipient_counts.empty() && recipient_counts[0] > day_room) {
    // Wait until enough counted recipients have left the day.
    std::vector<std::pair<absl::Time, int>> leaving;
    for (const auto& [id, grant] : mailbox.grants) {
      if (grant.recipients > 0) leaving.emplace_back(leaves(grant, kDay), grant.recipients);
    }
    std::sort(leaving.begin(), leaving.end());
    int64_t needed = recipient_counts[0] - day_room;
    absl::Time when = now + kDay;
    for (const auto& [time, recipients] : leaving) {
      needed -= recipients;
      if (needed <= 0) {
        when = time;
        break;
      }
    }
    return deny(v1::PERMIT_DENIAL_REASON_DAILY_RECIPIENTS, when - now);
  }
  const int free_slots = limits.max_connections - static_cast<int>(mailbox.connections.size());
  const bool yield = holds_slot && held_slots > free_slots;
  const int allowed =
      std::max(rate_room - held, std::min(own_share, rate_room - reserved_ahead));
  if (yield || (!holds_slot && held_slots >= free_slots) ||
      (!recipient_counts.empty() && allowed <= 0)) {
    response.set_yield_connection(yield);
    // Back soon after the demand ahead was told to come: it may not need all it holds.
    return wait_for_room(v1::PERMIT_DENIAL_REASON_PRIORITY,
                         std::min(ahead_retry - now, kSlotRecheck) + lag, !holds_slot || yield);
  }
  mailbox.waiting.erase(key);

  Permit permit{mailbox_name, node, key, {}, 0, now + permit_lease};
  for (size_t i = 0; i < recipient_counts.size() && static_cast<int>(i) < allowed; ++i) {
    if (recipient_counts[i] > day_room) break;
    day_room -= recipient_counts[i];
    const int64_t id = next_id_++;
    mailbox.grants[id] = Grant{now, permit.lease_end, recipient_counts[i], node, level};
    mailbox.minute.push_back(id);
    permit.grants.push_back(id);
  }
  mailbox.connections[key] = Connection{node, now + connection_lease, level};
  response.set_granted(true);
  response.set_granted_messages(static_cast<int>(permit.grants.size()));
  if (connection_lease != absl::InfiniteDuration()) {
    ToProto(connection_lease, response.mutable_connection_lease());
  }
  if (permit.grants.empty()) return response;  // a connection slot alone
  const std::string permit_id = absl::StrCat("permit-", next_id_++);
  response.set_permit_id(permit_id);
  if (permit_lease != absl::InfiniteDuration()) ToProto(permit_lease, response.mutable_lease());
  permits_.emplace(permit_id, std::move(permit));
  return response;
}

absl::StatusOr<v1::ReportSendResultResponse> SendQuota::Report(
    const std::string& node, const std::string& permit_id,
    const std::vector<v1::SendResult>& results, bool connection_closed,
    absl::Duration lease_cap) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  Permit* permit = FindPermitLocked(node, permit_id, now);
  if (permit == nullptr) {
    return absl::NotFoundError(absl::StrCat("permit_id: no open permit \"", permit_id,
                                            "\" for node ", node, " (it may have expired)"));
  }
  if (permit->reported + results.size() > permit->grants.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("results: ", results.size(), " reported but only ",
                     permit->grants.size() - permit->reported,
                     " message(s) remain on the permit"));
  }
  for (size_t i = 0; i < results.size(); ++i) {
    if (results[i].outcome() == v1::SEND_OUTCOME_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat("results[", i, "].outcome: required"));
    }
  }
  Mailbox& mailbox = mailboxes_[permit->mailbox];
  v1::ReportSendResultResponse response;
  for (size_t i = 0; i < results.size(); ++i) {
    const v1::SendResult& result = results[i];
    auto found = mailbox.grants.find(permit->grants[permit->reported + i]);
    if (found == mailbox.grants.end()) continue;
    Grant& grant = found->second;
    // The node reports a message once it can no longer reach the server.
    grant.end = now;
    // Only accepted recipients of delivered mail count against the day.
    int counted = 0;
    if (result.outcome() == v1::SEND_OUTCOME_DELIVERED) {
      counted = result.accepted_recipients() > 0
                    ? std::min(grant.recipients, result.accepted_recipients())
                    : grant.recipients;
    }
    grant.recipients = counted;
    if (result.outcome() == v1::SEND_OUTCOME_QUOTA_EXCEEDED) {
      const absl::Time oldest = mailbox.grants.empty() ? now : mailbox.grants.begin()->second.time;
      mailbox.paused_until = std::max(mailbox.paused_until, oldest + kDay);
      MR_LOG(kWarn, kLogBroker) << "mailbox " << permit->mailbox
                                << " paused until its daily window rolls over at "
                                << absl::FormatTime(mailbox.paused_until)
                                << " (reported by " << node << ")";
    }
  }
  permit->reported += results.size();
  auto connection = mailbox.connections.find(permit->connection_key);
  if (connection != mailbox.connections.end()) {
    if (connection_closed) {
      mailbox.connections.erase(connection);
    } else {
      const absl::Duration renewal =
          std::min(LimitsLocked(permit->mailbox).connection_idle_lease, lease_cap);
      connection->second.lease_end = std::max(connection->second.lease_end, now + renewal);
      ToProto(renewal, response.mutable_connection_lease());
    }
  }
  if (mailbox.paused_until > now) ToProto(mailbox.paused_until, response.mutable_mailbox_paused_until());
  if (permit->reported == permit->grants.size()) {
    permits_.erase(permit_id);
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
    Permit* permit = FindPermitLocked(node, permit_id, clock_->Now());
    if (permit == nullptr) {
      return absl::NotFoundError(absl::StrCat("permit_id: no open permit \"", permit_id, "\""));
    }
    response.set_refunded_messages(static_cast<int>(permit->grants.size() - permit->reported));
    RefundLocked(*permit, permit->reported);
    mailbox_name = permit->mailbox;
    permits_.erase(permit_id);
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

int SendQuota::EndNodeRun(const std::string& node) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  int ended = 0;
  for (auto it = permits_.begin(); it != permits_.end();) {
    if (it->second.node != node) {
      ++it;
      continue;
    }
    Mailbox& mailbox = mailboxes_[it->second.mailbox];
    for (size_t i = it->second.reported; i < it->second.grants.size(); ++i) {
      auto grant = mailbox.grants.find(it->second.grants[i]);
      if (grant != mailbox.grants.end()) grant->second.end = std::min(grant->second.end, now);
    }
    ++ended;
    it = permits_.erase(it);
  }
  for (auto& [name, mailbox] : mailboxes_) {
    for (auto it = mailbox.connections.begin(); it != mailbox.connections.end();) {
      it = it->second.node == node ? mailbox.connections.erase(it) : std::next(it);
    }
    for (auto it = mailbox.waiting.begin(); it != mailbox.waiting.end();) {
      it = it->second.node == node ? mailbox.waiting.erase(it) : std::next(it);
    }
  }
  if (ended > 0) {
    MR_LOG(kInfo, kLogBroker) << node << " started afresh: " << ended
                              << " permit(s) of its previous run end now";
  }
  return ended;
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
    const SendLimitValues& values = LimitsLocked(name);
    v1::SendLimits* limits = quota.mutable_limits();
    limits->set_messages_per_minute(values.messages_per_minute);
    limits->set_recipients_per_day(values.recipients_per_day);
    limits->set_max_connections(values.max_connections);
    limits->set_max_recipients_per_message(values.max_recipients_per_message);
    ToProto(values.permit_lease, limits->mutable_permit_lease());
    ToProto(values.connection_idle_lease, limits->mutable_connection_idle_lease());
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
    for (const auto& [id, grant] : mailbox.grants) {
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

ledger::LedgerRecord SendQuota::Snapshot(const std::string& mailbox_name) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  ledger::LedgerRecord record;
  auto found = mailboxes_.find(mailbox_name);
  if (found == mailboxes_.end()) return record;
  Mailbox& mailbox = found->second;
  ExpireLocked(mailbox, now);
  const std::set<int64_t> minute(mailbox.minute.begin(), mailbox.minute.end());
  // The day's older messages, per whole minute of how long ago they ended (rounded down).
  std::map<int64_t, int64_t> day;
  for (const auto& [id, grant] : mailbox.grants) {
    const absl::Duration ago = std::max(absl::ZeroDuration(), now - grant.end);
    if (minute.count(id) > 0) {
      ledger::LedgerEntry* entry = record.add_entries();
      ToProto(ago, entry->mutable_ended_ago());
      entry->set_messages(1);
      entry->set_recipients(grant.recipients);
    } else if (grant.recipients > 0) {
      day[absl::ToInt64Minutes(ago)] += grant.recipients;
    }
  }
  for (const auto& [minutes, recipients] : day) {
    ledger::LedgerEntry* entry = record.add_entries();
    ToProto(absl::Minutes(minutes), entry->mutable_ended_ago());
    entry->set_recipients(recipients);
  }
  if (mailbox.paused_until > now) ToProto(mailbox.paused_until - now, record.mutable_paused_for());
  return record;
}

void SendQuota::Restore(const std::string& mailbox_name, const ledger::LedgerRecord& record) {
  absl::MutexLock lock(&mu_);
  RestoreLocked(mailboxes_[mailbox_name], record, "(previous leader)");
}

void SendQuota::RestoreLocked(Mailbox& mailbox, const ledger::LedgerRecord& record,
                              const std::string& source) {
  const absl::Time now = clock_->Now();
  for (const ledger::LedgerEntry& entry : record.entries()) {
    const absl::Time end = now - std::max(absl::ZeroDuration(), FromProto(entry.ended_ago()));
    const int64_t id = next_id_++;
    mailbox.grants[id] = Grant{now, end, static_cast<int>(entry.recipients()), source};
    if (entry.messages() > 0) mailbox.minute.push_back(id);
  }
  if (record.has_paused_for()) {
    mailbox.paused_until = std::max(mailbox.paused_until, now + FromProto(record.paused_for()));
  }
  ExpireLocked(mailbox, now);
}

absl::Status SendQuota::CountOfflineSends(const std::string& mailbox_name,
                                          const std::string& node,
                                          const std::vector<v1::OfflineSend>& sends) {
  if (sends.size() > kMaxOfflineSendsPerReport) {
    return absl::InvalidArgumentError(
        absl::StrCat("offline_sends: at most ", kMaxOfflineSendsPerReport, " entries"));
  }
  ledger::LedgerRecord record;
  for (size_t i = 0; i < sends.size(); ++i) {
    const absl::Duration ago = FromProto(sends[i].sent_ago());
    if (ago < absl::ZeroDuration() || ago > kDay) {
      return absl::InvalidArgumentError(
          absl::StrCat("offline_sends[", i, "].sent_ago: must be 0 to 24 hours"));
    }
    if (sends[i].recipients() < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("offline_sends[", i, "].recipients: must be at least 1"));
    }
    ledger::LedgerEntry* entry = record.add_entries();
    *entry->mutable_ended_ago() = sends[i].sent_ago();
    entry->set_messages(ago <= kMinute ? 1 : 0);
    entry->set_recipients(sends[i].recipients());
  }
  if (sends.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  Mailbox& mailbox = mailboxes_[mailbox_name];
  RestoreLocked(mailbox, record, absl::StrCat(node, " (offline)"));
  if (mailbox.offline_reported_at < now - kMinute) {
    mailbox.offline_hold_until = now + kOfflineReportHold;
    MR_LOG(kWarn, kLogBroker) << node << " reports " << sends.size() << " message(s) sent on "
                              << mailbox_name << " without a permit while no broker led; "
                              << "grants wait " << kOfflineReportHold
                              << " for the other nodes' reports";
  }
  mailbox.offline_reported_at = now;
  return absl::OkStatus();
}

void SendQuota::HoldForOfflineReports(absl::Duration hold) {
  absl::MutexLock lock(&mu_);
  hold_all_until_ = std::max(hold_all_until_, clock_->Now() + hold);
}

}  // namespace mailroom::broker
