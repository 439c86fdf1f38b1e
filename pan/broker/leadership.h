// Provides Leadership, what the broker's RPC edge asks before it grants anything when brokers
// are elected (pan/broker/leader_election.h): whether this broker leads now, and how much of
// its term is left, so that no permit or connection slot it grants outlives the term. A null
// Leadership is single-broker mode: always leading, no term. Implementations are
// thread-safe.
#ifndef MAILROOM_PAN_BROKER_LEADERSHIP_H_
#define MAILROOM_PAN_BROKER_LEADERSHIP_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::broker {

// The reason every refusal for want of leadership carries (the election, the quota ledger's
// and the settings record's fenced writes): role nodes wait for the next leader on it.
inline constexpr char kNotLeaderReason[] = "NOT_LEADER";

// UNAVAILABLE with reason NOT_LEADER and `message`.
inline absl::Status NotLeaderError(absl::string_view message) {
  return WithReason(absl::UnavailableError(message), kNotLeaderReason);
}

class Leadership {
 public:
  virtual ~Leadership() = default;
  // OK while this broker leads; else UNAVAILABLE with reason NOT_LEADER and the leader's
  // address (status_grpc.h: WithLeaderAddress), empty while none is known.
  virtual absl::Status CheckLeader() const = 0;
  // How long this broker may still act as leader (zero or less: it does not lead).
  virtual absl::Duration RemainingTerm() const = 0;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_LEADERSHIP_H_
