#include "common/mail/mime_message.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace mailroom {
namespace {

constexpr size_t kMaxHeaderLine = 78;        // RFC 5322 2.1.1: SHOULD
constexpr size_t kMaxHardLine = 998;         // RFC 5322 2.1.1: MUST
constexpr size_t kMaxEncodedWord = 75;       // RFC 2047 2
constexpr size_t kEncodedWordOverhead = 12;  // "=?UTF-8?B?" and "?="
// Below this much room a line cannot take an encoded-word holding even one 4-byte character
// in Q encoding (three "=XX" each), so a new line is started instead.
constexpr size_t kMinEncodedWordRoom = kEncodedWordOverhead + 12;
constexpr size_t kMaxBodyLine = 76;  // RFC 2045 6.7 and 6.8
constexpr size_t kMaxFieldNameOctets = 76;

absl::Status Invalid(absl::string_view field, absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", detail));
}

// Any header value: the injection checks first, so that their message is the one reported.
absl::Status CheckHeaderText(absl::string_view value, absl::string_view field) {
  if (value.find_first_of("\r\n") != absl::string_view::npos) {
    return Invalid(field, "contains CR or LF");
  }
  if (value.find('\0') != absl::string_view::npos) return Invalid(field, "contains NUL");
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      return Invalid(field, absl::StrFormat("contains control character 0x%02X", u));
    }
  }
  if (const size_t bad = FindInvalidUtf8(value); bad != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("is not valid UTF-8 (byte ", bad, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckBody(absl::string_view body, absl::string_view field) {
  if (body.find('\0') != absl::string_view::npos) return Invalid(field, "contains NUL");
  if (const size_t bad = FindInvalidUtf8(body); bad != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("is not valid UTF-8 (byte ", bad, ")"));
  }
  return absl::OkStatus();
}

bool IsAtext(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         (c != '\0' && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

// RFC 5322 dot-atom-text.
bool IsDotAtomText(absl::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.' || absl::StrContains(text, "..")) {
    return false;
  }
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '.' || IsAtext(c); });
}

bool IsPrintableAscii(absl::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

size_t MaxLineLength(absl::string_view text) {
  size_t longest = 0;
  for (absl::string_view line : absl::StrSplit(text, "\r\n")) {
    longest = std::max(longest, line.size());
  }
  return longest;
}

// Writes one header field, folding before a token that would take a line past 78 characters.
// Folding only ever inserts CRLF before a space, so unfolding gives back the value exactly.
class HeaderWriter {
 public:
  HeaderWriter(std::string* out, absl::string_view name) : out_(out) {
    absl::StrAppend(out_, name, ":");
    line_length_ = name.size() + 1;
  }

  // Characters available for a token after a space on the current line.
  size_t Room() const {
    return line_length_ + 1 >= kMaxHeaderLine ? 0 : kMaxHeaderLine - line_length_ - 1;
  }

  // Continues on a new line (so the next token starts after its leading space).
  void Fold() {
    *out_ += "\r\n";
    line_length_ = 0;
    tokens_on_line_ = 0;
  }

  // Appends " " and `token`, on a new line if it does not fit on this one. A line holds at
  // least one token, so a token longer than a line makes a long line rather than a line of
  // whitespace. Empty tokens (doubled spaces) never fold: a folded line may not be blank.
  void Add(absl::string_view token) {
    if (tokens_on_line_ > 0 && !token.empty() && token.size() > Room()) Fold();
    absl::StrAppend(out_, " ", token);
    line_length_ += 1 + token.size();
    if (!token.empty()) ++tokens_on_line_;
  }

  void Finish() { *out_ += "\r\n"; }

 private:
  std::string* out_;
  size_t line_length_ = 0;
  int tokens_on_line_ = 0;
};

// RFC 2047 5(3): the characters that may stand for themselves in a Q-encoded word anywhere,
// phrases included.
bool IsQLiteral(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/';
}

size_t QCost(unsigned char c) { return IsQLiteral(c) || c == ' ' ? 1 : 3; }

size_t BCost(size_t octets) { return (octets + 2) / 3 * 4; }

// The octets of the UTF-8 character that starts with `lead` (the text is known to be valid).
size_t Utf8CharLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  return 4;
}

