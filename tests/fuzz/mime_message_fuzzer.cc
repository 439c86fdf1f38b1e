// Provides the fuzz target of MIME building from request fields (common/mail/mime_message.h).
// The input is the fields a portal or a role sends, separated by the byte 0x1F:
//   from address, from name, to address, to name, cc address, bcc address, subject,
//   text body, html body, Message-ID, extra header name, extra header value
// (missing fields are empty; an empty address adds no mailbox). Checks that a built message
// is 7-bit CRLF text within RFC 5322's line limit and the size limit, is the same when built
// again, and reads back (with the independent reader tests/testing/mime_parse.h) to the same
// subject, display names, addresses and bodies; and that a refusal is INVALID_ARGUMENT with a
// message that is safe to show.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/utf8.h"
#include "common/mail/email_address.h"
#include "common/mail/mime_message.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/testing/mime_parse.h"

namespace mailroom {
namespace {

namespace mt = ::mailroom::testing;

// A body as the message carries it: every line break CRLF, and one at the end.
std::string Canonical(absl::string_view body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r' || body[i] == '\n') {
      out += "\r\n";
      if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
    } else {
      out += body[i];
    }
  }
  if (!absl::EndsWith(out, "\r\n")) out += "\r\n";
  return out;
}

void CheckShape(const std::string& message, const MimeOptions& options,
                const std::string& what) {
  FUZZ_CHECK(message.size() <= options.max_bytes, what);
  size_t line_start = 0;
  for (size_t i = 0; i < message.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(message[i]);
    FUZZ_CHECK(c != 0 && c < 0x80, absl::StrCat(what, ": byte ", c, " at ", i));
    if (c == '\r') FUZZ_CHECK(i + 1 < message.size() && message[i + 1] == '\n', what);
    if (c == '\n') {
      FUZZ_CHECK(i > 0 && message[i - 1] == '\r', absl::StrCat(what, ": bare LF at ", i));
      FUZZ_CHECK(i - 1 - line_start <= 998, absl::StrCat(what, ": a line over 998 at ", i));
      line_start = i + 1;
    }
  }
  FUZZ_CHECK(absl::EndsWith(message, "\r\n"), what);
}

void CheckReadBack(const MailContent& content, const std::string& message,
                   const std::string& what) {
  const absl::StatusOr<mt::MimeEntity> parsed = mt::ParseMime(message);
  FUZZ_CHECK(parsed.ok(), absl::StrCat(what, ": does not read back: ", parsed.status().ToString(),
                                       "\n", message.substr(0, 2000)));
  const absl::StatusOr<std::string> subject = mt::DecodeHeaderText(parsed->Header("Subject"));
  FUZZ_CHECK(subject.ok() && *subject == content.subject,
             absl::StrCat(what, ": subject ", parsed->Header("Subject"), " reads back as ",
                          subject.ok() ? QuoteForError(*subject, 300) : subject.status().ToString()));
  FUZZ_CHECK(parsed->HeaderCount("Bcc") == 0, what);
  const absl::StatusOr<std::vector<mt::ParsedMailbox>> from =
      mt::ParseAddressList(parsed->Header("From"));
  FUZZ_CHECK(from.ok() && from->size() == 1 && from->front().display_name == content.from.display_name,
             absl::StrCat(what, ": From ", parsed->Header("From")));
  FUZZ_CHECK(from->front().address == *AddressForSmtp(content.from.address, "from"),
             absl::StrCat(what, ": From ", parsed->Header("From")));
  if (!content.to.empty()) {
    const absl::StatusOr<std::vector<mt::ParsedMailbox>> to =
        mt::ParseAddressList(parsed->Header("To"));
    FUZZ_CHECK(to.ok() && to->size() == 1 && to->front().display_name == content.to[0].display_name,
               absl::StrCat(what, ": To ", parsed->Header("To")));
  }
  std::string text;
  std::string html;
  if (!parsed->parts.empty()) {
    FUZZ_CHECK(parsed->parts.size() == 2, what);
    text = parsed->parts[0].body;
    html = parsed->parts[1].body;
  } else if (!content.text_body.empty()) {
    text = parsed->body;
  } else {
    html = parsed->body;
  }
  if (!content.text_body.empty()) FUZZ_CHECK(text == Canonical(content.text_body), what);
  if (!content.html_body.empty()) FUZZ_CHECK(html == Canonical(content.html_body), what);
}

}  // namespace
}  // namespace mailroom

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::mailroom;  // NOLINT(build/namespaces): a fuzz entry point
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields = absl::StrSplit(input, '\x1f');
  fields.resize(12);
  MailContent content;
  content.from = {fields[0], fields[1]};
  if (!fields[2].empty()) content.to.push_back({fields[2], fields[3]});
  if (!fields[4].empty()) content.cc.push_back({fields[4], ""});
  if (!fields[5].empty()) content.bcc.push_back({fields[5], ""});
  content.subject = fields[6];
  content.text_body = fields[7];
  content.html_body = fields[8];
  content.message_id = fields[9];
  content.date = absl::FromUnixSeconds(1717405965);
  if (!fields[10].empty()) content.extra_headers.emplace_back(fields[10], fields[11]);
  MimeOptions options;
  options.max_bytes = 256 * 1024;
  const std::string what = absl::StrCat("input ", QuoteForError(input, 600));

  const absl::StatusOr<std::string> message = BuildMimeMessage(content, options);
  if (!message.ok()) {
    FUZZ_CHECK(message.status().code() == absl::StatusCode::kInvalidArgument,
               absl::StrCat(what, ": ", message.status().ToString()));
    FUZZ_CHECK(fuzz::IsSafeErrorMessage(message.status().message()),
               absl::StrCat(what, ": ", QuoteForError(message.status().message(), 400)));
    return 0;
  }
  CheckShape(*message, options, what);
  const absl::StatusOr<std::string> again = BuildMimeMessage(content, options);
  FUZZ_CHECK(again.ok() && *again == *message, absl::StrCat(what, ": not deterministic"));
  CheckReadBack(content, *message, what);
  const absl::StatusOr<std::vector<std::string>> recipients = EnvelopeRecipients(content);
  FUZZ_CHECK(recipients.ok() && !recipients->empty() && recipients->size() <= 3, what);
  FUZZ_CHECK(EnvelopeSender(content).ok(), what);
  return 0;
}
