// mailroomctl commands of the token broker (AdminClientConfig.broker_target): the SMTP /
// OAuth settings, Test Connection, the client secret's expiry and the send quota. Their
// inputs are --flags (--file, --client_secret_file, --secret_expiry, --to); secrets come from
// files, never the command line.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "cli/command_call.h"
#include "cli/proto_words.h"
#include "cli/role_commands.h"
#include "cli/status_format.h"
#include "cli/test_report_format.h"
#include "common/base/proto_time.h"
#include "common/base/text_config.h"
#include "common/rpc/tls.h"
#include "proto/mailroom/broker/v1/broker.grpc.pb.h"

ABSL_FLAG(std::string, file, "", "SMTP settings (SmtpSettings, text format).");
ABSL_FLAG(std::string, client_secret_file, "",
          "File holding the client secret's value (never pass secrets as arguments).");
ABSL_FLAG(std::string, secret_expiry, "", "The client secret's expiry date, YYYY-MM-DD.");
ABSL_FLAG(std::string, to, "", "Send a test message to this address during Test Connection.");

namespace mailroom::cli {

const char kBrokerUsageLines[] = R"(  settings show                 the saved SMTP / OAuth settings (no secret), the mailbox
                                pool (transport, limits, send as) and its routes
  settings test [--file=F] [--client_secret_file=S --secret_expiry=D] [--to=A]
                [mailbox=ADDRESS]  Test Connection on saved or given settings, of the
                                default mailbox or of the pool mailbox ADDRESS
  settings set --file=F [--client_secret_file=S --secret_expiry=D] [--to=A]
                                test, then save if the test passes
  secret status                 the credential's expiry and alarms
  quota                         send quota use per mailbox and node
  quota resume MAILBOX [reason=R]  end a 5.2.0 pause early, once the cause is fixed
  route PURPOSE [from=ADDRESS]  which mailboxes carry ALARMS, GUEST_CREDENTIALS,
                                SPONSOR_MAIL, REMINDERS or TEST_MAIL, and which of them
                                may send as ADDRESS
)";

