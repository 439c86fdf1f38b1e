// Provides the fuzz target of template parsing and rendering (common/mail/template.h). The
// input is an admin's template and the values of one mail, separated by the byte 0x1F:
//   subject, text body, html body, then "name=value" for each value
// ("name=<markup" puts the value in html_markup). Checks that a parsed template has only known
// variables and literal text without "{{", prints back to text that parses to the same
// pieces, renders each piece as documented (HTML-escaped values in the HTML body), that
// HtmlEscape leaves no markup character, and that errors name the field and are safe to show.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/base/text_checks.h"
#include "common/base/utf8.h"
#include "common/mail/template.h"
#include "tests/fuzz/fuzz_check.h"

namespace mailroom {
namespace {

const TemplateVocabulary& Vocabulary() {
  static const TemplateVocabulary* const kVocabulary = new TemplateVocabulary{
      {"username", "first_name", "last_name", "password", "portal", "valid_until", "table"},
      "SELF_REGISTRATION"};
  return *kVocabulary;
}

void CheckEscaped(absl::string_view escaped, const std::string& what) {
  for (size_t i = 0; i < escaped.size(); ++i) {
    const char c = escaped[i];
    FUZZ_CHECK(c != '<' && c != '>' && c != '"' && c != '\'', what);
    if (c == '&') {
      const absl::string_view rest = escaped.substr(i);
      FUZZ_CHECK(absl::StartsWith(rest, "&amp;") || absl::StartsWith(rest, "&lt;") ||
                     absl::StartsWith(rest, "&gt;") || absl::StartsWith(rest, "&quot;") ||
                     absl::StartsWith(rest, "&#39;"),
                 what);
    }
  }
}

void CheckPart(absl::string_view text, const TemplateValues& values, const std::string& what) {
  const absl::StatusOr<std::vector<TemplatePiece>> pieces =
      ParseTemplateText(text, Vocabulary(), "template.text_body");
  FieldErrors errors;
  const bool checked = CheckTemplateText(&errors, "template.text_body", text, Vocabulary());
  FUZZ_CHECK(checked == pieces.ok() && errors.empty() == checked, what);
  if (!pieces.ok()) {
    FUZZ_CHECK(pieces.status().code() == absl::StatusCode::kInvalidArgument &&
                   absl::StartsWith(pieces.status().message(), "template.text_body: "),
               absl::StrCat(what, ": ", pieces.status().ToString()));
    FUZZ_CHECK(fuzz::IsSafeErrorMessage(pieces.status().message()),
               absl::StrCat(what, ": ", QuoteForError(pieces.status().message(), 400)));
    return;
  }
  std::string printed;
  std::string expected_text;
  std::string expected_html;
  for (const TemplatePiece& piece : *pieces) {
    if (piece.is_variable) {
      FUZZ_CHECK(std::find(Vocabulary().variables.begin(), Vocabulary().variables.end(),
                           piece.text) != Vocabulary().variables.end(),
                 what);
      absl::StrAppend(&printed, "{{", piece.text, "}}");
      const auto value = values.text.find(piece.text);
      const std::string plain = value == values.text.end() ? "" : value->second;
      expected_text += plain;
      const auto markup = values.html_markup.find(piece.text);
      expected_html += markup != values.html_markup.end() ? markup->second : HtmlEscape(plain);
    } else {
      FUZZ_CHECK(!absl::StrContains(piece.text, "{{"), what);
      printed += piece.text;
      expected_text += piece.text;
      expected_html += piece.text;
    }
  }
  const absl::StatusOr<std::vector<TemplatePiece>> reparsed =
      ParseTemplateText(printed, Vocabulary(), "template.text_body");
  FUZZ_CHECK(reparsed.ok() && reparsed->size() <= pieces->size(),
             absl::StrCat(what, " printed as ", QuoteForError(printed, 300)));
  FUZZ_CHECK(RenderPieces(*pieces, values, RenderMode::kText) == expected_text, what);
  FUZZ_CHECK(RenderPieces(*pieces, values, RenderMode::kHtml) == expected_html, what);
  FUZZ_CHECK(RenderPieces(*reparsed, values, RenderMode::kText) == expected_text, what);
}

}  // namespace
}  // namespace mailroom

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::mailroom;  // NOLINT(build/namespaces): a fuzz entry point
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields = absl::StrSplit(input, '\x1f');
  if (fields.size() < 3) fields.resize(3);
  TemplateValues values;
  for (size_t i = 3; i < fields.size(); ++i) {
    const size_t equals = fields[i].find('=');
    const std::string name = fields[i].substr(0, equals);
    const std::string value = equals == std::string::npos ? "" : fields[i].substr(equals + 1);
    if (absl::StartsWith(value, "<")) {
      values.html_markup[name] = value;
    }
    values.text[name] = value;
    CheckEscaped(HtmlEscape(value), absl::StrCat("HtmlEscape of ", QuoteForError(value, 300)));
  }
  const std::string what = absl::StrCat("input ", QuoteForError(input, 600));
  for (int i = 0; i < 3; ++i) CheckPart(fields[i], values, what);

  const MailTemplateText text{fields[0], fields[1], fields[2]};
  FieldErrors errors;
  const bool passes = CheckMailTemplate(&errors, "template.", text, Vocabulary());
  FUZZ_CHECK(passes == errors.empty(), what);
  for (const auto& [field, problem] : errors.violations()) {
    FUZZ_CHECK(absl::StartsWith(field, "template."), what);
    FUZZ_CHECK(fuzz::IsSafeErrorMessage(problem),
               absl::StrCat(what, ": ", field, ": ", QuoteForError(problem, 400)));
  }
  const absl::StatusOr<MailTemplate> parsed = MailTemplate::Parse(text, Vocabulary(), "template.");
  if (passes) FUZZ_CHECK(parsed.ok(), what);
  if (parsed.ok()) {
    const RenderedMail mail = parsed->Render(values);
    FUZZ_CHECK(fields[1].empty() == mail.text_body.empty() || !fields[1].empty(), what);
  }
  return 0;
}
