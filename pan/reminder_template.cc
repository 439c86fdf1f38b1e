#include "pan/reminder_template.h"

#include "absl/strings/str_cat.h"

namespace mailroom::pan {
namespace {

MailTemplateText TextOf(const ReminderTemplate& t) {
  return {t.subject(), t.text_body(), t.html_body()};
}

// The admin's variables and {{name}}, which the built-ins greet with.
TemplateVocabulary RenderVariables(ReminderKind kind) {
  TemplateVocabulary vocabulary = ReminderVariables(kind);
  vocabulary.variables.push_back("name");
  return vocabulary;
}

ReminderTemplate MakeGuestTemplate() {
  ReminderTemplate t;
  t.set_subject("Your guest account expires on {{expire_time}}");
  t.set_text_body(
      "Hello {{name}},\n"
      "\n"
      "Your guest account \"{{username}}\" expires on {{expire_time}}, in {{days_left}} day(s).\n"
      "After that time you can no longer connect to the network with it.\n"
      "\n"
      "If you still need access, ask your sponsor to extend the account before it expires,\n"
      "or register again on the guest portal once it has expired.\n"
      "\n"
      "This message was sent automatically; please do not reply to it.\n");
  t.set_html_body(
      "<html><body>\n"
      "<p>Hello {{name}},</p>\n"
      "<p>Your guest account &quot;<b>{{username}}</b>&quot; expires on "
      "<b>{{expire_time}}</b>, in {{days_left}} day(s). After that time you can no longer "
      "connect to the network with it.</p>\n"
      "<p>If you still need access, ask your sponsor to extend the account before it expires, "
      "or register again on the guest portal once it has expired.</p>\n"
      "<p>This message was sent automatically; please do not reply to it.</p>\n"
      "</body></html>\n");
  return t;
}

ReminderTemplate MakePasswordTemplate() {
  ReminderTemplate t;
  t.set_subject("Your password expires on {{expire_time}}");
  t.set_text_body(
      "Hello {{name}},\n"
      "\n"
      "The password of your account \"{{username}}\" expires on {{expire_time}}, in "
      "{{days_left}} day(s).\n"
      "Please change it before then; after it expires you can no longer sign in with it.\n"
      "\n"
      "This message was sent automatically; please do not reply to it.\n");
  t.set_html_body(
      "<html><body>\n"
      "<p>Hello {{name}},</p>\n"
      "<p>The password of your account &quot;<b>{{username}}</b>&quot; expires on "
      "<b>{{expire_time}}</b>, in {{days_left}} day(s).</p>\n"
      "<p>Please change it before then; after it expires you can no longer sign in with "
      "it.</p>\n"
      "<p>This message was sent automatically; please do not reply to it.</p>\n"
      "</body></html>\n");
  return t;
}

}  // namespace

const TemplateVocabulary& ReminderVariables(ReminderKind kind) {
  static const auto* const kPassword = new TemplateVocabulary{
      {"username", "first_name", "last_name", "email", "expire_time", "days_left"}, ""};
  static const auto* const kGuest = [] {
    auto* vocabulary = new TemplateVocabulary(*kPassword);
    vocabulary->variables.push_back("portal");
    return vocabulary;
  }();
  return kind == v1::REMINDER_KIND_GUEST_EXPIRY ? *kGuest : *kPassword;
}

void CheckReminderTemplate(FieldErrors* errors, absl::string_view field,
                           const ReminderTemplate& tmpl, ReminderKind kind) {
  CheckMailTemplate(errors, absl::StrCat(field, "."), TextOf(tmpl), ReminderVariables(kind));
}

const ReminderTemplate& BuiltInTemplate(ReminderKind kind) {
  static const ReminderTemplate* const kGuest = new ReminderTemplate(MakeGuestTemplate());
  static const ReminderTemplate* const kPassword = new ReminderTemplate(MakePasswordTemplate());
  return kind == v1::REMINDER_KIND_PASSWORD_EXPIRY ? *kPassword : *kGuest;
}

absl::StatusOr<RenderedMail> RenderReminderTemplate(const ReminderTemplate& tmpl,
                                                    ReminderKind kind,
                                                    const TemplateValues& values) {
  static const auto* const kGuest =
      new TemplateVocabulary(RenderVariables(v1::REMINDER_KIND_GUEST_EXPIRY));
  static const auto* const kPassword =
      new TemplateVocabulary(RenderVariables(v1::REMINDER_KIND_PASSWORD_EXPIRY));
  absl::StatusOr<MailTemplate> parsed = MailTemplate::Parse(
      TextOf(tmpl), kind == v1::REMINDER_KIND_GUEST_EXPIRY ? *kGuest : *kPassword, "template.");
  if (!parsed.ok()) return parsed.status();
  return parsed->Render(values);
}

}  // namespace mailroom::pan
