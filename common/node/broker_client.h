// Provides what a role node (PAN, PSN, MnT) needs from the token broker, with the outage
// behaviour the design promises: BrokerTokenSource keeps the last access token and submission
// settings it got and refreshes them in the background at the broker's refresh point, so no
// send waits for the broker in steady state, and a broker outage is invisible while the
// cached token is still valid; BrokerPermits wraps the send-permit RPCs. Both call through
// BrokerEndpoints (one broker, or the leader of several), which takes the generated stub
// interface, so tests can inject a fake broker. A token source serves one mailbox of the pool
// (the default one unless Options.mailbox names another); BrokerPermits asks for any. Thread-safe.
#ifndef MAILROOM_COMMON_BROKER_CLIENT_H_
#define MAILROOM_COMMON_BROKER_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "common/node/alarm_reporter.h"
#include "common/node/broker_endpoints.h"
#include "common/rpc/curl_proxy.h"
#include "proto/mailroom/broker/v1/broker.grpc.pb.h"

namespace mailroom {

// What a node needs to submit: the token and where to send it, as of one broker answer.
struct SubmissionGrant {
  std::string access_token;  // empty when the settings use no authentication
  std::string token_fingerprint;
  absl::Time expire_time;  // by this node's clock (broker's expires_in from receipt)
  absl::Duration lifetime = absl::InfiniteDuration();  // issue to expiry, as the IdP granted
  std::string mailbox;
  std::string smtp_host;
  int smtp_port = 0;
  absl::Duration connection_timeout;
  std::string trust_pem;
  bool use_system_roots = true;
  std::string settings_etag;
  // The proxy SMTP (and Graph) go through (empty url: directly). Its credentials are a
  // secret: kept in memory only and registered with the redactor as they arrive.
  ProxyConfig proxy;
  // The transport the token is for, and so the one to submit with (SMTP unless the broker's
  // settings choose Graph for the mailbox); for Graph, its base URL.
  mailroom::broker::v1::MailTransport transport = mailroom::broker::v1::MAIL_TRANSPORT_SMTP;
  std::string graph_endpoint;
  // The settings choose SMTP with Graph fallback: a 535 5.7.139 on SMTP is reported to the
  // broker (ReportRejected), which moves the mailbox to Graph, and the message is sent again
  // through Graph rather than failed.
  bool graph_fallback = false;
};

// The token a node holds, as status shows it: never the token itself.
struct HeldToken {
  bool held = false;
  // Valid now with the node's margins (what Get() would return without asking the broker).
  bool usable = false;
  // False when the settings use no authentication (no token; the times are infinite).
  bool authentication = true;
  absl::Time expire_time = absl::InfinitePast();
  absl::Duration lifetime = absl::ZeroDuration();
  // The sending mailbox the broker named with it.
  std::string mailbox;
  // The last failure to get one from the broker; OK after a success.
  absl::Status last_error;
};

class BrokerTokenSource {
 public:
  struct Options {
    std::string node_name;
    // A token with less than this left is not used (Exchange refuses tokens about to expire);
    // for short-lived tokens, an eighth of the lifetime if that is less
    // (common/base/token_margins.h).
    absl::Duration min_validity = absl::Minutes(5);
    // Retry interval while the broker cannot be reached.
    absl::Duration retry_interval = absl::Seconds(5);
    absl::Duration rpc_timeout = absl::Seconds(10);
    // The mailbox of the pool to get tokens for (GetAccessTokenRequest.mailbox); empty: the
    // default mailbox (the settings' Username).
    std::string mailbox;
  };

  // `brokers`, `clock` and `alarms` must outlive this object. `alarms` (may be null) hears
  // TOKEN_ACQUISITION_FAILED from this node when it has no usable token and the broker cannot
  // give one, and its clearing once it has one again.
  BrokerTokenSource(BrokerEndpoints* brokers, const Clock* clock, Options options,
                    AlarmReporter* alarms = nullptr);
  ~BrokerTokenSource();

  // Starts the background refresher (first fetch at once).
  void Start();
  void Stop();

  // The cached grant if it is still valid for min_validity; otherwise asks the broker now.
  // UNAVAILABLE (with the broker's diagnosis, if it gave one) when neither works.
  absl::StatusOr<SubmissionGrant> Get();