namespace {

namespace v1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
using Stub = v1::TokenBroker::Stub;

absl::StatusOr<v1::SmtpSettings> SettingsFromFlags() {
  v1::SmtpSettings settings;
  const std::string file = absl::GetFlag(FLAGS_file);
  if (!file.empty()) MR_RETURN_IF_ERROR(LoadTextConfigFile(file, &settings));
  const std::string secret_file = absl::GetFlag(FLAGS_client_secret_file);
  if (!secret_file.empty()) {
    MR_ASSIGN_OR_RETURN(const std::string secret, ReadFileToString(secret_file));
    settings.mutable_client_secret()->set_secret(
        std::string(absl::StripAsciiWhitespace(secret)));
  }
  const std::string expiry = absl::GetFlag(FLAGS_secret_expiry);
  if (!expiry.empty()) {
    absl::Time time;
    std::string error;
    if (!absl::ParseTime("%Y-%m-%d", expiry, absl::UTCTimeZone(), &time, &error)) {
      return absl::InvalidArgumentError(absl::StrCat("--secret_expiry: expected YYYY-MM-DD (",
                                                     error, ")"));
    }
    ToProto(time, settings.mutable_client_secret()->mutable_expire_time());
  }
  return settings;
}

std::string Date(const google::protobuf::Timestamp& time) {
  return FormatTimestamp(time, "%Y-%m-%d");
}

void PrintSettings(const v1::GetSettingsResponse& response) {
  if (!response.configured()) {
    std::cout << "SMTP settings: not configured\n";
    return;
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
            << "Proxy:              "
            << (s.proxy().url().empty() ? "none (direct connections)" : s.proxy().url())
            << (s.proxy().credentials_file().empty()
                    ? ""
                    : absl::StrCat(", credentials from ", s.proxy().credentials_file(),
                                   " (on the broker's node)"))
            << (s.proxy().no_proxy().empty()
                    ? ""
                    : absl::StrCat(", not for ", absl::StrJoin(s.proxy().no_proxy(), " ")))
            << "\n"
            << "Credential:         "
            << (c.type() == v1::CREDENTIAL_TYPE_CERTIFICATE ? "certificate " : "client secret ")
            << (c.is_set() ? "set" : "NOT set");
  if (c.has_expire_time()) {
    std::cout << ", expires " << Date(c.expire_time())
              << (c.expired() ? " (EXPIRED)" : absl::StrCat(" (", c.days_left(), " days left)"));
  }
  std::cout << "\n" << FormatMailboxPool(s) << "Saved:              "
            << absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", FromProto(response.update_time()),
                                absl::UTCTimeZone())
            << " by " << response.updated_by() << "\n";
}

int SettingsShow(const Admin& admin, const Arguments&) {
  return Report(Call(admin, BrokerTarget(admin), &Stub::GetSettings, {}), PrintSettings);
}

// Runs Test Connection of `mailbox` ("": the default one), printing each step as it
// finishes. Returns the report.
absl::StatusOr<v1::TestConnectionReport> RunTest(const Admin& admin,
                                                 const v1::SmtpSettings* settings,
                                                 const std::string& mailbox = "") {
  MR_ASSIGN_OR_RETURN(const Target target, BrokerTarget(admin));
  v1::TestConnectionRequest request;
  if (settings != nullptr) *request.mutable_settings() = *settings;
  request.set_mailbox(mailbox);
  const std::string to = absl::GetFlag(FLAGS_to);
  if (!to.empty()) request.mutable_test_recipient()->set_address(to);
  grpc::ClientContext context;
  admin.SetDeadline(&context, absl::Minutes(5));
  MR_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel, admin.Channel(target));
  Stub stub(channel);
  std::unique_ptr<grpc::ClientReader<v1::TestConnectionResponse>> reader =
      stub.TestConnection(&context, request);
  const bool human = !JsonOutput();
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
  MR_RETURN_IF_ERROR(FromGrpcStatus(reader->Finish()));
  if (!have_report) return absl::UnavailableError("the broker closed the test without a report");
  if (human) std::cout << FormatReportSummary(report);
  return report;
}

int SettingsTest(const Admin& admin, const Arguments& args) {
  absl::StatusOr<v1::SmtpSettings> settings = SettingsFromFlags();
  if (!settings.ok()) return Fail(settings.status());
  const bool saved =
      absl::GetFlag(FLAGS_file).empty() && absl::GetFlag(FLAGS_client_secret_file).empty();
  absl::StatusOr<v1::TestConnectionReport> report =
      RunTest(admin, saved ? nullptr : &*settings, args.Get("mailbox"));
  if (!report.ok()) return Fail(report.status());
  if (JsonOutput()) PrintJson(*report);
  return report->passed() ? kExitOk : kExitFailed;
}

int SettingsSet(const Admin& admin, const Arguments&) {
  if (absl::GetFlag(FLAGS_file).empty()) {
    std::cerr << "mailroomctl: settings set needs --file=<SmtpSettings text file>\n";
    return kExitUsage;
  }
  absl::StatusOr<v1::SmtpSettings> settings = SettingsFromFlags();
  if (!settings.ok()) return Fail(settings.status());
  absl::StatusOr<v1::TestConnectionReport> report = RunTest(admin, &*settings);
  if (!report.ok()) return Fail(report.status());
  if (!report->passed()) {
    if (JsonOutput()) PrintJson(*report);
    std::cerr << "mailroomctl: not saved: Test Connection failed (settings are saved only after "
                 "a successful test)\n";
    return kExitFailed;
  }
  v1::UpdateSettingsRequest request;
  *request.mutable_settings() = *settings;
  request.set_test_id(report->test_id());
  return Report(Call(admin, BrokerTarget(admin), &Stub::UpdateSettings, request),
                [](const v1::UpdateSettingsResponse& response) {
                  std::cout << "Saved. Settings version " << response.etag() << "\n";
                });
}

