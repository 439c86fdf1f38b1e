// mailroomctl commands of the PSN's GuestNotifications service, against
// AdminClientConfig.psn_targets. Options are NAME=VALUE words after the command (so that they
// cannot collide with another role's flags in this one binary); --json prints the response
// messages for scripts. Passwords are never taken on the command line (they would show in
// `ps` and shell history): password_file=FILE, or password_file=- for standard input.
//
// The portal calls, for operators and scripts (sent to one PSN: psn=N, default 1):
//   guest register portal=ID username=U email=ADDR password_file=F [first_name=..]
//                  [last_name=..] [display_name=..] [valid_hours=H | valid_until=T]
//                  [valid_from=T] [language=TAG] [key=K]
//   guest create|resend portal=ID sponsor=USER [sponsor_email=ADDR] [copy_me] [summary]
//                  (guests_file=F | username=U email=ADDR password_file=F ...) [language=TAG]
//                  [valid_hours=H] [key=K]
//   guest reset-password portal=ID username=U email=ADDR password_file=F [sponsor=USER]
//                  [sponsor_email=ADDR] [copy_me] [language=TAG] [key=K]
//   guest test-email portal=ID to=ADDR [kind=K] [language=TAG] [key=K]
//   guest status NOTIFICATION_ID | guest status key=K
//   guest list [state=S,..] [kind=K,..] [recipient=ADDR] [limit=N]
// Templates and settings (writes go to every PSN unless psn=N; reads to psn=N, default 1):
//   template put (file=TEMPLATE.textproto | kind=K subject=TEXT [text_file=F] [html_file=F]
//                [time_zone=TZ]) [portal=ID] [language=TAG] [validate_only]
//   template get kind=K [portal=ID] [language=TAG] [resolve]
//   template list [portal=ID]
//   template delete kind=K [portal=ID] [language=TAG]
//   psn-settings show
//   psn-settings set [notifications=on|off] [from=ADDR] [from_name=NAME]
//
// T is YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC). K (kind) is self_registration,
// guest_credentials, sponsor_summary or password_reset. A guests_file is text format with
// one `guests { username: ".." password: ".." email { address: ".." } ... }` per guest;
// guests without valid_from / valid_until get now / now + valid_hours (default 24).
// Without key=, a random idempotency key is made and printed: pass it as key= (with the
// printed valid_from= / valid_until= when they were defaulted from the clock) to retry a
// command safely; the PSN then sends nothing twice.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
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
#include "common/rpc/status_grpc.h"
#include "common/base/text_config.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"

namespace mailroom::cli {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace pv1 = ::mailroom::psn::v1;

// NAME=VALUE words; a bare word is NAME with value "" (a switch such as copy_me).
struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;

