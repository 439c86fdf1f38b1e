#include "common/node/delivery_worker.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/proto_time.h"
#include "common/base/diagnosis.h"
#include "common/base/logging.h"
#include "common/base/metrics.h"

namespace mailroom {
namespace {

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

class SmtpSubmitter final : public MailSubmitter {
 public:
  SmtpSubmitter(SmtpEndpoint endpoint, std::string mailbox)
      : session_(std::move(endpoint), std::move(mailbox)) {}
  void SetBearerToken(std::string token) override { session_.SetBearerToken(std::move(token)); }
  SendResult Send(const std::string& from, const std::vector<std::string>& recipients,
                  const std::string& message) override {
    return session_.Send(from, recipients, message);
  }
  void Close() override { session_.Close(); }

 private:
  SmtpSession session_;
};

std::string DenialText(const bv1::AcquireSendPermitResponse& response) {
  switch (response.denial_reason()) {
    case bv1::PERMIT_DENIAL_REASON_MESSAGE_RATE:
      return "waiting for send permit: messages-per-minute limit reached";
    case bv1::PERMIT_DENIAL_REASON_DAILY_RECIPIENTS:
      return "waiting for send permit: daily recipient limit reached";
    case bv1::PERMIT_DENIAL_REASON_CONNECTIONS:
      return "waiting for send permit: connection limit reached";
    case bv1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED:
      return "waiting: mailbox paused after the submission quota was exceeded";
    default:
      return "waiting for send permit";
  }
}

std::vector<std::string> EnvelopeRecipients(const ClaimedNotification& message) {
  std::vector<std::string> out;
  for (const cv1::Recipient& recipient : message.recipients) {
    out.push_back(recipient.address().address());
  }
  return out;
}

bv1::SendOutcome ToSendOutcome(DeliveryOutcome outcome) {
  switch (outcome) {
    case DeliveryOutcome::kDelivered: return bv1::SEND_OUTCOME_DELIVERED;
    case DeliveryOutcome::kTransient: return bv1::SEND_OUTCOME_TRANSIENT_FAILURE;
    case DeliveryOutcome::kQuotaExceeded: return bv1::SEND_OUTCOME_QUOTA_EXCEEDED;
    default: return bv1::SEND_OUTCOME_PERMANENT_FAILURE;
  }
}

std::string ReplyClass(int code) {
  return code == 0 ? "none" : absl::StrCat(code / 100, "xx");
}

void CountOutcome(const std::string& node, absl::string_view outcome, int reply_code) {
  Metrics& metrics = Metrics::Global();
  metrics.Increment("mailroom_delivery_attempts_total",
                    "Delivery attempts by outcome (delivered, retried, failed, paused).",
                    {{"node", node}, {"outcome", std::string(outcome)}});
  metrics.Increment("mailroom_smtp_replies_total", "Final SMTP replies by class.",
                    {{"node", node}, {"class", ReplyClass(reply_code)}});
}

// What the broker is told about one send.
bv1::SendResult ResultOf(const ClaimedNotification& message, const SendResult& sent) {
  bv1::SendResult result;
  result.set_notification_id(message.id);
  result.set_message_id(message.message_id);
  result.set_outcome(ToSendOutcome(sent.outcome));
  result.set_reply_code(sent.reply.code);
  result.set_reply_text(sent.reply.raw);
  int accepted = 0;
  for (const RecipientResult& recipient : sent.recipients) accepted += recipient.accepted;
  result.set_accepted_recipients(accepted);
  if (!sent.ok) *result.mutable_diagnosis() = sent.diagnosis;
  return result;
}

}  // namespace

SubmitterFactory SmtpSubmitterFactory(absl::Duration max_connection_age) {
  return [max_connection_age](const SubmissionGrant& grant) -> std::unique_ptr<MailSubmitter> {
    SmtpEndpoint endpoint;
    endpoint.host = grant.smtp_host;
    endpoint.port = grant.smtp_port;
    if (grant.connection_timeout > absl::ZeroDuration()) {
      endpoint.connect_timeout = grant.connection_timeout;
      endpoint.reply_timeout = grant.connection_timeout;
    }
    endpoint.ca_pem = grant.trust_pem;
    endpoint.use_system_roots = grant.use_system_roots || grant.trust_pem.empty();
    endpoint.proxy = grant.proxy;
    endpoint.max_connection_age = max_connection_age;
    return std::make_unique<SmtpSubmitter>(std::move(endpoint), grant.mailbox);
  };
}

struct DeliveryWorker::Connection {
  int index = 0;
  std::string id;
  std::unique_ptr<MailSubmitter> submitter;
  std::string settings_etag;
  std::string proxy_credentials;  // those the submitter was made with
  absl::Time last_used = absl::InfinitePast();
  bool holds_slot = false;
  // Set when the broker had no connection slot for this connection: the connection (not the
  // messages) waits until then, while connections that hold a slot carry on.
  absl::Time idle_until = absl::InfinitePast();
  // Runs Step(*this) on the connection's own thread.
  std::unique_ptr<BackgroundLoop> loop;
};

DeliveryWorker::DeliveryWorker(Outbox* outbox, BrokerTokenSource* tokens, BrokerPermits* permits,
                               AlarmReporter* alarms, const Clock* clock,
                               DeliveryOptions options, SubmitterFactory submitters)
    : outbox_(outbox),
      tokens_(tokens),
      permits_(permits),
      alarms_(alarms),
      clock_(clock),
      options_(std::move(options)),
      submitters_(std::move(submitters)) {}

DeliveryWorker::~DeliveryWorker() { Stop(); }

void DeliveryWorker::Start() {
  absl::MutexLock lock(&mu_);
  stopping_ = false;
  for (int i = 0; i < std::max(1, options_.connections); ++i) {
    auto connection = std::make_unique<Connection>();
    connection->index = i;
    connection->id = absl::StrCat("conn-", i);
    Connection* c = connection.get();
    connection->loop = std::make_unique<BackgroundLoop>(clock_, [this, c] { return Step(*c); });
    connection->loop->Start();
    connections_.push_back(std::move(connection));
  }
}

void DeliveryWorker::Stop() {
  std::vector<std::unique_ptr<Connection>> connections;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;  // no connection starts another round
    connections.swap(connections_);
  }
  for (std::unique_ptr<Connection>& connection : connections) connection->loop->Stop();
  for (std::unique_ptr<Connection>& connection : connections) {
    if (connection->submitter != nullptr) connection->submitter->Close();
    if (connection->holds_slot) permits_->Release("", connection->id, true).IgnoreError();
  }
}

