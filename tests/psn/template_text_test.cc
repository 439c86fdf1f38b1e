// The PSN's templates: the variables of each kind, validation at save time, and rendering
// with per-part escaping through the common engine (tests/common/mail/template_test.cc).
#include "psn/template_text.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/psn/test_util.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
using ::mailroom::psn::testing::IsInvalidField;
using ::testing::HasSubstr;

// Parses against the variables the PSN documents for `kind`.
absl::StatusOr<std::vector<TemplatePiece>> ParseForKind(absl::string_view text,
                                                        v1::TemplateKind kind,
                                                        absl::string_view field) {
  return ParseTemplateText(text, TemplateVariables(kind), field);
}

v1::Template Valid() {
  v1::Template t;
  t.set_portal_id("lobby");
  t.set_language("zh-TW");
  t.set_kind(v1::TEMPLATE_KIND_SELF_REGISTRATION);
  t.set_subject("Welcome {{first_name}}");
  t.set_text_body("User {{ username }} / {{password}} until {{valid_until}}");
  t.set_html_body("<p>User <b>{{username}}</b></p>");
  return t;
}

TEST(ParseForKindTest, VariablesWithAndWithoutSpaces) {
  absl::StatusOr<std::vector<TemplatePiece>> pieces = ParseForKind(
      "Hi {{username}}, {{  portal }}!", v1::TEMPLATE_KIND_SELF_REGISTRATION, "f");
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_EQ(pieces->size(), 5u);
  EXPECT_TRUE((*pieces)[1].is_variable);
  EXPECT_EQ((*pieces)[1].text, "username");
  EXPECT_EQ((*pieces)[3].text, "portal");
  EXPECT_EQ((*pieces)[4].text, "!");
}

TEST(ParseForKindTest, UnknownVariableNamesFieldAndVariable) {
  absl::Status status =
      ParseForKind("<p>{{pasword}}</p>", v1::TEMPLATE_KIND_SELF_REGISTRATION,
                        "template.html_body")
          .status();
  EXPECT_TRUE(IsInvalidField(status, "template.html_body"));
  EXPECT_THAT(status.message(), HasSubstr("unknown variable {{pasword}}"));
  // The kind's variables are listed, so an admin can fix the typo.
  EXPECT_THAT(status.message(), HasSubstr("(SELF_REGISTRATION allows {{username}} {{password}}"));
}

TEST(ParseForKindTest, VariableSetsFollowTheKind) {
  // {{sponsor}} belongs to sponsor mail, not to self-registration.
  EXPECT_FALSE(ParseForKind("{{sponsor}}", v1::TEMPLATE_KIND_SELF_REGISTRATION, "f").ok());
  EXPECT_TRUE(ParseForKind("{{sponsor}}", v1::TEMPLATE_KIND_GUEST_CREDENTIALS, "f").ok());
  EXPECT_TRUE(ParseForKind("{{sponsor_email}}", v1::TEMPLATE_KIND_PASSWORD_RESET, "f").ok());
  EXPECT_TRUE(
      ParseForKind("{{guests}} {{guest_count}}", v1::TEMPLATE_KIND_SPONSOR_SUMMARY, "f").ok());
  EXPECT_FALSE(ParseForKind("{{password}}", v1::TEMPLATE_KIND_SPONSOR_SUMMARY, "f").ok());
  EXPECT_FALSE(ParseForKind("{{guests}}", v1::TEMPLATE_KIND_GUEST_CREDENTIALS, "f").ok());
}

TEST(ParseForKindTest, MalformedVariablesAreErrors) {
  for (const char* text : {"{{username", "{{Username}}", "{{}}", "{{user name}}",
                           "{{{username}}}", "{{#if x}}"}) {
    EXPECT_TRUE(IsInvalidField(
        ParseForKind(text, v1::TEMPLATE_KIND_SELF_REGISTRATION, "template.subject").status(),
        "template.subject"))
        << text;
  }
  // Single braces are text.
  EXPECT_TRUE(ParseForKind("{ x } }}", v1::TEMPLATE_KIND_SELF_REGISTRATION, "f").ok());
}

