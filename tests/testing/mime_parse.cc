#include "tests/testing/mime_parse.h"

#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mailroom::testing {
namespace {

absl::Status Error(absl::string_view what) { return absl::InvalidArgumentError(what); }

bool IsWsp(char c) { return c == ' ' || c == '\t'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Every line break is CRLF.
absl::Status CheckLineEnds(absl::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) {
      return Error(absl::StrCat("bare CR at byte ", i));
    }
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) {
      return Error(absl::StrCat("bare LF at byte ", i));
    }
  }
  return absl::OkStatus();
}

bool IsCompleteUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t length = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (length == 0 || i + length > s.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

// One encoded-word "=?charset?E?text?=" (LooksEncoded), decoded.
absl::StatusOr<std::string> DecodeEncodedWord(absl::string_view word) {
  if (word.size() > 75) return Error(absl::StrCat("encoded-word over 75 characters: ", word));
  const std::vector<absl::string_view> pieces =
      absl::StrSplit(word.substr(2, word.size() - 4), '?');
  if (pieces.size() != 3) return Error(absl::StrCat("malformed encoded-word: ", word));
  if (!absl::EqualsIgnoreCase(pieces[0], "utf-8")) {
    return Error(absl::StrCat("charset is not UTF-8: ", word));
  }
  std::string decoded;
  if (absl::EqualsIgnoreCase(pieces[1], "B")) {
    if (pieces[2].size() % 4 != 0 || !absl::Base64Unescape(pieces[2], &decoded)) {
      return Error(absl::StrCat("bad base64 in encoded-word: ", word));
    }
  } else if (absl::EqualsIgnoreCase(pieces[1], "Q")) {
    const absl::string_view text = pieces[2];
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (c == '_') {
        decoded += ' ';
      } else if (c == '=') {
        if (i + 2 >= text.size()) {
          return Error(absl::StrCat("truncated escape in encoded-word: ", word));
        }
        const int high = HexValue(text[i + 1]);
        const int low = HexValue(text[i + 2]);
        if (high < 0 || low < 0) return Error(absl::StrCat("bad escape in encoded-word: ", word));
        decoded += static_cast<char>(high * 16 + low);
        i += 2;
      } else if (c > 0x20 && c < 0x7f && c != '?') {
        decoded += c;
      } else {
        return Error(absl::StrCat("bad character in Q encoded-word: ", word));
      }
    }
  } else {
    return Error(absl::StrCat("unknown encoding in encoded-word: ", word));
  }
  if (!IsCompleteUtf8(decoded)) {
    return Error(absl::StrCat("encoded-word holds a partial UTF-8 character: ", word));
  }
  return decoded;
}

bool LooksEncoded(absl::string_view word) {
  return word.size() >= 8 && absl::StartsWith(word, "=?") && absl::EndsWith(word, "?=");
}

