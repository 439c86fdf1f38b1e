// The one template engine: syntax, the vocabulary check with errors naming field and
// variable, save-time checks of a mail template, and rendering with HTML-escaping in the HTML
// body only.
#include "common/mail/template.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

const TemplateVocabulary kPlain = {{"username", "portal", "days_left"}, ""};
const TemplateVocabulary kLabelled = {{"username", "portal"}, "SELF_REGISTRATION"};

std::string ParseError(absl::string_view text, const TemplateVocabulary& vocabulary = kPlain) {
  return std::string(ParseTemplateText(text, vocabulary, "t.subject").status().message());
}

TEST(ParseTemplateTextTest, LiteralsAndVariablesWithOrWithoutSpaces) {
  absl::StatusOr<std::vector<TemplatePiece>> pieces =
      ParseTemplateText("Hi {{username}}, {{  portal }}!", kPlain, "f");
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  ASSERT_EQ(pieces->size(), 5u);
  EXPECT_FALSE((*pieces)[0].is_variable);
  EXPECT_EQ((*pieces)[0].text, "Hi ");
  EXPECT_TRUE((*pieces)[1].is_variable);
  EXPECT_EQ((*pieces)[1].text, "username");
  EXPECT_EQ((*pieces)[3].text, "portal");
  EXPECT_EQ((*pieces)[4].text, "!");
  // Single braces and a stray "}}" are text.
  EXPECT_TRUE(ParseTemplateText("{ x } }}", kPlain, "f").ok());
  EXPECT_TRUE(ParseTemplateText("", kPlain, "f").ok());
}

TEST(ParseTemplateTextTest, UnknownVariableNamesFieldAndVariable) {
  EXPECT_EQ(ParseError("<p>{{pasword}}</p>"), "t.subject: unknown variable \"{{pasword}}\"");
  EXPECT_EQ(ParseError("{{ pasword }}"), "t.subject: unknown variable \"{{pasword}}\"");
  EXPECT_EQ(ParseError("{{pasword}}", kLabelled),
            "t.subject: unknown variable {{pasword}} (SELF_REGISTRATION allows {{username}} "
            "{{portal}})");
}

TEST(ParseTemplateTextTest, SyntaxErrors) {
  EXPECT_EQ(ParseError("Expires {{expire_time"), "t.subject: unclosed \"{{\" at offset 8");
  for (const char* text : {"{{Username}}", "{{}}", "{{user name}}", "{{{username}}}",
                           "{{#if x}}", "{{user-name}}", "{{9lives}}"}) {
    EXPECT_THAT(ParseError(text), StartsWith("t.subject: invalid variable {{")) << text;
  }
  // The raw text is quoted, so a hostile template cannot forge a log line.
  EXPECT_THAT(ParseError("{{a\r\nb}}"), HasSubstr("{{\"a\\r\\nb\"}}"));
}

TEST(CheckTemplateTextTest, CollectsOneViolationPerText) {
  FieldErrors errors;
  EXPECT_TRUE(CheckTemplateText(&errors, "a", "{{username}}", kPlain));
  EXPECT_FALSE(CheckTemplateText(&errors, "b", "{{nope}} {{alsonope}}", kPlain));
  EXPECT_EQ(errors.ToStatus().message(), "b: unknown variable \"{{nope}}\"");
}

