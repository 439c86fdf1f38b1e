#include "common/base/utf8.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace mailroom {
namespace {

// Appends the escape that C-style error quoting and JSON write alike for `c` (a quote, a
// backslash, CR, LF or tab); returns false, appending nothing, for any other character.
bool AppendCommonEscape(char c, std::string* out) {
  switch (c) {
    case '"':
      *out += "\\\"";
      return true;
    case '\\':
      *out += "\\\\";
      return true;
    case '\r':
      *out += "\\r";
      return true;
    case '\n':
      *out += "\\n";
      return true;
    case '\t':
      *out += "\\t";
      return true;
    default:
      return false;
  }
}

}  // namespace

size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return 1;
  size_t length;
  unsigned char low = 0x80;
  unsigned char high = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    length = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    length = 3;
    if (c == 0xe0) low = 0xa0;   // overlong
    if (c == 0xed) high = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    length = 4;
    if (c == 0xf0) low = 0x90;   // overlong
    if (c == 0xf4) high = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - i < length) return 0;
  const auto second = static_cast<unsigned char>(text[i + 1]);
  if (second < low || second > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return 0;
  }
  return length;
}

size_t FindInvalidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return i;
    i += length;
  }
  return absl::string_view::npos;
}

uint32_t NextCodePoint(absl::string_view text, size_t* i) {
  const auto b = static_cast<unsigned char>(text[*i]);
  const size_t length = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  uint32_t cp = length == 1 ? b : length == 2 ? (b & 0x1F) : length == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < length && *i + k < text.size(); ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(text[*i + k]) & 0x3F);
  }
  *i += length;
  return cp;
}

size_t Utf8Length(absl::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

absl::string_view Utf8Prefix(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

std::string QuoteForError(absl::string_view value, size_t max_octets) {
  std::string out = "\"";
  size_t i = 0;
  while (i < value.size()) {
    if (i >= max_octets) {
      out += "...";
      break;
    }
    const char c = value[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const size_t length = Utf8SequenceLength(value, i);
      if (length > 0) {
        out.append(value.data() + i, length);
        i += length;
      } else {
        absl::StrAppendFormat(&out, "\\x%02x", u);
        ++i;
      }
      continue;
    }
    if (!AppendCommonEscape(c, &out)) {
      if (u < 0x20 || u == 0x7f) {
        absl::StrAppendFormat(&out, "\\x%02x", u);
      } else {
        out += c;
      }
    }
    ++i;
  }
  out += "\"";
  return out;
}

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (AppendCommonEscape(c, &out)) continue;
    const auto u = static_cast<unsigned char>(c);
    if (c == '\b') {
      out += "\\b";
    } else if (c == '\f') {
      out += "\\f";
    } else if (u < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", u);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace mailroom
