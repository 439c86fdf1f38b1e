// mailroomctl `guest` commands: the PSN's portal calls, for operators and scripts (sent to
// one PSN: psn=N, default 1). Passwords are never taken on the command line (they would show
// in `ps` and shell history): password_file=FILE, or password_file=- for standard input.
//
// T is YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC). A guests_file is text format with one
// `guests { username: ".." password: ".." email { address: ".." } ... }` per guest; guests
// without valid_from / valid_until get now / now + valid_hours (default 24). Without key=, a
// random idempotency key is made and printed: pass it as key= (with the printed valid_from= /
// valid_until= when they were defaulted from the clock) to retry a command safely; the PSN
// then sends nothing twice.
#include <iostream>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/proto_words.h"
#include "cli/psn_common.h"
#include "cli/role_commands.h"
#include "common/base/proto_time.h"
#include "common/base/text_config.h"

namespace mailroom::cli {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace pv1 = ::mailroom::psn::v1;

constexpr char kUsage[] = R"(usage (one PSN: psn=N, default 1):
  guest register portal=ID username=U email=ADDR password_file=F|- [first_name=..]
                 [last_name=..] [display_name=..] [valid_hours=H | valid_until=T]
                 [valid_from=T] [language=TAG] [key=K]
                       a self-registered guest's credentials
  guest create|resend portal=ID sponsor=USER [sponsor_email=ADDR] [copy_me] [summary]
                 (guests_file=F | username=U email=ADDR password_file=F ...)
                 [language=TAG] [valid_hours=H] [key=K]
                       credentials of sponsor-created guests / the sponsor portal's Resend
  guest reset-password portal=ID username=U email=ADDR password_file=F|- [sponsor=USER]
                 [sponsor_email=ADDR] [copy_me] [language=TAG] [key=K]
  guest test-email portal=ID to=ADDR [kind=K] [language=TAG] [key=K]
                       the portal's Send Test Email (works with notifications off)
  guest status NOTIFICATION_ID | guest status key=K
  guest list [state=queued,sending,sent,failed] [kind=K,..] [recipient=ADDR] [limit=N]
T: YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC). K: self_registration, guest_credentials,
sponsor_summary, password_reset (list also: resend, test_email). Passwords come from a
file or stdin (password_file=-), never the command line. guests_file: text format, one
`guests { username: ".." password: ".." email { address: ".." } }` per guest.
Without key= a random idempotency key is made and printed; to retry a command safely,
repeat it with the printed key= (and valid_from= valid_until= when they were defaulted,
since a retry must carry the same content). --json prints the response.
)";

