#include "mnt/alarm_mail.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/proto_time.h"
#include "common/base/utf8.h"
#include "common/mail/template.h"
#include "mnt/alarm_types.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;

MailAddress AddressOf(const cv1::EmailAddress& address) {
  return MailAddress{address.address(), address.display_name()};
}

std::string RoleLabel(cv1::Role role) {
  std::string name = cv1::Role_Name(role);
  absl::string_view view = name;
  absl::ConsumePrefix(&view, "ROLE_");
  return std::string(view);
}

void Field(std::string* out, absl::string_view label, absl::string_view value) {
  if (value.empty()) return;
  absl::StrAppend(out, label, ":");
  for (size_t i = label.size() + 1; i < 14; ++i) out->push_back(' ');
  absl::StrAppend(out, " ", value, "\n");
}

// Indents every line of a multi-line value (the server's raw reply) so it stands apart.
std::string Indented(absl::string_view text) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n'))
    absl::StrAppend(&out, "    ", line, "\n");
  return out;
}

// What to do: the occurrence's diagnosis when it has one, else the type's guidance.
void WhatToDo(const mv1::Alarm& alarm, std::string* out) {
  if (alarm.has_diagnosis() &&
      (!alarm.diagnosis().title().empty() || !alarm.diagnosis().fix().empty())) {
    const cv1::Diagnosis& d = alarm.diagnosis();
    absl::StrAppend(out, "\n");
    Field(out, "Diagnosis", d.title());
    Field(out, "What to do", d.fix());
    Field(out, "Codes", absl::StrJoin(d.codes(), ", "));
    Field(out, "Endpoint", d.endpoint());
    if (d.smtp_code() != 0) Field(out, "SMTP reply", absl::StrCat(d.smtp_code()));
    if (d.http_status() != 0) Field(out, "HTTP status", absl::StrCat(d.http_status()));
    Field(out, "Trace id", d.trace_id());
    Field(out, "Correlation", d.correlation_id());
    if (!d.raw_reply().empty()) absl::StrAppend(out, "Server reply:\n", Indented(d.raw_reply()));
    return;
  }
  const absl::string_view guidance = AlarmTypeGuidance(alarm.type());
  if (!guidance.empty()) absl::StrAppend(out, "\n", "What to do: ", guidance, "\n");
}

void Details(const mv1::Alarm& alarm, std::string* out) {
  absl::StrAppend(out, "\n");
  Field(out, "Alarm", AlarmTypeTitle(alarm.type()));
  Field(out, "Severity", SeverityName(alarm.severity()));
  Field(out, "Node", absl::StrCat(alarm.source_node(), " (", RoleLabel(alarm.source_role()), ")"));
  Field(out, "First seen", FormatAlarmTime(FromProto(alarm.first_occur_time())));
  Field(out, "Last seen", FormatAlarmTime(FromProto(alarm.last_occur_time())));
  Field(out, "Occurrences", absl::StrCat(alarm.occurrence_count()));
  Field(out, "Alarm id", alarm.id());
  Field(out, "Dedup key", alarm.dedup_key());
}

// What the subject names: the type, or for GENERIC alarms (which have no telling type) the
// start of the text, cut on a character boundary.
std::string Headline(const mv1::Alarm& alarm) {
  if (alarm.type() != mv1::ALARM_TYPE_GENERIC) return std::string(AlarmTypeTitle(alarm.type()));
  constexpr size_t kMaxBytes = 100;
  if (alarm.text().size() <= kMaxBytes) return alarm.text();
  return absl::StrCat(Utf8Prefix(alarm.text(), kMaxBytes), "...");
}

MailContent Envelope(const AlarmMailEnvelope& envelope, const mv1::Alarm& alarm) {
  MailContent content;
  content.from = AddressOf(envelope.settings->sender());
  for (const cv1::EmailAddress& to : envelope.settings->admin_recipients()) {
    content.to.push_back(AddressOf(to));
  }
  content.message_id = envelope.message_id;
  content.date = envelope.date;
  // RFC 3834: automatic mail; well-behaved auto-responders do not answer it.
  content.extra_headers = {{"Auto-Submitted", "auto-generated"},
                           {"X-Mailroom-Alarm-Id", alarm.id()},
                           {"X-Mailroom-Alarm-Type", mv1::AlarmType_Name(alarm.type())}};
  return content;
}