std::string QEncode(absl::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (IsQLiteral(u)) {
      out += c;
    } else if (c == ' ') {
      out += '_';
    } else {
      absl::StrAppendFormat(&out, "=%02X", u);
    }
  }
  return out;
}

// Appends `text` (valid UTF-8) as encoded-words, each as long as the room left on its line
// allows (at most 75 characters) and holding whole characters only. Whitespace between
// adjacent encoded-words is not part of the text (RFC 2047 6.2), so the split points are free.
void AddEncodedWords(absl::string_view text, HeaderWriter* writer) {
  size_t q_cost = 0;
  for (const char c : text) q_cost += QCost(static_cast<unsigned char>(c));
  const bool use_q = q_cost <= BCost(text.size());
  const absl::string_view prefix = use_q ? "=?UTF-8?Q?" : "=?UTF-8?B?";

  size_t pos = 0;
  while (pos < text.size()) {
    if (writer->Room() < kMinEncodedWordRoom) writer->Fold();
    const size_t capacity = std::min(writer->Room(), kMaxEncodedWord) - kEncodedWordOverhead;
    size_t end = pos;
    size_t cost = 0;
    while (end < text.size()) {
      const size_t length = Utf8CharLength(static_cast<unsigned char>(text[end]));
      size_t next_cost;
      if (use_q) {
        next_cost = cost;
        for (size_t k = 0; k < length; ++k) {
          next_cost += QCost(static_cast<unsigned char>(text[end + k]));
        }
      } else {
        next_cost = BCost(end + length - pos);
      }
      if (next_cost > capacity) break;
      end += length;
      cost = next_cost;
    }
    const absl::string_view chunk = text.substr(pos, end - pos);
    writer->Add(absl::StrCat(prefix, use_q ? QEncode(chunk) : absl::Base64Escape(chunk), "?="));
    pos = end;
  }
}

// Unstructured text (Subject, extra header values) written as it is: printable ASCII with
// single spaces between words. "=?" would be taken for an encoded-word by a decoder.
bool CanWriteUnstructuredPlainly(absl::string_view text) {
  if (!IsPrintableAscii(text) || absl::StrContains(text, "=?")) return false;
  return text.empty() ||
         (text.front() != ' ' && text.back() != ' ' && !absl::StrContains(text, "  "));
}

void AddPlainWords(absl::string_view text, HeaderWriter* writer) {
  for (absl::string_view word : absl::StrSplit(text, ' ')) writer->Add(word);
}

// The Subject header: plain when it can be folded within 78 characters, encoded otherwise.
void WriteSubject(absl::string_view subject, std::string* out) {
  if (subject.empty()) {
    *out += "Subject:\r\n";
    return;
  }
  if (CanWriteUnstructuredPlainly(subject)) {
    std::string plain;
    HeaderWriter writer(&plain, "Subject");
    AddPlainWords(subject, &writer);
    writer.Finish();
    if (MaxLineLength(plain) <= kMaxHeaderLine) {
      *out += plain;
      return;
    }
  }
  HeaderWriter writer(out, "Subject");
  AddEncodedWords(subject, &writer);
  writer.Finish();
}

// A display name as an RFC 5322 phrase: atoms when it is a few plain words, a quoted-string
// when it is other printable ASCII, encoded-words otherwise (or when a piece would be too long
// to fold).
void AddDisplayName(absl::string_view name, HeaderWriter* writer) {
  const size_t max_token = kMaxHeaderLine - 2;  // a continuation line: space, token, and ','
  if (IsPrintableAscii(name) && !absl::StrContains(name, "=?")) {
    std::vector<absl::string_view> words = absl::StrSplit(name, ' ');
    const bool atoms = std::all_of(words.begin(), words.end(), [&](absl::string_view word) {
      return !word.empty() && word.size() <= max_token &&
             std::all_of(word.begin(), word.end(), IsAtext);
    });
    if (atoms) {
      for (absl::string_view word : words) writer->Add(word);
      return;
    }
    std::string quoted = "\"";
    for (const char c : name) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    quoted += '"';
    if (quoted.size() <= max_token) {
      writer->Add(quoted);
      return;
    }
  }
  AddEncodedWords(name, writer);
}

