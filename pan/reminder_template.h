// Provides what is PAN-specific about reminder mail templates: the built-in English ones, the
// variables an admin's template of each kind may use, the check an admin's template must pass
// when the settings are saved (so an unknown variable is an error then, not when a reminder
// is due), and rendering. Parsing, HTML-escaping of values in the HTML body and the template
// limits are the common engine's (common/mail/template.h). Stateless and thread-safe.
//
// Variables (ReminderTemplate in proto/mailroom/pan/v1/pan.proto): {{username}}
// {{first_name}} {{last_name}} {{email}} {{expire_time}} {{days_left}}, and {{portal}} in
// guest-expiry templates. Spaces inside the braces are allowed ("{{ username }}"). The
// built-in templates also use {{name}}, the account's display name (see reminder_mail.h),
// which admins' templates cannot, because the API does not document it.
#ifndef MAILROOM_PAN_REMINDER_TEMPLATE_H_
#define MAILROOM_PAN_REMINDER_TEMPLATE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/text_checks.h"
#include "common/mail/template.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::pan {

using ::mailroom::pan::v1::ReminderKind;
using ::mailroom::pan::v1::ReminderTemplate;

// The variables an admin's template of `kind` may use.
const TemplateVocabulary& ReminderVariables(ReminderKind kind);

// Checks `tmpl` (at `field`, e.g. "settings.guest_expiry_template") with CheckMailTemplate:
// subject required, at most 512 characters, single line; at least one body, each at most
// 256 KiB; UTF-8; every `{{...}}` closed and naming a variable of `kind`.
void CheckReminderTemplate(FieldErrors* errors, absl::string_view field,
                           const ReminderTemplate& tmpl, ReminderKind kind);

// The built-in English template of `kind`.
const ReminderTemplate& BuiltInTemplate(ReminderKind kind);

// `tmpl` of `kind` (a built-in, or an admin's that passed CheckReminderTemplate) filled with
// `values`.
absl::StatusOr<RenderedMail> RenderReminderTemplate(const ReminderTemplate& tmpl,
                                                    ReminderKind kind,
                                                    const TemplateValues& values);

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDER_TEMPLATE_H_