absl::StatusOr<std::string> ReadPassword(const Arguments& args) {
  if (args.Has("password")) {
    return absl::InvalidArgumentError(
        "password=: passwords are never taken on the command line; use password_file=FILE or "
        "password_file=- (stdin)");
  }
  if (!args.Has("password_file")) {
    return absl::InvalidArgumentError("password_file=FILE (or - for stdin) is required");
  }
  MR_ASSIGN_OR_RETURN(const std::string text, ReadText(args.Get("password_file")));
  absl::string_view password = text;
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

absl::StatusOr<Validity> ValidityFromArgs(const Arguments& args) {
  Validity validity;
  bool defaulted = false;
  if (args.Has("valid_from")) {
    MR_ASSIGN_OR_RETURN(validity.from, ParseTime("valid_from", args.Get("valid_from")));
  } else {
    validity.from = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 60 * 60);
    defaulted = true;
  }
  if (args.Has("valid_until")) {
    MR_ASSIGN_OR_RETURN(validity.until, ParseTime("valid_until", args.Get("valid_until")));
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
  if (!guest->has_valid_from()) ToProto(validity.from, guest->mutable_valid_from());
  if (!guest->has_valid_until()) ToProto(validity.until, guest->mutable_valid_until());
}

// One guest from username= email= password_file= first_name= last_name= display_name=.
absl::StatusOr<pv1::Guest> GuestFromArgs(const Arguments& args, const Validity* validity) {
  pv1::Guest guest;
  guest.set_username(args.Get("username"));
  guest.set_guest_id(args.Get("guest_id"));
  guest.set_first_name(args.Get("first_name"));
  guest.set_last_name(args.Get("last_name"));
  guest.mutable_email()->set_address(args.Get("email"));
  guest.mutable_email()->set_display_name(args.Get("display_name"));
  MR_ASSIGN_OR_RETURN(*guest.mutable_password(), ReadPassword(args));
  if (validity != nullptr) FillValidity(*validity, &guest);
  return guest;
}

pv1::Sponsor SponsorFromArgs(const Arguments& args) {
  pv1::Sponsor sponsor;
  sponsor.set_username(args.Get("sponsor"));
  sponsor.mutable_email()->set_address(args.Get("sponsor_email"));
  return sponsor;
}

std::string KeyOf(const Arguments& args) {
  if (args.Has("key")) return args.Get("key");
  absl::BitGen bits;
  return absl::StrFormat("cli-%016x%016x", absl::Uniform<uint64_t>(bits),
                         absl::Uniform<uint64_t>(bits));
}

std::string Short(const std::string& enum_name, absl::string_view prefix) {
  return WithoutPrefix(enum_name, prefix);
}

void PrintQueued(const cv1::QueuedNotification& q) {
  std::vector<std::string> to;
  for (const cv1::EmailAddress& address : q.recipients()) to.push_back(address.address());
  std::cout << "queued " << q.notification_id() << "  "
            << Short(cv1::NotificationKind_Name(q.kind()), "NOTIFICATION_KIND_") << "  to "
            << absl::StrJoin(to, ", ") << "  Message-ID <" << q.message_id() << ">\n";
}

// What a portal call queued, and how to retry it safely.
struct SendResult {
  std::vector<cv1::QueuedNotification> queued;
  bool duplicate = false;
};

template <typename Response>
SendResult ResultOf(const Response& response) {
  SendResult result;
  if constexpr (std::is_same_v<Response, pv1::ResendResponse> ||
                std::is_same_v<Response, pv1::NotifySponsorCreatedAccountsResponse>) {
    result.queued.assign(response.notifications().begin(), response.notifications().end());
  } else {
    result.queued.push_back(response.notification());
  }
  result.duplicate = response.duplicate();
  return result;
}

// The end of a portal call on `target`: the response as JSON, or what was queued and the
// command's key= (and `retry_options`) for a safe retry.
template <typename Request, typename Response>
int SendAndReport(const Admin& admin, const Target& target,
                  UnaryMethod<PsnStub, Request, Response> method, const Request& request,
                  const std::string& retry_options = "") {
  return Report(Call(admin, target, method, request), [&](const Response& response) {
    const SendResult result = ResultOf(response);
    for (const cv1::QueuedNotification& q : result.queued) PrintQueued(q);
    if (result.duplicate) {
      std::cout << "(a repeated request: nothing new was queued; these are the original ids)\n";
    }
    const std::string& key = request.idempotency_key();
    std::cout << "on " << target.name << ", idempotency key " << key
              << " (to retry safely, repeat the command with key=" << key << retry_options
              << ")\n";
  });
}

void PrintNotification(const cv1::Notification& n) {
  std::cout << n.id() << "  " << Short(cv1::NotificationState_Name(n.state()),
                                       "NOTIFICATION_STATE_")
            << "  " << Short(cv1::NotificationKind_Name(n.kind()), "NOTIFICATION_KIND_")
            << "  attempts " << n.attempts() << "  created " << PsnTime(n.create_time()) << "\n";
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
    std::cout << "    sent " << PsnTime(n.send_time()) << "\n";
  } else if (n.state() == cv1::NOTIFICATION_STATE_QUEUED && n.has_next_attempt_time()) {
    std::cout << "    next attempt " << PsnTime(n.next_attempt_time()) << "\n";
  }
  if (n.last_reply_code() != 0) std::cout << "    last reply: " << n.last_reply_text() << "\n";
  if (n.has_diagnosis()) {
    std::cout << "    " << n.diagnosis().title() << "\n    fix: " << n.diagnosis().fix() << "\n";
  }
}

int Register(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, false);
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
  return SendAndReport(admin, (*targets)[0], &PsnStub::NotifySelfRegistration, request,
                       validity->retry_options);
}

