// mailroomctl commands of the MnT's Alarms service, against AdminClientConfig.mnt_target.
// Options are NAME=VALUE words after the command (so that they cannot collide with another
// role's flags in this one binary); --json prints the response messages for scripts.
//
//   alarm list [state=active|cleared] [type=T,...] [severity=S,...] [node=NAME]
//              [since=DURATION|RFC3339] [limit=N]
//                                   alarms, most recent occurrence first
//   alarm raise type=T text=TEXT [severity=S] [dedup_key=K] [key=IDEMPOTENCY_KEY]
//                                   raise an alarm as this admin (scripts: pass key= so that
//                                   a retried command is not a second occurrence)
//   alarm clear ID [reason=TEXT]  |  alarm clear dedup_key=K [reason=TEXT]
//   alarm status NOTIFICATION_ID  |  alarm status key=IDEMPOTENCY_KEY
//                                   delivery status of alarm emails
//   alarm-settings show
//   alarm-settings set [file=SETTINGS.textproto] [include=on|off] [sender=ADDRESS]
//                      [sender_name=NAME] [recipients=A,B,...|none] [window=DURATION]
//                      [types=all|T,...]
//                                   change Alarm Settings (read, change, write with the etag)
//
// T is an alarm type in any spelling: client-secret-expiry, CLIENT_SECRET_EXPIRY,
// ALARM_TYPE_CLIENT_SECRET_EXPIRY. S is critical, warning or info. DURATION is e.g. 30s, 15m, 2h.
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/role_commands.h"
#include "common/base/proto_time.h"
#include "common/rpc/status_grpc.h"
#include "common/base/text_config.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"

namespace mailroom::cli {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

using Options = std::map<std::string, std::string>;

int Usage() {
  std::cerr
      << "usage:\n"
         "  alarm list [state=active|cleared] [type=T,..] [severity=S,..] [node=NAME]\n"
         "             [since=DURATION|RFC3339] [limit=N]\n"
         "  alarm raise type=T text=TEXT [severity=S] [dedup_key=K] [key=IDEMPOTENCY_KEY]\n"
         "  alarm clear ID [reason=TEXT] | alarm clear dedup_key=K [reason=TEXT]\n"
         "  alarm status NOTIFICATION_ID | alarm status key=IDEMPOTENCY_KEY\n"
         "  alarm-settings show\n"
         "  alarm-settings set [file=F] [include=on|off] [sender=ADDRESS] [sender_name=NAME]\n"
         "                     [recipients=A,B|none] [window=DURATION] [types=all|T,..]\n"
         "  T: e.g. client-secret-expiry, generic; S: critical, warning, info;\n"
         "  DURATION: e.g. 30s, 15m, 2h; add --json for scripts\n";
  return kExitUsage;
}

// Splits the words after the command into NAME=VALUE options (names from `allowed`) and
// positional words.
absl::StatusOr<Options> ParseOptions(const std::vector<std::string>& args, size_t first,
                                     const std::set<std::string>& allowed,
                                     std::vector<std::string>* positional) {
  Options options;
  for (size_t i = first; i < args.size(); ++i) {
    const size_t eq = args[i].find('=');
    if (eq == std::string::npos) {
      positional->push_back(args[i]);
      continue;
    }
    const std::string name = args[i].substr(0, eq);
    if (allowed.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown option \"", name, "\" (one of: ", absl::StrJoin(allowed, ", "), ")"));
    }
    options[name] = args[i].substr(eq + 1);
  }
  return options;
}

// "client-secret-expiry", "CLIENT_SECRET_EXPIRY" or the full enum name.
std::string EnumName(absl::string_view value, absl::string_view prefix) {
  std::string name = absl::AsciiStrToUpper(absl::StrReplaceAll(value, {{"-", "_"}}));
  if (!absl::StartsWith(name, prefix)) name = absl::StrCat(prefix, name);
  return name;
}

absl::StatusOr<mv1::AlarmType> ParseType(absl::string_view value) {
  mv1::AlarmType type;
  if (!mv1::AlarmType_Parse(EnumName(value, "ALARM_TYPE_"), &type) ||
      type == mv1::ALARM_TYPE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat("type: unknown alarm type \"", value, "\""));
  }
  return type;
}

