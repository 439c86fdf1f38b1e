#include "common/base/redactor.h"

#include <algorithm>
#include <memory>

#include <re2/re2.h>

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
  std::unique_ptr<RE2> regex;
  const char* replacement;  // RE2 rewrite: \\1 is the first group
};

Pattern Make(const char* regex, const char* replacement) {
  RE2::Options options;
  options.set_dot_nl(true);
  options.set_max_mem(64 << 20);
  return Pattern{std::make_unique<RE2>(regex, options), replacement};
}

const std::vector<Pattern>& Patterns() {
  static const auto* patterns = [] {
    auto* list = new std::vector<Pattern>();
    // PEM private keys, whole.
    list->push_back(Make(R"(-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----)",
                         R"(-----BEGIN \1PRIVATE KEY-----[REDACTED]-----END \1PRIVATE KEY-----)"));
    // HTTP credentials other than Bearer: "Proxy-Authorization: Basic x" (a proxy password,
    // only base64-encoded), "Authorization: Digest ...".
    list->push_back(Make(R"((?i)\b((?:proxy-)?authorization:\s*)(?:basic|digest|ntlm|negotiate)\s+[^\r\n]+)",
                         R"(\1[REDACTED])"));
    // "Authorization: Bearer x", XOAUTH2's "auth=Bearer x".
    list->push_back(Make(R"((?i)(Bearer)\s+[^\s\x01"',;]+)", R"(\1 [REDACTED])"));
    // An XOAUTH2 / OAUTHBEARER initial response on the AUTH line.
    list->push_back(
        Make(R"((?i)(AUTH\s+(?:XOAUTH2|OAUTHBEARER))\s+[A-Za-z0-9+/=]+)", R"(\1 [REDACTED])"));
    // The same response sent on its own line: base64 of "user=" or "n,a=" (OAUTHBEARER).
    list->push_back(Make(R"(\b(?:dXNlcj1|bixh)[A-Za-z0-9+/=]*)", "[REDACTED]"));
    // JSON fields that carry credentials.
    list->push_back(Make(
        R"re((?i)("(?:access_token|client_secret|client_assertion|refresh_token|id_token|secret|password|private_key)"\s*:\s*")[^"]*")re",
        R"(\1[REDACTED]")"));
    // Form and query fields that carry credentials.
    list->push_back(Make(
        R"((?i)\b((?:access_token|client_secret|client_assertion|refresh_token|password)=)[^&\s"]*)",
        R"(\1[REDACTED])"));
    // Any JWT (three base64url parts, the first a JSON header).
    list->push_back(
        Make(R"(\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)", "[REDACTED]"));
    return list;
  }();
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

namespace {

std::vector<std::string> FormsOf(absl::string_view secret) {
  return {std::string(secret), UrlEncode(secret), absl::Base64Escape(secret)};
}

}  // namespace

void Redactor::AddSecret(absl::string_view secret) {
  if (secret.size() < kMinSecretLength) return;
  absl::MutexLock lock(&mu_);
  if (std::find(pinned_.begin(), pinned_.end(), secret) != pinned_.end()) return;
  pinned_.emplace_back(secret);
  RebuildLocked();
}

void Redactor::AddShortLivedSecret(absl::string_view secret) {
  if (secret.size() < kMinSecretLength) return;
  absl::MutexLock lock(&mu_);
  auto it = std::find(short_lived_.begin(), short_lived_.end(), secret);
  if (it != short_lived_.end()) short_lived_.erase(it);  // renewed: now the newest
  short_lived_.emplace_back(secret);
  while (short_lived_.size() > kMaxShortLivedSecrets) short_lived_.pop_front();
  RebuildLocked();
}

void Redactor::RemoveSecret(absl::string_view secret) {
  absl::MutexLock lock(&mu_);
  pinned_.erase(std::remove(pinned_.begin(), pinned_.end(), secret), pinned_.end());
  short_lived_.erase(std::remove(short_lived_.begin(), short_lived_.end(), secret),
                     short_lived_.end());
  RebuildLocked();
}

size_t Redactor::size() const {
  absl::MutexLock lock(&mu_);
  return pinned_.size() + short_lived_.size();
}

void Redactor::RebuildLocked() {
  forms_.clear();
  auto add = [this](const std::string& value) {
    for (std::string& form : FormsOf(value)) forms_.push_back(std::move(form));
  };
  std::for_each(pinned_.begin(), pinned_.end(), add);
  std::for_each(short_lived_.begin(), short_lived_.end(), add);
  std::sort(forms_.begin(), forms_.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  forms_.erase(std::unique(forms_.begin(), forms_.end()), forms_.end());
}

std::string Redactor::RedactPatterns(absl::string_view text) {
  std::string out(text);
  if (!MayHoldCredential(out)) return out;
  for (const Pattern& pattern : Patterns()) {
    RE2::GlobalReplace(&out, *pattern.regex, pattern.replacement);
  }
  return out;
}

std::string Redactor::Redact(absl::string_view text) const {
  std::string out(text);
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& secret : forms_) {
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
