// The PAN service's mailroomctl commands (see role_commands.h), against
// AdminClientConfig.pan_target. Options are KEY=VALUE words after the command (so they never
// collide with another command's flags); --json prints the RPC's response for scripts.
//
//   account upsert-guest ID email=ADDR expires=TIME [username=U] [first=F] [last=L]
//                           [name=DISPLAY_NAME] [portal=P]
//   account upsert-user ID kind=admin|internal email=ADDR [password-expires=TIME]
//                          [username=U] [first=F] [last=L] [name=DISPLAY_NAME]
//   account delete-guest ID | account delete-user ID
//   account list [kind=guest|admin|internal] [prefix=P] [expires-before=TIME]
//   reminders plan [guest=ID | user=ID] [state=planned|queued|skipped|canceled]
//   reminders settings show
//   reminders settings set [guest-leads=3d,1d] [password-leads=14d,7d,1d] [from=ADDR]
//                          [from-name=NAME] [time-zone=ZONE] [file=SETTINGS.textproto]
//   reminders status NOTIFICATION_ID
//
// TIME is RFC 3339 ("2026-05-01T10:00:00Z"), "YYYY-MM-DD HH:MM" or "YYYY-MM-DD" (UTC), or
// relative to now ("+2d", "+36h"). Lead times are "3d", "36h", "90m" or "1d12h".
// `settings set` reads the current settings, changes only what is given, and saves them with
// the etag it read, so a concurrent change is refused rather than overwritten.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/command_call.h"
#include "cli/proto_words.h"
#include "cli/role_commands.h"
#include "common/base/proto_time.h"
#include "common/base/text_config.h"
#include "proto/mailroom/pan/v1/pan.grpc.pb.h"

namespace mailroom::cli {
namespace {

namespace v1 = ::mailroom::pan::v1;
using Stub = v1::Reminders::Stub;

constexpr char kUsage[] = R"(usage:
  account upsert-guest ID email=ADDR expires=TIME [username=U] [first=F] [last=L]
                       [name=DISPLAY_NAME] [portal=P]
  account upsert-user ID kind=admin|internal email=ADDR [password-expires=TIME]
                      [username=U] [first=F] [last=L] [name=DISPLAY_NAME]
  account delete-guest ID | account delete-user ID
  account list [kind=guest|admin|internal] [prefix=P] [expires-before=TIME]
  reminders plan [guest=ID | user=ID] [state=planned|queued|skipped|canceled]
  reminders settings show
  reminders settings set [guest-leads=3d,1d] [password-leads=14d,7d,1d] [from=ADDR]
                         [from-name=NAME] [time-zone=ZONE] [file=SETTINGS.textproto]
  reminders status NOTIFICATION_ID
TIME: 2026-05-01T10:00:00Z, "2026-05-01 10:00", 2026-05-01 (UTC), or +2d / +36h
)";

int Usage(absl::string_view problem) { return UsageError(kUsage, problem); }

// "3d", "36h", "90m", "1d12h".
absl::StatusOr<absl::Duration> ParseLead(absl::string_view text, absl::string_view what) {
  absl::Duration total = absl::ZeroDuration();
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  const size_t d = rest.find('d');
  if (d != absl::string_view::npos) {
    int64_t days = 0;
    if (!absl::SimpleAtoi(rest.substr(0, d), &days) || days < 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read \"", text, "\""));
    }
    total += absl::Hours(24 * days);
    rest = rest.substr(d + 1);
  }
  if (!rest.empty()) {
    absl::Duration more;
    if (!absl::ParseDuration(rest, &more)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": cannot read \"", text, "\" (e.g. 3d, 36h, 90m, 1d12h)"));
    }
    total += more;
  }
  if (d == absl::string_view::npos && rest.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty duration"));
  }
  return total;
}