TEST(RenderTest, ValuesAreEscapedInHtmlOnly) {
  v1::Template t = Valid();
  t.set_subject("For {{first_name}}");
  t.set_text_body("User {{username}}");
  t.set_html_body("<p>User {{username}}</p>");
  TemplateValues values;
  values.text["first_name"] = "<Tom & \"Jerry\">";
  values.text["username"] = "<script>alert('x')</script>";
  absl::StatusOr<RenderedTemplate> rendered = RenderTemplate(t, values);
  ASSERT_TRUE(rendered.ok()) << rendered.status();
  EXPECT_EQ(rendered->subject, "For <Tom & \"Jerry\">");
  EXPECT_EQ(rendered->text_body, "User <script>alert('x')</script>");
  EXPECT_EQ(rendered->html_body,
            "<p>User &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</p>");
}

TEST(RenderTest, MarkupValuesGoIntoHtmlUnescapedAndTextValuesElsewhere) {
  v1::Template t;
  t.set_kind(v1::TEMPLATE_KIND_SPONSOR_SUMMARY);
  t.set_subject("{{guest_count}} guests");
  t.set_text_body("{{guests}}");
  t.set_html_body("<div>{{guests}}</div>");
  TemplateValues values;
  values.text["guest_count"] = "2";
  values.text["guests"] = "a | b";
  values.html_markup["guests"] = "<table></table>";
  absl::StatusOr<RenderedTemplate> rendered = RenderTemplate(t, values);
  ASSERT_TRUE(rendered.ok()) << rendered.status();
  EXPECT_EQ(rendered->text_body, "a | b");
  EXPECT_EQ(rendered->html_body, "<div><table></table></div>");
}

TEST(RenderTest, MissingValuesRenderEmpty) {
  v1::Template t = Valid();
  t.set_text_body("[{{first_name}}]");
  absl::StatusOr<RenderedTemplate> rendered = RenderTemplate(t, TemplateValues());
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(rendered->text_body, "[]");
}

TEST(FormatTemplateTimeTest, UsesTheTemplatesTimeZone) {
  const absl::Time t = absl::FromUnixSeconds(1'800'000'000);  // 2027-01-15 08:00 UTC
  EXPECT_EQ(FormatTemplateTime(t, ""), "2027-01-15 08:00");
  EXPECT_EQ(FormatTemplateTime(t, "Asia/Taipei"), "2027-01-15 16:00");
  EXPECT_EQ(FormatTemplateTime(t, "../../etc/passwd"), "2027-01-15 08:00");
}

TEST(ValidateTemplateTest, AcceptsAValidTemplate) {
  EXPECT_TRUE(ValidateTemplate(Valid(), "template.").ok());
}

TEST(ValidateTemplateTest, EachProblemNamesItsField) {
  struct Case {
    const char* field;
    std::function<void(v1::Template*)> spoil;
  };
  const std::vector<Case> cases = {
      {"template.kind", [](v1::Template* t) { t->set_kind(v1::TEMPLATE_KIND_UNSPECIFIED); }},
      {"template.portal_id", [](v1::Template* t) { t->set_portal_id(std::string(129, 'p')); }},
      {"template.language", [](v1::Template* t) { t->set_language("zh_TW"); }},
      {"template.subject", [](v1::Template* t) { t->set_subject(""); }},
      {"template.subject", [](v1::Template* t) { t->set_subject("Hi\r\nBcc: x@example.test"); }},
      {"template.subject", [](v1::Template* t) { t->set_subject(std::string(513, 's')); }},
      {"template.subject", [](v1::Template* t) { t->set_subject("{{nope}}"); }},
      {"template.text_body",
       [](v1::Template* t) {
         t->clear_text_body();
         t->clear_html_body();
       }},
      {"template.text_body", [](v1::Template* t) { t->set_text_body("bad \xFF utf-8"); }},
      {"template.text_body",
       [](v1::Template* t) { t->set_text_body(std::string(256 * 1024 + 1, 'x')); }},
      {"template.html_body", [](v1::Template* t) { t->set_html_body("{{pasword}}"); }},
      {"template.html_body", [](v1::Template* t) { t->set_html_body(std::string("\0", 1)); }},
      {"template.time_zone", [](v1::Template* t) { t->set_time_zone("Mars/Olympus"); }},
  };
  for (const Case& c : cases) {
    v1::Template t = Valid();
    c.spoil(&t);
    EXPECT_TRUE(IsInvalidField(ValidateTemplate(t, "template."), c.field)) << c.field;
  }
}

TEST(ValidateTemplateTest, OneBodyIsEnough) {
  v1::Template t = Valid();
  t.clear_text_body();
  EXPECT_TRUE(ValidateTemplate(t, "template.").ok());
  t = Valid();
  t.clear_html_body();
  EXPECT_TRUE(ValidateTemplate(t, "template.").ok());
}

}  // namespace
}  // namespace mailroom::psn