// The guests of create / resend: guests_file=F, or one guest from the options.
absl::StatusOr<std::vector<pv1::Guest>> SponsorGuests(const Arguments& args,
                                                       const Validity& validity) {
  std::vector<pv1::Guest> guests;
  if (args.Has("guests_file")) {
    pv1::ResendRequest file;
    MR_RETURN_IF_ERROR(LoadTextConfigFile(args.Get("guests_file"), &file));
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
  MR_ASSIGN_OR_RETURN(pv1::Guest guest, GuestFromArgs(args, &validity));
  guests.push_back(std::move(guest));
  return guests;
}

// create and resend: the same request fields on two messages.
template <typename Request, typename Response>
int SponsorSend(const Admin& admin, const Arguments& args,
                UnaryMethod<PsnStub, Request, Response> method) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  absl::StatusOr<Validity> validity = ValidityFromArgs(args);
  if (!validity.ok()) return Fail(validity.status());
  absl::StatusOr<std::vector<pv1::Guest>> guests = SponsorGuests(args, *validity);
  if (!guests.ok()) return Fail(guests.status());
  Request request;
  for (pv1::Guest& guest : *guests) *request.add_guests() = std::move(guest);
  *request.mutable_sponsor() = SponsorFromArgs(args);
  request.set_portal_id(args.Get("portal"));
  request.set_language(args.Get("language"));
  if constexpr (std::is_same_v<Request, pv1::ResendRequest>) {
    request.set_delivery(pv1::DELIVERY_METHOD_EMAIL);
  }
  request.set_copy_me(args.Has("copy_me"));
  request.set_send_summary(args.Has("summary"));
  request.set_idempotency_key(KeyOf(args));
  return SendAndReport(admin, (*targets)[0], method, request, validity->retry_options);
}

int Create(const Admin& admin, const Arguments& args) {
  return SponsorSend(admin, args, &PsnStub::NotifySponsorCreatedAccounts);
}

int Resend(const Admin& admin, const Arguments& args) {
  return SponsorSend(admin, args, &PsnStub::Resend);
}

int ResetPassword(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::SendPasswordResetRequest request;
  absl::StatusOr<pv1::Guest> guest = GuestFromArgs(args, nullptr);
  if (!guest.ok()) return Fail(guest.status());
  *request.mutable_guest() = *std::move(guest);
  if (args.Has("sponsor") || args.Has("sponsor_email")) {
    *request.mutable_sponsor() = SponsorFromArgs(args);
  }
  request.set_portal_id(args.Get("portal"));
  request.set_language(args.Get("language"));
  request.set_copy_me(args.Has("copy_me"));
  request.set_idempotency_key(KeyOf(args));
  return SendAndReport(admin, (*targets)[0], &PsnStub::SendPasswordReset, request);
}

int TestEmail(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::SendTestEmailRequest request;
  request.set_portal_id(args.Get("portal"));
  request.set_language(args.Get("language"));
  request.mutable_to()->set_address(args.Get("to"));
  if (args.Has("kind")) {
    absl::StatusOr<pv1::TemplateKind> kind = ParseTemplateKind(args.Get("kind"));
    if (!kind.ok()) return Fail(kind.status());
    request.set_kind(*kind);
  }
  request.set_idempotency_key(KeyOf(args));
  return SendAndReport(admin, (*targets)[0], &PsnStub::SendTestEmail, request);
}

int Status(const Admin& admin, const Arguments& args) {
  pv1::GetNotificationStatusRequest request;
  if (args.Has("key")) {
    request.set_idempotency_key(args.Get("key"));
  } else if (args.positional().size() == 1) {
    request.set_notification_id(args.positional()[0]);
  } else {
    std::cerr << kUsage;
    return kExitUsage;
  }
  // A notification id names its node ("psn2/01J..."): ask that PSN unless psn= says otherwise.
  const std::string& id = request.notification_id();
  absl::StatusOr<std::vector<Target>> targets =
      ChoosePsns(admin, args, false, id.empty() ? "" : id.substr(0, id.find('/')));
  if (!targets.ok()) return Fail(targets.status());
  return Report(Call(admin, (*targets)[0], &PsnStub::GetNotificationStatus, request),
                [](const pv1::GetNotificationStatusResponse& response) {
                  for (const cv1::Notification& n : response.notifications()) {
                    PrintNotification(n);
                  }
                });
}

