#include "psn/template_text.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/mail/email_address.h"
#include "psn/field_checks.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;

constexpr size_t kMaxTimeZoneChars = 64;

bool ValidName(absl::string_view name) {
  if (name.empty() || !(absl::ascii_islower(name[0]) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
  });
}

std::string AllowedList(TemplateKind kind) {
  std::vector<std::string> names;
  for (const std::string& name : AllowedVariables(kind)) names.push_back("{{" + name + "}}");
  return absl::StrJoin(names, " ");
}

// IANA names are ASCII letters, digits and "/_+-"; refusing anything else (and "..") keeps a
// zone name from naming a file outside the zoneinfo directory.
bool PlausibleZoneName(absl::string_view name) {
  if (name.size() > kMaxTimeZoneChars || absl::StrContains(name, "..") || name[0] == '/') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '/' || c == '_' || c == '+' || c == '-';
  });
}

}  // namespace

const std::vector<std::string>& AllowedVariables(TemplateKind kind) {
  static const auto* const kSelfRegistration = new std::vector<std::string>{
      "username", "password", "first_name", "last_name",
      "email",    "valid_from", "valid_until", "portal"};
  static const auto* const kCredentials = [] {
    auto* names = new std::vector<std::string>(*kSelfRegistration);
    names->push_back("sponsor");
    names->push_back("sponsor_email");
    return names;
  }();
  static const auto* const kSummary = new std::vector<std::string>{
      "sponsor", "sponsor_email", "portal", "guest_count", "guests"};
  static const auto* const kNone = new std::vector<std::string>();
  switch (kind) {
    case v1::TEMPLATE_KIND_SELF_REGISTRATION:
      return *kSelfRegistration;
    case v1::TEMPLATE_KIND_GUEST_CREDENTIALS:
    case v1::TEMPLATE_KIND_PASSWORD_RESET:
      return *kCredentials;
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

absl::StatusOr<std::vector<TemplatePiece>> ParseTemplateText(absl::string_view text,
                                                             TemplateKind kind,
                                                             absl::string_view field) {
  const std::vector<std::string>& allowed = AllowedVariables(kind);
  std::vector<TemplatePiece> pieces;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == absl::string_view::npos) {
      pieces.push_back({false, std::string(text.substr(pos))});
      break;
    }
    if (open > pos) pieces.push_back({false, std::string(text.substr(pos, open - pos))});
    const size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) {
      return FieldError(field, absl::StrCat("unterminated \"{{\" at character ",
                                            Utf8Length(text.substr(0, open)) + 1));
    }
    const absl::string_view raw = text.substr(open + 2, close - open - 2);
    const absl::string_view name = absl::StripAsciiWhitespace(raw);
    if (!ValidName(name)) {
      return FieldError(field, absl::StrCat("invalid variable {{", QuoteForError(raw, 40),
                                            "}}: names are lowercase letters, digits and '_' "
                                            "(there is no raw or logic form)"));
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return FieldError(field, absl::StrCat("unknown variable {{", name, "}} (", KindShortName(kind),
                                            " allows ", AllowedList(kind), ")"));
    }
    pieces.push_back({true, std::string(name)});
    pos = close + 2;
  }
  return pieces;
}

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string RenderPieces(const std::vector<TemplatePiece>& pieces, const TemplateValues& values,
                         RenderMode mode) {
  std::string out;
  for (const TemplatePiece& piece : pieces) {
    if (!piece.is_variable) {
      out += piece.text;
      continue;
    }
    if (mode == RenderMode::kHtml) {
      if (auto markup = values.html_markup.find(piece.text); markup != values.html_markup.end()) {
        out += markup->second;
        continue;
      }
    }
    auto value = values.text.find(piece.text);
    if (value == values.text.end()) continue;
    out += mode == RenderMode::kHtml ? HtmlEscape(value->second) : value->second;
  }
  return out;
}

absl::StatusOr<RenderedTemplate> RenderTemplate(const Template& t, const TemplateValues& values) {
  RenderedTemplate rendered;
  struct Part {
    const std::string* source;
    const char* field;
    RenderMode mode;
    std::string* out;
  };
  for (const Part& part : {Part{&t.subject(), "template.subject", RenderMode::kText,
                                &rendered.subject},
                           Part{&t.text_body(), "template.text_body", RenderMode::kText,
                                &rendered.text_body},
                           Part{&t.html_body(), "template.html_body", RenderMode::kHtml,
                                &rendered.html_body}}) {
    if (part.source->empty()) continue;
    absl::StatusOr<std::vector<TemplatePiece>> pieces =
        ParseTemplateText(*part.source, t.kind(), part.field);
    if (!pieces.ok()) return pieces.status();
    *part.out = RenderPieces(*pieces, values, part.mode);
  }
  return rendered;
}

std::string FormatTemplateTime(absl::Time time, absl::string_view time_zone) {
  absl::TimeZone zone = absl::UTCTimeZone();
  if (!time_zone.empty() && PlausibleZoneName(time_zone)) {
    absl::TimeZone loaded;
    if (absl::LoadTimeZone(std::string(time_zone), &loaded)) zone = loaded;
  }
  return absl::FormatTime("%Y-%m-%d %H:%M", time, zone);
}

absl::Status ValidateTemplate(const Template& t, absl::string_view prefix) {
  auto field = [prefix](absl::string_view name) { return absl::StrCat(prefix, name); };
  if (absl::Status s = CheckPortalId(field("portal_id"), t.portal_id(), /*allow_empty=*/true);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckLanguage(field("language"), t.language()); !s.ok()) return s;
  if (t.kind() == v1::TEMPLATE_KIND_UNSPECIFIED || !v1::TemplateKind_IsValid(t.kind())) {
    return FieldError(field("kind"),
                      "required (SELF_REGISTRATION, GUEST_CREDENTIALS, SPONSOR_SUMMARY or "
                      "PASSWORD_RESET)");
  }
  if (absl::Status s = CheckText(field("subject"), t.subject(), SingleLine(kMaxSubjectChars, true));
      !s.ok()) {
    return s;
  }
  if (t.text_body().empty() && t.html_body().empty()) {
    return FieldError(field("text_body"), "at least one of text_body and html_body is required");
  }
  for (const auto& [name, body] :
       {std::pair<const char*, const std::string*>{"text_body", &t.text_body()},
        std::pair<const char*, const std::string*>{"html_body", &t.html_body()}}) {
    if (body->size() > kMaxBodyBytes) {
      return FieldError(field(name), absl::StrCat("exceeds ", kMaxBodyBytes, " bytes"));
    }
    if (absl::Status s = CheckText(field(name), *body, MultiLine(0)); !s.ok()) return s;
  }
  for (const auto& [name, text] :
       {std::pair<const char*, const std::string*>{"subject", &t.subject()},
        std::pair<const char*, const std::string*>{"text_body", &t.text_body()},
        std::pair<const char*, const std::string*>{"html_body", &t.html_body()}}) {
    if (absl::StatusOr<std::vector<TemplatePiece>> pieces =
            ParseTemplateText(*text, t.kind(), field(name));
        !pieces.ok()) {
      return pieces.status();
    }
  }
  if (!t.time_zone().empty()) {
    absl::TimeZone zone;
    if (!PlausibleZoneName(t.time_zone()) || !absl::LoadTimeZone(t.time_zone(), &zone)) {
      return FieldError(field("time_zone"),
                        absl::StrCat("unknown IANA time zone ", QuoteForError(t.time_zone()),
                                     " (e.g. \"Asia/Taipei\"; empty means UTC)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace mailroom::psn
