#include "common/node/broker_client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/base/logging.h"
#include "common/base/proto_time.h"
#include "common/base/redactor.h"
#include "common/base/token_margins.h"
#include "common/rpc/status_grpc.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::broker::v1;

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  // gRPC deadlines are wall-clock by nature; this is transport, not logic under test.
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
}

// One unary call of `method` on the leading broker, given `timeout` per attempt.
template <typename Request, typename Response>
absl::StatusOr<Response> CallBroker(
    BrokerEndpoints* brokers,
    grpc::Status (v1::TokenBroker::StubInterface::*method)(grpc::ClientContext*, const Request&,
                                                           Response*),
    const Request& request, absl::Duration timeout) {
  Response response;
  const absl::Status status = brokers->Call([&](BrokerEndpoints::Stub* stub) {
    response.Clear();
    grpc::ClientContext context;
    SetDeadline(&context, timeout);
    return (stub->*method)(&context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

}  // namespace

BrokerTokenSource::BrokerTokenSource(BrokerEndpoints* brokers, const Clock* clock,
                                     Options options, AlarmReporter* alarms)
    : brokers_(brokers),
      clock_(clock),
      options_(std::move(options)),
      alarms_(alarms),
      refresher_(clock, [this] { return RefreshStep(); }) {}

BrokerTokenSource::~BrokerTokenSource() { Stop(); }

void BrokerTokenSource::Start() { refresher_.Start(); }

void BrokerTokenSource::Stop() { refresher_.Stop(); }

std::unique_ptr<BrokerTokenSource> BrokerTokenSource::ForMailbox(std::string mailbox) const {
  Options options = options_;
  options.mailbox = std::move(mailbox);
  return std::make_unique<BrokerTokenSource>(brokers_, clock_, std::move(options));
}

int64_t BrokerTokenSource::broker_calls() const {
  absl::MutexLock lock(&mu_);
  return broker_calls_;
}

HeldToken BrokerTokenSource::held() const {
  absl::MutexLock lock(&mu_);
  HeldToken held;
  held.last_error = last_error_;
  if (!grant_.has_value()) return held;
  held.held = true;
  held.usable = UsableLocked(clock_->Now());
  held.authentication = grant_->expire_time != absl::InfiniteFuture();
  held.expire_time = grant_->expire_time;
  held.lifetime = grant_->lifetime;
  held.mailbox = grant_->mailbox;
  return held;
}

absl::Status BrokerTokenSource::FetchLocked() {
  // One fetch at a time; the broker call itself runs without the lock, so callers holding a
  // valid cached grant are never held up by a broker that does not answer.
  if (fetching_) {
    mu_.Await(absl::Condition(+[](bool* fetching) { return !*fetching; }, &fetching_));
    return last_error_;
  }
  fetching_ = true;
  ++broker_calls_;
  v1::GetAccessTokenRequest request;
  request.set_node(options_.node_name);
  request.set_mailbox(options_.mailbox);
  absl::StatusOr<v1::GetAccessTokenResponse> answer;
  // Asks for the token of the mailbox's transport as last known; when the broker says the
  // mailbox now uses another (its settings changed), asks once more for that one's token.
  for (int attempt = 0; attempt < 2; ++attempt) {
    request.set_transport(transport_);
    mu_.Unlock();
    answer = CallBroker(brokers_, &v1::TokenBroker::StubInterface::GetAccessToken, request,
                        options_.rpc_timeout);
    mu_.Lock();
    if (!answer.ok()) break;
    const v1::MailTransport mailbox_transport = answer->transport() == v1::MAIL_TRANSPORT_GRAPH
                                                    ? v1::MAIL_TRANSPORT_GRAPH
                                                    : v1::MAIL_TRANSPORT_SMTP;
    if (mailbox_transport == transport_) break;
    transport_ = mailbox_transport;
  }
  fetching_ = false;
  const absl::Time now = clock_->Now();
  if (!answer.ok()) {
    last_error_ = answer.status();
    refresh_at_ = now + options_.retry_interval;
    refresher_.Wake();
    MR_LOG(kWarn, kLogToken) << "cannot get a token from the broker: " << answer.status().message()
                             << (grant_.has_value() ? "; using the cached token" : "");
    return last_error_;
  }
  SubmissionGrant grant;
  const v1::GetAccessTokenResponse& response = *answer;
  grant.access_token = response.access_token();
  Redactor::Global().AddShortLivedSecret(grant.access_token);
  if (grant_.has_value() && grant_->access_token != grant.access_token) {
    Redactor::Global().RemoveSecret(grant_->access_token);
  }
  grant.token_fingerprint = response.token_fingerprint();
  grant.expire_time = response.use_authentication() ? now + FromProto(response.expires_in())
                                                    : absl::InfiniteFuture();
  grant.lifetime = response.use_authentication()
                       ? FromProto(response.age()) + FromProto(response.expires_in())
                       : absl::InfiniteDuration();
  grant.mailbox = response.mailbox();
  grant.smtp_host = response.smtp_host();
  grant.smtp_port = response.smtp_port();
  grant.connection_timeout = FromProto(response.connection_timeout());
  grant.trust_pem = response.smtp_trust_store().ca_bundle_pem();
  grant.use_system_roots = !response.smtp_trust_store().exclude_system_roots();
  grant.settings_etag = response.settings_etag();
  grant.transport = request.transport();
  grant.graph_endpoint = response.graph_endpoint();
  grant.graph_fallback = response.graph_fallback();
  if (response.has_smtp_proxy()) {
    const v1::SmtpProxy& proxy = response.smtp_proxy();
    grant.proxy.url = proxy.url();
    grant.proxy.credentials = proxy.credentials();
    grant.proxy.ca_pem = proxy.trust_store().ca_bundle_pem();
    grant.proxy.use_system_roots =
        !proxy.trust_store().exclude_system_roots() || grant.proxy.ca_pem.empty();
    // Before anything could print it (libcurl's debug output, the transcript, a log line);
    // the redactor adds its base64 form, which is what a Proxy-Authorization header carries.
    if (const std::string& credentials = grant.proxy.credentials; !credentials.empty()) {
      Redactor::Global().AddSecret(credentials);
      Redactor::Global().AddSecret(credentials.substr(credentials.find(':') + 1));
    }
  }
  if (grant_.has_value() && !grant_->proxy.credentials.empty() &&
      grant_->proxy.credentials != grant.proxy.credentials) {
    const std::string& old = grant_->proxy.credentials;
    Redactor::Global().RemoveSecret(old);
    Redactor::Global().RemoveSecret(old.substr(old.find(':') + 1));
  }
  grant_ = std::move(grant);
  last_error_ = absl::OkStatus();
  refresh_at_ = response.use_authentication() ? now + FromProto(response.refresh_after())
                                              : now + absl::Minutes(5);
  refresher_.Wake();
  return absl::OkStatus();
}

bool BrokerTokenSource::UsableLocked(absl::Time now) const {
  return grant_.has_value() && grant_->expire_time > now &&
         grant_->expire_time - now >=
             ScaledMargin(options_.min_validity, grant_->lifetime, kTokenUseFraction);
}

void BrokerTokenSource::ReportUsabilityLocked(absl::Time now) {
  if (alarms_ == nullptr) return;
  const bool usable = UsableLocked(now);
  // Unusable but no failure yet: the first fetch has not been answered; nothing to say.
  if (!usable && last_error_.ok()) return;
  if (reported_usable_.has_value() && *reported_usable_ == usable) return;
  reported_usable_ = usable;
  constexpr absl::string_view kDedupKey = "token-from-broker";
  if (usable) {
    // Also sent once at start: an alarm from before a restart is cleared by the first token.
    alarms_->ClearOwn(options_.node_name, std::string(kDedupKey),
                      "the node has an access token again");
    return;
  }
  RaiseAlarmRequest alarm;
  alarm.set_type(mailroom::mnt::v1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED);
  alarm.set_severity(mailroom::mnt::v1::ALARM_SEVERITY_CRITICAL);
  alarm.set_source_node(options_.node_name);
  alarm.set_dedup_key(std::string(kDedupKey));
  alarm.set_text(absl::StrCat(
      "Node ", options_.node_name, " has no usable access token and the token broker cannot "
      "give one: ", last_error_.message(),
      ". Its mail waits in its outbox and goes out once it gets a token. Fix: see the broker's "
      "own TOKEN_ACQUISITION_FAILED alarm for the token endpoint's answer; if there is none, "
      "check that the broker runs and that this node reaches it (mailroomctl health)."));
  if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(last_error_); diagnosis.has_value()) {
    *alarm.mutable_diagnosis() = *diagnosis;
  }
  ToProto(now, alarm.mutable_occur_time());
  alarm.set_idempotency_key(
      absl::StrCat(kDedupKey, "/", options_.node_name, "/", absl::ToUnixMillis(now)));
  alarms_->Raise(std::move(alarm));
}

absl::StatusOr<SubmissionGrant> BrokerTokenSource::Get() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  if (UsableLocked(now)) return *grant_;
  // After a failed fetch, callers get that failure until the retry time instead of each
  // waiting on the broker again.
  absl::Status status = !last_error_.ok() && now < refresh_at_ ? last_error_ : FetchLocked();
  if (status.ok() && UsableLocked(clock_->Now())) return *grant_;
  if (status.ok()) status = absl::UnavailableError("the broker's token expires too soon");
  return absl::Status(absl::StatusCode::kUnavailable,
                      absl::StrCat("no valid access token: ", status.message()));
}

void BrokerTokenSource::ReportRejected(const std::string& fingerprint, int smtp_code,
                                       const std::string& reply) {
  v1::InvalidateAccessTokenRequest request;
  request.set_node(options_.node_name);
  // The mailbox refused: a 535 5.7.139 moves that mailbox (with fallback) to Graph, no other.
  request.set_mailbox(options_.mailbox);
  request.set_token_fingerprint(fingerprint);
  request.set_smtp_code(smtp_code);
  request.set_reply_text(reply);
  const absl::Status status =
      CallBroker(brokers_, &v1::TokenBroker::StubInterface::InvalidateAccessToken, request,
                 options_.rpc_timeout)
          .status();
  absl::MutexLock lock(&mu_);
  if (grant_.has_value() && grant_->token_fingerprint == fingerprint) {
    Redactor::Global().RemoveSecret(grant_->access_token);
    grant_.reset();
  }
  if (!status.ok()) {
    MR_LOG(kWarn, kLogToken) << "cannot report a refused token to the broker: "
                             << status.message();
  }
}

void BrokerTokenSource::ExpectTransport(v1::MailTransport transport) {
  if (transport != v1::MAIL_TRANSPORT_SMTP && transport != v1::MAIL_TRANSPORT_GRAPH) return;
  absl::MutexLock lock(&mu_);
  transport_ = transport;
  if (grant_.has_value() && grant_->transport != transport) {
    Redactor::Global().RemoveSecret(grant_->access_token);
    grant_.reset();
  }
}

absl::Time BrokerTokenSource::RefreshStep() {
  absl::MutexLock lock(&mu_);
  ReportUsabilityLocked(clock_->Now());
  if (clock_->Now() < refresh_at_) return refresh_at_;
  FetchLocked().IgnoreError();
  ReportUsabilityLocked(clock_->Now());
  return absl::InfinitePast();  // look again at once, from the new refresh point
}

BrokerPermits::BrokerPermits(BrokerEndpoints* brokers, std::string node_name,
                             absl::Duration rpc_timeout)
    : brokers_(brokers), node_name_(std::move(node_name)), rpc_timeout_(rpc_timeout) {}

absl::StatusOr<v1::AcquireSendPermitResponse> BrokerPermits::Acquire(
    const std::string& connection_id, const std::vector<int>& recipient_counts,
    mailroom::common::v1::SendPriority priority,
    const std::vector<v1::OfflineSend>& offline_sends, const std::string& mailbox) {
  v1::AcquireSendPermitRequest request;
  request.set_node(node_name_);
  request.set_mailbox(mailbox);
  request.set_connection_id(connection_id);
  request.set_priority(priority);
  for (int count : recipient_counts) request.add_message_recipient_counts(count);
  for (const v1::OfflineSend& send : offline_sends) *request.add_offline_sends() = send;
  return CallBroker(brokers_, &v1::TokenBroker::StubInterface::AcquireSendPermit, request, rpc_timeout_);
}

absl::StatusOr<v1::ReportSendResultResponse> BrokerPermits::Report(
    const std::string& permit_id, const std::vector<v1::SendResult>& results,
    bool connection_closed) {
  v1::ReportSendResultRequest request;
  request.set_node(node_name_);
  request.set_permit_id(permit_id);
  for (const v1::SendResult& result : results) *request.add_results() = result;
  request.set_connection_closed(connection_closed);
  return CallBroker(brokers_, &v1::TokenBroker::StubInterface::ReportSendResult, request, rpc_timeout_);
}

absl::Status BrokerPermits::Release(const std::string& permit_id,
                                    const std::string& connection_id, bool connection_closed) {
  v1::ReleaseSendPermitRequest request;
  request.set_permit_id(permit_id);
  request.set_connection_id(connection_id);
  request.set_connection_closed(connection_closed);
  return CallRelease(std::move(request));
}

absl::StatusOr<v1::ResolveMailRouteResponse> BrokerPermits::ResolveMailRoute(
    mailroom::common::v1::MailPurpose purpose, const std::string& from) {
  v1::ResolveMailRouteRequest request;
  request.set_purpose(purpose);
  request.set_from(from);
  return CallBroker(brokers_, &v1::TokenBroker::StubInterface::ResolveMailRoute, request,
                    rpc_timeout_);
}

absl::Status BrokerPermits::EndPreviousRun() {
  v1::ReleaseSendPermitRequest request;
  request.set_previous_run_ended(true);
  return CallRelease(std::move(request));
}

absl::Status BrokerPermits::CallRelease(v1::ReleaseSendPermitRequest request) {
  request.set_node(node_name_);
  return CallBroker(brokers_, &v1::TokenBroker::StubInterface::ReleaseSendPermit, request,
                    rpc_timeout_)
      .status();
}

}  // namespace mailroom
