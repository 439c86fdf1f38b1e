#include "psn/psn_notifier.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/types/optional.h"
#include "common/base/proto_time.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/base/text_checks.h"
#include "common/base/utf8.h"
#include "common/rpc/status_grpc.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "psn/builtin_templates.h"
#include "psn/proto_file.h"
#include "psn/request_validation.h"
#include "psn/template_text.h"

namespace mailroom::psn {

namespace cv1 = ::mailroom::common::v1;

// One mail a request causes, before its template is resolved and rendered.
struct PsnNotifier::Draft {
  // A draft of `kind` from `template_kind` for the request's portal and language, to `to`,
  // blamed on `field`, with the portal among its values.
  template <typename Request>
  Draft(const Request& request, cv1::NotificationKind kind, TemplateKind template_kind,
        std::string field, cv1::EmailAddress to);
  // The guest's values and validity (its dates are formatted with the chosen template).
  void AddGuest(const v1::Guest& guest);
  void AddSponsor(const v1::Sponsor& sponsor);

  cv1::NotificationKind kind = cv1::NOTIFICATION_KIND_UNSPECIFIED;
  TemplateKind template_kind = v1::TEMPLATE_KIND_UNSPECIFIED;
  std::string portal_id;
  std::string language;
  // The request path blamed when the rendered message is refused (e.g. too large).
  std::string field;
  cv1::EmailAddress to;
  absl::optional<cv1::EmailAddress> cc;
  // Every value but the dates, which depend on the chosen template's time zone.
  TemplateValues values;
  absl::optional<absl::Time> valid_from;
  absl::optional<absl::Time> valid_until;
  // For a summary: the guests it lists.
  std::vector<const v1::Guest*> summary_guests;
};

namespace {

constexpr char kKeySeparator = '#';
// Notifications of one request: every guest's, then the summary.
constexpr size_t kMaxNotificationsPerRequest = kMaxGuestsPerRequest + 1;

absl::optional<absl::Time> OptionalTime(bool present, const google::protobuf::Timestamp& t) {
  if (!present) return absl::nullopt;
  return FromProto(t);
}

std::string FullName(const v1::Guest& guest, bool chinese) {
  if (chinese) return absl::StrCat(guest.last_name(), guest.first_name());
  return std::string(absl::StripAsciiWhitespace(
      absl::StrCat(guest.first_name(), " ", guest.last_name())));
}

// The guest's address as it appears in To:, named "first_name last_name" unless the portal
// gave a display name.
cv1::EmailAddress GuestAddress(const v1::Guest& guest) {
  cv1::EmailAddress address = guest.email();
  if (address.display_name().empty()) address.set_display_name(FullName(guest, false));
  return address;
}

std::string SponsorName(const v1::Sponsor& sponsor) {
  return sponsor.email().display_name().empty() ? sponsor.username()
                                                : sponsor.email().display_name();
}

cv1::EmailAddress SponsorAddress(const v1::Sponsor& sponsor) {
  cv1::EmailAddress address = sponsor.email();
  if (address.display_name().empty()) address.set_display_name(sponsor.username());
  return address;
}

void AddGuestValues(const v1::Guest& guest, TemplateValues* values) {
  values->text["username"] = guest.username();
  values->text["password"] = guest.password();
  values->text["first_name"] = guest.first_name();
  values->text["last_name"] = guest.last_name();
  values->text["email"] = guest.email().address();
}

void AddSponsorValues(const v1::Sponsor& sponsor, TemplateValues* values) {
  values->text["sponsor"] = SponsorName(sponsor);
  values->text["sponsor_email"] = sponsor.email().address();
}

std::string FormatOptional(const google::protobuf::Timestamp& t, bool present,
                           absl::string_view time_zone) {
  return present ? FormatTemplateTime(FromProto(t), time_zone) : "";
}

std::string Pad(const std::string& text, size_t width) {
  const size_t length = Utf8Length(text);
  return length >= width ? text : text + std::string(width - length, ' ');
}

std::vector<std::string> TableHeadings(bool chinese) {
  if (chinese) return {"使用者名稱", "密碼", "姓名", "電子郵件", "生效時間", "到期時間"};
  return {"Username", "Password", "Name", "Email", "Valid from", "Valid until"};
}

std::vector<std::vector<std::string>> TableRows(const std::vector<const v1::Guest*>& guests,
                                                absl::string_view time_zone, bool chinese) {
  std::vector<std::vector<std::string>> rows;
  for (const v1::Guest* guest : guests) {
    rows.push_back({guest->username(), guest->password(), FullName(*guest, chinese),
                    guest->email().address(),
                    FormatOptional(guest->valid_from(), guest->has_valid_from(), time_zone),
                    FormatOptional(guest->valid_until(), guest->has_valid_until(), time_zone)});
  }
  return rows;
}

// The {{guests}} list of a summary as a text table. Widths count characters, so columns of
// wide (e.g. Chinese) characters may not line up in every font; the content stays intact.
std::string TextTable(const std::vector<const v1::Guest*>& guests, absl::string_view time_zone,
                      bool chinese) {
  const std::vector<std::string> headings = TableHeadings(chinese);
  const std::vector<std::vector<std::string>> rows = TableRows(guests, time_zone, chinese);
  std::vector<size_t> widths;
  for (const std::string& heading : headings) widths.push_back(Utf8Length(heading));
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], Utf8Length(row[c]));
  }
  auto line = [&widths](const std::vector<std::string>& cells) {
    std::vector<std::string> padded;
    for (size_t c = 0; c < cells.size(); ++c) {
      padded.push_back(c + 1 == cells.size() ? cells[c] : Pad(cells[c], widths[c]));
    }
    return absl::StrCat(absl::StripTrailingAsciiWhitespace(absl::StrJoin(padded, " | ")), "\n");
  };
  std::string out = line(headings);
  std::vector<std::string> rule;
  for (size_t width : widths) rule.push_back(std::string(width, '-'));
  absl::StrAppend(&out, absl::StrJoin(rule, "-+-"), "\n");
  for (const auto& row : rows) absl::StrAppend(&out, line(row));
  return std::string(absl::StripTrailingAsciiWhitespace(out));
}

