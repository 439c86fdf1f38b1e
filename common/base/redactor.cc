#include "common/base/redactor.h"

#include <algorithm>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/base/url_encode.h"

namespace mailroom {
namespace {

constexpr size_t kMinSecretLength = 4;

struct Pattern {
  std::regex regex;
  const char* replacement;
};

const std::vector<Pattern>& Patterns() {
  static const auto* patterns = new std::vector<Pattern>{
      // PEM private keys, whole.
      {std::regex(R"(-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)"),
       "-----BEGIN $1PRIVATE KEY-----[REDACTED]-----END $1PRIVATE KEY-----"},
      // "Authorization: Bearer x", XOAUTH2's "auth=Bearer x".
      {std::regex(R"((Bearer)\s+[^\s\x01"',;]+)", std::regex::icase), "$1 [REDACTED]"},
      // An XOAUTH2 / OAUTHBEARER initial response on the AUTH line.
      {std::regex(R"((AUTH\s+(?:XOAUTH2|OAUTHBEARER))\s+[A-Za-z0-9+/=]+)", std::regex::icase),
       "$1 [REDACTED]"},
      // The same response sent on its own line: base64 of "user=" or "n,a=" (OAUTHBEARER).
      {std::regex(R"(\b(?:dXNlcj1|bixh)[A-Za-z0-9+/=]*)"), "[REDACTED]"},
      // JSON fields that carry credentials.
      {std::regex(
           R"re(("(?:access_token|client_secret|client_assertion|refresh_token|id_token|secret|password|private_key)"\s*:\s*")[^"]*")re",
           std::regex::icase),
       "$1[REDACTED]\""},
      // Form and query fields that carry credentials.
      {std::regex(
           R"(\b((?:access_token|client_secret|client_assertion|refresh_token|password)=)[^&\s"]*)",
           std::regex::icase),
       "$1[REDACTED]"},
      // Any JWT (three base64url parts, the first a JSON header).
      {std::regex(R"(\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"), "[REDACTED]"},
  };
  return *patterns;
}

bool ContainsIgnoreCase(absl::string_view text, absl::string_view word) {
  return std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
           return absl::ascii_tolower(static_cast<unsigned char>(a)) == b;
         }) != text.end();
}

// Every pattern above needs one of these words in the text; most lines (an SMTP dialogue,
// ordinary log lines) have none, and skip the regular expressions altogether.
bool MayHoldCredential(absl::string_view text) {
  for (absl::string_view word :
       {"bearer", "auth", "token", "secret", "assertion", "password", "private"}) {
    if (ContainsIgnoreCase(text, word)) return true;
  }
  for (absl::string_view exact : {"dXNlcj1", "bixh", "eyJ"}) {
    if (absl::StrContains(text, exact)) return true;
  }
  return false;
}

}  // namespace

void Redactor::AddSecret(absl::string_view secret) {
  if (secret.size() < kMinSecretLength) return;
  std::vector<std::string> forms = {std::string(secret), UrlEncode(secret),
                                    absl::Base64Escape(secret)};
  absl::MutexLock lock(&mu_);
  for (std::string& form : forms) {
    if (std::find(secrets_.begin(), secrets_.end(), form) == secrets_.end()) {
      secrets_.push_back(std::move(form));
    }
  }
  // Longest first, so a value that contains another is replaced whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

void Redactor::RemoveSecret(absl::string_view secret) {
  const std::string forms[] = {std::string(secret), UrlEncode(secret),
                               absl::Base64Escape(secret)};
  absl::MutexLock lock(&mu_);
  for (const std::string& form : forms) {
    secrets_.erase(std::remove(secrets_.begin(), secrets_.end(), form), secrets_.end());
  }
}

std::string Redactor::RedactPatterns(absl::string_view text) {
  std::string out(text);
  if (!MayHoldCredential(out)) return out;
  for (const Pattern& pattern : Patterns()) {
    out = std::regex_replace(out, pattern.regex, pattern.replacement);
  }
  return out;
}

std::string Redactor::Redact(absl::string_view text) const {
  std::string out(text);
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& secret : secrets_) {
      if (out.find(secret) != std::string::npos) {
        absl::StrReplaceAll({{secret, kRedacted}}, &out);
      }
    }
  }
  return RedactPatterns(out);
}

Redactor& Redactor::Global() {
  static Redactor* redactor = new Redactor();
  return *redactor;
}

}  // namespace mailroom