void WriteAddressList(absl::string_view header, const std::vector<MailAddress>& mailboxes,
                      const std::vector<std::string>& smtp_addresses, std::string* out) {
  HeaderWriter writer(out, header);
  for (size_t i = 0; i < mailboxes.size(); ++i) {
    const absl::string_view separator = i + 1 < mailboxes.size() ? "," : "";
    if (mailboxes[i].display_name.empty()) {
      writer.Add(absl::StrCat(smtp_addresses[i], separator));
    } else {
      AddDisplayName(mailboxes[i].display_name, &writer);
      writer.Add(absl::StrCat("<", smtp_addresses[i], ">", separator));
    }
  }
  writer.Finish();
}

absl::StatusOr<std::string> FormatDate(absl::Time date) {
  if (date == absl::InfinitePast() || date == absl::InfiniteFuture()) {
    return Invalid("date", "not set");
  }
  const absl::CivilSecond when = absl::ToCivilSecond(date, absl::UTCTimeZone());
  if (when.year() < 1900 || when.year() > 9999) {
    return Invalid("date", absl::StrCat("year ", when.year(), " is outside 1900..9999"));
  }
  // Written here rather than with strftime-style formatting, which may follow the locale.
  static constexpr const char* kWeekdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  return absl::StrFormat("%s, %d %s %04d %02d:%02d:%02d +0000",
                         kWeekdays[static_cast<int>(absl::GetWeekday(when))], when.day(),
                         kMonths[when.month() - 1], when.year(), when.hour(), when.minute(),
                         when.second());
}

bool IsReservedHeader(absl::string_view name) {
  static constexpr const char* kReserved[] = {"from",    "to",   "cc",         "bcc",
                                              "subject", "date", "message-id", "mime-version"};
  for (const char* reserved : kReserved) {
    if (absl::EqualsIgnoreCase(name, reserved)) return true;
  }
  return absl::StartsWithIgnoreCase(name, "content-");
}

absl::Status WriteExtraHeader(const std::pair<std::string, std::string>& header, size_t index,
                              std::string* out) {
  const std::string field = absl::StrCat("extra_headers[", index, "]");
  const std::string& name = header.first;
  const std::string& value = header.second;
  if (name.find_first_of("\r\n") != std::string::npos) {
    return Invalid(absl::StrCat(field, ".name"), "contains CR or LF");
  }
  // RFC 5322 ftext: printable ASCII but ':'.
  const bool valid_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return c >= 33 && c <= 126 && c != ':';
  });
  if (!valid_name) {
    return Invalid(absl::StrCat(field, ".name"),
                   absl::StrCat(QuoteForError(name), " is not a header field name"));
  }
  if (name.size() > kMaxFieldNameOctets) {
    return Invalid(absl::StrCat(field, ".name"),
                   absl::StrCat("is ", name.size(), " octets, more than ", kMaxFieldNameOctets));
  }
  if (IsReservedHeader(name)) {
    return Invalid(absl::StrCat(field, ".name"),
                   absl::StrCat(QuoteForError(name),
                                " is written by mailroom and cannot be given as an extra header"));
  }
  const std::string value_field = absl::StrCat(field, ".value");
  if (absl::Status status = CheckHeaderText(value, value_field); !status.ok()) return status;

  std::string written;
  HeaderWriter writer(&written, name);
  // ASCII values go as they are (a structured value, such as a URL, must not be encoded);
  // only a doubled space or a word too long to fold can leave a line over 78 characters.
  if (value.empty()) {
    // "Name:" alone: nothing to add, not even a trailing space.
  } else if (std::all_of(value.begin(), value.end(),
                         [](char c) { return (c >= 0x20 && c <= 0x7e) || c == '\t'; })) {
    AddPlainWords(value, &writer);
  } else {
    AddEncodedWords(value, &writer);
  }
  writer.Finish();
  if (MaxLineLength(written) > kMaxHardLine) {
    return Invalid(value_field, absl::StrCat("has a word too long to fold into a ", kMaxHardLine,
                                             "-character line"));
  }
  *out += written;
  return absl::OkStatus();
}

