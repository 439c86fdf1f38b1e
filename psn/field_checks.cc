#include "psn/field_checks.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/mail/email_address.h"

namespace mailroom::psn {
namespace {

constexpr size_t kMaxDisplayNameChars = 256;
constexpr size_t kMaxIdempotencyKeyChars = 128;
constexpr size_t kMaxPortalIdChars = 128;
constexpr size_t kMaxLanguageChars = 35;
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range google.protobuf.Timestamp allows.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

}  // namespace

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

size_t Utf8Length(absl::string_view text) {
  // Continuation bytes are 10xxxxxx; every other byte starts a code point.
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

absl::Status CheckText(absl::string_view field, absl::string_view value, const TextRule& rule) {
  if (value.empty()) {
    return rule.required ? FieldError(field, "required") : absl::OkStatus();
  }
  if (const size_t bad = FindInvalidUtf8(value); bad != absl::string_view::npos) {
    return FieldError(field, absl::StrCat("not valid UTF-8 (byte ", bad, ")"));
  }
  if (rule.max_chars > 0 && Utf8Length(value) > rule.max_chars) {
    return FieldError(field, absl::StrCat("exceeds ", rule.max_chars, " characters"));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c == 0) return FieldError(field, "contains NUL");
    if (!rule.single_line) continue;
    if (c == '\r' || c == '\n') return FieldError(field, "contains CR or LF");
    const bool c0 = c < 0x20 && c != '\t';
    // U+0080..U+009F (C1 controls) are 0xC2 0x80..0x9F in UTF-8.
    const bool c1 = c == 0xC2 && i + 1 < value.size() &&
                    static_cast<unsigned char>(value[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(value[i + 1]) <= 0x9F;
    if (c0 || c == 0x7F || c1) {
      return FieldError(field, "contains a control character");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckEmailAddress(absl::string_view field,
                               const mailroom::common::v1::EmailAddress& address,
                               bool required) {
  const std::string address_field = absl::StrCat(field, ".address");
  if (address.address().empty()) {
    if (required) return FieldError(address_field, "required");
    if (!address.display_name().empty()) {
      return FieldError(address_field, "required with a display_name");
    }
    return absl::OkStatus();
  }
  // CR/LF first, with the wording every other field uses.
  if (address.address().find_first_of("\r\n") != std::string::npos) {
    return FieldError(address_field, "contains CR or LF");
  }
  if (const size_t bad = FindInvalidUtf8(address.address()); bad != absl::string_view::npos) {
    return FieldError(address_field, absl::StrCat("not valid UTF-8 (byte ", bad, ")"));
  }
  if (absl::Status status = ValidateEmailAddress(address.address(), address_field);
      !status.ok()) {
    return status;
  }
  return CheckText(absl::StrCat(field, ".display_name"), address.display_name(),
                   SingleLine(kMaxDisplayNameChars));
}

absl::Status CheckIdempotencyKey(absl::string_view field, absl::string_view key) {
  if (key.empty()) {
    return FieldError(field, "required (a key chosen per user action, e.g. a UUID)");
  }
  if (key.size() > kMaxIdempotencyKeyChars) {
    return FieldError(field, absl::StrCat("exceeds ", kMaxIdempotencyKeyChars, " characters"));
  }
  for (char c : key) {
    if (c < 0x21 || c > 0x7E) {
      return FieldError(field, "must be printable ASCII without spaces");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPortalId(absl::string_view field, absl::string_view portal_id,
                           bool allow_empty) {
  return CheckText(field, portal_id, SingleLine(kMaxPortalIdChars, !allow_empty));
}

absl::Status CheckLanguage(absl::string_view field, absl::string_view language) {
  if (language.empty()) return absl::OkStatus();
  if (language.size() > kMaxLanguageChars) {
    return FieldError(field, absl::StrCat("exceeds ", kMaxLanguageChars, " characters"));
  }
  size_t subtag_start = 0;
  for (size_t i = 0; i <= language.size(); ++i) {
    if (i == language.size() || language[i] == '-') {
      const size_t length = i - subtag_start;
      if (length == 0 || length > 8) {
        return FieldError(field, "not a BCP 47 language tag (e.g. \"en\", \"zh-TW\")");
      }
      subtag_start = i + 1;
      continue;
    }
    const bool alpha = absl::ascii_isalpha(static_cast<unsigned char>(language[i]));
    const bool digit = absl::ascii_isdigit(static_cast<unsigned char>(language[i]));
    if (!(alpha || (digit && subtag_start > 0))) {
      return FieldError(field, "not a BCP 47 language tag (e.g. \"en\", \"zh-TW\")");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTimestamp(absl::string_view field, bool present,
                            const google::protobuf::Timestamp& timestamp, bool required) {
  if (!present) return required ? FieldError(field, "required") : absl::OkStatus();
  if (timestamp.seconds() < kMinTimestampSeconds || timestamp.seconds() > kMaxTimestampSeconds ||
      timestamp.nanos() < 0 || timestamp.nanos() > 999'999'999) {
    return FieldError(field, "out of range (0001-01-01..9999-12-31)");
  }
  return absl::OkStatus();
}

std::string NormalizeLanguage(absl::string_view language) {
  return absl::AsciiStrToLower(language);
}

}  // namespace mailroom::psn