// The {{guests}} list as an HTML table; every cell is escaped.
std::string HtmlTable(const std::vector<const v1::Guest*>& guests, absl::string_view time_zone,
                      bool chinese) {
  std::string out = "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<tr>";
  for (const std::string& heading : TableHeadings(chinese)) {
    absl::StrAppend(&out, "<th>", HtmlEscape(heading), "</th>");
  }
  out += "</tr>\n";
  for (const auto& row : TableRows(guests, time_zone, chinese)) {
    out += "<tr>";
    for (const std::string& cell : row) absl::StrAppend(&out, "<td>", HtmlEscape(cell), "</td>");
    out += "</tr>\n";
  }
  out += "</table>";
  return out;
}

MailAddress ToMail(const cv1::EmailAddress& address) {
  return MailAddress{address.address(), address.display_name()};
}

cv1::Recipient MakeRecipient(const cv1::EmailAddress& address, cv1::RecipientType type) {
  cv1::Recipient recipient;
  *recipient.mutable_address() = address;
  recipient.set_type(type);
  return recipient;
}

// The request's bytes without its idempotency key, after the RPC's name: the same key sent
// to another RPC is other content.
std::string Fingerprint(absl::string_view method, const google::protobuf::Message& request) {
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  const google::protobuf::FieldDescriptor* key =
      copy->GetDescriptor()->FindFieldByName("idempotency_key");
  if (key != nullptr) copy->GetReflection()->ClearField(copy.get(), key);
  return absl::StrCat(method, "\n", DeterministicBytes(*copy));
}

// The status view shows the caller's key, not the per-notification outbox key "K#i".
cv1::Notification ForCaller(cv1::Notification n) {
  const size_t hash = n.idempotency_key().rfind(kKeySeparator);
  if (hash != std::string::npos) n.mutable_idempotency_key()->resize(hash);
  return n;
}

absl::Status Disabled() {
  return WithReason(absl::FailedPreconditionError(
                        "guest email notifications are disabled in the Guest Email Settings; "
                        "nothing was queued"),
                    "NOTIFICATIONS_DISABLED");
}

