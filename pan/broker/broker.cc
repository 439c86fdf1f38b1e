#include "pan/broker/broker.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/proto_time.h"
#include "common/crypto/jwt_assertion.h"
#include "common/crypto/openssl_util.h"
#include "common/base/diagnosis.h"
#include "common/base/enum_names.h"
#include "common/base/logging.h"
#include "common/base/redactor.h"
#include "common/base/status_macros.h"
#include "common/base/token_margins.h"
#include "common/mail/smtp_reply.h"
#include "common/node/node_status_service.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"
#include "google/protobuf/util/message_differencer.h"
#include "pan/broker/leadership.h"
#include "pan/broker/smtp_settings.h"

namespace mailroom::broker {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

constexpr absl::Duration kDefaultMinValidity = absl::Minutes(10);
constexpr absl::Duration kMaxMinValidity = absl::Minutes(15);
constexpr absl::Duration kDay = absl::Hours(24);

absl::Status NotConfigured() {
  return WithReason(
      DiagnosedError(MakeDiagnosis(cv1::FAILURE_CAUSE_SETTINGS_NOT_CONFIGURED)),
      "SETTINGS_NOT_CONFIGURED");
}

// Fills the certificate credential's output fields (thumbprint, subject, notAfter).
absl::Status DescribeCertificate(v1::CertificateCredential* certificate) {
  absl::StatusOr<std::string> thumbprint =
      crypto::CertificateThumbprintSha256(certificate->certificate_pem());
  if (!thumbprint.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("settings.certificate.certificate_pem: ", thumbprint.status().message()));
  }
  certificate->set_thumbprint_sha256(*thumbprint);
  absl::StatusOr<crypto::X509Ptr> x509 = crypto::ReadPemCertificate(certificate->certificate_pem());
  if (!x509.ok()) {
    return absl::InvalidArgumentError("settings.certificate.certificate_pem: not a certificate");
  }
  certificate->set_subject(crypto::CertificateSubject(x509->get()));
  struct tm not_after = {};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(x509->get()), &not_after) == 1) {
    certificate->mutable_expire_time()->set_seconds(timegm(&not_after));
  }
  return absl::OkStatus();
}

// Whole days from `now` to `expiry`, rounded down, clamped to int32 (a far-future expiry,
// or one more than 2^31 days ago, would make the plain cast undefined).
int32_t DaysLeft(absl::Time expiry, absl::Time now) {
  const double days = std::floor(absl::FDivDuration(expiry - now, kDay));
  return static_cast<int32_t>(std::clamp<double>(days, std::numeric_limits<int32_t>::min(),
                                                 std::numeric_limits<int32_t>::max()));
}

bool SameCredential(const v1::SmtpSettings& a, const v1::SmtpSettings& b) {
  if (a.credential_case() != b.credential_case()) return false;
  if (a.has_client_secret()) {
    return a.client_secret().secret() == b.client_secret().secret() &&
           a.client_secret().expire_time().seconds() == b.client_secret().expire_time().seconds();
  }
  if (a.has_certificate()) {
    return a.certificate().certificate_pem() == b.certificate().certificate_pem() &&
           a.certificate().private_key_pem() == b.certificate().private_key_pem();
  }
  return true;
}

// The alarm text for a token problem: what happens to mail, why (the diagnosis with its AADSTS
// codes), and what to do.
std::string TokenHealthAlarmText(const std::string& mailbox, const TokenHealth& health,
                                 absl::Time now) {
  if (health.state == TokenHealth::State::kShortLived) {
    return absl::StrCat(
        "The identity provider issues access tokens for ", mailbox, " that live only ",
        absl::FormatDuration(health.lifetime), ", less than the ",
        absl::FormatDuration(kMinSupportedTokenLifetime),
        " mailroom supports: mail still goes out, but the token endpoint is asked every ",
        absl::FormatDuration(health.lifetime / 2),
        ". Fix: check the tenant's token-lifetime policy (Entra ID: the AccessTokenLifetime of "
        "a TokenLifetimePolicy assigned to the app or the organisation; Entra's own minimum is "
        "10 minutes).");
  }
  std::string why = std::string(health.error.message());
  std::string fix;
  if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(health.error); diagnosis.has_value()) {
    why = diagnosis->title();
    if (diagnosis->codes_size() > 0) absl::StrAppend(&why, " (", absl::StrJoin(diagnosis->codes(), ", "), ")");
    fix = diagnosis->fix();
  }
  std::string text;
  if (health.state == TokenHealth::State::kRefreshFailing) {
    text = absl::StrCat("The access token for ", mailbox, " cannot be renewed: ", why,
                        ". Mail still goes out on the current token for ",
                        absl::FormatDuration(absl::Floor(health.expire_time - now, absl::Seconds(1))),
                        "; after that no node can send until a token is fetched again.");
  } else {
    text = absl::StrCat("No access token for ", mailbox, " can be handed out: ", why,
                        ". Once the nodes' cached tokens run out, no node can send mail; it "
                        "waits in the outboxes and goes out once a token is fetched again. This "
                        "alarm cannot be emailed through ", mailbox,
                        " while it has no token: see mailroomctl alarm list.");
  }
  if (!fix.empty()) absl::StrAppend(&text, " Fix: ", fix);
  return text;
}


// The persisted effective transport of each mailbox with fallback, by configured address:
// the default mailbox's in BrokerState.effective_transport (where brokers before per-mailbox
// fallback kept it), the pool mailboxes' in pool_effective_transports.
std::map<std::string, v1::EffectiveTransport> SavedTransports(const internal::BrokerState& state,
                                                              const MailboxPool& pool) {
  std::map<std::string, v1::EffectiveTransport> saved(state.pool_effective_transports().begin(),
                                                      state.pool_effective_transports().end());
  saved[pool.default_mailbox().address] = state.effective_transport();
  return saved;
}

bool SameTransports(const std::map<std::string, v1::EffectiveTransport>& a,
                    const std::map<std::string, v1::EffectiveTransport>& b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
           return x.first == y.first &&
                  google::protobuf::util::MessageDifferencer::Equals(x.second, y.second);
         });
}

void RecordTransport(const PoolMember& mailbox, const v1::EffectiveTransport& transport,
                     internal::BrokerState* state) {
  if (mailbox.is_default) {
    *state->mutable_effective_transport() = transport;
  } else {
    (*state->mutable_pool_effective_transports())[mailbox.address] = transport;
  }
}

void ResetFallbacks(const SavedSettings& saved, const MailboxPool& pool,
                    MailboxFallbacks& fallbacks) {
  std::vector<std::string> enabled;
  for (const PoolMember& member : pool.members()) {
    if (member.transport == v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK) {
      enabled.push_back(member.address);
    }
  }
  fallbacks.Reset(enabled, SavedTransports(saved.state, pool),
                  FromProto(saved.state.update_time()));
}

// A node could not reach the SMTP endpoint at all (as opposed to an endpoint that answered).
bool IsConnectFailure(const Diagnosis& diagnosis) {
  switch (diagnosis.cause()) {
    case cv1::FAILURE_CAUSE_CONNECT_TIMEOUT:
    case cv1::FAILURE_CAUSE_CONNECTION_REFUSED:
    case cv1::FAILURE_CAUSE_DNS_RESOLUTION_FAILED:
      return true;
    default:
      return false;
  }
}

// Whether an SMTP reply is Exchange's "SMTP AUTH is disabled" (535 5.7.139).
bool IsSmtpAuthDisabled(const std::string& reply_text) {
  return ClassifySmtpReply(ParseSmtpReply(reply_text), SmtpStage::kAuth).cause() ==
         cv1::FAILURE_CAUSE_SMTP_AUTH_DISABLED;
}