void PrintSecretStatus(const v1::GetSecretStatusResponse& response) {
  const v1::CredentialStatus& c = response.credential_status();
  if (!c.has_expire_time()) {
    std::cout << "No credential with an expiry date is configured.\n";
    return;
  }
  std::cout << "Credential expires " << Date(c.expire_time())
            << (c.expired() ? ": EXPIRED\n" : absl::StrCat(": ", c.days_left(), " days left\n"));
  for (const v1::ExpiryAlarmMark& mark : response.expiry_alarms()) {
    std::cout << "  alarm at " << mark.lead_days() << " days: "
              << (mark.has_fire_time()
                      ? absl::StrCat("raised ", FormatTimestamp(mark.fire_time(), "%Y-%m-%d %H:%M"))
                      : "pending")
              << "\n";
  }
}

int SecretStatus(const Admin& admin, const Arguments&) {
  return Report(Call(admin, BrokerTarget(admin), &Stub::GetSecretStatus, {}), PrintSecretStatus);
}

void PrintQuota(const v1::GetQuotaStatusResponse& response) {
  if (response.mailboxes().empty()) std::cout << "No mail sent yet.\n";
  for (const v1::MailboxQuota& q : response.mailboxes()) {
    std::cout << FormatMailboxQuota(q);
    for (const v1::NodeQuotaUsage& node : q.nodes()) {
      std::cout << "  " << node.node() << ": " << node.messages_last_day() << " messages, "
                << node.recipients_last_day() << " recipients today, " << node.connections()
                << " connection(s)\n";
    }
  }
}

int Quota(const Admin& admin, const Arguments&) {
  return Report(Call(admin, BrokerTarget(admin), &Stub::GetQuotaStatus, {}), PrintQuota);
}

int QuotaResume(const Admin& admin, const Arguments& args) {
  v1::ResumeMailboxRequest request;
  request.set_mailbox(args.positional()[0]);
  request.set_reason(args.Get("reason"));
  return Report(Call(admin, BrokerTarget(admin), &Stub::ResumeMailbox, request),
                [&](const v1::ResumeMailboxResponse& response) {
                  std::cout << request.mailbox()
                            << (response.was_paused() ? ": resumed; queued mail goes out now\n"
                                                      : ": was not paused\n");
                });
}

int Route(const Admin& admin, const Arguments& args) {
  absl::optional<cv1::MailPurpose> purpose = ParseEnumWord<cv1::MailPurpose>(
      args.positional()[0], "MAIL_PURPOSE_", cv1::MailPurpose_Parse);
  if (!purpose.has_value()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("PURPOSE: \"", args.positional()[0],
                     "\" is not ALARMS, GUEST_CREDENTIALS, SPONSOR_MAIL, REMINDERS or TEST_MAIL")));
  }
  v1::ResolveMailRouteRequest request;
  request.set_purpose(*purpose);
  request.set_from(args.Get("from"));
  return Report(Call(admin, BrokerTarget(admin), &Stub::ResolveMailRoute, request),
                [&](const v1::ResolveMailRouteResponse& response) {
                  std::cout << WithoutPrefix(cv1::MailPurpose_Name(*purpose), "MAIL_PURPOSE_")
                            << " -> " << absl::StrJoin(response.mailboxes(), ", ")
                            << (response.routed() ? "" : " (default: no route)") << "\n";
                  if (!request.from().empty()) {
                    std::cout << "From " << request.from() << ": sent by "
                              << response.from_mailbox() << "\n";
                  }
                });
}

}  // namespace

const CommandGroup& BrokerCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"settings", "secret", "quota", "route"},
      absl::StrCat("usage: mailroomctl --config=ADMIN_CONFIG COMMAND\n", kBrokerUsageLines),
      {
          {"settings show", {}, SettingsShow},
          {"settings test", {{"mailbox"}}, SettingsTest},
          {"settings set", {}, SettingsSet},
          {"secret status", {}, SecretStatus},
          {"quota", {}, Quota},
          {"quota resume", {{"reason"}, {}, {"MAILBOX"}, 1}, QuotaResume},
          {"route", {{"from"}, {}, {"PURPOSE"}, 1}, Route},
      }};
  return *group;
}

}  // namespace mailroom::cli
