#include "pan/broker/leader_election.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::broker {

absl::Duration FencingMargin(absl::Duration ttl) {
  return std::max(ttl / 10, absl::Milliseconds(500));
}

LeaderElection::LeaderElection(LeaderElectionOptions options, etcd::EtcdClient* etcd,
                               const Clock* clock)
    : options_(std::move(options)),
      margin_(FencingMargin(options_.ttl)),
      etcd_(etcd),
      clock_(clock),
      loop_(clock, [this] { return Step(); }) {}

LeaderElection::~LeaderElection() { Stop(); }

void LeaderElection::Start() { loop_.Start(); }

void LeaderElection::Stop() { loop_.Stop(); }

void LeaderElection::Resign() {
  loop_.Stop();
  int64_t lease;
  bool held;
  etcd::KeyHold hold;
  {
    absl::MutexLock lock(&mu_);
    // The term ends before anything is given up: from here on nothing is granted.
    term_end_ = absl::InfinitePast();
    lease = lease_;
    held = holds_key_;
    hold = hold_;
    holds_key_ = false;
    lease_ = 0;
  }
  Report(false);
  if (held) {
    absl::StatusOr<bool> deleted = etcd_->DeleteIfHeld(options_.election_key, hold);
    if (!deleted.ok()) {
      MR_LOG(kWarn, kLogBroker) << "leader election: releasing the key: "
                                   << deleted.status().message();
    }
  }
  if (lease != 0) {
    if (absl::Status revoked = etcd_->LeaseRevoke(lease); !revoked.ok()) {
      MR_LOG(kWarn, kLogBroker) << "leader election: revoking the lease: " << revoked.message();
    }
  }
  if (held) MR_LOG(kInfo, kLogBroker) << "leader election: resigned the lead";
}

absl::Time LeaderElection::Step() {
  const absl::Duration round = options_.ttl / 3;
  int64_t lease;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_;
  }
  const absl::Time sent = clock_->Now();
  if (lease == 0) {
    absl::StatusOr<etcd::gw::LeaseGrantResponse> granted = etcd_->LeaseGrant(options_.ttl);
    if (!granted.ok()) {
      MR_LOG(kWarn, kLogBroker) << "leader election: no lease from etcd: "
                                   << granted.status().message();
      return sent + round;
    }
    absl::MutexLock lock(&mu_);
    lease = lease_ = granted->id();
    renewed_at_ = sent;
  } else {
    absl::StatusOr<absl::Duration> renewed = etcd_->LeaseKeepAlive(lease);
    if (renewed.status().code() == absl::StatusCode::kNotFound) {
      // The lease expired at etcd: whatever the term said, nothing is held any more.
      MR_LOG(kWarn, kLogBroker) << "leader election: the lease expired";
      {
        absl::MutexLock lock(&mu_);
        lease_ = 0;
        holds_key_ = false;
        term_end_ = absl::InfinitePast();
      }
      Report(false);
      return clock_->Now();
    }
    if (!renewed.ok()) {
      MR_LOG(kWarn, kLogBroker) << "leader election: cannot renew the lease: "
                                   << renewed.status().message();
      Report(leading());
      // The term runs out on its own; the next round is due then at the latest, to report it.
      absl::MutexLock lock(&mu_);
      const absl::Time next = sent + round;
      return holds_key_ && term_end_ > sent ? std::min(next, term_end_) : next;
    }
    bool resumed;
    {
      absl::MutexLock lock(&mu_);
      resumed = holds_key_ && term_end_ <= sent;
    }
    if (resumed) StartTerm(sent);
    absl::MutexLock lock(&mu_);
    renewed_at_ = sent;
    if (holds_key_) {
      term_end_ = sent + options_.ttl - margin_;
      leader_seen_at_ = sent;
    }
  }

  bool held;
  etcd::KeyHold hold;
  {
    absl::MutexLock lock(&mu_);
    held = holds_key_;
    hold = hold_;
  }
  if (held) {
    // Still ours? (An admin may have deleted the key; then another may have created it.)
    absl::StatusOr<absl::optional<etcd::gw::KeyValue>> key = etcd_->Get(options_.election_key);
    if (key.ok() && (!key->has_value() || (*key)->lease() != hold.lease ||
                     (*key)->create_revision() != hold.create_revision)) {
      MR_LOG(kWarn, kLogBroker) << "leader election: the election key is no longer ours";
      {
        absl::MutexLock lock(&mu_);
        holds_key_ = false;
        term_end_ = absl::InfinitePast();
        leader_address_ = key->has_value() ? (*key)->value() : "";
        leader_term_ = key->has_value() ? (*key)->create_revision() : 0;
      }
      Report(false);
      return clock_->Now();
    }
  } else {
    etcd::gw::KeyValue holder;
    absl::StatusOr<absl::optional<etcd::KeyHold>> created =
        etcd_->CreateIfAbsent(options_.election_key, options_.advertised_address, lease, &holder);
    if (!created.ok()) {
      MR_LOG(kWarn, kLogBroker) << "leader election: " << created.status().message();
    } else {
      absl::optional<etcd::KeyHold> won = *created;
      // Our own key, from a round whose answer was lost.
      if (!won.has_value() && holder.lease() == lease) {
        won = etcd::KeyHold{lease, holder.create_revision()};
      }
      if (won.has_value() && options_.on_elected) {
        if (absl::Status ready = options_.on_elected(*won); !ready.ok()) {
          MR_LOG(kWarn, kLogBroker) << "leader election: not taking the lead: " << ready.message();
          etcd_->DeleteIfHeld(options_.election_key, *won).IgnoreError();
          return sent + round / 2;
        }
      }
      if (won.has_value()) StartTerm(sent);
      absl::MutexLock lock(&mu_);
      if (won.has_value()) {
        holds_key_ = true;
        hold_ = *won;
        term_end_ = renewed_at_ + options_.ttl - margin_;
        leader_since_ = clock_->Now();
        leader_address_ = options_.advertised_address;
        leader_term_ = won->create_revision;
        leader_seen_at_ = sent;
      } else {
        leader_address_ = holder.value();
        leader_term_ = holder.create_revision();
        leader_seen_at_ = sent;
      }
    }
  }
  const bool now_leading = leading();
  Report(now_leading);
  // A standby asks twice as often, to take over soon after a leader resigns or lapses.
  return sent + (now_leading ? round : round / 2);
}