  bool Has(const std::string& name) const { return options.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
};

constexpr char kGuestUsage[] =
    "usage (one PSN: psn=N, default 1):\n"
    "  guest register portal=ID username=U email=ADDR password_file=F|- [first_name=..]\n"
    "                 [last_name=..] [display_name=..] [valid_hours=H | valid_until=T]\n"
    "                 [valid_from=T] [language=TAG] [key=K]\n"
    "                       a self-registered guest's credentials\n"
    "  guest create|resend portal=ID sponsor=USER [sponsor_email=ADDR] [copy_me] [summary]\n"
    "                 (guests_file=F | username=U email=ADDR password_file=F ...)\n"
    "                 [language=TAG] [valid_hours=H] [key=K]\n"
    "                       credentials of sponsor-created guests / the sponsor portal's Resend\n"
    "  guest reset-password portal=ID username=U email=ADDR password_file=F|- [sponsor=USER]\n"
    "                 [sponsor_email=ADDR] [copy_me] [language=TAG] [key=K]\n"
    "  guest test-email portal=ID to=ADDR [kind=K] [language=TAG] [key=K]\n"
    "                       the portal's Send Test Email (works with notifications off)\n"
    "  guest status NOTIFICATION_ID | guest status key=K\n"
    "  guest list [state=queued,sending,sent,failed] [kind=K,..] [recipient=ADDR] [limit=N]\n"
    "T: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC). K: self_registration, guest_credentials,\n"
    "sponsor_summary, password_reset (list also: resend, test_email). Passwords come from a\n"
    "file or stdin (password_file=-), never the command line. guests_file: text format, one\n"
    "`guests { username: \"..\" password: \"..\" email { address: \"..\" } }` per guest.\n"
    "Without key= a random idempotency key is made and printed; to retry a command safely,\n"
    "repeat it with the printed key= (and valid_from= valid_until= when they were defaulted,\n"
    "since a retry must carry the same content). --json prints the response.\n";

constexpr char kTemplateUsage[] =
    "usage (writes go to every PSN unless psn=N; reads to psn=N, default 1):\n"
    "  template put (file=TEMPLATE.textproto | kind=K subject=TEXT [text_file=F]\n"
    "               [html_file=F] [time_zone=TZ]) [portal=ID] [language=TAG] [validate_only]\n"
    "  template get kind=K [portal=ID] [language=TAG] [resolve]\n"
    "                       resolve: the template sending would use (after fallback)\n"
    "  template list [portal=ID]\n"
    "  template delete kind=K [portal=ID] [language=TAG]\n"
    "K: self_registration, guest_credentials, sponsor_summary, password_reset. Variables:\n"
    "{{username}} {{password}} {{first_name}} {{last_name}} {{email}} {{valid_from}}\n"
    "{{valid_until}} {{portal}}, plus {{sponsor}} {{sponsor_email}} for guest_credentials and\n"
    "password_reset; a summary has {{sponsor}} {{sponsor_email}} {{portal}} {{guest_count}}\n"
    "{{guests}}. An unknown variable is refused when the template is saved.\n";

constexpr char kSettingsUsage[] =
    "usage (set goes to every PSN unless psn=N):\n"
    "  psn-settings show            Guest Email Settings of every PSN\n"
    "  psn-settings set [notifications=on|off] [from=ADDR] [from_name=NAME]\n"
    "                               read, change, write back with the etag\n";

Args Parse(const std::vector<std::string>& args, size_t first) {
  Args parsed;
  for (size_t i = first; i < args.size(); ++i) {
    const size_t equals = args[i].find('=');
    if (equals == std::string::npos) {
      if (absl::StrContains(args[i], "/")) {
        parsed.positional.push_back(args[i]);  // a notification id "psn1/01J..."
      } else {
        parsed.options[args[i]] = "";
      }
    } else {
      parsed.options[args[i].substr(0, equals)] = args[i].substr(equals + 1);
    }
  }
  return parsed;
}

absl::Status Unknown(const Args& args, const std::vector<std::string>& known) {
  for (const auto& [name, value] : args.options) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option \"", name, "\" (known: ",
                                                     absl::StrJoin(known, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, std::string>> AllTargets(const Admin& admin) {
  std::vector<std::pair<std::string, std::string>> targets;
  for (int i = 0; i < admin.config.psn_targets_size(); ++i) {
    targets.emplace_back(absl::StrCat("psn", i + 1), admin.config.psn_targets(i));
  }
  return targets;
}

// psn=N (1-based) or every PSN when `all_by_default`.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Targets(const Admin& admin,
                                                                          const Args& args,
                                                                          bool all_by_default) {
  std::vector<std::pair<std::string, std::string>> all = AllTargets(admin);
  if (all.empty()) {
    return absl::FailedPreconditionError("no psn_targets in the admin configuration");
  }
  if (!args.Has("psn")) {
    if (all_by_default) return all;
    return std::vector<std::pair<std::string, std::string>>{all[0]};
  }
  std::string value = args.Get("psn");
  absl::string_view number = value;
  absl::ConsumePrefix(&number, "psn");
  int index = 0;
  if (!absl::SimpleAtoi(number, &index) || index < 1 || index > static_cast<int>(all.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("psn=", value, ": expected 1..", all.size(), " (psn_targets)"));
  }
  return std::vector<std::pair<std::string, std::string>>{all[index - 1]};
}

std::unique_ptr<pv1::GuestNotifications::Stub> Stub(const Admin& admin,
                                                     const std::string& target) {
  return pv1::GuestNotifications::NewStub(admin.Channel(target));
}

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ostringstream contents;
  if (path == "-") {
    contents << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    contents << in.rdbuf();
  }
  return contents.str();
}

absl::StatusOr<std::string> ReadPassword(const Args& args) {
  if (args.Has("password")) {
    return absl::InvalidArgumentError(
        "password=: passwords are never taken on the command line; use password_file=FILE or "
        "password_file=- (stdin)");
  }
  if (!args.Has("password_file")) {
    return absl::InvalidArgumentError("password_file=FILE (or - for stdin) is required");
  }
  absl::StatusOr<std::string> text = ReadText(args.Get("password_file"));
  if (!text.ok()) return text.status();
  absl::string_view password = *text;
  absl::ConsumeSuffix(&password, "\n");
  absl::ConsumeSuffix(&password, "\r");
  return std::string(password);
}

absl::StatusOr<absl::Time> ParseTime(const std::string& option, const std::string& value) {
  absl::Time time;
  std::string error;
  for (const char* format : {"%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, value, absl::UTCTimeZone(), &time, &error)) return time;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(option, "=", value, ": expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"));
}

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* timestamp) {
  timestamp->set_seconds(absl::ToUnixSeconds(time));
}

// The validity given to guests that have none: valid_from (default: now) and valid_until
// (default: valid_from + valid_hours, 24 by default), both on whole minutes. When a default
// was used, `retry_options` spells the values out: a retry must send the same content, and
// "now" moves.
struct Validity {
  absl::Time from;
  absl::Time until;
  std::string retry_options;
};

std::string FormatOption(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M", time, absl::UTCTimeZone());
}

absl::StatusOr<Validity> ValidityFromArgs(const Args& args) {
  Validity validity;
  bool defaulted = false;
  if (args.Has("valid_from")) {
    absl::StatusOr<absl::Time> parsed = ParseTime("valid_from", args.Get("valid_from"));
    if (!parsed.ok()) return parsed.status();
    validity.from = *parsed;
  } else {
    validity.from = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 60 * 60);
    defaulted = true;
  }
  if (args.Has("valid_until")) {
    absl::StatusOr<absl::Time> parsed = ParseTime("valid_until", args.Get("valid_until"));
    if (!parsed.ok()) return parsed.status();
    validity.until = *parsed;
  } else {
    double hours = 24;
    if (args.Has("valid_hours") && !absl::SimpleAtod(args.Get("valid_hours"), &hours)) {
      return absl::InvalidArgumentError("valid_hours=: expected a number of hours");
    }
    validity.until = validity.from + absl::Minutes(static_cast<int64_t>(hours * 60));
    defaulted = true;
  }
  if (defaulted) {
    validity.retry_options = absl::StrCat(" valid_from=", FormatOption(validity.from),
                                          " valid_until=", FormatOption(validity.until));
  }
  return validity;
}

void FillValidity(const Validity& validity, pv1::Guest* guest) {
  if (!guest->has_valid_from()) SetTimestamp(validity.from, guest->mutable_valid_from());
  if (!guest->has_valid_until()) SetTimestamp(validity.until, guest->mutable_valid_until());
}

// One guest from username= email= password_file= first_name= last_name= display_name=.
absl::StatusOr<pv1::Guest> GuestFromArgs(const Args& args, const Validity* validity) {
  pv1::Guest guest;
  guest.set_username(args.Get("username"));
  guest.set_guest_id(args.Get("guest_id"));
  guest.set_first_name(args.Get("first_name"));
  guest.set_last_name(args.Get("last_name"));
  guest.mutable_email()->set_address(args.Get("email"));
  guest.mutable_email()->set_display_name(args.Get("display_name"));
  absl::StatusOr<std::string> password = ReadPassword(args);
  if (!password.ok()) return password.status();
  guest.set_password(*password);
  if (validity != nullptr) FillValidity(*validity, &guest);
  return guest;
}

absl::StatusOr<pv1::Sponsor> SponsorFromArgs(const Args& args) {
  pv1::Sponsor sponsor;
  sponsor.set_username(args.Get("sponsor"));
  sponsor.mutable_email()->set_address(args.Get("sponsor_email"));
  return sponsor;
}

std::string NewKey() {
  absl::BitGen bits;
  return absl::StrFormat("cli-%016x%016x", absl::Uniform<uint64_t>(bits),
                         absl::Uniform<uint64_t>(bits));
}

std::string KeyOf(const Args& args) { return args.Has("key") ? args.Get("key") : NewKey(); }

absl::StatusOr<pv1::TemplateKind> ParseKind(const std::string& value) {
  std::string upper = absl::AsciiStrToUpper(value);
  absl::StrReplaceAll({{"-", "_"}}, &upper);
  pv1::TemplateKind kind;
  if (!absl::StartsWith(upper, "TEMPLATE_KIND_")) upper = "TEMPLATE_KIND_" + upper;
  if (!pv1::TemplateKind_Parse(upper, &kind) || kind == pv1::TEMPLATE_KIND_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind=", value,
        ": expected self_registration, guest_credentials, sponsor_summary or password_reset"));
  }
  return kind;
}

