// Provides the one mail template engine: the PSN's templates, the PAN's reminders and the
// MnT's alarm mail all render through it. Stateless and thread-safe (a parsed MailTemplate is
// immutable).
//
// Syntax: literal text with `{{name}}` or `{{ name }}` substitutions; names are lowercase
// letters, digits and '_', starting with a letter or '_'. There is no raw form, no escaping
// of braces and no logic: a single brace is text, and anything else between "{{" and "}}" is
// an error. Each template is parsed against a TemplateVocabulary, the variables its role and
// kind document, so that an unknown variable is refused when an admin saves the template
// (CheckMailTemplate), never when a mail is due. Errors name the field and the variable:
//   "<field>: unknown variable \"{{pasword}}\""
//   "<field>: unknown variable {{pasword}} (SELF_REGISTRATION allows {{username}} ...)"
//     (the second form when the vocabulary has a label)
//   "<field>: unclosed \"{{\" at offset 8" (bytes from the start of the text)
//   "<field>: invalid variable {{\"User\"}}: names are lowercase letters, ..."
//
// Rendering: a variable without a value renders empty. In the HTML body every value is
// HTML-escaped (& < > " '), so a guest named "<b>" cannot inject markup; a value the caller
// built as safe HTML (TemplateValues::html_markup) replaces the escaped text there.
#ifndef MAILROOM_COMMON_MAIL_TEMPLATE_H_
#define MAILROOM_COMMON_MAIL_TEMPLATE_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/text_checks.h"

namespace mailroom {

// The documented limits of a mail template (PSN templates and PAN reminder templates).
inline constexpr size_t kMaxTemplateSubjectChars = 512;
inline constexpr size_t kMaxTemplateBodyBytes = 256 * 1024;

// The variables a template may name.
struct TemplateVocabulary {
  std::vector<std::string> variables;
  // What the template is for ("SELF_REGISTRATION"), when an unknown-variable error should list
  // the variables allowed; empty for a bare, quoted name.
  std::string label;
};

// One piece of a parsed template: literal text, or the name of a variable.
struct TemplatePiece {
  bool is_variable = false;
  std::string text;
};

// Parses `text`; INVALID_ARGUMENT "<field>: ..." for a syntax error or a variable not in
// `vocabulary`.
absl::StatusOr<std::vector<TemplatePiece>> ParseTemplateText(absl::string_view text,
                                                             const TemplateVocabulary& vocabulary,
                                                             absl::string_view field);

// The same check, collected: adds at most one violation for `field`; returns whether none.
bool CheckTemplateText(FieldErrors* errors, absl::string_view field, absl::string_view text,
                       const TemplateVocabulary& vocabulary);

// The values to render with. `text` holds every variable's plain value. `html_markup` holds
// values that are already safe HTML (built by the caller, e.g. a table); in the HTML body
// they replace the escaped plain value.
struct TemplateValues {
  std::map<std::string, std::string> text;
  std::map<std::string, std::string> html_markup;
};

enum class RenderMode { kText, kHtml };

std::string RenderPieces(const std::vector<TemplatePiece>& pieces, const TemplateValues& values,
                         RenderMode mode);

// & < > " ' as entities.
std::string HtmlEscape(absl::string_view text);

// "YYYY-MM-DD HH:MM" in `time_zone` (an IANA name; empty or unknown means UTC).
std::string FormatTemplateTime(absl::Time time, absl::string_view time_zone);

// The three parts of a mail template, as a role stores them.
struct MailTemplateText {
  absl::string_view subject;
  absl::string_view text_body;  // empty: no text part
  absl::string_view html_body;  // empty: no HTML part
};

struct RenderedMail {
  std::string subject;
  std::string text_body;  // empty when the template has none
  std::string html_body;  // empty when the template has none
};

// Everything an admin's template must pass when it is saved, fields named
// "<prefix>subject", "<prefix>text_body", "<prefix>html_body": the subject required, one line,
// at most 512 characters; at least one body, each at most 256 KiB (rules of
// common/base/text_checks.h); every variable in `vocabulary`. Returns whether no violation was
// added.
bool CheckMailTemplate(FieldErrors* errors, absl::string_view prefix, const MailTemplateText& text,
                       const TemplateVocabulary& vocabulary);

// A parsed subject and bodies, rendered any number of times.
class MailTemplate {
 public:
  // Parses the three parts (syntax and vocabulary only; limits are CheckMailTemplate's).
  // Errors name "<prefix>subject" etc.
  static absl::StatusOr<MailTemplate> Parse(const MailTemplateText& text,
                                            const TemplateVocabulary& vocabulary,
                                            absl::string_view prefix);

  // The subject and text body as text, the HTML body as HTML.
  RenderedMail Render(const TemplateValues& values) const;

 private:
  std::vector<TemplatePiece> subject_;
  std::vector<TemplatePiece> text_body_;
  std::vector<TemplatePiece> html_body_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_MAIL_TEMPLATE_H_