std::string FallbackAlarmText(const std::string& mailbox, const v1::EffectiveTransport& state) {
  return absl::StrCat(
      "Mail from ", mailbox, " now goes out through Microsoft Graph instead of SMTP, on every "
      "node, because ", state.reason(), ". Mail keeps flowing (the app's Graph permission "
      "Mail.Send is used); nothing is lost. Fix: re-enable SMTP AUTH for the mailbox in "
      "Exchange Online PowerShell: Set-CASMailbox -Identity ", mailbox,
      " -SmtpClientAuthenticationDisabled $false (if it is off for the whole tenant: "
      "Set-TransportConfig -SmtpClientAuthenticationDisabled $false, and check security "
      "defaults), or, if the SMTP endpoint was unreachable, the network path to it; then run "
      "Test Connection of the mailbox with a test message (mailroomctl settings test mailbox=",
      mailbox, " --to=ADDRESS). Once it "
      "passes the mailbox is moved back to SMTP and this alarm clears.");
}
}  // namespace

Broker::Active::~Active() {
  if (cache != nullptr) cache->Stop();
  absl::MutexLock lock(&graph_mu);
  if (graph_cache != nullptr) graph_cache->Stop();
}

absl::StatusOr<TokenCache*> Broker::CacheFor(Active& active, v1::MailTransport transport) {
  if (transport != v1::MAIL_TRANSPORT_GRAPH) return active.cache.get();
  absl::MutexLock lock(&active.graph_mu);
  if (active.graph_cache != nullptr) return active.graph_cache.get();
  v1::SmtpSettings graph = active.resolved;
  graph.set_scope(kGraphScope);
  MR_ASSIGN_OR_RETURN(active.graph_client, token_client_factory_(graph));
  active.graph_cache = std::make_unique<TokenCache>(
      active.graph_client.get(), clock_, options_.token_policy, random_unit_,
      [this, generation = active.generation,
       mailbox = active.resolved.username()](const TokenHealth& health) {
        OnTokenHealth(generation, absl::StrCat(mailbox, " (Microsoft Graph)"), health,
                      "token-acquisition-graph");
      });
  active.graph_cache->Start();
  return active.graph_cache.get();
}

Broker::Broker(BrokerOptions options, SettingsStore* store, const Clock* clock,
               TokenClientFactory token_client_factory, ConnectionTester* tester,
               AlarmReporter* alarms, std::function<double()> random_unit)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      token_client_factory_(std::move(token_client_factory)),
      tester_(tester),
      alarms_(alarms),
      random_unit_(std::move(random_unit)),
      quota_(clock, options_.send_limits),
      fallbacks_(clock, options_.fallback),
      expiry_checker_(
          clock,
          [this] {
            CheckSecretExpiry();
            return std::min(clock_->Now() + options_.expiry_check_interval, CheckPauses());
          },
          {options_.expiry_check_interval}) {}

Broker::~Broker() { Stop(); }

absl::Status Broker::Start() {
  absl::StatusOr<absl::optional<SavedSettings>> loaded = store_->Load();
  if (!loaded.ok() && loaded.status().code() == absl::StatusCode::kDataLoss) {
    RefuseSavedSettings(loaded.status());
  } else if (!loaded.ok()) {
    return loaded.status();
  } else if (loaded->has_value()) {
    const bool legacy_format = (*loaded)->legacy_format;
    if (legacy_format) {
      // Nothing authenticated the clear part of a first-format file: check it as if an
      // admin had just entered it before using it, then seal all of it.
      absl::Status valid = ValidateSmtpSettings(
          ResolveDefaults((*loaded)->settings, options_.default_authority_host), "settings");
      if (!valid.ok()) {
        RefuseSavedSettings(absl::DataLossError(valid.message()));
        loaded->reset();
      }
    }
    if (loaded->has_value()) {
      MR_ASSIGN_OR_RETURN(std::shared_ptr<Active> active, Activate(**loaded));
      if (legacy_format) {
        if (absl::Status saved = store_->Save(**loaded); !saved.ok()) {
          MR_LOG(kError, kLogBroker) << "cannot rewrite the settings in the sealed format: "
                                     << saved;
        } else {
          MR_LOG(kInfo, kLogBroker) << "rewrote " << store_->path()
                                    << " in the sealed format (the whole record authenticated)";
        }
      }
      absl::MutexLock lock(&mu_);
      active_ = std::move(active);
      ResetFallbacks(active_->saved, *active_->pool, fallbacks_);
      MR_LOG(kInfo, kLogBroker) << "loaded saved settings for mailbox "
                                << active_->resolved.username() << " (token endpoint "
                                << active_->resolved.token_endpoint() << ")";
    }
  } else {
    MR_LOG(kWarn, kLogBroker) << "no SMTP settings saved yet: configure them with "
                                 "mailroomctl settings set, after a Test Connection";
  }
  CheckSecretExpiry();
  expiry_checker_.Start();
  return absl::OkStatus();
}

absl::Status Broker::ReloadSettings() {
  MR_ASSIGN_OR_RETURN(absl::optional<SavedSettings> loaded, store_->Load());
  if (!loaded.has_value()) return absl::OkStatus();
  std::shared_ptr<Active> current = active();
  if (current != nullptr &&
      google::protobuf::util::MessageDifferencer::Equals(current->saved.settings, loaded->settings)) {
    absl::MutexLock lock(&mu_);
    if (active_ == current) {
      // The leader moved a mailbox between SMTP and Graph (a Graph fallback began or ended).
      const bool moved = !SameTransports(SavedTransports(active_->saved.state, *active_->pool),
                                         SavedTransports(loaded->state, *active_->pool));
      active_->saved.state = loaded->state;
      if (moved) ResetFallbacks(active_->saved, *active_->pool, fallbacks_);
    }
    return absl::OkStatus();
  }
  const std::string updated_by = loaded->state.updated_by();
  MR_ASSIGN_OR_RETURN(std::shared_ptr<Active> activated, Activate(*std::move(loaded)));
  std::shared_ptr<Active> previous;
  {
    absl::MutexLock lock(&mu_);
    previous = std::move(active_);
    active_ = std::move(activated);
    ResetFallbacks(active_->saved, *active_->pool, fallbacks_);
    MR_LOG(kInfo, kLogBroker) << "took up the settings " << updated_by << " saved for mailbox "
                              << active_->resolved.username() << " (etag "
                              << active_->etag << ")";
  }
  previous.reset();  // stops the old token refresher outside the lock
  return absl::OkStatus();
}

void Broker::RefuseSavedSettings(const absl::Status& why) {
  const std::string text = absl::StrCat(
      "The broker refused its saved SMTP / OAuth settings: ", why.message(),
      ". No token can be issued and no mail is sent until an admin enters the settings again "
      "(mailroomctl settings set, after a Test Connection); if nobody changed the file, "
      "find out who did.");
  MR_LOG(kError, kLogBroker) << text;
  RaiseAlarmRequest alarm;
  alarm.set_type(mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED);
  alarm.set_severity(mv1::ALARM_SEVERITY_CRITICAL);
  alarm.set_source_node(options_.node_name);
  alarm.set_dedup_key("settings-refused");
  alarm.set_text(text);
  ToProto(clock_->Now(), alarm.mutable_occur_time());
  alarm.set_idempotency_key(
      absl::StrCat("settings-refused/", absl::ToUnixSeconds(clock_->Now())));
  alarms_->Raise(std::move(alarm));
}

void Broker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  expiry_checker_.Stop();
  std::shared_ptr<Active> active;
  {
    absl::MutexLock lock(&mu_);
    active = std::move(active_);
  }
}

