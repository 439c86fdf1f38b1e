// Provides AccessToken, an OAuth access token as the broker holds it, and its fingerprint:
// the short public name by which role nodes refer to a token (e.g. to report that a
// mailbox refused it) without ever sending the token back. Thread-compatible value type.
#ifndef MAILROOM_PAN_BROKER_ACCESS_TOKEN_H_
#define MAILROOM_PAN_BROKER_ACCESS_TOKEN_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace mailroom::broker {

struct AccessToken {
  std::string value;
  std::string token_type = "Bearer";
  // When the broker received it, by the broker's clock.
  absl::Time issue_time;
  absl::Time expire_time;
  // When the endpoint asked for it to be refreshed (refresh_in); InfiniteFuture if not said.
  absl::Time refresh_hint = absl::InfiniteFuture();
  std::string fingerprint;
};

// Lowercase hex SHA-256 of the token (64 characters): the only form in which a token may
// be logged or reported back (InvalidateAccessToken).
std::string TokenFingerprint(absl::string_view token);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_ACCESS_TOKEN_H_
