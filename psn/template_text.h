// Provides the PSN's mail templates as text: which {{variables}} each TemplateKind may use,
// parsing ("{{name}}" or "{{ name }}"; no raw form, no logic), rendering with per-part
// escaping (values are HTML-escaped in the HTML body, so a guest named "<b>" cannot inject
// markup), the date format, and ValidateTemplate, everything PutTemplate checks. Unknown
// variables are found when a template is saved, never when a guest registers. Stateless and
// thread-safe.
#ifndef MAILROOM_PSN_TEMPLATE_TEXT_H_
#define MAILROOM_PSN_TEMPLATE_TEXT_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/mailroom/psn/v1/psn.pb.h"

namespace mailroom::psn {

using ::mailroom::psn::v1::Template;
using ::mailroom::psn::v1::TemplateKind;

inline constexpr size_t kMaxSubjectChars = 512;
inline constexpr size_t kMaxBodyBytes = 256 * 1024;

// The variables `kind` may use, as documented on TemplateKind; empty for UNSPECIFIED.
const std::vector<std::string>& AllowedVariables(TemplateKind kind);

// "SELF_REGISTRATION" for TEMPLATE_KIND_SELF_REGISTRATION.
std::string KindShortName(TemplateKind kind);

// One piece of a parsed template: literal text, or the name of a variable.
struct TemplatePiece {
  bool is_variable = false;
  std::string text;
};

// Parses `text`. INVALID_ARGUMENT "<field>: ..." for an unterminated "{{", a malformed name,
// or a name not allowed for `kind` ("template.html_body: unknown variable {{pasword}} ...").
absl::StatusOr<std::vector<TemplatePiece>> ParseTemplateText(absl::string_view text,
                                                             TemplateKind kind,
                                                             absl::string_view field);

// The values to render with. `text` holds every variable's plain value (a missing one
// renders empty). `html_markup` holds values that are already safe HTML built by the service
// (the {{guests}} table); for the HTML body they replace the escaped plain value.
struct TemplateValues {
  std::map<std::string, std::string> text;
  std::map<std::string, std::string> html_markup;
};

enum class RenderMode { kText, kHtml };

std::string RenderPieces(const std::vector<TemplatePiece>& pieces, const TemplateValues& values,
                         RenderMode mode);

struct RenderedTemplate {
  std::string subject;
  std::string text_body;  // empty when the template has none
  std::string html_body;  // empty when the template has none
};

// Parses and renders subject, text_body and html_body of a template that passed
// ValidateTemplate.
absl::StatusOr<RenderedTemplate> RenderTemplate(const Template& t, const TemplateValues& values);

// & < > " ' as entities.
std::string HtmlEscape(absl::string_view text);

// "YYYY-MM-DD HH:MM" in `time_zone` (IANA name; empty or unknown means UTC).
std::string FormatTemplateTime(absl::Time time, absl::string_view time_zone);

// Everything PutTemplate checks, each field named under `prefix` (e.g. "template."):
// portal_id, language, kind, subject (required, ≤ 512 characters, one line), text_body and
// html_body (at least one, each ≤ 256 KiB, UTF-8 without NUL), every variable, time_zone.
absl::Status ValidateTemplate(const Template& t, absl::string_view prefix);

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_TEMPLATE_TEXT_H_