std::string Short(const std::string& enum_name, absl::string_view prefix) {
  absl::string_view name = enum_name;
  absl::ConsumePrefix(&name, prefix);
  return std::string(name);
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

void PrintQueued(const cv1::QueuedNotification& q) {
  std::vector<std::string> to;
  for (const cv1::EmailAddress& address : q.recipients()) to.push_back(address.address());
  std::cout << "queued " << q.notification_id() << "  "
            << Short(cv1::NotificationKind_Name(q.kind()), "NOTIFICATION_KIND_") << "  to "
            << absl::StrJoin(to, ", ") << "  Message-ID <" << q.message_id() << ">\n";
}

void PrintSendResult(const std::string& target_name,
                     const google::protobuf::RepeatedPtrField<cv1::QueuedNotification>& queued,
                     bool duplicate, const std::string& key,
                     const std::string& retry_options = "") {
  for (const cv1::QueuedNotification& q : queued) PrintQueued(q);
  if (duplicate) {
    std::cout << "(a repeated request: nothing new was queued; these are the original ids)\n";
  }
  std::cout << "on " << target_name << ", idempotency key " << key
            << " (to retry safely, repeat the command with key=" << key << retry_options
            << ")\n";
}

void PrintNotification(const cv1::Notification& n) {
  std::cout << n.id() << "  " << Short(cv1::NotificationState_Name(n.state()),
                                       "NOTIFICATION_STATE_")
            << "  " << Short(cv1::NotificationKind_Name(n.kind()), "NOTIFICATION_KIND_")
            << "  attempts " << n.attempts() << "  created " << Time(n.create_time()) << "\n";
  if (!n.subject().empty()) std::cout << "    subject: " << n.subject() << "\n";
  for (const cv1::Recipient& r : n.recipients()) {
    std::cout << "    " << (r.type() == cv1::RECIPIENT_TYPE_CC ? "cc " : "to ")
              << r.address().address();
    if (r.state() == cv1::RECIPIENT_STATE_REJECTED) {
      std::cout << "  REJECTED " << r.reply_code() << " " << r.reply_text();
    }
    std::cout << "\n";
  }
  if (n.state() == cv1::NOTIFICATION_STATE_SENT) {
    std::cout << "    sent " << Time(n.send_time()) << "\n";
  } else if (n.state() == cv1::NOTIFICATION_STATE_QUEUED && n.has_next_attempt_time()) {
    std::cout << "    next attempt " << Time(n.next_attempt_time()) << "\n";
  }
  if (n.last_reply_code() != 0) std::cout << "    last reply: " << n.last_reply_text() << "\n";
  if (n.has_diagnosis()) {
    std::cout << "    " << n.diagnosis().title() << "\n    fix: " << n.diagnosis().fix() << "\n";
  }
}

// --- guest ---------------------------------------------------------------------------------

int GuestRegister(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "portal", "username", "email", "password_file",
                                      "password", "first_name", "last_name", "display_name",
                                      "guest_id", "valid_hours", "valid_until", "valid_from",
                                      "language", "key"});
      !s.ok()) {
    return Fail(s);
  }
  auto targets = Targets(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  absl::StatusOr<Validity> validity = ValidityFromArgs(args);
  if (!validity.ok()) return Fail(validity.status());
  pv1::NotifySelfRegistrationRequest request;
  absl::StatusOr<pv1::Guest> guest = GuestFromArgs(args, &*validity);
  if (!guest.ok()) return Fail(guest.status());
  *request.mutable_guest() = *std::move(guest);
  request.set_portal_id(args.Get("portal"));
  request.set_language(args.Get("language"));
  request.set_idempotency_key(KeyOf(args));
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  pv1::NotifySelfRegistrationResponse response;
  const grpc::Status status =
      Stub(admin, (*targets)[0].second)->NotifySelfRegistration(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  google::protobuf::RepeatedPtrField<cv1::QueuedNotification> queued;
  *queued.Add() = response.notification();
  PrintSendResult((*targets)[0].first, queued, response.duplicate(), request.idempotency_key(),
                  validity->retry_options);
  return kExitOk;
}

// The guests of create / resend: guests_file=F, or one guest from the options.
absl::StatusOr<std::vector<pv1::Guest>> SponsorGuests(const Args& args,
                                                       const Validity& validity) {
  std::vector<pv1::Guest> guests;
  if (args.Has("guests_file")) {
    pv1::ResendRequest file;
    if (absl::Status s = LoadTextConfigFile(args.Get("guests_file"), &file); !s.ok()) return s;
    for (pv1::Guest& guest : *file.mutable_guests()) {
      FillValidity(validity, &guest);
      guests.push_back(std::move(guest));
    }
    if (guests.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(args.Get("guests_file"), ": no `guests { ... }` entries"));
    }
    return guests;
  }
  absl::StatusOr<pv1::Guest> guest = GuestFromArgs(args, &validity);
  if (!guest.ok()) return guest.status();
  guests.push_back(*std::move(guest));
  return guests;
}