// Puts what was queued into a response that has one notification...
template <typename Response>
auto PutQueued(std::vector<cv1::QueuedNotification> queued, Response* response)
    -> decltype(response->mutable_notification(), void()) {
  *response->mutable_notification() = std::move(queued.front());
}

// ... or into one that has several.
template <typename Response>
auto PutQueued(std::vector<cv1::QueuedNotification> queued, Response* response)
    -> decltype(response->add_notifications(), void()) {
  for (cv1::QueuedNotification& q : queued) *response->add_notifications() = std::move(q);
}

}  // namespace

template <typename Request>
PsnNotifier::Draft::Draft(const Request& request, cv1::NotificationKind kind,
                          TemplateKind template_kind, std::string field, cv1::EmailAddress to)
    : kind(kind),
      template_kind(template_kind),
      portal_id(request.portal_id()),
      language(request.language()),
      field(std::move(field)),
      to(std::move(to)) {
  values.text["portal"] = request.portal_id();
}

void PsnNotifier::Draft::AddGuest(const v1::Guest& guest) {
  AddGuestValues(guest, &values);
  valid_from = OptionalTime(guest.has_valid_from(), guest.valid_from());
  valid_until = OptionalTime(guest.has_valid_until(), guest.valid_until());
}

void PsnNotifier::Draft::AddSponsor(const v1::Sponsor& sponsor) {
  AddSponsorValues(sponsor, &values);
}

PsnNotifier::PsnNotifier(Outbox* outbox, GuestEmailSettingsStore* settings,
                         TemplateStore* templates, const Clock* clock, NotifierOptions options)
    : outbox_(outbox),
      settings_(settings),
      templates_(templates),
      clock_(clock),
      options_(std::move(options)) {}

std::string PsnNotifier::NotificationKey(absl::string_view key, size_t index) {
  // The suffix after the last '#' is all digits, so distinct (key, index) pairs never meet.
  return absl::StrCat(key, std::string(1, kKeySeparator), index);
}

absl::StatusOr<cv1::EmailAddress> PsnNotifier::EnabledFrom() {
  const GuestEmailSettings settings = settings_->Get();
  if (!settings.notifications_enabled()) return Disabled();
  return settings.default_from();
}

absl::StatusOr<NewNotification> PsnNotifier::Render(const Draft& draft,
                                                    const cv1::EmailAddress& from,
                                                    absl::Time now) {
  const Template t = templates_->Resolve(draft.portal_id, draft.language, draft.template_kind);
  TemplateValues values = draft.values;
  if (draft.valid_from.has_value()) {
    values.text["valid_from"] = FormatTemplateTime(*draft.valid_from, t.time_zone());
  }
  if (draft.valid_until.has_value()) {
    values.text["valid_until"] = FormatTemplateTime(*draft.valid_until, t.time_zone());
  }
  if (draft.template_kind == v1::TEMPLATE_KIND_SPONSOR_SUMMARY) {
    const bool chinese = IsChineseLanguage(t.language().empty() ? draft.language : t.language());
    values.text["guest_count"] = absl::StrCat(draft.summary_guests.size());
    values.text["guests"] = TextTable(draft.summary_guests, t.time_zone(), chinese);
    values.html_markup["guests"] = HtmlTable(draft.summary_guests, t.time_zone(), chinese);
  }
  absl::StatusOr<RenderedTemplate> rendered = RenderTemplate(t, values);
  if (!rendered.ok()) {
    return absl::Status(rendered.status().code(),
                        absl::StrCat(draft.field, ": ", rendered.status().message()));
  }
  // The message's shape only: the bodies carry guests' credentials.
  MR_LOG(kDebug, kLogPsn) << "rendered template " << v1::TemplateKind_Name(draft.template_kind)
                          << " of portal \"" << draft.portal_id << "\" language \""
                          << (t.language().empty() ? draft.language : t.language())
                          << "\": subject of " << rendered->subject.size() << " bytes, text body "
                          << rendered->text_body.size() << " bytes, HTML body "
                          << rendered->html_body.size() << " bytes";
  MailContent content;
  content.from = ToMail(from);
  content.to.push_back(ToMail(draft.to));
  if (draft.cc.has_value()) content.cc.push_back(ToMail(*draft.cc));
  content.subject = rendered->subject;
  content.text_body = std::move(rendered->text_body);
  content.html_body = std::move(rendered->html_body);
  content.message_id = outbox_->NewMessageId();
  content.date = now;
  content.extra_headers = {{"Auto-Submitted", "auto-generated"}};
  MimeOptions mime;
  mime.max_bytes = options_.max_message_bytes;
  absl::StatusOr<std::string> message = BuildMimeMessage(content, mime);
  if (!message.ok()) {
    return absl::Status(message.status().code(),
                        absl::StrCat(draft.field, ": the rendered message is refused: ",
                                     message.status().message()));
  }
  NewNotification notification;
  notification.kind = draft.kind;
  notification.from = from;
  notification.recipients.push_back(MakeRecipient(draft.to, cv1::RECIPIENT_TYPE_TO));
  if (draft.cc.has_value()) {
    notification.recipients.push_back(MakeRecipient(*draft.cc, cv1::RECIPIENT_TYPE_CC));
  }
  notification.subject = content.subject;
  notification.message_id = content.message_id;
  notification.message = *std::move(message);
  return notification;
}