absl::StatusOr<mv1::AlarmSeverity> ParseSeverity(absl::string_view value) {
  mv1::AlarmSeverity severity;
  if (!mv1::AlarmSeverity_Parse(EnumName(value, "ALARM_SEVERITY_"), &severity) ||
      severity == mv1::ALARM_SEVERITY_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("severity: \"", value, "\" is not critical, warning or info"));
  }
  return severity;
}

absl::StatusOr<mv1::AlarmState> ParseState(absl::string_view value) {
  mv1::AlarmState state;
  if (!mv1::AlarmState_Parse(EnumName(value, "ALARM_STATE_"), &state) ||
      state == mv1::ALARM_STATE_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat("state: \"", value, "\" is not active or cleared"));
  }
  return state;
}

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view value, absl::string_view option) {
  absl::Duration duration;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(value, &seconds)) return absl::Seconds(seconds);
  if (!absl::ParseDuration(value, &duration) || duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(option, ": \"", value, "\" is not a duration such as 30s, 15m or 2h"));
  }
  return duration;
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

std::string Short(const std::string& enum_name, absl::string_view prefix) {
  absl::string_view view = enum_name;
  absl::ConsumePrefix(&view, prefix);
  return absl::AsciiStrToLower(absl::StrReplaceAll(view, {{"_", "-"}}));
}
std::string TypeName(mv1::AlarmType type) {
  return Short(mv1::AlarmType_Name(type), "ALARM_TYPE_");
}
std::string Upper(const std::string& enum_name, absl::string_view prefix) {
  absl::string_view view = enum_name;
  absl::ConsumePrefix(&view, prefix);
  return std::string(view);
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string Address(const cv1::EmailAddress& address) {
  if (address.display_name().empty()) return address.address();
  return absl::StrCat(address.display_name(), " <", address.address(), ">");
}

absl::StatusOr<std::unique_ptr<mv1::Alarms::Stub>> Stub(const Admin& admin) {
  if (admin.config.mnt_target().empty()) {
    return absl::FailedPreconditionError("mnt_target is not set in the admin configuration");
  }
  return mv1::Alarms::NewStub(admin.Channel(admin.config.mnt_target()));
}

void PrintAlarms(const mv1::ListAlarmsResponse& response) {
  if (response.alarms().empty()) {
    std::cout << "no alarms\n";
    return;
  }
  std::cout << absl::StrFormat("%-5s %-8s %-9s %-28s %-10s %6s  %-19s  %s\n", "ID", "STATE",
                               "SEVERITY", "TYPE", "NODE", "COUNT", "LAST SEEN (UTC)", "TEXT");
  for (const mv1::Alarm& a : response.alarms()) {
    std::cout << absl::StrFormat("%-5s %-8s %-9s %-28s %-10s %6d  %-19s  %s\n", a.id(),
                                 Upper(mv1::AlarmState_Name(a.state()), "ALARM_STATE_"),
                                 Upper(mv1::AlarmSeverity_Name(a.severity()), "ALARM_SEVERITY_"),
                                 TypeName(a.type()), a.source_node(), a.occurrence_count(),
                                 Time(a.last_occur_time()), a.text());
    if (a.has_diagnosis() && !a.diagnosis().title().empty()) {
      std::cout << "      " << a.diagnosis().title() << ": " << a.diagnosis().fix() << "\n";
    }
    if (a.suppressed_count() > 0) {
      std::cout << "      " << a.suppressed_count()
                << " repeat(s) suppressed, to be summarized by email\n";
    }
    if (a.state() == mv1::ALARM_STATE_CLEARED) {
      std::cout << "      cleared " << Time(a.clear_time()) << " by " << a.cleared_by()
                << (a.clear_reason().empty() ? "" : ": ") << a.clear_reason() << "\n";
    }
  }
  std::cout << response.alarms_size() << " of " << response.page().total_size() << " alarm(s)"
            << (response.page().next_page_token().empty() ? "" : "; raise limit= to see more")
            << "\n";
}

void PrintSettings(const mv1::AlarmSettings& s) {
  std::vector<std::string> recipients;
  for (const cv1::EmailAddress& r : s.admin_recipients()) recipients.push_back(Address(r));
  std::vector<std::string> types;
  for (int t : s.enabled_types()) types.push_back(TypeName(static_cast<mv1::AlarmType>(t)));
  std::cout << "include system alarms in emails: "
            << (s.include_system_alarms_in_emails() ? "on" : "off") << "\n"
            << "sender:              " << (s.has_sender() ? Address(s.sender()) : "-") << "\n"
            << "admin recipients:    "
            << (recipients.empty() ? "none (nothing is emailed)" : absl::StrJoin(recipients, ", "))
            << "\n"
            << "suppression window:  "
            << (s.has_suppression_window()
                    ? absl::FormatDuration(FromProto(s.suppression_window()))
                    : "15m (default)")
            << "\n"
            << "enabled types:       " << (types.empty() ? "all" : absl::StrJoin(types, ", "))
            << "\n"
            << "etag:                " << s.etag() << " (updated " << Time(s.update_time())
            << " UTC)\n";
}

int List(const Admin& admin, const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  absl::StatusOr<Options> options =
      ParseOptions(args, 2, {"state", "type", "severity", "node", "since", "limit"}, &positional);
  if (!options.ok()) return Fail(options.status());
  if (!positional.empty()) return Usage();
  mv1::ListAlarmsRequest request;
  for (const auto& [name, value] : *options) {
    for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
      if (name == "state") {
        absl::StatusOr<mv1::AlarmState> state = ParseState(item);
        if (!state.ok()) return Fail(state.status());
        request.add_states(*state);
      } else if (name == "type") {
        absl::StatusOr<mv1::AlarmType> type = ParseType(item);
        if (!type.ok()) return Fail(type.status());
        request.add_types(*type);
      } else if (name == "severity") {
        absl::StatusOr<mv1::AlarmSeverity> severity = ParseSeverity(item);
        if (!severity.ok()) return Fail(severity.status());
        request.add_severities(*severity);
      }
    }
    if (name == "node") request.set_source_node(value);
    if (name == "since") {
      absl::Time since;
      std::string error;
      if (!absl::ParseTime(absl::RFC3339_full, value, &since, &error)) {
        absl::StatusOr<absl::Duration> ago = ParseDuration(value, "since");
        if (!ago.ok()) return Fail(ago.status());
        since = absl::Now() - *ago;
      }
      request.mutable_occur_after()->set_seconds(absl::ToUnixSeconds(since));
    }
    if (name == "limit") {
      int limit = 0;
      if (!absl::SimpleAtoi(value, &limit) || limit < 1 || limit > 1000) {
        return Fail(absl::InvalidArgumentError("limit: must be 1..1000"));
      }
      request.mutable_page()->set_page_size(limit);
    }
  }
  absl::StatusOr<std::unique_ptr<mv1::Alarms::Stub>> stub = Stub(admin);
  if (!stub.ok()) return Fail(stub.status());
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  mv1::ListAlarmsResponse response;
  const grpc::Status status = (*stub)->ListAlarms(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
  } else {
    PrintAlarms(response);
  }
  return kExitOk;
}