int GuestSponsorSend(const Admin& admin, const Args& args, bool resend) {
  if (absl::Status s = Unknown(args, {"psn", "portal", "sponsor", "sponsor_email", "copy_me",
                                      "summary", "guests_file", "username", "email",
                                      "password_file", "password", "first_name", "last_name",
                                      "display_name", "guest_id", "valid_hours", "valid_until",
                                      "valid_from", "language", "key"});
      !s.ok()) {
    return Fail(s);
  }
  auto targets = Targets(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  absl::StatusOr<Validity> validity = ValidityFromArgs(args);
  if (!validity.ok()) return Fail(validity.status());
  absl::StatusOr<std::vector<pv1::Guest>> guests = SponsorGuests(args, *validity);
  if (!guests.ok()) return Fail(guests.status());
  absl::StatusOr<pv1::Sponsor> sponsor = SponsorFromArgs(args);
  if (!sponsor.ok()) return Fail(sponsor.status());
  const std::string key = KeyOf(args);
  auto stub = Stub(admin, (*targets)[0].second);
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  grpc::Status status;
  google::protobuf::RepeatedPtrField<cv1::QueuedNotification> queued;
  bool duplicate = false;
  if (resend) {
    pv1::ResendRequest request;
    for (pv1::Guest& guest : *guests) *request.add_guests() = std::move(guest);
    *request.mutable_sponsor() = *sponsor;
    request.set_portal_id(args.Get("portal"));
    request.set_language(args.Get("language"));
    request.set_delivery(pv1::DELIVERY_METHOD_EMAIL);
    request.set_copy_me(args.Has("copy_me"));
    request.set_send_summary(args.Has("summary"));
    request.set_idempotency_key(key);
    pv1::ResendResponse response;
    status = stub->Resend(&context, request, &response);
    if (status.ok() && JsonOutput()) std::cout << ToJson(response) << "\n";
    queued = response.notifications();
    duplicate = response.duplicate();
  } else {
    pv1::NotifySponsorCreatedAccountsRequest request;
    for (pv1::Guest& guest : *guests) *request.add_guests() = std::move(guest);
    *request.mutable_sponsor() = *sponsor;
    request.set_portal_id(args.Get("portal"));
    request.set_language(args.Get("language"));
    request.set_copy_me(args.Has("copy_me"));
    request.set_send_summary(args.Has("summary"));
    request.set_idempotency_key(key);
    pv1::NotifySponsorCreatedAccountsResponse response;
    status = stub->NotifySponsorCreatedAccounts(&context, request, &response);
    if (status.ok() && JsonOutput()) std::cout << ToJson(response) << "\n";
    queued = response.notifications();
    duplicate = response.duplicate();
  }
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (!JsonOutput()) {
    PrintSendResult((*targets)[0].first, queued, duplicate, key, validity->retry_options);
  }
  return kExitOk;
}

int GuestResetPassword(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "portal", "username", "email", "password_file",
                                      "password", "first_name", "last_name", "display_name",
                                      "guest_id", "sponsor", "sponsor_email", "copy_me",
                                      "language", "key"});
      !s.ok()) {
    return Fail(s);
  }
  auto targets = Targets(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::SendPasswordResetRequest request;
  absl::StatusOr<pv1::Guest> guest = GuestFromArgs(args, nullptr);
  if (!guest.ok()) return Fail(guest.status());
  *request.mutable_guest() = *std::move(guest);
  if (args.Has("sponsor") || args.Has("sponsor_email")) {
    *request.mutable_sponsor() = *SponsorFromArgs(args);
  }
  request.set_portal_id(args.Get("portal"));
  request.set_language(args.Get("language"));
  request.set_copy_me(args.Has("copy_me"));
  request.set_idempotency_key(KeyOf(args));
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  pv1::SendPasswordResetResponse response;
  const grpc::Status status =
      Stub(admin, (*targets)[0].second)->SendPasswordReset(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  google::protobuf::RepeatedPtrField<cv1::QueuedNotification> queued;
  *queued.Add() = response.notification();
  PrintSendResult((*targets)[0].first, queued, response.duplicate(), request.idempotency_key());
  return kExitOk;
}

int GuestTestEmail(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "portal", "to", "kind", "language", "key"});
      !s.ok()) {
    return Fail(s);
  }
  auto targets = Targets(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::SendTestEmailRequest request;
  request.set_portal_id(args.Get("portal"));
  request.set_language(args.Get("language"));
  request.mutable_to()->set_address(args.Get("to"));
  if (args.Has("kind")) {
    absl::StatusOr<pv1::TemplateKind> kind = ParseKind(args.Get("kind"));
    if (!kind.ok()) return Fail(kind.status());
    request.set_kind(*kind);
  }
  request.set_idempotency_key(KeyOf(args));
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  pv1::SendTestEmailResponse response;
  const grpc::Status status =
      Stub(admin, (*targets)[0].second)->SendTestEmail(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  google::protobuf::RepeatedPtrField<cv1::QueuedNotification> queued;
  *queued.Add() = response.notification();
  PrintSendResult((*targets)[0].first, queued, response.duplicate(), request.idempotency_key());
  return kExitOk;
}

int GuestStatus(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "key"}); !s.ok()) return Fail(s);
  pv1::GetNotificationStatusRequest request;
  if (args.Has("key")) {
    request.set_idempotency_key(args.Get("key"));
  } else if (args.positional.size() == 1) {
    request.set_notification_id(args.positional[0]);
  } else {
    std::cerr << kGuestUsage;
    return kExitUsage;
  }
  // A notification id names its node ("psn2/01J..."): ask that PSN unless psn= says otherwise.
  Args routed = args;
  if (!routed.Has("psn") && !request.notification_id().empty()) {
    const std::string node = request.notification_id().substr(
        0, request.notification_id().find('/'));
    for (const auto& [name, target] : AllTargets(admin)) {
      if (name == node) routed.options["psn"] = name;
    }
  }
  auto targets = Targets(admin, routed, false);
  if (!targets.ok()) return Fail(targets.status());
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  pv1::GetNotificationStatusResponse response;
  const grpc::Status status =
      Stub(admin, (*targets)[0].second)->GetNotificationStatus(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  for (const cv1::Notification& n : response.notifications()) PrintNotification(n);
  return kExitOk;
}

