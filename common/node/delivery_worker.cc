#include "common/node/delivery_worker.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/proto_time.h"
#include "common/base/diagnosis.h"
#include "common/base/enum_names.h"
#include "common/base/logging.h"
#include "common/base/metrics.h"
#include "common/mail/mail_purpose.h"
#include "common/mail/send_priority.h"
#include "common/node/broker_endpoints.h"
#include "common/rpc/status_grpc.h"

namespace mailroom {
namespace {

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

// A message is not started with less time than this left on its permit or connection slot.
constexpr absl::Duration kLeastSendTime = absl::Seconds(1);

class SmtpSubmitter final : public MailSubmitter {
 public:
  SmtpSubmitter(SmtpEndpoint endpoint, std::string mailbox)
      : session_(std::move(endpoint), std::move(mailbox)) {}
  void SetBearerToken(std::string token) override { session_.SetBearerToken(std::move(token)); }
  SendResult Send(const std::string& from, const std::vector<std::string>& recipients,
                  const std::string& message, absl::Duration time_limit) override {
    return session_.Send(from, recipients, message, time_limit);
  }
  void Close() override { session_.Close(); }

 private:
  SmtpSession session_;
};

std::string DenialText(const bv1::AcquireSendPermitResponse& response) {
  static constexpr absl::string_view kTexts[] = {
      "waiting for send permit",
      "waiting for send permit: messages-per-minute limit reached",
      "waiting for send permit: daily recipient limit reached",
      "waiting for send permit: connection limit reached",
      "waiting: mailbox paused after the submission quota was exceeded",
      "waiting for send permit: more urgent mail goes first",
      "waiting for send permit: the broker is counting mail sent while no broker led",
  };
  static_assert(std::size(kTexts) == bv1::PermitDenialReason_ARRAYSIZE,
                "a text per PermitDenialReason");
  return std::string(EnumName(response.denial_reason(), kTexts, kTexts[0]));
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
  bv1::MailTransport transport = bv1::MAIL_TRANSPORT_UNSPECIFIED;  // likewise
  std::string submitter_mailbox;  // likewise: the XOAUTH2 user
  // The pool mailbox ("" the default one) its slot and submitter are for, with its token
  // source; whether the batch in hand has another mailbox on its route.
  std::string mailbox;
  BrokerTokenSource* tokens = nullptr;
  bool route_elsewhere = false;
  absl::Time last_used = absl::InfinitePast();
  bool holds_slot = false;
  // The end of the slot's lease as this node keeps to it (LeaseEnd of the last grant or report
  // on it; never while sending on the offline allowance), and the broker's lease length.
  absl::Time lease_end = absl::InfiniteFuture();
  absl::Duration slot_lease;
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
      submitters_(std::move(submitters)),
      routes_(permits, clock, options_.broker_retry),
      offline_(clock, options_.offline_grace, options_.offline_messages_per_minute,
               options_.offline_report_interval) {}

DeliveryWorker::~DeliveryWorker() { Stop(); }

void DeliveryWorker::Start() {
  // A run of this node that ended without a word (kill -9) sends nothing more, and its
  // connections closed with it: the broker stops counting its permits and slots now rather
  // than at their lease ends. If the broker cannot be reached, they end with their leases.
  if (absl::Status ended = permits_->EndPreviousRun(); !ended.ok()) {
    MR_LOG(kDebug, kLogOutbox) << "cannot tell the broker that the previous run ended: "
                               << ended.message();
  }
  absl::MutexLock lock(&mu_);
  stopping_ = false;
  offline_.NoteLeaderAnswered();
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

absl::optional<DeliveryErrorRecord> DeliveryWorker::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

void DeliveryWorker::NoteFailure(const ClaimedNotification& message, const SendResult& sent,
                                 absl::string_view outcome) {
  last_error_ = DeliveryErrorRecord{clock_->Now(), message.id, std::string(outcome),
                                    sent.reply.code, sent.diagnosis};
}

absl::StatusOr<bv1::AcquireSendPermitResponse> DeliveryWorker::AcquireReporting(
    const Connection& connection, const std::vector<int>& recipient_counts,
    cv1::SendPriority priority, const std::string& mailbox) {
  // Connection 0 alone sends on the allowance and reports it (OfflineAllowance's order).
  // They were the default mailbox's, and are counted there.
  std::vector<bv1::OfflineSend> reported;
  if (connection.index == 0 && mailbox.empty()) reported = offline_.Uncounted();
  absl::StatusOr<bv1::AcquireSendPermitResponse> permit =
      permits_->Acquire(connection.id, recipient_counts, priority, reported, mailbox);
  if (!permit.ok()) return permit;
  offline_.NoteLeaderAnswered();
  if (!reported.empty()) {
    MR_LOG(kInfo, kLogOutbox) << "the broker counted " << reported.size()
                              << " message(s) sent on the offline allowance";
    offline_.Counted(reported.size());
  }
  return permit;
}

void DeliveryWorker::ReportOfflineSendsIfDue(Connection& connection) {
  if (connection.index != 0 || WorkIsDue(connection) || !offline_.ReportDue()) return;
  absl::StatusOr<bv1::AcquireSendPermitResponse> reported =
      AcquireReporting(connection, {}, cv1::SEND_PRIORITY_NORMAL);
  if (!reported.ok()) {
    MR_LOG(kDebug, kLogOutbox) << "cannot report offline sends yet: "
                               << reported.status().message();
  }
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
  ReportOfflineSendsIfDue(connection);
  if (Round(connection)) return absl::InfinitePast();  // there may be more due right away
  return NextRoundTime(connection);
}

absl::Time DeliveryWorker::LeaseEnd(absl::Time asked, absl::Duration lease) const {
  return asked + lease -
         std::max(options_.lease_margin_min, lease * options_.lease_margin_fraction);
}

absl::Time DeliveryWorker::CloseBy(const Connection& connection) const {
  return std::min(connection.last_used + options_.idle_close, connection.lease_end);
}

void DeliveryWorker::CloseSubmitter(Connection& connection) {
  if (connection.submitter == nullptr) return;
  connection.submitter->Close();
  connection.submitter.reset();
}

void DeliveryWorker::CloseUnlessLeaseCovers(Connection& connection, absl::Duration busy) {
  if (clock_->Now() + busy >= connection.lease_end) CloseSubmitter(connection);
}

void DeliveryWorker::CloseIfIdle(Connection& connection) {
  if (connection.submitter == nullptr || clock_->Now() < CloseBy(connection)) return;
  CloseAndReleaseSlot(connection);
}

void DeliveryWorker::CloseAndReleaseSlot(Connection& connection) {
  CloseSubmitter(connection);
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
  // Waiting for a slot: no round before then; an open connection still closes on time.
  if (connection.idle_until > now) deadline = connection.idle_until;
  if (connection.submitter != nullptr) deadline = std::min(deadline, CloseBy(connection));
  if (connection.index == 0) deadline = std::min(deadline, offline_.NextReportTime());
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

BrokerTokenSource* DeliveryWorker::TokensFor(const std::string& mailbox) {
  if (mailbox.empty()) return tokens_;
  absl::MutexLock lock(&mu_);
  std::unique_ptr<BrokerTokenSource>& tokens = mailbox_tokens_[mailbox];
  if (tokens == nullptr) tokens = tokens_->ForMailbox(mailbox);
  return tokens.get();
}

std::vector<ClaimedNotification> DeliveryWorker::KeepOneRoute(
    std::vector<ClaimedNotification> claimed, std::vector<std::string>* route) {
  *route = routes_.Of(PurposeOf(claimed.front().kind));
  std::vector<ClaimedNotification> kept;
  for (ClaimedNotification& message : claimed) {
    // Only known routes here (one broker call a round): a message whose route is not known yet
    // waits for a round of its own.
    if (kept.empty() || routes_.Cached(PurposeOf(message.kind)) == *route) {
      kept.push_back(std::move(message));
    } else {
      outbox_->Release(message.id).IgnoreError();  // for the next round, through its own route
    }
  }
  return kept;
}

bool DeliveryWorker::Round(Connection& connection) {
  if (!WorkIsDue(connection)) return false;
  // A route not known yet takes a broker call (once per purpose every five minutes); each
  // mailbox tried then takes two more (token and permit), checked before each below.
  CloseUnlessLeaseCovers(connection, 2 * permits_->rpc_timeout());
  // Nothing is claimed without a token from the broker: with none (the broker away since this
  // node started), mail stays QUEUED rather than SENDING while a call waits on the broker.
  // Every mailbox's token comes from the one credential, so the default's stands for them.
  if (absl::StatusOr<SubmissionGrant> any = tokens_->Get(); !any.ok()) {
    MR_LOG(kDebug, kLogOutbox) << "not sending: " << any.status().message();
    return false;
  }
  absl::StatusOr<std::vector<ClaimedNotification>> claimed = outbox_->ClaimBatch(options_.batch);
  if (!claimed.ok() || claimed->empty()) return false;
  std::vector<std::string> route;
  const std::vector<ClaimedNotification> batch = KeepOneRoute(*std::move(claimed), &route);
  // The route's first mailbox that grants a permit; one paused after a 5.2.0 passes the batch
  // to the next.
  absl::StatusOr<SubmissionGrant> grant = absl::UnavailableError("no mailbox");
  absl::StatusOr<bv1::AcquireSendPermitResponse> permit = absl::UnavailableError("no mailbox");
  BrokerTokenSource* tokens = nullptr;
  absl::Time asked;
  for (size_t i = 0; i < route.size(); ++i) {
    const std::string& mailbox = route[i];
    const bool last = i + 1 == route.size();
    CloseUnlessLeaseCovers(connection, 2 * permits_->rpc_timeout());
    tokens = TokensFor(mailbox);
    grant = tokens->Get();
    if (!grant.ok()) {
      if (absl::IsNotFound(grant.status())) routes_.Forget();  // the pool changed
      if (!last) continue;
      MR_LOG(kDebug, kLogOutbox) << "not sending: " << grant.status().message();
      for (const ClaimedNotification& message : batch) {
        outbox_->Release(message.id, absl::StrCat("waiting for a token: ",
                                                  grant.status().message()))
            .IgnoreError();
      }
      return false;
    }
    routes_.NoteSettingsEtag(grant->settings_etag);
    if (mailbox != connection.mailbox) {
      // One mailbox a connection (its XOAUTH2 user, its slot at the broker).
      CloseAndReleaseSlot(connection);
      connection.mailbox = mailbox;
    }
    asked = clock_->Now();
    permit = AcquirePermit(connection, batch, mailbox);
    if (!permit.ok() && absl::IsNotFound(permit.status())) routes_.Forget();
    const bool paused = permit.ok() && !permit->granted() &&
                        permit->denial_reason() == bv1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED;
    if (!paused || last) break;
    MR_LOG(kDebug, kLogOutbox) << "mailbox " << mailbox << " is paused; "
                               << PurposeName(PurposeOf(batch.front().kind)) << " go through "
                               << route[i + 1];
  }
  if (!permit.ok() || !permit->granted()) {
    HoldDenied(connection, batch, permit);
    return false;
  }
  connection.holds_slot = true;
  connection.tokens = tokens;
  connection.route_elsewhere = route.size() > 1;
  if (permit->transport() != bv1::MAIL_TRANSPORT_UNSPECIFIED &&
      permit->transport() != grant->transport) {
    // The broker moved the mailbox to the other transport (a Graph fallback began or ended)
    // since this node's token: the batch goes with a token for the one in use now.
    tokens->ExpectTransport(permit->transport());
    grant = tokens->Get();
    if (!grant.ok()) {
      for (const ClaimedNotification& message : batch) {
        outbox_->Release(message.id, absl::StrCat("waiting for a token: ", grant.status().message()),
                         clock_->Now() + options_.broker_retry)
            .IgnoreError();
      }
      permits_->Release(permit->permit_id(), connection.id, connection.submitter == nullptr)
          .IgnoreError();
      return false;
    }
  }
  absl::Time permit_end = absl::InfiniteFuture();  // the offline allowance has no lease
  connection.lease_end = absl::InfiniteFuture();
  if (!permit->permit_id().empty()) {
    permit_end = LeaseEnd(asked, FromProto(permit->lease()));
    connection.slot_lease = FromProto(permit->connection_lease());
    connection.lease_end = LeaseEnd(asked, connection.slot_lease);
  }
  const size_t granted = std::min<size_t>(permit->granted_messages(), batch.size());
  for (size_t i = granted; i < batch.size(); ++i) {
    outbox_->Release(batch[i].id, "waiting for send permit: messages-per-minute limit reached")
        .IgnoreError();
  }
  UseGrant(connection, *grant);
  SendBatch(connection, batch, granted, *permit, permit_end, *grant);
  return granted > 0;
}

absl::StatusOr<bv1::AcquireSendPermitResponse> DeliveryWorker::AcquirePermit(
    const Connection& connection, const std::vector<ClaimedNotification>& batch,
    const std::string& mailbox) {
  std::vector<int> counts;
  for (const ClaimedNotification& message : batch) {
    counts.push_back(std::max<int>(1, static_cast<int>(message.recipients.size())));
  }
  absl::StatusOr<bv1::AcquireSendPermitResponse> permit =
      AcquireReporting(connection, counts, PriorityOf(batch.front().kind), mailbox);
  // No broker leads (none reachable, or an election under way): after offline_grace, send a
  // small allowance on the cached token (the default mailbox's: the allowance is its own).
  const bool offline = !permit.ok() && connection.index == 0 && mailbox.empty() &&
                       (permit.status().code() == absl::StatusCode::kUnavailable ||
                        permit.status().code() == absl::StatusCode::kDeadlineExceeded);
  if (!offline) return permit;
  const int allowance = offline_.Take(counts);
  if (allowance == 0) {
    MR_LOG(kInfo, kLogOutbox) << "no broker leads (" << permit.status().message()
                              << "); waiting for one";
    return permit;
  }
  MR_LOG(kWarn, kLogOutbox) << "no broker has led for " << options_.offline_grace << " or more ("
                            << permit.status().message() << "): sending " << allowance
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
  if (permit.ok() && permit->denial_reason() == bv1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED) {
    not_before = std::min(not_before, now + options_.pause_recheck);
  }
  // More urgent mail elsewhere waits for a connection slot: this one gives its slot up.
  if (permit.ok() && permit->yield_connection()) CloseAndReleaseSlot(connection);
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
  // The same settings may also move the mailbox between SMTP and Graph (Graph fallback).
  if (connection.submitter == nullptr || connection.settings_etag != grant.settings_etag ||
      connection.proxy_credentials != grant.proxy.credentials ||
      connection.transport != grant.transport || connection.submitter_mailbox != grant.mailbox) {
    if (connection.submitter != nullptr) connection.submitter->Close();
    connection.submitter = submitters_(grant);
    connection.settings_etag = grant.settings_etag;
    connection.proxy_credentials = grant.proxy.credentials;
    connection.transport = grant.transport;
    connection.submitter_mailbox = grant.mailbox;
  }
  connection.submitter->SetBearerToken(grant.access_token);
}

void DeliveryWorker::SendBatch(Connection& connection,
                               const std::vector<ClaimedNotification>& batch, size_t granted,
                               const bv1::AcquireSendPermitResponse& permit, absl::Time permit_end,
                               SubmissionGrant& grant) {
  std::vector<bv1::SendResult> results;
  absl::optional<absl::Time> paused_until;
  bool retried_auth = false;
  size_t sent_count = 0;
  for (size_t i = 0; i < granted; ++i) {
    const ClaimedNotification& message = batch[i];
    const absl::Time send_by = std::min(permit_end, connection.lease_end);
    if (paused_until.has_value()) {
      // The mailbox hit its daily quota mid-batch: the rest wait for the window, unsent.
      outbox_->Release(message.id, "waiting: mailbox paused after the submission quota was exceeded",
                       paused_until).IgnoreError();
      continue;
    }
    if (send_by - clock_->Now() < kLeastSendTime) {
      // The permit's (or the slot's) lease is ending: nothing more is sent on it.
      outbox_->Release(message.id, "waiting for send permit: the last one ran out").IgnoreError();
      continue;
    }
    if (connection.submitter == nullptr) UseGrant(connection, grant);
    const SendResult sent = Submit(connection, message, grant, send_by, &retried_auth);
    ++sent_count;
    // An offline send counts from when it reached the server, as the server counts it.
    if (permit.permit_id().empty()) offline_.SendEnded();
    connection.last_used = clock_->Now();
    if (!sent.ok && sent.reply.code == 0) {
      // No final reply (the transfer was dropped or cut off): once the connection is closed,
      // nothing more of the message can reach the server, so the report below is its end.
      CloseSubmitter(connection);
    }
    const AttemptReport report{sent.reply.code, sent.reply.raw,
                               permit.permit_id().empty() ? "offline" : permit.permit_id(),
                               grant.mailbox};
    results.push_back(ResultOf(message, sent));
    if (sent.outcome == DeliveryOutcome::kQuotaExceeded) {
      paused_until =
          PauseForQuota(message, sent, report, permit, connection.route_elsewhere, &results);
    } else {
      RecordOutcome(message, sent, report);
    }
  }
  if (permit.permit_id().empty()) return;
  CloseUnlessLeaseCovers(connection, permits_->rpc_timeout());
  const bool closed = connection.submitter == nullptr;
  if (!results.empty()) {
    const absl::Time asked = clock_->Now();
    absl::StatusOr<bv1::ReportSendResultResponse> reported =
        permits_->Report(permit.permit_id(), results, closed);
    if (!reported.ok()) {
      MR_LOG(kDebug, kLogOutbox) << "cannot report send results: " << reported.status().message();
    } else if (!closed) {
      // The report renewed it, by as much as the broker says (an elected broker's term may
      // end sooner than the permit's slot lease).
      if (reported->has_connection_lease()) {
        connection.slot_lease = FromProto(reported->connection_lease());
      }
      connection.lease_end = LeaseEnd(asked, connection.slot_lease);
    }
  }
  if (sent_count < granted) {
    // What was not sent goes back to the cluster at once.
    permits_->Release(permit.permit_id(), connection.id, closed).IgnoreError();
  }
  if (closed) connection.holds_slot = false;
}

SendResult DeliveryWorker::Submit(Connection& connection, const ClaimedNotification& message,
                                  SubmissionGrant& grant, absl::Time send_by, bool* retried_auth) {
  SendResult sent = connection.submitter->Send(grant.mailbox, EnvelopeRecipients(message),
                                               message.message, send_by - clock_->Now());
  if (grant.graph_fallback && sent.diagnosis.cause() == cv1::FAILURE_CAUSE_SMTP_AUTH_DISABLED) {
    return FallBackToGraph(connection, message, grant, send_by, std::move(sent));
  }
  if (sent.outcome != DeliveryOutcome::kAuthRejected || *retried_auth) return sent;
  // The token may have been revoked or be stale: report it, get a fresh one, retry once.
  *retried_auth = true;
  CloseUnlessLeaseCovers(connection, 2 * permits_->rpc_timeout());
  connection.tokens->ReportRejected(grant.token_fingerprint, sent.reply.code, sent.reply.raw);
  absl::StatusOr<SubmissionGrant> fresh = connection.tokens->Get();
  if (!fresh.ok() || send_by - clock_->Now() < kLeastSendTime) return sent;
  grant = *std::move(fresh);
  UseGrant(connection, grant);
  return connection.submitter->Send(grant.mailbox, EnvelopeRecipients(message), message.message,
                                    send_by - clock_->Now());
}

SendResult DeliveryWorker::FallBackToGraph(Connection& connection,
                                           const ClaimedNotification& message,
                                           SubmissionGrant& grant, absl::Time send_by,
                                           SendResult refused) {
  // The broker moves the mailbox to Graph on this report (every node's next grant is for
  // Graph); this message goes through Graph at once. Should that not work out now, it is
  // retried, never failed: the mailbox can send, only not by SMTP.
  refused.outcome = DeliveryOutcome::kTransient;
  refused.diagnosis.set_retryable(true);
  CloseUnlessLeaseCovers(connection, 2 * permits_->rpc_timeout());
  if (grant.transport == bv1::MAIL_TRANSPORT_SMTP) {
    connection.tokens->ReportRejected(grant.token_fingerprint, refused.reply.code, refused.reply.raw);
  }
  absl::StatusOr<SubmissionGrant> fresh = connection.tokens->Get();
  if (!fresh.ok() || fresh->transport != bv1::MAIL_TRANSPORT_GRAPH ||
      send_by - clock_->Now() < kLeastSendTime) {
    return refused;
  }
  MR_LOG(kWarn, kLogOutbox) << message.id << ": " << refused.reply.raw
                            << "; sending it through Microsoft Graph (fallback)";
  grant = *std::move(fresh);
  UseGrant(connection, grant);
  return connection.submitter->Send(grant.mailbox, EnvelopeRecipients(message), message.message,
                                    send_by - clock_->Now());
}

void DeliveryWorker::RecordOutcome(const ClaimedNotification& message, const SendResult& sent,
                                   const AttemptReport& report) {
  switch (sent.outcome) {
    case DeliveryOutcome::kDelivered: {
      Record(message, "sent", [this, id = message.id, report] {
        return outbox_->MarkSent(id, report);
      });
      CountOutcome(options_.node_name, "delivered", sent.reply.code);
      Metrics::Global().Observe(kDeliveryLatencyMetric,
                                "End-to-end delivery latency: enqueue to the server's 250.",
                                {{"node", options_.node_name}},
                                clock_->Now() - message.create_time, kLongLatencyBuckets);
      break;
    }
    case DeliveryOutcome::kTransient: {
      // A server-requested wait (Graph's 429/503 Retry-After) holds the message at least that
      // long; the backoff still applies when it is longer.
      const absl::optional<absl::Time> not_before =
          sent.diagnosis.has_retry_after()
              ? absl::optional<absl::Time>(clock_->Now() + FromProto(sent.diagnosis.retry_after()))
              : absl::nullopt;
      Record(message, "to retry",
             [this, message, diagnosis = sent.diagnosis, report, not_before] {
        absl::StatusOr<RetryDecision> decision =
            outbox_->MarkRetry(message.id, diagnosis, report, not_before);
        if (decision.ok() && decision->state == cv1::NOTIFICATION_STATE_FAILED) {
          RaiseDeliveryAlarm(message, diagnosis);
        }
        return decision.status();
      });
      CountOutcome(options_.node_name, "retried", sent.reply.code);
      absl::MutexLock lock(&mu_);
      NoteFailure(message, sent, "retried");
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
      NoteFailure(message, sent, "failed");
      break;
    }
  }
}

absl::Time DeliveryWorker::PauseForQuota(const ClaimedNotification& message,
                                         const SendResult& sent, const AttemptReport& report,
                                         const bv1::AcquireSendPermitResponse& permit,
                                         bool elsewhere, std::vector<bv1::SendResult>* results) {
  // The broker pauses the mailbox and says until when; the results so far go with it.
  absl::StatusOr<bv1::ReportSendResultResponse> reported =
      permit.permit_id().empty()
          ? absl::StatusOr<bv1::ReportSendResultResponse>(
                absl::UnavailableError("sent without a permit"))
          : permits_->Report(permit.permit_id(), *results, false);
  results->clear();
  const absl::Time paused_until = elsewhere ? clock_->Now() :
      std::min(reported.ok() && reported->has_mailbox_paused_until()
                   ? FromProto(reported->mailbox_paused_until())
                   : clock_->Now() + absl::Hours(1),
               clock_->Now() + options_.pause_recheck);
  Record(message, "paused",
         [this, id = message.id, diagnosis = sent.diagnosis, report, paused_until] {
           return outbox_->MarkRetry(id, diagnosis, report, paused_until).status();
         });
  CountOutcome(options_.node_name, "paused", sent.reply.code);
  absl::MutexLock lock(&mu_);
  NoteFailure(message, sent, "paused");
  return paused_until;
}

}  // namespace mailroom