absl::StatusOr<std::vector<cv1::QueuedNotification>> PsnNotifier::Queue(
    absl::string_view method, const google::protobuf::Message& request,
    absl::string_view idempotency_key, const std::vector<Draft>& drafts, bool* duplicate) {
  if (drafts.empty() || drafts.size() > kMaxNotificationsPerRequest) {
    return absl::InternalError(absl::StrCat(method, ": ", drafts.size(), " notifications"));
  }
  absl::StatusOr<cv1::EmailAddress> from = settings_->Get().default_from();
  if (drafts[0].kind == cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL) {
    // "Send Test Email" works while notifications are off, so it may have to fall back to
    // the broker's mailbox.
    if (from->address().empty() && options_.sending_mailbox) {
      from->set_address(options_.sending_mailbox());
    }
    if (from->address().empty()) {
      return absl::FailedPreconditionError(
          "no From address: set default_from in the Guest Email Settings (the broker's "
          "mailbox is not known yet)");
    }
  } else {
    from = EnabledFrom();
    if (!from.ok()) return from.status();
  }
  const std::string fingerprint = Fingerprint(method, request);
  const absl::Time now = clock_->Now();
  std::vector<NewNotification> notifications;
  notifications.reserve(drafts.size());
  for (size_t i = 0; i < drafts.size(); ++i) {
    absl::StatusOr<NewNotification> notification = Render(drafts[i], *from, now);
    if (!notification.ok()) return notification.status();
    notification->idempotency_key = NotificationKey(idempotency_key, i);
    notification->request_fingerprint = fingerprint;
    notifications.push_back(*std::move(notification));
  }
  absl::StatusOr<std::vector<EnqueueResult>> results = outbox_->EnqueueBatch(notifications);
  if (absl::IsAlreadyExists(results.status())) {
    return WithReason(absl::AlreadyExistsError(absl::StrCat(
                          "idempotency_key: \"", idempotency_key,
                          "\" was already used on this PSN for a request with other content; "
                          "use a new key for a new action")),
                      "IDEMPOTENCY_KEY_REUSED");
  }
  if (!results.ok()) return results.status();
  std::vector<cv1::QueuedNotification> queued;
  *duplicate = true;
  for (size_t i = 0; i < results->size(); ++i) {
    const EnqueueResult& result = (*results)[i];
    *duplicate = *duplicate && result.duplicate;
    cv1::QueuedNotification q;
    q.set_notification_id(result.notification_id);
    q.set_kind(drafts[i].kind);
    *q.add_recipients() = drafts[i].to;
    if (drafts[i].cc.has_value()) *q.add_recipients() = *drafts[i].cc;
    q.set_message_id(result.message_id);
    queued.push_back(std::move(q));
  }
  MR_LOG(kInfo, kLogPsn) << method << ": " << (*duplicate ? "repeated request, " : "queued ")
                         << queued.size() << " notification(s) starting with "
                         << queued.front().notification_id() << " for portal \""
                         << drafts[0].portal_id << "\"";
  return queued;
}