// Every credential the broker is handed is registered with the log redactor before
// anything can print it, including a wrong one under test (often a near miss of the real):
// the saved one for as long as the process lives, one under test among the short-lived
// values (so that a stream of Test Connections cannot grow the redactor without bound).
enum class Kept { kForever, kShortLived };
void RegisterCredential(const v1::SmtpSettings& settings, Kept kept) {
  Redactor& redactor = Redactor::Global();
  auto add = [&](const std::string& value) {
    kept == Kept::kForever ? redactor.AddSecret(value) : redactor.AddShortLivedSecret(value);
  };
  if (settings.has_client_secret()) add(settings.client_secret().secret());
  if (settings.has_certificate()) add(settings.certificate().private_key_pem());
  // Read from its file (LoadProxyCredentials); the redactor adds its base64 form, which is
  // what a Proxy-Authorization header carries.
  if (const std::string& proxy = settings.proxy().credentials(); !proxy.empty()) {
    add(proxy);
    add(proxy.substr(proxy.find(':') + 1));  // the password on its own
  }
}

// Reads the proxy's credentials file into resolved settings and registers what it held.
absl::Status LoadAndRegisterProxyCredentials(v1::SmtpSettings* resolved, Kept kept) {
  MR_RETURN_IF_ERROR(LoadProxyCredentials(resolved));
  RegisterCredential(*resolved, kept);
  return absl::OkStatus();
}

// Settings an admin gave (merged with the stored credential), made ready to test or save: the
// credential registered among the short-lived secrets, defaults resolved, the result validated,
// its trust stores inlined and its proxy credentials read (again each time: a file changed
// since a test no longer matches the tested fingerprint). A certificate credential gets its
// output fields (DescribeCertificate) in `settings` and in the result.
absl::StatusOr<v1::SmtpSettings> ResolveGivenSettings(v1::SmtpSettings* settings,
                                                      const std::string& default_authority) {
  RegisterCredential(*settings, Kept::kShortLived);
  v1::SmtpSettings resolved = ResolveDefaults(*settings, default_authority);
  MR_RETURN_IF_ERROR(ValidateSmtpSettings(resolved, "settings"));
  MR_RETURN_IF_ERROR(InlineTrustStores(&resolved));
  MR_RETURN_IF_ERROR(LoadAndRegisterProxyCredentials(&resolved, Kept::kShortLived));
  if (settings->has_certificate()) {
    MR_RETURN_IF_ERROR(DescribeCertificate(settings->mutable_certificate()));
    *resolved.mutable_certificate() = settings->certificate();
  }
  return resolved;
}

absl::StatusOr<std::shared_ptr<Broker::Active>> Broker::Activate(SavedSettings saved) {
  RegisterCredential(saved.settings, Kept::kForever);
  auto active = std::make_shared<Active>();
  active->resolved = ResolveDefaults(saved.settings, options_.default_authority_host);
  active->etag = saved.state.etag();
  absl::Status trust = InlineTrustStores(&active->resolved);
  if (trust.ok()) trust = LoadAndRegisterProxyCredentials(&active->resolved, Kept::kForever);
  if (!trust.ok()) {
    // Saved by an earlier version that did not check trust stores, or the file changed since.
    return absl::FailedPreconditionError(absl::StrCat(
        "the saved settings cannot be used: ", trust.message(),
        "; fix the file, or save settings with a trust store of CA certificates (and proxy "
        "credentials that can be read)"));
  }
  active->trust_pem = active->resolved.smtp_trust_store().ca_bundle_pem();
  active->pool = std::make_unique<MailboxPool>(active->resolved, options_.send_limits);
  if (UsesAuthentication(active->resolved)) {
    MR_ASSIGN_OR_RETURN(active->client, token_client_factory_(active->resolved));
    uint64_t generation;
    {
      absl::MutexLock lock(&mu_);
      generation = ++generation_;
    }
    active->generation = generation;
    active->cache = std::make_unique<TokenCache>(
        active->client.get(), clock_, options_.token_policy, random_unit_,
        [this, generation, mailbox = active->resolved.username()](const TokenHealth& health) {
          OnTokenHealth(generation, mailbox, health);
        });
    active->cache->Start();
  }
  active->saved = std::move(saved);
  // Each mailbox of the pool counts against its own limits.
  quota_.SetMailboxLimits(active->pool->Limits());
  return active;
}

void Broker::OnTokenHealth(uint64_t generation, const std::string& mailbox,
                           const TokenHealth& health, absl::string_view dedup_key) {
  {
    absl::MutexLock lock(&mu_);
    if (generation != generation_ || stopping_) return;
  }
  const absl::Time now = clock_->Now();
  if (health.state == TokenHealth::State::kHealthy) {
    // Sent once per activation even if nothing was raised: an alarm raised before a restart
    // or a new secret is cleared by the first token fetched after it.
    alarms_->ClearOwn(options_.node_name, std::string(dedup_key),
                      absl::StrCat("an access token for ", mailbox, " was fetched again"));
    return;
  }
  RaiseAlarmRequest alarm;
  alarm.set_type(mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED);
  alarm.set_source_node(options_.node_name);
  alarm.set_dedup_key(std::string(dedup_key));
  alarm.set_text(TokenHealthAlarmText(mailbox, health, now));
  alarm.set_severity(health.state == TokenHealth::State::kNoValidToken
                         ? mv1::ALARM_SEVERITY_CRITICAL
                         : mv1::ALARM_SEVERITY_WARNING);
  if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(health.error); diagnosis.has_value()) {
    *alarm.mutable_diagnosis() = *diagnosis;
  }
  ToProto(now, alarm.mutable_occur_time());
  alarm.set_idempotency_key(absl::StrCat(dedup_key, "/", TokenHealthStateName(health.state), "/",
                                         absl::ToUnixMillis(now)));
  MR_LOG(kWarn, kLogToken) << alarm.text();
  alarms_->Raise(std::move(alarm));
}

std::shared_ptr<Broker::Active> Broker::active() {
  absl::MutexLock lock(&mu_);
  return active_;
}

void Broker::FeedFallback(const std::string& mailbox,
                          const std::function<bool(TransportFallback&)>& event,
                          const Diagnosis& diagnosis) {
  v1::EffectiveTransport state;
  std::string box;
  {
    absl::MutexLock lock(&mu_);
    if (active_ == nullptr) return;
    const PoolMember* member = active_->pool->Find(mailbox);
    TransportFallback* fallback =
        member == nullptr ? nullptr : fallbacks_.Find(member->address);
    if (fallback == nullptr || !event(*fallback)) return;
    state = fallback->state();
    box = member->address;
    RecordTransport(*member, state, &active_->saved.state);
    // Kept with the settings (sealed), so a restarted broker stays on Graph until SMTP is
    // shown to work again rather than failing on SMTP first.
    if (absl::Status saved = store_->Save(active_->saved); !saved.ok()) {
      MR_LOG(kError, kLogBroker) << "cannot record the mailbox's transport: " << saved;
    }
  }
  const std::string dedup_key = absl::StrCat("transport-fallback/", box);
  if (state.transport() == v1::MAIL_TRANSPORT_SMTP) {
    MR_LOG(kInfo, kLogBroker) << "mailbox " << box << " is back on SMTP: " << state.reason();
    alarms_->ClearOwn(options_.node_name, dedup_key,
                      absl::StrCat(box, " is back on SMTP: ", state.reason()));
    return;
  }
  RaiseAlarmRequest alarm;
  alarm.set_type(mv1::ALARM_TYPE_MAIL_TRANSPORT_FALLBACK);
  alarm.set_severity(mv1::ALARM_SEVERITY_WARNING);
  alarm.set_source_node(options_.node_name);
  alarm.set_dedup_key(dedup_key);
  alarm.set_text(FallbackAlarmText(box, state));
  if (diagnosis.cause() != cv1::FAILURE_CAUSE_UNSPECIFIED) *alarm.mutable_diagnosis() = diagnosis;
  *alarm.mutable_occur_time() = state.since();
  alarm.set_idempotency_key(absl::StrCat(dedup_key, "/", state.since().seconds()));
  MR_LOG(kWarn, kLogBroker) << alarm.text();
  alarms_->Raise(std::move(alarm));
}