absl::StatusOr<absl::Time> ParseWhen(const std::string& text, absl::string_view what) {
  if (!text.empty() && text[0] == '+') {
    MR_ASSIGN_OR_RETURN(const absl::Duration ahead, ParseLead(text.substr(1), what));
    return absl::Now() + ahead;
  }
  absl::Time time;
  std::string error;
  for (const char* format : {absl::RFC3339_full, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &time, &error)) return time;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": cannot read \"", text,
                   "\" (2026-05-01T10:00:00Z, \"2026-05-01 10:00\", 2026-05-01, +2d or +36h)"));
}

// The time option `name`, if given, into `out`; a usage error names the option.
absl::Status ParseWhen(const Arguments& args, absl::string_view name,
                       google::protobuf::Timestamp* out) {
  if (args.Get(name).empty()) return absl::OkStatus();
  MR_ASSIGN_OR_RETURN(const absl::Time time, ParseWhen(args.Get(name), name));
  ToProto(time, out);
  return absl::OkStatus();
}

std::string When(const google::protobuf::Timestamp& t) {
  return FormatTimestamp(t, "%Y-%m-%d %H:%M UTC");
}

// "3d", "36h", "1d12h": how admins write lead times.
std::string Lead(const google::protobuf::Duration& d) {
  const int64_t seconds = d.seconds();
  const int64_t days = seconds / 86400;
  const int64_t rest = seconds % 86400;
  if (rest == 0) return absl::StrCat(days, "d");
  const std::string tail = absl::FormatDuration(absl::Seconds(rest));
  return days > 0 ? absl::StrCat(days, "d", tail) : tail;
}

std::string Suffix(const std::string& enum_name, absl::string_view prefix) {
  return absl::AsciiStrToLower(WithoutPrefix(enum_name, prefix));
}

void PrintReminder(const v1::PlannedReminder& r, bool with_account) {
  std::cout << "  " << When(r.due_time()) << "  "
            << WithoutPrefix(v1::ReminderState_Name(r.state()), "REMINDER_STATE_") << "  "
            << Lead(r.lead_time()) << " before "
            << (r.kind() == v1::REMINDER_KIND_GUEST_EXPIRY ? "account expiry" : "password expiry")
            << " " << When(r.expire_time());
  if (with_account) {
    std::cout << "  " << Suffix(v1::AccountKind_Name(r.account_kind()), "ACCOUNT_KIND_") << " "
              << r.account_id();
  }
  std::cout << "  to " << r.recipient().address();
  if (!r.notification_id().empty()) std::cout << "  as " << r.notification_id();
  std::cout << "\n";
}

template <typename Response>
void PrintReminders(const Response& response) {
  for (const v1::PlannedReminder& r : response.reminders()) PrintReminder(r, false);
}

int UpsertGuest(const Admin& admin, const Arguments& args) {
  if (args.Get("email").empty() || args.Get("expires").empty()) {
    return Usage("account upsert-guest needs email= and expires=");
  }
  v1::UpsertGuestAccountRequest request;
  v1::GuestAccount* g = request.mutable_account();
  if (absl::Status s = ParseWhen(args, "expires", g->mutable_expire_time()); !s.ok()) {
    return Usage(s.message());
  }
  const std::string& id = args.positional()[0];
  g->set_id(id);
  g->set_username(args.Get("username", id));
  g->mutable_email()->set_address(args.Get("email"));
  g->mutable_email()->set_display_name(args.Get("name"));
  g->set_first_name(args.Get("first"));
  g->set_last_name(args.Get("last"));
  g->set_portal_id(args.Get("portal"));
  return Report(Call(admin, PanTarget(admin), &Stub::UpsertGuestAccount, request),
                [](const v1::UpsertGuestAccountResponse& response) {
                  std::cout << "guest " << response.account().id()
                            << (response.created() ? " created" : " updated") << ", expires "
                            << When(response.account().expire_time()) << "\n";
                  PrintReminders(response);
                });
}