template <typename Response, typename Request>
absl::StatusOr<Response> PsnNotifier::QueueAndAnswer(absl::string_view method,
                                                     const Request& request,
                                                     const std::vector<Draft>& drafts) {
  bool duplicate = false;
  MR_ASSIGN_OR_RETURN(std::vector<cv1::QueuedNotification> queued,
                      Queue(method, request, request.idempotency_key(), drafts, &duplicate));
  Response response;
  PutQueued(std::move(queued), &response);
  response.set_duplicate(duplicate);
  return response;
}

absl::StatusOr<v1::NotifySelfRegistrationResponse> PsnNotifier::NotifySelfRegistration(
    const v1::NotifySelfRegistrationRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  Draft draft(request, cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION,
              v1::TEMPLATE_KIND_SELF_REGISTRATION, "guest", GuestAddress(request.guest()));
  draft.AddGuest(request.guest());
  return QueueAndAnswer<v1::NotifySelfRegistrationResponse>("NotifySelfRegistration", request, {draft});
}

// Each guest with an address gets their credentials (the sponsor in Cc with copy_me), then
// the sponsor gets the summary if asked.
template <typename Request>
std::vector<PsnNotifier::Draft> PsnNotifier::SponsorDrafts(const Request& request,
                                                           cv1::NotificationKind guest_kind) {
  std::vector<PsnNotifier::Draft> drafts;
  for (int i = 0; i < request.guests_size(); ++i) {
    const v1::Guest& guest = request.guests(i);
    if (guest.email().address().empty()) continue;  // summary only (validated)
    PsnNotifier::Draft draft(request, guest_kind, v1::TEMPLATE_KIND_GUEST_CREDENTIALS,
                             absl::StrCat("guests[", i, "]"), GuestAddress(guest));
    if (request.copy_me()) draft.cc = SponsorAddress(request.sponsor());
    draft.AddGuest(guest);
    draft.AddSponsor(request.sponsor());
    drafts.push_back(std::move(draft));
  }
  if (request.send_summary()) {
    PsnNotifier::Draft draft(request, cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY,
                             v1::TEMPLATE_KIND_SPONSOR_SUMMARY, "sponsor",
                             SponsorAddress(request.sponsor()));
    draft.AddSponsor(request.sponsor());
    for (const v1::Guest& guest : request.guests()) draft.summary_guests.push_back(&guest);
    drafts.push_back(std::move(draft));
  }
  return drafts;
}

absl::StatusOr<v1::NotifySponsorCreatedAccountsResponse> PsnNotifier::NotifySponsorCreatedAccounts(
    const v1::NotifySponsorCreatedAccountsRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  return QueueAndAnswer<v1::NotifySponsorCreatedAccountsResponse>(
      "NotifySponsorCreatedAccounts", request, SponsorDrafts(request, cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS));
}

absl::StatusOr<v1::ResendResponse> PsnNotifier::Resend(const v1::ResendRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  return QueueAndAnswer<v1::ResendResponse>(
      "Resend", request, SponsorDrafts(request, cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS_RESEND));
}

absl::StatusOr<v1::SendPasswordResetResponse> PsnNotifier::SendPasswordReset(
    const v1::SendPasswordResetRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  Draft draft(request, cv1::NOTIFICATION_KIND_PASSWORD_RESET, v1::TEMPLATE_KIND_PASSWORD_RESET,
              "guest", GuestAddress(request.guest()));
  if (request.copy_me()) draft.cc = SponsorAddress(request.sponsor());
  draft.AddGuest(request.guest());
  draft.AddSponsor(request.sponsor());
  return QueueAndAnswer<v1::SendPasswordResetResponse>("SendPasswordReset", request, {draft});
}

