// Provides the PSN's built-in templates, the last step of the template lookup, so that a
// fresh PSN sends sensible mail before an admin customizes anything: English for every
// language, and Traditional Chinese (zh-TW) for Chinese language tags. Each has a subject, a
// text body and an HTML body, and passes ValidateTemplate. Stateless and thread-safe.
#ifndef MAILROOM_PSN_BUILTIN_TEMPLATES_H_
#define MAILROOM_PSN_BUILTIN_TEMPLATES_H_

#include "absl/strings/string_view.h"
#include "proto/mailroom/psn/v1/psn.pb.h"

namespace mailroom::psn {

// The built-in template of `kind` for `language`: portal_id "", no etag, and language ""
// (English) or "zh-TW" (any tag starting with "zh"). `kind` must not be UNSPECIFIED.
::mailroom::psn::v1::Template BuiltinTemplate(::mailroom::psn::v1::TemplateKind kind,
                                              absl::string_view language);

// Whether `language` selects the Chinese built-in templates (and table labels).
bool IsChineseLanguage(absl::string_view language);

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_BUILTIN_TEMPLATES_H_