void DeliveryWorker::Wake() {
  absl::MutexLock lock(&mu_);
  for (std::unique_ptr<Connection>& connection : connections_) connection->loop->Wake();
}

int64_t DeliveryWorker::delivered() const {
  absl::MutexLock lock(&mu_);
  return delivered_;
}
int64_t DeliveryWorker::failed() const {
  absl::MutexLock lock(&mu_);
  return failed_;
}
int64_t DeliveryWorker::retried() const {
  absl::MutexLock lock(&mu_);
  return retried_;
}

int DeliveryWorker::TakeOfflineAllowance(int wanted, absl::Time now) {
  absl::MutexLock lock(&mu_);
  while (!offline_sends_.empty() && offline_sends_.front() + absl::Minutes(1) <= now) {
    offline_sends_.pop_front();
  }
  const int room = options_.offline_messages_per_minute - static_cast<int>(offline_sends_.size());
  const int granted = std::max(0, std::min(room, wanted));
  for (int i = 0; i < granted; ++i) offline_sends_.push_back(now);
  return granted;
}

void DeliveryWorker::RaiseDeliveryAlarm(const ClaimedNotification& message,
                                        const Diagnosis& diagnosis) {
  const bool auth = diagnosis.cause() == cv1::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED ||
                    diagnosis.cause() == cv1::FAILURE_CAUSE_SMTP_AUTH_DISABLED;
  RaiseAlarmRequest alarm;
  alarm.set_type(auth ? mv1::ALARM_TYPE_SMTP_AUTHENTICATION_FAILED : mv1::ALARM_TYPE_DELIVERY_FAILED);
  alarm.set_severity(auth ? mv1::ALARM_SEVERITY_CRITICAL : mv1::ALARM_SEVERITY_WARNING);
  alarm.set_source_node(options_.node_name);
  alarm.set_dedup_key(absl::StrCat(auth ? "smtp-auth-failed/" : "delivery-failed/",
                                   options_.node_name));
  alarm.set_text(absl::StrCat("Notification ", message.id, " to ",
                              absl::StrJoin(EnvelopeRecipients(message), ", "),
                              " could not be delivered: ", diagnosis.title()));
  *alarm.mutable_diagnosis() = diagnosis;
  // The attempt number keeps the key unique when an admin retries a FAILED entry.
  alarm.set_idempotency_key(absl::StrCat("delivery-failed/", message.id, "/", message.attempt));
  alarms_->Raise(std::move(alarm));
}

