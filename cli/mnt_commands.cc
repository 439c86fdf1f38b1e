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
//   alarm clear ID [reason=TEXT]  |  alarm clear dedup_key=K [source_node=N] [reason=TEXT]
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
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/command_call.h"
#include "cli/proto_words.h"
#include "cli/role_commands.h"
#include "common/base/proto_time.h"
#include "common/base/text_config.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"

namespace mailroom::cli {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using Stub = mv1::Alarms::Stub;

constexpr char kUsage[] = R"(usage:
  alarm list [state=active|cleared] [type=T,..] [severity=S,..] [node=NAME]
             [since=DURATION|RFC3339] [limit=N]
  alarm raise type=T text=TEXT [severity=S] [dedup_key=K] [key=IDEMPOTENCY_KEY]
  alarm clear ID [reason=TEXT] | alarm clear dedup_key=K [source_node=N] [reason=TEXT]
  alarm status NOTIFICATION_ID | alarm status key=IDEMPOTENCY_KEY
  alarm-settings show
  alarm-settings set [file=F] [include=on|off] [sender=ADDRESS] [sender_name=NAME]
                     [recipients=A,B|none] [window=DURATION] [types=all|T,..]
  T: e.g. client-secret-expiry, generic; S: critical, warning, info;
  DURATION: e.g. 30s, 15m, 2h; add --json for scripts
)";

int Usage(absl::string_view problem) { return UsageError(kUsage, problem); }

absl::StatusOr<mv1::AlarmType> ParseType(absl::string_view value) {
  if (auto type = ParseEnumWord<mv1::AlarmType>(value, "ALARM_TYPE_", mv1::AlarmType_Parse)) {
    return *type;
  }
  return absl::InvalidArgumentError(absl::StrCat("type: unknown alarm type \"", value, "\""));
}

absl::StatusOr<mv1::AlarmSeverity> ParseSeverity(absl::string_view value) {
  if (auto severity = ParseEnumWord<mv1::AlarmSeverity>(value, "ALARM_SEVERITY_",
                                                        mv1::AlarmSeverity_Parse)) {
    return *severity;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("severity: \"", value, "\" is not critical, warning or info"));
}

