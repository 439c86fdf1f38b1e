// Provides Redactor, which removes secrets and bearer tokens from text before it is logged.
// Two layers: values registered at run time (the client secret, a private key, each access
// token as it is fetched) are replaced wherever they appear, and shapes that carry
// credentials (Bearer tokens, Basic and other HTTP (proxy) Authorization headers, XOAUTH2
// initial responses, JWTs, PEM private keys, form and JSON fields named like secrets) are
// replaced whether or not anyone registered them. The shapes are matched with RE2 (linear
// time, no recursion), so a megabyte of token-like text from a remote server costs a scan,
// not the stack. Thread-safe.
#ifndef MAILROOM_COMMON_REDACTOR_H_
#define MAILROOM_COMMON_REDACTOR_H_

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace mailroom {

inline constexpr absl::string_view kRedacted = "[REDACTED]";

class Redactor {
 public:
  Redactor() = default;
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  // The most short-lived values kept at once; the oldest is forgotten first.
  static constexpr size_t kMaxShortLivedSecrets = 256;

  // Registers a value that must never appear in output, until RemoveSecret: the stored
  // credential. Values shorter than 4 bytes are ignored (redacting them would shred
  // ordinary text). The URL-encoded and base64 forms are registered too, since secrets
  // travel in forms and SASL exchanges.
  void AddSecret(absl::string_view secret);
  // Registers a value that is replaced by newer ones (an access token, a client assertion,
  // a credential typed into a Test Connection): at most kMaxShortLivedSecrets are kept, so
  // that a stream of them cannot grow memory. The shapes above still catch an old one.
  void AddShortLivedSecret(absl::string_view secret);
  // Forgets a value (e.g. an access token that has been replaced).
  void RemoveSecret(absl::string_view secret);
  // How many values (each with its forms) are registered, for tests and metrics.
  size_t size() const;

  // Returns `text` with every registered value and credential shape replaced by [REDACTED].
  std::string Redact(absl::string_view text) const;

  // Only the credential shapes, no registered values.
  static std::string RedactPatterns(absl::string_view text);

  // The process-wide instance that the logging layer uses.
  static Redactor& Global();

 private:
  void RebuildLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::string> pinned_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> short_lived_ ABSL_GUARDED_BY(mu_);
  // Every form of every registered value, longest first, so that a value that contains
  // another is replaced whole.
  std::vector<std::string> forms_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_REDACTOR_H_
