// mailroomctl: the admin command line for a mailroom cluster, over mutual TLS with an admin
// certificate. Output is for people by default and JSON with --json.
//
//   mailroomctl --config=admin.textproto settings show
//   mailroomctl --config=admin.textproto settings test [--file=smtp.textproto]
//       [--client-secret-file=FILE --secret-expiry=YYYY-MM-DD] [--to=ADDRESS]
//   mailroomctl --config=admin.textproto settings set --file=smtp.textproto
//       [--client-secret-file=FILE --secret-expiry=YYYY-MM-DD] [--to=ADDRESS]
//   mailroomctl --config=admin.textproto secret status
//   mailroomctl --config=admin.textproto quota
//   mailroomctl --config=admin.textproto health
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <curl/curl.h>
#include <grpcpp/grpcpp.h>

#include <map>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/admin_context.h"
#include "cli/role_commands.h"
#include "cli/test_report_format.h"
#include "common/base/diagnosis.h"
#include "common/rpc/status_grpc.h"
#include "common/base/text_config.h"
#include "common/rpc/tls.h"
#include "google/protobuf/util/json_util.h"
#include "proto/mailroom/broker/v1/broker.grpc.pb.h"
#include "proto/mailroom/config/v1/config.pb.h"
#include "third_party/grpc_health/health.grpc.pb.h"

ABSL_FLAG(std::string, file, "", "SMTP settings (SmtpSettings, text format).");
ABSL_FLAG(std::string, client_secret_file, "",
          "File holding the client secret's value (never pass secrets as arguments).");
ABSL_FLAG(std::string, secret_expiry, "", "The client secret's expiry date, YYYY-MM-DD.");
ABSL_FLAG(std::string, url, "", "A node's metrics URL, e.g. http://127.0.0.1:9100/metrics.");
ABSL_FLAG(std::string, to, "", "Send a test message to this address during Test Connection.");