// The lines of a body without their line breaks (LF, CRLF or CR). Every line is sent with
// CRLF after it, so a body that does not end with a line break gains one.
std::vector<absl::string_view> SplitBodyLines(absl::string_view body) {
  std::vector<absl::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\n' && body[i] != '\r') continue;
    lines.push_back(body.substr(start, i - start));
    if (body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < body.size()) lines.push_back(body.substr(start));
  return lines;
}

// RFC 2045 6.7, lines of at most 76 characters with soft line breaks. Whitespace at the end of
// a line is encoded (transports may strip it), and so are a '.' or "From " starting a line.
std::string EncodeQuotedPrintable(const std::vector<absl::string_view>& lines) {
  std::string out;
  for (const absl::string_view line : lines) {
    size_t column = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      const bool last = i + 1 == line.size();
      const auto literal_at = [&](size_t at_column) {
        if (at_column == 0 && (c == '.' || absl::StartsWith(line.substr(i), "From "))) {
          return false;
        }
        return (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last);
      };
      bool literal = literal_at(column);
      // Unless this is the line's last character, room must remain for the soft break's '='.
      const size_t limit = last ? kMaxBodyLine : kMaxBodyLine - 1;
      if (column + (literal ? 1 : 3) > limit) {
        out += "=\r\n";
        column = 0;
        literal = literal_at(column);
      }
      if (literal) {
        out += static_cast<char>(c);
        column += 1;
      } else {
        absl::StrAppendFormat(&out, "=%02X", c);
        column += 3;
      }
    }
    out += "\r\n";
  }
  return out;
}

std::string EncodeBase64(const std::vector<absl::string_view>& lines) {
  std::string canonical;
  for (const absl::string_view line : lines) absl::StrAppend(&canonical, line, "\r\n");
  const std::string encoded = absl::Base64Escape(canonical);
  std::string out;
  for (size_t pos = 0; pos < encoded.size(); pos += kMaxBodyLine) {
    absl::StrAppend(&out, absl::string_view(encoded).substr(pos, kMaxBodyLine), "\r\n");
  }
  return out;
}

struct EncodedPart {
  std::string headers;  // Content-Type and Content-Transfer-Encoding, each with CRLF
  std::string data;     // the encoded body; ends with CRLF
};

EncodedPart EncodeTextPart(absl::string_view body, absl::string_view subtype) {
  const std::vector<absl::string_view> lines = SplitBodyLines(body);
  std::string quoted_printable = EncodeQuotedPrintable(lines);
  std::string base64 = EncodeBase64(lines);
  const bool use_base64 = base64.size() < quoted_printable.size();
  EncodedPart part;
  part.headers =
      absl::StrCat("Content-Type: text/", subtype, "; charset=utf-8\r\nContent-Transfer-Encoding: ",
                   use_base64 ? "base64" : "quoted-printable", "\r\n");
  part.data = use_base64 ? std::move(base64) : std::move(quoted_printable);
  return part;
}

// FNV-1a: a stable hash (absl::Hash is seeded per process), so a rebuilt message is
// byte-identical.
uint64_t Fnv1a(absl::string_view data, uint64_t hash) {
  for (const char c : data) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string ChooseBoundary(const std::vector<EncodedPart>& parts) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const EncodedPart& part : parts) hash = Fnv1a(part.data, hash);
  for (int attempt = 0;; ++attempt) {
    std::string boundary = absl::StrFormat("=_mailroom_%016x", hash);
    if (attempt > 0) absl::StrAppend(&boundary, "_", attempt);
    const bool absent = std::none_of(parts.begin(), parts.end(), [&](const EncodedPart& part) {
      return absl::StrContains(part.headers, boundary) || absl::StrContains(part.data, boundary);
    });
    if (absent) return boundary;
  }
}

