// Provides Redactor, which removes secrets and bearer tokens from text before it is logged.
// Two layers: values registered at run time (the client secret, a private key, each access
// token as it is fetched) are replaced wherever they appear, and shapes that carry
// credentials (Bearer tokens, XOAUTH2 initial responses, JWTs, PEM private keys, form and
// JSON fields named like secrets) are replaced whether or not anyone registered them.
// Thread-safe.
#ifndef MAILROOM_COMMON_REDACTOR_H_
#define MAILROOM_COMMON_REDACTOR_H_

#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/synchronization/mutex.h"

namespace mailroom {

inline constexpr absl::string_view kRedacted = "[REDACTED]";

class Redactor {
 public:
  Redactor() = default;
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  // Registers a value that must never appear in output. Values shorter than 4 bytes are
  // ignored (redacting them would shred ordinary text). The URL-encoded and base64 forms
  // are registered too, since secrets travel in forms and SASL exchanges.
  void AddSecret(absl::string_view secret);
  // Forgets a value (e.g. an access token that has been replaced), bounding memory.
  void RemoveSecret(absl::string_view secret);

  // Returns `text` with every registered value and credential shape replaced by [REDACTED].
  std::string Redact(absl::string_view text) const;

  // Only the credential shapes, no registered values.
  static std::string RedactPatterns(absl::string_view text);

  // The process-wide instance that the logging layer uses.
  static Redactor& Global();

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> secrets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_REDACTOR_H_
