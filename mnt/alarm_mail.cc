#include "mnt/alarm_mail.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/proto_time.h"
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

std::string Footer(const AlarmMailEnvelope& envelope, absl::string_view alarm_id) {
  return absl::StrCat("\n-- \nSent by the mailroom MnT node ", envelope.mnt_node,
                      " because \"Include system alarms in emails\" is on in Alarm Settings.\n"
                      "List or clear alarms: mailroomctl alarm list / mailroomctl alarm clear ",
                      alarm_id, "\n");
}

// What the subject names: the type, or for GENERIC alarms (which have no telling type) the
// start of the text, cut on a character boundary.
std::string Headline(const mv1::Alarm& alarm) {
  if (alarm.type() != mv1::ALARM_TYPE_GENERIC) return std::string(AlarmTypeTitle(alarm.type()));
  constexpr size_t kMaxBytes = 100;
  if (alarm.text().size() <= kMaxBytes) return alarm.text();
  size_t cut = kMaxBytes;
  while (cut > 0 && (static_cast<unsigned char>(alarm.text()[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(alarm.text().substr(0, cut), "...");
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

}  // namespace

std::string FormatAlarmTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", time, absl::UTCTimeZone());
}

MailContent RenderAlarmMail(const mv1::Alarm& alarm, absl::Duration window,
                            const AlarmMailEnvelope& envelope) {
  MailContent content = Envelope(envelope, alarm);
  content.subject = absl::StrCat("[mailroom] ", SeverityName(alarm.severity()), " alarm on ",
                                 alarm.source_node(), ": ", Headline(alarm));
  std::string body = absl::StrCat(alarm.text(), "\n");
  WhatToDo(alarm, &body);
  Details(alarm, &body);
  if (window > absl::ZeroDuration()) {
    absl::StrAppend(&body, "\nFurther occurrences of this alarm in the next ",
                    absl::FormatDuration(window),
                    " are counted, not emailed one by one; one summary email will give their "
                    "number at the end of that time.\n");
  }
  absl::StrAppend(&body, Footer(envelope, alarm.id()));
  content.text_body = std::move(body);
  return content;
}

MailContent RenderSummaryMail(const mv1::Alarm& alarm, int64_t repeats, absl::Time window_start,
                              absl::Time window_end, const AlarmMailEnvelope& envelope) {
  MailContent content = Envelope(envelope, alarm);
  const std::string times = repeats == 1 ? "1 time" : absl::StrCat(repeats, " times");
  content.subject = absl::StrCat("[mailroom] Summary: ", Headline(alarm), " (", alarm.source_node(),
                                 ") repeated ", times);
  std::string body =
      absl::StrCat("The alarm below occurred ", times, " more between ",
                   FormatAlarmTime(window_start), " and ", FormatAlarmTime(window_end),
                   ", after the alarm email sent at ", FormatAlarmTime(window_start),
                   ". These repeats were counted instead of emailed one by one.\n",
                   "\nLatest occurrence: ", alarm.text(), "\n");
  WhatToDo(alarm, &body);
  Details(alarm, &body);
  absl::StrAppend(&body, "\nThe next occurrence will be emailed at once.\n",
                  Footer(envelope, alarm.id()));
  content.text_body = std::move(body);
  return content;
}

}  // namespace mailroom::mnt
