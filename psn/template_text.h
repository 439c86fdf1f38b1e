// Provides what is PSN-specific about its mail templates: which {{variables}} each
// TemplateKind may use (as documented on TemplateKind), the kind's short name,
// ValidateTemplate (everything PutTemplate checks) and RenderTemplate. Parsing, HTML-escaping,
// the date format and the template limits are the common engine's (common/mail/template.h);
// field rules are common/base/text_checks.h's. Unknown variables are found when a template is
// saved, never when a guest registers. Stateless and thread-safe.
#ifndef MAILROOM_PSN_TEMPLATE_TEXT_H_
#define MAILROOM_PSN_TEMPLATE_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mail/template.h"
#include "proto/mailroom/psn/v1/psn.pb.h"

namespace mailroom::psn {

using ::mailroom::psn::v1::Template;
using ::mailroom::psn::v1::TemplateKind;
using RenderedTemplate = ::mailroom::RenderedMail;

// A portal id names a portal in requests and template keys: one line of at most 128
// characters.
inline constexpr size_t kMaxPortalIdChars = 128;

// The variables `kind` may use, labelled with the kind's short name; none for UNSPECIFIED.
const TemplateVocabulary& TemplateVariables(TemplateKind kind);

// "SELF_REGISTRATION" for TEMPLATE_KIND_SELF_REGISTRATION.
std::string KindShortName(TemplateKind kind);

// Parses and renders subject, text_body and html_body of a template that passed
// ValidateTemplate.
absl::StatusOr<RenderedTemplate> RenderTemplate(const Template& t, const TemplateValues& values);

// Everything PutTemplate checks, every violation named under `prefix` (e.g. "template."):
// portal_id (≤ 128 characters, one line), language, kind, the subject and bodies
// (CheckMailTemplate: subject required, ≤ 512 characters, one line; at least one body, each
// ≤ 256 KiB), every variable, time_zone.
absl::Status ValidateTemplate(const Template& t, absl::string_view prefix);

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_TEMPLATE_TEXT_H_