void LeaderElection::StartTerm(absl::Time now) {
  if (!options_.on_term_start) return;
  absl::Time seen;
  {
    absl::MutexLock lock(&mu_);
    seen = leader_seen_at_;
  }
  options_.on_term_start(seen == absl::InfinitePast() ? absl::InfiniteDuration() : now - seen);
}

void LeaderElection::Report(bool now_leading) {
  {
    absl::MutexLock lock(&mu_);
    if (reported_leading_ == now_leading) return;
    reported_leading_ = now_leading;
    if (!now_leading) leader_since_ = absl::InfinitePast();
  }
  MR_LOG(kInfo, kLogBroker) << "leader election: " << options_.advertised_address
                            << (now_leading ? " leads" : " stands by");
  if (options_.on_change) options_.on_change(now_leading);
}

absl::Status LeaderElection::CheckLeader() const {
  if (RemainingTerm() > absl::ZeroDuration()) return absl::OkStatus();
  const std::string leader = leader_address();
  const bool self = leader == options_.advertised_address;
  return WithLeaderAddress(
      NotLeaderError(leader.empty() || self
                         ? "this broker is a standby and no broker leads now"
                         : absl::StrCat("this broker is a standby; the leader is ", leader)),
      self ? "" : leader);
}

absl::Duration LeaderElection::RemainingTerm() const {
  absl::MutexLock lock(&mu_);
  if (!holds_key_) return absl::ZeroDuration();
  return std::max(absl::ZeroDuration(), term_end_ - clock_->Now());
}

std::string LeaderElection::leader_address() const {
  absl::MutexLock lock(&mu_);
  return leader_address_;
}

absl::Time LeaderElection::leader_since() const {
  absl::MutexLock lock(&mu_);
  return leader_since_;
}

ElectionState LeaderElection::State() const {
  absl::MutexLock lock(&mu_);
  ElectionState state;
  const absl::Time now = clock_->Now();
  state.leading = holds_key_ && term_end_ > now;
  // A term of its own that ended: no leader known until the next round reads the key.
  const bool stale = !state.leading && leader_address_ == options_.advertised_address;
  state.leader_address = stale ? "" : leader_address_;
  state.term = stale ? 0 : leader_term_;
  if (state.leading) {
    state.leading_for = now - leader_since_;
    state.remaining_term = term_end_ - now;
  }
  return state;
}

}  // namespace mailroom::broker
