#include "pan/broker/token_response.h"

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "google/protobuf/util/json_util.h"

namespace mailroom::broker {

absl::optional<internal::EntraTokenResponse> ParseTokenResponseBody(absl::string_view body) {
  internal::EntraTokenResponse parsed;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(std::string(body), &parsed, options).ok()) {
    return absl::nullopt;
  }
  return parsed;
}

absl::optional<AccessToken> AccessTokenFromBody(const internal::EntraTokenResponse& body,
                                                absl::Time received) {
  if (body.access_token().empty() || body.expires_in() <= 0 ||
      !absl::EqualsIgnoreCase(body.token_type(), "Bearer")) {
    return absl::nullopt;
  }
  AccessToken token;
  token.value = body.access_token();
  token.token_type = "Bearer";
  token.issue_time = received;
  token.expire_time = received + std::min(absl::Seconds(body.expires_in()), kMaxTokenLifetime);
  if (body.refresh_in() > 0) {
    token.refresh_hint = std::min(received + absl::Seconds(body.refresh_in()), token.expire_time);
  }
  token.fingerprint = TokenFingerprint(token.value);
  return token;
}

}  // namespace mailroom::broker