int GuestList(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "state", "kind", "recipient", "limit"}); !s.ok()) {
    return Fail(s);
  }
  auto targets = Targets(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::ListNotificationsRequest request;
  for (absl::string_view state : absl::StrSplit(args.Get("state"), ',', absl::SkipEmpty())) {
    cv1::NotificationState value;
    if (!cv1::NotificationState_Parse(
            absl::StrCat("NOTIFICATION_STATE_", absl::AsciiStrToUpper(state)), &value)) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("state=", state, ": expected queued, sending, sent or failed")));
    }
    request.add_states(value);
  }
  for (absl::string_view kind : absl::StrSplit(args.Get("kind"), ',', absl::SkipEmpty())) {
    std::string upper = absl::AsciiStrToUpper(kind);
    absl::StrReplaceAll({{"-", "_"}}, &upper);
    static const std::map<std::string, cv1::NotificationKind> kShort = {
        {"SELF_REGISTRATION", cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION},
        {"GUEST_CREDENTIALS", cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS},
        {"RESEND", cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS_RESEND},
        {"SPONSOR_SUMMARY", cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY},
        {"PASSWORD_RESET", cv1::NOTIFICATION_KIND_PASSWORD_RESET},
        {"TEST_EMAIL", cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL}};
    auto it = kShort.find(upper);
    cv1::NotificationKind value;
    if (it != kShort.end()) {
      value = it->second;
    } else if (!cv1::NotificationKind_Parse(upper, &value)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "kind=", kind, ": expected self_registration, guest_credentials, resend, "
                         "sponsor_summary, password_reset or test_email")));
    }
    request.add_kinds(value);
  }
  request.set_recipient(args.Get("recipient"));
  int limit = 50;
  if (args.Has("limit") && !absl::SimpleAtoi(args.Get("limit"), &limit)) {
    return Fail(absl::InvalidArgumentError("limit=: expected a number"));
  }
  request.mutable_page()->set_page_size(limit);
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  pv1::ListNotificationsResponse response;
  const grpc::Status status =
      Stub(admin, (*targets)[0].second)->ListNotifications(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  std::cout << (*targets)[0].first << ": " << response.notifications_size() << " shown";
  if (!response.page().next_page_token().empty()) std::cout << " (more: raise limit=)";
  std::cout << "\n";
  for (const cv1::Notification& n : response.notifications()) PrintNotification(n);
  return kExitOk;
}

