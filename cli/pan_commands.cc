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
#include <algorithm>
#include <iostream>
#include <map>
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
#include "cli/role_commands.h"
#include "common/rpc/status_grpc.h"
#include "common/base/text_config.h"
#include "proto/mailroom/pan/v1/pan.grpc.pb.h"

namespace mailroom::cli {
namespace {

namespace v1 = ::mailroom::pan::v1;

constexpr char kUsage[] =
    "usage:\n"
    "  account upsert-guest ID email=ADDR expires=TIME [username=U] [first=F] [last=L]\n"
    "                       [name=DISPLAY_NAME] [portal=P]\n"
    "  account upsert-user ID kind=admin|internal email=ADDR [password-expires=TIME]\n"
    "                      [username=U] [first=F] [last=L] [name=DISPLAY_NAME]\n"
    "  account delete-guest ID | account delete-user ID\n"
    "  account list [kind=guest|admin|internal] [prefix=P] [expires-before=TIME]\n"
    "  reminders plan [guest=ID | user=ID] [state=planned|queued|skipped|canceled]\n"
    "  reminders settings show\n"
    "  reminders settings set [guest-leads=3d,1d] [password-leads=14d,7d,1d] [from=ADDR]\n"
    "                         [from-name=NAME] [time-zone=ZONE] [file=SETTINGS.textproto]\n"
    "  reminders status NOTIFICATION_ID\n"
    "TIME: 2026-05-01T10:00:00Z, \"2026-05-01 10:00\", 2026-05-01 (UTC), or +2d / +36h\n";

int Usage(const std::string& problem = "") {
  if (!problem.empty()) std::cerr << "mailroomctl: " << problem << "\n";
  std::cerr << kUsage;
  return kExitUsage;
}

// KEY=VALUE words; anything else is a usage error.
absl::StatusOr<std::map<std::string, std::string>> ParseOptions(
    const std::vector<std::string>& args, size_t first, const std::vector<std::string>& known) {
  std::map<std::string, std::string> options;
  for (size_t i = first; i < args.size(); ++i) {
    const size_t eq = args[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("expected KEY=VALUE, got \"", args[i], "\""));
    }
    const std::string key = args[i].substr(0, eq);
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option \"", key, "\" (known: ", absl::StrJoin(known, ", "), ")"));
    }
    options[key] = args[i].substr(eq + 1);
  }
  return options;
}

std::string Get(const std::map<std::string, std::string>& options, const std::string& key) {
  const auto it = options.find(key);
  return it == options.end() ? "" : it->second;
}

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
    absl::StatusOr<absl::Duration> ahead = ParseLead(text.substr(1), what);
    if (!ahead.ok()) return ahead.status();
    return absl::Now() + *ahead;
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

google::protobuf::Timestamp ToProto(absl::Time time) {
  google::protobuf::Timestamp out;
  out.set_seconds(absl::ToUnixSeconds(time));
  return out;
}

google::protobuf::Duration ToProto(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(d));
  return out;
}

std::string When(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M UTC", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
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
  return absl::AsciiStrToLower(absl::StripPrefix(enum_name, prefix));
}

std::string StateName(v1::ReminderState state) {
  return absl::AsciiStrToUpper(Suffix(v1::ReminderState_Name(state), "REMINDER_STATE_"));
}

std::string Address(const mailroom::common::v1::EmailAddress& a) {
  return a.display_name().empty() ? a.address()
                                  : absl::StrCat(a.display_name(), " <", a.address(), ">");
}

