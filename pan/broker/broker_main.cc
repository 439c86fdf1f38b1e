// mailroom-broker: the token broker node. Holds the only copy of the OAuth credential,
// serves access tokens and send permits to the role nodes over mutual TLS, and lets admins
// configure and test the SMTP / OAuth settings; admins read its status (NodeStatus).
//
//   mailroom-broker --config=/etc/mailroom/broker.textproto
#include <sys/prctl.h>

#include <fstream>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"
#include "common/node/alarm_reporter.h"
#include "common/node/node_status_service.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "common/crypto/aes_gcm.h"
#include "common/crypto/jwt_assertion.h"
#include "common/etcd/etcd_client.h"
#include "common/rpc/grpc_server.h"
#include "common/rpc/http_transport.h"
#include "common/base/logging.h"
#include "common/base/metrics.h"
#include "common/base/status_macros.h"
#include "common/node/role_main.h"
#include "common/rpc/serve_until_terminated.h"
#include "common/rpc/tls.h"
#include "pan/broker/broker.h"
#include "pan/broker/broker_service.h"
#include "pan/broker/election_status.h"
#include "pan/broker/graph_connection_tester.h"
#include "pan/broker/leader_fence.h"
#include "pan/broker/leader_election.h"
#include "pan/broker/quota_ledger.h"
#include "pan/broker/settings_replica.h"
#include "pan/broker/smtp_connection_tester.h"
#include "pan/broker/smtp_settings.h"
#include "pan/broker/token_client.h"

namespace mailroom::broker {
namespace {

namespace cfg = ::mailroom::config::v1;

// A term that starts after no broker led for this long holds grants for the nodes' reports of
// offline sends: well under DeliveryOptions::offline_grace (75 s), by more than a lease TTL.
constexpr absl::Duration kOfflineSendersPossibleAfter = absl::Seconds(30);

constexpr char kSystemBundle[] = "/etc/ssl/certs/ca-certificates.crt";

// A token client that owns its HTTP transport.
class OwningTokenClient final : public TokenClient {
 public:
  OwningTokenClient(std::unique_ptr<HttpTransport> transport, TokenEndpointConfig config,
                    std::unique_ptr<ClientCredential> credential, const Clock* clock)
      : transport_(std::move(transport)),
        client_(std::move(config), std::move(credential), transport_.get(), clock) {}
  absl::StatusOr<AccessToken> Fetch() override { return client_.Fetch(); }

 private:
  std::unique_ptr<HttpTransport> transport_;
  EntraTokenClient client_;
};

absl::StatusOr<std::string> TrustPem(const v1::TrustStore& trust) {
  std::string pem;
  if (trust.source_case() == v1::TrustStore::kCaFile) {
    MR_ASSIGN_OR_RETURN(pem, ReadFileToString(trust.ca_file()));
  } else if (trust.source_case() == v1::TrustStore::kCaBundlePem) {
    pem = trust.ca_bundle_pem();
  }
  if (!pem.empty() && !trust.exclude_system_roots()) {
    absl::StatusOr<std::string> system = ReadFileToString(kSystemBundle);
    if (system.ok()) pem = absl::StrCat(*system, "\n", pem);
  }
  return pem;
}

TokenClientFactory MakeTokenClientFactory(const Clock* clock, absl::Duration request_timeout) {
  return [clock, request_timeout](
             const v1::SmtpSettings& resolved) -> absl::StatusOr<std::unique_ptr<TokenClient>> {
    CurlHttpTransport::Options transport_options;
    absl::StatusOr<std::string> trust = TrustPem(resolved.authority_trust_store());
    if (!trust.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("settings.authority_trust_store: ", trust.status().message()));
    }
    transport_options.ca_pem = *trust;
    // The proxy, its credentials read and its trust store inlined by the broker.
    transport_options.proxy = ProxyConfigOf(resolved);
    std::unique_ptr<ClientCredential> credential;
    if (resolved.has_certificate()) {
      absl::StatusOr<crypto::ClientAssertionSigner> signer = crypto::ClientAssertionSigner::Create(
          resolved.certificate().certificate_pem(), resolved.certificate().private_key_pem());
      if (!signer.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("settings.certificate: ", signer.status().message()));
      }
      auto shared = std::make_shared<crypto::ClientAssertionSigner>(*std::move(signer));
      const std::string client_id = resolved.client_id();
      const std::string audience = resolved.token_endpoint();
      credential = std::make_unique<CertificateAssertion>(
          [shared, client_id, audience](absl::Time now) -> absl::StatusOr<std::string> {
            MR_ASSIGN_OR_RETURN(std::string jti, crypto::NewJwtId());
            crypto::ClientAssertionClaims claims;
            claims.client_id = client_id;
            claims.audience = audience;
            claims.jti = std::move(jti);
            claims.issued_at = now;
            return shared->Sign(claims);
          });
    } else {
      credential = std::make_unique<ClientSecret>(resolved.client_secret().secret());
    }
    return std::unique_ptr<TokenClient>(std::make_unique<OwningTokenClient>(
        std::make_unique<CurlHttpTransport>(transport_options),
        TokenEndpointConfig{resolved.token_endpoint(), resolved.client_id(), resolved.scope(),
                            request_timeout},
        std::move(credential), clock));
  };
}