absl::StatusOr<mv1::AlarmState> ParseState(absl::string_view value) {
  if (auto state = ParseEnumWord<mv1::AlarmState>(value, "ALARM_STATE_", mv1::AlarmState_Parse)) {
    return *state;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("state: \"", value, "\" is not active or cleared"));
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

std::string TypeName(mv1::AlarmType type) {
  return absl::AsciiStrToLower(absl::StrReplaceAll(
      WithoutPrefix(mv1::AlarmType_Name(type), "ALARM_TYPE_"), {{"_", "-"}}));
}

std::string Time(const google::protobuf::Timestamp& t) {
  return FormatTimestamp(t, "%Y-%m-%d %H:%M:%S");
}

void PrintAlarms(const mv1::ListAlarmsResponse& response) {
  if (response.alarms().empty()) {
    std::cout << "no alarms\n";
    return;
  }
  std::cout << absl::StrFormat("%-5s %-8s %-9s %-28s %-10s %6s  %-19s  %s\n", "ID", "STATE",
                               "SEVERITY", "TYPE", "NODE", "COUNT", "LAST SEEN (UTC)", "TEXT");
  for (const mv1::Alarm& a : response.alarms()) {
    std::cout << absl::StrFormat(
        "%-5s %-8s %-9s %-28s %-10s %6d  %-19s  %s\n", a.id(),
        WithoutPrefix(mv1::AlarmState_Name(a.state()), "ALARM_STATE_"),
        WithoutPrefix(mv1::AlarmSeverity_Name(a.severity()), "ALARM_SEVERITY_"),
        TypeName(a.type()), a.source_node(), a.occurrence_count(), Time(a.last_occur_time()),
        a.text());
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
  for (const cv1::EmailAddress& r : s.admin_recipients()) recipients.push_back(FormatAddress(r));
  std::vector<std::string> types;
  for (int t : s.enabled_types()) types.push_back(TypeName(static_cast<mv1::AlarmType>(t)));
  std::cout << "include system alarms in emails: "
            << (s.include_system_alarms_in_emails() ? "on" : "off") << "\n"
            << "sender:              " << (s.has_sender() ? FormatAddress(s.sender()) : "-")
            << "\n"
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

// The filters of `alarm list` into `request`.
absl::Status ApplyListOptions(const Arguments& args, mv1::ListAlarmsRequest* request) {
  for (absl::string_view item : absl::StrSplit(args.Get("severity"), ',', absl::SkipEmpty())) {
    MR_ASSIGN_OR_RETURN(const mv1::AlarmSeverity severity, ParseSeverity(item));
    request->add_severities(severity);
  }
  for (absl::string_view item : absl::StrSplit(args.Get("state"), ',', absl::SkipEmpty())) {
    MR_ASSIGN_OR_RETURN(const mv1::AlarmState state, ParseState(item));
    request->add_states(state);
  }
  for (absl::string_view item : absl::StrSplit(args.Get("type"), ',', absl::SkipEmpty())) {
    MR_ASSIGN_OR_RETURN(const mv1::AlarmType type, ParseType(item));
    request->add_types(type);
  }
  if (args.Has("node")) request->set_source_node(args.Get("node"));
  if (args.Has("since")) {
    absl::Time since;
    std::string error;
    if (!absl::ParseTime(absl::RFC3339_full, args.Get("since"), &since, &error)) {
      MR_ASSIGN_OR_RETURN(const absl::Duration ago, ParseDuration(args.Get("since"), "since"));
      since = absl::Now() - ago;
    }
    request->mutable_occur_after()->set_seconds(absl::ToUnixSeconds(since));
  }
  if (args.Has("limit")) {
    int limit = 0;
    if (!absl::SimpleAtoi(args.Get("limit"), &limit) || limit < 1 || limit > 1000) {
      return absl::InvalidArgumentError("limit: must be 1..1000");
    }
    request->mutable_page()->set_page_size(limit);
  }
  return absl::OkStatus();
}

int List(const Admin& admin, const Arguments& args) {
  mv1::ListAlarmsRequest request;
  if (absl::Status s = ApplyListOptions(args, &request); !s.ok()) return Fail(s);
  return Report(Call(admin, MntTarget(admin), &Stub::ListAlarms, request), PrintAlarms);
}

int Raise(const Admin& admin, const Arguments& args) {
  if (!args.Has("type") || !args.Has("text")) return Usage("alarm raise needs type= and text=");
  mv1::RaiseAlarmRequest request;
  absl::StatusOr<mv1::AlarmType> type = ParseType(args.Get("type"));
  if (!type.ok()) return Fail(type.status());
  request.set_type(*type);
  request.set_text(args.Get("text"));
  if (args.Has("severity")) {
    absl::StatusOr<mv1::AlarmSeverity> severity = ParseSeverity(args.Get("severity"));
    if (!severity.ok()) return Fail(severity.status());
    request.set_severity(*severity);
  }
  if (args.Has("dedup_key")) request.set_dedup_key(args.Get("dedup_key"));
  // Without key= every run is a new occurrence: a fresh random key.
  std::string key = args.Get("key");
  if (key.empty()) {
    absl::BitGen bitgen;
    key = absl::StrCat("mailroomctl-", absl::ToUnixMicros(absl::Now()), "-",
                       absl::Uniform<uint32_t>(bitgen));
  }
  request.set_idempotency_key(key);
  return Report(
      Call(admin, MntTarget(admin), &Stub::RaiseAlarm, request),
      [&key](const mv1::RaiseAlarmResponse& response) {
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
      });
}

int Clear(const Admin& admin, const Arguments& args) {
  mv1::ClearAlarmRequest request;
  if (args.positional().size() == 1 && !args.Has("dedup_key")) {
    request.set_id(args.positional()[0]);
  } else if (args.positional().empty() && args.Has("dedup_key")) {
    request.set_dedup_key(args.Get("dedup_key"));
    request.set_source_node(args.Get("source_node"));
  } else {
    return Usage("alarm clear takes an ID or dedup_key=");
  }
  request.set_reason(args.Get("reason"));
  return Report(Call(admin, MntTarget(admin), &Stub::ClearAlarm, request),
                [&request](const mv1::ClearAlarmResponse& response) {
                  if (!response.has_alarm()) {
                    std::cout << "no active alarm with dedup key " << request.dedup_key() << "\n";
                    return;
                  }
                  std::cout << "alarm " << response.alarm().id() << " ["
                            << response.alarm().dedup_key() << "] cleared "
                            << Time(response.alarm().clear_time()) << " UTC by "
                            << response.alarm().cleared_by() << "\n";
                });
}

int NotificationStatus(const Admin& admin, const Arguments& args) {
  mv1::GetNotificationStatusRequest request;
  if (args.positional().size() == 1 && args.named().empty()) {
    request.set_notification_id(args.positional()[0]);
  } else if (args.positional().empty() && args.Has("key")) {
    request.set_idempotency_key(args.Get("key"));
  } else {
    return Usage("alarm status takes a NOTIFICATION_ID or key=");
  }
  return Report(
      Call(admin, MntTarget(admin), &Stub::GetNotificationStatus, request),
      [](const mv1::GetNotificationStatusResponse& response) {
        if (response.notifications().empty()) std::cout << "not emailed\n";
        for (const cv1::Notification& n : response.notifications()) {
          std::cout << n.id() << "  "
                    << WithoutPrefix(cv1::NotificationState_Name(n.state()), "NOTIFICATION_STATE_")
                    << "  attempts " << n.attempts() << "  " << n.subject() << "\n";
          if (n.has_diagnosis()) {
            std::cout << "    " << n.diagnosis().title() << "\n    fix: " << n.diagnosis().fix()
                      << "\n";
          }
        }
      });
}

const mv1::AlarmSettings& SettingsOf(const mv1::GetAlarmSettingsResponse& response) {
  return response.settings();
}

// Applies the NAME=VALUE changes of `alarm-settings set` to `settings`.
absl::Status ApplySettingsOptions(const Arguments& args, mv1::AlarmSettings* settings) {
  if (args.Has("file")) {
    mv1::AlarmSettings from_file;
    MR_RETURN_IF_ERROR(LoadTextConfigFile(args.Get("file"), &from_file));
    *settings = from_file;
  }
  if (args.Has("include")) {
    const std::string v = absl::AsciiStrToLower(args.Get("include"));
    if (v != "on" && v != "off" && v != "true" && v != "false") {
      return absl::InvalidArgumentError("include: must be on or off");
    }
    settings->set_include_system_alarms_in_emails(v == "on" || v == "true");
  }
  if (args.Has("sender")) settings->mutable_sender()->set_address(args.Get("sender"));
  if (args.Has("sender_name")) {
    settings->mutable_sender()->set_display_name(args.Get("sender_name"));
  }
  if (args.Has("recipients")) {
    settings->clear_admin_recipients();
    if (args.Get("recipients") != "none") {
      for (absl::string_view r :
           absl::StrSplit(args.Get("recipients"), ',', absl::SkipEmpty())) {
        settings->add_admin_recipients()->set_address(std::string(absl::StripAsciiWhitespace(r)));
      }
    }
  }
  if (args.Has("window")) {
    MR_ASSIGN_OR_RETURN(const absl::Duration window, ParseDuration(args.Get("window"), "window"));
    ToProto(window, settings->mutable_suppression_window());
  }
  if (args.Has("types")) {
    settings->clear_enabled_types();
    if (args.Get("types") != "all") {
      for (absl::string_view t : absl::StrSplit(args.Get("types"), ',', absl::SkipEmpty())) {
        MR_ASSIGN_OR_RETURN(const mv1::AlarmType type, ParseType(t));
        settings->add_enabled_types(type);
      }
    }
  }
  return absl::OkStatus();
}

int SettingsShow(const Admin& admin, const Arguments&) {
  return Report(PartOf(Call(admin, MntTarget(admin), &Stub::GetAlarmSettings, {}), SettingsOf),
                PrintSettings);
}

int SettingsSet(const Admin& admin, const Arguments& args) {
  if (args.named().empty()) return Usage("alarm-settings set: nothing to change");
  absl::StatusOr<mv1::GetAlarmSettingsResponse> current =
      Call(admin, MntTarget(admin), &Stub::GetAlarmSettings, {});
  if (!current.ok()) return Fail(current.status());
  mv1::SetAlarmSettingsRequest request;
  *request.mutable_settings() = current->settings();
  request.set_etag(current->settings().etag());
  if (absl::Status s = ApplySettingsOptions(args, request.mutable_settings()); !s.ok()) {
    return Fail(s);
  }
  return Report(PartOf(Call(admin, MntTarget(admin), &Stub::SetAlarmSettings, request),
                       [](const mv1::SetAlarmSettingsResponse& response) {
                         return response.settings();
                       }),
                [](const mv1::AlarmSettings& settings) {
                  std::cout << "Alarm Settings saved.\n";
                  PrintSettings(settings);
                });
}

}  // namespace

const CommandGroup& MntCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"alarm", "alarm-settings"},
      kUsage,
      {
          {"alarm list", {{"state", "type", "severity", "node", "since", "limit"}}, List},
          {"alarm raise", {{"type", "text", "severity", "dedup_key", "key"}}, Raise},
          {"alarm clear", {{"dedup_key", "source_node", "reason"}, {}, {"ID"}}, Clear},
          {"alarm status", {{"key"}, {}, {"NOTIFICATION_ID"}}, NotificationStatus},
          {"alarm-settings show", {}, SettingsShow},
          {"alarm-settings set",
           {{"file", "include", "sender", "sender_name", "recipients", "window", "types"}},
           SettingsSet},
      }};
  return *group;
}

}  // namespace mailroom::cli
