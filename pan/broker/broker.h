// Provides Broker, the token broker's logic behind its RPCs: it owns the SMTP / OAuth
// settings and the only copy of the credential, keeps one access token fresh for the
// cluster (TokenCache), hands out send permits (SendQuota), runs Test Connection, saves
// settings only after a passed test of exactly those settings, raises the
// client-secret-expiry alarm at each configured lead time once, and, for each mailbox with SMTP
// and Graph fallback (the default one or a pool mailbox), keeps its effective transport
// (MailboxFallbacks, persisted with the settings) from what the nodes report for that mailbox
// and what Test Connection of that mailbox finds. It sends through a pool of
// mailboxes (mailbox_pool.h): the default one and any pool mailboxes of the settings, each
// with its own limits in the send quota and its own transport, all with tokens of the one
// credential, and answers which mailboxes carry a purpose's mail. Roles and RPC plumbing
// live in BrokerService; nothing here knows about gRPC. Thread-safe.
#ifndef MAILROOM_PAN_BROKER_BROKER_H_
#define MAILROOM_PAN_BROKER_BROKER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/node/alarm_reporter.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "common/base/diagnosis.h"
#include "pan/broker/connection_tester.h"
#include "pan/broker/mailbox_pool.h"
#include "pan/broker/send_quota.h"
#include "pan/broker/settings_store.h"
#include "pan/broker/token_cache.h"
#include "pan/broker/token_client.h"
#include "pan/broker/transport_fallback.h"
#include "proto/mailroom/broker/v1/broker.pb.h"
#include "proto/mailroom/status/v1/status.pb.h"

namespace mailroom::broker {

namespace v1 = ::mailroom::broker::v1;

struct BrokerOptions {
  std::string node_name = "broker";
  std::string default_authority_host;
  TokenCachePolicy token_policy;
  // Days before expiry at which the expiry alarm fires; default 30, 14, 7, 1, 0.
  std::vector<int> expiry_alarm_days = {30, 14, 7, 1, 0};
  SendLimitValues send_limits;
  // How long a passed Test Connection allows saving its settings.
  absl::Duration test_validity = absl::Minutes(15);
  // How often the expiry check runs in the background.
  absl::Duration expiry_check_interval = absl::Hours(1);
  // Minimum interval between refreshes forced by InvalidateAccessToken.
  absl::Duration forced_refresh_min_interval = absl::Minutes(1);
  // How long Test Connection waits for one of the mailbox's connection slots (and, with a
  // test message, a message permit) while the nodes hold them, before it says so.
  absl::Duration test_connection_wait = absl::Seconds(10);
  // When a mailbox with SMTP and Graph fallback moves to Graph on connect failures.
  FallbackPolicy fallback;
};

// Makes the token client for resolved settings (EntraTokenClient over libcurl in `main`).
using TokenClientFactory =
    std::function<absl::StatusOr<std::unique_ptr<TokenClient>>(const v1::SmtpSettings&)>;

class Broker {
 public:
  // Every pointer must outlive the broker. `random_unit` feeds backoff jitter.
  Broker(BrokerOptions options, SettingsStore* store, const Clock* clock,
         TokenClientFactory token_client_factory, ConnectionTester* tester,
         AlarmReporter* alarms, std::function<double()> random_unit);
  ~Broker();

  // Loads saved settings and starts the token refresher and the expiry check.
  absl::Status Start();
  void Stop();
  // Takes up the settings the store holds now when they differ from the active ones (another
  // broker saved them: brokers elected through etcd, SettingsStore::Sync). Settings that
  // differ only in their metadata (alarm marks) keep the token cache; others start anew.
  absl::Status ReloadSettings();

