#include "common/mail/smtp_reply.h"

#include <iterator>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/enum_names.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;

// A reply code's first digit is 1 to 5 (RFC 5321 4.2); "000" or "999" is not a reply.
bool IsReplyLine(absl::string_view line) {
  return line.size() >= 3 && line[0] >= '1' && line[0] <= '5' && absl::ascii_isdigit(line[1]) &&
         absl::ascii_isdigit(line[2]) && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
}

// Length of a leading RFC 3463 enhanced status code ("5.7.139") of class `klass` at the
// start of `text`, followed by a space or the end; 0 if there is none.
size_t EnhancedCodeLength(absl::string_view text, char klass) {
  if (text.size() < 5 || text[0] != klass || text[1] != '.') return 0;
  size_t pos = 2;
  for (int part = 0; part < 2; ++part) {
    const size_t start = pos;
    while (pos < text.size() && absl::ascii_isdigit(text[pos]) && pos - start < 3) ++pos;
    if (pos == start) return 0;
    if (part == 0) {
      if (pos >= text.size() || text[pos] != '.') return 0;
      ++pos;
    }
  }
  if (pos < text.size() && text[pos] != ' ') return 0;
  return pos;
}

Diagnosis Classified(fc::FailureCause cause, const SmtpReply& reply) {
  Diagnosis diagnosis = MakeDiagnosis(cause, reply.raw);
  diagnosis.set_smtp_code(reply.code);
  if (!reply.enhanced_code.empty()) diagnosis.add_codes(reply.enhanced_code);
  return diagnosis;
}

}  // namespace

SmtpReply ParseSmtpReply(absl::string_view lines) {
  std::vector<absl::string_view> parts = absl::StrSplit(lines, '\n');
  // Every CR before a line's end goes (a stray one would otherwise stay in the text and make
  // `raw` parse differently from the lines it came from).
  for (absl::string_view& part : parts) {
    while (absl::ConsumeSuffix(&part, "\r")) {
    }
  }
  while (!parts.empty() && parts.back().empty()) parts.pop_back();
  std::vector<std::string> raw_lines;
  std::vector<std::string> text_lines;
  SmtpReply reply;
  bool all_reply_lines = !parts.empty();
  for (absl::string_view line : parts) {
    raw_lines.emplace_back(line);
    if (!IsReplyLine(line)) all_reply_lines = false;
  }
  reply.raw = absl::StrJoin(raw_lines, "\n");
  if (!all_reply_lines) {
    reply.text = reply.raw;
    return reply;
  }
  // Every line repeats the code; the last line's is the reply's (RFC 5321 4.2.1).
  const std::string& last = raw_lines.back();
  reply.code = (last[0] - '0') * 100 + (last[1] - '0') * 10 + (last[2] - '0');
  for (const std::string& line : raw_lines) {
    text_lines.emplace_back(line.size() > 4 ? line.substr(4) : "");
  }
  reply.text = absl::StrJoin(text_lines, "\n");
  const size_t length = EnhancedCodeLength(text_lines.front(), last[0]);
  if (length > 0) reply.enhanced_code = text_lines.front().substr(0, length);
  return reply;
}

absl::string_view SmtpStageName(SmtpStage stage) {
  static constexpr absl::string_view kNames[] = {
      "connect", "greeting", "EHLO", "STARTTLS", "AUTH", "MAIL FROM", "RCPT TO", "DATA", "QUIT"};
  static_assert(std::size(kNames) == EnumCount(SmtpStage::kQuit), "a name per SmtpStage");
  return EnumName(stage, kNames, "unknown");
}

Diagnosis ClassifySmtpReply(const SmtpReply& reply, SmtpStage stage) {
  const int code = reply.code;
  const std::string& enhanced = reply.enhanced_code;
  if (code == 0) return Classified(fc::FAILURE_CAUSE_UNKNOWN, reply);
  if (code < 400) {
    Diagnosis not_a_failure;
    not_a_failure.set_smtp_code(code);
    SetRawReply(&not_a_failure, reply.raw);
    return not_a_failure;
  }
  // Authentication and authorization of the sender.
  if (code == 535) {
    return Classified(enhanced == "5.7.139" ? fc::FAILURE_CAUSE_SMTP_AUTH_DISABLED
                                            : fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED,
                      reply);
  }
  if (code == 530 &&
      (enhanced == "5.7.57" ||
       (enhanced == "5.7.0" && (stage == SmtpStage::kMailFrom || stage == SmtpStage::kRcptTo)))) {
    return Classified(fc::FAILURE_CAUSE_CLIENT_NOT_AUTHENTICATED, reply);
  }
  if ((code == 550 && enhanced == "5.7.60") ||
      (code == 553 && enhanced == "5.7.1" && stage == SmtpStage::kMailFrom)) {
    return Classified(fc::FAILURE_CAUSE_SEND_AS_DENIED, reply);
  }
  // Limits of the sending mailbox.
  if (code == 432 || enhanced == "4.3.2") {
    return Classified(fc::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT, reply);
  }
  if (code == 554 && enhanced == "5.2.0") {
    return Classified(fc::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED, reply);
  }
  if (code == 554 && enhanced == "5.2.2") {
    return Classified(fc::FAILURE_CAUSE_MAILBOX_FULL, reply);
  }
  // The message and its recipients.
  if (enhanced == "5.3.4" || (code == 552 && stage != SmtpStage::kRcptTo)) {
    return Classified(fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE, reply);
  }
  if (code >= 500 && stage == SmtpStage::kRcptTo) {
    return Classified(fc::FAILURE_CAUSE_RECIPIENT_REJECTED, reply);
  }
  if (code < 500) return Classified(fc::FAILURE_CAUSE_SMTP_TRANSIENT, reply);
  return Classified(fc::FAILURE_CAUSE_SMTP_PERMANENT, reply);
}

DeliveryOutcome OutcomeOf(const Diagnosis& diagnosis) {
  switch (diagnosis.cause()) {
    case fc::FAILURE_CAUSE_UNSPECIFIED:
      return DeliveryOutcome::kDelivered;
    case fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED:
    case fc::FAILURE_CAUSE_GRAPH_TOKEN_REJECTED:
      return DeliveryOutcome::kAuthRejected;
    case fc::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED:
      return DeliveryOutcome::kQuotaExceeded;
    default:
      break;
  }
  // Exchange's high-volume endpoint: "501 5.5.127 ... Token will expire soon".
  for (const std::string& code : diagnosis.codes()) {
    if (code == "5.5.127") return DeliveryOutcome::kAuthRejected;
  }
  return diagnosis.retryable() ? DeliveryOutcome::kTransient : DeliveryOutcome::kPermanent;
}

absl::string_view DeliveryOutcomeName(DeliveryOutcome outcome) {
  static constexpr absl::string_view kNames[] = {"delivered", "transient", "permanent",
                                                 "auth-rejected", "quota-exceeded"};
  static_assert(std::size(kNames) == EnumCount(DeliveryOutcome::kQuotaExceeded),
                "a name per DeliveryOutcome");
  return EnumName(outcome, kNames, "unknown");
}

}  // namespace mailroom