int UpsertUser(const Admin& admin, const Arguments& args) {
  const std::string kind = args.Get("kind");
  if (kind != "admin" && kind != "internal") return Usage("kind= must be admin or internal");
  if (args.Get("email").empty()) return Usage("account upsert-user needs email=");
  v1::UpsertUserAccountRequest request;
  v1::UserAccount* u = request.mutable_account();
  const std::string& id = args.positional()[0];
  u->set_id(id);
  u->set_kind(kind == "admin" ? v1::USER_KIND_ADMIN : v1::USER_KIND_INTERNAL);
  u->set_username(args.Get("username", id));
  u->mutable_email()->set_address(args.Get("email"));
  u->mutable_email()->set_display_name(args.Get("name"));
  u->set_first_name(args.Get("first"));
  u->set_last_name(args.Get("last"));
  google::protobuf::Timestamp password_expires;
  if (absl::Status s = ParseWhen(args, "password-expires", &password_expires); !s.ok()) {
    return Usage(s.message());
  }
  if (!args.Get("password-expires").empty()) {
    *u->mutable_password_expire_time() = password_expires;
  }
  return Report(Call(admin, PanTarget(admin), &Stub::UpsertUserAccount, request),
                [&kind](const v1::UpsertUserAccountResponse& response) {
                  std::cout << kind << " user " << response.account().id()
                            << (response.created() ? " created" : " updated")
                            << ", password expires "
                            << (response.account().has_password_expire_time()
                                    ? When(response.account().password_expire_time())
                                    : "never")
                            << "\n";
                  PrintReminders(response);
                });
}

template <typename Request, typename Response>
int Delete(const Admin& admin, const Arguments& args, const char* what,
           UnaryMethod<Stub, Request, Response> method) {
  Request request;
  request.set_id(args.positional()[0]);
  return Report(Call(admin, PanTarget(admin), method, request),
                [&](const Response& response) {
                  std::cout << what << " " << request.id()
                            << (response.found()
                                    ? absl::StrCat(" deleted; ", response.canceled_reminders(),
                                                   " pending reminder(s) canceled")
                                    : " was not registered")
                            << "\n";
                });
}

int DeleteGuest(const Admin& admin, const Arguments& args) {
  return Delete(admin, args, "guest", &Stub::DeleteGuestAccount);
}

int DeleteUser(const Admin& admin, const Arguments& args) {
  return Delete(admin, args, "user", &Stub::DeleteUserAccount);
}

void PrintAccounts(const v1::ListAccountsResponse& all) {
  if (all.accounts().empty()) std::cout << "No accounts.\n";
  for (const v1::Account& a : all.accounts()) {
    if (a.has_guest()) {
      const v1::GuestAccount& g = a.guest();
      std::cout << "guest     " << g.id() << "  " << g.username() << "  "
                << FormatAddress(g.email()) << "  expires " << When(g.expire_time()) << "\n";
    } else {
      const v1::UserAccount& u = a.user();
      std::cout << (u.kind() == v1::USER_KIND_ADMIN ? "admin     " : "internal  ") << u.id()
                << "  " << u.username() << "  " << FormatAddress(u.email())
                << "  password expires "
                << (u.has_password_expire_time() ? When(u.password_expire_time()) : "never")
                << "\n";
    }
  }
}

int ListAccounts(const Admin& admin, const Arguments& args) {
  v1::ListAccountsRequest request;
  const std::string kind = args.Get("kind");
  if (kind == "guest") {
    request.add_kinds(v1::ACCOUNT_KIND_GUEST);
  } else if (kind == "admin") {
    request.add_kinds(v1::ACCOUNT_KIND_ADMIN_USER);
  } else if (kind == "internal") {
    request.add_kinds(v1::ACCOUNT_KIND_INTERNAL_USER);
  } else if (!kind.empty()) {
    return Usage("kind= must be guest, admin or internal");
  }
  request.set_prefix(args.Get("prefix"));
  google::protobuf::Timestamp before;
  if (absl::Status s = ParseWhen(args, "expires-before", &before); !s.ok()) {
    return Usage(s.message());
  }
  if (!args.Get("expires-before").empty()) *request.mutable_expire_before() = before;
  return Report(CallAllPages(admin, PanTarget(admin), &Stub::ListAccounts, request),
                PrintAccounts);
}

