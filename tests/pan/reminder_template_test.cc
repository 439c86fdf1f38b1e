// Reminder templates: the built-in English ones are valid and name the account and its
// expiry; an admin's template is refused when saved for an unknown variable, an unclosed
// brace, CR/LF in the subject, no body, an oversized body or malformed UTF-8; values are
// substituted, and HTML-escaped only in the HTML body.
#include "pan/reminder_template.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::pan {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string Errors(const ReminderTemplate& t, ReminderKind kind = v1::REMINDER_KIND_GUEST_EXPIRY) {
  FieldErrors errors;
  CheckReminderTemplate(&errors, "settings.guest_expiry_template", t, kind);
  return std::string(errors.ToStatus().message());
}

ReminderTemplate Valid() {
  ReminderTemplate t;
  t.set_subject("Account {{username}} expires {{ expire_time }}");
  t.set_text_body("Hi {{first_name}} {{last_name}} ({{email}}), {{days_left}} days on {{portal}}");
  return t;
}

TEST(ReminderTemplateTest, BuiltInTemplatesUseOnlyKnownVariablesAndHaveBothBodies) {
  for (ReminderKind kind : {v1::REMINDER_KIND_GUEST_EXPIRY, v1::REMINDER_KIND_PASSWORD_EXPIRY}) {
    const ReminderTemplate& t = BuiltInTemplate(kind);
    TemplateVocabulary variables = ReminderVariables(kind);
    variables.variables.push_back("name");  // the built-ins' greeting
    FieldErrors errors;
    for (const std::string* text : {&t.subject(), &t.text_body(), &t.html_body()}) {
      EXPECT_FALSE(text->empty());
      CheckTemplateText(&errors, "builtin", *text, variables);
    }
    EXPECT_TRUE(errors.empty()) << errors.ToStatus();
    EXPECT_THAT(t.subject(), HasSubstr("{{expire_time}}"));
    EXPECT_THAT(t.text_body(), HasSubstr("{{name}}"));
    EXPECT_THAT(t.text_body(), HasSubstr("{{username}}"));
  }
  EXPECT_THAT(BuiltInTemplate(v1::REMINDER_KIND_GUEST_EXPIRY).subject(),
              HasSubstr("guest account"));
  EXPECT_THAT(BuiltInTemplate(v1::REMINDER_KIND_PASSWORD_EXPIRY).subject(), HasSubstr("password"));
}

TEST(ReminderTemplateTest, AcceptsEveryDocumentedVariable) {
  EXPECT_THAT(Errors(Valid()), IsEmpty());
}

TEST(ReminderTemplateTest, UnknownVariableIsNamedWithItsField) {
  ReminderTemplate t = Valid();
  t.set_html_body("<p>{{pasword}}</p>");
  EXPECT_EQ(Errors(t),
            "settings.guest_expiry_template.html_body: unknown variable \"{{pasword}}\"");
  // {{portal}} only exists for guest warnings; {{name}} is not part of the API.
  EXPECT_THAT(Errors(Valid(), v1::REMINDER_KIND_PASSWORD_EXPIRY),
              HasSubstr("text_body: unknown variable \"{{portal}}\""));
  t = Valid();
  t.set_subject("Hello {{name}}");
  EXPECT_THAT(Errors(t), HasSubstr("subject: unknown variable \"{{name}}\""));
}

TEST(ReminderTemplateTest, UnclosedBraceIsAnError) {
  ReminderTemplate t = Valid();
  t.set_text_body("Expires {{expire_time");
  EXPECT_THAT(Errors(t), HasSubstr("text_body: unclosed \"{{\" at offset 8"));
}

TEST(ReminderTemplateTest, SubjectMustBeOneLineAndPresent) {
  ReminderTemplate t = Valid();
  t.set_subject("Expiry\r\nBcc: victim@example.test");
  EXPECT_THAT(Errors(t), HasSubstr("settings.guest_expiry_template.subject: contains CR or LF"));
  t.set_subject("");
  EXPECT_THAT(Errors(t), HasSubstr("subject: is required"));
  t.set_subject(std::string(513, 'x'));
  EXPECT_THAT(Errors(t), HasSubstr("subject: exceeds 512 characters"));
  t.set_subject(std::string(512, 'x'));
  EXPECT_THAT(Errors(t), IsEmpty());
}

TEST(ReminderTemplateTest, BodiesAreRequiredBoundedAndUtf8) {
  ReminderTemplate t = Valid();
  t.clear_text_body();
  EXPECT_THAT(Errors(t), HasSubstr("text_body: at least one body"));
  t.set_html_body(std::string(256 * 1024 + 1, 'x'));
  EXPECT_THAT(Errors(t), HasSubstr("html_body: exceeds 262144 bytes"));
  t.set_html_body("caf\xC3");
  EXPECT_THAT(Errors(t), HasSubstr("html_body: not valid UTF-8"));
  t.set_html_body("line one\r\nline two\ttabbed");
  EXPECT_THAT(Errors(t), IsEmpty());
}

TEST(ReminderTemplateTest, RenderSubstitutesAndEscapesOnlyHtml) {
  TemplateValues values;
  values.text = {{"username", "<b>&\"x'"}, {"days_left", "3"}, {"name", "Ada"}};
  ReminderTemplate t;
  t.set_subject("{{username}} in {{ days_left }} days");
  t.set_text_body("Hello {{name}}, {{username}}");
  t.set_html_body("<p>{{username}}</p>");
  absl::StatusOr<RenderedMail> mail =
      RenderReminderTemplate(t, v1::REMINDER_KIND_GUEST_EXPIRY, values);
  ASSERT_TRUE(mail.ok()) << mail.status();
  EXPECT_EQ(mail->subject, "<b>&\"x' in 3 days");
  EXPECT_EQ(mail->text_body, "Hello Ada, <b>&\"x'");
  EXPECT_EQ(mail->html_body, "<p>&lt;b&gt;&amp;&quot;x&#39;</p>");
  // A template that was not checked when saved is not rendered half-way: an unknown variable
  // or an unclosed brace is an error, not text sent to the account.
  t.set_subject("{{nope}} {{username");
  EXPECT_EQ(RenderReminderTemplate(t, v1::REMINDER_KIND_GUEST_EXPIRY, values).status().code(),
            absl::StatusCode::kInvalidArgument);
  t.set_subject("{{portal}}");
  EXPECT_FALSE(RenderReminderTemplate(t, v1::REMINDER_KIND_PASSWORD_EXPIRY, values).ok());
  EXPECT_TRUE(RenderReminderTemplate(t, v1::REMINDER_KIND_GUEST_EXPIRY, values).ok());
}

}  // namespace
}  // namespace mailroom::pan
