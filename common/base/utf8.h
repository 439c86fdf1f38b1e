// Provides the one UTF-8 toolkit every layer uses: well-formedness (RFC 3629), decoding,
// length in code points, cutting on a character boundary, quoting a value for an error
// message so that a hostile value cannot forge log lines, and quoting text as a JSON string.
// Stateless and thread-safe.
#ifndef MAILROOM_COMMON_BASE_UTF8_H_
#define MAILROOM_COMMON_BASE_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace mailroom {

// The length (1..4) of the well-formed UTF-8 sequence that starts at text[i]; 0 if there is
// none (an overlong form, a surrogate, a code point above U+10FFFF, a truncated sequence or a
// stray continuation byte). `i` must be < text.size().
size_t Utf8SequenceLength(absl::string_view text, size_t i);

// The offset of the first byte of `text` that does not begin a well-formed UTF-8 sequence;
// absl::string_view::npos when all of `text` is well-formed.
size_t FindInvalidUtf8(absl::string_view text);

inline bool IsValidUtf8(absl::string_view text) {
  return FindInvalidUtf8(text) == absl::string_view::npos;
}

// The code point that starts at text[*i], advancing *i past it. `text` must be well-formed
// from *i on (check with FindInvalidUtf8 first).
uint32_t NextCodePoint(absl::string_view text, size_t* i);

// Number of code points of well-formed UTF-8 `text` (every byte that is not a continuation
// byte starts one).
size_t Utf8Length(absl::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a
// character.
absl::string_view Utf8Prefix(absl::string_view text, size_t max_bytes);

// `value` quoted for an error message: control characters, quotes, backslashes and bytes that
// are not UTF-8 escaped, and cut at `max_octets` (on a character boundary) with "..."
// appended.
std::string QuoteForError(absl::string_view value, size_t max_octets = 80);

// Well-formed UTF-8 `text` as a JSON string literal (RFC 8259): quotes, backslashes and
// control characters escaped, every other character as it is.
std::string JsonQuote(absl::string_view text);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_UTF8_H_
