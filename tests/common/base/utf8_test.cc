// The UTF-8 toolkit: well-formedness per RFC 3629, decoding, counting, cutting on a character
// boundary, and quoting for error messages.
#include "common/base/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace mailroom {
namespace {

TEST(FindInvalidUtf8, FindsEveryKindOfMalformedSequence) {
  EXPECT_EQ(FindInvalidUtf8(""), absl::string_view::npos);
  EXPECT_EQ(FindInvalidUtf8("plain ASCII"), absl::string_view::npos);
  EXPECT_EQ(FindInvalidUtf8("訪客 — 王小明 😀"), absl::string_view::npos);
  EXPECT_EQ(FindInvalidUtf8("ab\xc0\xaf"), 2u);        // overlong '/'
  EXPECT_EQ(FindInvalidUtf8("\xe0\x80\xaf"), 0u);      // overlong, three bytes
  EXPECT_EQ(FindInvalidUtf8("x\xed\xa0\x80"), 1u);     // surrogate U+D800
  EXPECT_EQ(FindInvalidUtf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("\xf5\x80\x80\x80"), 0u);  // invalid lead byte
  EXPECT_EQ(FindInvalidUtf8("王\xe5\xb0"), 3u);        // truncated at the end
  EXPECT_EQ(FindInvalidUtf8("\xe5\xb0x"), 0u);         // truncated in the middle
  EXPECT_EQ(FindInvalidUtf8("\x80"), 0u);              // lone continuation byte
}

TEST(QuoteForError, EscapesWhatCouldForgeALogLine) {
  EXPECT_EQ(QuoteForError("a\r\nb\t\"c\\"), "\"a\\r\\nb\\t\\\"c\\\\\"");
  EXPECT_EQ(QuoteForError(std::string("x\0y\x1b", 4)), "\"x\\x00y\\x1b\"");
  EXPECT_EQ(QuoteForError("王\xff"), "\"王\\xff\"");
  EXPECT_EQ(QuoteForError("abcdef", 3), "\"abc...\"");
  // Cut on a character boundary: the 3-byte character that crosses the limit stays whole.
  EXPECT_EQ(QuoteForError("a王小", 2), "\"a王...\"");
}

TEST(NextCodePoint, DecodesOneToFourBytes) {
  const absl::string_view text = "a\xC2\x85王😀";
  size_t i = 0;
  EXPECT_EQ(NextCodePoint(text, &i), 0x61u);
  EXPECT_EQ(NextCodePoint(text, &i), 0x85u);
  EXPECT_EQ(NextCodePoint(text, &i), 0x738Bu);
  EXPECT_EQ(NextCodePoint(text, &i), 0x1F600u);
  EXPECT_EQ(i, text.size());
}

TEST(Utf8Length, CountsCodePointsNotBytes) {
  EXPECT_EQ(Utf8Length(""), 0u);
  EXPECT_EQ(Utf8Length("王a"), 2u);
  EXPECT_EQ(Utf8Length("😀"), 1u);
}

TEST(Utf8Prefix, NeverEndsInsideACharacter) {
  EXPECT_EQ(Utf8Prefix("short", 100), "short");
  EXPECT_EQ(Utf8Prefix("ab王", 4), "ab");
  EXPECT_EQ(Utf8Prefix("ab王", 5), "ab王");
  EXPECT_EQ(Utf8Prefix("王王", 3), "王");
}

TEST(JsonQuote, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(JsonQuote(""), "\"\"");
  EXPECT_EQ(JsonQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonQuote("\r\n\t\b\f"), "\"\\r\\n\\t\\b\\f\"");
  EXPECT_EQ(JsonQuote(std::string("\x01\x1f\x00", 3)), "\"\\u0001\\u001f\\u0000\"");
  // DEL and everything beyond ASCII are written as they are (JSON does not escape them).
  EXPECT_EQ(JsonQuote("\x7f王😀/"), "\"\x7f王😀/\"");
}

}  // namespace
}  // namespace mailroom
