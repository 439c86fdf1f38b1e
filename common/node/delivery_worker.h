// Provides DeliveryWorker, a role node's sender: it drains the node's durable outbox over up
// to N SMTP connections (Exchange allows 3 per mailbox, cluster-wide), each message sent only
// under a send permit from the broker and with the broker's access token, and records every
// outcome in the outbox: 2xx → SENT; 4xx and network errors → retried with backoff (and not
// before a server's Retry-After: Graph's 429/503); 5xx →
// FAILED with an alarm; 535 → the token is reported, a fresh one fetched and the message
// retried once, then FAILED with the named cause and an alarm; 5.2.0 quota exceeded → the
// broker pauses the mailbox and the message waits until the window rolls over; with Graph
// fallback, 535 5.7.139 (SMTP AUTH disabled) → reported to the broker, which moves the mailbox
// to Graph, and the message is sent again through Graph (retried, never failed). While the
// broker cannot be reached, a small allowance keeps mail flowing on the cached token. It
// keeps the last failed attempt and each delivery's end-to-end latency for status.
// Mail goes through the broker's mailbox pool by purpose (README "Mailbox pool"): each
// message's kind → MailPurpose → the route's mailboxes (TokenBroker.ResolveMailRoute, cached
// per settings etag); a batch holds one route's messages and goes through one mailbox, the
// first of the route whose permit is not refused for a 5.2.0 pause, with that mailbox's token
// and permit; an SMTP connection serves one mailbox at a time (its XOAUTH2 user), and closes
// to change. Unrouted mail, and all mail against a broker without ResolveMailRoute, goes
// through the default mailbox. The offline allowance is the default mailbox's only.
// The broker counts each message until it is reported, or while unreported until its permit's
// lease ends, and each connection slot until the node says it closed the connection or its
// lease ends (pan/broker/send_quota.h), so the worker keeps to the leases as it reckons them
// from before each request, less a margin for clock-rate differences: it sends no message after
// the permit's lease (a send still running then is cut off), closes an SMTP connection before
// its slot's lease runs out (also before a broker call that could outlast it), closes the
// connection before reporting a message that got no final reply, and at Start tells the broker
// that the node's previous run is over (a process killed with kill -9 sends nothing more).
// Thread-safe; Start() runs one thread per connection.
#ifndef MAILROOM_COMMON_DELIVERY_WORKER_H_
#define MAILROOM_COMMON_DELIVERY_WORKER_H_

#include <deque>
#include <map>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/node/alarm_reporter.h"
#include "common/node/broker_client.h"
#include "common/node/mail_routes.h"
#include "common/node/offline_allowance.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "common/base/diagnosis.h"
#include "common/outbox/outbox.h"
#include "common/mail/mail_purpose.h"
#include "common/mail/smtp_client.h"