absl::Status ParseContentType(absl::string_view value, MimeEntity* entity) {
  const size_t semicolon = value.find(';');
  entity->content_type =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(value.substr(0, semicolon)));
  if (!absl::StrContains(entity->content_type, '/')) {
    return Error(absl::StrCat("bad Content-Type: ", value));
  }
  if (semicolon == absl::string_view::npos) return absl::OkStatus();
  absl::string_view rest = value.substr(semicolon + 1);
  while (true) {
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (rest.empty()) break;
    const size_t equals = rest.find('=');
    if (equals == absl::string_view::npos) return Error(absl::StrCat("bad parameter: ", rest));
    const std::string name =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(rest.substr(0, equals)));
    rest = absl::StripLeadingAsciiWhitespace(rest.substr(equals + 1));
    std::string param;
    if (!rest.empty() && rest.front() == '"') {
      size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\') ++i;
        param += rest[i];
      }
      if (i >= rest.size()) return Error(absl::StrCat("unterminated quoted parameter: ", value));
      rest = rest.substr(i + 1);
    } else {
      const size_t end = rest.find_first_of("; \t");
      param = std::string(rest.substr(0, end));
      rest = end == absl::string_view::npos ? "" : rest.substr(end);
    }
    entity->params[name] = param;
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (!rest.empty()) {
      if (rest.front() != ';') return Error(absl::StrCat("bad parameters: ", value));
      rest.remove_prefix(1);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MimeEntity> ParseEntity(absl::string_view text);

absl::Status SplitMultipart(MimeEntity* entity) {
  const auto found = entity->params.find("boundary");
  if (found == entity->params.end() || found->second.empty()) {
    return Error("multipart without a boundary");
  }
  const std::string delimiter = absl::StrCat("--", found->second);
  const absl::string_view body = entity->raw_body;
  // The delimiter counts only at the start of a line and followed by "--", whitespace or
  // CRLF (RFC 2046 5.1.1).
  const auto find_delimiter = [&](size_t from) -> size_t {
    while (true) {
      size_t at = body.find(delimiter, from);
      if (at == absl::string_view::npos) return at;
      const bool line_start = at == 0 || (at >= 2 && body.substr(at - 2, 2) == "\r\n");
      const absl::string_view after = body.substr(at + delimiter.size());
      const bool ends = absl::StartsWith(after, "--") || absl::StartsWith(after, "\r\n") ||
                        (!after.empty() && IsWsp(after.front()));
      if (line_start && ends) return at;
      from = at + 1;
    }
  };
  size_t at = find_delimiter(0);
  if (at == absl::string_view::npos) return Error("no boundary delimiter in multipart body");
  while (true) {
    size_t after = at + delimiter.size();
    if (body.substr(after, 2) == "--") return absl::OkStatus();  // close delimiter
    while (after < body.size() && IsWsp(body[after])) ++after;
    if (body.substr(after, 2) != "\r\n") return Error("junk after a boundary delimiter");
    const size_t start = after + 2;
    const size_t next = find_delimiter(start);
    if (next == absl::string_view::npos) return Error("multipart body without a close delimiter");
    // The CRLF before the delimiter belongs to it; a part right after its delimiter has
    // none (an empty part).
    const size_t end = next >= start + 2 ? next - 2 : start;
    absl::StatusOr<MimeEntity> part = ParseEntity(body.substr(start, end - start));
    if (!part.ok()) return part.status();
    entity->parts.push_back(*std::move(part));
    at = next;
  }
}

absl::StatusOr<MimeEntity> ParseEntity(absl::string_view text) {
  MimeEntity entity;
  absl::string_view header_block;
  if (absl::StartsWith(text, "\r\n")) {
    entity.raw_body = std::string(text.substr(2));
  } else {
    const size_t end = text.find("\r\n\r\n");
    if (end == absl::string_view::npos) return Error("no blank line after the headers");
    header_block = text.substr(0, end);
    entity.raw_body = std::string(text.substr(end + 4));
  }
  for (absl::string_view line : absl::StrSplit(header_block, "\r\n", absl::SkipEmpty())) {
    if (line.size() > 998) return Error("header line over 998 characters");
    if (IsWsp(line.front())) {
      if (entity.headers.empty()) return Error("continuation line before any header");
      if (absl::StripAsciiWhitespace(line).empty()) return Error("blank continuation line");
      entity.headers.back().value += std::string(line);
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return Error(absl::StrCat("not a header line: ", line));
    }
    for (const char c : line.substr(0, colon)) {
      if (c < 33 || c > 126) return Error(absl::StrCat("bad header name: ", line));
    }
    entity.headers.push_back(
        {std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
  }
  for (MimeHeader& header : entity.headers) {
    header.value = std::string(absl::StripLeadingAsciiWhitespace(header.value));
  }

  entity.content_type = "text/plain";
  if (entity.HeaderCount("Content-Type") > 0) {
    if (absl::Status status = ParseContentType(entity.Header("Content-Type"), &entity);
        !status.ok()) {
      return status;
    }
  }
  entity.transfer_encoding = "7bit";
  if (entity.HeaderCount("Content-Transfer-Encoding") > 0) {
    entity.transfer_encoding = absl::AsciiStrToLower(
        absl::StripAsciiWhitespace(entity.Header("Content-Transfer-Encoding")));
  }

  if (absl::StartsWith(entity.content_type, "multipart/")) {
    if (absl::Status status = SplitMultipart(&entity); !status.ok()) return status;
    return entity;
  }
  if (entity.transfer_encoding == "quoted-printable") {
    absl::StatusOr<std::string> body = DecodeQuotedPrintable(entity.raw_body);
    if (!body.ok()) return body.status();
    entity.body = *std::move(body);
  } else if (entity.transfer_encoding == "base64") {
    absl::StatusOr<std::string> body = DecodeBase64Lines(entity.raw_body);
    if (!body.ok()) return body.status();
    entity.body = *std::move(body);
  } else if (entity.transfer_encoding == "7bit" || entity.transfer_encoding == "8bit") {
    entity.body = entity.raw_body;
  } else {
    return Error(absl::StrCat("unknown transfer encoding ", entity.transfer_encoding));
  }
  return entity;
}

}  // namespace

std::string MimeEntity::Header(absl::string_view name) const {
  for (const MimeHeader& header : headers) {
    if (absl::EqualsIgnoreCase(header.name, name)) return header.value;
  }
  return "";
}

int MimeEntity::HeaderCount(absl::string_view name) const {
  int count = 0;
  for (const MimeHeader& header : headers) {
    if (absl::EqualsIgnoreCase(header.name, name)) ++count;
  }
  return count;
}

absl::StatusOr<MimeEntity> ParseMime(absl::string_view message) {
  if (absl::Status status = CheckLineEnds(message); !status.ok()) return status;
  for (const char c : message) {
    if (static_cast<unsigned char>(c) >= 0x80) return Error("message is not 7-bit");
  }
  return ParseEntity(message);
}

absl::StatusOr<std::string> DecodeHeaderText(absl::string_view value) {
  std::string out;
  std::string whitespace;
  bool previous_encoded = false;
  size_t i = 0;
  while (i < value.size()) {
    if (IsWsp(value[i])) {
      whitespace += value[i++];
      continue;
    }
    size_t end = i;
    while (end < value.size() && !IsWsp(value[end])) ++end;
    const absl::string_view word = value.substr(i, end - i);
    if (LooksEncoded(word)) {
      absl::StatusOr<std::string> decoded = DecodeEncodedWord(word);
      if (!decoded.ok()) return decoded.status();
      if (!previous_encoded) out += whitespace;
      out += *decoded;
      previous_encoded = true;
    } else {
      absl::StrAppend(&out, whitespace, word);
      previous_encoded = false;
    }
    whitespace.clear();
    i = end;
  }
  out += whitespace;
  return out;
}

absl::StatusOr<std::vector<ParsedMailbox>> ParseAddressList(absl::string_view value) {
  std::vector<std::string> entries(1);
  bool quoted = false;
  bool angle = false;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted && c == '\\' && i + 1 < value.size()) {
      entries.back() += c;
      entries.back() += value[++i];
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '<') angle = true;
    if (!quoted && c == '>') angle = false;
    if (!quoted && !angle && c == ',') {
      entries.emplace_back();
      continue;
    }
    entries.back() += c;
  }
  if (quoted || angle) return Error(absl::StrCat("unbalanced address list: ", value));

  std::vector<ParsedMailbox> mailboxes;
  for (const std::string& entry : entries) {
    const absl::string_view trimmed = absl::StripAsciiWhitespace(entry);
    if (trimmed.empty()) return Error(absl::StrCat("empty entry in address list: ", value));
    ParsedMailbox mailbox;
    const size_t open = trimmed.rfind('<');
    if (open == absl::string_view::npos) {
      mailbox.address = std::string(trimmed);
    } else {
      if (trimmed.back() != '>') return Error(absl::StrCat("bad mailbox: ", trimmed));
      mailbox.address = std::string(trimmed.substr(open + 1, trimmed.size() - open - 2));
      const absl::string_view phrase = absl::StripAsciiWhitespace(trimmed.substr(0, open));
      if (!phrase.empty() && phrase.front() == '"') {
        if (phrase.size() < 2 || phrase.back() != '"') {
          return Error(absl::StrCat("bad quoted display name: ", phrase));
        }
        for (size_t i = 1; i + 1 < phrase.size(); ++i) {
          if (phrase[i] == '\\') ++i;
          mailbox.display_name += phrase[i];
        }
      } else {
        absl::StatusOr<std::string> decoded = DecodeHeaderText(phrase);
        if (!decoded.ok()) return decoded.status();
        mailbox.display_name = *std::move(decoded);
      }
    }
    mailboxes.push_back(std::move(mailbox));
  }
  return mailboxes;
}