void Broker::NoteSendResults(const std::string& mailbox, const std::string& node,
                             const std::vector<v1::SendResult>& results) {
  for (const v1::SendResult& result : results) {
    if (result.outcome() == v1::SEND_OUTCOME_DELIVERED) {
      FeedFallback(mailbox, [](TransportFallback& f) {
        f.OnSmtpDelivered();
        return false;
      });
    } else if (IsSmtpAuthDisabled(result.reply_text())) {
      FeedFallback(
          mailbox,
          [&](TransportFallback& f) { return f.OnSmtpAuthDisabled(node, result.reply_text()); },
          result.diagnosis());
    } else if (IsConnectFailure(result.diagnosis())) {
      const std::string detail = result.diagnosis().title();
      FeedFallback(mailbox,
                   [&](TransportFallback& f) { return f.OnSmtpConnectFailure(node, detail); },
                   result.diagnosis());
    }
  }
}

std::vector<v1::MailboxQuota> Broker::QuotaStatus(const std::string& mailbox) {
  std::vector<v1::MailboxQuota> status = quota_.Status(mailbox);
  absl::MutexLock lock(&mu_);
  if (active_ == nullptr) return status;
  for (v1::MailboxQuota& quota : status) {
    const PoolMember* member = active_->pool->Find(quota.mailbox());
    if (member == nullptr) continue;
    if (const TransportFallback* fallback = fallbacks_.Find(member->address)) {
      *quota.mutable_transport() = fallback->state();
    } else {
      quota.mutable_transport()->set_transport(member->transport);
      *quota.mutable_transport()->mutable_since() = active_->saved.state.update_time();
    }
  }
  return status;
}

v1::MailTransport Broker::EffectiveTransport(const std::string& mailbox) {
  absl::MutexLock lock(&mu_);
  if (active_ == nullptr) return v1::MAIL_TRANSPORT_UNSPECIFIED;
  absl::StatusOr<const PoolMember*> member = active_->pool->Resolve(mailbox, "mailbox");
  if (!member.ok()) return v1::MAIL_TRANSPORT_UNSPECIFIED;
  if (const TransportFallback* fallback = fallbacks_.Find((*member)->address)) {
    return fallback->effective();
  }
  return (*member)->transport;
}

std::string Broker::mailbox() {
  std::shared_ptr<Active> a = active();
  return a == nullptr ? "" : a->resolved.username();
}

absl::StatusOr<std::string> Broker::SendingMailbox(const std::string& requested) {
  std::shared_ptr<Active> a = active();
  if (a == nullptr) return NotConfigured();
  MR_ASSIGN_OR_RETURN(const PoolMember* member, a->pool->Resolve(requested, "mailbox"));
  return member->address;
}

absl::StatusOr<v1::ResolveMailRouteResponse> Broker::ResolveMailRoute(
    const v1::ResolveMailRouteRequest& request) {
  std::shared_ptr<Active> a = active();
  if (a == nullptr) return NotConfigured();
  if (!cv1::MailPurpose_IsValid(request.purpose())) {
    return absl::InvalidArgumentError("purpose: not a known purpose");
  }
  v1::ResolveMailRouteResponse response;
  for (const PoolMember* member : a->pool->Route(request.purpose())) {
    response.add_mailboxes(member->address);
  }
  response.set_routed(a->pool->IsRouted(request.purpose()));
  response.set_settings_etag(a->etag);
  if (!request.from().empty()) {
    MR_ASSIGN_OR_RETURN(const PoolMember* sender,
                        a->pool->CheckFrom(request.purpose(), request.from(), "from"));
    response.set_from_mailbox(sender->address);
  }
  return response;
}

TokenCacheStats Broker::token_stats() {
  std::shared_ptr<Active> a = active();
  return a == nullptr || a->cache == nullptr ? TokenCacheStats() : a->cache->stats();
}

absl::Status Broker::FillStatus(mailroom::status::v1::GetNodeStatusResponse* response) {
  namespace sv1 = ::mailroom::status::v1;
  sv1::BrokerStatus* status = response->mutable_broker();
  sv1::TokenStatus* token = response->mutable_token();
  std::shared_ptr<Active> a = active();
  if (a != nullptr) {
    status->set_configured(true);
    status->set_mailbox(a->resolved.username());
    token->set_authentication(a->cache != nullptr);
  }
  if (a != nullptr && a->cache != nullptr) {
    const TokenHealth health = a->cache->health();
    const TokenCacheStats stats = a->cache->stats();
    token->set_held(health.expire_time != absl::InfinitePast());
    token->set_usable(token->held());
    FillTokenTimes(health.expire_time, health.lifetime, health.error, clock_->Now(), token);
    // What the status view calls each TokenHealth::State.
    static constexpr sv1::TokenHealthState kReported[] = {
        sv1::TOKEN_HEALTH_STATE_HEALTHY, sv1::TOKEN_HEALTH_STATE_SHORT_LIVED,
        sv1::TOKEN_HEALTH_STATE_REFRESH_FAILING, sv1::TOKEN_HEALTH_STATE_NO_VALID_TOKEN};
    static_assert(std::size(kReported) == EnumCount(TokenHealth::State::kNoValidToken),
                  "a reported state per TokenHealth::State");
    status->set_token_health(
        EnumLookup(health.state, kReported, sv1::TOKEN_HEALTH_STATE_UNSPECIFIED));
    status->set_token_fetches(stats.fetches);
    status->set_token_fetch_failures(stats.fetch_failures);
  }
  for (v1::MailboxQuota& quota : QuotaStatus("")) *status->add_mailboxes() = std::move(quota);
  *status->mutable_secret() = GetSecretStatus();
  return absl::OkStatus();
}

absl::StatusOr<v1::GetAccessTokenResponse> Broker::GetAccessToken(
    const v1::GetAccessTokenRequest& request) {
  std::shared_ptr<Active> a = active();
  if (a == nullptr) return NotConfigured();
  MR_ASSIGN_OR_RETURN(const PoolMember* member, a->pool->Resolve(request.mailbox(), "mailbox"));
  absl::Duration min_validity = request.has_min_validity()
                                    ? FromProto(request.min_validity())
                                    : kDefaultMinValidity;
  if (min_validity < absl::ZeroDuration() || min_validity > kMaxMinValidity) {
    return absl::InvalidArgumentError("min_validity: must be 0 to 15 minutes");
  }
  v1::GetAccessTokenResponse response;
  // Every mailbox of the pool gets a token of the one credential: the XOAUTH2 user (or Graph's
  // users/{mailbox}) names the mailbox, not the token.
  response.set_mailbox(member->address);
  response.set_smtp_host(a->resolved.smtp_host());
  response.set_smtp_port(a->resolved.port());
  *response.mutable_connection_timeout() = a->resolved.connection_timeout();
  response.set_use_authentication(UsesAuthentication(a->resolved));
  response.mutable_smtp_trust_store()->set_ca_bundle_pem(a->trust_pem);
  response.mutable_smtp_trust_store()->set_exclude_system_roots(
      a->resolved.smtp_trust_store().exclude_system_roots());
  response.set_settings_etag(a->etag);
  const bool graph_fallback = member->transport == v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK;
  response.set_transport(EffectiveTransport(member->address));
  response.set_graph_fallback(graph_fallback);
  if (member->transport == v1::MAIL_TRANSPORT_GRAPH || graph_fallback) {
    response.set_graph_endpoint(a->resolved.graph_endpoint());
  }
  const ProxyConfig proxy = ProxyConfigOf(a->resolved);
  if (!BypassesProxy(proxy, a->resolved.smtp_host())) {
    // The proxy's password goes to role nodes as their access tokens do: over mutual TLS, to
    // role-node certificates only, kept in memory (README: "The proxy").
    v1::SmtpProxy* smtp_proxy = response.mutable_smtp_proxy();
    smtp_proxy->set_url(proxy.url);
    smtp_proxy->set_credentials(proxy.credentials);
    if (!proxy.ca_pem.empty()) {
      smtp_proxy->mutable_trust_store()->set_ca_bundle_pem(proxy.ca_pem);
      smtp_proxy->mutable_trust_store()->set_exclude_system_roots(!proxy.use_system_roots);
    }
  }
  if (a->cache == nullptr) return response;

  MR_ASSIGN_OR_RETURN(TokenCache* const cache, CacheFor(*a, request.transport()));
  absl::StatusOr<AccessToken> token = cache->Get(min_validity);
  if (!token.ok()) {
    absl::Status status(absl::StatusCode::kUnavailable,
                        absl::StrCat("no access token: ", token.status().message()));
    if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(token.status()); diagnosis) {
      status = WithDiagnosis(std::move(status), *diagnosis);
    }
    return WithReason(std::move(status), "TOKEN_UNAVAILABLE");
  }
  const absl::Time now = clock_->Now();
  response.set_access_token(token->value);
  response.set_token_type("Bearer");
  response.set_token_fingerprint(token->fingerprint);
  ToProto(token->issue_time, response.mutable_issue_time());
  ToProto(token->expire_time, response.mutable_expire_time());
  ToProto(token->expire_time - now, response.mutable_expires_in());
  ToProto(now - token->issue_time, response.mutable_age());
  ToProto(std::max(cache->NextRefreshTime() - now, absl::ZeroDuration()),
              response.mutable_refresh_after());
  return response;
}

