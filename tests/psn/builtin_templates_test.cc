// The built-in templates are valid and in the language asked for.
#include "psn/builtin_templates.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "psn/template_text.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;
using ::testing::HasSubstr;

constexpr v1::TemplateKind kKinds[] = {
    v1::TEMPLATE_KIND_SELF_REGISTRATION, v1::TEMPLATE_KIND_GUEST_CREDENTIALS,
    v1::TEMPLATE_KIND_SPONSOR_SUMMARY, v1::TEMPLATE_KIND_PASSWORD_RESET};

TEST(BuiltinTemplatesTest, EveryBuiltinPassesValidation) {
  for (v1::TemplateKind kind : kKinds) {
    for (const char* language : {"", "en", "zh-TW", "fr"}) {
      const v1::Template t = BuiltinTemplate(kind, language);
      EXPECT_EQ(t.kind(), kind);
      EXPECT_TRUE(t.etag().empty());
      EXPECT_TRUE(t.portal_id().empty());
      EXPECT_FALSE(t.text_body().empty());
      EXPECT_FALSE(t.html_body().empty());
      EXPECT_TRUE(ValidateTemplate(t, "template.").ok())
          << KindShortName(kind) << " " << language << ": " << ValidateTemplate(t, "template.");
    }
  }
}

TEST(BuiltinTemplatesTest, ChineseTagsGetTheTraditionalChineseTemplates) {
  EXPECT_TRUE(IsChineseLanguage("zh-TW"));
  EXPECT_TRUE(IsChineseLanguage("ZH-hant"));
  EXPECT_TRUE(IsChineseLanguage("zh"));
  EXPECT_FALSE(IsChineseLanguage("zu"));
  EXPECT_FALSE(IsChineseLanguage(""));
  const v1::Template zh = BuiltinTemplate(v1::TEMPLATE_KIND_SELF_REGISTRATION, "zh-tw");
  EXPECT_EQ(zh.language(), "zh-TW");
  EXPECT_THAT(zh.text_body(), HasSubstr("密碼"));
  const v1::Template en = BuiltinTemplate(v1::TEMPLATE_KIND_SELF_REGISTRATION, "de");
  EXPECT_EQ(en.language(), "");
  EXPECT_THAT(en.text_body(), HasSubstr("Password"));
}

TEST(BuiltinTemplatesTest, CredentialTemplatesCarryTheCredentials) {
  for (v1::TemplateKind kind : {v1::TEMPLATE_KIND_SELF_REGISTRATION,
                                v1::TEMPLATE_KIND_GUEST_CREDENTIALS,
                                v1::TEMPLATE_KIND_PASSWORD_RESET}) {
    for (const char* language : {"", "zh-TW"}) {
      const v1::Template t = BuiltinTemplate(kind, language);
      for (const std::string* body : {&t.text_body(), &t.html_body()}) {
        EXPECT_THAT(*body, HasSubstr("{{username}}"));
        EXPECT_THAT(*body, HasSubstr("{{password}}"));
      }
    }
  }
  EXPECT_THAT(BuiltinTemplate(v1::TEMPLATE_KIND_SPONSOR_SUMMARY, "").html_body(),
              HasSubstr("{{guests}}"));
}

}  // namespace
}  // namespace mailroom::psn