// Brokers elected through etcd (broker.ha): the client of etcd, the sealed settings record
// and the quota ledger kept there, and the election, which loads the ledger and takes up the
// settings when it wins and reports leadership to the gRPC health service.
struct Election {
  std::unique_ptr<CurlHttpTransport> transport;
  std::unique_ptr<etcd::EtcdClient> etcd;
  // Guards the settings record's and the ledger's writes with the term this broker won.
  std::unique_ptr<LeaderFence> fence;
  std::unique_ptr<SettingsReplica> settings;
  std::unique_ptr<QuotaLedger> ledger;
  std::unique_ptr<LeaderElection> election;
  // While this broker stands by: keeps its settings those the leader saved.
  std::unique_ptr<BackgroundLoop> follower;
};

LeaderElectionOptions ElectionOptions(const cfg::BrokerHaConfig& ha) {
  LeaderElectionOptions options;
  if (!ha.election_key().empty()) options.election_key = ha.election_key();
  options.advertised_address = ha.advertised_address();
  options.ttl = FromProtoOr(ha.lease_ttl(), options.ttl);
  return options;
}

// The etcd client and the settings record: the settings store writes through them.
Election ConnectEtcd(const cfg::BrokerHaConfig& ha) {
  Election out;
  CurlHttpTransport::Options transport_options;
  transport_options.ca_file = ha.etcd_ca_file();
  transport_options.client_cert_file = ha.etcd_cert_file();
  transport_options.client_key_file = ha.etcd_key_file();
  out.transport = std::make_unique<CurlHttpTransport>(transport_options);
  const LeaderElectionOptions options = ElectionOptions(ha);
  etcd::EtcdClientOptions etcd_options;
  etcd_options.endpoints.assign(ha.etcd_endpoints().begin(), ha.etcd_endpoints().end());
  // A renewal, failing over across the members, must fit well inside a round (ttl / 3).
  etcd_options.request_timeout = std::max(absl::Milliseconds(200), options.ttl / 12);
  out.etcd = std::make_unique<etcd::EtcdClient>(etcd_options, out.transport.get());
  LeaderFenceOptions fence_options;
  fence_options.election_key = options.election_key;
  out.fence = std::make_unique<LeaderFence>(fence_options, out.etcd.get());
  out.settings = std::make_unique<SettingsReplica>(SettingsReplicaOptions(), out.fence.get());
  return out;
}

// Takes up the settings etcd holds if they differ from this broker's.
absl::Status FollowSettings(SettingsStore& store, SettingsStore::SyncMode mode, Broker& broker) {
  MR_ASSIGN_OR_RETURN(const bool changed, store.Sync(mode));
  return changed ? broker.ReloadSettings() : absl::OkStatus();
}

void StartElection(const cfg::BrokerHaConfig& ha, SettingsStore& store, Broker& broker,
                   std::function<void(bool)> on_change, Election& out) {
  LeaderElectionOptions options = ElectionOptions(ha);
  options.on_change = std::move(on_change);
  out.ledger =
      std::make_unique<QuotaLedger>(QuotaLedgerOptions(), out.fence.get(), &broker.quota());
  options.on_elected = [&out, &store, &broker](const etcd::KeyHold& hold) {
    MR_RETURN_IF_ERROR(out.ledger->Load(hold));
    out.settings->Guard(hold);
    return FollowSettings(store, SettingsStore::SyncMode::kElected, broker);
  };
  options.on_term_start = [&broker](absl::Duration leaderless_for) {
    // Role nodes go offline only after DeliveryOptions::offline_grace (75 s) without a leader;
    // this broker's view of the outage can be short of theirs by about a lease TTL.
    if (leaderless_for < kOfflineSendersPossibleAfter) return;
    MR_LOG(kWarn, kLogBroker) << "no broker led for " << leaderless_for
                              << " as this one saw it: role nodes may have sent on their offline "
                              << "allowance; grants wait " << kOfflineReportHold
                              << " for their reports";
    broker.quota().HoldForOfflineReports(kOfflineReportHold);
  };
  out.election = std::make_unique<LeaderElection>(options, out.etcd.get(),
                                                  &MonotonicClock::Get());
  const absl::Duration follow_interval = options.ttl;
  out.follower = std::make_unique<BackgroundLoop>(
      &MonotonicClock::Get(), [&out, &store, &broker, follow_interval] {
        if (!out.election->leading()) {
          if (absl::Status status =
                  FollowSettings(store, SettingsStore::SyncMode::kStandby, broker);
              !status.ok()) {
            MR_LOG(kWarn, kLogBroker) << "cannot take up the leader's settings from etcd: "
                                      << status;
          }
        }
        return MonotonicClock::Get().Now() + follow_interval;
      });
}