absl::StatusOr<std::string> DecodeQuotedPrintable(absl::string_view data) {
  if (absl::Status status = CheckLineEnds(data); !status.ok()) return status;
  std::vector<absl::string_view> lines = absl::StrSplit(data, "\r\n");
  // Text after the last CRLF (normally nothing) is a last line without a line break.
  const bool ends_with_break = lines.back().empty();
  if (ends_with_break) lines.pop_back();
  std::string out;
  for (size_t n = 0; n < lines.size(); ++n) {
    absl::string_view line = lines[n];
    if (line.size() > 76) return Error(absl::StrCat("quoted-printable line over 76: ", line));
    // RFC 2045 6.7 (3): whitespace at the end of an encoded line is not data.
    while (!line.empty() && IsWsp(line.back())) line.remove_suffix(1);
    bool soft_break = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (c == '=') {
        if (i + 1 == line.size()) {
          soft_break = true;
          break;
        }
        if (i + 2 >= line.size()) {
          return Error(absl::StrCat("truncated quoted-printable escape: ", line));
        }
        const int high = HexValue(line[i + 1]);
        const int low = HexValue(line[i + 2]);
        if (high < 0 || low < 0) {
          return Error(absl::StrCat("bad quoted-printable escape: ", line));
        }
        out += static_cast<char>(high * 16 + low);
        i += 2;
      } else if ((c >= 33 && c <= 126) || IsWsp(c)) {
        out += c;
      } else {
        return Error(absl::StrCat("bad character in quoted-printable: ", line));
      }
    }
    if (!soft_break && (n + 1 < lines.size() || ends_with_break)) out += "\r\n";
  }
  return out;
}

absl::StatusOr<std::string> DecodeBase64Lines(absl::string_view data) {
  if (absl::Status status = CheckLineEnds(data); !status.ok()) return status;
  std::string joined;
  for (absl::string_view line : absl::StrSplit(data, "\r\n", absl::SkipEmpty())) {
    if (line.size() > 76) return Error("base64 line over 76 characters");
    for (const char c : line) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') {
        return Error(absl::StrCat("bad base64 character in: ", line));
      }
    }
    joined += std::string(line);
  }
  std::string out;
  if (joined.size() % 4 != 0 || !absl::Base64Unescape(joined, &out)) {
    return Error("bad base64 body");
  }
  return out;
}

}  // namespace mailroom::testing
