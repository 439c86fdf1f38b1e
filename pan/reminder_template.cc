#include "pan/reminder_template.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/mail/email_address.h"

namespace mailroom::pan {
namespace {

// Calls `piece(literal)` and `variable(name)` in order; returns the offset of an unclosed
// "{{", or npos.
template <typename Literal, typename Variable>
size_t Scan(absl::string_view text, Literal literal, Variable variable) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == absl::string_view::npos) break;
    const size_t close = text.find("}}", open + 2);
    if (close == absl::string_view::npos) {
      literal(text.substr(pos));
      return open;
    }
    literal(text.substr(pos, open - pos));
    variable(text.substr(open, close + 2 - open),
             absl::StripAsciiWhitespace(text.substr(open + 2, close - open - 2)));
    pos = close + 2;
  }
  if (pos < text.size()) literal(text.substr(pos));
  return absl::string_view::npos;
}

ReminderTemplate MakeGuestTemplate() {
  ReminderTemplate t;
  t.set_subject("Your guest account expires on {{expire_time}}");
  t.set_text_body(
      "Hello {{name}},\n"
      "\n"
      "Your guest account \"{{username}}\" expires on {{expire_time}}, in {{days_left}} day(s).\n"
      "After that time you can no longer connect to the network with it.\n"
      "\n"
      "If you still need access, ask your sponsor to extend the account before it expires,\n"
      "or register again on the guest portal once it has expired.\n"
      "\n"
      "This message was sent automatically; please do not reply to it.\n");
  t.set_html_body(
      "<html><body>\n"
      "<p>Hello {{name}},</p>\n"
      "<p>Your guest account &quot;<b>{{username}}</b>&quot; expires on "
      "<b>{{expire_time}}</b>, in {{days_left}} day(s). After that time you can no longer "
      "connect to the network with it.</p>\n"
      "<p>If you still need access, ask your sponsor to extend the account before it expires, "
      "or register again on the guest portal once it has expired.</p>\n"
      "<p>This message was sent automatically; please do not reply to it.</p>\n"
      "</body></html>\n");
  return t;
}

ReminderTemplate MakePasswordTemplate() {
  ReminderTemplate t;
  t.set_subject("Your password expires on {{expire_time}}");
  t.set_text_body(
      "Hello {{name}},\n"
      "\n"
      "The password of your account \"{{username}}\" expires on {{expire_time}}, in "
      "{{days_left}} day(s).\n"
      "Please change it before then; after it expires you can no longer sign in with it.\n"
      "\n"
      "This message was sent automatically; please do not reply to it.\n");
  t.set_html_body(
      "<html><body>\n"
      "<p>Hello {{name}},</p>\n"
      "<p>The password of your account &quot;<b>{{username}}</b>&quot; expires on "
      "<b>{{expire_time}}</b>, in {{days_left}} day(s).</p>\n"
      "<p>Please change it before then; after it expires you can no longer sign in with "
      "it.</p>\n"
      "<p>This message was sent automatically; please do not reply to it.</p>\n"
      "</body></html>\n");
  return t;
}

}  // namespace

std::vector<std::string> TemplateVariables(ReminderKind kind) {
  std::vector<std::string> variables = {"username", "first_name",  "last_name",
                                        "email",    "expire_time", "days_left"};
  if (kind == v1::REMINDER_KIND_GUEST_EXPIRY) variables.push_back("portal");
  return variables;
}

void CheckTemplateText(FieldErrors* errors, absl::string_view field, absl::string_view text,
                       const std::vector<std::string>& variables) {
  std::string unknown;
  const size_t unclosed = Scan(
      text, [](absl::string_view) {},
      [&](absl::string_view written, absl::string_view name) {
        if (unknown.empty() &&
            std::find(variables.begin(), variables.end(), name) == variables.end()) {
          unknown = std::string(written);
        }
      });
  if (!unknown.empty()) {
    errors->Add(field, absl::StrCat("unknown variable ", QuoteForError(unknown, 60)));
  } else if (unclosed != absl::string_view::npos) {
    errors->Add(field, absl::StrCat("unclosed \"{{\" at offset ", unclosed));
  }
}

void CheckReminderTemplate(FieldErrors* errors, absl::string_view field,
                           const ReminderTemplate& tmpl, ReminderKind kind) {
  const std::vector<std::string> variables = TemplateVariables(kind);
  const std::string subject_field = absl::StrCat(field, ".subject");
  const size_t before = errors->violations().size();
  CheckText(errors, subject_field, tmpl.subject(), Line(kMaxSubjectChars, /*required=*/true));
  if (errors->violations().size() == before) {
    CheckTemplateText(errors, subject_field, tmpl.subject(), variables);
  }
  if (tmpl.text_body().empty() && tmpl.html_body().empty()) {
    errors->Add(absl::StrCat(field, ".text_body"), "at least one body (text or HTML) is required");
  }
  for (const auto& [name, body] :
       {std::pair<const char*, const std::string*>{"text_body", &tmpl.text_body()},
        {"html_body", &tmpl.html_body()}}) {
    const std::string body_field = absl::StrCat(field, ".", name);
    const size_t count = errors->violations().size();
    CheckText(errors, body_field, *body, Body(kMaxBodyBytes));
    if (errors->violations().size() == count) {
      CheckTemplateText(errors, body_field, *body, variables);
    }
  }
}

const ReminderTemplate& BuiltInTemplate(ReminderKind kind) {
  static const ReminderTemplate* const kGuest = new ReminderTemplate(MakeGuestTemplate());
  static const ReminderTemplate* const kPassword = new ReminderTemplate(MakePasswordTemplate());
  return kind == v1::REMINDER_KIND_PASSWORD_EXPIRY ? *kPassword : *kGuest;
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

std::string ExpandTemplate(absl::string_view text, const TemplateValues& values, bool html) {
  std::string out;
  Scan(
      text, [&](absl::string_view literal) { out.append(literal.data(), literal.size()); },
      [&](absl::string_view written, absl::string_view name) {
        const auto it = values.find(std::string(name));
        if (it == values.end()) {
          out.append(written.data(), written.size());
        } else {
          out += html ? HtmlEscape(it->second) : it->second;
        }
      });
  return out;
}

}  // namespace mailroom::pan