int Raise(const Admin& admin, const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  absl::StatusOr<Options> options =
      ParseOptions(args, 2, {"type", "text", "severity", "dedup_key", "key"}, &positional);
  if (!options.ok()) return Fail(options.status());
  if (!positional.empty() || options->count("type") == 0 || options->count("text") == 0) {
    return Usage();
  }
  mv1::RaiseAlarmRequest request;
  absl::StatusOr<mv1::AlarmType> type = ParseType((*options)["type"]);
  if (!type.ok()) return Fail(type.status());
  request.set_type(*type);
  request.set_text((*options)["text"]);
  if (options->count("severity") > 0) {
    absl::StatusOr<mv1::AlarmSeverity> severity = ParseSeverity((*options)["severity"]);
    if (!severity.ok()) return Fail(severity.status());
    request.set_severity(*severity);
  }
  if (options->count("dedup_key") > 0) request.set_dedup_key((*options)["dedup_key"]);
  // Without key= every run is a new occurrence: a fresh random key.
  std::string key = (*options)["key"];
  if (key.empty()) {
    absl::BitGen bitgen;
    key = absl::StrCat("mailroomctl-", absl::ToUnixMicros(absl::Now()), "-",
                       absl::Uniform<uint32_t>(bitgen));
  }
  request.set_idempotency_key(key);
  absl::StatusOr<std::unique_ptr<mv1::Alarms::Stub>> stub = Stub(admin);
  if (!stub.ok()) return Fail(stub.status());
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  mv1::RaiseAlarmResponse response;
  const grpc::Status status = (*stub)->RaiseAlarm(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  std::cout << "alarm " << response.alarm().id() << " [" << response.alarm().dedup_key()
            << "], occurrence " << response.alarm().occurrence_count() << ": ";
  switch (response.disposition()) {
    case mv1::ALARM_DISPOSITION_EMAILED:
      std::cout << "emailed as " << response.notification_id();
      break;
    case mv1::ALARM_DISPOSITION_SUPPRESSED:
      std::cout << "a repeat within the suppression window; counted for the summary email";
      break;
    default: std::cout << "recorded, not emailed (see alarm-settings show)";
  }
  std::cout << (response.duplicate() ? " (repeated request: nothing new)" : "")
            << "\nidempotency key: " << key << "\n";
  return kExitOk;
}

int Clear(const Admin& admin, const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  absl::StatusOr<Options> options = ParseOptions(args, 2, {"dedup_key", "reason"}, &positional);
  if (!options.ok()) return Fail(options.status());
  mv1::ClearAlarmRequest request;
  if (positional.size() == 1 && options->count("dedup_key") == 0) {
    request.set_id(positional[0]);
  } else if (positional.empty() && options->count("dedup_key") > 0) {
    request.set_dedup_key((*options)["dedup_key"]);
  } else {
    return Usage();
  }
  request.set_reason((*options)["reason"]);
  absl::StatusOr<std::unique_ptr<mv1::Alarms::Stub>> stub = Stub(admin);
  if (!stub.ok()) return Fail(stub.status());
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  mv1::ClearAlarmResponse response;
  const grpc::Status status = (*stub)->ClearAlarm(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
  } else if (!response.has_alarm()) {
    std::cout << "no active alarm with dedup key " << request.dedup_key() << "\n";
  } else {
    std::cout << "alarm " << response.alarm().id() << " [" << response.alarm().dedup_key()
              << "] cleared " << Time(response.alarm().clear_time()) << " UTC by "
              << response.alarm().cleared_by() << "\n";
  }
  return kExitOk;
}

int NotificationStatus(const Admin& admin, const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  absl::StatusOr<Options> options = ParseOptions(args, 2, {"key"}, &positional);
  if (!options.ok()) return Fail(options.status());
  mv1::GetNotificationStatusRequest request;
  if (positional.size() == 1 && options->empty()) {
    request.set_notification_id(positional[0]);
  } else if (positional.empty() && options->count("key") > 0) {
    request.set_idempotency_key((*options)["key"]);
  } else {
    return Usage();
  }
  absl::StatusOr<std::unique_ptr<mv1::Alarms::Stub>> stub = Stub(admin);
  if (!stub.ok()) return Fail(stub.status());
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  mv1::GetNotificationStatusResponse response;
  const grpc::Status status = (*stub)->GetNotificationStatus(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  if (response.notifications().empty()) std::cout << "not emailed\n";
  for (const cv1::Notification& n : response.notifications()) {
    std::cout << n.id() << "  "
              << Upper(cv1::NotificationState_Name(n.state()), "NOTIFICATION_STATE_")
              << "  attempts " << n.attempts() << "  " << n.subject() << "\n";
    if (n.has_diagnosis()) {
      std::cout << "    " << n.diagnosis().title() << "\n    fix: " << n.diagnosis().fix() << "\n";
    }
  }
  return kExitOk;
}

absl::StatusOr<mv1::AlarmSettings> GetSettings(const Admin& admin, mv1::Alarms::Stub* stub) {
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  mv1::GetAlarmSettingsResponse response;
  const grpc::Status status =
      stub->GetAlarmSettings(&context, mv1::GetAlarmSettingsRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.settings();
}

// Applies the NAME=VALUE changes of `alarm-settings set` to `settings`.
absl::Status ApplySettingsOptions(const Options& options, mv1::AlarmSettings* settings) {
  if (auto it = options.find("file"); it != options.end()) {
    mv1::AlarmSettings from_file;
    if (absl::Status s = LoadTextConfigFile(it->second, &from_file); !s.ok()) return s;
    *settings = from_file;
  }
  for (const auto& [name, value] : options) {
    if (name == "include") {
      const std::string v = absl::AsciiStrToLower(value);
      if (v != "on" && v != "off" && v != "true" && v != "false") {
        return absl::InvalidArgumentError("include: must be on or off");
      }
      settings->set_include_system_alarms_in_emails(v == "on" || v == "true");
    } else if (name == "sender") {
      settings->mutable_sender()->set_address(value);
    } else if (name == "sender_name") {
      settings->mutable_sender()->set_display_name(value);
    } else if (name == "recipients") {
      settings->clear_admin_recipients();
      if (value != "none") {
        for (absl::string_view r : absl::StrSplit(value, ',', absl::SkipEmpty())) {
          settings->add_admin_recipients()->set_address(std::string(absl::StripAsciiWhitespace(r)));
        }
      }
    } else if (name == "window") {
      absl::StatusOr<absl::Duration> window = ParseDuration(value, "window");
      if (!window.ok()) return window.status();
      SetDuration(*window, settings->mutable_suppression_window());
    } else if (name == "types") {
      settings->clear_enabled_types();
      if (value != "all") {
        for (absl::string_view t : absl::StrSplit(value, ',', absl::SkipEmpty())) {
          absl::StatusOr<mv1::AlarmType> type = ParseType(t);
          if (!type.ok()) return type.status();
          settings->add_enabled_types(*type);
        }
      }
    }
  }
  return absl::OkStatus();
}

int Settings(const Admin& admin, const std::vector<std::string>& args) {
  if (args.size() < 2) return Usage();
  absl::StatusOr<std::unique_ptr<mv1::Alarms::Stub>> stub = Stub(admin);
  if (!stub.ok()) return Fail(stub.status());
  if (args[1] == "show" && args.size() == 2) {
    absl::StatusOr<mv1::AlarmSettings> settings = GetSettings(admin, stub->get());
    if (!settings.ok()) return Fail(settings.status());
    if (JsonOutput()) {
      std::cout << ToJson(*settings) << "\n";
    } else {
      PrintSettings(*settings);
    }
    return kExitOk;
  }
  if (args[1] != "set") return Usage();
  std::vector<std::string> positional;
  absl::StatusOr<Options> options = ParseOptions(
      args, 2, {"file", "include", "sender", "sender_name", "recipients", "window", "types"},
      &positional);
  if (!options.ok()) return Fail(options.status());
  if (!positional.empty() || options->empty()) return Usage();
  absl::StatusOr<mv1::AlarmSettings> current = GetSettings(admin, stub->get());
  if (!current.ok()) return Fail(current.status());
  mv1::SetAlarmSettingsRequest request;
  *request.mutable_settings() = *current;
  request.set_etag(current->etag());
  if (absl::Status s = ApplySettingsOptions(*options, request.mutable_settings()); !s.ok()) {
    return Fail(s);
  }
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  mv1::SetAlarmSettingsResponse response;
  const grpc::Status status = (*stub)->SetAlarmSettings(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response.settings()) << "\n";
  } else {
    std::cout << "Alarm Settings saved.\n";
    PrintSettings(response.settings());
  }
  return kExitOk;
}

}  // namespace

absl::optional<int> RunMntCommand(const Admin& admin, const std::vector<std::string>& args) {
  if (args.empty()) return absl::nullopt;
  if (args[0] == "alarm-settings") return Settings(admin, args);
  if (args[0] != "alarm") return absl::nullopt;
  if (args.size() < 2) return Usage();
  if (args[1] == "list") return List(admin, args);
  if (args[1] == "raise") return Raise(admin, args);
  if (args[1] == "clear") return Clear(admin, args);
  if (args[1] == "status") return NotificationStatus(admin, args);
  return Usage();
}

}  // namespace mailroom::cli
