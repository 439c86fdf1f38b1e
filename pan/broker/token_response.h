// Provides the parsing of the Entra ID v2 token endpoint's JSON body (success or error) and
// the AccessToken a success body gives; token_client.cc uses both for every answer, and they
// are exposed here so that tests and the fuzz target (tests/fuzz/token_response_fuzzer.cc)
// reach the parser without a transport. Internal to the broker. Stateless and thread-safe.
#ifndef MAILROOM_PAN_BROKER_TOKEN_RESPONSE_H_
#define MAILROOM_PAN_BROKER_TOKEN_RESPONSE_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "pan/broker/access_token.h"
#include "proto/mailroom/broker/internal/entra_token_response.pb.h"

namespace mailroom::broker {

// The longest lifetime a token is believed to have, whatever expires_in says: Entra's access
// tokens live 60 to 90 minutes (24 hours at most with a token-lifetime policy). A larger
// expires_in (up to 2^63 - 1 seconds parses) would otherwise give a token that never
// expires and is never refreshed.
inline constexpr absl::Duration kMaxTokenLifetime = absl::Hours(24);

// The body as JSON mapped onto EntraTokenResponse (unknown fields ignored); nullopt when it
// is not such JSON.
absl::optional<internal::EntraTokenResponse> ParseTokenResponseBody(absl::string_view body);

// The token of a success body received at `received`: nullopt unless it has an access_token,
// a positive expires_in and token_type "Bearer" (any case). expire_time is received +
// expires_in (at most kMaxTokenLifetime); refresh_hint is received + refresh_in when that is
// positive (no later than expire_time), else InfiniteFuture. The fingerprint is filled in; the value is NOT yet
// registered with the redactor (the caller does that before logging anything).
absl::optional<AccessToken> AccessTokenFromBody(const internal::EntraTokenResponse& body,
                                                absl::Time received);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_TOKEN_RESPONSE_H_