int Plan(const Admin& admin, const Arguments& args) {
  v1::ListPlannedRemindersRequest request;
  if (args.Has("guest") && args.Has("user")) return Usage("give guest= or user=");
  if (args.Has("guest")) {
    request.set_account_id(args.Get("guest"));
    request.set_account_kind(v1::ACCOUNT_KIND_GUEST);
  } else if (args.Has("user")) {
    request.set_account_id(args.Get("user"));
    // Users are one id space; the kind only has to name it.
    request.set_account_kind(v1::ACCOUNT_KIND_INTERNAL_USER);
  }
  if (args.Has("state")) {
    absl::optional<v1::ReminderState> state = ParseEnumWord<v1::ReminderState>(
        args.Get("state"), "REMINDER_STATE_", v1::ReminderState_Parse);
    if (!state.has_value()) return Usage("state= must be planned, queued, skipped or canceled");
    request.add_states(*state);
  }
  return Report(CallAllPages(admin, PanTarget(admin), &Stub::ListPlannedReminders, request),
                [](const v1::ListPlannedRemindersResponse& all) {
                  if (all.reminders().empty()) std::cout << "No reminders.\n";
                  for (const v1::PlannedReminder& r : all.reminders()) PrintReminder(r, true);
                });
}

void PrintSettings(const v1::ReminderSettings& s) {
  std::vector<std::string> guest;
  for (const auto& d : s.guest_expiry_lead_times()) guest.push_back(Lead(d));
  std::vector<std::string> password;
  for (const auto& d : s.password_expiry_lead_times()) password.push_back(Lead(d));
  std::cout << "Guest-expiry warnings:     "
            << (guest.empty() ? "off" : absl::StrCat(absl::StrJoin(guest, ", "), " before")) << "\n"
            << "Password-expiry reminders: "
            << (password.empty() ? "off" : absl::StrCat(absl::StrJoin(password, ", "), " before"))
            << "\n"
            << "From:                      "
            << (s.from().address().empty() ? "the broker's sending mailbox"
                                           : FormatAddress(s.from()))
            << "\n"
            << "Time zone:                 " << (s.time_zone().empty() ? "UTC" : s.time_zone())
            << "\n"
            << "Guest template:            "
            << (s.has_guest_expiry_template() ? "custom" : "built-in (English)") << "\n"
            << "Password template:         "
            << (s.has_password_expiry_template() ? "custom" : "built-in (English)") << "\n"
            << "Version:                   " << s.etag() << ", saved " << When(s.update_time())
            << "\n";
}

// The lead-times option `name`, if given, into `leads`.
absl::Status ParseLeads(const Arguments& args, absl::string_view name,
                        google::protobuf::RepeatedPtrField<google::protobuf::Duration>* leads) {
  if (!args.Has(name)) return absl::OkStatus();
  leads->Clear();
  const std::string text = args.Get(name);
  if (text == "off" || text == "none") return absl::OkStatus();
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    MR_ASSIGN_OR_RETURN(const absl::Duration lead, ParseLead(part, name));
    ToProto(lead, leads->Add());
  }
  return absl::OkStatus();
}

int SettingsShow(const Admin& admin, const Arguments&) {
  return Report(Call(admin, PanTarget(admin), &Stub::GetReminderSettings, {}),
                [](const v1::GetReminderSettingsResponse& current) {
                  PrintSettings(current.settings());
                });
}