namespace mailroom {

// One SMTP connection as the worker uses it (SmtpSession in production; a fake in tests).
class MailSubmitter {
 public:
  virtual ~MailSubmitter() = default;
  virtual void SetBearerToken(std::string token) = 0;
  // Sends within `time_limit` (connecting included); past it the transfer is dropped.
  virtual SendResult Send(const std::string& envelope_from,
                          const std::vector<std::string>& recipients, const std::string& message,
                          absl::Duration time_limit) = 0;
  virtual void Close() = 0;
};

// Makes a submitter for the endpoint and mailbox of a grant.
using SubmitterFactory =
    std::function<std::unique_ptr<MailSubmitter>(const SubmissionGrant& grant)>;

// The production factory: an SmtpSession per connection, trusting the grant's CA bundle.
SubmitterFactory SmtpSubmitterFactory(absl::Duration max_connection_age = absl::Minutes(10));

// The histogram of end-to-end delivery latency (enqueue to the server's 250 after DATA), per
// node (label "node"), with kLongLatencyBuckets.
inline constexpr char kDeliveryLatencyMetric[] = "mailroom_delivery_latency_seconds";

// A delivery attempt that did not end in the server's acceptance, as status shows it.
struct DeliveryErrorRecord {
  absl::Time time;
  std::string notification_id;
  // What became of the notification: "retried", "failed" or "paused" (quota).
  std::string outcome;
  int reply_code = 0;
  Diagnosis diagnosis;
};

struct DeliveryOptions {
  std::string node_name;
  // SMTP connections this node opens at once (each also needs a cluster-wide slot).
  int connections = 3;
  // Messages claimed and permitted per round on one connection.
  int batch = 10;
  // An idle connection is closed (and its broker slot freed) after this long; below the
  // broker's 60 s connection lease.
  absl::Duration idle_close = absl::Seconds(45);
  // How long to wait before asking again when the broker cannot be reached.
  absl::Duration broker_retry = absl::Seconds(5);
  // How much earlier than the broker's lease the node lets a permit or connection slot end:
  // the larger of this fraction of the lease and lease_margin_min, against clock-rate
  // differences between node and broker, and the last bytes still in flight.
  double lease_margin_fraction = 0.05;
  absl::Duration lease_margin_min = absl::Seconds(1);
  // When no leading broker has answered this node for offline_grace (none reachable, or
  // standbys saying NOT_LEADER), it still sends up to this many messages a minute on its cached
  // token, on one connection, without permits: a third of Exchange's 30/minute, so three nodes
  // cut off together stay under the mailbox's limit (the sum over the nodes must not exceed
  // messages_per_minute). 0 stops sending whenever no broker leads.
  int offline_messages_per_minute = 10;
  // How long without an answer from a leading broker before the offline allowance begins:
  // longer than the rolling minute plus the sends still running on earlier permits, so that
  // nothing the brokers granted shares a minute at the MTA with offline sends. A failover
  // (about the brokers' lease TTL) never reaches it.
  absl::Duration offline_grace = absl::Seconds(75);
  // Each offline send is reported to the next leading broker (AcquireSendPermitRequest
  // .offline_sends), which counts it; with no mail to ask a permit for, the node tries to
  // report this often (below the broker's kOfflineReportHold, 4 s).
  absl::Duration offline_report_interval = absl::Seconds(2);
  // While the mailbox is paused (5.2.0), waiting mail asks the broker again this often rather
  // than at the pause's end, so an admin's `quota resume` takes effect within it.
  absl::Duration pause_recheck = absl::Minutes(1);
};

class DeliveryWorker {
 public:
  // Every pointer must outlive the worker.
  DeliveryWorker(Outbox* outbox, BrokerTokenSource* tokens, BrokerPermits* permits,
                 AlarmReporter* alarms, const Clock* clock, DeliveryOptions options,
                 SubmitterFactory submitters);
  ~DeliveryWorker();

  void Start();
  // Stops after the messages in hand are recorded; claimed-but-unsent ones are released.
  void Stop();
  // Wakes the connections (new work was queued).
  void Wake();

  // The last attempt that did not end in the server's acceptance; nullopt if none yet.
  absl::optional<DeliveryErrorRecord> last_error() const;