// The texts of both emails, in the common template engine's syntax. The sections that depend
// on the alarm (what to do, the details) are built above and substituted whole.
constexpr char kFooter[] =
    "\n-- \nSent by the mailroom MnT node {{mnt_node}} because \"Include system alarms in "
    "emails\" is on in Alarm Settings.\nList or clear alarms: mailroomctl alarm list / "
    "mailroomctl alarm clear {{alarm_id}}\n";
constexpr char kAlarmSubject[] = "[mailroom] {{severity}} alarm on {{node}}: {{headline}}";
constexpr char kAlarmBody[] = "{{text}}\n{{what_to_do}}{{details}}{{suppression}}";
constexpr char kSuppressionNote[] =
    "\nFurther occurrences of this alarm in the next {{window}} are counted, not emailed one by "
    "one; one summary email will give their number at the end of that time.\n";
constexpr char kSummarySubject[] = "[mailroom] Summary: {{headline}} ({{node}}) repeated {{times}}";
constexpr char kSummaryBody[] =
    "The alarm below occurred {{times}} more between {{window_start}} and {{window_end}}, after "
    "the alarm email sent at {{window_start}}. These repeats were counted instead of emailed one "
    "by one.\n\nLatest occurrence: {{text}}\n{{what_to_do}}{{details}}\nThe next occurrence "
    "will be emailed at once.\n";

const TemplateVocabulary& Variables() {
  static const auto* const kVariables = new TemplateVocabulary{
      {"severity", "node", "headline", "text", "what_to_do", "details", "suppression", "window",
       "times", "window_start", "window_end", "mnt_node", "alarm_id"},
      ""};
  return *kVariables;
}

// The texts are constants of this file, so a parse error is a bug every test that renders an
// alarm email reports (value() aborts).
MailTemplate BuiltIn(absl::string_view subject, absl::string_view body) {
  return MailTemplate::Parse({subject, absl::StrCat(body, kFooter), ""}, Variables(), "alarm_mail.")
      .value();
}

// The values every email uses.
TemplateValues AlarmValues(const mv1::Alarm& alarm, const AlarmMailEnvelope& envelope) {
  TemplateValues values;
  values.text["severity"] = std::string(SeverityName(alarm.severity()));
  values.text["node"] = alarm.source_node();
  values.text["headline"] = Headline(alarm);
  values.text["text"] = alarm.text();
  WhatToDo(alarm, &values.text["what_to_do"]);
  Details(alarm, &values.text["details"]);
  values.text["mnt_node"] = envelope.mnt_node;
  values.text["alarm_id"] = alarm.id();
  return values;
}

MailContent Render(const MailTemplate& mail, const TemplateValues& values,
                   const mv1::Alarm& alarm, const AlarmMailEnvelope& envelope) {
  MailContent content = Envelope(envelope, alarm);
  RenderedMail rendered = mail.Render(values);
  content.subject = std::move(rendered.subject);
  content.text_body = std::move(rendered.text_body);
  return content;
}

}  // namespace

std::string FormatAlarmTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", time, absl::UTCTimeZone());
}

MailContent RenderAlarmMail(const mv1::Alarm& alarm, absl::Duration window,
                            const AlarmMailEnvelope& envelope) {
  static const MailTemplate* const kMail = new MailTemplate(BuiltIn(kAlarmSubject, kAlarmBody));
  static const auto* const kNote = new std::vector<TemplatePiece>(
      ParseTemplateText(kSuppressionNote, Variables(), "alarm_mail.suppression").value());
  TemplateValues values = AlarmValues(alarm, envelope);
  if (window > absl::ZeroDuration()) {
    values.text["window"] = absl::FormatDuration(window);
    values.text["suppression"] = RenderPieces(*kNote, values, RenderMode::kText);
  }
  return Render(*kMail, values, alarm, envelope);
}

MailContent RenderSummaryMail(const mv1::Alarm& alarm, int64_t repeats, absl::Time window_start,
                              absl::Time window_end, const AlarmMailEnvelope& envelope) {
  static const MailTemplate* const kMail =
      new MailTemplate(BuiltIn(kSummarySubject, kSummaryBody));
  TemplateValues values = AlarmValues(alarm, envelope);
  values.text["times"] = repeats == 1 ? "1 time" : absl::StrCat(repeats, " times");
  values.text["window_start"] = FormatAlarmTime(window_start);
  values.text["window_end"] = FormatAlarmTime(window_end);
  return Render(*kMail, values, alarm, envelope);
}

}  // namespace mailroom::mnt