  absl::StatusOr<v1::GetAccessTokenResponse> GetAccessToken(const v1::GetAccessTokenRequest& request);
  absl::StatusOr<v1::InvalidateAccessTokenResponse> InvalidateAccessToken(
      const v1::InvalidateAccessTokenRequest& request);
  v1::GetSettingsResponse GetSettings();
  // Runs Test Connection; `progress` sees each step event. INVALID_ARGUMENT (naming the
  // field) before any step for bad settings.
  absl::StatusOr<v1::TestConnectionReport> TestConnection(const v1::TestConnectionRequest& request,
                                                          const ConnectionTester::Progress& progress);
  absl::StatusOr<v1::UpdateSettingsResponse> UpdateSettings(const v1::UpdateSettingsRequest& request,
                                                            const std::string& updated_by);
  v1::GetSecretStatusResponse GetSecretStatus();

  // Raises the expiry alarm for every lead time that has come due and not yet fired.
  void CheckSecretExpiry();

  // Records send results in the quota; a 5.2.0 (quota exceeded) pauses the mailbox and
  // raises SEND_QUOTA_EXCEEDED with the time sending resumes.
  // `lease_cap` as SendQuota::Report's.
  absl::StatusOr<v1::ReportSendResultResponse> ReportSendResult(
      const std::string& node, const v1::ReportSendResultRequest& request,
      absl::Duration lease_cap = absl::InfiniteDuration());
  // Ends a pause early (an admin fixed the cause) and clears its alarm.
  absl::StatusOr<v1::ResumeMailboxResponse> ResumeMailbox(const v1::ResumeMailboxRequest& request,
                                                          const std::string& admin);
  // Clears the alarms of pauses that have ended; returns when the next pause ends
  // (InfiniteFuture if none is alarmed).
  absl::Time CheckPauses();

  // Which mailboxes carry a purpose's mail and, with a From address, which of them may send
  // as it (INVALID_ARGUMENT naming "from" when none may).
  absl::StatusOr<v1::ResolveMailRouteResponse> ResolveMailRoute(
      const v1::ResolveMailRouteRequest& request);

  SendQuota& quota() { return quota_; }
  // The send quota per mailbox (all if `mailbox` is empty), each with its effective transport.
  std::vector<v1::MailboxQuota> QuotaStatus(const std::string& mailbox);
  // The transport a mailbox of the pool sends by now: SMTP or GRAPH (UNSPECIFIED if
  // unconfigured or not in the pool); "" is the default mailbox.
  v1::MailTransport EffectiveTransport(const std::string& mailbox = "");
  // The configured (default) mailbox ("" if unconfigured), for permit requests naming none.
  std::string mailbox();
  // The mailbox a node's request names, as configured: "" is the default mailbox, any other
  // name a pool mailbox (without regard to case). NOT_FOUND naming "mailbox" for a name not in
  // the pool; FAILED_PRECONDITION "SETTINGS_NOT_CONFIGURED" before settings are saved.
  absl::StatusOr<std::string> SendingMailbox(const std::string& requested);
  // Token cache statistics of the active settings (zero if unconfigured).
  TokenCacheStats token_stats();
  // The broker's part of NodeStatus: the token as the cache holds it (never the token), its
  // health, the send quota per mailbox with any pause, and the credential's expiry.
  absl::Status FillStatus(mailroom::status::v1::GetNodeStatusResponse* response);

 private:
  struct Active {
    SavedSettings saved;
    v1::SmtpSettings resolved;
    std::string etag;
    std::string trust_pem;  // the SMTP trust store resolved to PEM for role nodes
    std::unique_ptr<MailboxPool> pool;  // the default mailbox and the pool mailboxes
    std::unique_ptr<TokenClient> client;
    std::unique_ptr<TokenCache> cache;
    // Graph's tokens (scope https://graph.microsoft.com/.default, the same credential), made
    // on the first request for one, so a cluster that never uses Graph never fetches them.
    absl::Mutex graph_mu;
    uint64_t generation = 0;
    std::unique_ptr<TokenClient> graph_client ABSL_GUARDED_BY(graph_mu);
    std::unique_ptr<TokenCache> graph_cache ABSL_GUARDED_BY(graph_mu);
    ~Active();
  };
  struct TestRecord {
    std::string fingerprint;
    absl::Time time;
    bool passed;
    v1::TestConnectionReport report;
  };
  // Test Connection's share of a mailbox in the send ledger (send_quota.h).
  struct TestShare {
    std::string mailbox;
    std::string connection_id;
    std::string permit_id;  // empty without a test message
    bool held = false;
  };