absl::StatusOr<cv1::NotificationKind> ParseNotificationKind(absl::string_view kind) {
  static const auto* const kShort = new std::map<std::string, cv1::NotificationKind>{
      {"SELF_REGISTRATION", cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION},
      {"GUEST_CREDENTIALS", cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS},
      {"RESEND", cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS_RESEND},
      {"SPONSOR_SUMMARY", cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY},
      {"PASSWORD_RESET", cv1::NOTIFICATION_KIND_PASSWORD_RESET},
      {"TEST_EMAIL", cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL}};
  const std::string upper = EnumConstant(kind, "");
  cv1::NotificationKind value;
  if (auto it = kShort->find(upper); it != kShort->end()) return it->second;
  if (cv1::NotificationKind_Parse(upper, &value)) return value;
  return absl::InvalidArgumentError(absl::StrCat(
      "kind=", kind, ": expected self_registration, guest_credentials, resend, "
                     "sponsor_summary, password_reset or test_email"));
}

absl::Status ApplyListOptions(const Arguments& args, pv1::ListNotificationsRequest* request) {
  for (absl::string_view state : absl::StrSplit(args.Get("state"), ',', absl::SkipEmpty())) {
    cv1::NotificationState value;
    if (!cv1::NotificationState_Parse(
            absl::StrCat("NOTIFICATION_STATE_", absl::AsciiStrToUpper(state)), &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("state=", state, ": expected queued, sending, sent or failed"));
    }
    request->add_states(value);
  }
  for (absl::string_view kind : absl::StrSplit(args.Get("kind"), ',', absl::SkipEmpty())) {
    MR_ASSIGN_OR_RETURN(const cv1::NotificationKind value, ParseNotificationKind(kind));
    request->add_kinds(value);
  }
  request->set_recipient(args.Get("recipient"));
  int limit = 50;
  if (args.Has("limit") && !absl::SimpleAtoi(args.Get("limit"), &limit)) {
    return absl::InvalidArgumentError("limit=: expected a number");
  }
  request->mutable_page()->set_page_size(limit);
  return absl::OkStatus();
}

int List(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, false);
  if (!targets.ok()) return Fail(targets.status());
  pv1::ListNotificationsRequest request;
  if (absl::Status s = ApplyListOptions(args, &request); !s.ok()) return Fail(s);
  const Target& target = (*targets)[0];
  return Report(Call(admin, target, &PsnStub::ListNotifications, request),
                [&target](const pv1::ListNotificationsResponse& response) {
                  std::cout << target.name << ": " << response.notifications_size() << " shown";
                  if (!response.page().next_page_token().empty()) {
                    std::cout << " (more: raise limit=)";
                  }
                  std::cout << "\n";
                  for (const cv1::Notification& n : response.notifications()) {
                    PrintNotification(n);
                  }
                });
}

}  // namespace

const CommandGroup& GuestCommands() {
  static const CommandGroup* const group = [] {
    // The options of one guest given on the command line, added to a command's own.
    auto with_guest = [](std::vector<std::string> options) {
      for (const char* name : {"username", "email", "password_file", "password", "first_name",
                               "last_name", "display_name", "guest_id"}) {
        options.push_back(name);
      }
      return options;
    };
    const ArgumentSpec sponsor_send = {
        with_guest({"psn", "portal", "sponsor", "sponsor_email", "guests_file", "valid_hours",
                    "valid_until", "valid_from", "language", "key"}),
        {"copy_me", "summary"}};
    return new CommandGroup{
        {"guest"},
        kUsage,
        {
            {"guest register",
             {with_guest({"psn", "portal", "valid_hours", "valid_until", "valid_from",
                          "language", "key"})},
             Register},
            {"guest create", sponsor_send, Create},
            {"guest resend", sponsor_send, Resend},
            {"guest reset-password",
             {with_guest({"psn", "portal", "sponsor", "sponsor_email", "language", "key"}),
              {"copy_me"}},
             ResetPassword},
            {"guest test-email", {{"psn", "portal", "to", "kind", "language", "key"}},
             TestEmail},
            {"guest status", {{"psn", "key"}, {}, {"NOTIFICATION_ID"}}, Status},
            {"guest list", {{"psn", "state", "kind", "recipient", "limit"}}, List},
        }};
  }();
  return *group;
}

}  // namespace mailroom::cli