void DeliveryWorker::Record(const ClaimedNotification& message, const char* what,
                            std::function<absl::Status()> write) {
  const absl::Status status = write();
  if (status.ok()) return;
  MR_LOG(kError, kLogOutbox) << "cannot record " << message.id << " as " << what
                             << " in the outbox (kept, written again before new work): "
                             << status.message();
  Metrics::Global().Increment("mailroom_outbox_record_failures_total",
                              "Delivery outcomes the outbox could not record at once.",
                              {{"node", options_.node_name}});
  RaiseAlarmRequest alarm;
  alarm.set_type(mv1::ALARM_TYPE_GENERIC);
  alarm.set_severity(mv1::ALARM_SEVERITY_CRITICAL);
  alarm.set_source_node(options_.node_name);
  alarm.set_dedup_key(absl::StrCat("outbox-record-failed/", options_.node_name));
  alarm.set_text(absl::StrCat(
      "The outbox of ", options_.node_name, " cannot record delivery outcomes (", what, ": ",
      status.message(), "). Sending has stopped until it can; free disk space on the node's "
      "data directory, or find what holds the database."));
  alarm.set_idempotency_key(
      absl::StrCat("outbox-record-failed/", message.id, "/", message.attempt));
  alarms_->Raise(std::move(alarm));
  absl::MutexLock lock(&mu_);
  kept_outcomes_.push_back(KeptOutcome{message.id, what, std::move(write)});
}

bool DeliveryWorker::RecordKeptOutcomes() {
  std::deque<KeptOutcome> kept;
  {
    absl::MutexLock lock(&mu_);
    if (kept_outcomes_.empty()) return true;
    kept.swap(kept_outcomes_);
  }
  std::deque<KeptOutcome> still;
  for (KeptOutcome& outcome : kept) {
    const absl::Status status = outcome.write();
    // FAILED_PRECONDITION / NOT_FOUND: the entry moved on meanwhile (an admin retried or
    // purged it); nothing is left to write.
    if (status.ok() || absl::IsFailedPrecondition(status) || absl::IsNotFound(status)) {
      MR_LOG(kInfo, kLogOutbox) << "recorded " << outcome.id << " as " << outcome.what
                                << (status.ok() ? "" : " (the entry had moved on)");
      continue;
    }
    still.push_back(std::move(outcome));
  }
  absl::MutexLock lock(&mu_);
  kept_outcomes_.insert(kept_outcomes_.begin(), std::make_move_iterator(still.begin()),
                        std::make_move_iterator(still.end()));
  return kept_outcomes_.empty();
}

