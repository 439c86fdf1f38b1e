#include "psn/template_text.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/text_checks.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;

TemplateVocabulary Vocabulary(TemplateKind kind, std::vector<std::string> variables) {
  return TemplateVocabulary{std::move(variables), KindShortName(kind)};
}

MailTemplateText TextOf(const Template& t) { return {t.subject(), t.text_body(), t.html_body()}; }

}  // namespace

const TemplateVocabulary& TemplateVariables(TemplateKind kind) {
  static const std::vector<std::string>* const kGuest = new std::vector<std::string>{
      "username", "password", "first_name", "last_name",
      "email",    "valid_from", "valid_until", "portal"};
  static const std::vector<std::string>* const kWithSponsor = [] {
    auto* names = new std::vector<std::string>(*kGuest);
    names->push_back("sponsor");
    names->push_back("sponsor_email");
    return names;
  }();
  static const auto* const kSelfRegistration =
      new TemplateVocabulary(Vocabulary(v1::TEMPLATE_KIND_SELF_REGISTRATION, *kGuest));
  static const auto* const kCredentials =
      new TemplateVocabulary(Vocabulary(v1::TEMPLATE_KIND_GUEST_CREDENTIALS, *kWithSponsor));
  static const auto* const kPasswordReset =
      new TemplateVocabulary(Vocabulary(v1::TEMPLATE_KIND_PASSWORD_RESET, *kWithSponsor));
  static const auto* const kSummary = new TemplateVocabulary(
      Vocabulary(v1::TEMPLATE_KIND_SPONSOR_SUMMARY,
                 {"sponsor", "sponsor_email", "portal", "guest_count", "guests"}));
  static const auto* const kNone = new TemplateVocabulary();
  switch (kind) {
    case v1::TEMPLATE_KIND_SELF_REGISTRATION:
      return *kSelfRegistration;
    case v1::TEMPLATE_KIND_GUEST_CREDENTIALS:
      return *kCredentials;
    case v1::TEMPLATE_KIND_PASSWORD_RESET:
      return *kPasswordReset;
    case v1::TEMPLATE_KIND_SPONSOR_SUMMARY:
      return *kSummary;
    default:
      return *kNone;
  }
}

std::string KindShortName(TemplateKind kind) {
  const std::string full = v1::TemplateKind_IsValid(kind) ? v1::TemplateKind_Name(kind) : "";
  absl::string_view name = full;
  absl::ConsumePrefix(&name, "TEMPLATE_KIND_");
  return name.empty() ? absl::StrCat(static_cast<int>(kind)) : std::string(name);
}

absl::StatusOr<RenderedTemplate> RenderTemplate(const Template& t, const TemplateValues& values) {
  absl::StatusOr<MailTemplate> parsed =
      MailTemplate::Parse(TextOf(t), TemplateVariables(t.kind()), "template.");
  if (!parsed.ok()) return parsed.status();
  return parsed->Render(values);
}

absl::Status ValidateTemplate(const Template& t, absl::string_view prefix) {
  auto field = [prefix](absl::string_view name) { return absl::StrCat(prefix, name); };
  FieldErrors errors;
  CheckText(&errors, field("portal_id"), t.portal_id(), Line(kMaxPortalIdChars));
  CheckLanguage(&errors, field("language"), t.language());
  if (t.kind() == v1::TEMPLATE_KIND_UNSPECIFIED || !v1::TemplateKind_IsValid(t.kind())) {
    errors.Add(field("kind"),
               "required (SELF_REGISTRATION, GUEST_CREDENTIALS, SPONSOR_SUMMARY or "
               "PASSWORD_RESET)");
  } else {
    CheckMailTemplate(&errors, prefix, TextOf(t), TemplateVariables(t.kind()));
  }
  CheckTimeZone(&errors, field("time_zone"), t.time_zone());
  return errors.ToStatus();
}

}  // namespace mailroom::psn