  // The mailbox refused the token (535): tell the broker (it refetches, rate-limited) and
  // drop the cached one so the next Get() asks for a fresh token.
  void ReportRejected(const std::string& fingerprint, int smtp_code, const std::string& reply);

  // The broker says the mailbox's mail now goes out by `transport` (with a send permit): a
  // cached grant for the other transport is dropped, so the next Get() asks for this one.
  void ExpectTransport(mailroom::broker::v1::MailTransport transport);

  // What this node holds now, for status; never asks the broker.
  HeldToken held() const;

  // A source of tokens for another mailbox of the pool (README "Mailbox pool"), with these
  // options otherwise and no alarm reporter (the default mailbox's source reports the node's
  // token alarm). Not started: its Get() asks the broker when its grant is not usable.
  std::unique_ptr<BrokerTokenSource> ForMailbox(std::string mailbox) const;

  // For tests and metrics.
  int64_t broker_calls() const;

 private:
  // Asks the broker (single flight: a concurrent caller waits for the fetch in progress).
  // Releases mu_ during the call.
  absl::Status FetchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The refresher's step: fetches if the refresh point has come; returns when to look again.
  absl::Time RefreshStep();
  bool UsableLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Raises or clears this node's token alarm when usability changed since the last report.
  void ReportUsabilityLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  BrokerEndpoints* const brokers_;
  const Clock* clock_;
  const Options options_;
  AlarmReporter* const alarms_;

  mutable absl::Mutex mu_;
  absl::optional<SubmissionGrant> grant_ ABSL_GUARDED_BY(mu_);
  // Whether the alarm was last told "usable" (true) or "not" (false); empty before the first.
  absl::optional<bool> reported_usable_ ABSL_GUARDED_BY(mu_);
  absl::Time refresh_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  int64_t broker_calls_ ABSL_GUARDED_BY(mu_) = 0;
  // The transport to ask the broker's token for: the mailbox's, as the broker last said.
  mailroom::broker::v1::MailTransport transport_ ABSL_GUARDED_BY(mu_) =
      mailroom::broker::v1::MAIL_TRANSPORT_SMTP;
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;
  // Woken whenever refresh_at_ changes.
  BackgroundLoop refresher_;
};

// Send permits from the broker (cluster-wide Exchange limits).
class BrokerPermits {
 public:
  // `brokers` must outlive this object.
  BrokerPermits(BrokerEndpoints* brokers, std::string node_name,
                absl::Duration rpc_timeout = absl::Seconds(10));

  // `priority`: the class of every message asked for (one class a request). `offline_sends`:
  // messages sent on the offline allowance that no broker has counted yet; with them,
  // `recipient_counts` may be empty (a report only).
  absl::StatusOr<mailroom::broker::v1::AcquireSendPermitResponse> Acquire(
      const std::string& connection_id, const std::vector<int>& recipient_counts,
      mailroom::common::v1::SendPriority priority =
          mailroom::common::v1::SEND_PRIORITY_UNSPECIFIED,
      const std::vector<mailroom::broker::v1::OfflineSend>& offline_sends = {},
      const std::string& mailbox = "");
  absl::StatusOr<mailroom::broker::v1::ReportSendResultResponse> Report(
      const std::string& permit_id, const std::vector<mailroom::broker::v1::SendResult>& results,
      bool connection_closed);
  absl::Status Release(const std::string& permit_id, const std::string& connection_id,
                       bool connection_closed);
  // Which mailboxes carry `purpose`'s mail, most preferred first (TokenBroker.ResolveMailRoute);
  // UNIMPLEMENTED from a broker older than the mailbox pool. With `from`, also which of them
  // may send as it (INVALID_ARGUMENT naming `from` when none may).
  absl::StatusOr<mailroom::broker::v1::ResolveMailRouteResponse> ResolveMailRoute(
      mailroom::common::v1::MailPurpose purpose, const std::string& from = "");
  // Tells the broker that this node has just started: the permits and connection slots of its
  // previous run end now.
  absl::Status EndPreviousRun();

  // The deadline of each call: how long one may keep the caller waiting.
  absl::Duration rpc_timeout() const { return rpc_timeout_; }

 private:
  absl::Status CallRelease(mailroom::broker::v1::ReleaseSendPermitRequest request);

  BrokerEndpoints* const brokers_;
  const std::string node_name_;
  const absl::Duration rpc_timeout_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BROKER_CLIENT_H_