absl::StatusOr<v1::InvalidateAccessTokenResponse> Broker::InvalidateAccessToken(
    const v1::InvalidateAccessTokenRequest& request) {
  if (request.token_fingerprint().empty()) {
    return absl::InvalidArgumentError("token_fingerprint: required");
  }
  std::shared_ptr<Active> a = active();
  if (a == nullptr) return NotConfigured();
  v1::InvalidateAccessTokenResponse response;
  const PoolMember* reported =
      request.mailbox().empty() ? &a->pool->default_mailbox() : a->pool->Find(request.mailbox());
  if (reported != nullptr &&
      reported->transport == v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK &&
      IsSmtpAuthDisabled(request.reply_text())) {
    // The token is good; the mailbox may not use SMTP AUTH. Not a forced refresh: the mailbox
    // moves to Graph, and the node asks again for the token of that.
    MR_LOG(kWarn, kLogBroker) << "node " << request.node() << " reported SMTP AUTH disabled for "
                              << reported->address << ": " << request.reply_text();
    FeedFallback(
        reported->address,
        [&](TransportFallback& f) {
          return f.OnSmtpAuthDisabled(request.node(), request.reply_text());
        },
        request.diagnosis().cause() != cv1::FAILURE_CAUSE_UNSPECIFIED
            ? request.diagnosis()
            : MakeDiagnosis(cv1::FAILURE_CAUSE_SMTP_AUTH_DISABLED, request.reply_text()));
    return response;
  }
  if ((reported == nullptr || !reported->is_default) && IsSmtpAuthDisabled(request.reply_text())) {
    // A pool mailbox without fallback with SMTP AUTH disabled: the token is good, a fresh one
    // would be refused the same way (the message fails with its alarm).
    MR_LOG(kWarn, kLogBroker) << "node " << request.node() << " reported SMTP AUTH disabled for "
                              << request.mailbox() << ": " << request.reply_text();
    return response;
  }
  if (a->cache == nullptr) return response;
  const absl::Time now = clock_->Now();
  {
    absl::MutexLock lock(&mu_);
    const absl::Time allowed = last_forced_refresh_ + options_.forced_refresh_min_interval;
    if (now < allowed) {
      ToProto(allowed - now, response.mutable_retry_after());
      return response;
    }
  }
  bool invalidated = a->cache->Invalidate(request.token_fingerprint());
  if (!invalidated) {
    absl::MutexLock lock(&a->graph_mu);
    invalidated = a->graph_cache != nullptr &&
                  a->graph_cache->Invalidate(request.token_fingerprint());
  }
  if (invalidated) {
    absl::MutexLock lock(&mu_);
    last_forced_refresh_ = now;
    response.set_invalidated(true);
    MR_LOG(kWarn, kLogBroker) << "node " << request.node() << " reported SMTP "
                              << request.smtp_code() << " for token "
                              << request.token_fingerprint().substr(0, 12)
                              << "; fetching a fresh token";
  }
  return response;
}

v1::CredentialStatus Broker::CredentialStatusOf(const SavedSettings& saved, absl::Time now) const {
  v1::CredentialStatus status;
  const v1::SmtpSettings& s = saved.settings;
  if (s.has_client_secret()) {
    status.set_type(v1::CREDENTIAL_TYPE_CLIENT_SECRET);
    status.set_is_set(!s.client_secret().secret().empty());
  } else if (s.has_certificate()) {
    status.set_type(v1::CREDENTIAL_TYPE_CERTIFICATE);
    status.set_is_set(!s.certificate().private_key_pem().empty());
    status.set_certificate_thumbprint_sha256(s.certificate().thumbprint_sha256());
  }
  const absl::Time expiry = CredentialExpiry(s);
  if (expiry != absl::InfiniteFuture()) {
    ToProto(expiry, status.mutable_expire_time());
    status.set_days_left(DaysLeft(expiry, now));
    status.set_expired(now >= expiry);
  }
  if (saved.state.has_credential_update_time()) {
    *status.mutable_update_time() = saved.state.credential_update_time();
  }
  return status;
}

v1::SmtpSettings Broker::PublicView(const v1::SmtpSettings& resolved) const {
  return StripSecrets(resolved);
}

v1::GetSettingsResponse Broker::GetSettings() {
  v1::GetSettingsResponse response;
  absl::MutexLock lock(&mu_);
  if (active_ == nullptr) return response;
  response.set_configured(true);
  *response.mutable_settings() = PublicView(active_->resolved);
  *response.mutable_credential_status() = CredentialStatusOf(active_->saved, clock_->Now());
  response.set_etag(active_->etag);
  *response.mutable_update_time() = active_->saved.state.update_time();
  response.set_updated_by(active_->saved.state.updated_by());
  *response.mutable_test_pass_time() = active_->saved.state.test_pass_time();
  return response;
}