int RunGuest(const Admin& admin, const std::vector<std::string>& argv) {
  if (argv.size() < 2 || argv[1] == "help") {
    std::cerr << kGuestUsage;
    return argv.size() >= 2 ? kExitOk : kExitUsage;
  }
  const Args args = Parse(argv, 2);
  const std::string& command = argv[1];
  if (command == "register") return GuestRegister(admin, args);
  if (command == "create") return GuestSponsorSend(admin, args, false);
  if (command == "resend") return GuestSponsorSend(admin, args, true);
  if (command == "reset-password") return GuestResetPassword(admin, args);
  if (command == "test-email") return GuestTestEmail(admin, args);
  if (command == "status") return GuestStatus(admin, args);
  if (command == "list") return GuestList(admin, args);
  std::cerr << "mailroomctl: unknown command \"guest " << command << "\"\n" << kGuestUsage;
  return kExitUsage;
}

// --- template ------------------------------------------------------------------------------

void PrintTemplate(const pv1::Template& t, bool body) {
  std::cout << "portal \"" << t.portal_id() << "\"  language \"" << t.language() << "\"  "
            << absl::AsciiStrToLower(Short(pv1::TemplateKind_Name(t.kind()), "TEMPLATE_KIND_"))
            << "  etag " << (t.etag().empty() ? "(built-in)" : t.etag());
  if (t.has_update_time()) std::cout << "  saved " << Time(t.update_time());
  std::cout << "\n  subject: " << t.subject() << "\n";
  if (!t.time_zone().empty()) std::cout << "  time zone: " << t.time_zone() << "\n";
  if (!body) return;
  if (!t.text_body().empty()) std::cout << "--- text ---\n" << t.text_body() << "\n";
  if (!t.html_body().empty()) std::cout << "--- html ---\n" << t.html_body() << "\n";
}

int TemplatePut(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "file", "kind", "subject", "text_file", "html_file",
                                      "time_zone", "portal", "language", "validate_only"});
      !s.ok()) {
    return Fail(s);
  }
  auto targets = Targets(admin, args, true);
  if (!targets.ok()) return Fail(targets.status());
  pv1::PutTemplateRequest request;
  pv1::Template* t = request.mutable_template_();
  if (args.Has("file")) {
    if (absl::Status s = LoadTextConfigFile(args.Get("file"), t); !s.ok()) return Fail(s);
  }
  if (args.Has("kind")) {
    absl::StatusOr<pv1::TemplateKind> kind = ParseKind(args.Get("kind"));
    if (!kind.ok()) return Fail(kind.status());
    t->set_kind(*kind);
  }
  if (args.Has("portal")) t->set_portal_id(args.Get("portal"));
  if (args.Has("language")) t->set_language(args.Get("language"));
  if (args.Has("subject")) t->set_subject(args.Get("subject"));
  if (args.Has("time_zone")) t->set_time_zone(args.Get("time_zone"));
  for (const auto& [option, setter] :
       {std::pair<const char*, std::string* (pv1::Template::*)()>{"text_file",
                                                                  &pv1::Template::mutable_text_body},
        std::pair<const char*, std::string* (pv1::Template::*)()>{
            "html_file", &pv1::Template::mutable_html_body}}) {
    if (!args.Has(option)) continue;
    absl::StatusOr<std::string> text = ReadText(args.Get(option));
    if (!text.ok()) return Fail(text.status());
    *(t->*setter)() = *std::move(text);
  }
  request.set_validate_only(args.Has("validate_only"));
  int failures = 0;
  std::vector<std::string> json;
  for (const auto& [name, target] : *targets) {
    grpc::ClientContext context;
    admin.SetDeadline(&context);
    pv1::PutTemplateResponse response;
    const grpc::Status status = Stub(admin, target)->PutTemplate(&context, request, &response);
    if (!status.ok()) {
      std::cerr << name << " (" << target << "): ";
      Fail(FromGrpcStatus(status));
      ++failures;
      continue;
    }
    if (JsonOutput()) {
      json.push_back(absl::StrCat("{\"psn\": \"", name, "\", \"response\": ", ToJson(response),
                                  "}"));
    } else {
      std::cout << name << " (" << target << "): "
                << (request.validate_only() ? "valid" : "saved") << ", etag "
                << response.template_().etag() << "\n";
    }
  }
  if (JsonOutput()) std::cout << "[" << absl::StrJoin(json, ",\n") << "]\n";
  return failures == 0 ? kExitOk : kExitFailed;
}