  // Takes a connection slot (and a message permit) for Test Connection, waiting up to
  // test_connection_wait; else an error whose Diagnosis names what is in use.
  absl::Status TakeTestShare(bool with_message, TestShare* share);
  // Gives the share back once the test's session has ended, reporting the test message if it
  // was sent.
  void ReturnTestShare(const TestShare& share, const v1::TestConnectionReport& report);

  absl::StatusOr<std::shared_ptr<Active>> Activate(SavedSettings saved);
  // Raises, escalates or clears TOKEN_ACQUISITION_FAILED as the token cache of activation
  // `generation` reports; reports of a cache since replaced are ignored.
  // `dedup_key` tells the SMTP token's alarm ("token-acquisition") from Graph's.
  void OnTokenHealth(uint64_t generation, const std::string& mailbox, const TokenHealth& health,
                     absl::string_view dedup_key = "token-acquisition");
  // The token cache for `transport` (Graph's made and started on first use).
  absl::StatusOr<TokenCache*> CacheFor(Active& active, v1::MailTransport transport);
  // Starts without the saved settings (as if none were saved), with an ERROR log line and a
  // CRITICAL alarm saying `why`: a state file that fails authentication is never used.
  void RefuseSavedSettings(const absl::Status& why);
  std::shared_ptr<Active> active();
  // Feeds `event` to the fallback state machine of `mailbox` (its configured address; nothing
  // when it has no fallback); when it moves the mailbox, persists the new state with the
  // settings and raises or clears that mailbox's MAIL_TRANSPORT_FALLBACK (`diagnosis` says why
  // it moved to Graph, if known).
  void FeedFallback(const std::string& mailbox,
                    const std::function<bool(TransportFallback&)>& event,
                    const Diagnosis& diagnosis = Diagnosis());
  // What the nodes' send results for `mailbox` say about SMTP to its fallback state machine.
  void NoteSendResults(const std::string& mailbox, const std::string& node,
                       const std::vector<v1::SendResult>& results);
  void ClearPauseAlarm(const std::string& mailbox, const std::string& reason);
  // Clears the expiry alarms of a credential that a new one replaced.
  void ClearExpiryAlarms(const v1::SmtpSettings& replaced, const std::string& updated_by);
  v1::CredentialStatus CredentialStatusOf(const SavedSettings& saved, absl::Time now) const;
  v1::SmtpSettings PublicView(const v1::SmtpSettings& resolved) const;

  const BrokerOptions options_;
  SettingsStore* store_;
  const Clock* clock_;
  TokenClientFactory token_client_factory_;
  ConnectionTester* tester_;
  AlarmReporter* alarms_;
  std::function<double()> random_unit_;
  SendQuota quota_;

  absl::Mutex mu_;
  std::shared_ptr<Active> active_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, TestRecord> tests_ ABSL_GUARDED_BY(mu_);
  int64_t next_test_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_test_connection_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Time last_forced_refresh_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Mailboxes whose pause raised SEND_QUOTA_EXCEEDED, and when that pause ends.
  std::map<std::string, absl::Time> alarmed_pauses_ ABSL_GUARDED_BY(mu_);
  // Counts activations: only the newest token cache speaks for the broker's token.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // The effective transport of each mailbox of the active settings with fallback.
  MailboxFallbacks fallbacks_ ABSL_GUARDED_BY(mu_);
  // Runs CheckSecretExpiry every expiry_check_interval.
  BackgroundLoop expiry_checker_;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_BROKER_H_
