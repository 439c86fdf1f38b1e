#include "tests/testing/broker_harness.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"

namespace mailroom::testing {

namespace v1 = ::mailroom::broker::v1;

absl::StatusOr<std::unique_ptr<BrokerHarness>> BrokerHarness::Start(const std::string& dir,
                                                                    const std::string& certs,
                                                                    const Testbed& testbed,
                                                                    const std::string& broker_section,
                                                                    const std::string& top_level_config) {
  return StartWithAuthority(dir, certs, testbed.Env("TOKEN_URL_BASE"), broker_section,
                            top_level_config);
}

absl::StatusOr<std::unique_ptr<BrokerHarness>> BrokerHarness::StartWithAuthority(
    const std::string& dir, const std::string& certs, const std::string& authority_host,
    const std::string& broker_section, const std::string& top_level_config) {
  return StartPlaced({}, dir, certs, authority_host, broker_section, top_level_config);
}

absl::StatusOr<std::unique_ptr<BrokerHarness>> BrokerHarness::StartPlaced(
    const NetworkPlacement& placement, const std::string& dir, const std::string& certs,
    const std::string& authority_host, const std::string& broker_section,
    const std::string& top_level_config) {
  std::unique_ptr<BrokerHarness> harness(new BrokerHarness());
  harness->placement_ = placement;
  harness->dir_ = dir;
  harness->certs_ = certs;
  harness->config_path_ = absl::StrCat(dir, "/broker.textproto");
  if (system(absl::StrCat("mkdir -p '", dir, "/data'").c_str()) != 0) {
    return absl::InternalError("cannot create the broker's directory");
  }
  harness->port_ = UnusedLoopbackPort();
  std::ofstream(harness->config_path_) << absl::StrCat(
      "node_name: \"broker\"\n", "role: ROLE_BROKER\n", "listen_address: \"", placement.listen_host, ":",
      harness->port_, "\"\n", "tls { ca_file: \"", certs, "/ca.pem\" cert_file: \"", certs,
      "/broker.pem\" key_file: \"", certs, "/broker.key\" }\n", "data_dir: \"", dir, "/data\"\n",
      "logging { default_level: LOG_LEVEL_TRACE }\n", "broker { default_authority_host: \"",
      authority_host, "\" ",
      absl::StrReplaceAll(broker_section, {{"$PORT", absl::StrCat(harness->port_)},
                                          {"$NAME", placement.name}}), " }\n",
      top_level_config, "\n");
  if (absl::Status status = harness->Launch(); !status.ok()) return status;
  return harness;
}

BrokerHarness::~BrokerHarness() {
  if (process_ != nullptr) process_->Terminate();
}

std::string BrokerHarness::target() const { return absl::StrCat(placement_.name, ":", port_); }

absl::Status BrokerHarness::Launch() {
  const std::string port_file = absl::StrCat(dir_, "/port");
  std::remove(port_file.c_str());
  process_ = std::make_unique<ChildProcess>(
      PlacedCommand(placement_, {TestbedRunfile("pan/broker/mailroom-broker"),
                                 absl::StrCat("--config=", config_path_),
                                 absl::StrCat("--port_file=", port_file)}),
      absl::StrCat(dir_, "/broker.log"));
  if (WaitForFile(port_file, absl::Seconds(20)).empty()) {
    return absl::UnavailableError(absl::StrCat("mailroom-broker did not start; its log:\n",
                                               ReadAll(absl::StrCat(dir_, "/broker.log"))));
  }
  return absl::OkStatus();
}

absl::Status BrokerHarness::Restart() {
  if (process_ != nullptr && process_->running()) process_->Terminate();
  return Launch();
}

std::shared_ptr<grpc::Channel> BrokerHarness::ChannelAs(const std::string& node) const {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = MakeChannelCredentials(
      {absl::StrCat(certs_, "/ca.pem"), absl::StrCat(certs_, "/", node, ".pem"),
       absl::StrCat(certs_, "/", node, ".key")},
      Role::kBroker);
  // A private subchannel pool: the connection closes with the channel instead of lingering in
  // the process-wide pool (where it would hold up the broker's graceful restarts).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target(), *credentials, args);
}

std::unique_ptr<v1::TokenBroker::Stub> BrokerHarness::StubAs(const std::string& node) const {
  return v1::TokenBroker::NewStub(ChannelAs(node));
}

grpc::health::v1::HealthCheckResponse::ServingStatus BrokerHarness::Health(
    const std::string& node) const {
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  const grpc::Status status = grpc::health::v1::Health::NewStub(ChannelAs(node))->Check(
      &context, grpc::health::v1::HealthCheckRequest(), &response);
  return status.ok() ? response.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
}

absl::Status BrokerHarness::ProvisionStandby(const std::string& dir) const {
  if (system(absl::StrCat("mkdir -p '", dir, "/data' && cp '", dir_, "/data/broker.key' '", dir,
                          "/data/'")
                 .c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot copy the broker key to ", dir));
  }
  return absl::OkStatus();
}

v1::SmtpSettings BrokerHarness::TestbedSettings(const Testbed& testbed) {
  v1::SmtpSettings settings;
  settings.set_smtp_host("localhost");
  settings.set_port(testbed.EnvInt("SMTP_PORT"));
  settings.mutable_connection_timeout()->set_seconds(10);
  settings.set_username(testbed.Env("MAILBOX"));
  settings.set_tenant_id(testbed.Env("TENANT"));
  settings.set_client_id(testbed.Env("CLIENT_ID"));
  settings.set_authority_host(testbed.Env("TOKEN_URL_BASE"));
  settings.mutable_client_secret()->set_secret(testbed.Env("CLIENT_SECRET"));
  settings.mutable_client_secret()->mutable_expire_time()->set_seconds(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(24 * 90)));
  settings.mutable_smtp_trust_store()->set_ca_file(testbed.Env("CA_FILE"));
  return settings;
}

absl::StatusOr<v1::TestConnectionReport> BrokerHarness::TestConnection(
    const v1::SmtpSettings& settings, const std::string& test_recipient) {
  v1::TestConnectionRequest request;
  *request.mutable_settings() = settings;
  if (!test_recipient.empty()) request.mutable_test_recipient()->set_address(test_recipient);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(90)));
  auto stub = StubAs("admin");
  auto reader = stub->TestConnection(&context, request);
  v1::TestConnectionResponse event;
  v1::TestConnectionReport report;
  int events = 0;
  while (reader->Read(&event)) {
    ++events;
    if (event.has_report()) report = event.report();
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  if (report.test_id().empty()) return absl::InternalError("no report in the stream");
  return report;
}

absl::Status BrokerHarness::Configure(const v1::SmtpSettings& settings) {
  absl::StatusOr<v1::TestConnectionReport> report = TestConnection(settings);
  if (!report.ok()) return report.status();
  if (!report->passed()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Test Connection failed: ", report->diagnosis().title(), " / ",
                     report->diagnosis().raw_reply()));
  }
  v1::UpdateSettingsRequest request;
  *request.mutable_settings() = settings;
  request.set_test_id(report->test_id());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::UpdateSettingsResponse response;
  return FromGrpcStatus(StubAs("admin")->UpdateSettings(&context, request, &response));
}

}  // namespace mailroom::testing