int TemplateGet(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "kind", "portal", "language", "resolve"}); !s.ok()) {
    return Fail(s);
  }
  auto targets = Targets(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::GetTemplateRequest request;
  absl::StatusOr<pv1::TemplateKind> kind = ParseKind(args.Get("kind"));
  if (!kind.ok()) return Fail(kind.status());
  request.set_kind(*kind);
  request.set_portal_id(args.Get("portal"));
  request.set_language(args.Get("language"));
  request.set_resolve(args.Has("resolve"));
  grpc::ClientContext context;
  admin.SetDeadline(&context);
  pv1::GetTemplateResponse response;
  const grpc::Status status =
      Stub(admin, (*targets)[0].second)->GetTemplate(&context, request, &response);
  if (!status.ok()) return Fail(FromGrpcStatus(status));
  if (JsonOutput()) {
    std::cout << ToJson(response) << "\n";
  } else {
    PrintTemplate(response.template_(), true);
  }
  return kExitOk;
}

int TemplateList(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "portal"}); !s.ok()) return Fail(s);
  auto targets = Targets(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::ListTemplatesRequest request;
  request.set_portal_id(args.Get("portal"));
  request.mutable_page()->set_page_size(1000);
  pv1::ListTemplatesResponse all;
  auto stub = Stub(admin, (*targets)[0].second);
  do {
    grpc::ClientContext context;
    admin.SetDeadline(&context);
    pv1::ListTemplatesResponse page;
    const grpc::Status status = stub->ListTemplates(&context, request, &page);
    if (!status.ok()) return Fail(FromGrpcStatus(status));
    for (pv1::Template& t : *page.mutable_templates()) *all.add_templates() = std::move(t);
    request.mutable_page()->set_page_token(page.page().next_page_token());
  } while (!request.page().page_token().empty());
  if (JsonOutput()) {
    std::cout << ToJson(all) << "\n";
    return kExitOk;
  }
  if (all.templates().empty()) {
    std::cout << (*targets)[0].first << ": no saved templates (the built-in ones are used)\n";
  }
  for (const pv1::Template& t : all.templates()) PrintTemplate(t, false);
  return kExitOk;
}

int TemplateDelete(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "kind", "portal", "language"}); !s.ok()) {
    return Fail(s);
  }
  auto targets = Targets(admin, args, true);
  if (!targets.ok()) return Fail(targets.status());
  pv1::DeleteTemplateRequest request;
  absl::StatusOr<pv1::TemplateKind> kind = ParseKind(args.Get("kind"));
  if (!kind.ok()) return Fail(kind.status());
  request.set_kind(*kind);
  request.set_portal_id(args.Get("portal"));
  request.set_language(args.Get("language"));
  int failures = 0;
  for (const auto& [name, target] : *targets) {
    grpc::ClientContext context;
    admin.SetDeadline(&context);
    pv1::DeleteTemplateResponse response;
    const grpc::Status status = Stub(admin, target)->DeleteTemplate(&context, request, &response);
    if (!status.ok()) {
      std::cerr << name << " (" << target << "): ";
      Fail(FromGrpcStatus(status));
      ++failures;
      continue;
    }
    if (!JsonOutput()) std::cout << name << " (" << target << "): deleted\n";
  }
  if (JsonOutput()) std::cout << "{\"failures\": " << failures << "}\n";
  return failures == 0 ? kExitOk : kExitFailed;
}

int RunTemplate(const Admin& admin, const std::vector<std::string>& argv) {
  if (argv.size() < 2 || argv[1] == "help") {
    std::cerr << kTemplateUsage;
    return argv.size() >= 2 ? kExitOk : kExitUsage;
  }
  const Args args = Parse(argv, 2);
  const std::string& command = argv[1];
  if (command == "put") return TemplatePut(admin, args);
  if (command == "get") return TemplateGet(admin, args);
  if (command == "list") return TemplateList(admin, args);
  if (command == "delete") return TemplateDelete(admin, args);
  std::cerr << "mailroomctl: unknown command \"template " << command << "\"\n" << kTemplateUsage;
  return kExitUsage;
}

// --- psn-settings --------------------------------------------------------------------------