struct CheckedAddresses {
  std::string from;
  std::vector<std::string> to;
  std::vector<std::string> cc;
  std::vector<std::string> envelope;  // to, cc and bcc, each address once
};

absl::StatusOr<std::string> CheckMailbox(const MailAddress& mailbox, absl::string_view field) {
  if (absl::Status status =
          CheckHeaderText(mailbox.display_name, absl::StrCat(field, ".display_name"));
      !status.ok()) {
    return status;
  }
  return AddressForSmtp(mailbox.address, absl::StrCat(field, ".address"));
}

absl::StatusOr<CheckedAddresses> CheckAddresses(const MailContent& content) {
  CheckedAddresses checked;
  absl::StatusOr<std::string> from = CheckMailbox(content.from, "from");
  if (!from.ok()) return from.status();
  checked.from = *std::move(from);

  absl::flat_hash_set<std::string> seen;
  const auto check_list = [&](const std::vector<MailAddress>& list, absl::string_view name,
                              std::vector<std::string>* smtp) -> absl::Status {
    for (size_t i = 0; i < list.size(); ++i) {
      absl::StatusOr<std::string> address = CheckMailbox(list[i], absl::StrCat(name, "[", i, "]"));
      if (!address.ok()) return address.status();
      if (seen.insert(*address).second) checked.envelope.push_back(*address);
      if (smtp != nullptr) smtp->push_back(*std::move(address));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = check_list(content.to, "to", &checked.to); !s.ok()) return s;
  if (absl::Status s = check_list(content.cc, "cc", &checked.cc); !s.ok()) return s;
  if (absl::Status s = check_list(content.bcc, "bcc", nullptr); !s.ok()) return s;
  if (checked.envelope.empty()) {
    return Invalid("to", "at least one recipient is required (to, cc or bcc)");
  }
  return checked;
}

}  // namespace

