// Provides TransportFallback, the state machine of a mailbox with
// MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK: which transport its mail goes out by (SMTP or
// Graph), when it moves to Graph (a 535 5.7.139 at once; an unreachable SMTP endpoint only after
// a run of connect failures that lasts, so one blip never moves it) and back (an SMTP Test
// Connection passed); and MailboxFallbacks, one such state machine per mailbox of the pool that
// has fallback, so what is reported for one mailbox moves that mailbox only. The broker feeds
// them what the nodes report and persists their states in its sealed BrokerState. Not
// thread-safe: the broker calls them under its own lock.
#ifndef MAILROOM_PAN_BROKER_TRANSPORT_FALLBACK_H_
#define MAILROOM_PAN_BROKER_TRANSPORT_FALLBACK_H_

#include <map>
#include <string>
#include <vector>

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

// The fallback state machine of each mailbox with SMTP and Graph fallback, by its configured
// address (the default mailbox's included when it has fallback).
class MailboxFallbacks {
 public:
  // `clock` must outlive this object.
  MailboxFallbacks(const Clock* clock, FallbackPolicy policy);

  // Starts over for newly active settings: one state machine for each of `enabled` (the
  // mailboxes with fallback), from its state in `saved` (persisted with the settings; a
  // mailbox missing there is on SMTP since `saved_since`).
  void Reset(const std::vector<std::string>& enabled,
             const std::map<std::string, v1::EffectiveTransport>& saved, absl::Time saved_since);

  // The state machine of the mailbox with fallback named `address` (as configured), or null
  // when it has none.
  TransportFallback* Find(const std::string& address);
  const TransportFallback* Find(const std::string& address) const;

 private:
  const Clock* clock_;
  const FallbackPolicy policy_;
  std::map<std::string, TransportFallback> by_mailbox_;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_TRANSPORT_FALLBACK_H_