int SettingsShow(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn"}); !s.ok()) return Fail(s);
  auto targets = Targets(admin, args, true);
  if (!targets.ok()) return Fail(targets.status());
  int failures = 0;
  std::set<std::string> etags;
  std::vector<std::string> json;
  for (const auto& [name, target] : *targets) {
    grpc::ClientContext context;
    admin.SetDeadline(&context);
    pv1::GetGuestEmailSettingsResponse response;
    const grpc::Status status =
        Stub(admin, target)->GetGuestEmailSettings(&context, {}, &response);
    if (!status.ok()) {
      std::cerr << name << " (" << target << "): ";
      Fail(FromGrpcStatus(status));
      ++failures;
      continue;
    }
    const pv1::GuestEmailSettings& s = response.settings();
    etags.insert(s.etag());
    if (JsonOutput()) {
      json.push_back(absl::StrCat("{\"psn\": \"", name, "\", \"response\": ", ToJson(response),
                                  "}"));
      continue;
    }
    std::cout << name << " (" << target << ")\n"
              << "  Email notifications to guests: "
              << (s.notifications_enabled() ? "enabled" : "DISABLED") << "\n"
              << "  Default 'From' address:        "
              << (s.default_from().address().empty() ? "(not set)" : s.default_from().address());
    if (!s.default_from().display_name().empty()) {
      std::cout << " (" << s.default_from().display_name() << ")";
    }
    std::cout << "\n  etag " << s.etag()
              << (s.has_update_time() ? absl::StrCat(", saved ", Time(s.update_time()))
                                      : std::string(", from the node config"))
              << "\n";
  }
  if (JsonOutput()) {
    std::cout << "[" << absl::StrJoin(json, ",\n") << "]\n";
  } else if (etags.size() > 1) {
    std::cout << "WARNING: the PSNs' settings differ; run `psn-settings set` to align them.\n";
  }
  return failures == 0 ? kExitOk : kExitFailed;
}

int SettingsSet(const Admin& admin, const Args& args) {
  if (absl::Status s = Unknown(args, {"psn", "notifications", "from", "from_name"}); !s.ok()) {
    return Fail(s);
  }
  if (args.Has("notifications") && args.Get("notifications") != "on" &&
      args.Get("notifications") != "off") {
    return Fail(absl::InvalidArgumentError("notifications=: expected on or off"));
  }
  auto targets = Targets(admin, args, true);
  if (!targets.ok()) return Fail(targets.status());
  int failures = 0;
  std::vector<std::string> json;
  for (const auto& [name, target] : *targets) {
    auto stub = Stub(admin, target);
    pv1::GetGuestEmailSettingsResponse current;
    grpc::Status status;
    {
      grpc::ClientContext context;
      admin.SetDeadline(&context);
      status = stub->GetGuestEmailSettings(&context, {}, &current);
    }
    pv1::SetGuestEmailSettingsResponse response;
    if (status.ok()) {
      pv1::SetGuestEmailSettingsRequest request;
      *request.mutable_settings() = current.settings();
      request.set_etag(current.settings().etag());
      if (args.Has("notifications")) {
        request.mutable_settings()->set_notifications_enabled(args.Get("notifications") == "on");
      }
      if (args.Has("from")) request.mutable_settings()->mutable_default_from()->set_address(args.Get("from"));
      if (args.Has("from_name")) {
        request.mutable_settings()->mutable_default_from()->set_display_name(args.Get("from_name"));
      }
      grpc::ClientContext context;
      admin.SetDeadline(&context);
      status = stub->SetGuestEmailSettings(&context, request, &response);
    }
    if (!status.ok()) {
      std::cerr << name << " (" << target << "): ";
      Fail(FromGrpcStatus(status));
      ++failures;
      continue;
    }
    if (JsonOutput()) {
      json.push_back(absl::StrCat("{\"psn\": \"", name, "\", \"response\": ", ToJson(response),
                                  "}"));
    } else {
      const pv1::GuestEmailSettings& s = response.settings();
      std::cout << name << " (" << target << "): saved; notifications "
                << (s.notifications_enabled() ? "enabled" : "disabled") << ", from "
                << (s.default_from().address().empty() ? "(not set)" : s.default_from().address())
                << ", etag " << s.etag() << "\n";
    }
  }
  if (JsonOutput()) std::cout << "[" << absl::StrJoin(json, ",\n") << "]\n";
  return failures == 0 ? kExitOk : kExitFailed;
}

int RunSettings(const Admin& admin, const std::vector<std::string>& argv) {
  if (argv.size() < 2 || argv[1] == "help") {
    std::cerr << kSettingsUsage;
    return argv.size() >= 2 ? kExitOk : kExitUsage;
  }
  const Args args = Parse(argv, 2);
  if (argv[1] == "show") return SettingsShow(admin, args);
  if (argv[1] == "set") return SettingsSet(admin, args);
  std::cerr << "mailroomctl: unknown command \"psn-settings " << argv[1] << "\"\n"
            << kSettingsUsage;
  return kExitUsage;
}

}  // namespace

absl::optional<int> RunPsnCommand(const Admin& admin, const std::vector<std::string>& args) {
  if (args.empty()) return absl::nullopt;
  if (args[0] == "guest") return RunGuest(admin, args);
  if (args[0] == "template") return RunTemplate(admin, args);
  if (args[0] == "psn-settings") return RunSettings(admin, args);
  return absl::nullopt;
}

}  // namespace mailroom::cli