absl::StatusOr<v1::TestConnectionReport> Broker::TestConnection(
    const v1::TestConnectionRequest& request, const ConnectionTester::Progress& progress) {
  std::shared_ptr<Active> a = active();
  v1::SmtpSettings settings;
  if (request.has_settings()) {
    MR_ASSIGN_OR_RETURN(settings,
                        MergeStoredCredential(request.settings(), a ? &a->saved.settings : nullptr,
                                              options_.default_authority_host));
  } else if (a != nullptr) {
    settings = a->saved.settings;
  } else {
    return NotConfigured();
  }
  MR_ASSIGN_OR_RETURN(const v1::SmtpSettings pool_settings,
                      ResolveGivenSettings(&settings, options_.default_authority_host));
  // The tested mailbox of the tested settings' pool; the tester sees it as the settings'
  // username, with its own transport.
  const MailboxPool pool(pool_settings, options_.send_limits);
  MR_ASSIGN_OR_RETURN(const PoolMember* tested, pool.Resolve(request.mailbox(), "mailbox"));
  const v1::SmtpSettings resolved = SettingsOfMailbox(pool_settings, *tested);
  const cv1::EmailAddress* recipient = nullptr;
  if (request.has_test_recipient()) {
    const std::string& address = request.test_recipient().address();
    if (address.empty() || address.find('@') == std::string::npos ||
        address.find_first_of("\r\n <>,;") != std::string::npos) {
      return absl::InvalidArgumentError("test_recipient.address: must be an email address");
    }
    recipient = &request.test_recipient();
  }
  std::unique_ptr<TokenClient> client;
  if (UsesAuthentication(resolved)) {
    MR_ASSIGN_OR_RETURN(client, token_client_factory_(resolved));
  }
  const absl::Time start = clock_->Now();
  MR_LOG(kInfo, kLogBroker) << "Test Connection: " << resolved.smtp_host() << ":" << resolved.port()
                            << " as " << resolved.username() << " via "
                            << resolved.token_endpoint()
                            << (resolved.proxy().url().empty()
                                    ? ""
                                    : absl::StrCat(" through proxy ", resolved.proxy().url()));
  TestShare share;
  share.mailbox = resolved.username();
  {
    absl::MutexLock lock(&mu_);
    share.connection_id = absl::StrCat("test-connection-", next_test_connection_++);
  }
  v1::TestConnectionReport report =
      tester_->Run(resolved, client.get(), recipient, progress, [&](bool with_message) {
        return TakeTestShare(with_message, &share);
      });
  ReturnTestShare(share, report);
  if (a != nullptr && resolved.transport() != v1::MAIL_TRANSPORT_GRAPH &&
      a->pool->Find(resolved.username()) != nullptr &&
      resolved.smtp_host() == a->resolved.smtp_host() && resolved.port() == a->resolved.port()) {
    // A mailbox of the active pool was tested on its own SMTP endpoint: what it found is what
    // the nodes would, for that mailbox (FeedFallback ignores a mailbox without fallback).
    const std::string& box = a->pool->Find(resolved.username())->address;
    if (report.passed()) {
      FeedFallback(box, [](TransportFallback& f) { return f.OnSmtpTestPassed(); });
    } else if (report.diagnosis().cause() == cv1::FAILURE_CAUSE_SMTP_AUTH_DISABLED) {
      FeedFallback(
          box,
          [&](TransportFallback& f) {
            return f.OnSmtpAuthDisabled("Test Connection", report.diagnosis().raw_reply());
          },
          report.diagnosis());
    }
  }
  report.set_tested_saved_settings(!request.has_settings());
  report.set_mailbox(tested->address);
  report.set_token_endpoint(resolved.token_endpoint());
  if (!report.has_start_time()) ToProto(start, report.mutable_start_time());
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  for (auto it = tests_.begin(); it != tests_.end();) {
    it = now - it->second.time > options_.test_validity ? tests_.erase(it) : std::next(it);
  }
  const std::string test_id =
      absl::StrFormat("test-%d-%08x", next_test_++, static_cast<uint32_t>(random_unit_() * 4e9));
  report.set_test_id(test_id);
  // Settings are saved on a test of their default mailbox only: a pool mailbox's test is
  // recorded without a fingerprint, which no settings match.
  tests_[test_id] = TestRecord{tested->is_default ? SettingsFingerprint(resolved) : "", now,
                               report.passed(), report};
  MR_LOG(kInfo, kLogBroker) << "Test Connection " << test_id
                            << (report.passed() ? " passed" : " failed: ")
                            << (report.passed() ? "" : report.diagnosis().title());
  return report;
}

absl::Status Broker::TakeTestShare(bool with_message, TestShare* share) {
  const absl::Time start = clock_->Now();
  const absl::Time give_up = start + options_.test_connection_wait;
  while (true) {
    MR_ASSIGN_OR_RETURN(v1::AcquireSendPermitResponse answer,
                        quota_.AcquireUnleased(share->mailbox, options_.node_name,
                                               share->connection_id, with_message));
    if (answer.granted()) {
      share->held = true;
      share->permit_id = answer.permit_id();
      return absl::OkStatus();
    }
    const absl::Time now = clock_->Now();
    if (now >= give_up) {
      const bool connections = answer.denial_reason() == v1::PERMIT_DENIAL_REASON_CONNECTIONS;
      v1::MailboxQuota quota;
      for (v1::MailboxQuota& q : quota_.Status(share->mailbox)) quota = std::move(q);
      std::string detail;
      switch (answer.denial_reason()) {
        case v1::PERMIT_DENIAL_REASON_CONNECTIONS: {
          std::vector<std::string> holders;
          for (const v1::NodeQuotaUsage& node : quota.nodes()) {
            if (node.connections() > 0) {
              holders.push_back(absl::StrCat(node.node(), ": ", node.connections()));
            }
          }
          detail = absl::StrCat("all ", quota.open_connections(), " connection slots of ",
                                share->mailbox, " are held (", absl::StrJoin(holders, ", "), ")");
          break;
        }
        case v1::PERMIT_DENIAL_REASON_MESSAGE_RATE:
          detail = absl::StrCat(quota.messages_last_minute(), " of the ",
                                quota.limits().messages_per_minute(), " messages a minute of ",
                                share->mailbox, " are counted");
          break;
        case v1::PERMIT_DENIAL_REASON_DAILY_RECIPIENTS:
          detail = absl::StrCat(quota.recipients_last_day(), " of the ",
                                quota.limits().recipients_per_day(), " recipients a day of ",
                                share->mailbox, " are counted");
          break;
        default:
          detail = absl::StrCat(share->mailbox, " is paused until ",
                                absl::FormatTime(FromProto(answer.paused_until())));
          break;
      }
      Diagnosis diagnosis =
          MakeDiagnosis(connections ? cv1::FAILURE_CAUSE_MAILBOX_CONNECTIONS_IN_USE
                                    : cv1::FAILURE_CAUSE_MAILBOX_SEND_LIMIT_REACHED);
      *diagnosis.mutable_retry_after() = answer.retry_after();
      MR_LOG(kInfo, kLogBroker) << "Test Connection waited " << absl::FormatDuration(now - start)
                                << " and opened no connection: " << detail;
      return DiagnosedError(diagnosis, absl::StrCat(detail, "; waited ",
                                                    absl::FormatDuration(now - start)));
    }
    // A slot may come free before its lease ends (a node closes an idle connection): look
    // again soon.
    clock_->SleepUntil(std::min({now + FromProto(answer.retry_after()), give_up,
                                 now + absl::Milliseconds(500)}));
  }
}

void Broker::ReturnTestShare(const TestShare& share, const v1::TestConnectionReport& report) {
  if (!share.held) return;
  if (!share.permit_id.empty()) {
    for (const v1::TestStep& step : report.steps()) {
      if (step.kind() != v1::TEST_STEP_KIND_SEND_TEST_MESSAGE ||
          (step.status() != v1::TEST_STEP_STATUS_PASSED &&
           step.status() != v1::TEST_STEP_STATUS_FAILED)) {
        continue;
      }
      // The test message was sent (whatever the answer) and its session has closed.
      v1::SendResult result;
      result.set_outcome(step.status() == v1::TEST_STEP_STATUS_PASSED
                             ? v1::SEND_OUTCOME_DELIVERED
                             : v1::SEND_OUTCOME_TRANSIENT_FAILURE);
      result.set_accepted_recipients(1);
      quota_.Report(options_.node_name, share.permit_id, {result}, /*connection_closed=*/true)
          .IgnoreError();
      return;
    }
  }
  quota_.Release(options_.node_name, share.permit_id, share.connection_id,
                 /*connection_closed=*/true)
      .IgnoreError();
}

