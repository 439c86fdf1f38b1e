// Provides the SMTP client's record of one dialogue (smtp_internal::Recorder): it turns
// libcurl's debug callback into the exchanges of the dialogue (command, reply, timing) and
// the redacted transcript shown to admins, and answers the questions the client asks to
// classify a failure (which exchange failed, was AUTH sent, what did EHLO offer over TLS). A
// proxy's CONNECT exchange, which comes before the SMTP greeting, is kept in the transcript
// (its Proxy-Authorization header redacted) but is not an SMTP exchange.
// Nothing it stores holds a credential: client lines are redacted as they come, and message
// data is recorded as a byte count only. Internal to common/mail; NOT thread-safe (one per
// SmtpSession).
#ifndef MAILROOM_COMMON_MAIL_SMTP_DIALOGUE_H_
#define MAILROOM_COMMON_MAIL_SMTP_DIALOGUE_H_

#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/mail/smtp_reply.h"

namespace mailroom::smtp_internal {

using SteadyClock = std::chrono::steady_clock;

// Bounds the transcript of one operation (a message with thousands of recipients, or a
// server that talks a lot, must not grow it without limit).
constexpr size_t kMaxTranscriptLines = 2000;

// One command and the reply to it; or the greeting (no command); or the message data and
// the reply after its final "." (command ".").
struct Exchange {
  SmtpStage stage = SmtpStage::kConnect;
  std::string command;  // as sent, redacted
  std::string reply_lines;
  SmtpReply reply;  // parsed once complete
  bool complete = false;
  SteadyClock::time_point sent;
  SteadyClock::time_point answered;
};

class Recorder {
 public:
  explicit Recorder(std::string endpoint_name) : endpoint_name_(std::move(endpoint_name)) {}

  // Forgets the previous operation.
  void Reset();

  // Feeds one libcurl debug callback (CURLOPT_DEBUGFUNCTION).
  void OnDebug(curl_infotype type, absl::string_view data);

  // Adds a line that did not come from libcurl (e.g. a heading), as is.
  void AddLine(std::string line);

  const std::vector<Exchange>& exchanges() const { return exchanges_; }
  const std::vector<std::string>& transcript() const { return transcript_; }
  // For CURLOPT_ERRORBUFFER.
  char* error_buffer() { return error_; }
  std::string error() const { return std::string(error_); }

  // The first complete reply of `stage`, or the last one.
  const Exchange* Find(SmtpStage stage, bool last) const;
  // Whether an AUTH command was sent.
  bool AuthSent() const;
  // The reply to the EHLO sent after a successful STARTTLS, if any.
  const Exchange* EhloOverTls() const;
  // From the AUTH command to the final reply of the exchange; zero if there was none.
  absl::Duration AuthDuration() const;
  // The proxy's answer to CONNECT ("HTTP/1.1 200 Connection established"); empty if none.
  const std::string& proxy_reply() const { return proxy_reply_; }
  // The exchange whose error reply (4xx/5xx) ended the operation, if that is how it ended.
  // When every RCPT TO was refused, the first refusal that may succeed later is preferred
  // (so the message is retried), else the first refusal.
  const Exchange* FailingExchange() const;

 private:
  // The message itself is never recorded: it may carry a guest's password.
  void FlushDataNote();
  void OnClientLine(absl::string_view line);
  void OnServerLine(absl::string_view line);
  // The proxy's part: libcurl's CONNECT request (one chunk), then its answer line by line up
  // to the empty line that ends it.
  void OnProxyRequest(absl::string_view data);
  void OnProxyAnswer(absl::string_view data);

  const std::string endpoint_name_;
  std::vector<Exchange> exchanges_;
  std::vector<std::string> transcript_;
  bool in_data_ = false;
  size_t data_bytes_ = 0;
  bool in_proxy_answer_ = false;
  std::string proxy_reply_;
  char error_[CURL_ERROR_SIZE] = {0};
};

}  // namespace mailroom::smtp_internal

#endif  // MAILROOM_COMMON_MAIL_SMTP_DIALOGUE_H_