absl::Status ValidateMessageId(absl::string_view id, absl::string_view field) {
  if (id.empty()) return Invalid(field, "required");
  if (absl::Status status = CheckHeaderText(id, field); !status.ok()) return status;
  if (id.front() == '<' || id.back() == '>') {
    return Invalid(field, "give the Message-ID without angle brackets");
  }
  if (id.size() > kMaxMessageIdOctets) {
    return Invalid(field,
                   absl::StrCat("is ", id.size(), " octets, more than ", kMaxMessageIdOctets));
  }
  const std::vector<absl::string_view> sides = absl::StrSplit(id, '@');
  if (sides.size() != 2 || !IsDotAtomText(sides[0]) || !IsDotAtomText(sides[1])) {
    return Invalid(field, absl::StrCat(QuoteForError(id),
                                       " is not of the form unique@domain (two dot-atoms)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GenerateMessageId(absl::string_view unique_part,
                                              absl::string_view domain) {
  constexpr absl::string_view kField = "message_id";
  if (absl::Status status = CheckHeaderText(unique_part, kField); !status.ok()) return status;
  if (!IsDotAtomText(unique_part)) {
    return Invalid(kField, absl::StrCat("unique part ", QuoteForError(unique_part),
                                        " is not a dot-atom (letters, digits, dots and "
                                        "!#$%&'*+-/=?^_`{|}~)"));
  }
  absl::StatusOr<std::string> ascii_domain = DomainForSmtp(domain, kField);
  if (!ascii_domain.ok()) return ascii_domain.status();
  std::string id = absl::StrCat(unique_part, "@", *ascii_domain);
  if (absl::Status status = ValidateMessageId(id, kField); !status.ok()) return status;
  return id;
}

absl::StatusOr<std::vector<std::string>> EnvelopeRecipients(const MailContent& content) {
  absl::StatusOr<CheckedAddresses> checked = CheckAddresses(content);
  if (!checked.ok()) return checked.status();
  return std::move(checked->envelope);
}

absl::StatusOr<std::string> EnvelopeSender(const MailContent& content) {
  return AddressForSmtp(content.from.address, "from.address");
}

absl::StatusOr<std::string> BuildMimeMessage(const MailContent& content,
                                             const MimeOptions& options) {
  absl::StatusOr<CheckedAddresses> addresses = CheckAddresses(content);
  if (!addresses.ok()) return addresses.status();
  if (addresses->envelope.size() > options.max_recipients) {
    return Invalid("to", absl::StrCat(addresses->envelope.size(),
                                      " distinct recipients (to, cc and bcc), more than the "
                                      "limit ",
                                      options.max_recipients));
  }
  if (absl::Status status = CheckHeaderText(content.subject, "subject"); !status.ok()) {
    return status;
  }
  if (absl::Status status = ValidateMessageId(content.message_id); !status.ok()) return status;
  absl::StatusOr<std::string> date = FormatDate(content.date);
  if (!date.ok()) return date.status();
  if (absl::Status status = CheckBody(content.text_body, "text_body"); !status.ok()) {
    return status;
  }
  if (absl::Status status = CheckBody(content.html_body, "html_body"); !status.ok()) {
    return status;
  }
  if (content.text_body.empty() && content.html_body.empty()) {
    return Invalid("text_body", "no body: give a text body, an HTML body or both");
  }
  // Encoding only makes a body larger: refuse an obviously oversized one before encoding it.
  const size_t raw_body_bytes = content.text_body.size() + content.html_body.size();
  if (raw_body_bytes > options.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("message bodies alone are ", raw_body_bytes,
                                                   " bytes, more than the limit ",
                                                   options.max_bytes));
  }

  std::string message;
  absl::StrAppend(&message, "Date: ", *date, "\r\n");
  WriteAddressList("From", {content.from}, {addresses->from}, &message);
  if (!content.to.empty()) WriteAddressList("To", content.to, addresses->to, &message);
  if (!content.cc.empty()) WriteAddressList("Cc", content.cc, addresses->cc, &message);
  {
    HeaderWriter writer(&message, "Message-ID");
    const std::string id = absl::StrCat("<", content.message_id, ">");
    if (id.size() > writer.Room()) writer.Fold();
    writer.Add(id);
    writer.Finish();
  }
  WriteSubject(content.subject, &message);
  message += "MIME-Version: 1.0\r\n";
  for (size_t i = 0; i < content.extra_headers.size(); ++i) {
    if (absl::Status status = WriteExtraHeader(content.extra_headers[i], i, &message);
        !status.ok()) {
      return status;
    }
  }

  std::vector<EncodedPart> parts;
  if (!content.text_body.empty()) parts.push_back(EncodeTextPart(content.text_body, "plain"));
  if (!content.html_body.empty()) parts.push_back(EncodeTextPart(content.html_body, "html"));
  if (parts.size() == 1) {
    absl::StrAppend(&message, parts[0].headers, "\r\n", parts[0].data);
  } else {
    const std::string boundary = ChooseBoundary(parts);
    HeaderWriter writer(&message, "Content-Type");
    writer.Add("multipart/alternative;");
    writer.Add(absl::StrCat("boundary=\"", boundary, "\""));
    writer.Finish();
    message += "\r\n";
    // The CRLF before each delimiter belongs to the delimiter (RFC 2046 5.1.1), so every
    // part's data keeps its own final line break.
    for (const EncodedPart& part : parts) {
      absl::StrAppend(&message, "--", boundary, "\r\n", part.headers, "\r\n", part.data, "\r\n");
    }
    absl::StrAppend(&message, "--", boundary, "--\r\n");
  }

  if (message.size() > options.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "message is ", message.size(), " bytes, more than the limit ", options.max_bytes));
  }
  return message;
}

}  // namespace mailroom