absl::Time DeliveryWorker::Step(Connection& connection) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::InfiniteFuture();
  }
  CloseIfIdle(connection);
  // Outcomes the outbox could not take come first; no new work until they are written.
  if (!RecordKeptOutcomes()) return clock_->Now() + absl::Seconds(1);
  if (Round(connection)) return absl::InfinitePast();  // there may be more due right away
  return NextRoundTime(connection);
}

void DeliveryWorker::CloseIfIdle(Connection& connection) {
  if (connection.submitter == nullptr ||
      clock_->Now() - connection.last_used < options_.idle_close) {
    return;
  }
  connection.submitter->Close();
  connection.submitter.reset();
  if (connection.holds_slot) {
    permits_->Release("", connection.id, /*connection_closed=*/true).IgnoreError();
    connection.holds_slot = false;
  }
}

absl::Time DeliveryWorker::NextRoundTime(const Connection& connection) {
  // Nothing sent: sleep until the next due entry, a wake-up, or idle close.
  const absl::Time now = clock_->Now();
  absl::Time deadline = now + absl::Minutes(1);
  absl::StatusOr<absl::optional<absl::Time>> next = outbox_->NextDueTime();
  if (next.ok() && next->has_value()) deadline = std::min(deadline, **next);
  if (connection.submitter != nullptr) {
    deadline = std::min(deadline, connection.last_used + options_.idle_close);
  }
  if (connection.idle_until > now) deadline = connection.idle_until;
  if (deadline <= now) {
    // Due now but nothing was sent (no token, broker away, permits denied): pace retries.
    deadline = now + absl::Milliseconds(200);
  }
  return deadline;
}

bool DeliveryWorker::WorkIsDue(const Connection& connection) {
  if (clock_->Now() < connection.idle_until) return false;
  absl::StatusOr<absl::optional<absl::Time>> next = outbox_->NextDueTime();
  return next.ok() && next->has_value() && **next <= clock_->Now();
}

bool DeliveryWorker::Round(Connection& connection) {
  if (!WorkIsDue(connection)) return false;
  absl::StatusOr<SubmissionGrant> grant = tokens_->Get();
  if (!grant.ok()) {
    MR_LOG(kDebug, kLogOutbox) << "not sending: " << grant.status().message();
    return false;
  }
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox_->ClaimDue(options_.batch);
  if (!claimed.ok() || claimed->empty()) return false;
  const std::vector<ClaimedNotification>& batch = *claimed;
  absl::StatusOr<bv1::AcquireSendPermitResponse> permit = AcquirePermit(connection, batch);
  if (!permit.ok() || !permit->granted()) {
    HoldDenied(connection, batch, permit);
    return false;
  }
  connection.holds_slot = true;
  const size_t granted = std::min<size_t>(permit->granted_messages(), batch.size());
  for (size_t i = granted; i < batch.size(); ++i) {
    outbox_->Release(batch[i].id, "waiting for send permit: messages-per-minute limit reached")
        .IgnoreError();
  }
  UseGrant(connection, *grant);
  SendBatch(connection, batch, granted, *permit, *grant);
  return granted > 0;
}

absl::StatusOr<bv1::AcquireSendPermitResponse> DeliveryWorker::AcquirePermit(
    const Connection& connection, const std::vector<ClaimedNotification>& batch) {
  std::vector<int> counts;
  for (const ClaimedNotification& message : batch) {
    counts.push_back(std::max<int>(1, static_cast<int>(message.recipients.size())));
  }
  absl::StatusOr<bv1::AcquireSendPermitResponse> permit = permits_->Acquire(connection.id, counts);
  // The broker is unreachable (not refusing): send a small allowance on the cached token.
  const bool offline = !permit.ok() && connection.index == 0 &&
                       (permit.status().code() == absl::StatusCode::kUnavailable ||
                        permit.status().code() == absl::StatusCode::kDeadlineExceeded);
  if (!offline) return permit;
  const int allowance = TakeOfflineAllowance(static_cast<int>(batch.size()), clock_->Now());
  if (allowance == 0) return permit;
  MR_LOG(kWarn, kLogOutbox) << "broker unreachable (" << permit.status().message()
                            << "): sending " << allowance
                            << " message(s) on the cached token without a permit";
  bv1::AcquireSendPermitResponse local;
  local.set_granted(true);
  local.set_granted_messages(allowance);
  return local;
}