absl::StatusOr<v1::SendTestEmailResponse> PsnNotifier::SendTestEmail(
    const v1::SendTestEmailRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  const TemplateKind kind = request.kind() == v1::TEMPLATE_KIND_UNSPECIFIED
                                ? v1::TEMPLATE_KIND_SELF_REGISTRATION
                                : request.kind();
  // The sample values the proto documents.
  const absl::Time now = clock_->Now();
  v1::Guest sample;
  sample.set_username("testuser");
  sample.set_password("********");
  sample.set_first_name("Test");
  sample.set_last_name("Guest");
  *sample.mutable_email() = request.to();
  sample.mutable_valid_from()->set_seconds(absl::ToUnixSeconds(now));
  sample.mutable_valid_until()->set_seconds(absl::ToUnixSeconds(now + absl::Hours(24)));
  v1::Sponsor sponsor;
  sponsor.set_username("sponsor");
  Draft draft(request, cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL, kind, "to", request.to());
  draft.AddGuest(sample);  // valid_from and valid_until are set
  draft.AddSponsor(sponsor);
  if (kind == v1::TEMPLATE_KIND_SPONSOR_SUMMARY) draft.summary_guests = {&sample};
  return QueueAndAnswer<v1::SendTestEmailResponse>("SendTestEmail", request, {draft});
}

absl::StatusOr<v1::GetNotificationStatusResponse> PsnNotifier::GetNotificationStatus(
    const v1::GetNotificationStatusRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  v1::GetNotificationStatusResponse response;
  if (!request.notification_id().empty()) {
    absl::StatusOr<cv1::OutboxEntry> entry = outbox_->Get(request.notification_id());
    if (absl::IsNotFound(entry.status())) {
      return absl::NotFoundError(absl::StrCat("notification_id: \"", request.notification_id(),
                                              "\" is not known on this PSN"));
    }
    if (!entry.ok()) return entry.status();
    *response.add_notifications() = ForCaller(entry->notification());
    return response;
  }
  for (size_t i = 0; i < kMaxNotificationsPerRequest; ++i) {
    absl::StatusOr<cv1::OutboxEntry> entry =
        outbox_->GetByIdempotencyKey(NotificationKey(request.idempotency_key(), i));
    if (absl::IsNotFound(entry.status())) break;
    if (!entry.ok()) return entry.status();
    *response.add_notifications() = ForCaller(entry->notification());
  }
  if (response.notifications().empty()) {
    return absl::NotFoundError(absl::StrCat(
        "idempotency_key: no notification queued with key \"", request.idempotency_key(),
        "\" on this PSN (keys are remembered by the PSN that accepted them)"));
  }
  return response;
}

absl::StatusOr<v1::ListNotificationsResponse> PsnNotifier::ListNotifications(
    const v1::ListNotificationsRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  cv1::ListOutboxRequest list;
  *list.mutable_states() = request.states();
  bool any_kind = request.kinds().empty();
  for (int kind : request.kinds()) any_kind |= kind == cv1::NOTIFICATION_KIND_UNSPECIFIED;
  if (any_kind) {
    for (int kind = 0; kind <= cv1::NotificationKind_MAX; ++kind) {
      if (IsPsnNotificationKind(kind)) list.add_kinds(static_cast<cv1::NotificationKind>(kind));
    }
  } else {
    *list.mutable_kinds() = request.kinds();
  }
  if (request.has_create_time_after()) {
    *list.mutable_create_time_after() = request.create_time_after();
  }
  v1::ListNotificationsResponse response;
  if (request.recipient().empty()) {
    *list.mutable_page() = request.page();
    absl::StatusOr<cv1::ListOutboxResponse> page = outbox_->List(list);
    if (!page.ok()) return page.status();
    for (const cv1::OutboxEntry& entry : page->entries()) {
      *response.add_notifications() = ForCaller(entry.notification());
    }
    *response.mutable_page() = page->page();
    return response;
  }
  // The outbox cannot filter by recipient: walk its pages and keep the matches. The next
  // page token is the outbox's token after the last entry returned, with the recipient's
  // hash appended so that it is not reused with another recipient.
  const std::string recipient = absl::AsciiStrToLower(request.recipient());
  v1::ListNotificationsRequest filter;
  filter.set_recipient(recipient);
  const std::string suffix = absl::StrCat("~", ContentEtag(filter).substr(0, 8));
  std::string token;
  if (!request.page().page_token().empty()) {
    absl::string_view given = request.page().page_token();
    if (!absl::ConsumeSuffix(&given, suffix)) {
      return FieldError("page.page_token", "not a token of this listing (same filters required)");
    }
    token = std::string(given);
  }
  int page_size = request.page().page_size();
  if (page_size == 0) page_size = 50;
  page_size = std::min(page_size, 1000);
  constexpr int kChunk = 200;
  auto matches = [&recipient](const cv1::Notification& n) {
    for (const cv1::Recipient& r : n.recipients()) {
      if (absl::EqualsIgnoreCase(r.address().address(), recipient)) return true;
    }
    return false;
  };
  while (true) {
    list.mutable_page()->set_page_size(kChunk);
    list.mutable_page()->set_page_token(token);
    absl::StatusOr<cv1::ListOutboxResponse> chunk = outbox_->List(list);
    if (!chunk.ok()) return chunk.status();
    response.mutable_page()->set_total_size(chunk->page().total_size());  // an upper bound
    for (int i = 0; i < chunk->entries_size(); ++i) {
      if (!matches(chunk->entries(i).notification())) continue;
      *response.add_notifications() = ForCaller(chunk->entries(i).notification());
      if (response.notifications_size() < page_size) continue;
      // Full: the token after entry i is that of a page of i + 1 entries from `token`.
      list.mutable_page()->set_page_size(i + 1);
      absl::StatusOr<cv1::ListOutboxResponse> exact = outbox_->List(list);
      if (!exact.ok()) return exact.status();
      if (!exact->page().next_page_token().empty()) {
        response.mutable_page()->set_next_page_token(
            absl::StrCat(exact->page().next_page_token(), suffix));
      }
      return response;
    }
    if (chunk->page().next_page_token().empty()) return response;
    token = chunk->page().next_page_token();
  }
}

