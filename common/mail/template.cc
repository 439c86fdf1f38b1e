#include "common/mail/template.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/utf8.h"

namespace mailroom {
namespace {

bool ValidName(absl::string_view name) {
  if (name.empty() || !(absl::ascii_islower(name[0]) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_';
  });
}

std::string UnknownVariable(absl::string_view name, const TemplateVocabulary& vocabulary) {
  const std::string written = absl::StrCat("{{", name, "}}");
  if (vocabulary.label.empty()) return absl::StrCat("unknown variable ", QuoteForError(written));
  std::vector<std::string> allowed;
  for (const std::string& variable : vocabulary.variables) {
    allowed.push_back(absl::StrCat("{{", variable, "}}"));
  }
  return absl::StrCat("unknown variable ", written, " (", vocabulary.label, " allows ",
                      absl::StrJoin(allowed, " "), ")");
}

// Parses `text` into `pieces`; on a syntax or vocabulary error returns the problem (without
// the field), else "".
std::string Parse(absl::string_view text, const TemplateVocabulary& vocabulary,
                  std::vector<TemplatePiece>* pieces) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == absl::string_view::npos) {
      pieces->push_back({false, std::string(text.substr(pos))});
      break;
    }
    if (open > pos) pieces->push_back({false, std::string(text.substr(pos, open - pos))});
    const size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) {
      return absl::StrCat("unclosed \"{{\" at offset ", open);
    }
    const absl::string_view raw = text.substr(open + 2, close - open - 2);
    const absl::string_view name = absl::StripAsciiWhitespace(raw);
    if (!ValidName(name)) {
      return absl::StrCat("invalid variable {{", QuoteForError(raw, 40),
                          "}}: names are lowercase letters, digits and '_' (there is no raw or "
                          "logic form)");
    }
    if (std::find(vocabulary.variables.begin(), vocabulary.variables.end(), name) ==
        vocabulary.variables.end()) {
      return UnknownVariable(name, vocabulary);
    }
    pieces->push_back({true, std::string(name)});
    pos = close + 2;
  }
  return "";
}

}  // namespace

absl::StatusOr<std::vector<TemplatePiece>> ParseTemplateText(absl::string_view text,
                                                             const TemplateVocabulary& vocabulary,
                                                             absl::string_view field) {
  std::vector<TemplatePiece> pieces;
  if (std::string problem = Parse(text, vocabulary, &pieces); !problem.empty()) {
    return FieldError(field, problem);
  }
  return pieces;
}

bool CheckTemplateText(FieldErrors* errors, absl::string_view field, absl::string_view text,
                       const TemplateVocabulary& vocabulary) {
  std::vector<TemplatePiece> pieces;
  std::string problem = Parse(text, vocabulary, &pieces);
  if (problem.empty()) return true;
  errors->Add(field, problem);
  return false;
}

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
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

std::string FormatTemplateTime(absl::Time time, absl::string_view time_zone) {
  return absl::FormatTime("%Y-%m-%d %H:%M", time, TimeZoneOrUtc(time_zone));
}

bool CheckMailTemplate(FieldErrors* errors, absl::string_view prefix, const MailTemplateText& text,
                       const TemplateVocabulary& vocabulary) {
  const size_t before = errors->size();
  const std::string subject_field = absl::StrCat(prefix, "subject");
  if (CheckText(errors, subject_field, text.subject, Line(kMaxTemplateSubjectChars, true))) {
    CheckTemplateText(errors, subject_field, text.subject, vocabulary);
  }
  if (text.text_body.empty() && text.html_body.empty()) {
    errors->Add(absl::StrCat(prefix, "text_body"), "at least one body (text or HTML) is required");
  }
  for (const auto& [name, body] : {std::pair<const char*, absl::string_view>{"text_body",
                                                                             text.text_body},
                                   {"html_body", text.html_body}}) {
    const std::string field = absl::StrCat(prefix, name);
    if (CheckText(errors, field, body, Body(kMaxTemplateBodyBytes))) {
      CheckTemplateText(errors, field, body, vocabulary);
    }
  }
  return errors->size() == before;
}

absl::StatusOr<MailTemplate> MailTemplate::Parse(const MailTemplateText& text,
                                                 const TemplateVocabulary& vocabulary,
                                                 absl::string_view prefix) {
  MailTemplate parsed;
  for (auto [name, source, pieces] :
       {std::tuple<const char*, absl::string_view, std::vector<TemplatePiece>*>{
            "subject", text.subject, &parsed.subject_},
        {"text_body", text.text_body, &parsed.text_body_},
        {"html_body", text.html_body, &parsed.html_body_}}) {
    absl::StatusOr<std::vector<TemplatePiece>> result =
        ParseTemplateText(source, vocabulary, absl::StrCat(prefix, name));
    if (!result.ok()) return result.status();
    *pieces = *std::move(result);
  }
  return parsed;
}

RenderedMail MailTemplate::Render(const TemplateValues& values) const {
  RenderedMail rendered;
  rendered.subject = RenderPieces(subject_, values, RenderMode::kText);
  rendered.text_body = RenderPieces(text_body_, values, RenderMode::kText);
  rendered.html_body = RenderPieces(html_body_, values, RenderMode::kHtml);
  return rendered;
}

}  // namespace mailroom