void DeliveryWorker::HoldDenied(Connection& connection,
                                const std::vector<ClaimedNotification>& batch,
                                const absl::StatusOr<bv1::AcquireSendPermitResponse>& permit) {
  const absl::Time now = clock_->Now();
  std::string reason = permit.ok() ? DenialText(*permit)
                                   : absl::StrCat("waiting for the token broker: ",
                                                  permit.status().message());
  absl::Time not_before =
      permit.ok() ? now + FromProto(permit->retry_after()) : now + options_.broker_retry;
  if (permit.ok() && permit->denial_reason() == bv1::PERMIT_DENIAL_REASON_CONNECTIONS) {
    // The cluster's connection slots are taken: this connection waits for one, and the
    // messages go back at once for a connection that holds a slot.
    connection.idle_until = not_before;
    not_before = now;
    reason = "";
  } else if (!permit.ok() && connection.index != 0) {
    // The broker is away and only the first connection sends the offline allowance: this
    // connection stands aside, and the messages go back at once for the first one to take,
    // rather than waiting out the retry while the allowance goes unused.
    connection.idle_until = not_before;
    not_before = now;
  }
  for (const ClaimedNotification& message : batch) {
    outbox_->Release(message.id, reason, not_before).IgnoreError();
  }
  Metrics::Global().Increment(
      "mailroom_permit_waits_total", "Send permits denied, by reason.",
      {{"node", options_.node_name},
       {"reason", permit.ok() ? bv1::PermitDenialReason_Name(permit->denial_reason())
                              : "BROKER_UNREACHABLE"}});
}

void DeliveryWorker::UseGrant(Connection& connection, const SubmissionGrant& grant) {
  // New settings, or new proxy credentials under the same settings (the broker reads its
  // credentials file again at start): a new submitter for what the grant says.
  if (connection.submitter == nullptr || connection.settings_etag != grant.settings_etag ||
      connection.proxy_credentials != grant.proxy.credentials) {
    if (connection.submitter != nullptr) connection.submitter->Close();
    connection.submitter = submitters_(grant);
    connection.settings_etag = grant.settings_etag;
    connection.proxy_credentials = grant.proxy.credentials;
  }
  connection.submitter->SetBearerToken(grant.access_token);
}

void DeliveryWorker::SendBatch(Connection& connection,
                               const std::vector<ClaimedNotification>& batch, size_t granted,
                               const bv1::AcquireSendPermitResponse& permit,
                               SubmissionGrant& grant) {
  std::vector<bv1::SendResult> results;
  absl::optional<absl::Time> paused_until;
  bool retried_auth = false;
  for (size_t i = 0; i < granted; ++i) {
    const ClaimedNotification& message = batch[i];
    if (paused_until.has_value()) {
      // The mailbox hit its daily quota mid-batch: the rest wait for the window, unsent.
      outbox_->Release(message.id, "waiting: mailbox paused after the submission quota was exceeded",
                       paused_until).IgnoreError();
      continue;
    }
    const SendResult sent = Submit(connection, message, grant, &retried_auth);
    connection.last_used = clock_->Now();
    const AttemptReport report{sent.reply.code, sent.reply.raw,
                               permit.permit_id().empty() ? "offline" : permit.permit_id(),
                               grant.mailbox};
    results.push_back(ResultOf(message, sent));
    if (sent.outcome == DeliveryOutcome::kQuotaExceeded) {
      paused_until = PauseForQuota(message, sent, report, permit, &results);
    } else {
      RecordOutcome(message, sent, report);
    }
  }
  if (!results.empty() && !permit.permit_id().empty()) {
    absl::StatusOr<bv1::ReportSendResultResponse> reported =
        permits_->Report(permit.permit_id(), results, false);
    if (!reported.ok()) {
      MR_LOG(kDebug, kLogOutbox) << "cannot report send results: " << reported.status().message();
    }
  }
}

