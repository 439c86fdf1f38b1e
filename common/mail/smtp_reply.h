// Provides the parsing and classification of SMTP replies: SmtpReply (the basic code, the
// RFC 3463 enhanced status code and the text, as the server sent them), ClassifySmtpReply
// (a reply, and the command it answered, to the Diagnosis an admin sees), and OutcomeOf (a
// Diagnosis to what the outbox does next). Classification branches on the reply code, the
// enhanced status code and the stage, never on the reply text (Exchange's texts change, and a
// text may mention codes that are not its own). Stateless and thread-safe.
#ifndef MAILROOM_COMMON_SMTP_REPLY_H_
#define MAILROOM_COMMON_SMTP_REPLY_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/base/diagnosis.h"

namespace mailroom {

// One SMTP reply, single- or multi-line.
struct SmtpReply {
  // The basic reply code (e.g. 535); 0 if the lines did not all start with a three-digit
  // reply code (first digit 1 to 5, RFC 5321 4.2).
  int code = 0;
  // The enhanced status code of the first line (e.g. "5.7.139"), if it has one whose class
  // matches the reply code's; empty otherwise.
  std::string enhanced_code;
  // The text of every line without its "535-" / "535 " prefix, joined by "\n", e.g.
  // "5.7.3 Authentication unsuccessful [SN4PR0601CA0001.namprd06.prod.outlook.com]".
  std::string text;
  // Every line as received (codes included, CR/LF removed), joined by "\n": what an admin is
  // shown as the server's reply.
  std::string raw;
};

// Parses one reply: its lines separated by "\r\n" or "\n" (a trailing line break is allowed;
// every CR at a line's end is dropped). ParseSmtpReply(reply.raw) gives `reply` again.
// Never fails; unparsable input gives code 0 with the input in `text` and `raw`.
SmtpReply ParseSmtpReply(absl::string_view lines);

// The command a reply answered.
enum class SmtpStage {
  kConnect,   // establishing the session (TCP connect; also the NOOP that ends Connect())
  kGreeting,  // the server's 220 greeting
  kEhlo,      // EHLO / HELO (before or after STARTTLS)
  kStartTls,  // STARTTLS and the TLS handshake
  kAuth,      // AUTH XOAUTH2 and its continuations
  kMailFrom,  // MAIL FROM
  kRcptTo,    // RCPT TO
  kData,      // DATA, and the reply after the message's final "."
  kQuit,      // QUIT
};

// "MAIL FROM", "RCPT TO", ...: for messages.
absl::string_view SmtpStageName(SmtpStage stage);

// Classifies a failure reply (4xx or 5xx) to the command of `stage`:
//   535 with 5.7.139                         SMTP_AUTH_DISABLED
//   other 535                                MAILBOX_AUTH_REJECTED ("Invalid email address")
//   530 with 5.7.57 (or RFC 4954's 530 5.7.0 at MAIL FROM / RCPT TO)
//                                            CLIENT_NOT_AUTHENTICATED
//   550 5.7.60; 553 5.7.1 at MAIL FROM (Postfix's "not owned by user")
//                                            SEND_AS_DENIED
//   432, or 4.3.2                            CONCURRENT_CONNECTION_LIMIT
//   554 5.2.0                                SUBMISSION_QUOTA_EXCEEDED
//   554 5.2.2                                MAILBOX_FULL (the sending mailbox)
//   x.3.4; 552 except at RCPT TO             MESSAGE_TOO_LARGE
//   any other 5xx at RCPT TO                 RECIPIENT_REJECTED
//   any other 4xx (421 included)             SMTP_TRANSIENT
//   any other 5xx                            SMTP_PERMANENT
// The Diagnosis carries smtp_code, the enhanced code in `codes`, the reply lines in
// `raw_reply`, and `retryable`. A reply below 400 is not a failure: the result then has cause
// FAILURE_CAUSE_UNSPECIFIED (and only smtp_code and raw_reply set); code 0 gives UNKNOWN.
Diagnosis ClassifySmtpReply(const SmtpReply& reply, SmtpStage stage);

// What the outbox does with a message after an attempt.
enum class DeliveryOutcome {
  kDelivered,      // accepted by the server (the Diagnosis has no cause)
  kTransient,      // retry later with backoff
  kPermanent,      // give up (FAILED) until an admin changes something
  kAuthRejected,   // 535 after a token: drop the token, fetch a new one, retry once
  kQuotaExceeded,  // 554 5.2.0: pause the mailbox until its daily window rolls over
};

// The outcome a Diagnosis calls for: no cause → kDelivered; MAILBOX_AUTH_REJECTED (and
// Graph's 401, GRAPH_TOKEN_REJECTED), and
// Exchange's 5.5.127 ("token will expire soon"), → kAuthRejected; SUBMISSION_QUOTA_EXCEEDED
// → kQuotaExceeded; otherwise kTransient when retryable, else kPermanent.
DeliveryOutcome OutcomeOf(const Diagnosis& diagnosis);

// "delivered", "transient", ...: for logs.
absl::string_view DeliveryOutcomeName(DeliveryOutcome outcome);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_SMTP_REPLY_H_
