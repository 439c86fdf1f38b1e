#include "pan/reminder_mail.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/utf8.h"
#include "common/mail/mime_message.h"
#include "pan/reminder_plan.h"

namespace mailroom::pan {
namespace {

namespace cv1 = ::mailroom::common::v1;

bool IsCjk(uint32_t cp) {
  return (cp >= 0x1100 && cp <= 0x11FF) ||  // Hangul Jamo
         (cp >= 0x2E80 && cp <= 0x2FDF) ||  // CJK radicals
         (cp >= 0x3040 && cp <= 0x30FF) ||  // Hiragana, Katakana
         (cp >= 0x3400 && cp <= 0x4DBF) ||  // CJK Extension A
         (cp >= 0x4E00 && cp <= 0x9FFF) ||  // CJK Unified Ideographs
         (cp >= 0xAC00 && cp <= 0xD7AF) ||  // Hangul syllables
         (cp >= 0xF900 && cp <= 0xFAFF) ||  // CJK compatibility ideographs
         (cp >= 0x20000 && cp <= 0x3FFFF);  // CJK Extensions B..
}

// True when `text` is non-empty and every character is CJK (ignoring the middle dot and
// spaces some names carry).
bool AllCjk(absl::string_view text) {
  bool any = false;
  for (size_t i = 0; i < text.size();) {
    const uint32_t cp = NextCodePoint(text, &i);
    if (cp == ' ' || cp == 0x00B7 || cp == 0x30FB) continue;
    if (!IsCjk(cp)) return false;
    any = true;
  }
  return any;
}

struct Person {
  std::string username;
  std::string first_name;
  std::string last_name;
  cv1::EmailAddress email;
  std::string portal;
};

Person PersonOf(const v1::Account& account) {
  Person p;
  if (account.has_guest()) {
    const v1::GuestAccount& g = account.guest();
    p = {g.username(), g.first_name(), g.last_name(), g.email(), g.portal_id()};
  } else {
    const v1::UserAccount& u = account.user();
    p = {u.username(), u.first_name(), u.last_name(), u.email(), ""};
  }
  return p;
}

}  // namespace

std::string PersonDisplayName(absl::string_view first_name, absl::string_view last_name) {
  if (first_name.empty()) return std::string(last_name);
  if (last_name.empty()) return std::string(first_name);
  if (AllCjk(first_name) && AllCjk(last_name)) return absl::StrCat(last_name, first_name);
  return absl::StrCat(first_name, " ", last_name);
}

TemplateValues ReminderValues(const v1::PlannedReminder& reminder, const v1::Account& account,
                              const v1::ReminderSettings& settings, absl::Time now) {
  const Person p = PersonOf(account);
  const absl::Time expire = ToTime(reminder.expire_time());
  const absl::Duration left = expire - now;
  int64_t days_left = 0;
  if (left > absl::ZeroDuration()) {
    days_left = absl::ToInt64Hours(left) / 24;
    if (left > absl::Hours(24 * days_left)) ++days_left;
  }
  std::string name = PersonDisplayName(p.first_name, p.last_name);
  if (name.empty()) name = p.email.display_name().empty() ? p.username : p.email.display_name();
  TemplateValues values;
  values.text = {
      {"username", p.username},
      {"first_name", p.first_name},
      {"last_name", p.last_name},
      {"email", p.email.address()},
      {"expire_time", FormatTemplateTime(expire, settings.time_zone())},
      {"days_left", absl::StrCat(days_left)},
      {"name", name},
  };
  if (account.has_guest()) values.text["portal"] = p.portal;
  return values;
}

absl::StatusOr<NewNotification> BuildReminderNotification(const v1::PlannedReminder& reminder,
                                                          const v1::Account& account,
                                                          const v1::ReminderSettings& settings,
                                                          absl::Time now,
                                                          const std::string& message_id,
                                                          const ReminderMailOptions& options) {
  const bool guest = reminder.kind() == v1::REMINDER_KIND_GUEST_EXPIRY;
  const Person p = PersonOf(account);
  MailContent content;
  if (!settings.from().address().empty()) {
    content.from = {settings.from().address(), settings.from().display_name()};
  } else if (!options.default_from.empty()) {
    content.from = {options.default_from, ""};
  } else {
    return absl::FailedPreconditionError(
        "no From address: the reminder settings name none and the broker has not told the "
        "sending mailbox yet");
  }
  const std::string display_name = p.email.display_name().empty()
                                       ? PersonDisplayName(p.first_name, p.last_name)
                                       : p.email.display_name();
  content.to.push_back({p.email.address(), display_name});

  const v1::ReminderTemplate& tmpl =
      guest ? (settings.has_guest_expiry_template() ? settings.guest_expiry_template()
                                                    : BuiltInTemplate(reminder.kind()))
            : (settings.has_password_expiry_template() ? settings.password_expiry_template()
                                                       : BuiltInTemplate(reminder.kind()));
  absl::StatusOr<RenderedMail> rendered = RenderReminderTemplate(
      tmpl, reminder.kind(), ReminderValues(reminder, account, settings, now));
  if (!rendered.ok()) return rendered.status();
  content.subject = std::move(rendered->subject);
  content.text_body = std::move(rendered->text_body);
  content.html_body = std::move(rendered->html_body);
  content.message_id = message_id;
  content.date = now;
  // RFC 3834: an automatic message; well-behaved responders do not answer it.
  content.extra_headers = {{"Auto-Submitted", "auto-generated"},
                           {"X-Mailroom-Reminder", reminder.id()}};
  MimeOptions mime;
  mime.max_bytes = options.max_message_bytes;
  absl::StatusOr<std::string> message = BuildMimeMessage(content, mime);
  if (!message.ok()) return message.status();

  NewNotification n;
  n.idempotency_key = ReminderIdempotencyKey(reminder.id());
  n.request_fingerprint = ReminderFingerprint(reminder);
  n.kind = guest ? cv1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING
                 : cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER;
  n.from.set_address(content.from.address);
  n.from.set_display_name(content.from.display_name);
  Recipient to;
  to.mutable_address()->set_address(content.to[0].address);
  to.mutable_address()->set_display_name(content.to[0].display_name);
  to.set_type(cv1::RECIPIENT_TYPE_TO);
  n.recipients = {to};
  n.subject = content.subject;
  n.message_id = message_id;
  n.message = *std::move(message);
  return n;
}

}  // namespace mailroom::pan
