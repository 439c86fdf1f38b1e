#include "common/base/text_checks.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/utf8.h"

namespace mailroom {
namespace {

bool IsLineBreak(uint32_t cp) { return cp == '\n' || cp == '\r' || cp == 0x2028 || cp == 0x2029; }

bool IsControl(uint32_t cp) { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F); }

// The problem with the characters of well-formed `value`, or "" when there is none.
std::string CharacterProblem(absl::string_view value, bool multiline) {
  for (size_t i = 0; i < value.size();) {
    const uint32_t cp = NextCodePoint(value, &i);
    if (IsLineBreak(cp)) {
      if (!multiline) return "contains CR or LF (a line break)";
      if (cp == '\r' && (i >= value.size() || value[i] != '\n')) {
        return "contains CR not followed by LF";
      }
      continue;
    }
    if (cp != '\t' && IsControl(cp)) {
      return absl::StrCat("contains a control character (U+", absl::Hex(cp, absl::kZeroPad4),
                          ")");
    }
  }
  return "";
}

// IANA names are ASCII letters, digits and "/_+-"; refusing anything else (and "..") keeps a
// zone name from naming a file outside the zoneinfo directory.
bool PlausibleZoneName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxTimeZoneChars || absl::StrContains(name, "..") ||
      name[0] == '/') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' ||
           c == '+' || c == '-';
  });
}

}  // namespace

void FieldErrors::Add(absl::string_view field, absl::string_view problem) {
  violations_.emplace_back(std::string(field), std::string(problem));
}

absl::Status FieldErrors::ToStatus() const {
  if (violations_.empty()) return absl::OkStatus();
  std::vector<std::string> parts;
  parts.reserve(violations_.size());
  for (const auto& [field, problem] : violations_) {
    parts.push_back(absl::StrCat(field, ": ", problem));
  }
  return absl::InvalidArgumentError(absl::StrJoin(parts, "; "));
}

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  FieldErrors errors;
  errors.Add(field, problem);
  return errors.ToStatus();
}

bool CheckText(FieldErrors* errors, absl::string_view field, absl::string_view value,
               const TextRule& rule) {
  const size_t before = errors->size();
  if (value.empty()) {
    if (rule.required) errors->Add(field, "is required");
  } else if (rule.max_bytes > 0 && value.size() > rule.max_bytes) {
    errors->Add(field, absl::StrCat("exceeds ", rule.max_bytes, " bytes"));
  } else if (const size_t bad = FindInvalidUtf8(value); bad != absl::string_view::npos) {
    errors->Add(field, absl::StrCat("not valid UTF-8 (byte ", bad, ")"));
  } else if (std::string problem = CharacterProblem(value, rule.multiline); !problem.empty()) {
    errors->Add(field, problem);
  } else if (rule.max_chars > 0 && Utf8Length(value) > rule.max_chars) {
    errors->Add(field, absl::StrCat("exceeds ", rule.max_chars, " characters"));
  }
  return errors->size() == before;
}

bool CheckPrintableAscii(FieldErrors* errors, absl::string_view field, absl::string_view value,
                         size_t max_chars, bool required) {
  const size_t before = errors->size();
  if (value.empty()) {
    if (required) errors->Add(field, "is required");
  } else if (value.size() > max_chars) {
    errors->Add(field, absl::StrCat("exceeds ", max_chars, " characters"));
  } else if (!std::all_of(value.begin(), value.end(),
                          [](char c) { return c >= 0x21 && c <= 0x7E; })) {
    errors->Add(field, "must be printable ASCII without spaces");
  }
  return errors->size() == before;
}

bool CheckIdempotencyKey(FieldErrors* errors, absl::string_view field, absl::string_view key) {
  if (key.empty()) {
    errors->Add(field, "is required (a key chosen per user action, e.g. a UUID)");
    return false;
  }
  return CheckPrintableAscii(errors, field, key, kMaxIdempotencyKeyChars, /*required=*/true);
}

bool CheckNotificationId(FieldErrors* errors, absl::string_view field, absl::string_view id,
                         bool required) {
  return CheckPrintableAscii(errors, field, id, kMaxNotificationIdChars, required);
}

bool CheckNotificationLookup(FieldErrors* errors, absl::string_view notification_id,
                             absl::string_view idempotency_key) {
  if (notification_id.empty() == idempotency_key.empty()) {
    errors->Add("notification_id", "exactly one of notification_id and idempotency_key is required");
    return false;
  }
  if (!notification_id.empty()) {
    return CheckNotificationId(errors, "notification_id", notification_id, /*required=*/true);
  }
  return CheckIdempotencyKey(errors, "idempotency_key", idempotency_key);
}

bool CheckTimestamp(FieldErrors* errors, absl::string_view field,
                    const google::protobuf::Timestamp* timestamp, bool required) {
  if (timestamp == nullptr) {
    if (!required) return true;
    errors->Add(field, "is required");
    return false;
  }
  if (timestamp->seconds() < kMinTimestampSeconds ||
      timestamp->seconds() > kMaxTimestampSeconds || timestamp->nanos() < 0 ||
      timestamp->nanos() > 999'999'999) {
    errors->Add(field, "is not a valid timestamp (0001-01-01 .. 9999-12-31)");
    return false;
  }
  return true;
}

bool CheckLanguage(FieldErrors* errors, absl::string_view field, absl::string_view language) {
  if (language.empty()) return true;
  if (language.size() > kMaxLanguageChars) {
    errors->Add(field, absl::StrCat("exceeds ", kMaxLanguageChars, " characters"));
    return false;
  }
  size_t subtag_start = 0;
  for (size_t i = 0; i <= language.size(); ++i) {
    bool ok;
    if (i == language.size() || language[i] == '-') {
      const size_t length = i - subtag_start;
      ok = length > 0 && length <= 8;
      subtag_start = i + 1;
    } else {
      const auto c = static_cast<unsigned char>(language[i]);
      // The first subtag (the language) is letters only; later ones may hold digits ("419").
      ok = absl::ascii_isalpha(c) || (absl::ascii_isdigit(c) && subtag_start > 0);
    }
    if (!ok) {
      errors->Add(field, "not a BCP 47 language tag (e.g. \"en\", \"zh-TW\")");
      return false;
    }
  }
  return true;
}

std::string NormalizeLanguage(absl::string_view language) {
  return absl::AsciiStrToLower(language);
}

bool CheckTimeZone(FieldErrors* errors, absl::string_view field, absl::string_view name) {
  if (name.empty()) return true;
  absl::TimeZone zone;
  if (!PlausibleZoneName(name) || !absl::LoadTimeZone(std::string(name), &zone)) {
    errors->Add(field, absl::StrCat("unknown IANA time zone ", QuoteForError(name),
                                    " (e.g. \"Asia/Taipei\"; empty means UTC)"));
    return false;
  }
  return true;
}

absl::TimeZone TimeZoneOrUtc(absl::string_view name) {
  absl::TimeZone zone;
  if (PlausibleZoneName(name) && absl::LoadTimeZone(std::string(name), &zone)) return zone;
  return absl::UTCTimeZone();
}

}  // namespace mailroom
