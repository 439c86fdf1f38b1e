// Provides TransportFallback, the state machine of a mailbox with
// MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK: which transport its mail goes out by (SMTP or
// Graph), when it moves to Graph (a 535 5.7.139 at once; an unreachable SMTP endpoint only after
// a run of connect failures that lasts, so one blip never moves it) and back (an SMTP Test
// Connection passed). The broker feeds it what the nodes report and persists state() in its
// sealed BrokerState. Not thread-safe: the broker calls it under its own lock.
#ifndef MAILROOM_PAN_BROKER_TRANSPORT_FALLBACK_H_
#define MAILROOM_PAN_BROKER_TRANSPORT_FALLBACK_H_

#include <string>

#include "absl/time/time.h"
#include "common/base/clock.h"
#include "proto/mailroom/broker/v1/settings.pb.h"

namespace mailroom::broker {

struct FallbackPolicy {
  // SMTP connect failures in a row (from any nodes, no SMTP delivery between) that move the
  // mailbox to Graph, provided they span at least `connect_outage`: nodes retry with backoff,
  // so a short outage yields a few quick failures and a long one keeps failing.
  int connect_failures = 5;
  absl::Duration connect_outage = absl::Minutes(2);
};

class TransportFallback {
 public:
  // `clock` must outlive this object.
  TransportFallback(const Clock* clock, FallbackPolicy policy);

  // Starts over for newly active settings: `enabled` when they choose SMTP with Graph fallback;
  // `saved` is the state persisted with them (unset transport: SMTP since `saved_since`).
  void Reset(bool enabled, const v1::EffectiveTransport& saved, absl::Time saved_since);

  bool enabled() const { return enabled_; }
  // SMTP or GRAPH (always SMTP when not enabled).
  v1::MailTransport effective() const { return state_.transport(); }
  const v1::EffectiveTransport& state() const { return state_; }

  // Each returns true when the mailbox moved (state() then says to what, since when and why).
  // `node` reported a 535 5.7.139 (`reply`): to Graph at once.
  bool OnSmtpAuthDisabled(const std::string& node, const std::string& reply);
  // `node` could not connect to the SMTP endpoint (`detail` names how).
  bool OnSmtpConnectFailure(const std::string& node, const std::string& detail);
  // A message went out through SMTP: the endpoint is reachable; a run of failures ends.
  void OnSmtpDelivered();
  // An admin's Test Connection of the mailbox's SMTP passed: back to SMTP.
  bool OnSmtpTestPassed();

 private:
  bool MoveTo(v1::MailTransport transport, std::string reason);

  const Clock* clock_;
  const FallbackPolicy policy_;
  bool enabled_ = false;
  v1::EffectiveTransport state_;
  // The present run of connect failures (kept in memory only: a restarted broker starts a
  // new run, which at worst delays a fallback by one run).
  int connect_failures_ = 0;
  absl::Time first_connect_failure_ = absl::InfiniteFuture();
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_TRANSPORT_FALLBACK_H_