namespace mailroom::cli {
namespace {

namespace v1 = ::mailroom::broker::v1;
namespace cfg = ::mailroom::config::v1;
using ::grpc::health::v1::Health;


absl::StatusOr<v1::SmtpSettings> SettingsFromFlags() {
  v1::SmtpSettings settings;
  const std::string file = absl::GetFlag(FLAGS_file);
  if (!file.empty()) {
    if (absl::Status status = LoadTextConfigFile(file, &settings); !status.ok()) return status;
  }
  const std::string secret_file = absl::GetFlag(FLAGS_client_secret_file);
  if (!secret_file.empty()) {
    absl::StatusOr<std::string> secret = ReadFileToString(secret_file);
    if (!secret.ok()) return secret.status();
    settings.mutable_client_secret()->set_secret(
        std::string(absl::StripAsciiWhitespace(*secret)));
  }
  const std::string expiry = absl::GetFlag(FLAGS_secret_expiry);
  if (!expiry.empty()) {
    absl::Time time;
    std::string error;
    if (!absl::ParseTime("%Y-%m-%d", expiry, absl::UTCTimeZone(), &time, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("--secret_expiry: expected YYYY-MM-DD (",
                                                     error, ")"));
    }
    settings.mutable_client_secret()->mutable_expire_time()->set_seconds(absl::ToUnixSeconds(time));
  }
  return settings;
}

std::unique_ptr<v1::TokenBroker::Stub> BrokerStub(const Admin& admin) {
  return v1::TokenBroker::NewStub(admin.Channel(admin.config.broker_target()));
}

int SettingsShow(const Admin& admin) {
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  v1::GetSettingsResponse response;
  const grpc::Status status = BrokerStub(admin)->GetSettings(&context, {}, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  if (!response.configured()) {
    std::cout << "SMTP settings: not configured\n";
    return kExitOk;
  }
  const v1::SmtpSettings& s = response.settings();
  const v1::CredentialStatus& c = response.credential_status();
  std::cout << "SMTP server:        " << s.smtp_host() << ":" << s.port() << "\n"
            << "Connection timeout: " << s.connection_timeout().seconds() << " s\n"
            << "Authentication:     "
            << (s.use_authentication() ? "MS Exchange Online OAuth (XOAUTH2)" : "none") << "\n"
            << "Username:           " << s.username() << "\n"
            << "Tenant ID:          " << s.tenant_id() << "\n"
            << "Client ID:          " << s.client_id() << "\n"
            << "Token endpoint:     " << s.token_endpoint() << "  (derived)\n"
            << "Scope:              " << s.scope() << "\n"
            << "Credential:         "
            << (c.type() == v1::CREDENTIAL_TYPE_CERTIFICATE ? "certificate " : "client secret ")
            << (c.is_set() ? "set" : "NOT set");
  if (c.has_expire_time()) {
    std::cout << ", expires "
              << absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(c.expire_time().seconds()),
                                  absl::UTCTimeZone())
              << (c.expired() ? " (EXPIRED)" : absl::StrCat(" (", c.days_left(), " days left)"));
  }
  std::cout << "\nSaved:              "
            << absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                                absl::FromUnixSeconds(response.update_time().seconds()),
                                absl::UTCTimeZone())
            << " by " << response.updated_by() << "\n";
  return kExitOk;
}

// Runs Test Connection, printing each step as it finishes. Returns the report.
absl::StatusOr<v1::TestConnectionReport> RunTest(const Admin& admin,
                                                 const v1::SmtpSettings* settings) {
  v1::TestConnectionRequest request;
  if (settings != nullptr) *request.mutable_settings() = *settings;
  const std::string to = absl::GetFlag(FLAGS_to);
  if (!to.empty()) request.mutable_test_recipient()->set_address(to);
  grpc::ClientContext context;
  admin.SetDeadline(&context, absl::Minutes(5));
  std::unique_ptr<grpc::ClientReader<v1::TestConnectionResponse>> reader =
      BrokerStub(admin)->TestConnection(&context, request);
  const bool human = !absl::GetFlag(FLAGS_json);
  const bool tty = isatty(STDOUT_FILENO);
  if (human) std::cout << "Test Connection\n" << std::flush;
  v1::TestConnectionResponse event;
  v1::TestConnectionReport report;
  bool have_report = false;
  while (reader->Read(&event)) {
    if (event.has_report()) {
      report = event.report();
      have_report = true;
    } else if (human && event.step().status() == v1::TEST_STEP_STATUS_RUNNING) {
      if (tty) std::cout << "  " << StepName(event.step().kind()) << " ...\r" << std::flush;
    } else if (human) {
      std::cout << FormatStep(event.step()) << std::flush;
    }
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  if (!have_report) return absl::UnavailableError("the broker closed the test without a report");
  if (human) std::cout << FormatReportSummary(report);
  return report;
}

int SettingsTest(const Admin& admin) {
  absl::StatusOr<v1::SmtpSettings> settings = SettingsFromFlags();
  if (!settings.ok()) return Fail(settings.status());
  const bool saved = absl::GetFlag(FLAGS_file).empty() && absl::GetFlag(FLAGS_client_secret_file).empty();
  absl::StatusOr<v1::TestConnectionReport> report = RunTest(admin, saved ? nullptr : &*settings);
  if (!report.ok()) return Fail(report.status());
  if (absl::GetFlag(FLAGS_json)) std::cout << ToJson(*report) << "\n";
  return report->passed() ? kExitOk : kExitFailed;
}

int SettingsSet(const Admin& admin) {
  if (absl::GetFlag(FLAGS_file).empty()) {
    std::cerr << "mailroomctl: settings set needs --file=<SmtpSettings text file>\n";
    return kExitUsage;
  }
  absl::StatusOr<v1::SmtpSettings> settings = SettingsFromFlags();
  if (!settings.ok()) return Fail(settings.status());
  absl::StatusOr<v1::TestConnectionReport> report = RunTest(admin, &*settings);
  if (!report.ok()) return Fail(report.status());
  if (!report->passed()) {
    if (absl::GetFlag(FLAGS_json)) std::cout << ToJson(*report) << "\n";
    std::cerr << "mailroomctl: not saved: Test Connection failed (settings are saved only after "
                 "a successful test)\n";
    return kExitFailed;
  }
  v1::UpdateSettingsRequest request;
  *request.mutable_settings() = *settings;
  request.set_test_id(report->test_id());
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  v1::UpdateSettingsResponse response;
  const grpc::Status status = BrokerStub(admin)->UpdateSettings(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(response) << "\n";
  } else {
    std::cout << "Saved. Settings version " << response.etag() << "\n";
  }
  return kExitOk;
}

int SecretStatus(const Admin& admin) {
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  v1::GetSecretStatusResponse response;
  const grpc::Status status = BrokerStub(admin)->GetSecretStatus(&context, {}, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  const v1::CredentialStatus& c = response.credential_status();
  if (!c.has_expire_time()) {
    std::cout << "No credential with an expiry date is configured.\n";
    return kExitOk;
  }
  std::cout << "Credential expires "
            << absl::FormatTime("%Y-%m-%d", absl::FromUnixSeconds(c.expire_time().seconds()),
                                absl::UTCTimeZone())
            << (c.expired() ? ": EXPIRED\n" : absl::StrCat(": ", c.days_left(), " days left\n"));
  for (const v1::ExpiryAlarmMark& mark : response.expiry_alarms()) {
    std::cout << "  alarm at " << mark.lead_days() << " days: "
              << (mark.has_fire_time()
                      ? absl::StrCat("raised ", absl::FormatTime("%Y-%m-%d %H:%M",
                                                                 absl::FromUnixSeconds(
                                                                     mark.fire_time().seconds()),
                                                                 absl::UTCTimeZone()))
                      : "pending")
              << "\n";
  }
  return kExitOk;
}

int Quota(const Admin& admin) {
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  v1::GetQuotaStatusResponse response;
  const grpc::Status status = BrokerStub(admin)->GetQuotaStatus(&context, {}, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  if (response.mailboxes().empty()) std::cout << "No mail sent yet.\n";
  for (const v1::MailboxQuota& q : response.mailboxes()) {
    std::cout << q.mailbox() << ": " << q.messages_last_minute() << "/"
              << q.limits().messages_per_minute() << " messages this minute, "
              << q.recipients_last_day() << "/" << q.limits().recipients_per_day()
              << " recipients today, " << q.open_connections() << "/"
              << q.limits().max_connections() << " connections\n";
    for (const v1::NodeQuotaUsage& node : q.nodes()) {
      std::cout << "  " << node.node() << ": " << node.messages_last_day() << " messages, "
                << node.recipients_last_day() << " recipients today, " << node.connections()
                << " connection(s)\n";
    }
  }
  return kExitOk;
}

int HealthAll(const Admin& admin) {
  std::vector<std::pair<std::string, std::string>> targets;
  if (!admin.config.broker_target().empty()) targets.push_back({"broker", admin.config.broker_target()});
  if (!admin.config.pan_target().empty()) targets.push_back({"pan", admin.config.pan_target()});
  for (const std::string& psn : admin.config.psn_targets()) targets.push_back({"psn", psn});
  if (!admin.config.mnt_target().empty()) targets.push_back({"mnt", admin.config.mnt_target()});
  int failures = 0;
  for (const auto& [role, target] : targets) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status =
        Health::NewStub(admin.Channel(target))->Check(&context, {}, &response);
    const bool serving =
        status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    if (!serving) ++failures;
    std::cout << role << " " << target << ": "
              << (serving ? "SERVING" : absl::StrCat("DOWN (", status.error_message(), ")"))
              << "\n";
  }
  return failures == 0 ? kExitOk : kExitFailed;
}

size_t AppendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// Shows a node's Prometheus metrics for a person: one line per sample, histogram buckets
// folded into a count and a mean.
int ShowMetrics() {
  const std::string url = absl::GetFlag(FLAGS_url);
  if (url.empty()) {
    std::cerr << "mailroomctl: metrics needs --url=http://HOST:PORT/metrics\n";
    return kExitUsage;
  }
  CURL* curl = curl_easy_init();
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK) {
    std::cerr << "mailroomctl: cannot fetch " << url << ": " << curl_easy_strerror(code) << "\n";
    return kExitFailed;
  }
  if (JsonOutput()) {
    std::cout << body;
    return kExitOk;
  }
  std::map<std::string, double> sums;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    if (line[0] == '#' || absl::StrContains(line, "_bucket{")) continue;
    const size_t space = line.rfind(' ');
    const std::string name(line.substr(0, space));
    if (absl::StrContains(name, "_sum")) {
      double value = 0;
      absl::SimpleAtod(line.substr(space + 1), &value);
      sums[absl::StrReplaceAll(name, {{"_sum", ""}})] = value;
      continue;
    }
    if (absl::StrContains(name, "_count")) {
      double count = 0;
      absl::SimpleAtod(line.substr(space + 1), &count);
      const std::string base = absl::StrReplaceAll(name, {{"_count", ""}});
      std::cout << base << "  count " << count << ", mean "
                << (count > 0 ? sums[base] / count * 1000 : 0) << " ms\n";
      continue;
    }
    std::cout << name << "  " << line.substr(space + 1) << "\n";
  }
  return kExitOk;
}

int Usage() {
  std::cerr << "usage: mailroomctl --config=ADMIN_CONFIG COMMAND\n"
               "  settings show                 the saved SMTP / OAuth settings (no secret)\n"
               "  settings test [--file=F] [--client_secret_file=S --secret_expiry=D] [--to=A]\n"
               "                                Test Connection on saved or given settings\n"
               "  settings set --file=F [--client_secret_file=S --secret_expiry=D] [--to=A]\n"
               "                                test, then save if the test passes\n"
               "  secret status                 the credential's expiry and alarms\n"
               "  quota                         send quota use per mailbox and node\n"
               "  health                        health of every configured node\n"
               "  metrics --url=URL             a node's metrics (queue depth, sends, tokens)\n"
               "  outbox list|show|retry NODE [ID]   a sending node's outbox (pan, mnt, psn1..)\n"
               "  guest register|create|resend|reset-password|test-email|status|list ...\n"
               "  template put|get|list|delete ...   psn-settings show|set ...   (PSNs; 'guest help')\n"
               "  account upsert-guest|upsert-user|delete-guest|delete-user|list ...   (PAN)\n"
               "  reminders plan|status|settings show|settings set ...            (PAN)\n"
               "  alarm list|raise|clear|status ...   alarm-settings show|set ...  (MnT)\n"
               "  --json                        JSON output for scripts\n";
  return kExitUsage;
}

int Run(const std::vector<std::string>& args) {
  if (args.empty()) return Usage();
  if (args.size() == 1 && args[0] == "metrics") return ShowMetrics();
  absl::StatusOr<Admin> admin = LoadAdmin();
  if (!admin.ok()) {
    std::cerr << "mailroomctl: " << admin.status().message() << "\n";
    return kExitUsage;
  }
  const std::string command = absl::StrJoin(args, " ");
  if (command == "settings show") return SettingsShow(*admin);
  if (command == "settings test") return SettingsTest(*admin);
  if (command == "settings set") return SettingsSet(*admin);
  if (command == "secret status") return SecretStatus(*admin);
  if (command == "quota") return Quota(*admin);
  if (command == "health") return HealthAll(*admin);
  for (auto* run : {&RunOutboxCommand, &RunPsnCommand, &RunPanCommand, &RunMntCommand}) {
    if (absl::optional<int> code = (*run)(*admin, args); code.has_value()) return *code;
  }
  std::cerr << "mailroomctl: unknown command \"" << command << "\"\n";
  return Usage();
}

}  // namespace
}  // namespace mailroom::cli

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("mailroom admin CLI; run without a command for help");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  return mailroom::cli::Run(args);
}