absl::StatusOr<v1::UpdateSettingsResponse> Broker::UpdateSettings(
    const v1::UpdateSettingsRequest& request, const std::string& updated_by) {
  if (!request.has_settings()) return absl::InvalidArgumentError("settings: required");
  std::shared_ptr<Active> a = active();
  MR_ASSIGN_OR_RETURN(
      v1::SmtpSettings merged,
      MergeStoredCredential(request.settings(), a ? &a->saved.settings : nullptr,
                            options_.default_authority_host));
  MR_ASSIGN_OR_RETURN(const v1::SmtpSettings resolved,
                      ResolveGivenSettings(&merged, options_.default_authority_host));
  if (!request.etag().empty() && (a == nullptr || a->etag != request.etag())) {
    return WithReason(absl::AbortedError("etag: the settings changed since they were read; "
                                         "read them again"),
                      "ETAG_MISMATCH");
  }
  const std::string fingerprint = SettingsFingerprint(resolved);
  TestRecord record;
  {
    absl::MutexLock lock(&mu_);
    auto it = tests_.find(request.test_id());
    if (request.test_id().empty() || it == tests_.end() ||
        clock_->Now() - it->second.time > options_.test_validity) {
      return WithReason(absl::FailedPreconditionError(
                            "test_id: settings are saved only after a successful Test "
                            "Connection of the same settings in the last 15 minutes"),
                        "TEST_CONNECTION_REQUIRED");
    }
    record = it->second;
  }
  if (record.fingerprint.empty()) {
    return WithReason(absl::FailedPreconditionError(
                          "test_id: that Test Connection tested a pool mailbox; settings are "
                          "saved after a passed test of their default mailbox (no mailbox)"),
                      "TEST_CONNECTION_REQUIRED");
  }
  if (record.fingerprint != fingerprint) {
    return WithReason(absl::FailedPreconditionError(
                          "test_id: that Test Connection tested different settings; test "
                          "these settings, then save"),
                      "TEST_CONNECTION_REQUIRED");
  }
  if (!record.passed) {
    return WithReason(
        WithDiagnosis(absl::FailedPreconditionError(absl::StrCat(
                          "not saved because Test Connection failed: ",
                          record.report.diagnosis().title())),
                      record.report.diagnosis()),
        "TEST_CONNECTION_FAILED");
  }

  const absl::Time now = clock_->Now();
  SavedSettings saved;
  saved.settings = merged;
  saved.settings.clear_token_endpoint();
  // A pasted bundle is kept as the certificates it holds, nothing else; a file is kept as its
  // path and checked again at every load.
  auto keep_parsed = [](v1::TrustStore* store, const v1::TrustStore& parsed) {
    if (store->has_ca_bundle_pem()) store->set_ca_bundle_pem(parsed.ca_bundle_pem());
  };
  v1::SmtpSettings& kept = saved.settings;
  if (kept.has_smtp_trust_store()) {
    keep_parsed(kept.mutable_smtp_trust_store(), resolved.smtp_trust_store());
  }
  if (kept.has_authority_trust_store()) {
    keep_parsed(kept.mutable_authority_trust_store(), resolved.authority_trust_store());
  }
  if (kept.proxy().has_trust_store()) {
    keep_parsed(kept.mutable_proxy()->mutable_trust_store(), resolved.proxy().trust_store());
  }
  saved.state.set_updated_by(updated_by);
  ToProto(now, saved.state.mutable_update_time());
  ToProto(record.time, saved.state.mutable_test_pass_time());
  saved.state.set_etag(fingerprint.substr(0, 32));
  if (a != nullptr && SameCredential(a->saved.settings, merged)) {
    absl::MutexLock lock(&mu_);
    *saved.state.mutable_credential_update_time() = a->saved.state.credential_update_time();
    *saved.state.mutable_fired_expiry_alarm_days() = a->saved.state.fired_expiry_alarm_days();
    *saved.state.mutable_fired_expiry_alarm_times() = a->saved.state.fired_expiry_alarm_times();
  } else {
    ToProto(now, saved.state.mutable_credential_update_time());
  }
  const bool new_credential = a == nullptr || !SameCredential(a->saved.settings, merged);
  // Saved only after a passed Test Connection, which for a fallback mailbox tested SMTP.
  saved.state.mutable_effective_transport()->set_transport(
      merged.transport() == v1::MAIL_TRANSPORT_GRAPH ? v1::MAIL_TRANSPORT_GRAPH
                                                     : v1::MAIL_TRANSPORT_SMTP);
  ToProto(now, saved.state.mutable_effective_transport()->mutable_since());
  MR_RETURN_IF_ERROR(store_->Save(saved));
  if (a != nullptr) {
    // Every mailbox of the new settings starts on SMTP: no fallback alarm of the old ones holds.
    std::map<std::string, v1::EffectiveTransport> replaced;
    {
      absl::MutexLock lock(&mu_);
      replaced = SavedTransports(a->saved.state, *a->pool);
    }
    for (const PoolMember& member : a->pool->members()) {
      if (member.transport == v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK &&
          replaced[member.address].transport() == v1::MAIL_TRANSPORT_GRAPH) {
        alarms_->ClearOwn(options_.node_name, absl::StrCat("transport-fallback/", member.address),
                          absl::StrCat("new settings were saved by ", updated_by));
      }
    }
  }
  if (new_credential && a != nullptr) ClearExpiryAlarms(a->saved.settings, updated_by);
  MR_ASSIGN_OR_RETURN(std::shared_ptr<Active> activated, Activate(saved));
  std::shared_ptr<Active> previous;
  {
    absl::MutexLock lock(&mu_);
    previous = std::move(active_);
    active_ = std::move(activated);
    ResetFallbacks(active_->saved, *active_->pool, fallbacks_);
    tests_.erase(request.test_id());
  }
  previous.reset();  // stops the old token refresher outside the lock
  MR_LOG(kInfo, kLogBroker) << "settings saved by " << updated_by << " for mailbox "
                            << resolved.username();
  CheckSecretExpiry();
  v1::UpdateSettingsResponse response;
  v1::GetSettingsResponse view = GetSettings();
  *response.mutable_settings() = view.settings();
  *response.mutable_credential_status() = view.credential_status();
  response.set_etag(view.etag());
  *response.mutable_update_time() = view.update_time();
  return response;
}

absl::StatusOr<v1::ReportSendResultResponse> Broker::ReportSendResult(
    const std::string& node, const v1::ReportSendResultRequest& request,
    absl::Duration lease_cap) {
  std::vector<v1::SendResult> results(request.results().begin(), request.results().end());
  // The permit's mailbox: a pool mailbox's 5.2.0 pauses that mailbox only, and a mailbox's SMTP
  // results feed its own Graph fallback, if it has one.
  std::string box = quota_.PermitMailbox(request.permit_id());
  MR_ASSIGN_OR_RETURN(v1::ReportSendResultResponse response,
                      quota_.Report(node, request.permit_id(), results,
                                    request.connection_closed(), lease_cap));
  if (box.empty()) box = mailbox();
  NoteSendResults(box, node, results);
  const v1::SendResult* exceeded = nullptr;
  for (const v1::SendResult& result : results) {
    if (result.outcome() == v1::SEND_OUTCOME_QUOTA_EXCEEDED) exceeded = &result;
  }
  if (exceeded == nullptr || !response.has_mailbox_paused_until()) return response;
  const absl::Time until = FromProto(response.mailbox_paused_until());
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = alarmed_pauses_.try_emplace(box, until);
    if (!inserted && it->second == until) return response;  // this pause is alarmed already
    it->second = until;
  }
  const std::string resume = absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", until, absl::UTCTimeZone());
  RaiseAlarmRequest alarm;
  alarm.set_type(mv1::ALARM_TYPE_SEND_QUOTA_EXCEEDED);
  alarm.set_severity(mv1::ALARM_SEVERITY_CRITICAL);
  alarm.set_source_node(options_.node_name);
  alarm.set_dedup_key(absl::StrCat("send-quota/", box));
  alarm.set_text(absl::StrCat(
      "Exchange refused mail from ", box, " because its sending quota is exceeded (reported by ",
      node, ": ", exceeded->reply_text(),
      "). Sending from ", box, " is paused on every node until ", resume,
      ", when its rolling 24-hour window allows mail again; queued mail waits and goes out "
      "then. Fix: find what sent so much (mailroomctl quota); once the cause is fixed and "
      "Exchange accepts mail again, mailroomctl quota resume ", box,
      " ends the pause at once. This alarm cannot be emailed through ", box,
      " while it is paused: see mailroomctl alarm list."));
  if (exceeded->has_diagnosis()) *alarm.mutable_diagnosis() = exceeded->diagnosis();
  ToProto(clock_->Now(), alarm.mutable_occur_time());
  alarm.set_idempotency_key(absl::StrCat("send-quota/", box, "/", absl::ToUnixSeconds(until)));
  MR_LOG(kWarn, kLogBroker) << alarm.text();
  alarms_->Raise(std::move(alarm));
  expiry_checker_.Wake();  // it clears the alarm when the pause ends
  return response;
}