TEST(RenderTest, ValuesAreEscapedInHtmlOnly) {
  TemplateValues values;
  values.text["username"] = "<script>alert('x')</script>";
  values.text["portal"] = "Lobby & \"Café\"";
  auto pieces = ParseTemplateText("{{username}} on {{ portal }}", kPlain, "f");
  ASSERT_TRUE(pieces.ok());
  EXPECT_EQ(RenderPieces(*pieces, values, RenderMode::kText),
            "<script>alert('x')</script> on Lobby & \"Café\"");
  EXPECT_EQ(RenderPieces(*pieces, values, RenderMode::kHtml),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; on Lobby &amp; &quot;Café&quot;");
  EXPECT_EQ(HtmlEscape("<b>&\"x'"), "&lt;b&gt;&amp;&quot;x&#39;");
}

TEST(RenderTest, MarkupReplacesTheValueInHtmlOnlyAndMissingValuesRenderEmpty) {
  TemplateValues values;
  values.text["portal"] = "a | b";
  values.html_markup["portal"] = "<table></table>";
  auto pieces = ParseTemplateText("[{{portal}}][{{username}}]", kPlain, "f");
  ASSERT_TRUE(pieces.ok());
  EXPECT_EQ(RenderPieces(*pieces, values, RenderMode::kText), "[a | b][]");
  EXPECT_EQ(RenderPieces(*pieces, values, RenderMode::kHtml), "[<table></table>][]");
}

TEST(FormatTemplateTimeTest, UsesTheNamedTimeZone) {
  const absl::Time t = absl::FromUnixSeconds(1'800'000'000);  // 2027-01-15 08:00 UTC
  EXPECT_EQ(FormatTemplateTime(t, ""), "2027-01-15 08:00");
  EXPECT_EQ(FormatTemplateTime(t, "Asia/Taipei"), "2027-01-15 16:00");
  EXPECT_EQ(FormatTemplateTime(t, "Mars/Olympus"), "2027-01-15 08:00");
  EXPECT_EQ(FormatTemplateTime(t, "../../etc/passwd"), "2027-01-15 08:00");
}

std::string TemplateErrors(const MailTemplateText& text) {
  FieldErrors errors;
  const bool ok = CheckMailTemplate(&errors, "settings.tmpl.", text, kPlain);
  EXPECT_EQ(ok, errors.empty());
  return std::string(errors.ToStatus().message());
}

TEST(CheckMailTemplateTest, SubjectAndBodiesAndVariables) {
  EXPECT_THAT(TemplateErrors({"Hi {{username}}", "{{days_left}} days", ""}), IsEmpty());
  EXPECT_THAT(TemplateErrors({"Hi", "", "<p>{{portal}}</p>"}), IsEmpty());
  EXPECT_EQ(TemplateErrors({"", "x", ""}), "settings.tmpl.subject: is required");
  EXPECT_EQ(TemplateErrors({"a\r\nBcc: x", "x", ""}),
            "settings.tmpl.subject: contains CR or LF (a line break)");
  EXPECT_EQ(TemplateErrors({std::string(513, 's'), "x", ""}),
            "settings.tmpl.subject: exceeds 512 characters");
  EXPECT_THAT(TemplateErrors({std::string(512, 's'), "x", ""}), IsEmpty());
  EXPECT_EQ(TemplateErrors({"s", "", ""}),
            "settings.tmpl.text_body: at least one body (text or HTML) is required");
  const std::string big(256 * 1024 + 1, 'x');
  EXPECT_EQ(TemplateErrors({"s", "", big}), "settings.tmpl.html_body: exceeds 262144 bytes");
  EXPECT_EQ(TemplateErrors({"s", "caf\xC3", ""}), "settings.tmpl.text_body: not valid UTF-8 (byte 3)");
  EXPECT_THAT(TemplateErrors({"s", "line one\r\nline two\ttabbed", ""}), IsEmpty());
  // Every part is checked, each violation named.
  EXPECT_EQ(TemplateErrors({"{{username}", "{{pasword}}", "<p>{{portal}}</p>"}),
            "settings.tmpl.subject: unclosed \"{{\" at offset 0; "
            "settings.tmpl.text_body: unknown variable \"{{pasword}}\"");
}

TEST(MailTemplateTest, ParsesOnceRendersEachPartInItsMode) {
  absl::StatusOr<MailTemplate> parsed = MailTemplate::Parse(
      {"For {{username}}", "User {{username}}", "<p>User {{username}}</p>"}, kPlain, "template.");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  TemplateValues values;
  values.text["username"] = "<Tom & \"Jerry\">";
  const RenderedMail mail = parsed->Render(values);
  EXPECT_EQ(mail.subject, "For <Tom & \"Jerry\">");
  EXPECT_EQ(mail.text_body, "User <Tom & \"Jerry\">");
  EXPECT_EQ(mail.html_body, "<p>User &lt;Tom &amp; &quot;Jerry&quot;&gt;</p>");
  EXPECT_EQ(MailTemplate::Parse({"s", "", "{{x}}"}, kPlain, "template.").status().message(),
            "template.html_body: unknown variable \"{{x}}\"");
  absl::StatusOr<MailTemplate> text_only = MailTemplate::Parse({"s", "t", ""}, kPlain, "p.");
  ASSERT_TRUE(text_only.ok());
  EXPECT_THAT(text_only->Render(values).html_body, IsEmpty());
}

}  // namespace
}  // namespace mailroom
