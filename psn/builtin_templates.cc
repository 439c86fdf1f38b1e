#include "psn/builtin_templates.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace mailroom::psn {
namespace {

namespace v1 = ::mailroom::psn::v1;

struct Texts {
  const char* subject;
  // The text body: what comes before the credentials, the credentials (or ""), the rest.
  const char* text_intro;
  const char* text_table;
  const char* text_outro;
  // The HTML body's paragraphs; the credentials table goes after the first one.
  const char* html_intro;
  const char* html_table;  // rows, or "" for none
  const char* html_outro;
};

// The account (username, password, validity) that SELF_REGISTRATION and GUEST_CREDENTIALS
// hand out, as text lines and as HTML table rows.
constexpr char kEnglishAccountLines[] =
    "  Username:     {{username}}\n"
    "  Password:     {{password}}\n"
    "  Valid from:   {{valid_from}} (UTC)\n"
    "  Valid until:  {{valid_until}} (UTC)\n";
constexpr char kEnglishAccountRows[] =
    "<tr><th align=\"left\">Username</th><td>{{username}}</td></tr>\n"
    "<tr><th align=\"left\">Password</th><td>{{password}}</td></tr>\n"
    "<tr><th align=\"left\">Valid from</th><td>{{valid_from}} (UTC)</td></tr>\n"
    "<tr><th align=\"left\">Valid until</th><td>{{valid_until}} (UTC)</td></tr>\n";
constexpr char kChineseAccountLines[] =
    "  使用者名稱：{{username}}\n"
    "  密碼：{{password}}\n"
    "  生效時間：{{valid_from}}（UTC）\n"
    "  到期時間：{{valid_until}}（UTC）\n";
constexpr char kChineseAccountRows[] =
    "<tr><th align=\"left\">使用者名稱</th><td>{{username}}</td></tr>\n"
    "<tr><th align=\"left\">密碼</th><td>{{password}}</td></tr>\n"
    "<tr><th align=\"left\">生效時間</th><td>{{valid_from}}（UTC）</td></tr>\n"
    "<tr><th align=\"left\">到期時間</th><td>{{valid_until}}（UTC）</td></tr>\n";

// Dates render in the template's time zone, UTC for these (no time_zone), hence "(UTC)".
constexpr Texts kEnglish[] = {
    // SELF_REGISTRATION
    {"Your guest account for {{portal}}",
     "Hello {{first_name}} {{last_name}},\n"
     "\n"
     "Thank you for registering. Your guest account is ready:\n"
     "\n",
     kEnglishAccountLines,
     "\n"
     "Sign in on the {{portal}} portal with these credentials. Your account stops working at\n"
     "{{valid_until}} (UTC); if you need it longer, register again or ask your host before then.\n"
     "\n"
     "This message was sent automatically; please do not reply.\n",
     "<p>Hello {{first_name}} {{last_name}},</p>\n"
     "<p>Thank you for registering. Your guest account is ready:</p>\n",
     kEnglishAccountRows,
     "<p>Sign in on the {{portal}} portal with these credentials. Your account stops working at "
     "{{valid_until}} (UTC); if you need it longer, register again or ask your host before "
     "then.</p>\n"
     "<p>This message was sent automatically; please do not reply.</p>\n"},
    // GUEST_CREDENTIALS
    {"Your guest account from {{sponsor}}",
     "Hello {{first_name}} {{last_name}},\n"
     "\n"
     "{{sponsor}} has set up a guest account for you on {{portal}}:\n"
     "\n",
     kEnglishAccountLines,
     "\n"
     "Sign in with these credentials when you connect. The account stops working at\n"
     "{{valid_until}} (UTC); if you need it longer, ask {{sponsor}} ({{sponsor_email}}).\n"
     "\n"
     "This message was sent automatically; please do not reply.\n",
     "<p>Hello {{first_name}} {{last_name}},</p>\n"
     "<p>{{sponsor}} has set up a guest account for you on {{portal}}:</p>\n",
     kEnglishAccountRows,
     "<p>Sign in with these credentials when you connect. The account stops working at "
     "{{valid_until}} (UTC); if you need it longer, ask {{sponsor}} ({{sponsor_email}}).</p>\n"
     "<p>This message was sent automatically; please do not reply.</p>\n"},
    // SPONSOR_SUMMARY
    {"Guest accounts on {{portal}}: {{guest_count}}",
     "Hello {{sponsor}},\n"
     "\n"
     "These are the {{guest_count}} guest account(s) you handled on {{portal}}:\n"
     "\n"
     "{{guests}}\n",
     "",
     "\n"
     "This message contains passwords: keep it safe and delete it when you no longer need it.\n",
     "<p>Hello {{sponsor}},</p>\n"
     "<p>These are the {{guest_count}} guest account(s) you handled on {{portal}}:</p>\n"
     "{{guests}}\n",
     "",
     "<p>This message contains passwords: keep it safe and delete it when you no longer need "
     "it.</p>\n"},
    // PASSWORD_RESET
    {"Your guest password has been reset",
     "Hello {{first_name}} {{last_name}},\n"
     "\n"
     "The password of your guest account on {{portal}} has been reset:\n"
     "\n",
     "  Username:     {{username}}\n"
     "  New password: {{password}}\n",
     "\n"
     "Sign in with the new password; the old one no longer works. If you did not ask for this,\n"
     "contact your host {{sponsor}} {{sponsor_email}} at once.\n"
     "\n"
     "This message was sent automatically; please do not reply.\n",
     "<p>Hello {{first_name}} {{last_name}},</p>\n"
     "<p>The password of your guest account on {{portal}} has been reset:</p>\n",
     "<tr><th align=\"left\">Username</th><td>{{username}}</td></tr>\n"
     "<tr><th align=\"left\">New password</th><td>{{password}}</td></tr>\n",
     "<p>Sign in with the new password; the old one no longer works. If you did not ask for "
     "this, contact your host {{sponsor}} {{sponsor_email}} at once.</p>\n"
     "<p>This message was sent automatically; please do not reply.</p>\n"},
};

constexpr Texts kChinese[] = {
    // SELF_REGISTRATION
    {"您的 {{portal}} 訪客帳號",
     "{{last_name}}{{first_name}} 您好：\n"
     "\n"
     "感謝您的註冊，您的訪客帳號已建立：\n"
     "\n",
     kChineseAccountLines,
     "\n"
     "請以上述帳號密碼登入 {{portal}}。帳號將於 {{valid_until}}（UTC）到期；\n"
     "如需延長使用，請於到期前重新註冊或洽詢接待人員。\n"
     "\n"
     "此郵件由系統自動發送，請勿直接回覆。\n",
     "<p>{{last_name}}{{first_name}} 您好：</p>\n"
     "<p>感謝您的註冊，您的訪客帳號已建立：</p>\n",
     kChineseAccountRows,
     "<p>請以上述帳號密碼登入 {{portal}}。帳號將於 {{valid_until}}（UTC）到期；"
     "如需延長使用，請於到期前重新註冊或洽詢接待人員。</p>\n"
     "<p>此郵件由系統自動發送，請勿直接回覆。</p>\n"},
    // GUEST_CREDENTIALS
    {"{{sponsor}} 為您建立的訪客帳號",
     "{{last_name}}{{first_name}} 您好：\n"
     "\n"
     "{{sponsor}} 已在 {{portal}} 為您建立訪客帳號：\n"
     "\n",
     kChineseAccountLines,
     "\n"
     "連線時請以上述帳號密碼登入。帳號將於 {{valid_until}}（UTC）到期；\n"
     "如需延長使用，請洽 {{sponsor}}（{{sponsor_email}}）。\n"
     "\n"
     "此郵件由系統自動發送，請勿直接回覆。\n",
     "<p>{{last_name}}{{first_name}} 您好：</p>\n"
     "<p>{{sponsor}} 已在 {{portal}} 為您建立訪客帳號：</p>\n",
     kChineseAccountRows,
     "<p>連線時請以上述帳號密碼登入。帳號將於 {{valid_until}}（UTC）到期；"
     "如需延長使用，請洽 {{sponsor}}（{{sponsor_email}}）。</p>\n"
     "<p>此郵件由系統自動發送，請勿直接回覆。</p>\n"},
    // SPONSOR_SUMMARY
    {"{{portal}} 訪客帳號摘要：共 {{guest_count}} 位",
     "{{sponsor}} 您好：\n"
     "\n"
     "以下是您在 {{portal}} 處理的 {{guest_count}} 個訪客帳號：\n"
     "\n"
     "{{guests}}\n",
     "",
     "\n"
     "本郵件含有密碼，請妥善保管，不再需要時請刪除。\n",
     "<p>{{sponsor}} 您好：</p>\n"
     "<p>以下是您在 {{portal}} 處理的 {{guest_count}} 個訪客帳號：</p>\n"
     "{{guests}}\n",
     "",
     "<p>本郵件含有密碼，請妥善保管，不再需要時請刪除。</p>\n"},
    // PASSWORD_RESET
    {"您的訪客帳號密碼已重設",
     "{{last_name}}{{first_name}} 您好：\n"
     "\n"
     "您在 {{portal}} 的訪客帳號密碼已重設：\n"
     "\n",
     "  使用者名稱：{{username}}\n"
     "  新密碼：{{password}}\n",
     "\n"
     "請以新密碼登入，舊密碼已失效。若您並未要求重設密碼，請立即聯絡 {{sponsor}} {{sponsor_email}}。\n"
     "\n"
     "此郵件由系統自動發送，請勿直接回覆。\n",
     "<p>{{last_name}}{{first_name}} 您好：</p>\n"
     "<p>您在 {{portal}} 的訪客帳號密碼已重設：</p>\n",
     "<tr><th align=\"left\">使用者名稱</th><td>{{username}}</td></tr>\n"
     "<tr><th align=\"left\">新密碼</th><td>{{password}}</td></tr>\n",
     "<p>請以新密碼登入，舊密碼已失效。若您並未要求重設密碼，請立即聯絡 {{sponsor}} "
     "{{sponsor_email}}。</p>\n"
     "<p>此郵件由系統自動發送，請勿直接回覆。</p>\n"},
};

int IndexOf(v1::TemplateKind kind) {
  switch (kind) {
    case v1::TEMPLATE_KIND_GUEST_CREDENTIALS: return 1;
    case v1::TEMPLATE_KIND_SPONSOR_SUMMARY: return 2;
    case v1::TEMPLATE_KIND_PASSWORD_RESET: return 3;
    default: return 0;
  }
}

}  // namespace

bool IsChineseLanguage(absl::string_view language) {
  const std::string lower = absl::AsciiStrToLower(language);
  return lower == "zh" || absl::StartsWith(lower, "zh-");
}

v1::Template BuiltinTemplate(v1::TemplateKind kind, absl::string_view language) {
  const bool chinese = IsChineseLanguage(language);
  const Texts& texts = (chinese ? kChinese : kEnglish)[IndexOf(kind)];
  v1::Template t;
  t.set_kind(kind);
  t.set_language(chinese ? "zh-TW" : "");
  t.set_subject(texts.subject);
  t.set_text_body(absl::StrCat(texts.text_intro, texts.text_table, texts.text_outro));
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html", chinese ? " lang=\"zh-TW\"" : " lang=\"en\"",
      "><head><meta charset=\"utf-8\"></head>\n<body>\n", texts.html_intro);
  if (*texts.html_table != '\0') {
    absl::StrAppend(&html, "<table cellpadding=\"4\">\n", texts.html_table, "</table>\n");
  }
  absl::StrAppend(&html, texts.html_outro, "</body></html>\n");
  t.set_html_body(std::move(html));
  return t;
}

}  // namespace mailroom::psn