v1::GetGuestEmailSettingsResponse PsnNotifier::GetGuestEmailSettings() {
  v1::GetGuestEmailSettingsResponse response;
  *response.mutable_settings() = settings_->Get();
  return response;
}

absl::StatusOr<v1::SetGuestEmailSettingsResponse> PsnNotifier::SetGuestEmailSettings(
    const v1::SetGuestEmailSettingsRequest& request) {
  MR_RETURN_IF_ERROR(ValidateGuestEmailSettings(request.settings(), "settings."));
  // default_from is the From of every PSN mail: each of their purposes' routes must carry it.
  MR_RETURN_IF_ERROR(FromAddressCheck(options_.mail_routes)
                         .Check("settings.default_from",
                                request.settings().default_from().address(),
                                {cv1::MAIL_PURPOSE_GUEST_CREDENTIALS,
                                 cv1::MAIL_PURPOSE_SPONSOR_MAIL, cv1::MAIL_PURPOSE_TEST_MAIL}));
  v1::SetGuestEmailSettingsResponse response;
  MR_ASSIGN_OR_RETURN(*response.mutable_settings(),
                      settings_->Set(request.settings(), request.etag()));
  return response;
}

absl::StatusOr<v1::PutTemplateResponse> PsnNotifier::PutTemplate(
    const v1::PutTemplateRequest& request) {
  v1::PutTemplateResponse response;
  MR_ASSIGN_OR_RETURN(*response.mutable_template_(),
                      templates_->Put(request.template_(), request.validate_only()));
  return response;
}

absl::StatusOr<v1::GetTemplateResponse> PsnNotifier::GetTemplate(
    const v1::GetTemplateRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  v1::GetTemplateResponse response;
  if (request.resolve()) {
    *response.mutable_template_() =
        templates_->Resolve(request.portal_id(), request.language(), request.kind());
    return response;
  }
  MR_ASSIGN_OR_RETURN(*response.mutable_template_(),
                      templates_->Get(request.portal_id(), request.language(), request.kind()));
  return response;
}

absl::StatusOr<v1::ListTemplatesResponse> PsnNotifier::ListTemplates(
    const v1::ListTemplatesRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  return templates_->List(request);
}

absl::Status PsnNotifier::DeleteTemplate(const v1::DeleteTemplateRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  return templates_->Delete(request.portal_id(), request.language(), request.kind());
}

}  // namespace mailroom::psn