int SettingsSet(const Admin& admin, const Arguments& args) {
  if (args.named().empty()) return Usage("reminders settings set: nothing to change");
  google::protobuf::RepeatedPtrField<google::protobuf::Duration> guest_leads;
  google::protobuf::RepeatedPtrField<google::protobuf::Duration> password_leads;
  for (absl::Status status : {ParseLeads(args, "guest-leads", &guest_leads),
                              ParseLeads(args, "password-leads", &password_leads)}) {
    if (!status.ok()) return Usage(status.message());
  }
  absl::StatusOr<v1::GetReminderSettingsResponse> current =
      Call(admin, PanTarget(admin), &Stub::GetReminderSettings, {});
  if (!current.ok()) return Fail(current.status());
  v1::SetReminderSettingsRequest request;
  request.set_etag(current->settings().etag());
  v1::ReminderSettings* s = request.mutable_settings();
  if (args.Has("file")) {
    if (absl::Status status = LoadTextConfigFile(args.Get("file"), s); !status.ok()) {
      return Fail(status);
    }
  } else {
    *s = current->settings();
  }
  if (args.Has("guest-leads")) *s->mutable_guest_expiry_lead_times() = guest_leads;
  if (args.Has("password-leads")) *s->mutable_password_expiry_lead_times() = password_leads;
  if (args.Has("from")) s->mutable_from()->set_address(args.Get("from"));
  if (args.Has("from-name")) s->mutable_from()->set_display_name(args.Get("from-name"));
  if (args.Has("time-zone")) s->set_time_zone(args.Get("time-zone"));
  return Report(Call(admin, PanTarget(admin), &Stub::SetReminderSettings, request),
                [](const v1::SetReminderSettingsResponse& response) {
                  std::cout << "Saved; " << response.replanned_reminders()
                            << " reminder(s) re-planned.\n";
                  PrintSettings(response.settings());
                });
}

int Status(const Admin& admin, const Arguments& args) {
  v1::GetNotificationStatusRequest request;
  request.set_notification_id(args.positional()[0]);
  return Report(
      Call(admin, PanTarget(admin), &Stub::GetNotificationStatus, request),
      [](const v1::GetNotificationStatusResponse& response) {
        const mailroom::common::v1::Notification& n = response.notification();
        std::cout << n.id() << "  "
                  << Suffix(mailroom::common::v1::NotificationState_Name(n.state()),
                            "NOTIFICATION_STATE_")
                  << "  attempts " << n.attempts() << "  " << n.subject() << "\n";
        for (const auto& r : n.recipients()) {
          std::cout << "  to " << FormatAddress(r.address()) << "\n";
        }
        if (n.last_reply_code() != 0) std::cout << "  last reply: " << n.last_reply_text() << "\n";
        if (n.has_diagnosis()) {
          std::cout << "  " << n.diagnosis().title() << "\n  fix: " << n.diagnosis().fix() << "\n";
        }
      });
}

}  // namespace

const CommandGroup& PanCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"account", "reminders"},
      kUsage,
      {
          {"account upsert-guest",
           {{"email", "expires", "username", "first", "last", "name", "portal"}, {}, {"ID"}, 1},
           UpsertGuest},
          {"account upsert-user",
           {{"kind", "email", "password-expires", "username", "first", "last", "name"},
            {},
            {"ID"},
            1},
           UpsertUser},
          {"account delete-guest", {{}, {}, {"ID"}, 1}, DeleteGuest},
          {"account delete-user", {{}, {}, {"ID"}, 1}, DeleteUser},
          {"account list", {{"kind", "prefix", "expires-before"}}, ListAccounts},
          {"reminders plan", {{"guest", "user", "state"}}, Plan},
          {"reminders settings show", {}, SettingsShow},
          {"reminders settings set",
           {{"guest-leads", "password-leads", "from", "from-name", "time-zone", "file"}},
           SettingsSet},
          {"reminders status", {{}, {}, {"NOTIFICATION_ID"}, 1}, Status},
      }};
  return *group;
}

}  // namespace mailroom::cli
