// Provides a small, strict MIME reader for tests: it reads back what common/mail/mime_message.cc
// writes, independently of it, so that tests compare decoded values instead of trusting the
// writer's own notion of its output. It unfolds headers, decodes RFC 2047 encoded-words (UTF-8,
// B and Q), splits multipart bodies at their boundary (RFC 2046), and decodes quoted-printable
// and base64. It is stricter than a mail client: bare CR or LF, a blank continuation line, an
// encoded-word over 75 characters or one that splits a UTF-8 character, an encoded body line
// over 76 characters or a bad escape are errors, not things to tolerate. Stateless and
// thread-safe.
#ifndef MAILROOM_TESTS_TESTING_MIME_PARSE_H_
#define MAILROOM_TESTS_TESTING_MIME_PARSE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mailroom::testing {

struct MimeHeader {
  std::string name;
  // Unfolded (each CRLF before a continuation line removed), without the whitespace after
  // the colon; still encoded.
  std::string value;
};

struct MimeEntity {
  std::vector<MimeHeader> headers;
  // "type/subtype" in lower case; "text/plain" when there is no Content-Type.
  std::string content_type;
  // Content-Type parameters, names in lower case, values unquoted.
  std::map<std::string, std::string> params;
  // Content-Transfer-Encoding in lower case; "7bit" when absent.
  std::string transfer_encoding;
  // The body as it appears in the message, and decoded (for a leaf entity).
  std::string raw_body;
  std::string body;
  // The parts of a multipart entity, in order.
  std::vector<MimeEntity> parts;

  // The value of the first header named `name` (case-insensitive); "" when there is none.
  std::string Header(absl::string_view name) const;
  // How many headers are named `name`.
  int HeaderCount(absl::string_view name) const;
};

// Parses a whole message.
absl::StatusOr<MimeEntity> ParseMime(absl::string_view message);

// Decodes an unstructured header value (or a phrase): encoded-words become their text, and
// whitespace between two adjacent encoded-words disappears (RFC 2047 6.2).
absl::StatusOr<std::string> DecodeHeaderText(absl::string_view value);

struct ParsedMailbox {
  std::string display_name;  // decoded or unquoted; "" when there is none
  std::string address;       // the addr-spec
};

// An address list (From, To, Cc) of "name <addr>" and bare "addr" entries.
absl::StatusOr<std::vector<ParsedMailbox>> ParseAddressList(absl::string_view value);

absl::StatusOr<std::string> DecodeQuotedPrintable(absl::string_view data);
absl::StatusOr<std::string> DecodeBase64Lines(absl::string_view data);

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_MIME_PARSE_H_
