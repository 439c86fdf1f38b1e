// Provides the reminder mail templates: the built-in English ones, the check an admin's
// template must pass when the settings are saved (so an unknown variable is an error then, not
// when a reminder is due), and rendering with `{{variable}}` substitution, values
// HTML-escaped in the HTML body. Stateless and thread-safe.
//
// Variables (ReminderTemplate in proto/mailroom/pan/v1/pan.proto): {{username}}
// {{first_name}} {{last_name}} {{email}} {{expire_time}} {{days_left}}, and {{portal}} in
// guest-expiry templates. Spaces inside the braces are allowed ("{{ username }}"). The
// built-in templates also use {{name}}, the account's display name (see reminder_mail.h),
// which admins' templates cannot, because the API does not document it.
#ifndef MAILROOM_PAN_REMINDER_TEMPLATE_H_
#define MAILROOM_PAN_REMINDER_TEMPLATE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "pan/field_checks.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::pan {

using ::mailroom::pan::v1::ReminderKind;
using ::mailroom::pan::v1::ReminderTemplate;

inline constexpr size_t kMaxSubjectChars = 512;
inline constexpr size_t kMaxBodyBytes = 256 * 1024;

// The variables an admin's template of `kind` may use.
std::vector<std::string> TemplateVariables(ReminderKind kind);

// Checks `tmpl` (at `field`, e.g. "settings.guest_expiry_template"): subject required, at
// most 512 characters, single line; at least one body, each at most 256 KiB; UTF-8; every
// `{{...}}` closed and naming a variable of `kind`.
void CheckReminderTemplate(FieldErrors* errors, absl::string_view field,
                           const ReminderTemplate& tmpl, ReminderKind kind);

// Checks one text against an explicit variable list (used for the built-ins in tests).
void CheckTemplateText(FieldErrors* errors, absl::string_view field, absl::string_view text,
                       const std::vector<std::string>& variables);

// The built-in English template of `kind`.
const ReminderTemplate& BuiltInTemplate(ReminderKind kind);

using TemplateValues = std::map<std::string, std::string>;

// `text` with each {{variable}} replaced by its value (HTML-escaped when `html`). Unknown
// variables and unclosed braces are left as written; templates are checked when saved.
std::string ExpandTemplate(absl::string_view text, const TemplateValues& values, bool html);

// Escapes & < > " ' for HTML text and attribute values.
std::string HtmlEscape(absl::string_view text);

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDER_TEMPLATE_H_
