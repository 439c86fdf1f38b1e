#include "common/mail/smtp_dialogue.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/logging.h"
#include "common/base/redactor.h"

namespace mailroom::smtp_internal {
namespace {

bool IsFinalReplyLine(absl::string_view line) {
  // "250-..." continues a multi-line reply; "250 ..." or "250" ends it. Anything else is not
  // SMTP: treat it as a complete (unparsable) reply.
  return line.size() < 4 || line[3] != '-';
}

SmtpStage StageOfCommand(absl::string_view verb) {
  const std::string upper = absl::AsciiStrToUpper(verb);
  if (upper == "EHLO" || upper == "HELO" || upper == "LHLO") return SmtpStage::kEhlo;
  if (upper == "STARTTLS") return SmtpStage::kStartTls;
  if (upper == "AUTH") return SmtpStage::kAuth;
  if (upper == "MAIL") return SmtpStage::kMailFrom;
  if (upper == "RCPT") return SmtpStage::kRcptTo;
  if (upper == "DATA") return SmtpStage::kData;
  if (upper == "QUIT") return SmtpStage::kQuit;
  return SmtpStage::kConnect;  // NOOP, RSET
}

std::vector<absl::string_view> Lines(absl::string_view data) {
  std::vector<absl::string_view> lines;
  for (absl::string_view line : absl::StrSplit(data, '\n')) {
    line = absl::StripSuffix(line, "\r");
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace

void Recorder::Reset() {
  exchanges_.clear();
  transcript_.clear();
  in_data_ = false;
  data_bytes_ = 0;
  in_proxy_answer_ = false;
  proxy_reply_.clear();
  error_[0] = '\0';
}

void Recorder::OnDebug(curl_infotype type, absl::string_view data) {
  switch (type) {
    case CURLINFO_TEXT:
      for (absl::string_view line : Lines(data)) {
        // The TLS handshake's message-by-message trace says nothing an admin needs.
        if (absl::StartsWith(line, "TLSv")) continue;
        AddLine(absl::StrCat("* ", Redactor::Global().Redact(line)));
      }
      break;
    case CURLINFO_HEADER_IN:
      if (in_proxy_answer_) {
        OnProxyAnswer(data);
        break;
      }
      for (absl::string_view line : Lines(data)) OnServerLine(line);
      break;
    case CURLINFO_HEADER_OUT:
      if (exchanges_.empty() && absl::StartsWith(data, "CONNECT ")) {
        OnProxyRequest(data);
        break;
      }
      for (absl::string_view line : Lines(data)) OnClientLine(line);
      break;
    case CURLINFO_DATA_OUT:
      if (!in_data_) {
        in_data_ = true;
        Exchange exchange;
        exchange.stage = SmtpStage::kData;
        exchange.command = ".";
        exchange.sent = SteadyClock::now();
        exchanges_.push_back(std::move(exchange));
      }
      data_bytes_ += data.size();
      break;
    default:
      break;  // encrypted bytes, and data from the server (none in SMTP submission)
  }
}

void Recorder::AddLine(std::string line) {
  if (transcript_.size() >= kMaxTranscriptLines) {
    if (transcript_.size() == kMaxTranscriptLines)
      transcript_.push_back("* [transcript truncated]");
    return;
  }
  MR_LOG(kTrace, kLogSmtp) << endpoint_name_ << " " << line;
  transcript_.push_back(std::move(line));
}

const Exchange* Recorder::Find(SmtpStage stage, bool last) const {
  const Exchange* found = nullptr;
  for (const Exchange& exchange : exchanges_) {
    if (exchange.stage != stage || !exchange.complete) continue;
    if (!last) return &exchange;
    found = &exchange;
  }
  return found;
}

bool Recorder::AuthSent() const {
  for (const Exchange& exchange : exchanges_) {
    if (exchange.stage == SmtpStage::kAuth &&
        absl::StartsWithIgnoreCase(exchange.command, "AUTH")) {
      return true;
    }
  }
  return false;
}

const Exchange* Recorder::EhloOverTls() const {
  bool tls = false;
  const Exchange* ehlo = nullptr;
  for (const Exchange& exchange : exchanges_) {
    if (exchange.stage == SmtpStage::kStartTls && exchange.reply.code == 220) tls = true;
    if (tls && exchange.stage == SmtpStage::kEhlo && exchange.complete) ehlo = &exchange;
  }
  return ehlo;
}

absl::Duration Recorder::AuthDuration() const {
  const Exchange* first = nullptr;
  const Exchange* last = nullptr;
  for (const Exchange& exchange : exchanges_) {
    if (exchange.stage != SmtpStage::kAuth || !exchange.complete) continue;
    if (first == nullptr) first = &exchange;
    last = &exchange;
  }
  if (first == nullptr) return absl::ZeroDuration();
  return absl::FromChrono(last->answered - first->sent);
}

const Exchange* Recorder::FailingExchange() const {
  const Exchange* last = nullptr;
  for (const Exchange& exchange : exchanges_) {
    // libcurl ends a failed session with QUIT; its 221 is not what failed.
    if (exchange.complete && exchange.stage != SmtpStage::kQuit) last = &exchange;
  }
  if (last == nullptr || last->reply.code < 400) return nullptr;
  if (last->stage != SmtpStage::kRcptTo) return last;
  const Exchange* first_refusal = nullptr;
  for (const Exchange& exchange : exchanges_) {
    if (exchange.stage != SmtpStage::kRcptTo || !exchange.complete || exchange.reply.code < 400) {
      continue;
    }
    if (first_refusal == nullptr) first_refusal = &exchange;
    if (exchange.reply.code < 500) return &exchange;
  }
  return first_refusal;
}

void Recorder::FlushDataNote() {
  if (data_bytes_ == 0) return;
  AddLine(absl::StrCat("C: [", data_bytes_, " bytes of message data]"));
  data_bytes_ = 0;
}

void Recorder::OnClientLine(absl::string_view line) {
  if (in_data_) {
    if (line == ".") return;  // the data's terminator, if libcurl reports it
    FlushDataNote();
    in_data_ = false;  // the data got no reply (e.g. QUIT after a timeout)
  }
  const bool sasl_response = !exchanges_.empty() && exchanges_.back().complete &&
                             exchanges_.back().stage == SmtpStage::kAuth &&
                             exchanges_.back().reply.code == 334;
  Exchange exchange;
  exchange.sent = SteadyClock::now();
  if (sasl_response) {
    exchange.stage = SmtpStage::kAuth;
    exchange.command = line == "*" ? std::string("*") : std::string(kRedacted);
  } else {
    std::vector<absl::string_view> words = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    exchange.stage = StageOfCommand(words[0]);
    if (exchange.stage == SmtpStage::kAuth && words.size() > 2) {
      // "AUTH XOAUTH2 <base64 of user=...\x01auth=Bearer <token>\x01\x01>"
      exchange.command = absl::StrCat(words[0], " ", words[1], " ", kRedacted);
    } else {
      exchange.command = Redactor::Global().Redact(line);
    }
  }
  AddLine(absl::StrCat("C: ", exchange.command));
  exchanges_.push_back(std::move(exchange));
}

void Recorder::OnProxyRequest(absl::string_view data) {
  for (absl::string_view line : Lines(data)) {
    // Basic credentials are only base64: never shown, whoever registered them.
    if (absl::StartsWithIgnoreCase(line, "Proxy-Authorization:")) {
      AddLine(absl::StrCat("C: Proxy-Authorization: ", kRedacted));
    } else {
      AddLine(absl::StrCat("C: ", Redactor::Global().Redact(line)));
    }
  }
  in_proxy_answer_ = true;
  proxy_reply_.clear();
}

void Recorder::OnProxyAnswer(absl::string_view data) {
  const absl::string_view line = absl::StripTrailingAsciiWhitespace(data);
  if (line.empty()) {  // the end of the proxy's answer: what follows is the SMTP server's
    in_proxy_answer_ = false;
    return;
  }
  if (proxy_reply_.empty()) proxy_reply_ = std::string(line);
  AddLine(absl::StrCat("S: ", Redactor::Global().Redact(line)));
}

void Recorder::OnServerLine(absl::string_view line) {
  if (in_data_) FlushDataNote();
  AddLine(absl::StrCat("S: ", Redactor::Global().Redact(line)));
  if (exchanges_.empty() || exchanges_.back().complete) {
    // Unprompted: the greeting, or a line after a complete reply.
    Exchange exchange;
    exchange.stage = exchanges_.empty() ? SmtpStage::kGreeting : exchanges_.back().stage;
    exchange.sent = SteadyClock::now();
    exchanges_.push_back(std::move(exchange));
  }
  Exchange& exchange = exchanges_.back();
  absl::StrAppend(&exchange.reply_lines, line, "\n");
  if (IsFinalReplyLine(line)) {
    exchange.complete = true;
    exchange.answered = SteadyClock::now();
    exchange.reply = ParseSmtpReply(exchange.reply_lines);
    if (exchange.command == ".") in_data_ = false;
  }
}

}  // namespace mailroom::smtp_internal