absl::StatusOr<v1::ResumeMailboxResponse> Broker::ResumeMailbox(
    const v1::ResumeMailboxRequest& request, const std::string& admin) {
  if (request.mailbox().empty()) return absl::InvalidArgumentError("mailbox: required");
  if (request.reason().size() > 1024) {
    return absl::InvalidArgumentError("reason: at most 1024 bytes");
  }
  MR_ASSIGN_OR_RETURN(const std::string box, SendingMailbox(request.mailbox()));
  v1::ResumeMailboxResponse response;
  response.set_was_paused(quota_.Resume(box));
  ClearPauseAlarm(box, absl::StrCat("resumed by ", admin,
                                    request.reason().empty() ? "" : ": ", request.reason()));
  if (response.was_paused()) {
    MR_LOG(kInfo, kLogBroker) << "mailbox " << box << " resumed by " << admin;
  }
  std::vector<v1::MailboxQuota> status = quota_.Status(box);
  if (!status.empty()) *response.mutable_quota() = status.front();
  return response;
}

absl::Time Broker::CheckPauses() {
  const absl::Time now = clock_->Now();
  std::vector<std::string> ended;
  absl::Time next = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [box, until] : alarmed_pauses_) {
      // The quota is the truth (a later 5.2.0 may have extended the pause).
      const absl::Time paused_until = quota_.PausedUntil(box);
      if (now >= until && paused_until <= now) {
        ended.push_back(box);
      } else {
        next = std::min(next, std::max(until, paused_until));
      }
    }
  }
  for (const std::string& box : ended) ClearPauseAlarm(box, "the pause ran out");
  return next;
}

void Broker::ClearPauseAlarm(const std::string& mailbox, const std::string& reason) {
  {
    absl::MutexLock lock(&mu_);
    alarmed_pauses_.erase(mailbox);
  }
  alarms_->ClearOwn(options_.node_name, absl::StrCat("send-quota/", mailbox), reason);
}

void Broker::ClearExpiryAlarms(const v1::SmtpSettings& replaced, const std::string& updated_by) {
  // The replaced credential's alarm (raised under either kind, whichever it was) no longer
  // applies; the new one's lead times start afresh.
  for (const char* kind : {"client-secret-expiry/", "certificate-expiry/"}) {
    alarms_->ClearOwn(options_.node_name, absl::StrCat(kind, replaced.client_id()),
                      absl::StrCat("a new credential was saved by ", updated_by));
  }
}

void Broker::CheckSecretExpiry() {
  absl::MutexLock lock(&mu_);
  if (active_ == nullptr) return;
  SavedSettings& saved = active_->saved;
  const absl::Time expiry = CredentialExpiry(saved.settings);
  if (expiry == absl::InfiniteFuture()) return;
  const absl::Time now = clock_->Now();
  std::vector<int> due;
  for (int lead : options_.expiry_alarm_days) {
    const auto& fired = saved.state.fired_expiry_alarm_days();
    if (std::find(fired.begin(), fired.end(), lead) != fired.end()) continue;
    if (now >= expiry - lead * kDay) due.push_back(lead);
  }
  if (due.empty()) return;
  // Only the most urgent due lead time is raised; larger ones it supersedes are marked too,
  // so a secret entered 5 days before expiry raises one alarm, not three.
  const int lead = *std::min_element(due.begin(), due.end());
  for (int marked : due) {
    saved.state.add_fired_expiry_alarm_days(marked);
    ToProto(now, saved.state.add_fired_expiry_alarm_times());
  }
  const bool certificate = saved.settings.has_certificate();
  const int days_left = DaysLeft(expiry, now);
  const std::string date = absl::FormatTime("%Y-%m-%d", expiry, absl::UTCTimeZone());
  // The seed's name for the secret ("SMTP OAuth Client Secret").
  const std::string what = certificate ? "Certificate credential" : "SMTP OAuth Client Secret";
  const std::string text =
      now >= expiry
          ? absl::StrCat(what, " of app ", saved.settings.client_id(), " expired on ", date,
                         ": mail cannot be sent. Create a new one in Entra ID and update it "
                         "on the SMTP Server settings.")
          : absl::StrCat(what, " of app ", saved.settings.client_id(), " expires in ", days_left,
                         days_left == 1 ? " day" : " days", " (", date,
                         "). Create a new one in Entra ID and update it, with its expiry "
                         "date, on the SMTP Server settings.");
  RaiseAlarmRequest alarm;
  alarm.set_type(certificate ? mv1::ALARM_TYPE_CERTIFICATE_EXPIRY
                             : mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  alarm.set_severity(lead <= 1 ? mv1::ALARM_SEVERITY_CRITICAL : mv1::ALARM_SEVERITY_WARNING);
  alarm.set_source_node(options_.node_name);
  alarm.set_dedup_key(absl::StrCat(certificate ? "certificate-expiry/" : "client-secret-expiry/",
                                   saved.settings.client_id()));
  alarm.set_text(text);
  ToProto(now, alarm.mutable_occur_time());
  alarm.set_idempotency_key(absl::StrCat("secret-expiry/", saved.settings.client_id(), "/",
                                         saved.state.credential_update_time().seconds(), "/",
                                         lead));
  if (absl::Status status = store_->Save(saved); !status.ok()) {
    if (ReasonOf(status) == kNotLeaderReason) {
      // A standby: the leader raises the alarm and records its mark, which reaches this
      // broker through etcd.
      const int marks = static_cast<int>(due.size());
      saved.state.mutable_fired_expiry_alarm_days()->Truncate(
          saved.state.fired_expiry_alarm_days_size() - marks);
      saved.state.mutable_fired_expiry_alarm_times()->DeleteSubrange(
          saved.state.fired_expiry_alarm_times_size() - marks, marks);
      return;
    }
    MR_LOG(kError, kLogBroker) << "cannot record the fired expiry alarm: " << status;
  }
  MR_LOG(kWarn, kLogBroker) << text;
  alarms_->Raise(std::move(alarm));
}

v1::GetSecretStatusResponse Broker::GetSecretStatus() {
  v1::GetSecretStatusResponse response;
  absl::MutexLock lock(&mu_);
  if (active_ == nullptr) return response;
  const SavedSettings& saved = active_->saved;
  *response.mutable_credential_status() = CredentialStatusOf(saved, clock_->Now());
  const absl::Time expiry = CredentialExpiry(saved.settings);
  std::vector<int> leads = options_.expiry_alarm_days;
  std::sort(leads.rbegin(), leads.rend());
  for (int lead : leads) {
    v1::ExpiryAlarmMark* mark = response.add_expiry_alarms();
    mark->set_lead_days(lead);
    if (expiry != absl::InfiniteFuture()) ToProto(expiry - lead * kDay, mark->mutable_due_time());
    const auto& fired = saved.state.fired_expiry_alarm_days();
    for (int i = 0; i < fired.size(); ++i) {
      if (fired[i] == lead && i < saved.state.fired_expiry_alarm_times_size()) {
        *mark->mutable_fire_time() = saved.state.fired_expiry_alarm_times(i);
      }
    }
  }
  return response;
}

}  // namespace mailroom::broker
