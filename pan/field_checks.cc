#include "pan/field_checks.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mail/email_address.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::pan {
namespace {

// Timestamp's documented range (RFC 3339 years 0001..9999).
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

// The code point starting at text[*i] (advancing *i); text must be well-formed UTF-8.
uint32_t NextCodePoint(absl::string_view text, size_t* i) {
  const auto b = static_cast<unsigned char>(text[*i]);
  int length = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  uint32_t cp = length == 1 ? b : length == 2 ? (b & 0x1F) : length == 3 ? (b & 0x0F) : (b & 0x07);
  for (int k = 1; k < length && *i + k < text.size(); ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(text[*i + k]) & 0x3F);
  }
  *i += length;
  return cp;
}

}  // namespace

void FieldErrors::Add(absl::string_view field, absl::string_view problem) {
  violations_.emplace_back(std::string(field), std::string(problem));
}

absl::Status FieldErrors::ToStatus() const {
  if (violations_.empty()) return absl::OkStatus();
  std::vector<std::string> parts;
  for (const auto& [field, problem] : violations_)
    parts.push_back(absl::StrCat(field, ": ", problem));
  return WithReason(absl::InvalidArgumentError(absl::StrJoin(parts, "; ")), "INVALID_FIELD");
}

size_t Utf8Length(absl::string_view text) {
  size_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

void CheckText(FieldErrors* errors, absl::string_view field, absl::string_view value,
               const TextRule& rule) {
  if (value.empty()) {
    if (rule.required) errors->Add(field, "is required");
    return;
  }
  if (const size_t bad = FindInvalidUtf8(value); bad != absl::string_view::npos) {
    errors->Add(field, absl::StrCat("not valid UTF-8 (byte ", bad, ")"));
    return;
  }
  for (size_t i = 0; i < value.size();) {
    const uint32_t cp = NextCodePoint(value, &i);
    const bool line_break = cp == '\r' || cp == '\n' || cp == 0x2028 || cp == 0x2029;
    if (line_break && !rule.multiline) {
      errors->Add(field, "contains CR or LF (a line break)");
      return;
    }
    const bool allowed = cp == '\t' || (rule.multiline && line_break);
    const bool control = cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F);
    if (control && !allowed) {
      errors->Add(field, absl::StrCat("contains a control character (U+",
                                      absl::Hex(cp, absl::kZeroPad4), ")"));
      return;
    }
  }
  if (rule.max_bytes > 0 && value.size() > rule.max_bytes) {
    errors->Add(field, absl::StrCat("exceeds ", rule.max_bytes, " bytes"));
  } else if (rule.max_bytes == 0 && Utf8Length(value) > rule.max_chars) {
    errors->Add(field, absl::StrCat("exceeds ", rule.max_chars, " characters"));
  }
}

void CheckEmailAddress(FieldErrors* errors, absl::string_view field,
                       const mailroom::common::v1::EmailAddress& address, bool required) {
  const std::string address_field = absl::StrCat(field, ".address");
  if (address.address().empty()) {
    if (required) errors->Add(address_field, "is required");
  } else if (absl::Status status = ValidateEmailAddress(address.address(), address_field);
             !status.ok()) {
    // ValidateEmailAddress already prefixes its message with the field.
    const absl::string_view message = status.message();
    const std::string prefix = absl::StrCat(address_field, ": ");
    errors->Add(address_field,
                absl::StartsWith(message, prefix) ? message.substr(prefix.size()) : message);
  }
  CheckText(errors, absl::StrCat(field, ".display_name"), address.display_name(), Line(256));
}

void CheckTimestamp(FieldErrors* errors, absl::string_view field,
                    const google::protobuf::Timestamp& time) {
  if (time.seconds() < kMinTimestampSeconds || time.seconds() > kMaxTimestampSeconds ||
      time.nanos() < 0 || time.nanos() > 999999999) {
    errors->Add(field, "is not a valid timestamp (0001-01-01 .. 9999-12-31)");
  }
}

}  // namespace mailroom::pan