void PrintReminder(const v1::PlannedReminder& r, bool with_account) {
  std::cout << "  " << When(r.due_time()) << "  " << StateName(r.state()) << "  "
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

// Runs one unary RPC with the admin's deadline; prints JSON if asked.
template <typename Method, typename Request, typename Response>
absl::Status Call(const Admin& admin, Method method, const Request& request, Response* response) {
  if (admin.config.pan_target().empty()) {
    return absl::FailedPreconditionError("pan_target is not set in the admin config");
  }
  auto stub = v1::Reminders::NewStub(admin.Channel(admin.config.pan_target()));
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  return FromGrpcStatus(((*stub).*method)(&context, request, response));
}

int PrintJsonOr(const google::protobuf::Message& response) {
  std::cout << ToJson(response) << "\n";
  return kExitOk;
}

int UpsertGuest(const Admin& admin, const std::vector<std::string>& args) {
  if (args.size() < 3) return Usage("account upsert-guest needs an ID");
  absl::StatusOr<std::map<std::string, std::string>> options =
      ParseOptions(args, 3, {"email", "expires", "username", "first", "last", "name", "portal"});
  if (!options.ok()) return Usage(std::string(options.status().message()));
  if (Get(*options, "email").empty() || Get(*options, "expires").empty()) {
    return Usage("account upsert-guest needs email= and expires=");
  }
  absl::StatusOr<absl::Time> expires = ParseWhen(Get(*options, "expires"), "expires");
  if (!expires.ok()) return Usage(std::string(expires.status().message()));
  v1::UpsertGuestAccountRequest request;
  v1::GuestAccount* g = request.mutable_account();
  g->set_id(args[2]);
  g->set_username(options->count("username") ? Get(*options, "username") : args[2]);
  g->mutable_email()->set_address(Get(*options, "email"));
  g->mutable_email()->set_display_name(Get(*options, "name"));
  g->set_first_name(Get(*options, "first"));
  g->set_last_name(Get(*options, "last"));
  g->set_portal_id(Get(*options, "portal"));
  *g->mutable_expire_time() = ToProto(*expires);
  v1::UpsertGuestAccountResponse response;
  if (absl::Status s = Call(admin, &v1::Reminders::Stub::UpsertGuestAccount, request, &response);
      !s.ok()) {
    return Fail(s);
  }
  if (JsonOutput()) return PrintJsonOr(response);
  std::cout << "guest " << response.account().id() << (response.created() ? " created" : " updated")
            << ", expires " << When(response.account().expire_time()) << "\n";
  for (const v1::PlannedReminder& r : response.reminders()) PrintReminder(r, false);
  return kExitOk;
}

int UpsertUser(const Admin& admin, const std::vector<std::string>& args) {
  if (args.size() < 3) return Usage("account upsert-user needs an ID");
  absl::StatusOr<std::map<std::string, std::string>> options = ParseOptions(
      args, 3, {"kind", "email", "password-expires", "username", "first", "last", "name"});
  if (!options.ok()) return Usage(std::string(options.status().message()));
  const std::string kind = Get(*options, "kind");
  if (kind != "admin" && kind != "internal") return Usage("kind= must be admin or internal");
  if (Get(*options, "email").empty()) return Usage("account upsert-user needs email=");
  v1::UpsertUserAccountRequest request;
  v1::UserAccount* u = request.mutable_account();
  u->set_id(args[2]);
  u->set_kind(kind == "admin" ? v1::USER_KIND_ADMIN : v1::USER_KIND_INTERNAL);
  u->set_username(options->count("username") ? Get(*options, "username") : args[2]);
  u->mutable_email()->set_address(Get(*options, "email"));
  u->mutable_email()->set_display_name(Get(*options, "name"));
  u->set_first_name(Get(*options, "first"));
  u->set_last_name(Get(*options, "last"));
  if (!Get(*options, "password-expires").empty()) {
    absl::StatusOr<absl::Time> expires =
        ParseWhen(Get(*options, "password-expires"), "password-expires");
    if (!expires.ok()) return Usage(std::string(expires.status().message()));
    *u->mutable_password_expire_time() = ToProto(*expires);
  }
  v1::UpsertUserAccountResponse response;
  if (absl::Status s = Call(admin, &v1::Reminders::Stub::UpsertUserAccount, request, &response);
      !s.ok()) {
    return Fail(s);
  }
  if (JsonOutput()) return PrintJsonOr(response);
  std::cout << kind << " user " << response.account().id()
            << (response.created() ? " created" : " updated") << ", password expires "
            << (response.account().has_password_expire_time()
                    ? When(response.account().password_expire_time())
                    : "never")
            << "\n";
  for (const v1::PlannedReminder& r : response.reminders()) PrintReminder(r, false);
  return kExitOk;
}

int Delete(const Admin& admin, const std::vector<std::string>& args, bool guest) {
  if (args.size() != 3) return Usage("account delete-guest|delete-user takes one ID");
  bool found = false;
  int canceled = 0;
  absl::Status status;
  if (guest) {
    v1::DeleteGuestAccountRequest request;
    request.set_id(args[2]);
    v1::DeleteGuestAccountResponse response;
    status = Call(admin, &v1::Reminders::Stub::DeleteGuestAccount, request, &response);
    if (status.ok() && JsonOutput()) return PrintJsonOr(response);
    found = response.found();
    canceled = response.canceled_reminders();
  } else {
    v1::DeleteUserAccountRequest request;
    request.set_id(args[2]);
    v1::DeleteUserAccountResponse response;
    status = Call(admin, &v1::Reminders::Stub::DeleteUserAccount, request, &response);
    if (status.ok() && JsonOutput()) return PrintJsonOr(response);
    found = response.found();
    canceled = response.canceled_reminders();
  }
  if (!status.ok()) return Fail(status);
  std::cout << (guest ? "guest " : "user ") << args[2]
            << (found ? absl::StrCat(" deleted; ", canceled, " pending reminder(s) canceled")
                      : " was not registered")
            << "\n";
  return kExitOk;
}

int ListAccounts(const Admin& admin, const std::vector<std::string>& args) {
  absl::StatusOr<std::map<std::string, std::string>> options =
      ParseOptions(args, 2, {"kind", "prefix", "expires-before"});
  if (!options.ok()) return Usage(std::string(options.status().message()));
  v1::ListAccountsRequest request;
  const std::string kind = Get(*options, "kind");
  if (kind == "guest") {
    request.add_kinds(v1::ACCOUNT_KIND_GUEST);
  } else if (kind == "admin") {
    request.add_kinds(v1::ACCOUNT_KIND_ADMIN_USER);
  } else if (kind == "internal") {
    request.add_kinds(v1::ACCOUNT_KIND_INTERNAL_USER);
  } else if (!kind.empty()) {
    return Usage("kind= must be guest, admin or internal");
  }
  request.set_prefix(Get(*options, "prefix"));
  if (!Get(*options, "expires-before").empty()) {
    absl::StatusOr<absl::Time> before =
        ParseWhen(Get(*options, "expires-before"), "expires-before");
    if (!before.ok()) return Usage(std::string(before.status().message()));
    *request.mutable_expire_before() = ToProto(*before);
  }
  request.mutable_page()->set_page_size(1000);
  v1::ListAccountsResponse all;
  for (;;) {
    v1::ListAccountsResponse page;
    if (absl::Status s = Call(admin, &v1::Reminders::Stub::ListAccounts, request, &page); !s.ok()) {
      return Fail(s);
    }
    for (v1::Account& a : *page.mutable_accounts()) *all.add_accounts() = std::move(a);
    *all.mutable_page() = page.page();
    if (page.page().next_page_token().empty()) break;
    request.mutable_page()->set_page_token(page.page().next_page_token());
  }
  all.mutable_page()->clear_next_page_token();
  if (JsonOutput()) return PrintJsonOr(all);
  if (all.accounts().empty()) std::cout << "No accounts.\n";
  for (const v1::Account& a : all.accounts()) {
    if (a.has_guest()) {
      const v1::GuestAccount& g = a.guest();
      std::cout << "guest     " << g.id() << "  " << g.username() << "  " << Address(g.email())
                << "  expires " << When(g.expire_time()) << "\n";
    } else {
      const v1::UserAccount& u = a.user();
      std::cout << (u.kind() == v1::USER_KIND_ADMIN ? "admin     " : "internal  ") << u.id() << "  "
                << u.username() << "  " << Address(u.email()) << "  password expires "
                << (u.has_password_expire_time() ? When(u.password_expire_time()) : "never")
                << "\n";
    }
  }
  return kExitOk;
}

int Plan(const Admin& admin, const std::vector<std::string>& args) {
  absl::StatusOr<std::map<std::string, std::string>> options =
      ParseOptions(args, 2, {"guest", "user", "state"});
  if (!options.ok()) return Usage(std::string(options.status().message()));
  v1::ListPlannedRemindersRequest request;
  if (options->count("guest") && options->count("user")) return Usage("give guest= or user=");
  if (options->count("guest")) {
    request.set_account_id(Get(*options, "guest"));
    request.set_account_kind(v1::ACCOUNT_KIND_GUEST);
  } else if (options->count("user")) {
    request.set_account_id(Get(*options, "user"));
    // Users are one id space; the kind only has to name it.
    request.set_account_kind(v1::ACCOUNT_KIND_INTERNAL_USER);
  }
  if (options->count("state")) {
    v1::ReminderState state;
    if (!v1::ReminderState_Parse(
            absl::StrCat("REMINDER_STATE_", absl::AsciiStrToUpper(Get(*options, "state"))),
            &state) ||
        state == v1::REMINDER_STATE_UNSPECIFIED) {
      return Usage("state= must be planned, queued, skipped or canceled");
    }
    request.add_states(state);
  }
  request.mutable_page()->set_page_size(1000);
  v1::ListPlannedRemindersResponse all;
  for (;;) {
    v1::ListPlannedRemindersResponse page;
    if (absl::Status s = Call(admin, &v1::Reminders::Stub::ListPlannedReminders, request, &page);
        !s.ok()) {
      return Fail(s);
    }
    for (v1::PlannedReminder& r : *page.mutable_reminders()) *all.add_reminders() = std::move(r);
    *all.mutable_page() = page.page();
    if (page.page().next_page_token().empty()) break;
    request.mutable_page()->set_page_token(page.page().next_page_token());
  }
  all.mutable_page()->clear_next_page_token();
  if (JsonOutput()) return PrintJsonOr(all);
  if (all.reminders().empty()) std::cout << "No reminders.\n";
  for (const v1::PlannedReminder& r : all.reminders()) PrintReminder(r, true);
  return kExitOk;
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
            << (s.from().address().empty() ? "the broker's sending mailbox" : Address(s.from()))
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

absl::StatusOr<google::protobuf::RepeatedPtrField<google::protobuf::Duration>> ParseLeads(
    const std::string& text, absl::string_view what) {
  google::protobuf::RepeatedPtrField<google::protobuf::Duration> leads;
  if (text == "off" || text == "none") return leads;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    absl::StatusOr<absl::Duration> lead = ParseLead(part, what);
    if (!lead.ok()) return lead.status();
    *leads.Add() = ToProto(*lead);
  }
  return leads;
}

int Settings(const Admin& admin, const std::vector<std::string>& args) {
  v1::GetReminderSettingsResponse current;
  if (args.size() == 3 && args[2] == "show") {
    if (absl::Status s = Call(admin, &v1::Reminders::Stub::GetReminderSettings,
                              v1::GetReminderSettingsRequest(), &current);
        !s.ok()) {
      return Fail(s);
    }
    if (JsonOutput()) return PrintJsonOr(current);
    PrintSettings(current.settings());
    return kExitOk;
  }
  if (args.size() < 3 || args[2] != "set") return Usage();
  absl::StatusOr<std::map<std::string, std::string>> options = ParseOptions(
      args, 3, {"guest-leads", "password-leads", "from", "from-name", "time-zone", "file"});
  if (!options.ok()) return Usage(std::string(options.status().message()));
  if (options->empty()) return Usage("reminders settings set: nothing to change");
  if (absl::Status s = Call(admin, &v1::Reminders::Stub::GetReminderSettings,
                            v1::GetReminderSettingsRequest(), &current);
      !s.ok()) {
    return Fail(s);
  }
  v1::SetReminderSettingsRequest request;
  request.set_etag(current.settings().etag());
  v1::ReminderSettings* s = request.mutable_settings();
  if (options->count("file")) {
    if (absl::Status status = LoadTextConfigFile(Get(*options, "file"), s); !status.ok()) {
      return Fail(status);
    }
  } else {
    *s = current.settings();
  }
  if (options->count("guest-leads")) {
    auto leads = ParseLeads(Get(*options, "guest-leads"), "guest-leads");
    if (!leads.ok()) return Usage(std::string(leads.status().message()));
    *s->mutable_guest_expiry_lead_times() = *leads;
  }
  if (options->count("password-leads")) {
    auto leads = ParseLeads(Get(*options, "password-leads"), "password-leads");
    if (!leads.ok()) return Usage(std::string(leads.status().message()));
    *s->mutable_password_expiry_lead_times() = *leads;
  }
  if (options->count("from")) s->mutable_from()->set_address(Get(*options, "from"));
  if (options->count("from-name")) s->mutable_from()->set_display_name(Get(*options, "from-name"));
  if (options->count("time-zone")) s->set_time_zone(Get(*options, "time-zone"));
  v1::SetReminderSettingsResponse response;
  if (absl::Status status =
          Call(admin, &v1::Reminders::Stub::SetReminderSettings, request, &response);
      !status.ok()) {
    return Fail(status);
  }
  if (JsonOutput()) return PrintJsonOr(response);
  std::cout << "Saved; " << response.replanned_reminders() << " reminder(s) re-planned.\n";
  PrintSettings(response.settings());
  return kExitOk;
}

int Status(const Admin& admin, const std::vector<std::string>& args) {
  if (args.size() != 3) return Usage("reminders status takes one notification id");
  v1::GetNotificationStatusRequest request;
  request.set_notification_id(args[2]);
  v1::GetNotificationStatusResponse response;
  if (absl::Status s = Call(admin, &v1::Reminders::Stub::GetNotificationStatus, request, &response);
      !s.ok()) {
    return Fail(s);
  }
  if (JsonOutput()) return PrintJsonOr(response);
  const mailroom::common::v1::Notification& n = response.notification();
  std::cout << n.id() << "  "
            << Suffix(mailroom::common::v1::NotificationState_Name(n.state()),
                      "NOTIFICATION_STATE_")
            << "  attempts " << n.attempts() << "  " << n.subject() << "\n";
  for (const auto& r : n.recipients()) std::cout << "  to " << Address(r.address()) << "\n";
  if (n.last_reply_code() != 0) std::cout << "  last reply: " << n.last_reply_text() << "\n";
  if (n.has_diagnosis()) {
    std::cout << "  " << n.diagnosis().title() << "\n  fix: " << n.diagnosis().fix() << "\n";
  }
  return kExitOk;
}

}  // namespace

absl::optional<int> RunPanCommand(const Admin& admin, const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "account" && args[0] != "reminders")) return absl::nullopt;
  if (args.size() < 2) return Usage();
  const std::string& verb = args[1];
  if (args[0] == "account") {
    if (verb == "upsert-guest") return UpsertGuest(admin, args);
    if (verb == "upsert-user") return UpsertUser(admin, args);
    if (verb == "delete-guest") return Delete(admin, args, /*guest=*/true);
    if (verb == "delete-user") return Delete(admin, args, /*guest=*/false);
    if (verb == "list") return ListAccounts(admin, args);
    return Usage();
  }
  if (verb == "plan") return Plan(admin, args);
  if (verb == "settings") return Settings(admin, args);
  if (verb == "status") return Status(admin, args);
  return Usage();
}

}  // namespace mailroom::cli