int Run(const RoleStart& start) {
  const NodeConfig& config = start.config;
  const cfg::BrokerConfig& broker_config = config.broker();
  const std::string key_file = broker_config.key_file().empty()
                                   ? absl::StrCat(config.data_dir(), "/broker.key")
                                   : broker_config.key_file();
  const std::string state_file = broker_config.state_file().empty()
                                     ? absl::StrCat(config.data_dir(), "/broker-settings.bin")
                                     : broker_config.state_file();
  absl::StatusOr<std::string> key = crypto::LoadOrCreateKeyFile(key_file);
  if (!key.ok()) {
    MR_LOG(kError, kLogBroker) << "broker.key_file: " << key.status().message();
    return 1;
  }
  const bool elected = broker_config.ha().etcd_endpoints_size() > 0;
  Election election;
  if (elected) election = ConnectEtcd(broker_config.ha());
  SettingsStore store(state_file, *std::move(key), election.settings.get());
  RealClock& clock = RealClock::Get();

  const cfg::TokenRefreshPolicy& refresh = broker_config.token_refresh();
  BrokerOptions options;
  options.node_name = config.node_name();
  options.default_authority_host = broker_config.default_authority_host();
  if (refresh.refresh_fraction() > 0 && refresh.refresh_fraction() < 1) {
    options.token_policy.refresh_fraction = refresh.refresh_fraction();
  }
  options.token_policy.refresh_margin = FromProtoOr(refresh.expiry_margin(), absl::Minutes(5));
  options.token_policy.initial_backoff = FromProtoOr(refresh.retry_initial_backoff(), absl::Seconds(1));
  options.token_policy.max_backoff = FromProtoOr(refresh.retry_max_backoff(), absl::Minutes(5));
  options.forced_refresh_min_interval = FromProtoOr(refresh.forced_refresh_min_interval(), absl::Minutes(1));
  if (broker_config.secret_expiry_alarm_days_size() > 0) {
    options.expiry_alarm_days.assign(broker_config.secret_expiry_alarm_days().begin(),
                                     broker_config.secret_expiry_alarm_days().end());
  }
  options.send_limits = ResolveSendLimits(broker_config.send_limits());
  if (broker_config.fallback_connect_failures() > 0) {
    options.fallback.connect_failures = broker_config.fallback_connect_failures();
  }
  options.fallback.connect_outage =
      FromProtoOr(broker_config.fallback_connect_outage(), options.fallback.connect_outage);

  const TlsFiles tls = TlsFilesOf(config);
  std::unique_ptr<AlarmReporter> alarms;
  if (!config.mnt_target().empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        MakeChannelCredentials(tls, Role::kMnt);
    if (!credentials.ok()) {
      MR_LOG(kError, kLogBroker) << credentials.status().message();
      return 1;
    }
    alarms = std::make_unique<MntAlarmReporter>(
        grpc::CreateChannel(config.mnt_target(), *credentials), &clock);
  } else {
    alarms = std::make_unique<LoggingAlarmReporter>();
  }

  const absl::Time start_time = clock.Now();
  const TokenClientFactory token_clients =
      MakeTokenClientFactory(&clock, FromProtoOr(refresh.request_timeout(), absl::Seconds(30)));
  SmtpConnectionTester smtp_tester(&clock);
  // A Graph mailbox is tested through Graph: its HTTPS trust is the mail endpoints' store.
  GraphConnectionTester tester(
      &smtp_tester, token_clients,
      [](const v1::SmtpSettings& resolved) -> std::unique_ptr<HttpTransport> {
        CurlHttpTransport::Options transport_options;
        transport_options.ca_pem = TrustPem(resolved.smtp_trust_store()).value_or("");
        transport_options.proxy = ProxyConfigOf(resolved);
        return std::make_unique<CurlHttpTransport>(std::move(transport_options));
      },
      &clock);
  absl::BitGen bitgen;
  absl::Mutex bitgen_mu;
  Broker broker(options, &store, &clock, token_clients, &tester, alarms.get(), [&] {
    absl::MutexLock lock(&bitgen_mu);
    return absl::Uniform<double>(bitgen, 0.0, 1.0);
  });
  if (absl::Status status = broker.Start(); !status.ok()) {
    MR_LOG(kError, kLogBroker) << "cannot start: " << status.message();
    return 1;
  }
  std::vector<std::string> admins(broker_config.admin_identities().begin(),
                                  broker_config.admin_identities().end());
  // The election reports to the server's health service; it starts only after the server.
  GrpcServer* health = nullptr;
  if (elected) {
    StartElection(broker_config.ha(), store, broker,
                  [&health](bool leading) {
                    if (health != nullptr) health->SetServing(leading);
                  },
                  election);
  }
  BrokerService service(&broker, admins, election.election.get(), election.ledger.get());
  NodeStatusService status_service(
      {config.node_name(), config.role(), start_time}, &clock,
      [&](status::v1::GetNodeStatusResponse* response) {
        MR_RETURN_IF_ERROR(broker.FillStatus(response));
        if (elected) {
          FillElectionStatus(*election.election, election.etcd.get(), clock.Now(),
                             response->mutable_broker()->mutable_election());
        }
        return absl::OkStatus();
      },
      &admins);
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server_credentials =
      MakeServerCredentials(tls);
  if (!server_credentials.ok()) {
    MR_LOG(kError, kLogBroker) << server_credentials.status().message();
    return 1;
  }
  GrpcServer server({config.listen_address(), *server_credentials, {&service, &status_service},
                     config.grpc_reflection(), /*start_serving=*/!elected});
  if (absl::Status status = server.Start(); !status.ok()) {
    MR_LOG(kError, kLogBroker) << status.message();
    return 1;
  }
  MR_LOG(kInfo, kLogBroker) << "mailroom-broker " << config.node_name() << " serving on port "
                            << server.port();
  if (elected) {
    health = &server;
    election.election->Start();
    election.follower->Start();
    MR_LOG(kInfo, kLogBroker) << "standing for election as " << broker_config.ha().advertised_address()
                              << " (etcd: " << broker_config.ha().etcd_endpoints_size()
                              << " members)";
    Metrics::Global().RegisterGaugeCallback(
        "mailroom_broker_leader", "1 while this broker leads (brokers elected through etcd).",
        [&] {
          return std::vector<std::pair<MetricLabels, double>>{
              {{}, election.election->leading() ? 1.0 : 0.0}};
        });
  }
  if (!start.port_file.empty()) std::ofstream(start.port_file) << server.port() << "\n";
  Metrics::Global().RegisterGaugeCallback(
      "mailroom_token_age_seconds", "Seconds since the cached token was fetched.", [&] {
        std::vector<std::pair<MetricLabels, double>> out;
        const TokenCacheStats stats = broker.token_stats();
        if (stats.last_fetch_time != absl::InfinitePast()) {
          out.push_back({{}, absl::ToDoubleSeconds(clock.Now() - stats.last_fetch_time)});
        }
        return out;
      });
  // On SIGTERM an elected leader hands over at once (its term ends, its key and lease go),
  // so a standby leads within a round instead of a lease TTL.
  const int code = ServeUntilTerminated(server, config.metrics_listen_address(),
                                        absl::Seconds(10), kLogBroker, [&] {
                                          if (elected) election.election->Resign();
                                        });
  if (elected) {
    // Both refer to the broker and its store, which go before `election` does.
    election.follower->Stop();
    election.election->Stop();
  }
  if (code != 0) return code;
  broker.Stop();
  return 0;
}

}  // namespace
}  // namespace mailroom::broker

int main(int argc, char** argv) {
  // This process holds the client secret in memory: no core dump, and no ptrace by other
  // processes of the same user (the unit also sets LimitCORE=0).
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  return mailroom::RoleMain(argc, argv,
                            {"mailroom-broker", mailroom::common::v1::ROLE_BROKER,
                             "mailroom token broker: --config=<node config>"},
                            mailroom::broker::Run);
}
