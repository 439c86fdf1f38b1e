// Provides the validation of mail addresses before they reach a message or an SMTP envelope:
// RFC 5321 Mailbox syntax, with internationalized domains converted to A-labels (IDNA2008
// with UTS #46 non-transitional mapping, through libidn2), so that every address mailroom
// writes is plain ASCII. Errors are INVALID_ARGUMENT and start with the caller's field name
// ("to[2].address: invalid domain label \"-x\": ..."), so an admin or a portal can tell which
// input is wrong. The UTF-8 check and error-message quoting it uses come from
// common/base/utf8.h (included here for its callers). Stateless and thread-safe.
//
// What is accepted, and why:
//  - Local part: a dot-atom ("first.last+tag") or a quoted string ("\"john smith\""), at most
//    64 octets as written. Not empty, not even as "" (RFC 5321 allows it; no mailbox host
//    hands such addresses out, and Exchange refuses them).
//  - Local parts outside ASCII (RFC 6531, SMTPUTF8) are refused with a message that says so:
//    such an address can only be delivered if every hop supports SMTPUTF8 and the message
//    headers are sent as raw UTF-8 (message/global), while mailroom writes 7-bit headers with
//    RFC 2047 encoded-words, which cannot carry an address.
//  - Domain: LDH labels of 1..63 octets not starting or ending with '-', at least two labels,
//    at most 255 octets, the last label not all digits (an IP address must be written as an
//    address literal); all measured on the A-label form. UTF-8 labels are mapped (lower case,
//    NFC, the ideographic full stop as a dot) and converted to A-labels; "xn--" labels must
//    be valid A-labels. The domain is returned in lower case (domains are case-insensitive,
//    and one spelling keeps envelope de-duplication simple); the local part keeps its case.
//  - Address literals: "[192.0.2.1]" and "[IPv6:2001:db8::1]".
//  - The whole address at most 254 octets (RFC 5321's 256-octet path minus the brackets).
//  - Bare addr-specs only: "Name <a@b>" is refused with a hint, as are surrounding spaces.
#ifndef MAILROOM_COMMON_EMAIL_ADDRESS_H_
#define MAILROOM_COMMON_EMAIL_ADDRESS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
// FindInvalidUtf8 and QuoteForError, which callers of this header have always used.
#include "common/base/utf8.h"

namespace mailroom {

// One mailbox of a message: From, To, Cc or Bcc.
struct MailAddress {
  // The bare addr-spec, without angle brackets: "guest@example.com", "guest@bücher.example".
  std::string address;
  // UTF-8, shown by mail clients beside the address; empty for none. Written RFC 2047-encoded
  // when it is not plain ASCII (common/mail/mime_message.h).
  std::string display_name;
};

inline constexpr size_t kMaxLocalPartOctets = 64;
inline constexpr size_t kMaxDomainOctets = 255;
inline constexpr size_t kMaxDomainLabelOctets = 63;
inline constexpr size_t kMaxAddressOctets = 254;

// The address as it goes into an SMTP envelope and into message headers: ASCII, the domain
// in lower case with A-labels ("guest@xn--bcher-kva.example" for "guest@Bücher.example").
// INVALID_ARGUMENT "<field>: <reason>" when `address` is not a valid mailbox.
absl::StatusOr<std::string> AddressForSmtp(absl::string_view address, absl::string_view field);

// OK when AddressForSmtp would succeed; otherwise its error.
absl::Status ValidateEmailAddress(absl::string_view address, absl::string_view field);

// A domain on its own (the right-hand side of an address, a Message-ID's domain, an EHLO
// name), validated and converted as AddressForSmtp does; address literals are not accepted.
absl::StatusOr<std::string> DomainForSmtp(absl::string_view domain, absl::string_view field);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_EMAIL_ADDRESS_H_