 private:
  struct Connection;
  // The connection's loop step: closes it if idle, runs a round; returns when to run again.
  absl::Time Step(Connection& connection);
  void CloseIfIdle(Connection& connection);
  // Closes the SMTP connection and gives its broker slot back.
  void CloseAndReleaseSlot(Connection& connection);
  // After a round that sent nothing: the next due entry, idle close or the end of a wait
  // for a connection slot, at most a minute away.
  absl::Time NextRoundTime(const Connection& connection);
  // Whether the connection may send and an entry is due.
  bool WorkIsDue(const Connection& connection);
  // A broker lease of `lease` asked for at `asked`, as this node must keep to it.
  absl::Time LeaseEnd(absl::Time asked, absl::Duration lease) const;
  // When the connection must be closed: idle too long, or its slot's lease ending.
  absl::Time CloseBy(const Connection& connection) const;
  // Closes the SMTP connection (the broker slot stays held until released or reported).
  void CloseSubmitter(Connection& connection);
  // Closes the connection unless its slot's lease outlasts the next `busy` (a broker call
  // that may take that long): it must never be open once the broker stops counting it.
  void CloseUnlessLeaseCovers(Connection& connection, absl::Duration busy);
  // One round on a connection: token, claim, permit, send, record. Returns whether it sent.
  bool Round(Connection& connection);
  // The broker's permit for the batch, or the offline allowance when the broker cannot be
  // reached (connection 0 only).
  absl::StatusOr<mailroom::broker::v1::AcquireSendPermitResponse> AcquirePermit(
      const Connection& connection, const std::vector<ClaimedNotification>& batch,
      const std::string& mailbox);
  // The claimed batch's first message's route, with the messages of the same route; the others
  // go back to the outbox untouched (no attempt spent).
  std::vector<ClaimedNotification> KeepOneRoute(std::vector<ClaimedNotification> claimed,
                                                std::vector<std::string>* route);
  // The token source for `mailbox` ("" the default one, given at construction).
  BrokerTokenSource* TokensFor(const std::string& mailbox);
  // No permit: the batch goes back to the outbox, to wait as the broker said.
  void HoldDenied(Connection& connection, const std::vector<ClaimedNotification>& batch,
                  const absl::StatusOr<mailroom::broker::v1::AcquireSendPermitResponse>& permit);
  // Opens (or reopens, after a settings change) the connection's submitter for `grant`.
  void UseGrant(Connection& connection, const SubmissionGrant& grant);
  // Sends the first `granted` messages of the batch, records each outcome and reports them
  // to the broker. A 535 may replace `grant` with a fresh one.
  void SendBatch(Connection& connection, const std::vector<ClaimedNotification>& batch,
                 size_t granted, const mailroom::broker::v1::AcquireSendPermitResponse& permit,
                 absl::Time permit_end, SubmissionGrant& grant);
  // One send; after the first 535 of a batch, reports the token, fetches a fresh one and
  // retries once.
  SendResult Submit(Connection& connection, const ClaimedNotification& message,
                    SubmissionGrant& grant, absl::Time send_by, bool* retried_auth);
  // With Graph fallback, SMTP refused with 535 5.7.139: reports it to the broker (which moves
  // the mailbox to Graph) and sends the message again through Graph; `refused`, as a transient
  // failure, if no Graph grant comes.
  SendResult FallBackToGraph(Connection& connection, const ClaimedNotification& message,
                             SubmissionGrant& grant, absl::Time send_by, SendResult refused);
  // SENT, retry or FAILED (with an alarm) in the outbox, and the counters; a delivery's
  // latency into kDeliveryLatencyMetric.
  void RecordOutcome(const ClaimedNotification& message, const SendResult& sent,
                     const AttemptReport& report);
  // Counts an outcome that was not a delivery and keeps it as last_error().
  void NoteFailure(const ClaimedNotification& message, const SendResult& sent,
                   absl::string_view outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // 5.2.0 quota exceeded: reports `results` (emptied) so the broker pauses the mailbox, and
  // holds the message until the pause ends, which it returns.
  // With `elsewhere` (the route has another mailbox), the message is due again at once, to go
  // through it.
  absl::Time PauseForQuota(const ClaimedNotification& message, const SendResult& sent,
                           const AttemptReport& report,
                           const mailroom::broker::v1::AcquireSendPermitResponse& permit,
                           bool elsewhere, std::vector<mailroom::broker::v1::SendResult>* results);
  void RaiseDeliveryAlarm(const ClaimedNotification& message, const Diagnosis& diagnosis);
  // Writes an outcome to the outbox; if the outbox cannot take it (disk full, database
  // locked), says so (ERROR line, mailroom_outbox_record_failures_total, an alarm) and keeps
  // it to write again before any new message is claimed, so a sent message is never left
  // SENDING to be sent again, nor a failed one forgotten.
  void Record(const ClaimedNotification& message, const char* what,
              std::function<absl::Status()> write);
  // Writes the outcomes kept by Record; true when none is left.
  bool RecordKeptOutcomes();
  // Asks for a permit, with the offline sends no broker has counted yet; once a broker has
  // answered (whatever it said) they are counted and forgotten here.
  absl::StatusOr<mailroom::broker::v1::AcquireSendPermitResponse> AcquireReporting(
      const Connection& connection, const std::vector<int>& recipient_counts,
      mailroom::common::v1::SendPriority priority, const std::string& mailbox = "");
  // With no mail to ask a permit for, reports uncounted offline sends every
  // offline_report_interval (connection 0 only).
  void ReportOfflineSendsIfDue(Connection& connection);

  Outbox* outbox_;
  BrokerTokenSource* tokens_;
  BrokerPermits* permits_;
  AlarmReporter* alarms_;
  const Clock* clock_;
  const DeliveryOptions options_;
  SubmitterFactory submitters_;
  MailRoutes routes_;
  OfflineAllowance offline_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::optional<DeliveryErrorRecord> last_error_ ABSL_GUARDED_BY(mu_);
  struct KeptOutcome {
    std::string id;
    const char* what;
    std::function<absl::Status()> write;
  };
  std::deque<KeptOutcome> kept_outcomes_ ABSL_GUARDED_BY(mu_);
  // Token sources of the pool mailboxes other than the default one.
  std::map<std::string, std::unique_ptr<BrokerTokenSource>> mailbox_tokens_ ABSL_GUARDED_BY(mu_);
  // Each with its own thread; a connection's state is touched only by that thread (and by
  // Stop once the thread has ended).
  std::vector<std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_DELIVERY_WORKER_H_