SendResult DeliveryWorker::Submit(Connection& connection, const ClaimedNotification& message,
                                  SubmissionGrant& grant, bool* retried_auth) {
  SendResult sent =
      connection.submitter->Send(grant.mailbox, EnvelopeRecipients(message), message.message);
  if (sent.outcome != DeliveryOutcome::kAuthRejected || *retried_auth) return sent;
  // The token may have been revoked or be stale: report it, get a fresh one, retry once.
  *retried_auth = true;
  tokens_->ReportRejected(grant.token_fingerprint, sent.reply.code, sent.reply.raw);
  absl::StatusOr<SubmissionGrant> fresh = tokens_->Get();
  if (!fresh.ok()) return sent;
  grant = *std::move(fresh);
  connection.submitter->SetBearerToken(grant.access_token);
  return connection.submitter->Send(grant.mailbox, EnvelopeRecipients(message), message.message);
}

void DeliveryWorker::RecordOutcome(const ClaimedNotification& message, const SendResult& sent,
                                   const AttemptReport& report) {
  switch (sent.outcome) {
    case DeliveryOutcome::kDelivered: {
      Record(message, "sent", [this, id = message.id, report] {
        return outbox_->MarkSent(id, report);
      });
      CountOutcome(options_.node_name, "delivered", sent.reply.code);
      absl::MutexLock lock(&mu_);
      ++delivered_;
      break;
    }
    case DeliveryOutcome::kTransient: {
      Record(message, "to retry", [this, message, diagnosis = sent.diagnosis, report] {
        absl::StatusOr<RetryDecision> decision = outbox_->MarkRetry(message.id, diagnosis, report);
        if (decision.ok() && decision->state == cv1::NOTIFICATION_STATE_FAILED) {
          RaiseDeliveryAlarm(message, diagnosis);
        }
        return decision.status();
      });
      CountOutcome(options_.node_name, "retried", sent.reply.code);
      absl::MutexLock lock(&mu_);
      ++retried_;
      break;
    }
    default: {
      MR_LOG(kWarn, kLogOutbox) << message.id << " failed: " << sent.diagnosis.title() << " ("
                                << sent.reply.raw << ")";
      Record(message, "failed", [this, id = message.id, diagnosis = sent.diagnosis, report] {
        return outbox_->MarkFailed(id, diagnosis, report);
      });
      RaiseDeliveryAlarm(message, sent.diagnosis);
      CountOutcome(options_.node_name, "failed", sent.reply.code);
      absl::MutexLock lock(&mu_);
      ++failed_;
      break;
    }
  }
}

absl::Time DeliveryWorker::PauseForQuota(const ClaimedNotification& message,
                                         const SendResult& sent, const AttemptReport& report,
                                         const bv1::AcquireSendPermitResponse& permit,
                                         std::vector<bv1::SendResult>* results) {
  // The broker pauses the mailbox and says until when; the results so far go with it.
  absl::StatusOr<bv1::ReportSendResultResponse> reported =
      permit.permit_id().empty()
          ? absl::StatusOr<bv1::ReportSendResultResponse>(
                absl::UnavailableError("sent without a permit"))
          : permits_->Report(permit.permit_id(), *results, false);
  results->clear();
  const absl::Time paused_until = reported.ok() && reported->has_mailbox_paused_until()
                                      ? FromProto(reported->mailbox_paused_until())
                                      : clock_->Now() + absl::Hours(1);
  Record(message, "paused",
         [this, id = message.id, diagnosis = sent.diagnosis, report, paused_until] {
           return outbox_->MarkRetry(id, diagnosis, report, paused_until).status();
         });
  CountOutcome(options_.node_name, "paused", sent.reply.code);
  absl::MutexLock lock(&mu_);
  ++retried_;
  return paused_until;
}

}  // namespace mailroom
