// Provides BuildMimeMessage, which turns one notification (MailContent) into the bytes of an
// RFC 5322 / MIME message ready for SMTP DATA, and the envelope and Message-ID helpers that go
// with it. Deterministic: the same content gives the same bytes (the Date comes from the
// caller, the multipart boundary from a hash of the content), so an outbox may rebuild a
// message on every retry. Stateless and thread-safe.
//
// What the output looks like, and why:
//  - 7-bit ASCII throughout with CRLF line endings, so no hop has to downgrade or re-encode it.
//  - Headers: Date (RFC 5322 form, always +0000), From, To, Cc (omitted when empty; Bcc never
//    appears), Message-ID, Subject, MIME-Version, the extra headers in the order given, then
//    Content-Type and Content-Transfer-Encoding. Lines are folded at 78 characters (the only
//    longer lines are an unbreakable address or Message-ID, still far below 998).
//  - Subjects and display names that are not plain printable ASCII (or that contain "=?",
//    leading, trailing or doubled spaces, or a word too long to fold) are written as RFC 2047
//    encoded-words in UTF-8: Q encoding when it is shorter (mostly-ASCII text, e.g. "Grüße"),
//    B otherwise (e.g. Chinese). Each encoded-word is at most 75 characters and holds whole
//    UTF-8 characters only, so a decoder never sees half a character.
//  - ASCII display names made of atoms are written as they are; others ("Smith, John") as a
//    quoted-string.
//  - Addresses are written in their ASCII form (email_address.h: A-label domains).
//  - Bodies are UTF-8 text. A text and an HTML body become multipart/alternative (text first,
//    so clients that cannot show HTML show the text); one body becomes a single part. Line
//    breaks (LF, CRLF or CR) become CRLF and a body always ends with one. Each part is
//    quoted-printable or base64, whichever is shorter for its content (QP for mostly-ASCII
//    text, base64 for e.g. Chinese); encoded lines are at most 76 characters. QP also encodes
//    a '.' or "From " at the start of a line, so that relays which forget dot-stuffing or
//    mangle mbox "From " lines cannot change the body.
//  - The boundary starts with "=_", which neither quoted-printable nor base64 can produce, and
//    carries a hash of the content; its absence from the parts is still verified.
//
// Refused, with INVALID_ARGUMENT "<field>: <reason>":
//  - CR, LF or NUL in any header value (subject, display names, Message-ID, extra headers),
//    which makes header injection impossible; other control characters (but TAB) as well;
//  - text that is not well-formed UTF-8, anywhere;
//  - invalid addresses (from.address, to[i].address, cc[i].address, bcc[i].address);
//  - no recipient at all in to, cc and bcc together; more than max_recipients of them;
//  - NUL in a body; no body at all; a missing date or Message-ID;
//  - extra headers that are not valid field names, or that would duplicate or override a
//    header mailroom writes (From, To, Cc, Bcc, Subject, Date, Message-ID, MIME-Version,
//    Content-*); extra header values are written as unstructured text (encoded-words when
//    not ASCII), so give structured headers in ASCII;
//  - a message larger than max_bytes.
#ifndef MAILROOM_COMMON_MIME_MESSAGE_H_
#define MAILROOM_COMMON_MIME_MESSAGE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/mail/email_address.h"

namespace mailroom {

// One notification as the roles describe it.
struct MailContent {
  MailAddress from;
  std::vector<MailAddress> to;
  std::vector<MailAddress> cc;
  // Envelope recipients only: never written into the message (EnvelopeRecipients).
  std::vector<MailAddress> bcc;
  std::string subject;    // UTF-8
  std::string text_body;  // UTF-8; empty for none
  std::string html_body;  // UTF-8; empty for none
  // "<unique>@<domain>" without the angle brackets (see GenerateMessageId); stable per
  // notification, so that a retried delivery is recognisably the same message.
  std::string message_id;
  // When the notification was made; never read from the clock here. Unset is an error.
  absl::Time date = absl::InfinitePast();
  // Further headers, e.g. {"Auto-Submitted", "auto-generated"},
  // {"X-Mailroom-Notification", "<id>"}: written in order, after MIME-Version.
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

// Exchange Online accepts 150 MiB (EHLO SIZE 157286400); notifications are far smaller, and a
// lower default catches a runaway template before it uses the mailbox's quota.
inline constexpr size_t kDefaultMaxMessageBytes = 25 * 1024 * 1024;
// Exchange Online's recipients-per-message limit.
inline constexpr size_t kDefaultMaxRecipients = 500;

struct MimeOptions {
  // The largest message, in bytes as submitted (headers and encoded bodies).
  size_t max_bytes = kDefaultMaxMessageBytes;
  // The most distinct envelope recipients (to, cc and bcc together).
  size_t max_recipients = kDefaultMaxRecipients;
};

// The message as submitted with SMTP DATA (before dot-stuffing), or INVALID_ARGUMENT naming
// the field at fault (see the top of this file).
absl::StatusOr<std::string> BuildMimeMessage(const MailContent& content,
                                             const MimeOptions& options = MimeOptions());

// The envelope recipients (RCPT TO): to, cc and bcc in that order, in ASCII form
// (AddressForSmtp), each address once. INVALID_ARGUMENT naming the field of an invalid
// address, or "to: at least one recipient is required (to, cc or bcc)".
absl::StatusOr<std::vector<std::string>> EnvelopeRecipients(const MailContent& content);

// The envelope sender (MAIL FROM): from.address in ASCII form.
absl::StatusOr<std::string> EnvelopeSender(const MailContent& content);

// A Message-ID, "<unique_part>@<domain>" (no angle brackets), for MailContent::message_id.
// `unique_part` must be an RFC 5322 dot-atom-text (a notification id or UUID is); `domain`
// is validated and converted like an address's (DomainForSmtp). INVALID_ARGUMENT
// "message_id: ..." otherwise.
absl::StatusOr<std::string> GenerateMessageId(absl::string_view unique_part,
                                              absl::string_view domain);

// OK when `id` is usable as MailContent::message_id: dot-atom-text "@" dot-atom-text, at most
// kMaxMessageIdOctets, no angle brackets.
absl::Status ValidateMessageId(absl::string_view id, absl::string_view field = "message_id");
inline constexpr size_t kMaxMessageIdOctets = 250;

}  // namespace mailroom

#endif  // MAILROOM_COMMON_MIME_MESSAGE_H_
